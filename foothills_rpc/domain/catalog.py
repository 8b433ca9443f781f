"""Services and categories: their fields, their limits, and the settings that are in force."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cache

from foothills_rpc.domain.cancellation import CancellationPolicy, validate_cancellation
from foothills_rpc.domain.errors import Collector
from foothills_rpc.domain.limits import MAX_BOOKINGS_LIMIT, MAX_RESCHEDULES, BookingLimits
from foothills_rpc.domain.pricing import PricingPolicy, validate_currency, validate_pricing
from foothills_rpc.domain.slots import SlotGrid, validate_grid

MAX_CATEGORY_NAME = 80
MAX_CATEGORY_DESCRIPTION = 2000
MAX_SERVICE_NAME = 120
MAX_SERVICE_DESCRIPTION = 5000
MAX_CAPACITY = 10_000
MAX_PRICE_MINOR = 100_000_000
MAX_NOTICE = timedelta(days=90)
MAX_DAYS_AHEAD = 730
DEFAULT_HOLD = timedelta(minutes=5)
MIN_HOLD = timedelta(minutes=1)
MAX_HOLD = timedelta(hours=1)
DEFAULT_OFFER = timedelta(minutes=15)
MAX_OFFER = timedelta(hours=24)
MAX_REMINDERS = 5
MAX_REMINDER = timedelta(days=30)


@dataclass(frozen=True)
class BookingSettings:
    """A service's own booking rules; None means: the platform default applies."""

    minimum_notice: timedelta | None = None
    maximum_days_ahead: int | None = None
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    requires_approval: bool = False
    # How long a hold keeps its seats; None: DEFAULT_HOLD.
    hold_duration: timedelta | None = None
    limits: BookingLimits = field(default_factory=BookingLimits)
    max_reschedules: int | None = None
    max_reschedule_distance: timedelta | None = None
    # How long a waitlist offer holds its seats; None: DEFAULT_OFFER.
    waitlist_offer_duration: timedelta | None = None
    # How long before the start customers are reminded, longest first; None: the platform's default.
    reminders: tuple[timedelta, ...] | None = None

    @property
    def offer(self) -> timedelta:
        return DEFAULT_OFFER if self.waitlist_offer_duration is None else self.waitlist_offer_duration

    @property
    def hold(self) -> timedelta:
        return DEFAULT_HOLD if self.hold_duration is None else self.hold_duration


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a provider or admin decides about a service."""

    display_name: str
    description: str
    duration: timedelta
    capacity: int
    base_price_minor: int
    currency: str
    time_zone: str
    booking: BookingSettings = field(default_factory=BookingSettings)
    cancellation: CancellationPolicy = field(default_factory=CancellationPolicy)
    pricing: PricingPolicy = field(default_factory=PricingPolicy)
    runs_without_provider: bool = False

    @property
    def grid(self) -> SlotGrid:
        return SlotGrid(duration=self.duration, buffer_before=self.booking.buffer_before,
                        buffer_after=self.booking.buffer_after)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def text_problem(value: str, *, maximum: int, required: bool) -> str | None:
    if required and not value.strip():
        return "is required"
    if len(value) > maximum:
        return f"must be at most {maximum} characters"
    if any(not ch.isprintable() and ch not in "\n\t" for ch in value):
        return "must not contain control characters"
    return None


def check_seats(seats: int, errors: Collector, field: str = "seats") -> None:
    """Seats asked for in one request: 0 means 1; never more than any slot can have."""
    if not 0 <= seats <= MAX_CAPACITY:
        errors.add(field, f"must be between 1 and {MAX_CAPACITY} (0 means 1)")


def validate_category(display_name: str, description: str, errors: Collector, prefix: str = "category") -> None:
    if problem := text_problem(display_name, maximum=MAX_CATEGORY_NAME, required=True):
        errors.add(f"{prefix}.display_name", problem)
    if problem := text_problem(description, maximum=MAX_CATEGORY_DESCRIPTION, required=False):
        errors.add(f"{prefix}.description", problem)


def validate_service(spec: ServiceSpec, errors: Collector, prefix: str = "service") -> None:
    """Adds a violation for every bad field of `spec`."""
    if problem := text_problem(spec.display_name, maximum=MAX_SERVICE_NAME, required=True):
        errors.add(f"{prefix}.display_name", problem)
    if problem := text_problem(spec.description, maximum=MAX_SERVICE_DESCRIPTION, required=False):
        errors.add(f"{prefix}.description", problem)
    if not 1 <= spec.capacity <= MAX_CAPACITY:
        errors.add(f"{prefix}.capacity", f"must be between 1 and {MAX_CAPACITY}")
    if not 0 <= spec.base_price_minor <= MAX_PRICE_MINOR:
        errors.add(f"{prefix}.base_price.amount_minor", f"must be between 0 and {MAX_PRICE_MINOR}")
    if not validate_currency(spec.currency):
        errors.add(f"{prefix}.base_price.currency_code", "must be an ISO 4217 code such as EUR")
    if spec.time_zone not in _zones():
        errors.add(f"{prefix}.time_zone", "must be an IANA time zone name, for example Europe/London")
    booking = spec.booking
    if booking.minimum_notice is not None and not timedelta(0) <= booking.minimum_notice <= MAX_NOTICE:
        errors.add(f"{prefix}.booking_settings.minimum_notice", "must be between 0 and 90 days")
    if booking.maximum_days_ahead is not None and not 1 <= booking.maximum_days_ahead <= MAX_DAYS_AHEAD:
        errors.add(f"{prefix}.booking_settings.maximum_days_ahead", f"must be between 1 and {MAX_DAYS_AHEAD}")
    if booking.hold_duration is not None and (
            not MIN_HOLD <= booking.hold_duration <= MAX_HOLD or booking.hold_duration.microseconds):
        errors.add(f"{prefix}.booking_settings.hold_duration", "must be 1 minute to 1 hour, whole seconds")
    for period, value in (("day", booking.limits.per_day), ("week", booking.limits.per_week),
                          ("month", booking.limits.per_month)):
        if value is not None and not 1 <= value <= MAX_BOOKINGS_LIMIT:
            errors.add(f"{prefix}.booking_settings.max_bookings_per_{period}", f"must be 1 to {MAX_BOOKINGS_LIMIT}")
    if booking.max_reschedules is not None and not 0 <= booking.max_reschedules <= MAX_RESCHEDULES:
        errors.add(f"{prefix}.booking_settings.max_reschedules", f"must be 0 to {MAX_RESCHEDULES}")
    distance = booking.max_reschedule_distance
    if distance is not None and (not timedelta(minutes=1) <= distance <= timedelta(days=MAX_DAYS_AHEAD)
                                 or distance.microseconds):
        errors.add(f"{prefix}.booking_settings.max_reschedule_distance", "must be 1 minute to 730 days, whole seconds")
    offer = booking.waitlist_offer_duration
    if offer is not None and (not MIN_HOLD <= offer <= MAX_OFFER or offer.microseconds):
        errors.add(f"{prefix}.booking_settings.waitlist_offer_duration", "must be 1 minute to 24 hours, whole seconds")
    if booking.reminders is not None:
        path = f"{prefix}.booking_settings.reminders.before_start"
        if len(booking.reminders) > MAX_REMINDERS:
            errors.add(path, f"must have at most {MAX_REMINDERS} items")
        elif any(not timedelta(minutes=1) <= r <= MAX_REMINDER or r % timedelta(minutes=1) for r in booking.reminders):
            errors.add(path, "each must be 1 minute to 30 days, whole minutes")
        elif len(set(booking.reminders)) != len(booking.reminders):
            errors.add(path, "must all be different")
    for violation in validate_grid(spec.grid):
        # The grid's fields live in two places of a service: duration on it, buffers in its settings.
        path = violation.field if violation.field == "duration" else f"booking_settings.{violation.field}"
        errors.violations.append(replace(violation, field=f"{prefix}.{path}"))
    errors.violations.extend(validate_cancellation(spec.cancellation, prefix=f"{prefix}.cancellation_policy"))
    errors.violations.extend(validate_pricing(spec.pricing, prefix=f"{prefix}.pricing"))

