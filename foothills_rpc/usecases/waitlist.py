"""The waiting line of a full slot: joining, listing and leaving it, and the offers that freed seats make.

Freed seats go to the first waiting entries that fit, as holds in their name.

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
from foothills_rpc.db.database import Database
from foothills_rpc.db.limits import check_customer_limits
from foothills_rpc.db.models import Hold, Slot, WaitlistEntry
from foothills_rpc.domain.catalog import check_seats
from foothills_rpc.domain.errors import Collector, FailedPrecondition
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.waitlist import LIVE, EntryStatus, may_become
from foothills_rpc.mail.outbox import Dispatcher
from foothills_rpc.notifications.notices import WAITLIST_OFFER, notify
from foothills_rpc.security.page_tokens import PageTokens, instant_and_id
from foothills_rpc.usecases.terms import Terms

if TYPE_CHECKING:  # each imports this module: the offers run inside their transactions
    from foothills_rpc.clock import Clock
    from foothills_rpc.usecases.admission import Admission
    from foothills_rpc.usecases.holds import Holds


# Built once: every cancellation runs it. Refreshes a slot this transaction loaded before.
_LOCKED_SLOT = (select(Slot).where(Slot.id == bindparam("slot_id")).with_for_update()
                .execution_options(populate_existing=True))


async def release_and_offer(session: AsyncSession, terms: Terms, slot_id: uuid.UUID, seats: int,
                            now: datetime) -> int:
    """Gives `seats` of the slot back and offers its free seats to the line (`offer_freed`). In the usual
    case, nobody waiting, that is one statement: the release asks whether anyone waits."""
    if not await bookings_repo.release_seats(session, slot_id, seats):
        return 0
    return await offer_to_line(session, terms, slot_id, now)


async def offer_freed(session: AsyncSession, terms: Terms, slot_id: uuid.UUID, now: datetime) -> int:
    """Offers the slot's free seats to its waiting line, in order; returns how many offers were made.
    The caller holds the slot's lock (see above), so nobody joins the line meanwhile."""
    if not await repo.someone_waits(session, slot_id):
        return 0  # the usual case: one probe, no slot loaded
    return await offer_to_line(session, terms, slot_id, now)


async def offer_to_line(session: AsyncSession, terms: Terms, slot_id: uuid.UUID, now: datetime) -> int:
    """`offer_freed` once someone is known to wait (a write that gave seats back said so)."""
    slot = (await session.execute(_LOCKED_SLOT, {"slot_id": slot_id})).scalar_one()
    line = await repo.waiting_line(session, slot_id)
    if not line:
        return 0
    service = await catalog_repo.service_by_id(session, slot.service_id)
    if service.archived or not slot.offered or slot.start_at < now + terms.minimum_notice(service):
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
        quote = terms.price(service, slot, seats=entry.seats, now=now, spec=spec)
        if not await bookings_repo.take_seats(session, slot.id, entry.seats):
            break
        hold = Hold(id=uuid.uuid4(), service_id=service.id, slot_id=slot.id, customer_id=entry.customer_id,
                    start_at=slot.start_at, end_at=slot.end_at, seats=entry.seats, status=HoldStatus.ACTIVE.value,
                    expires_at=now + spec.booking.offer, currency=quote.currency, unit_price_minor=quote.unit_minor,
                    total_price_minor=quote.total_minor, price_breakdown=holds_repo.quote_json(quote),
                    booking_id=None, request_id=f"offer-{uuid.uuid4().hex}", request_hash="", created_at=now,
                    updated_at=now)
        session.add(hold)
        await session.flush()
        _move(entry, EntryStatus.OFFERED)
        entry.hold_id, entry.updated_at = hold.id, now
        await notify(session, await user_by_id(session, entry.customer_id), WAITLIST_OFFER,
                     {"service": service.display_name, "start": slot.start_at, "seats": entry.seats,
                      "total_minor": quote.total_minor, "currency": quote.currency, "expires": hold.expires_at,
                      "hold": f"holds/{hold.id.hex}", "entry": f"waitlistEntries/{entry.id.hex}"},
                     key=f"offer-{hold.id.hex}", now=now, service_zone=service.time_zone)
        free -= entry.seats
        made += 1
    return made


# A waitlist entry and, once it has an offer, when the offer lapses.
EntryView = tuple[WaitlistEntry, datetime | None]


class Waitlist:
    """Joining, listing and leaving a full slot's waiting line (the offers are `offer_freed` above)."""

    def __init__(self, *, db: Database, clock: Clock, page_tokens: PageTokens, admission: Admission, holds: Holds,
                 dispatcher: Dispatcher) -> None:
        self._db = db
        self._clock = clock
        self._page_tokens = page_tokens
        self._admission = admission
        self._holds = holds
        self._dispatcher = dispatcher

    async def join_waitlist(self, caller: Principal, service_id: uuid.UUID, start: datetime,
                            seats: int) -> EntryView:
        errors = Collector()
        check_seats(seats, errors)
        errors.check()
        seats = seats or 1
        now = self._clock.now()

        async def join(session: AsyncSession) -> EntryView:
            service, slot = await catalog_repo.service_and_slot(session, service_id, start)
            slot = await self._admission.claim_slot(session, caller, service, slot, start, seats, now, exclude=None)
            # The slot's lock orders this join with every offer of the slot: a seat freed before it is
            # seen free here (SLOT_AVAILABLE), one freed after it is offered to this entry.
            await bookings_repo.lock_slots(session, [slot.id])
            await session.refresh(slot)
            entry = await repo.entry_of(session, slot.id, caller.user_id)
            if entry is not None and entry.status in LIVE:
                return entry, await repo.offer_expiry(session, entry)
            if slot.capacity - slot.seats_taken >= seats:
                raise FailedPrecondition("those seats are free: book them", reason="SLOT_AVAILABLE")
            if entry is None:
                entry = WaitlistEntry(id=uuid.uuid4(), service_id=service.id, slot_id=slot.id,
                                      customer_id=caller.user_id, start_at=slot.start_at,
                                      status=EntryStatus.WAITING.value, created_at=now)
                session.add(entry)
            else:
                _move(entry, EntryStatus.WAITING)  # joining again
            entry.seats, entry.hold_id = seats, None
            entry.position = await repo.next_position(session, slot.id)
            entry.joined_at = entry.updated_at = now  # (back) at the end of the line
            await session.flush()
            return entry, None

        return await self._db.run(join)

    async def list_waitlist_entries(self, caller: Principal, service_id: uuid.UUID | None, *, requested_size: int,
                       token: str) -> tuple[list[EntryView], str]:
        return await self._page_tokens.page(
            token, ("waitlist", service_id), requested_size, parse=instant_and_id,
            fetch=lambda after, n: self._db.run(lambda s: repo.list_entries(s, caller, service_id, after=after,
                                                                            limit=n)),
            key_of=lambda view: repo.page_key(view[0]))

    async def leave_waitlist(self, caller: Principal, entry_id: uuid.UUID) -> EntryView:
        now = self._clock.now()

        async def leave(session: AsyncSession) -> EntryView:
            entry = await repo.entry_for(session, caller, entry_id, for_update=True)
            if entry.status == EntryStatus.WAITING:
                _move(entry, EntryStatus.LEFT)
                entry.updated_at = now
            elif entry.status == EntryStatus.OFFERED and entry.hold_id is not None:
                hold = await holds_repo.hold_for(session, caller, entry.hold_id, for_update=True)
                if not await self._holds.end_hold(session, hold, now, released=True):
                    _move(entry, EntryStatus.LEFT)  # its hold had ended already
                    entry.updated_at = now
                await session.refresh(entry)
            return entry, await repo.offer_expiry(session, entry)

        entry = await self._db.run(leave)
        self._dispatcher.notify()
        return entry


def _move(entry: WaitlistEntry, target: EntryStatus) -> None:
    """Moves the entry along its state table; any other move is a bug, not a caller's mistake."""
    current = EntryStatus(entry.status)
    if not may_become(current, target):
        raise AssertionError(f"a {current} waitlist entry cannot become {target}")
    entry.status = target.value
