"""Booking conflicts: active future bookings that no longer fit after the catalog or the users changed.

Nothing is stored: a conflict is whatever the query finds now (a slot no longer offered, a slot over
its capacity, an archived service, a disabled provider or customer), so it disappears by itself once
resolved or once the cause is undone. Resolving goes through the booking rules themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from foothills_rpc.clock import Clock
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import ACTIVE_STATUSES, Booking, Service, Slot, User
from foothills_rpc.domain.errors import FailedPrecondition, InvalidArgument
from foothills_rpc.domain.principal import Principal
from foothills_rpc.security.page_tokens import PageTokens, page_size
from foothills_rpc.usecases.bookings import Bookings

MAX_REASON = 500


class ConflictReason(Enum):
    OUTSIDE_AVAILABILITY = "outside_availability"
    OVER_CAPACITY = "over_capacity"
    SERVICE_ARCHIVED = "service_archived"
    PROVIDER_DISABLED = "provider_disabled"
    CUSTOMER_DISABLED = "customer_disabled"


@dataclass(frozen=True)
class Conflict:
    booking: Booking
    reasons: list[ConflictReason]


class Resolution(Enum):
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"


async def _conflicts(session: AsyncSession, *, now: datetime, service_id: uuid.UUID | None = None,
                     booking_id: uuid.UUID | None = None, after: tuple[datetime, uuid.UUID] | None = None,
                     limit: int = 1) -> list[Conflict]:
    provider, customer = aliased(User), aliased(User)
    flags = (Slot.offered.is_(False), Slot.seats_taken > Slot.capacity, Service.archived.is_(True),
             provider.disabled.is_(True), customer.disabled.is_(True))
    query = (select(Booking, *flags)
             .join(Slot, Slot.id == Booking.slot_id).join(Service, Service.id == Booking.service_id)
             .join(provider, provider.id == Booking.provider_id).join(customer, customer.id == Booking.customer_id)
             .where(Booking.status.in_(ACTIVE_STATUSES), Booking.start_at >= now, or_(*flags))
             .order_by(Booking.start_at, Booking.id).limit(limit))
    if service_id is not None:
        query = query.where(Booking.service_id == service_id)
    if booking_id is not None:
        query = query.where(Booking.id == booking_id)
    if after is not None:
        query = query.where(or_(Booking.start_at > after[0], and_(Booking.start_at == after[0], Booking.id > after[1])))
    return [Conflict(booking=row[0], reasons=[reason for reason, flag in zip(ConflictReason, row[1:], strict=True)
                                              if flag])
            for row in (await session.execute(query)).all()]


class Conflicts:
    def __init__(self, *, db: Database, clock: Clock, bookings: Bookings, page_tokens: PageTokens) -> None:
        self._db = db
        self._clock = clock
        self._bookings = bookings
        self._page_tokens = page_tokens

    async def list(self, service_id: uuid.UUID | None, *, requested_size: int,
                   token: str) -> tuple[list[Conflict], str]:
        limit = page_size(requested_size)
        scope = f"conflicts:{service_id}"
        key = self._page_tokens.decode(token, scope)
        try:
            after = None if key is None else (datetime.fromisoformat(key[0]), uuid.UUID(key[1]))
        except (ValueError, IndexError, TypeError) as exc:
            raise InvalidArgument.single("page_token", "is malformed", "INVALID_PAGE_TOKEN") from exc
        now = self._clock.now()
        rows = await self._db.run(lambda s: _conflicts(s, now=now, service_id=service_id, after=after,
                                                       limit=limit + 1))
        if len(rows) <= limit:
            return rows, ""
        last = rows[limit - 1].booking
        return rows[:limit], self._page_tokens.encode([last.start_at.isoformat(), str(last.id)], scope)

    async def resolve(self, caller: Principal, booking_id: uuid.UUID, resolution: Resolution, *,
                      new_start: datetime | None, reason: str) -> Booking:
        if not reason.strip():
            raise InvalidArgument.single("reason", "is required: it is recorded and told to the customer")
        if len(reason) > MAX_REASON:
            raise InvalidArgument.single("reason", f"must be at most {MAX_REASON} characters")
        if resolution is Resolution.RESCHEDULE and new_start is None:
            raise InvalidArgument.single("new_start_time", "is required to reschedule")
        now = self._clock.now()
        if not await self._db.run(lambda s: _conflicts(s, now=now, booking_id=booking_id)):
            raise FailedPrecondition("the booking is not in conflict", reason="NOT_IN_CONFLICT")
        if resolution is Resolution.CANCEL:
            return await self._bookings.cancel(caller, booking_id, reason=f"conflict: {reason.strip()}", override=True)
        assert new_start is not None
        # The same move always carries the same request id, so a retried resolution moves once.
        request_id = f"conflict-{booking_id.hex}-{int(new_start.timestamp())}"
        return await self._bookings.reschedule(caller, booking_id, new_start, request_id)
