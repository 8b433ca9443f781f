"""The pure limit rules: calendar periods in the service's zone, the count check, reschedule limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from foothills_rpc.domain.errors import FailedPrecondition
from foothills_rpc.domain.limits import BookingLimits, Period, check_booking_limit, check_reschedule, periods

LONDON = ZoneInfo("Europe/London")


def test_periods_are_calendar_periods_in_the_service_zone() -> None:
    start = datetime(2030, 7, 10, 23, 30, tzinfo=UTC)  # Thursday 00:30 on 11 July in London (BST)
    found = {p.name: (p.start, p.end, p.limit) for p in periods(BookingLimits(1, 2, 3), start, LONDON)}
    assert found == {
        "day": (datetime(2030, 7, 10, 23, tzinfo=UTC), datetime(2030, 7, 11, 23, tzinfo=UTC), 1),
        "week": (datetime(2030, 7, 7, 23, tzinfo=UTC), datetime(2030, 7, 14, 23, tzinfo=UTC), 2),
        "month": (datetime(2030, 6, 30, 23, tzinfo=UTC), datetime(2030, 7, 31, 23, tzinfo=UTC), 3),
    }


def test_a_day_across_a_clock_change_is_23_hours_long() -> None:
    (day,) = periods(BookingLimits(per_day=1), datetime(2030, 3, 31, 12, tzinfo=UTC), LONDON)
    assert day.end - day.start == timedelta(hours=23)


def test_only_set_limits_have_periods() -> None:
    assert periods(BookingLimits(), datetime(2030, 1, 1, tzinfo=UTC), LONDON) == []
    assert not BookingLimits().any and BookingLimits(per_month=4).any


def test_the_limit_counts_the_booking_being_made() -> None:
    period = Period("week", datetime(2030, 1, 7, tzinfo=UTC), datetime(2030, 1, 14, tzinfo=UTC), 2)
    check_booking_limit(period, already=1)
    with pytest.raises(FailedPrecondition) as refused:
        check_booking_limit(period, already=2)
    assert refused.value.reason == "USER_OVER_BOOKING_LIMIT"
    assert refused.value.metadata == {"period": "week", "limit": "2"}


@pytest.mark.parametrize(("count", "moved", "allowed"), [
    pytest.param(1, timedelta(days=2), True, id="within-both"),
    pytest.param(2, timedelta(hours=1), False, id="count-reached"),
    pytest.param(0, timedelta(days=3, seconds=1), False, id="too-far-later"),
    pytest.param(0, -timedelta(days=3, seconds=1), False, id="too-far-earlier"),
    pytest.param(0, -timedelta(days=3), True, id="exactly-the-distance"),
])
def test_reschedule_limits(count: int, moved: timedelta, allowed: bool) -> None:
    original = datetime(2030, 1, 10, 10, tzinfo=UTC)

    def check() -> None:
        check_reschedule(count=count, max_reschedules=2, original_start=original, new_start=original + moved,
                         max_distance=timedelta(days=3))

    if allowed:
        check()
    else:
        with pytest.raises(FailedPrecondition) as refused:
            check()
        assert refused.value.reason == "RESCHEDULE_LIMIT"
