"""Holds: seats of one slot kept for a customer's checkout, at a locked price, until they expire."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db import holds as holds_repo
from foothills_rpc.db import waitlist as waitlist_repo
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import Hold
from foothills_rpc.domain.catalog import check_seats
from foothills_rpc.domain.errors import AlreadyExists, Collector, DomainError, FailedPrecondition, NotFound
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.requests import check_request_id, request_digest
from foothills_rpc.domain.users import Role
from foothills_rpc.mail.outbox import Dispatcher
from foothills_rpc.usecases.admission import Admission
from foothills_rpc.usecases.terms import Terms
from foothills_rpc.usecases.waitlist import release_and_offer


@dataclass(frozen=True)
class HoldRequest:
    service_id: uuid.UUID
    start: datetime
    seats: int
    request_id: str


class Holds:
    def __init__(self, *, db: Database, clock: Clock, terms: Terms, admission: Admission,
                 dispatcher: Dispatcher) -> None:
        self._db = db
        self._clock = clock
        self._terms = terms
        self._admission = admission
        self._dispatcher = dispatcher

    async def hold(self, caller: Principal, request: HoldRequest) -> Hold:
        errors = Collector()
        check_seats(request.seats, errors)
        check_request_id(request.request_id, errors)
        errors.check()
        seats = request.seats or 1
        request_hash = request_digest(request.service_id, request.start, seats)
        now = self._clock.now()

        async def earlier(session: AsyncSession) -> Hold | None:
            found = await holds_repo.hold_by_request(session, caller.user_id, request.request_id)
            if found is not None and found.request_hash != request_hash:
                raise AlreadyExists("this request_id was used for a different request", reason="REQUEST_ID_REUSED")
            return found

        async def take(session: AsyncSession) -> Hold:
            if (found := await earlier(session)) is not None:
                return found
            service, slot = await catalog_repo.service_and_slot(session, request.service_id, request.start)
            await self._admission.check_limits(session, service, caller.user_id, request.start, now)
            slot = await self._admission.claim_slot(session, caller, service, slot, request.start, seats, now,
                                                    exclude=None, take=True)
            quote = self._terms.price(service, slot, seats=seats, now=now)
            hold = Hold(id=uuid.uuid4(), service_id=service.id, slot_id=slot.id, customer_id=caller.user_id,
                        start_at=slot.start_at, end_at=slot.end_at, seats=seats, status=HoldStatus.ACTIVE.value,
                        expires_at=now + catalog_repo.spec_of(service).booking.hold, currency=quote.currency,
                        unit_price_minor=quote.unit_minor, total_price_minor=quote.total_minor,
                        price_breakdown=holds_repo.quote_json(quote), booking_id=None, request_id=request.request_id,
                        request_hash=request_hash, created_at=now, updated_at=now)
            session.add(hold)
            await holds_repo.flush_hold(session)
            # The seats taken: the slot's row lock is held, so a concurrent hold of this customer on this
            # slot has committed (and is seen) or waits behind this one.
            if await holds_repo.holds_slot(session, caller.user_id, slot.id, now, exclude=hold.id):
                raise FailedPrecondition("you hold seats of this slot already", reason="SLOT_ALREADY_HELD_BY_USER")
            return hold

        try:
            return await self._db.run(take)
        except DomainError as refusal:
            if (found := await self._db.read(earlier)) is None:
                raise refusal from None
            return found

    async def get_hold(self, caller: Principal, hold_id: uuid.UUID) -> Hold:
        return await self._db.run(lambda s: holds_repo.hold_for(s, caller, hold_id))

    async def release_hold(self, caller: Principal, hold_id: uuid.UUID) -> Hold:
        now = self._clock.now()

        async def release(session: AsyncSession) -> Hold:
            hold = await holds_repo.hold_for(session, caller, hold_id, for_update=True)
            if hold.status == HoldStatus.USED:
                raise FailedPrecondition("a booking was made with this hold; cancel the booking instead",
                                         reason="HOLD_ALREADY_USED")
            await self.end_hold(session, hold, now, released=True)
            return hold

        hold = await self._db.run(release)
        self._dispatcher.notify()
        return hold

    async def end_hold(self, session: AsyncSession, hold: Hold, now: datetime, *, released: bool) -> bool:
        """Releases (or, past its expiry, expires) an active hold and gives its seats back, once."""
        to = HoldStatus.RELEASED if released and hold.expires_at > now else HoldStatus.EXPIRED
        if not await holds_repo.claim(session, hold.id, to=to, now=now, unexpired=to is HoldStatus.RELEASED):
            return False
        hold.status, hold.updated_at = to.value, now
        await waitlist_repo.follow_hold(session, hold.id, to, now)  # the entry offered it leaves the line
        await release_and_offer(session, self._terms, hold.slot_id, hold.seats, now)
        return True

    async def expire_holds(self) -> int:
        """Gives back the seats of holds past their expiry; each claimed once, by one process. Also
        closes waiting lines that can no longer be offered anything."""
        now = self._clock.now()
        await self._db.run(lambda s: waitlist_repo.close_stale(s, now))
        ids = await self._db.run(lambda s: holds_repo.lapsed_holds(s, now))
        system = Principal(user_id=uuid.UUID(int=0), session_id=uuid.UUID(int=0), role=Role.ADMIN)
        expired = 0
        for hold_id in ids:
            async def expire(session: AsyncSession, hold_id: uuid.UUID = hold_id) -> bool:
                try:
                    hold = await holds_repo.hold_for(session, system, hold_id)
                except NotFound:
                    return False
                return await self.end_hold(session, hold, now, released=False)
            expired += await self._db.run(expire)
        if expired:
            self._dispatcher.notify()  # offers to the next in line may have been mailed
        return expired

    @staticmethod
    async def usable_hold(session: AsyncSession, caller: Principal, hold_id: uuid.UUID, *,
                          service_id: uuid.UUID | None, start: datetime | None, seats: int, now: datetime) -> Hold:
        """The caller's hold, locked, if a booking may use it now; `service_id`, `start` and `seats`, when
        set, must be the hold's."""
        hold = await holds_repo.hold_for(session, caller, hold_id, for_update=True, admin_sees_all=False)
        errors = Collector()
        if service_id is not None and service_id != hold.service_id:
            errors.add("service", "must be the hold's service (or empty)")
        if start is not None and start != hold.start_at:
            errors.add("start_time", "must be the hold's start (or empty)")
        if seats and seats != hold.seats:
            errors.add("seats", "must be the hold's seats (or 0)")
        errors.check()
        if hold.status == HoldStatus.USED:
            raise FailedPrecondition("a booking was made with this hold already", reason="HOLD_ALREADY_USED")
        if hold.status != HoldStatus.ACTIVE or hold.expires_at <= now:
            raise FailedPrecondition("the hold expired or was released", reason="HOLD_EXPIRED")
        return hold
