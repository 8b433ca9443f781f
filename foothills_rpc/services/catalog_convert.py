"""Catalog proto <-> domain conversions."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.db import catalog as repo
from foothills_rpc.db.models import Booking, Category, Service
from foothills_rpc.domain import slots as slot_rules
from foothills_rpc.domain.cancellation import CancellationPolicy, CancellationTier
from foothills_rpc.domain.catalog import BookingSettings, ServiceSpec
from foothills_rpc.domain.errors import Collector
from foothills_rpc.domain.limits import BookingLimits
from foothills_rpc.domain.pricing import PricingPolicy, PricingRule, Quote, RuleKind
from foothills_rpc.services.converters import set_timestamp, timestamp
from foothills_rpc.usecases.catalog import etag

MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
# Instants a request may carry: [MIN_TIMESTAMP, MAX_TIMESTAMP). The year left before Timestamp's own end
# (9999-12-31) keeps every calendar sum on an instant (a month ahead, a time zone's offset) in range.
MAX_TIMESTAMP = datetime(9999, 1, 1, tzinfo=UTC)


def duration(value: timedelta) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(value)
    return message


def instant(message: timestamp_pb2.Timestamp, field: str, errors: Collector, *, required: bool = True) -> datetime:
    """An aware UTC datetime; records a violation for a missing timestamp or one outside
    [MIN_TIMESTAMP, MAX_TIMESTAMP), checked on the seconds before any conversion."""
    if required and message.seconds == 0 and message.nanos == 0:
        errors.add(field, "is required")
        return MIN_TIMESTAMP
    if not _MIN_SECONDS <= message.seconds < _MAX_SECONDS or not 0 <= message.nanos < 1_000_000_000:
        errors.add(field, "must be from 1970-01-01T00:00:00Z to before 9999-01-01T00:00:00Z")
        return MIN_TIMESTAMP
    return message.ToDatetime(tzinfo=UTC)


_MIN_SECONDS = int(MIN_TIMESTAMP.timestamp())
_MAX_SECONDS = int(MAX_TIMESTAMP.timestamp())


MAX_STRANDED_LISTED = 100


def set_stranded(response: Any, stranded: list[Booking]) -> None:
    """Fills a schedule change's answer with the bookings it stranded: the first MAX_STRANDED_LISTED, and
    how many in all."""
    response.stranded_booking_count = len(stranded)
    for booking in stranded[:MAX_STRANDED_LISTED]:
        item = response.stranded_bookings.add(booking=f"bookings/{booking.id.hex}", seats=booking.seats,
                                              customer=f"users/{booking.customer_id.hex}")
        set_timestamp(item.start_time, booking.start_at)


def money(amount_minor: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount_minor, currency_code=currency)


def set_money(target: types_pb2.Money, amount_minor: int, currency: str) -> None:
    target.amount_minor = amount_minor
    target.currency_code = currency


# --- categories and services -------------------------------------------------------------------


def category_to_proto(category: Category) -> catalog_pb2.Category:
    return catalog_pb2.Category(name=f"categories/{category.id.hex}", display_name=category.display_name,
                                description=category.description, create_time=timestamp(category.created_at),
                                update_time=timestamp(category.updated_at))


def service_to_proto(service: Service) -> catalog_pb2.Service:
    spec = repo.spec_of(service)
    settings = catalog_pb2.BookingSettings(
        buffer_before=duration(spec.booking.buffer_before), buffer_after=duration(spec.booking.buffer_after),
        requires_approval=spec.booking.requires_approval)
    if spec.booking.minimum_notice is not None:
        settings.minimum_notice.CopyFrom(duration(spec.booking.minimum_notice))
    if spec.booking.maximum_days_ahead is not None:
        settings.maximum_days_ahead = spec.booking.maximum_days_ahead
    if spec.booking.hold_duration is not None:
        settings.hold_duration.CopyFrom(duration(spec.booking.hold_duration))
    limits = spec.booking.limits
    for field, value in (("max_bookings_per_day", limits.per_day), ("max_bookings_per_week", limits.per_week),
                         ("max_bookings_per_month", limits.per_month),
                         ("max_reschedules", spec.booking.max_reschedules)):
        if value is not None:
            setattr(settings, field, value)
    if spec.booking.max_reschedule_distance is not None:
        settings.max_reschedule_distance.CopyFrom(duration(spec.booking.max_reschedule_distance))
    if spec.booking.waitlist_offer_duration is not None:
        settings.waitlist_offer_duration.CopyFrom(duration(spec.booking.waitlist_offer_duration))
    if spec.booking.reminders is not None:
        settings.reminders.SetInParent()  # present even when empty: "no reminders", not "the default"
        settings.reminders.before_start.extend(duration(r) for r in spec.booking.reminders)
    return catalog_pb2.Service(
        name=f"services/{service.id.hex}",
        display_name=spec.display_name,
        description=spec.description,
        category=f"categories/{service.category_id.hex}",
        provider=f"users/{service.provider_id.hex}",
        duration=duration(spec.duration),
        capacity=spec.capacity,
        base_price=money(spec.base_price_minor, spec.currency),
        time_zone=spec.time_zone,
        booking_settings=settings,
        cancellation_policy=cancellation_to_proto(spec.cancellation),
        pricing=pricing_to_proto(spec.pricing),
        runs_without_provider=spec.runs_without_provider,
        state=(catalog_pb2.SERVICE_STATE_ARCHIVED if service.archived else
               catalog_pb2.SERVICE_STATE_SUSPENDED if service.suspended else catalog_pb2.SERVICE_STATE_ACTIVE),
        etag=etag(service),
        create_time=timestamp(service.created_at),
        update_time=timestamp(service.updated_at),
    )


# Beyond this a duration is nonsense for any field here; clamping keeps arithmetic on it safe and lets the
# validators refuse it by its field, where `ToTimedelta` would overflow (far below protobuf's own limit).
MAX_SPAN = timedelta(days=36500)


def span(message: duration_pb2.Duration) -> timedelta:
    """The duration as a timedelta, clamped to +-MAX_SPAN."""
    if abs(message.seconds) > MAX_SPAN.total_seconds():
        return MAX_SPAN if message.seconds > 0 else -MAX_SPAN
    return message.ToTimedelta()


def booking_settings_from_proto(message: catalog_pb2.BookingSettings) -> BookingSettings:
    return BookingSettings(
        minimum_notice=span(message.minimum_notice) if message.HasField("minimum_notice") else None,
        maximum_days_ahead=message.maximum_days_ahead if message.HasField("maximum_days_ahead") else None,
        buffer_before=span(message.buffer_before),
        buffer_after=span(message.buffer_after),
        requires_approval=message.requires_approval,
        hold_duration=span(message.hold_duration) if message.HasField("hold_duration") else None,
        limits=BookingLimits(
            per_day=message.max_bookings_per_day if message.HasField("max_bookings_per_day") else None,
            per_week=message.max_bookings_per_week if message.HasField("max_bookings_per_week") else None,
            per_month=message.max_bookings_per_month if message.HasField("max_bookings_per_month") else None),
        max_reschedules=message.max_reschedules if message.HasField("max_reschedules") else None,
        max_reschedule_distance=span(message.max_reschedule_distance)
        if message.HasField("max_reschedule_distance") else None,
        waitlist_offer_duration=span(message.waitlist_offer_duration)
        if message.HasField("waitlist_offer_duration") else None,
        reminders=tuple(sorted((span(r) for r in message.reminders.before_start), reverse=True))
        if message.HasField("reminders") else None,
    )


def cancellation_from_proto(message: catalog_pb2.CancellationPolicy) -> CancellationPolicy:
    return CancellationPolicy(tiers=tuple(
        CancellationTier(before_start=span(t.before_start), fee_bps=t.fee_bps, allowed=not t.refused)
        for t in message.tiers))


_DAY_FROM_PROTO = {types_pb2.DAY_OF_WEEK_MONDAY + i: i for i in range(7)}


def _day_to_proto(weekday: int) -> Any:
    return types_pb2.DAY_OF_WEEK_MONDAY + weekday


def weekday(value: int, field: str, errors: Collector) -> int:
    if value not in _DAY_FROM_PROTO:
        errors.add(field, "must be a day from DAY_OF_WEEK_MONDAY to DAY_OF_WEEK_SUNDAY")
        return 0
    return _DAY_FROM_PROTO[value]


def pricing_from_proto(message: catalog_pb2.PricingPolicy, errors: Collector,
                       prefix: str = "service.pricing") -> PricingPolicy:
    rules = []
    for index, rule in enumerate(message.rules):
        path = f"{prefix}.rules[{index}]"
        kind = rule.WhichOneof("condition")
        common = {"adjustment_bps": rule.adjustment_bps, "label": rule.label}
        if kind == "occupancy":
            rules.append(PricingRule(kind=RuleKind.OCCUPANCY, min_occupancy_bps=rule.occupancy.min_occupancy_bps,
                                     **common))  # type: ignore[arg-type]
        elif kind == "lead_time":
            lead = rule.lead_time
            rules.append(PricingRule(
                kind=RuleKind.LEAD_TIME, **common,  # type: ignore[arg-type]
                max_lead=span(lead.max_lead) if lead.HasField("max_lead") else None,
                min_lead=span(lead.min_lead) if lead.HasField("min_lead") else None))
        elif kind == "days_of_week":
            days = frozenset(weekday(d, f"{path}.days_of_week.days", errors) for d in rule.days_of_week.days)
            rules.append(PricingRule(kind=RuleKind.DAY_OF_WEEK, weekdays=days, **common))  # type: ignore[arg-type]
        elif kind == "hours_of_day":
            rules.append(PricingRule(kind=RuleKind.HOUR_OF_DAY, start_hour=rule.hours_of_day.start_hour,
                                     end_hour=rule.hours_of_day.end_hour, **common))  # type: ignore[arg-type]
        else:
            errors.add(f"{path}.condition", "set one of occupancy, lead_time, days_of_week, hours_of_day")
    return PricingPolicy(
        rules=tuple(rules),
        floor_minor=message.floor_minor if message.HasField("floor_minor") else None,
        ceiling_minor=message.ceiling_minor if message.HasField("ceiling_minor") else None)


def pricing_to_proto(policy: PricingPolicy) -> catalog_pb2.PricingPolicy:
    message = catalog_pb2.PricingPolicy()
    if policy.floor_minor is not None:
        message.floor_minor = policy.floor_minor
    if policy.ceiling_minor is not None:
        message.ceiling_minor = policy.ceiling_minor
    for rule in policy.rules:
        out = message.rules.add(adjustment_bps=rule.adjustment_bps, label=rule.label)
        if rule.kind is RuleKind.OCCUPANCY:
            out.occupancy.min_occupancy_bps = rule.min_occupancy_bps
        elif rule.kind is RuleKind.LEAD_TIME:
            out.lead_time.SetInParent()
            if rule.max_lead is not None:
                out.lead_time.max_lead.CopyFrom(duration(rule.max_lead))
            if rule.min_lead is not None:
                out.lead_time.min_lead.CopyFrom(duration(rule.min_lead))
        elif rule.kind is RuleKind.DAY_OF_WEEK:
            out.days_of_week.days.extend(_day_to_proto(d) for d in sorted(rule.weekdays))
        else:
            out.hours_of_day.start_hour = rule.start_hour
            out.hours_of_day.end_hour = rule.end_hour
    return message


def service_spec_from_proto(message: catalog_pb2.Service, errors: Collector) -> ServiceSpec:
    return ServiceSpec(
        display_name=message.display_name.strip(),
        description=message.description,
        duration=span(message.duration),
        capacity=message.capacity or 1,
        base_price_minor=message.base_price.amount_minor,
        currency=message.base_price.currency_code,
        time_zone=message.time_zone,
        booking=booking_settings_from_proto(message.booking_settings),
        cancellation=cancellation_from_proto(message.cancellation_policy),
        pricing=pricing_from_proto(message.pricing, errors),
        runs_without_provider=message.runs_without_provider,
    )


# --- availability ------------------------------------------------------------------------------


def _minute(value: types_pb2.TimeOfDay, field: str, errors: Collector) -> int:
    if not (0 <= value.hours <= 24 and 0 <= value.minutes <= 59) or (value.hours == 24 and value.minutes):
        errors.add(field, "must be a time of day between 00:00 and 24:00")
        return 0
    return value.hours * 60 + value.minutes


def _range(value: types_pb2.TimeRange, field: str, errors: Collector) -> slot_rules.TimeRange:
    return slot_rules.TimeRange(_minute(value.start_time, f"{field}.start_time", errors),
                                _minute(value.end_time, f"{field}.end_time", errors))


_OVERRIDE_KINDS = {catalog_pb2.OVERRIDE_KIND_CLOSED: slot_rules.OverrideKind.CLOSED,
                   catalog_pb2.OVERRIDE_KIND_HOURS: slot_rules.OverrideKind.HOURS,
                   catalog_pb2.OVERRIDE_KIND_EXTRA: slot_rules.OverrideKind.EXTRA}


def availability_from_proto(message: catalog_pb2.Availability, errors: Collector) -> slot_rules.Availability:
    weekly = tuple(
        slot_rules.WeeklyWindow(weekday=weekday(w.day_of_week, f"availability.weekly_windows[{i}].day_of_week", errors),
                                hours=_range(w.hours, f"availability.weekly_windows[{i}].hours", errors))
        for i, w in enumerate(message.weekly_windows))
    overrides = []
    for i, o in enumerate(message.overrides):
        path = f"availability.overrides[{i}]"
        try:
            day = date(o.date.year, o.date.month, o.date.day)
        except ValueError:
            errors.add(f"{path}.date", "must be a real calendar date")
            continue
        kind = _OVERRIDE_KINDS.get(o.kind)
        if kind is None:
            errors.add(f"{path}.kind", "must be CLOSED, HOURS or EXTRA")
            continue
        overrides.append(slot_rules.DateOverride(
            day=day, kind=kind, hours=tuple(_range(h, f"{path}.hours[{j}]", errors) for j, h in enumerate(o.hours))))
    return slot_rules.Availability(weekly=weekly, overrides=tuple(overrides))


def _time_of_day(minute: int) -> types_pb2.TimeOfDay:
    return types_pb2.TimeOfDay(hours=minute // 60, minutes=minute % 60)


def _time_range(value: slot_rules.TimeRange) -> types_pb2.TimeRange:
    return types_pb2.TimeRange(start_time=_time_of_day(value.start_minute), end_time=_time_of_day(value.end_minute))


def availability_to_proto(service: Service) -> catalog_pb2.Availability:
    availability = repo.availability_of(service)
    kinds = {v: k for k, v in _OVERRIDE_KINDS.items()}
    return catalog_pb2.Availability(
        name=f"services/{service.id.hex}/availability",
        weekly_windows=[catalog_pb2.WeeklyWindow(day_of_week=_day_to_proto(w.weekday),
                                                 hours=_time_range(w.hours)) for w in availability.weekly],
        overrides=[catalog_pb2.DateOverride(
            date=types_pb2.Date(year=o.day.year, month=o.day.month, day=o.day.day), kind=kinds[o.kind],
            hours=[_time_range(h) for h in o.hours]) for o in availability.overrides],
    )


@functools.lru_cache(maxsize=1024)
def cancellation_to_proto(policy: CancellationPolicy) -> catalog_pb2.CancellationPolicy:
    """The message of `policy`, built once per distinct policy and shared: set it as a field's value
    (which copies it), never change it."""
    return catalog_pb2.CancellationPolicy(tiers=[
        catalog_pb2.CancellationTier(before_start=duration(t.before_start), fee_bps=t.fee_bps, refused=not t.allowed)
        for t in policy.tiers])


def quote_to_proto(quote: Quote) -> catalog_pb2.PriceQuote:
    message = catalog_pb2.PriceQuote()
    set_quote(message, quote)
    return message


def set_quote(target: catalog_pb2.PriceQuote, quote: Quote) -> None:
    """Fills `target` (a field of a message being built) in place: a page of bookings does this per
    row, and building the parts to pass in costs twice as much, as each is copied."""
    currency = quote.currency
    set_money(target.base_unit_price, quote.base_unit_minor, currency)
    for adjustment in quote.adjustments:
        set_money(target.adjustments.add(label=adjustment.label).amount, adjustment.amount_minor, currency)
    set_money(target.unit_price, quote.unit_minor, currency)
    target.seats = quote.seats
    set_money(target.total_price, quote.total_minor, currency)
