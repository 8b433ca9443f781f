"""Demand pricing: a base price adjusted by rules, with a breakdown a customer can read.

Money is integer minor units (cents) throughout, never a float, so every quote is exact and the
same on every machine. Adjustments are basis points of the base price (100 bps = 1 %), each rounded
half away from zero to a whole minor unit with integer arithmetic (see `apply_bps`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from foothills_rpc.domain.errors import FieldViolation

BPS = 10_000
MIN_ADJUSTMENT_BPS = -10_000
MAX_ADJUSTMENT_BPS = 100_000
MAX_RULES = 20
MAX_LABEL = 100
_DAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# ISO 4217 codes we accept: real, circulating currencies. A shape check alone would let "ABC" through.
# Amounts are in each currency's own minor unit: yen have none, Kuwaiti dinars three digits.
CURRENCIES = frozenset({
    "AED", "ARS", "AUD", "BGN", "BHD", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP", "EUR",
    "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JOD", "JPY", "KES", "KRW", "KWD", "MAD", "MXN", "MYR",
    "NGN", "NOK", "NZD", "OMR", "PEN", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "SAR", "SEK", "SGD", "THB",
    "TRY", "TWD", "UAH", "USD", "VND", "ZAR",
})


class RuleKind(enum.StrEnum):
    OCCUPANCY = "occupancy"
    LEAD_TIME = "lead_time"
    DAY_OF_WEEK = "day_of_week"
    HOUR_OF_DAY = "hour_of_day"


@dataclass(frozen=True)
class PricingRule:
    """One condition and the price change it brings, in basis points of the base price.

    Only the fields of the rule's kind are set; the others stay at their defaults.
    """

    kind: RuleKind
    adjustment_bps: int  # +1000 = +10 %, -500 = -5 %; -10000 .. +100000
    label: str = ""  # shown in the breakdown; empty: derived from the rule (`rule_label`)
    min_occupancy_bps: int = 0  # OCCUPANCY: seats taken / capacity >= this (0..10000)
    max_lead: timedelta | None = None  # LEAD_TIME, last minute: slot start - now <= max_lead
    min_lead: timedelta | None = None  # LEAD_TIME, early bird: slot start - now >= min_lead
    weekdays: frozenset[int] = frozenset()  # DAY_OF_WEEK: local weekday of the slot start, 0=Monday
    start_hour: int = 0  # HOUR_OF_DAY: local hour of the slot start in [start_hour, end_hour)
    end_hour: int = 24


@dataclass(frozen=True)
class PricingPolicy:
    """A service's rules plus optional bounds on the unit price."""

    rules: tuple[PricingRule, ...] = ()
    floor_minor: int | None = None
    ceiling_minor: int | None = None


@dataclass(frozen=True)
class Adjustment:
    """One line of the breakdown: a signed change of the unit price."""

    label: str
    amount_minor: int


@dataclass(frozen=True)
class Quote:
    """A price with its reasons: `unit_minor == base_unit_minor + sum of adjustments`."""

    currency: str
    base_unit_minor: int
    adjustments: tuple[Adjustment, ...]
    unit_minor: int
    seats: int
    total_minor: int


def validate_currency(code: str) -> bool:
    """True for a real ISO 4217 code from the built-in list (three upper-case letters)."""
    return len(code) == 3 and code.isascii() and code.isupper() and code in CURRENCIES


def apply_bps(amount: int, bps: int) -> int:
    """`amount * bps / 10000`, rounded half away from zero, in integers only.

    Half away from zero so that a discount and a surcharge of the same size are mirror images
    (+5 % of 1010 is +51, -5 % is -51), which banker's rounding would not guarantee.
    """
    product = amount * bps
    quotient, remainder = divmod(abs(product), BPS)
    if 2 * remainder >= BPS:
        quotient += 1
    return quotient if product >= 0 else -quotient


def _percent(bps: int) -> str:
    whole, fraction = divmod(bps, 100)
    return f"{whole}%" if not fraction else f"{whole}.{fraction:02d}".rstrip("0") + "%"


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rule_label(rule: PricingRule) -> str:
    """The rule's own label, or one derived from its condition so the breakdown never shows a blank."""
    if rule.label:
        return rule.label
    if rule.kind is RuleKind.OCCUPANCY:
        return f"occupancy at least {_percent(rule.min_occupancy_bps)}"
    if rule.kind is RuleKind.LEAD_TIME:
        if rule.max_lead is not None:
            return f"booked within {_span(rule.max_lead)} of the start"
        return f"booked {_span(rule.min_lead or timedelta(0))} or more ahead"
    if rule.kind is RuleKind.DAY_OF_WEEK:
        return "on " + ", ".join(_DAY_ABBREVIATIONS[d] for d in sorted(rule.weekdays) if 0 <= d <= 6)
    return f"starting {rule.start_hour:02d}:00-{rule.end_hour:02d}:00"


# --- validation ---------------------------------------------------------------------------------


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def validate_pricing(policy: PricingPolicy, prefix: str = "pricing") -> list[FieldViolation]:
    """Every problem of `policy`; paths follow the proto (`rules[1].lead_time.max_lead`)."""
    found: list[FieldViolation] = []
    if len(policy.rules) > MAX_RULES:
        found.append(FieldViolation(_path(prefix, "rules"), f"must have at most {MAX_RULES} rules", "TOO_MANY"))
    else:
        for i, rule in enumerate(policy.rules):
            found.extend(_rule_violations(rule, _path(prefix, f"rules[{i}]")))
    floor, ceiling = policy.floor_minor, policy.ceiling_minor
    if floor is not None and floor < 0:
        found.append(FieldViolation(_path(prefix, "floor_minor"), "must not be negative"))
    if ceiling is not None and ceiling < 0:
        found.append(FieldViolation(_path(prefix, "ceiling_minor"), "must not be negative"))
    elif floor is not None and ceiling is not None and floor > ceiling:
        found.append(FieldViolation(_path(prefix, "ceiling_minor"), "must not be below floor_minor"))
    return found


def _rule_violations(rule: PricingRule, path: str) -> list[FieldViolation]:
    found = []
    if not MIN_ADJUSTMENT_BPS <= rule.adjustment_bps <= MAX_ADJUSTMENT_BPS:
        found.append(FieldViolation(f"{path}.adjustment_bps",
                                    f"must be between {MIN_ADJUSTMENT_BPS} and {MAX_ADJUSTMENT_BPS}"))
    if len(rule.label) > MAX_LABEL or any(not ch.isprintable() for ch in rule.label):
        found.append(FieldViolation(f"{path}.label", f"must be at most {MAX_LABEL} printable characters"))
    kind = rule.kind
    # Each kind's own condition ...
    if kind is RuleKind.OCCUPANCY and not 0 <= rule.min_occupancy_bps <= BPS:
        found.append(FieldViolation(f"{path}.occupancy.min_occupancy_bps", f"must be between 0 and {BPS}"))
    if kind is RuleKind.LEAD_TIME:
        if (rule.max_lead is None) == (rule.min_lead is None):
            found.append(FieldViolation(f"{path}.lead_time", "set exactly one of max_lead and min_lead"))
        for name, value in (("max_lead", rule.max_lead), ("min_lead", rule.min_lead)):
            if value is not None and value <= timedelta(0):
                found.append(FieldViolation(f"{path}.lead_time.{name}", "must be positive"))
    if kind is RuleKind.DAY_OF_WEEK and (not rule.weekdays or any(not 0 <= d <= 6 for d in rule.weekdays)):
        found.append(FieldViolation(f"{path}.days_of_week.days", "must list at least one day, Monday to Sunday"))
    if kind is RuleKind.HOUR_OF_DAY:
        if not 0 <= rule.start_hour <= 23:
            found.append(FieldViolation(f"{path}.hours_of_day.start_hour", "must be between 0 and 23"))
        elif not rule.start_hour < rule.end_hour <= 24:
            found.append(FieldViolation(f"{path}.hours_of_day.end_hour", "must be after start_hour and at most 24"))
    # ... and nothing of the other kinds, so a stored rule means exactly what it says.
    stray = []
    if kind is not RuleKind.OCCUPANCY and rule.min_occupancy_bps != 0:
        stray.append("occupancy.min_occupancy_bps")
    if kind is not RuleKind.LEAD_TIME and rule.max_lead is not None:
        stray.append("lead_time.max_lead")
    if kind is not RuleKind.LEAD_TIME and rule.min_lead is not None:
        stray.append("lead_time.min_lead")
    if kind is not RuleKind.DAY_OF_WEEK and rule.weekdays:
        stray.append("days_of_week.days")
    if kind is not RuleKind.HOUR_OF_DAY and (rule.start_hour, rule.end_hour) != (0, 24):
        stray.append("hours_of_day")
    found.extend(FieldViolation(f"{path}.{name}", f"must not be set on a {kind.value} rule") for name in stray)
    return found


# --- quoting ------------------------------------------------------------------------------------


def quote(*, base_unit_minor: int, currency: str, policy: PricingPolicy, slot_start: datetime, zone: ZoneInfo,
          now: datetime, seats_taken: int, capacity: int, seats: int) -> Quote:
    """The price of `seats` seats of the slot starting at `slot_start`, as seen at `now`.

    Occupancy rules are tiers: only the applicable one with the highest threshold applies (the
    first such in rule order on a tie); occupancy is `seats_taken * 10000 // capacity`, counting the
    seats taken before this booking. Every applicable lead-time, day and hour rule applies; day and
    hour are the slot start's local ones in `zone`. The unit price is then clamped to the policy's
    floor and ceiling and never below zero; a clamp is its own line in the breakdown.
    """
    applied = applicable_rules(policy, slot_start=slot_start, zone=zone, now=now, seats_taken=seats_taken,
                               capacity=capacity)
    return price_of(base_unit_minor=base_unit_minor, currency=currency, policy=policy, applied=applied, seats=seats)


def applicable_rules(policy: PricingPolicy, *, slot_start: datetime, zone: ZoneInfo, now: datetime, seats_taken: int,
                     capacity: int) -> tuple[int, ...]:
    """The indices of the rules that apply to the slot (see `quote`). Slots that share them share a
    price: a caller pricing many slots may price each distinct tuple once with `price_of`.

    One pass over the rules, the local time worked out only for a day or hour rule: ListSlots asks
    once per slot of a week."""
    if slot_start.tzinfo is None or now.tzinfo is None:  # (not utcoffset(): this runs once per slot)
        raise ValueError("slot_start and now must be timezone-aware")
    if capacity < 1 or seats_taken < 0:
        raise ValueError("capacity must be positive and seats_taken not negative")
    occupancy = seats_taken * BPS // capacity
    lead = slot_start - now
    local: datetime | None = None
    applied: list[int] = []
    tier, tier_bps = -1, -1  # the occupancy tier: the highest threshold reached, the first on a tie
    for index, rule in enumerate(policy.rules):
        kind = rule.kind
        if kind is RuleKind.OCCUPANCY:
            if tier_bps < rule.min_occupancy_bps <= occupancy:
                tier, tier_bps = index, rule.min_occupancy_bps
            continue
        if kind is RuleKind.LEAD_TIME:
            applies = ((rule.max_lead is not None and lead <= rule.max_lead)
                       or (rule.min_lead is not None and lead >= rule.min_lead))
        else:
            local = local or slot_start.astimezone(zone)
            applies = (local.weekday() in rule.weekdays if kind is RuleKind.DAY_OF_WEEK
                       else rule.start_hour <= local.hour < rule.end_hour)
        if applies:
            applied.append(index)
    if tier >= 0:
        applied.append(tier)
        applied.sort()
    return tuple(applied)


def price_of(*, base_unit_minor: int, currency: str, policy: PricingPolicy, applied: tuple[int, ...],
             seats: int) -> Quote:
    """The price of `seats` seats when the rules at the indices `applied` apply, clamped (see `quote`)."""
    if seats < 1 or base_unit_minor < 0:
        raise ValueError("seats must be positive and the base price not negative")
    adjustments = [Adjustment(rule_label(policy.rules[index]), apply_bps(base_unit_minor,
                                                                          policy.rules[index].adjustment_bps))
                   for index in applied]
    unit = base_unit_minor + sum(a.amount_minor for a in adjustments)
    clamped = unit if policy.ceiling_minor is None else min(unit, policy.ceiling_minor)
    clamped = max(clamped, policy.floor_minor or 0, 0)
    if clamped != unit:
        adjustments.append(Adjustment("ceiling" if clamped < unit else "floor", clamped - unit))
    return Quote(currency=currency, base_unit_minor=base_unit_minor, adjustments=tuple(adjustments),
                 unit_minor=clamped, seats=seats, total_minor=clamped * seats)
