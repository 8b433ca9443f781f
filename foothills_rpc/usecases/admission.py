"""Admission: whether seats of a slot may be taken now. The rules every booking, hold and waiting line
obeys: the service open, the booking window, the slot, the caller's and the provider's other bookings,
and the per-period limits. Pure decisions live in the domain; this module reads and locks what they need."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db import bookings as repo
from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db import holds as holds_repo
from foothills_rpc.db import waitlist as waitlist_repo
from foothills_rpc.db.limits import check_customer_limits
from foothills_rpc.db.models import Service, Slot
from foothills_rpc.domain.errors import FailedPrecondition
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.principal import Principal
from foothills_rpc.usecases.terms import Terms
from foothills_rpc.usecases.waitlist import release_and_offer


class Admission:
    def __init__(self, *, terms: Terms) -> None:
        self._terms = terms

    async def claim_slot(self, session: AsyncSession, caller: Principal, service: Service, slot: Slot | None,
                         start: datetime, seats: int, now: datetime, *, exclude: uuid.UUID | None, held: bool = False,
                         inside_notice: bool = False, take: bool = False, in_way: repo.Clashes | None = None) -> Slot:
        """`slot`, the service's slot at `start` (`catalog.service_and_slot`), if every booking rule allows
        the caller to take seats of it (seats aside). With `take` the seats are taken too, in the
        usual case by the statement that checks the overlaps (one round trip, not two): SLOT_UNAVAILABLE
        if they do not fit; the slot returned still shows the seats taken before them, as the price
        quotes on those. With `in_way`, that statement already ran (`bookings.book_unless_clash`), took
        nothing and answered what stood in the way: this says why, or takes the seats the slot's lapsed
        holds free.

        It writes: the slot's lapsed holds are claimed, and their seats offered to its waiting line.

        Expired holds of the slot are claimed before its seats are taken, so they count as free at once. With `held`
        (booking with a hold), the window and seats were checked when the hold was made and stand. With
        `inside_notice` (a provider or admin booking for a customer), the minimum notice does not apply."""
        slot = self.admit(service, slot, start, seats, now, held=held, inside_notice=inside_notice)
        asked = self.overlaps(caller, service, slot, now, exclude=exclude, held=held)
        if take and in_way is None and await repo.take_seats_unless_clash(session, asked, seats):
            return slot
        found = in_way if in_way is not None else await repo.clashes(session, asked)
        self.refuse_clashes(found, slot)
        # Holds past their expiry are claimed here, so their seats count as free at once.
        lapsed, freed = await holds_repo.expire_lapsed(session, slot.id, now) if found.lapsed_holds else ([], 0)
        if lapsed:
            for hold_id in lapsed:
                await waitlist_repo.follow_hold(session, hold_id, HoldStatus.EXPIRED, now)
            await release_and_offer(session, self._terms, slot.id, freed, now)  # the line comes first
            await session.refresh(slot)  # seats taken changed: the demand price reads them
        # Nothing clashed, so the take above found the slot full, unless lapsed holds were in the way.
        if take and not (lapsed and await repo.take_seats_unless_clash(session, asked, seats)):
            raise FailedPrecondition("not enough free seats in that slot", reason="SLOT_UNAVAILABLE")
        return slot

    @staticmethod
    def refuse_clashes(found: repo.Clashes, slot: Slot) -> None:
        """Raises the reason a booking of `slot` meets in `found`, if any (lapsed holds are none)."""
        if found.customer_slot_id == slot.id:
            raise FailedPrecondition("you already booked this slot", reason="SLOT_ALREADY_BOOKED_BY_USER")
        if found.customer_slot_id is not None:
            raise FailedPrecondition("you already have a booking at that time", reason="OVERLAPPING_BOOKING")
        if found.provider_busy:
            raise FailedPrecondition("the provider is booked elsewhere at that time", reason="PROVIDER_UNAVAILABLE")

    def admit(self, service: Service, slot: Slot | None, start: datetime, seats: int, now: datetime, *,
              held: bool = False, inside_notice: bool = False) -> Slot:
        """`slot`, if the rules that need no database allow booking it (`claim_slot` says which)."""
        if service.archived:
            raise FailedPrecondition("the service is archived", reason="SERVICE_ARCHIVED")
        if service.suspended:
            raise FailedPrecondition("the service's provider is not taking bookings now", reason="SERVICE_SUSPENDED")
        if start < now:  # said plainly: past slots are mostly not materialised, so it would read SLOT_UNAVAILABLE
            raise FailedPrecondition("that start is in the past", reason="START_IN_PAST")
        # Checked first: slots are materialised only up to the horizon, so beyond it there is no row to find.
        if not held and start > self._terms.horizon(service, now):
            raise FailedPrecondition("that start is beyond how far ahead the service takes bookings",
                                     reason="TOO_FAR_AHEAD")
        if slot is None:
            raise FailedPrecondition("that start is not a slot of the service", reason="SLOT_UNAVAILABLE")
        if not held:
            if not inside_notice and slot.start_at < now + self._terms.minimum_notice(service):
                raise FailedPrecondition("that slot starts too soon to book", reason="MINIMUM_NOTICE")
            if seats > slot.capacity:
                raise FailedPrecondition("the slot has fewer seats than that", reason="SLOT_UNAVAILABLE")
        return slot

    @staticmethod
    def overlaps(caller: Principal, service: Service, slot: Slot, now: datetime, *, exclude: uuid.UUID | None,
                 held: bool = False) -> repo.Overlaps:
        """What must not stand between the caller and the slot: their own and the provider's overlapping
        bookings, and (but when booking with a hold, whose seats are taken) the slot's lapsed holds."""
        return repo.Overlaps(customer_id=caller.user_id,
                             provider_id=None if service.runs_without_provider else service.provider_id,
                             slot_id=slot.id, start=slot.start_at, end=slot.end_at, exclude=exclude,
                             lapsed_holds=not held, now=now)

    async def check_limits(self, session: AsyncSession, service: Service, customer_id: uuid.UUID, start: datetime,
                            now: datetime, *, exclude_booking: uuid.UUID | None = None,
                            exclude_hold: uuid.UUID | None = None) -> None:
        """Refuses a booking (or hold) starting at `start` beyond the service's per-period limits.

        Counted under the customer's row lock, taken before any slot lock in the same transaction, so two
        processes booking for one customer at once count one after the other and never both pass."""
        if not catalog_repo.spec_of(service).booking.limits.any:
            return
        await repo.lock_customer(session, customer_id)
        await check_customer_limits(session, service, customer_id, start, now, exclude_booking=exclude_booking,
                                    exclude_hold=exclude_hold)
