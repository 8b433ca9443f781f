"""A customer's active bookings and unexpired holds of one service, counted against its limits."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db import bookings as bookings_repo
from foothills_rpc.db import holds as holds_repo
from foothills_rpc.db.catalog import spec_of
from foothills_rpc.db.models import Service
from foothills_rpc.domain.limits import check_booking_limit, periods


async def check_customer_limits(session: AsyncSession, service: Service, customer_id: uuid.UUID, start: datetime,
                                now: datetime, *, exclude_booking: uuid.UUID | None = None,
                                exclude_hold: uuid.UUID | None = None) -> None:
    """Raises USER_OVER_BOOKING_LIMIT if one more booking (or hold) starting at `start` would pass a
    per-period limit of the service. The caller decides the locking (see usecases/bookings.py)."""
    for period in periods(spec_of(service).booking.limits, start, ZoneInfo(service.time_zone)):
        already = await bookings_repo.count_customer_bookings(
            session, customer_id=customer_id, service_id=service.id, start=period.start, end=period.end,
            exclude=exclude_booking)
        already += await holds_repo.count_customer_holds(
            session, customer_id=customer_id, service_id=service.id, start=period.start, end=period.end,
            now=now, exclude=exclude_hold)
        check_booking_limit(period, already)
