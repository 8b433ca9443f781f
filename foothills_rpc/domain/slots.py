"""Availability and the slot grid: which instants a service can be booked at.

Providers think in local wall-clock time ("Mondays 09:00-17:00 in Europe/London"); bookings are
stored as UTC instants. This module is the one place that turns the first into the second, so the
daylight-saving rules live here and nowhere else:

- a local start that does not exist (the spring-forward gap) is skipped;
- an ambiguous local start (the fall-back hour) takes its first occurrence (fold=0);
- a slot whose real end would fall later than its wall-clock end (it spans a spring-forward gap and
  would run into the next slot or past its window) is skipped, so slots never overlap.

Pure: no clock, no database; time comes in as arguments.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from foothills_rpc.domain.errors import FieldViolation

MINUTES_PER_DAY = 1440
MAX_WEEKLY_WINDOWS = 50
MAX_OVERRIDES = 366
MAX_RANGES_PER_OVERRIDE = 10
MIN_DURATION = timedelta(minutes=5)
MAX_DURATION = timedelta(hours=24)
MAX_BUFFER = timedelta(hours=24)
_MINUTE = timedelta(minutes=1)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class TimeRange:
    """A local wall-clock range within one day, in minutes after local midnight; end is exclusive.

    Minutes rather than `datetime.time` because a range may end at 24:00, which `time` cannot say.
    """

    start_minute: int  # 0..1439
    end_minute: int  # 1..1440, > start_minute

    def overlaps(self, other: TimeRange) -> bool:
        """True when the ranges share a minute; touching ranges (09:00-12:00, 12:00-17:00) do not."""
        return self.start_minute < other.end_minute and other.start_minute < self.end_minute

    def is_valid(self) -> bool:
        return 0 <= self.start_minute < self.end_minute <= MINUTES_PER_DAY

    def __str__(self) -> str:
        return f"{_clock(self.start_minute)}-{_clock(self.end_minute)}"


@dataclass(frozen=True)
class WeeklyWindow:
    """Recurring opening hours on one weekday (0=Monday .. 6=Sunday, as `date.weekday()`)."""

    weekday: int
    hours: TimeRange


class OverrideKind(enum.StrEnum):
    CLOSED = "closed"  # no slots that day
    HOURS = "hours"  # these ranges replace the weekly ones that day
    EXTRA = "extra"  # these ranges are added to the weekly ones that day


@dataclass(frozen=True)
class DateOverride:
    """An exception to the weekly pattern on one local date of the service's zone."""

    day: date
    kind: OverrideKind
    hours: tuple[TimeRange, ...] = ()  # empty for CLOSED, non-empty otherwise


@dataclass(frozen=True)
class Availability:
    """When a service runs: a weekly pattern plus per-date exceptions."""

    weekly: tuple[WeeklyWindow, ...] = ()
    overrides: tuple[DateOverride, ...] = ()


@dataclass(frozen=True)
class SlotGrid:
    """How windows are cut into slots: each step is buffer + duration + buffer, all whole minutes."""

    duration: timedelta
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)

    @property
    def step(self) -> timedelta:
        return self.duration + self.buffer_before + self.buffer_after


@dataclass(frozen=True)
class Slot:
    """One bookable interval: UTC instants, `end = start + duration` in absolute time."""

    start: datetime
    end: datetime


# --- validation ---------------------------------------------------------------------------------


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _range_violations(hours: TimeRange, path: str) -> list[FieldViolation]:
    """Bounds first; only a range with both ends in bounds can be called inverted."""
    found = []
    if not 0 <= hours.start_minute < MINUTES_PER_DAY:
        found.append(FieldViolation(f"{path}.start_time", "must be a time of day from 00:00 to 23:59"))
    if not 0 < hours.end_minute <= MINUTES_PER_DAY:
        found.append(FieldViolation(f"{path}.end_time", "must be a time of day from 00:01 to 24:00"))
    if not found and hours.start_minute >= hours.end_minute:
        found.append(FieldViolation(path, f"must start before it ends ({hours} is empty or inverted)",
                                    "INVERTED_WINDOW"))
    return found


def validate_availability(availability: Availability, prefix: str = "availability") -> list[FieldViolation]:
    """Every problem of `availability`, so a provider fixes them all in one round trip.

    Paths follow the proto: `weekly_windows[i].hours.end_time`, `overrides[i].hours[j]`, ...
    Lists over their bound are reported once (TOO_MANY) and not inspected item by item, which also
    keeps the quadratic overlap checks bounded.
    """
    found: list[FieldViolation] = []
    weekly_ok: dict[int, list[tuple[int, TimeRange]]] = {}
    if len(availability.weekly) > MAX_WEEKLY_WINDOWS:
        found.append(FieldViolation(_path(prefix, "weekly_windows"),
                                    f"must have at most {MAX_WEEKLY_WINDOWS} windows", "TOO_MANY"))
    else:
        for i, window in enumerate(availability.weekly):
            path = _path(prefix, f"weekly_windows[{i}]")
            problems = _range_violations(window.hours, f"{path}.hours")
            found.extend(problems)
            if not 0 <= window.weekday <= 6:
                found.append(FieldViolation(f"{path}.day_of_week", "must be a day from Monday to Sunday"))
                continue
            if problems:
                continue
            same_day = weekly_ok.setdefault(window.weekday, [])
            for j, earlier in same_day:
                if window.hours.overlaps(earlier):
                    found.append(FieldViolation(
                        path, f"overlaps weekly_windows[{j}] ({_WEEKDAY_NAMES[window.weekday]} {earlier})",
                        "OVERLAPPING_WINDOWS"))
                    break
            same_day.append((i, window.hours))

    if len(availability.overrides) > MAX_OVERRIDES:
        found.append(FieldViolation(_path(prefix, "overrides"),
                                    f"must have at most {MAX_OVERRIDES} overrides", "TOO_MANY"))
        return found
    seen: dict[date, int] = {}
    for i, override in enumerate(availability.overrides):
        path = _path(prefix, f"overrides[{i}]")
        if override.day in seen:
            found.append(FieldViolation(f"{path}.date", f"repeats the date of overrides[{seen[override.day]}]",
                                        "DUPLICATE_OVERRIDE"))
        else:
            seen[override.day] = i
        found.extend(_override_violations(override, path, weekly_ok.get(override.day.weekday(), [])))
    return found


def _override_violations(override: DateOverride, path: str,
                         weekly: list[tuple[int, TimeRange]]) -> list[FieldViolation]:
    if override.kind is OverrideKind.CLOSED:
        if override.hours:
            return [FieldViolation(f"{path}.hours", "must be empty for a CLOSED override")]
        return []
    if not override.hours:
        return [FieldViolation(f"{path}.hours", f"is required for a {override.kind.name} override")]
    if len(override.hours) > MAX_RANGES_PER_OVERRIDE:
        return [FieldViolation(f"{path}.hours", f"must have at most {MAX_RANGES_PER_OVERRIDE} ranges", "TOO_MANY")]
    found: list[FieldViolation] = []
    valid: list[tuple[int, TimeRange]] = []
    for j, hours in enumerate(override.hours):
        range_path = f"{path}.hours[{j}]"
        problems = _range_violations(hours, range_path)
        found.extend(problems)
        if problems:
            continue
        clash = next((k for k, earlier in valid if hours.overlaps(earlier)), None)
        if clash is not None:
            found.append(FieldViolation(range_path, f"overlaps hours[{clash}] of the same override",
                                        "OVERLAPPING_WINDOWS"))
        elif override.kind is OverrideKind.EXTRA:
            weekly_clash = next((k for k, w in weekly if hours.overlaps(w)), None)
            if weekly_clash is not None:
                found.append(FieldViolation(
                    range_path, f"overlaps weekly_windows[{weekly_clash}] on that weekday; extra hours must be "
                    "outside the weekly ones", "OVERLAPPING_WINDOWS"))
        valid.append((j, hours))
    return found


def validate_grid(grid: SlotGrid, prefix: str = "") -> list[FieldViolation]:
    """Duration 5 minutes to 24 hours, buffers 0 to 24 hours, all whole minutes."""
    found = []
    if not MIN_DURATION <= grid.duration <= MAX_DURATION or grid.duration % _MINUTE:
        found.append(FieldViolation(_path(prefix, "duration"), "must be whole minutes from 5 minutes to 24 hours"))
    for name, value in (("buffer_before", grid.buffer_before), ("buffer_after", grid.buffer_after)):
        if not timedelta(0) <= value <= MAX_BUFFER or value % _MINUTE:
            found.append(FieldViolation(_path(prefix, name), "must be whole minutes from 0 to 24 hours"))
    return found


# --- the grid -----------------------------------------------------------------------------------


def _overrides_by_day(availability: Availability) -> dict[date, DateOverride]:
    """The first override of each date wins (validation refuses a second one anyway)."""
    index: dict[date, DateOverride] = {}
    for override in availability.overrides:
        index.setdefault(override.day, override)
    return index


def _effective(availability: Availability, overrides: dict[date, DateOverride], day: date) -> list[TimeRange]:
    override = overrides.get(day)
    weekly = [w.hours for w in availability.weekly if w.weekday == day.weekday()]
    if override is None:
        ranges = weekly
    elif override.kind is OverrideKind.CLOSED:
        ranges = []
    elif override.kind is OverrideKind.HOURS:
        ranges = list(override.hours)
    else:
        ranges = weekly + list(override.hours)
    return sorted(ranges, key=lambda r: (r.start_minute, r.end_minute))


def day_windows(availability: Availability, day: date) -> list[TimeRange]:
    """The effective ranges of one local date after overrides, sorted by start."""
    return _effective(availability, _overrides_by_day(availability), day)


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The first occurrence of a naive local wall time, or None when the wall clock skips it."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def _first_instant_at_or_after(wall: datetime, zone: ZoneInfo) -> datetime:
    """Like `_to_utc`, but a skipped wall time counts as the first existing minute after it."""
    probe = wall
    limit = wall + timedelta(days=2)  # gaps are an hour or so; Samoa once skipped a whole day
    while probe <= limit:
        instant = _to_utc(probe, zone)
        if instant is not None:
            return instant
        probe += _MINUTE
    raise ValueError(f"no existing local time within two days after {wall} in {zone}")  # pragma: no cover


def _grid_minutes(grid: SlotGrid) -> tuple[int, int]:
    if validate_grid(grid):
        raise ValueError(f"invalid slot grid: {grid}")
    return grid.duration // _MINUTE, grid.step // _MINUTE


def _slot_at(wall: datetime, grid: SlotGrid, zone: ZoneInfo) -> Slot | None:
    """The slot of a grid position (a naive local start), or None when DST rules it out."""
    start = _to_utc(wall, zone)
    if start is None:
        return None  # the spring-forward gap: this local time never happens
    end = start + grid.duration
    if end > _first_instant_at_or_after(wall + grid.duration, zone):
        return None  # spans a gap: it would really end later than its wall-clock end
    return Slot(start=start, end=end)


def _day_slots(ranges: list[TimeRange], day: date, grid: SlotGrid, zone: ZoneInfo) -> list[Slot]:
    duration, step = _grid_minutes(grid)
    midnight = datetime.combine(day, time(0))
    slots = []
    for hours in ranges:
        if not hours.is_valid():
            continue  # stored data that validation would refuse yields nothing rather than nonsense
        for minute in range(hours.start_minute, hours.end_minute - duration + 1, step):
            # Naive arithmetic is wall-clock arithmetic.
            if (slot := _slot_at(midnight + timedelta(minutes=minute), grid, zone)) is not None:
                slots.append(slot)
    return slots


def _require_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


def generate_slots(availability: Availability, grid: SlotGrid, zone: ZoneInfo, start: datetime,
                   end: datetime) -> list[Slot]:
    """The slots whose start lies in [start, end), sorted by start, in UTC.

    Inside each effective range of a local date, starts are `range.start + k * step` while
    `start + duration <= range.end` on the wall clock. Local dates are walked from the day before
    `start`'s to the day after `end`'s, because a zone far from UTC puts a UTC instant on another date.
    """
    _require_aware(start=start, end=end)
    if end <= start:
        return []
    overrides = _overrides_by_day(availability)
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    found: dict[datetime, Slot] = {}
    day = first
    while day <= last:
        for slot in _day_slots(_effective(availability, overrides, day), day, grid, zone):
            if start <= slot.start < end:
                found.setdefault(slot.start, slot)
        day += timedelta(days=1)
    return [found[key] for key in sorted(found)]


def is_slot_start(availability: Availability, grid: SlotGrid, zone: ZoneInfo, instant: datetime) -> bool:
    """Whether `instant` is exactly one of `generate_slots`' starts.

    Checks only the instant's own grid position (its local wall time) instead of generating a day,
    through the same `_slot_at`, so the two cannot disagree.
    """
    _require_aware(instant=instant)
    duration, step = _grid_minutes(grid)
    wall = instant.astimezone(zone).replace(tzinfo=None, fold=0)
    if wall.second or wall.microsecond:
        return False
    minute = wall.hour * 60 + wall.minute
    on_grid = any(r.is_valid() and r.start_minute <= minute and minute + duration <= r.end_minute
                  and (minute - r.start_minute) % step == 0 for r in day_windows(availability, wall.date()))
    slot = _slot_at(wall, grid, zone) if on_grid else None
    return slot is not None and slot.start == instant
