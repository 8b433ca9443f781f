"""Resolving booking conflicts (db/conflicts.py finds them): one at a time or in bulk, by an admin for
every service or by a provider for their own. Resolving goes through the booking rules themselves."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.db import bookings as bookings_repo
from foothills_rpc.db.conflicts import (
    Conflict,
    ConflictReason,
    earlier_bulk_request,
    find_conflicts,
    remember_bulk_request,
)
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import Booking
from foothills_rpc.domain.errors import (
    AlreadyExists,
    Collector,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.requests import check_request_id
from foothills_rpc.domain.users import Role
from foothills_rpc.security.page_tokens import PageTokens, instant_and_id
from foothills_rpc.usecases.bookings import Bookings
from foothills_rpc.usecases.catalog import Catalog

MAX_REASON = 500
MAX_BULK = 100  # bookings one ResolveConflicts call resolves; call again for the rest
# Moving to the nearest free slot looks this far either side of the booking's start, and tries this many.
NEAREST_WINDOW = timedelta(days=14)
NEAREST_TRIES = 5

__all__ = ["Conflict", "ConflictReason", "Conflicts", "Outcome", "Resolution"]


class Resolution(Enum):
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"  # to a given start
    MOVE_TO_NEAREST = "move_to_nearest"  # to the nearest free slot of the same service


@dataclass(frozen=True)
class Outcome:
    """What a bulk resolution did to one booking: `cancelled`, `moved` (to `new_start`) or `unresolved`
    (with the reason of the last refusal)."""

    booking: str
    result: str
    new_start: datetime | None = None
    failure: str = ""


class Conflicts:
    def __init__(self, *, db: Database, clock: Clock, bookings: Bookings, catalog: Catalog,
                 page_tokens: PageTokens) -> None:
        self._db = db
        self._clock = clock
        self._bookings = bookings
        self._catalog = catalog
        self._page_tokens = page_tokens

    @staticmethod
    def _scope(caller: Principal) -> uuid.UUID | None:
        """A provider sees and resolves the conflicts of their own services; an admin, every one."""
        return None if caller.role is Role.ADMIN else caller.user_id

    async def list_conflicts(self, caller: Principal, service_id: uuid.UUID | None, *, requested_size: int,
                             token: str) -> tuple[list[Conflict], str]:
        provider_id = self._scope(caller)
        now = self._clock.now()
        return await self._page_tokens.page(
            token, f"conflicts:{service_id}:{provider_id}", requested_size, parse=instant_and_id,
            fetch=lambda after, n: self._db.run(lambda s: find_conflicts(
                s, now=now, service_id=service_id, provider_id=provider_id, after=after, limit=n)),
            key_of=lambda conflict: [conflict.booking.start_at.isoformat(), str(conflict.booking.id)])

    async def resolve_conflict(self, caller: Principal, booking_id: uuid.UUID, resolution: Resolution, *,
                      new_start: datetime | None, reason: str) -> Booking:
        _check_reason(reason, Collector()).check()
        if resolution is Resolution.RESCHEDULE and new_start is None:
            raise InvalidArgument.single("new_start_time", "is required to reschedule")
        now = self._clock.now()
        found = await self._db.run(lambda s: find_conflicts(s, now=now, booking_id=booking_id,
                                                            provider_id=self._scope(caller)))
        if not found:
            visible = await self._db.read(lambda s: _visible(s, caller, booking_id))
            if not visible:
                raise NotFound("no such booking among the conflicts you may resolve", reason="BOOKING_NOT_FOUND")
            raise FailedPrecondition("the booking is not in conflict", reason="NOT_IN_CONFLICT")
        booking = found[0].booking
        key = f"conflict-{booking_id.hex}"
        if resolution is Resolution.CANCEL:
            return await self._cancel(caller, booking_id, reason.strip(), key)
        if resolution is Resolution.RESCHEDULE:
            assert new_start is not None
            return await self._move(caller, booking_id, new_start, reason.strip(),
                                    f"{key}-{int(new_start.timestamp())}")
        return await self._move_to_nearest(caller, booking, reason.strip(), key)

    async def resolve_conflicts(self, caller: Principal, *, service_id: uuid.UUID | None,
                                reasons: set[ConflictReason], resolution: Resolution | None, reason: str,
                                request_id: str, errors: Collector) -> list[Outcome]:
        """Resolves up to MAX_BULK conflicts, soonest first, each in its own transaction; a retry with the
        same `request_id` returns the first report. Each booking's own move or cancel is idempotent too,
        so two racing calls with one `request_id` resolve each booking once. `errors`: what the request's
        conversion found; this method's own checks join them."""
        _check_reason(reason, errors)
        check_request_id(request_id, errors)
        if resolution not in (Resolution.CANCEL, Resolution.MOVE_TO_NEAREST):
            errors.add("resolution", "must be CONFLICT_RESOLUTION_CANCEL or CONFLICT_RESOLUTION_MOVE_TO_NEAREST")
        errors.check()
        assert resolution is not None
        digest = hashlib.sha256(repr((service_id, sorted(r.value for r in reasons), resolution.value,
                                      reason.strip())).encode()).hexdigest()
        method = "ResolveConflicts"
        earlier = await self._db.read(lambda s: earlier_bulk_request(s, caller.user_id, method,
                                                                                    request_id))
        if earlier is not None:
            return _replayed(earlier, digest)
        now = self._clock.now()
        found = await self._db.run(lambda s: find_conflicts(s, now=now, service_id=service_id,
                                                            provider_id=self._scope(caller), limit=10 * MAX_BULK))
        chosen = [c.booking for c in found if not reasons or reasons & set(c.reasons)][:MAX_BULK]
        outcomes = []
        for booking in chosen:
            key = hashlib.sha256(f"{request_id}|{booking.id}".encode()).hexdigest()[:48]
            try:
                if resolution is Resolution.CANCEL:
                    await self._cancel(caller, booking.id, reason.strip(), key)
                    outcomes.append(Outcome(f"bookings/{booking.id.hex}", "cancelled"))
                else:
                    moved = await self._move_to_nearest(caller, booking, reason.strip(), key)
                    outcomes.append(Outcome(f"bookings/{booking.id.hex}", "moved", moved.start_at))
            except DomainError as refusal:
                outcomes.append(Outcome(f"bookings/{booking.id.hex}", "unresolved", failure=refusal.reason))
        report: list[dict[str, object]] = [{"booking": o.booking, "result": o.result, "failure": o.failure,
                   "new_start": o.new_start.isoformat() if o.new_start else None} for o in outcomes]
        try:
            await self._db.run(lambda s: remember_bulk_request(
                s, caller.user_id, method, request_id, digest, report, now))
        except IntegrityError:  # a concurrent call with the same request_id stored its report first
            earlier = await self._db.read(lambda s: earlier_bulk_request(s, caller.user_id, method,
                                                                                        request_id))
            assert earlier is not None
            return _replayed(earlier, digest)
        return outcomes

    async def _cancel(self, caller: Principal, booking_id: uuid.UUID, reason: str, key: str) -> Booking:
        # An admin overrides the policy; a provider's own cancellation carries no fee anyway.
        return await self._bookings.cancel(caller, booking_id, reason=f"conflict: {reason}",
                                           override=caller.role is Role.ADMIN, request_id=key)

    async def _move(self, caller: Principal, booking_id: uuid.UUID, new_start: datetime, reason: str,
                    key: str) -> Booking:
        return await self._bookings.reschedule(caller, booking_id, new_start, key[:64],
                                               reason=f"conflict: {reason}", as_provider=True)

    async def _move_to_nearest(self, caller: Principal, booking: Booking, reason: str, key: str) -> Booking:
        """Moves `booking` to the free slot of its service nearest its start (earlier or later) that the
        booking rules accept; FailedPrecondition NO_FREE_SLOT when none within NEAREST_WINDOW does."""
        now = self._clock.now()
        listing = await self._catalog.list_slots(booking.service_id, max(now, booking.start_at - NEAREST_WINDOW),
                                                 booking.start_at + NEAREST_WINDOW, booking.seats)
        candidates = sorted((p.slot.start_at for p in listing.slots
                             if p.slot.capacity - p.slot.seats_taken >= booking.seats
                             and p.slot.start_at != booking.start_at),
                            key=lambda start: (abs(start - booking.start_at), start))
        for start in candidates[:NEAREST_TRIES]:
            try:
                return await self._move(caller, booking.id, start, reason, f"{key}-{int(start.timestamp())}")
            except FailedPrecondition:
                continue  # taken meanwhile, or a rule refuses this one: try the next nearest
        raise FailedPrecondition("no free slot near the booking's start takes it", reason="NO_FREE_SLOT")


def _check_reason(reason: str, errors: Collector) -> Collector:
    if not reason.strip():
        errors.add("reason", "is required: it is recorded and told to the customer")
    elif len(reason) > MAX_REASON:
        errors.add("reason", f"must be at most {MAX_REASON} characters")
    return errors


async def _visible(session: AsyncSession, caller: Principal, booking_id: uuid.UUID) -> bool:
    """Whether the caller may resolve conflicts of this booking, were it in conflict (existence must
    not leak to a provider about another provider's bookings)."""
    try:
        booking = await bookings_repo.booking_for(session, caller, booking_id)
    except NotFound:
        return False
    return caller.role is Role.ADMIN or booking.provider_id == caller.user_id


def _replayed(earlier: tuple[str, list[dict[str, object]]], digest: str) -> list[Outcome]:
    stored_hash, report = earlier
    if stored_hash != digest:
        raise AlreadyExists("this request_id was used for a different request", reason="REQUEST_ID_REUSED")
    return [Outcome(str(row["booking"]), str(row["result"]),
                    datetime.fromisoformat(str(row["new_start"])) if row["new_start"] else None, str(row["failure"]))
            for row in report]
