"""Waitlist offers: freed seats go to the first waiting entries that fit, as holds in their name.

`offer_freed` runs inside the transaction that frees seats (a cancellation, a reschedule away, a
hold that expired or was released, a capacity increase), after the seats went back: that
transaction holds the slot's row lock, so offers for one slot are made one transaction at a time,
each seeing the previous one's entries and seats, whichever process it runs in. A freed seat is
offered once, and no freed seat is left unoffered while someone who fits waits.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db import bookings as bookings_repo
from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db import holds as holds_repo
from foothills_rpc.db import waitlist as repo
from foothills_rpc.db.accounts import user_by_id
from foothills_rpc.db.limits import check_customer_limits
from foothills_rpc.db.models import Hold, Slot
from foothills_rpc.domain.errors import FailedPrecondition
from foothills_rpc.mail import outbox

if TYPE_CHECKING:
    from foothills_rpc.usecases.catalog import Catalog


# Built once: every cancellation runs it. Refreshes a slot this transaction loaded before.
_LOCKED_SLOT = (select(Slot).where(Slot.id == bindparam("slot_id")).with_for_update()
                .execution_options(populate_existing=True))


async def offer_freed(session: AsyncSession, catalog: Catalog, slot_id: uuid.UUID, now: datetime) -> int:
    """Offers the slot's free seats to its waiting line, in order; returns how many offers were made."""
    slot = (await session.execute(_LOCKED_SLOT, {"slot_id": slot_id})).scalar_one()
    line = await repo.waiting_line(session, slot_id)
    if not line:
        return 0
    service = await catalog_repo.service_by_id(session, slot.service_id)
    if service.archived or not slot.offered or slot.start_at < now + catalog.minimum_notice(service):
        return 0  # no longer bookable: nobody is offered it
    spec = catalog_repo.spec_of(service)
    free = slot.capacity - slot.seats_taken
    made = 0
    for entry in line:
        if free <= 0:
            break
        if entry.seats > free:
            continue  # the first entry that fits gets it; this one keeps its place
        if spec.booking.limits.any:
            # Not under the customer's lock (the slot's is held, and customers are locked first): a
            # pre-check so nobody over their limit ties up seats; booking with the offer checks again.
            try:
                await check_customer_limits(session, service, entry.customer_id, slot.start_at, now)
            except FailedPrecondition:
                continue  # over the limit: keeps their place, the seats go to the next who fits
        quote = catalog.price(service, slot, seats=entry.seats, now=now, spec=spec)
        if not await bookings_repo.take_seats(session, slot.id, entry.seats):
            break
        hold = Hold(id=uuid.uuid4(), service_id=service.id, slot_id=slot.id, customer_id=entry.customer_id,
                    start_at=slot.start_at, end_at=slot.end_at, seats=entry.seats, status="active",
                    expires_at=now + spec.booking.offer, currency=quote.currency, unit_price_minor=quote.unit_minor,
                    total_price_minor=quote.total_minor, price_breakdown=holds_repo.quote_json(quote),
                    booking_id=None, request_id=f"offer-{uuid.uuid4().hex}", request_hash="", created_at=now,
                    updated_at=now)
        session.add(hold)
        await session.flush()
        entry.status, entry.hold_id, entry.updated_at = "offered", hold.id, now
        user = await user_by_id(session, entry.customer_id)
        start = slot.start_at.strftime("%Y-%m-%d %H:%M UTC")
        expiry = hold.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        await outbox.enqueue(session, recipient=user.email, now=now,
                             subject=f"A seat is free for you: {service.display_name}, {start}",
                             body=(f"Hello {user.display_name},\n\n{entry.seats} seat(s) of {service.display_name} on "
                                   f"{start} are held for you until {expiry}, at {quote.total_minor} {quote.currency} "
                                   f"(minor units).\n\nBook them with the hold holds/{hold.id.hex} (CreateBooking "
                                   f"with `hold`) before then; after that they go to the next in line.\n\n"
                                   f"Waitlist entry: waitlistEntries/{entry.id.hex}\n"))
        free -= entry.seats
        made += 1
    return made
