"""Booking conflicts: active future bookings that no longer fit after the catalog or the users changed.

Nothing is stored: a conflict is whatever this query finds now (a slot no longer offered, a slot over
its capacity, an archived service, a disabled provider or customer), so it disappears by itself once
resolved or once the cause is undone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from foothills_rpc.db.models import ACTIVE_STATUSES, Booking, BulkRequest, Service, Slot, User


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


async def find_conflicts(session: AsyncSession, *, now: datetime, service_id: uuid.UUID | None = None,
                         provider_id: uuid.UUID | None = None, booking_id: uuid.UUID | None = None,
                         after: tuple[datetime, uuid.UUID] | None = None, limit: int = 1) -> list[Conflict]:
    """The conflicts found now, soonest first, narrowed to a service, a provider's services or a booking."""
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
    if provider_id is not None:
        query = query.where(Service.provider_id == provider_id)
    if booking_id is not None:
        query = query.where(Booking.id == booking_id)
    if after is not None:
        query = query.where(or_(Booking.start_at > after[0], and_(Booking.start_at == after[0], Booking.id > after[1])))
    return [Conflict(booking=row[0], reasons=[reason for reason, flag in zip(ConflictReason, row[1:], strict=True)
                                              if flag])
            for row in (await session.execute(query)).all()]


async def earlier_bulk_request(session: AsyncSession, caller_id: uuid.UUID, method: str,
                               request_id: str) -> tuple[str, list[dict[str, object]]] | None:
    """(request hash, report) of an earlier bulk call with this request_id, if any."""
    row = (await session.execute(select(BulkRequest.request_hash, BulkRequest.result).where(
        BulkRequest.caller_id == caller_id, BulkRequest.method == method,
        BulkRequest.request_id == request_id))).first()
    return None if row is None else (row[0], row[1])


async def remember_bulk_request(session: AsyncSession, caller_id: uuid.UUID, method: str, request_id: str,
                                request_hash: str, report: list[dict[str, object]], now: datetime) -> None:
    """Stores a bulk call's report; the primary key refuses a second one (IntegrityError)."""
    session.add(BulkRequest(caller_id=caller_id, method=method, request_id=request_id,
                            request_hash=request_hash, result=report, created_at=now))
    await session.flush()
