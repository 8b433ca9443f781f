"""Availability and the slot grid as pure functions: windows, overrides, buffers, DST, validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foothills_rpc.domain.errors import FieldViolation
from foothills_rpc.domain.slots import (
    Availability,
    DateOverride,
    OverrideKind,
    Slot,
    SlotGrid,
    TimeRange,
    WeeklyWindow,
    day_windows,
    generate_slots,
    is_slot_start,
    validate_availability,
    validate_grid,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = SlotGrid(duration=timedelta(minutes=60))
WEEKDAYS = range(5)


def hm(text: str) -> int:
    """Minutes after midnight of `HH:MM` (24:00 allowed)."""
    hours, minutes = map(int, text.split(":"))
    return hours * 60 + minutes


def rng(start: str, end: str) -> TimeRange:
    return TimeRange(hm(start), hm(end))


def weekly(days: range | list[int], start: str, end: str) -> tuple[WeeklyWindow, ...]:
    return tuple(WeeklyWindow(weekday=d, hours=rng(start, end)) for d in days)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local_starts(slots: list[Slot], zone: ZoneInfo) -> list[str]:
    return [s.start.astimezone(zone).strftime("%a %H:%M") for s in slots]


def assert_well_formed(slots: list[Slot], grid: SlotGrid) -> None:
    """Sorted, UTC, end = start + duration, and no two slots overlap."""
    assert all(s.start.utcoffset() == timedelta(0) for s in slots)
    assert all(s.end - s.start == grid.duration for s in slots)
    assert all(a.end <= b.start for a, b in pairwise(slots))


# --- the grid -----------------------------------------------------------------------------------


def test_weekdays_nine_to_five_make_eight_hourly_slots_a_day() -> None:
    availability = Availability(weekly=weekly(WEEKDAYS, "09:00", "17:00"))
    # 2030-01-07 is a Monday; the week in London (GMT = UTC in January).
    slots = generate_slots(availability, HOUR, LONDON, utc("2030-01-07T00:00"), utc("2030-01-14T00:00"))
    assert len(slots) == 5 * 8
    assert local_starts(slots, LONDON)[:8] == [f"Mon {h:02d}:00" for h in range(9, 17)]
    assert {s.start.astimezone(LONDON).weekday() for s in slots} == set(WEEKDAYS)
    assert_well_formed(slots, HOUR)


def test_stored_hours_that_validation_would_refuse_make_no_slots() -> None:
    """Rows written before a rule tightened, or by hand: an inverted range yields nothing, not nonsense."""
    inverted = WeeklyWindow(weekday=0, hours=TimeRange(start_minute=17 * 60, end_minute=9 * 60))
    availability = Availability(weekly=(inverted, *weekly([0], "09:00", "10:00")))
    slots = generate_slots(availability, HOUR, LONDON, utc("2030-01-07T00:00"), utc("2030-01-08T00:00"))
    assert local_starts(slots, LONDON) == ["Mon 09:00"]


def test_buffers_lengthen_the_step_and_no_slot_runs_past_the_window() -> None:
    availability = Availability(weekly=weekly([1], "09:00", "12:00"))
    grid = SlotGrid(duration=timedelta(minutes=50), buffer_before=timedelta(minutes=15),
                    buffer_after=timedelta(minutes=10))
    slots = generate_slots(availability, grid, LONDON, utc("2030-01-08T00:00"), utc("2030-01-09T00:00"))
    # Step 75 minutes: 09:00, 10:15; 11:30 + 50 minutes would end at 12:20, past 12:00.
    assert local_starts(slots, LONDON) == ["Tue 09:00", "Tue 10:15"]
    assert_well_formed(slots, grid)


def test_a_slot_may_end_exactly_at_the_window_end_and_touching_windows_both_count() -> None:
    availability = Availability(weekly=(*weekly([0], "09:00", "10:30"), *weekly([0], "10:30", "11:00")))
    grid = SlotGrid(duration=timedelta(minutes=30))
    slots = generate_slots(availability, grid, LONDON, utc("2030-01-07T00:00"), utc("2030-01-08T00:00"))
    assert local_starts(slots, LONDON) == ["Mon 09:00", "Mon 09:30", "Mon 10:00", "Mon 10:30"]


def test_a_window_ending_at_midnight_keeps_its_last_slot() -> None:
    availability = Availability(weekly=weekly([0], "22:00", "24:00"))
    slots = generate_slots(availability, HOUR, LONDON, utc("2030-01-07T00:00"), utc("2030-01-09T00:00"))
    assert [(s.start.isoformat(), s.end.isoformat()) for s in slots] == [
        ("2030-01-07T22:00:00+00:00", "2030-01-07T23:00:00+00:00"),
        ("2030-01-07T23:00:00+00:00", "2030-01-08T00:00:00+00:00")]


def test_the_result_is_limited_to_the_half_open_range() -> None:
    availability = Availability(weekly=weekly(WEEKDAYS, "09:00", "17:00"))
    slots = generate_slots(availability, HOUR, LONDON, utc("2030-01-07T10:00"), utc("2030-01-07T12:00"))
    assert [s.start for s in slots] == [utc("2030-01-07T10:00"), utc("2030-01-07T11:00")]
    assert generate_slots(availability, HOUR, LONDON, utc("2030-01-07T12:00"), utc("2030-01-07T12:00")) == []
    assert generate_slots(availability, HOUR, LONDON, utc("2030-01-07T12:00"), utc("2030-01-07T10:00")) == []


@pytest.mark.parametrize(
    ("zone", "opens", "query_start", "first_local"),
    [pytest.param("Pacific/Kiritimati", "09:00", "2030-01-06T19:00", "Mon 09:00", id="utc+14"),
     pytest.param("Pacific/Pago_Pago", "14:00", "2030-01-08T01:00", "Mon 14:00", id="utc-11")],
)
def test_zones_far_from_utc_find_slots_on_the_neighbouring_utc_date(zone: str, opens: str, query_start: str,
                                                                     first_local: str) -> None:
    availability = Availability(weekly=weekly([0], opens, f"{hm(opens) // 60 + 1:02d}:00"))
    tz = ZoneInfo(zone)
    start = utc(query_start)
    slots = generate_slots(availability, HOUR, tz, start, start + timedelta(hours=1))
    assert local_starts(slots, tz) == [first_local]
    assert slots[0].start.date() != slots[0].start.astimezone(tz).date()


def test_naive_datetimes_are_refused() -> None:
    availability = Availability(weekly=weekly([0], "09:00", "10:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_slots(availability, HOUR, LONDON, datetime(2030, 1, 7), utc("2030-01-08T00:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        is_slot_start(availability, HOUR, LONDON, datetime(2030, 1, 7, 9))


def test_an_invalid_grid_is_refused_rather_than_looping() -> None:
    availability = Availability(weekly=weekly([0], "09:00", "10:00"))
    with pytest.raises(ValueError, match="invalid slot grid"):
        generate_slots(availability, SlotGrid(duration=timedelta(0)), LONDON, utc("2030-01-07T00:00"),
                       utc("2030-01-08T00:00"))


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_close_replace_and_add_hours() -> None:
    availability = Availability(
        weekly=weekly(WEEKDAYS, "09:00", "12:00"),
        overrides=(
            DateOverride(date(2030, 1, 8), OverrideKind.CLOSED),
            DateOverride(date(2030, 1, 9), OverrideKind.HOURS, (rng("14:00", "16:00"),)),
            DateOverride(date(2030, 1, 10), OverrideKind.EXTRA, (rng("18:00", "19:00"),)),
            DateOverride(date(2030, 1, 12), OverrideKind.EXTRA, (rng("10:00", "11:00"),)),  # a Saturday
        ))
    slots = generate_slots(availability, HOUR, LONDON, utc("2030-01-07T00:00"), utc("2030-01-14T00:00"))
    by_day: dict[str, list[int]] = {}
    for slot in slots:
        local = slot.start.astimezone(LONDON)
        by_day.setdefault(local.strftime("%a"), []).append(local.hour)
    assert by_day == {"Mon": [9, 10, 11], "Wed": [14, 15], "Thu": [9, 10, 11, 18], "Fri": [9, 10, 11],
                      "Sat": [10]}
    assert day_windows(availability, date(2030, 1, 8)) == []
    assert day_windows(availability, date(2030, 1, 9)) == [rng("14:00", "16:00")]
    assert day_windows(availability, date(2030, 1, 10)) == [rng("09:00", "12:00"), rng("18:00", "19:00")]
    assert day_windows(availability, date(2030, 1, 13)) == []


def test_day_windows_are_sorted() -> None:
    availability = Availability(weekly=(*weekly([0], "14:00", "15:00"), *weekly([0], "08:00", "09:00")),
                                overrides=(DateOverride(date(2030, 1, 7), OverrideKind.EXTRA,
                                                        (rng("11:00", "12:00"), rng("06:00", "07:00"))),))
    assert day_windows(availability, date(2030, 1, 7)) == [
        rng("06:00", "07:00"), rng("08:00", "09:00"), rng("11:00", "12:00"), rng("14:00", "15:00")]
    assert day_windows(availability, date(2030, 1, 14)) == [rng("08:00", "09:00"), rng("14:00", "15:00")]


# --- daylight saving time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "first_day", "utc_before", "utc_after"),
    [pytest.param(LONDON, "2030-03-29", 9, 8, id="london-spring"),
     pytest.param(LONDON, "2030-10-25", 8, 9, id="london-autumn"),
     pytest.param(NEW_YORK, "2030-03-08", 14, 13, id="new-york-spring"),
     pytest.param(NEW_YORK, "2030-11-01", 13, 14, id="new-york-autumn")],
)
def test_a_nine_oclock_slot_stays_nine_local_across_dst(zone: ZoneInfo, first_day: str, utc_before: int,
                                                        utc_after: int) -> None:
    availability = Availability(weekly=weekly(range(7), "09:00", "10:00"))
    start = utc(first_day + "T00:00")
    slots = generate_slots(availability, HOUR, zone, start, start + timedelta(days=4))
    assert [s.start.astimezone(zone).strftime("%H:%M") for s in slots] == ["09:00"] * 4
    assert [s.start.hour for s in slots] == [utc_before, utc_before, utc_after, utc_after]
    assert_well_formed(slots, HOUR)


@pytest.mark.parametrize(
    ("zone", "day", "opens", "closes", "expected_local"),
    [pytest.param(LONDON, "2030-03-31", "00:00", "03:00", ["00:00", "00:30", "02:00", "02:30"], id="london"),
     pytest.param(NEW_YORK, "2030-03-10", "01:00", "04:00", ["01:00", "01:30", "03:00", "03:30"], id="new-york")],
)
def test_local_starts_inside_the_spring_gap_are_skipped(zone: ZoneInfo, day: str, opens: str, closes: str,
                                                        expected_local: list[str]) -> None:
    availability = Availability(weekly=weekly([6], opens, closes))  # both days are Sundays
    grid = SlotGrid(duration=timedelta(minutes=30))
    start = datetime.combine(date.fromisoformat(day), time(0), tzinfo=zone) - timedelta(hours=6)
    slots = generate_slots(availability, grid, zone, start, start + timedelta(days=1))
    assert [s.start.astimezone(zone).strftime("%H:%M") for s in slots] == expected_local
    # The slot before the gap ends at the very instant the one after it starts.
    assert slots[1].end == slots[2].start
    assert_well_formed(slots, grid)


@pytest.mark.parametrize(
    ("zone", "day", "utc_starts"),
    [pytest.param(LONDON, "2030-10-27", ["23:00", "23:30", "00:00", "00:30", "02:00", "02:30"], id="london"),
     pytest.param(NEW_YORK, "2030-11-03", ["04:00", "04:30", "05:00", "05:30", "07:00", "07:30"], id="new-york")],
)
def test_ambiguous_local_starts_happen_once_at_their_first_occurrence(zone: ZoneInfo, day: str,
                                                                      utc_starts: list[str]) -> None:
    availability = Availability(weekly=weekly([6], "00:00", "03:00"))
    grid = SlotGrid(duration=timedelta(minutes=30))
    start = datetime.combine(date.fromisoformat(day), time(0), tzinfo=zone) - timedelta(hours=6)
    slots = generate_slots(availability, grid, zone, start, start + timedelta(days=1))
    assert [s.start.strftime("%H:%M") for s in slots] == utc_starts
    local = [s.start.astimezone(zone) for s in slots]
    assert [t.strftime("%H:%M") for t in local] == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30"]
    assert [t.fold for t in local] == [0] * 6  # 01:00 and 01:30 are the first (summer-time) occurrences
    assert_well_formed(slots, grid)


def test_a_slot_that_would_span_the_spring_gap_is_skipped_so_slots_never_overlap() -> None:
    """00:30 + 90 min reads 02:00 on the wall but really ends at 03:00 BST, inside the 02:00 slot."""
    availability = Availability(weekly=weekly([6], "00:30", "05:00"))
    grid = SlotGrid(duration=timedelta(minutes=90))
    slots = generate_slots(availability, grid, LONDON, utc("2030-03-30T12:00"), utc("2030-03-31T12:00"))
    assert [s.start.astimezone(LONDON).strftime("%H:%M") for s in slots] == ["02:00", "03:30"]
    assert slots[-1].end.astimezone(LONDON).strftime("%H:%M") == "05:00"
    assert_well_formed(slots, grid)
    # The same window a week earlier, without a gap, keeps all three.
    earlier = generate_slots(availability, grid, LONDON, utc("2030-03-23T12:00"), utc("2030-03-24T12:00"))
    assert [s.start.astimezone(LONDON).strftime("%H:%M") for s in earlier] == ["00:30", "02:00", "03:30"]


def test_a_slot_spanning_the_autumn_fold_is_kept() -> None:
    availability = Availability(weekly=weekly([6], "00:00", "03:00"))
    grid = SlotGrid(duration=timedelta(minutes=90))
    slots = generate_slots(availability, grid, LONDON, utc("2030-10-26T12:00"), utc("2030-10-27T12:00"))
    # 00:00 BST ends at 01:30 BST; the next start is that first 01:30, which ends at 02:00 GMT.
    assert [(s.start.strftime("%H:%M"), s.end.strftime("%H:%M")) for s in slots] == [
        ("23:00", "00:30"), ("00:30", "02:00")]
    assert_well_formed(slots, grid)


# --- is_slot_start ------------------------------------------------------------------------------


def test_is_slot_start_matches_exactly_the_generated_starts() -> None:
    availability = Availability(weekly=weekly(WEEKDAYS, "09:00", "17:00"),
                                overrides=(DateOverride(date(2030, 1, 9), OverrideKind.CLOSED),))
    grid = SlotGrid(duration=timedelta(minutes=45), buffer_after=timedelta(minutes=15))
    slots = generate_slots(availability, grid, LONDON, utc("2030-01-07T00:00"), utc("2030-01-14T00:00"))
    assert slots
    for slot in slots:
        assert is_slot_start(availability, grid, LONDON, slot.start)
        assert is_slot_start(availability, grid, LONDON, slot.start.astimezone(LONDON))  # any aware form
        assert not is_slot_start(availability, grid, LONDON, slot.start + timedelta(minutes=1))
        assert not is_slot_start(availability, grid, LONDON, slot.start + timedelta(microseconds=1))
    assert not is_slot_start(availability, grid, LONDON, utc("2030-01-09T09:00"))  # closed that day
    assert not is_slot_start(availability, grid, LONDON, utc("2030-01-12T09:00"))  # a Saturday
    assert not is_slot_start(availability, grid, LONDON, utc("2030-01-07T08:00"))  # before opening
    assert not is_slot_start(availability, grid, LONDON, utc("2030-01-07T16:30"))  # off the hourly grid


def test_is_slot_start_skips_the_gap_and_takes_the_first_of_a_fold() -> None:
    availability = Availability(weekly=weekly([6], "00:00", "03:00"))
    grid = SlotGrid(duration=timedelta(minutes=30))
    spring = [utc("2030-03-30T23:00") + timedelta(minutes=m) for m in range(0, 300)]
    # 00:00 and 00:30 GMT, then 02:00 and 02:30 BST (= 01:00 and 01:30 UTC); nothing for the lost hour.
    assert [t.strftime("%H:%M") for t in spring if is_slot_start(availability, grid, LONDON, t)] == [
        "00:00", "00:30", "01:00", "01:30"]
    assert is_slot_start(availability, grid, LONDON, utc("2030-10-27T00:30"))  # 01:30 BST, first occurrence
    assert not is_slot_start(availability, grid, LONDON, utc("2030-10-27T01:30"))  # 01:30 GMT, the second


# --- validation ---------------------------------------------------------------------------------


def violations(found: list[FieldViolation]) -> dict[str, str]:
    return {v.field: v.reason for v in found}


def test_a_sound_availability_has_no_violations() -> None:
    availability = Availability(
        weekly=(*weekly(WEEKDAYS, "09:00", "12:00"), *weekly(WEEKDAYS, "12:00", "17:00"),
                *weekly([5], "00:00", "24:00")),
        overrides=(DateOverride(date(2030, 1, 7), OverrideKind.EXTRA, (rng("17:00", "18:00"), rng("08:00", "09:00"))),
                   DateOverride(date(2030, 1, 8), OverrideKind.HOURS, (rng("10:00", "11:00"),)),
                   DateOverride(date(2030, 1, 9), OverrideKind.CLOSED)))
    assert validate_availability(availability) == []
    assert validate_availability(Availability()) == []


@pytest.mark.parametrize(
    ("availability", "expected"),
    [
        pytest.param(Availability(weekly=weekly([0], "12:00", "09:00")),
                     {"availability.weekly_windows[0].hours": "INVERTED_WINDOW"}, id="inverted"),
        pytest.param(Availability(weekly=weekly([0], "09:00", "09:00")),
                     {"availability.weekly_windows[0].hours": "INVERTED_WINDOW"}, id="empty"),
        pytest.param(Availability(weekly=(WeeklyWindow(0, TimeRange(-1, 60)),)),
                     {"availability.weekly_windows[0].hours.start_time": "INVALID_VALUE"}, id="start-negative"),
        pytest.param(Availability(weekly=(WeeklyWindow(0, TimeRange(1440, 1441)),)),
                     {"availability.weekly_windows[0].hours.start_time": "INVALID_VALUE",
                      "availability.weekly_windows[0].hours.end_time": "INVALID_VALUE"}, id="past-midnight"),
        pytest.param(Availability(weekly=(WeeklyWindow(0, TimeRange(60, 1500)),)),
                     {"availability.weekly_windows[0].hours.end_time": "INVALID_VALUE"}, id="25-oclock"),
        pytest.param(Availability(weekly=weekly([7], "09:00", "10:00")),
                     {"availability.weekly_windows[0].day_of_week": "INVALID_VALUE"}, id="weekday-7"),
        pytest.param(Availability(weekly=weekly([-1], "09:00", "10:00")),
                     {"availability.weekly_windows[0].day_of_week": "INVALID_VALUE"}, id="weekday-minus-1"),
        pytest.param(Availability(weekly=(*weekly([0], "09:00", "12:00"), *weekly([0], "11:00", "13:00"))),
                     {"availability.weekly_windows[1]": "OVERLAPPING_WINDOWS"}, id="overlapping"),
        pytest.param(Availability(weekly=(*weekly([2], "09:00", "17:00"), *weekly([1], "10:00", "11:00"),
                                          *weekly([2], "10:00", "11:00"))),
                     {"availability.weekly_windows[2]": "OVERLAPPING_WINDOWS"}, id="contained"),
        pytest.param(Availability(weekly=weekly(range(7), "09:00", "10:00") * 8),
                     {"availability.weekly_windows": "TOO_MANY"}, id="56-windows"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.CLOSED),
                                             DateOverride(date(2030, 1, 7), OverrideKind.CLOSED))),
                     {"availability.overrides[1].date": "DUPLICATE_OVERRIDE"}, id="duplicate-date"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.CLOSED,
                                                          (rng("09:00", "10:00"),)),)),
                     {"availability.overrides[0].hours": "INVALID_VALUE"}, id="closed-with-hours"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.HOURS),)),
                     {"availability.overrides[0].hours": "INVALID_VALUE"}, id="hours-without-hours"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.EXTRA),)),
                     {"availability.overrides[0].hours": "INVALID_VALUE"}, id="extra-without-hours"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.HOURS,
                                                          (rng("09:00", "11:00"), rng("10:00", "12:00"))),)),
                     {"availability.overrides[0].hours[1]": "OVERLAPPING_WINDOWS"}, id="override-overlap"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.HOURS,
                                                          (rng("11:00", "10:00"),)),)),
                     {"availability.overrides[0].hours[0]": "INVERTED_WINDOW"}, id="override-inverted"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.HOURS,
                                                          (TimeRange(0, 1441),)),)),
                     {"availability.overrides[0].hours[0].end_time": "INVALID_VALUE"}, id="override-bounds"),
        pytest.param(Availability(weekly=weekly([0], "09:00", "17:00"),
                                  overrides=(DateOverride(date(2030, 1, 7), OverrideKind.EXTRA,
                                                          (rng("16:00", "18:00"),)),)),
                     {"availability.overrides[0].hours[0]": "OVERLAPPING_WINDOWS"}, id="extra-overlaps-weekly"),
        pytest.param(Availability(overrides=(DateOverride(date(2030, 1, 7), OverrideKind.HOURS,
                                                          tuple(TimeRange(m, m + 10) for m in range(0, 110, 10))),)),
                     {"availability.overrides[0].hours": "TOO_MANY"}, id="11-ranges"),
        pytest.param(Availability(overrides=tuple(DateOverride(date(2030, 1, 1) + timedelta(days=i),
                                                               OverrideKind.CLOSED) for i in range(367))),
                     {"availability.overrides": "TOO_MANY"}, id="367-overrides"),
    ],
)
def test_each_availability_rule_names_its_field_and_reason(availability: Availability,
                                                           expected: dict[str, str]) -> None:
    assert violations(validate_availability(availability)) == expected


def test_bounds_are_inclusive_and_touching_is_not_overlapping() -> None:
    fifty = tuple(WeeklyWindow(day, TimeRange(h * 60, h * 60 + 60)) for day in range(7) for h in range(7))
    availability = Availability(
        weekly=(*fifty, *weekly([0], "23:00", "24:00")),
        overrides=tuple(DateOverride(date(2030, 1, 1) + timedelta(days=i), OverrideKind.CLOSED) for i in range(366)))
    assert len(availability.weekly) == 50
    assert validate_availability(availability) == []
    ten = DateOverride(date(2030, 1, 7), OverrideKind.HOURS, tuple(TimeRange(m, m + 10) for m in range(0, 100, 10)))
    extra = DateOverride(date(2030, 1, 8), OverrideKind.EXTRA, (rng("17:00", "18:00"), rng("08:00", "09:00")))
    assert validate_availability(Availability(weekly=weekly([1], "09:00", "17:00"), overrides=(ten, extra))) == []


def test_the_prefix_is_prepended_and_every_problem_is_reported_at_once() -> None:
    availability = Availability(weekly=(*weekly([9], "09:00", "10:00"), *weekly([0], "12:00", "11:00")),
                                overrides=(DateOverride(date(2030, 1, 7), OverrideKind.HOURS),))
    assert violations(validate_availability(availability, prefix="request.availability")) == {
        "request.availability.weekly_windows[0].day_of_week": "INVALID_VALUE",
        "request.availability.weekly_windows[1].hours": "INVERTED_WINDOW",
        "request.availability.overrides[0].hours": "INVALID_VALUE"}
    assert violations(validate_availability(availability, prefix="")) == {
        "weekly_windows[0].day_of_week": "INVALID_VALUE", "weekly_windows[1].hours": "INVERTED_WINDOW",
        "overrides[0].hours": "INVALID_VALUE"}
    assert all(v.description for v in validate_availability(availability))


@pytest.mark.parametrize(
    ("grid", "fields"),
    [
        pytest.param(SlotGrid(timedelta(minutes=5)), set(), id="5-minutes"),
        pytest.param(SlotGrid(timedelta(hours=24), timedelta(hours=24), timedelta(hours=24)), set(), id="maxima"),
        pytest.param(SlotGrid(timedelta(minutes=4)), {"duration"}, id="4-minutes"),
        pytest.param(SlotGrid(timedelta(hours=24, minutes=1)), {"duration"}, id="over-a-day"),
        pytest.param(SlotGrid(timedelta(minutes=30, seconds=1)), {"duration"}, id="not-whole-minutes"),
        pytest.param(SlotGrid(timedelta(0)), {"duration"}, id="zero"),
        pytest.param(SlotGrid(timedelta(minutes=30), buffer_before=timedelta(minutes=-5)), {"buffer_before"},
                     id="negative-buffer"),
        pytest.param(SlotGrid(timedelta(minutes=30), buffer_after=timedelta(seconds=30)), {"buffer_after"},
                     id="buffer-seconds"),
        pytest.param(SlotGrid(timedelta(minutes=30), buffer_after=timedelta(hours=25)), {"buffer_after"},
                     id="buffer-too-long"),
    ],
)
def test_grid_validation(grid: SlotGrid, fields: set[str]) -> None:
    found = validate_grid(grid)
    assert {v.field for v in found} == fields
    assert {v.reason for v in found} <= {"INVALID_VALUE"}
    assert {v.field for v in validate_grid(grid, prefix="service")} == {f"service.{f}" for f in fields}


# --- properties ---------------------------------------------------------------------------------

ZONES = [ZoneInfo(name) for name in (
    "UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata",
    "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Santiago", "America/Havana", "Pacific/Apia",
    "Asia/Tehran")]
# Days around DST changes (and Samoa's skipped 2011-12-30) are the interesting ones.
ANCHORS = [datetime(2011, 12, 28, tzinfo=UTC), datetime(2030, 3, 8, tzinfo=UTC), datetime(2030, 3, 29, tzinfo=UTC),
           datetime(2030, 4, 5, tzinfo=UTC), datetime(2030, 9, 6, tzinfo=UTC), datetime(2030, 10, 25, tzinfo=UTC),
           datetime(2030, 11, 1, tzinfo=UTC), datetime(2031, 1, 10, tzinfo=UTC)]


@st.composite
def ranges(draw: st.DrawFn, *, min_size: int = 0, max_size: int = 3) -> list[TimeRange]:
    """Sorted, pairwise non-overlapping (possibly touching) ranges on a 15-minute raster."""
    if draw(st.integers(0, 4)) == 0:
        return [TimeRange(0, 1440)]  # open all day: every DST change of the zone falls inside
    count = draw(st.integers(min_size, max_size))
    cuts = sorted(draw(st.lists(st.integers(0, 96), min_size=2 * count, max_size=2 * count, unique=True)))
    found = [TimeRange(cuts[i] * 15, cuts[i + 1] * 15) for i in range(0, len(cuts), 2)]
    if len(found) >= 2 and draw(st.booleans()):  # make one pair touch
        found[1] = TimeRange(found[0].end_minute, found[1].end_minute)
    return found


@st.composite
def availabilities(draw: st.DrawFn, first_day: date) -> Availability:
    weekly_windows = tuple(WeeklyWindow(day, r) for day in range(7) for r in draw(ranges()))
    overrides = []
    for offset in draw(st.lists(st.integers(-1, 12), unique=True, max_size=4)):
        day = first_day + timedelta(days=offset)
        kind = draw(st.sampled_from(OverrideKind))
        if kind is OverrideKind.CLOSED:
            overrides.append(DateOverride(day, kind))
            continue
        if kind is OverrideKind.HOURS:
            hours = draw(ranges(min_size=1))
        else:  # EXTRA: only in the gaps of that weekday's weekly ranges
            taken = [w.hours for w in weekly_windows if w.weekday == day.weekday()]
            hours = [r for r in draw(ranges(min_size=1)) if not any(r.overlaps(t) for t in taken)]
            if not hours:
                continue
        overrides.append(DateOverride(day, kind, tuple(hours)))
    return Availability(weekly=weekly_windows, overrides=tuple(overrides))


grids = st.builds(
    SlotGrid,
    duration=st.integers(1, 48).map(lambda n: timedelta(minutes=5 * n)),
    buffer_before=st.sampled_from([0, 0, 5, 15, 30]).map(lambda m: timedelta(minutes=m)),
    buffer_after=st.sampled_from([0, 0, 10, 45]).map(lambda m: timedelta(minutes=m)),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Availability, SlotGrid, ZoneInfo, datetime, datetime]:
    start = draw(st.sampled_from(ANCHORS)) + timedelta(minutes=draw(st.integers(0, 3 * 1440)))
    end = start + timedelta(minutes=draw(st.integers(0, 6 * 1440)))
    availability = draw(availabilities(start.date()))
    assert validate_availability(availability) == []
    return availability, draw(grids), draw(st.sampled_from(ZONES)), start, end


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_generated_slots_are_sorted_disjoint_in_range_and_on_the_grid(
        scenario: tuple[Availability, SlotGrid, ZoneInfo, datetime, datetime]) -> None:
    availability, grid, zone, start, end = scenario
    slots = generate_slots(availability, grid, zone, start, end)
    assert all(start <= s.start < end for s in slots)
    assert all(a.start < b.start for a, b in pairwise(slots))
    assert_well_formed(slots, grid)
    step = grid.step // timedelta(minutes=1)
    duration = grid.duration // timedelta(minutes=1)
    for slot in slots:
        local = slot.start.astimezone(zone)
        assert local.fold == 0  # an ambiguous wall time is taken at its first occurrence
        minute = local.hour * 60 + local.minute
        assert any(w.start_minute <= minute and minute + duration <= w.end_minute
                   and (minute - w.start_minute) % step == 0
                   for w in day_windows(availability, local.date())), (local, day_windows(availability, local.date()))


@PROPERTY
@given(scenarios(), st.data())
def test_is_slot_start_agrees_with_generate_slots_and_ranges_split_cleanly(
        scenario: tuple[Availability, SlotGrid, ZoneInfo, datetime, datetime], data: st.DataObject) -> None:
    availability, grid, zone, start, end = scenario
    slots = generate_slots(availability, grid, zone, start, end)
    starts = {s.start for s in slots}
    probes = [s.start for s in slots[:20]] + [s.start + timedelta(minutes=1) for s in slots[:5]]
    probes += [start + timedelta(minutes=data.draw(st.integers(0, 6 * 1440)) * 5) for _ in range(10)]
    for probe in probes:
        if start <= probe < end:
            assert is_slot_start(availability, grid, zone, probe) == (probe in starts), probe
    middle = start + (end - start) / 2
    assert generate_slots(availability, grid, zone, start, middle) + \
        generate_slots(availability, grid, zone, middle, end) == slots


DST_CHANGES = [(LONDON, datetime(2030, 3, 31, tzinfo=UTC)), (LONDON, datetime(2030, 10, 27, tzinfo=UTC)),
               (NEW_YORK, datetime(2030, 3, 10, tzinfo=UTC)), (NEW_YORK, datetime(2030, 11, 3, tzinfo=UTC)),
               (ZoneInfo("Australia/Lord_Howe"), datetime(2030, 4, 6, tzinfo=UTC)),  # a 30-minute change
               (ZoneInfo("Australia/Lord_Howe"), datetime(2030, 10, 5, tzinfo=UTC)),
               (ZoneInfo("America/Havana"), datetime(2030, 3, 10, tzinfo=UTC)),  # midnight does not exist
               (ZoneInfo("Pacific/Apia"), datetime(2011, 12, 29, tzinfo=UTC))]  # a whole day skipped


@PROPERTY
@given(st.sampled_from(DST_CHANGES), grids, st.integers(0, 4))
def test_slots_open_all_day_stay_disjoint_across_every_clock_change(
        change: tuple[ZoneInfo, datetime], grid: SlotGrid, opens_quarter: int) -> None:
    """The grid is wall-clock; a slot straddling a spring gap would otherwise run into the next one."""
    zone, day = change
    availability = Availability(weekly=tuple(WeeklyWindow(d, TimeRange(opens_quarter * 15, 1440)) for d in range(7)))
    slots = generate_slots(availability, grid, zone, day - timedelta(days=2), day + timedelta(days=2))
    assert slots
    assert_well_formed(slots, grid)
    assert all(is_slot_start(availability, grid, zone, s.start) for s in slots[::5])
