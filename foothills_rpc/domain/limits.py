"""Per-service limits: bookings per customer per calendar period, and how far a booking may be moved.

Pure rules: the data layer counts and locks, these decide. Periods are calendar periods in the
service's time zone (a day, an ISO week from Monday, a month) containing the booking's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from foothills_rpc.domain.errors import FailedPrecondition

MAX_BOOKINGS_LIMIT = 1000
MAX_RESCHEDULES = 100


@dataclass(frozen=True)
class BookingLimits:
    """None: no limit."""

    per_day: int | None = None
    per_week: int | None = None
    per_month: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.per_day, self.per_week, self.per_month))


@dataclass(frozen=True)
class Period:
    name: str  # day | week | month
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    limit: int


def _utc(local: datetime) -> datetime:
    return local.astimezone(UTC)


def periods(limits: BookingLimits, start: datetime, zone: ZoneInfo) -> list[Period]:
    """The limited calendar periods that contain `start`, each with its limit, in UTC."""
    local = start.astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)

    def midnight(d: datetime) -> datetime:  # wall-clock midnight of that date, whatever the DST offset
        return datetime(d.year, d.month, d.day, tzinfo=zone)

    found = []
    if limits.per_day is not None:
        found.append(Period("day", _utc(midnight(day)), _utc(midnight(day + timedelta(days=1))), limits.per_day))
    if limits.per_week is not None:
        monday = day - timedelta(days=day.weekday())
        found.append(Period("week", _utc(midnight(monday)), _utc(midnight(monday + timedelta(days=7))),
                            limits.per_week))
    if limits.per_month is not None:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        found.append(Period("month", _utc(midnight(first)), _utc(midnight(following)), limits.per_month))
    return found


def check_booking_limit(period: Period, already: int) -> None:
    """`already`: the customer's other active bookings (and holds) of the service in the period."""
    if already + 1 > period.limit:
        raise FailedPrecondition(
            f"at most {period.limit} booking(s) of this service per {period.name} for one customer",
            reason="USER_OVER_BOOKING_LIMIT", metadata={"period": period.name, "limit": str(period.limit)})


def check_reschedule(*, count: int, max_reschedules: int | None, original_start: datetime, new_start: datetime,
                     max_distance: timedelta | None) -> None:
    if max_reschedules is not None and count >= max_reschedules:
        raise FailedPrecondition(f"this booking may be rescheduled at most {max_reschedules} time(s)",
                                 reason="RESCHEDULE_LIMIT", metadata={"limit": "count"})
    if max_distance is not None and abs(new_start - original_start) > max_distance:
        raise FailedPrecondition("that start is too far from the booking's original start",
                                 reason="RESCHEDULE_LIMIT", metadata={"limit": "distance"})
