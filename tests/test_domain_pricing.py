"""Demand pricing as pure functions: each rule at its edges, tiers, rounding, clamps, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foothills_rpc.domain.pricing import (
    Adjustment,
    PricingPolicy,
    PricingRule,
    Quote,
    RuleKind,
    apply_bps,
    quote,
    rule_label,
    validate_currency,
    validate_pricing,
)

LONDON = ZoneInfo("Europe/London")
# A Wednesday, 10:00 in London (GMT = UTC in January), a week ahead of "now".
SLOT = datetime(2030, 1, 9, 10, 0, tzinfo=UTC)
NOW = SLOT - timedelta(days=7)


def price(policy: PricingPolicy, *, base: int = 10_000, slot_start: datetime = SLOT, now: datetime = NOW,
          seats_taken: int = 0, capacity: int = 10, seats: int = 1, zone: ZoneInfo = LONDON) -> Quote:
    return quote(base_unit_minor=base, currency="EUR", policy=policy, slot_start=slot_start, zone=zone, now=now,
                 seats_taken=seats_taken, capacity=capacity, seats=seats)


def rules(*items: PricingRule) -> PricingPolicy:
    return PricingPolicy(rules=items)


def amounts(result: Quote) -> list[int]:
    return [a.amount_minor for a in result.adjustments]


def test_no_rules_means_the_base_price() -> None:
    result = price(PricingPolicy(), seats=3)
    assert result == Quote(currency="EUR", base_unit_minor=10_000, adjustments=(), unit_minor=10_000, seats=3,
                           total_minor=30_000)


# --- occupancy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seats_taken", "capacity", "applies"),
    [pytest.param(5, 10, True, id="exactly-50%"),
     pytest.param(4999, 10_000, False, id="49.99%"),
     pytest.param(5000, 10_000, True, id="50.00%"),
     pytest.param(1, 3, False, id="33%"),
     pytest.param(2, 3, True, id="66%")],
)
def test_occupancy_applies_from_its_threshold_inclusive(seats_taken: int, capacity: int, applies: bool) -> None:
    policy = rules(PricingRule(RuleKind.OCCUPANCY, 1000, min_occupancy_bps=5000))
    result = price(policy, seats_taken=seats_taken, capacity=capacity)
    assert amounts(result) == ([1000] if applies else [])


def test_occupancy_tiers_do_not_stack_the_highest_applicable_one_wins() -> None:
    policy = rules(PricingRule(RuleKind.OCCUPANCY, 2500, "busy", min_occupancy_bps=8000),
                   PricingRule(RuleKind.OCCUPANCY, 1000, "filling up", min_occupancy_bps=5000))
    assert price(policy, seats_taken=85, capacity=100).adjustments == (Adjustment("busy", 2500),)
    assert price(policy, seats_taken=60, capacity=100).adjustments == (Adjustment("filling up", 1000),)
    assert price(policy, seats_taken=40, capacity=100).adjustments == ()
    # A zero threshold is a tier that always applies, until a higher one takes over.
    with_base = rules(PricingRule(RuleKind.OCCUPANCY, -500, "quiet"), *policy.rules)
    assert price(with_base, seats_taken=0).adjustments == (Adjustment("quiet", -500),)
    assert price(with_base, seats_taken=9).adjustments == (Adjustment("busy", 2500),)


def test_occupancy_tiers_at_the_same_threshold_the_first_in_rule_order_wins() -> None:
    policy = rules(PricingRule(RuleKind.OCCUPANCY, 1000, "first", min_occupancy_bps=5000),
                   PricingRule(RuleKind.LEAD_TIME, 700, "early", min_lead=timedelta(days=1)),
                   PricingRule(RuleKind.OCCUPANCY, 3000, "second", min_occupancy_bps=5000))
    # The tier keeps its place in rule order within the breakdown.
    assert price(policy, seats_taken=5).adjustments == (Adjustment("first", 1000), Adjustment("early", 700))


# --- lead time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead", "applies"),
    [pytest.param(timedelta(hours=24), True, id="exactly-24h"),
     pytest.param(timedelta(hours=24, seconds=1), False, id="24h-and-a-second"),
     pytest.param(timedelta(minutes=5), True, id="5-minutes")],
)
def test_last_minute_applies_up_to_max_lead_inclusive(lead: timedelta, applies: bool) -> None:
    policy = rules(PricingRule(RuleKind.LEAD_TIME, -2000, max_lead=timedelta(hours=24)))
    assert amounts(price(policy, now=SLOT - lead)) == ([-2000] if applies else [])


@pytest.mark.parametrize(
    ("lead", "applies"),
    [pytest.param(timedelta(days=14), True, id="exactly-14-days"),
     pytest.param(timedelta(days=14) - timedelta(seconds=1), False, id="a-second-short"),
     pytest.param(timedelta(days=60), True, id="60-days")],
)
def test_early_bird_applies_from_min_lead_inclusive(lead: timedelta, applies: bool) -> None:
    policy = rules(PricingRule(RuleKind.LEAD_TIME, -1500, min_lead=timedelta(days=14)))
    assert amounts(price(policy, now=SLOT - lead)) == ([-1500] if applies else [])


def test_every_applicable_lead_time_rule_applies() -> None:
    policy = rules(PricingRule(RuleKind.LEAD_TIME, 500, "short notice", max_lead=timedelta(days=2)),
                   PricingRule(RuleKind.LEAD_TIME, 300, "very short notice", max_lead=timedelta(hours=3)))
    assert amounts(price(policy, now=SLOT - timedelta(hours=2))) == [500, 300]
    assert amounts(price(policy, now=SLOT - timedelta(hours=5))) == [500]


# --- local weekday and hour ---------------------------------------------------------------------


def test_day_and_hour_rules_use_the_local_time_of_the_slot_start() -> None:
    weekend = PricingRule(RuleKind.DAY_OF_WEEK, 2000, "weekend", weekdays=frozenset({5, 6}))
    evening = PricingRule(RuleKind.HOUR_OF_DAY, 1000, "evening", start_hour=18, end_hour=22)
    policy = rules(weekend, evening)
    tokyo = ZoneInfo("Asia/Tokyo")  # UTC+9, no DST
    # Friday 20:00 UTC is Saturday 05:00 in Tokyo: the weekend, but not the evening.
    friday_evening = datetime(2030, 1, 11, 20, 0, tzinfo=UTC)
    assert amounts(price(policy, slot_start=friday_evening, zone=tokyo)) == [2000]
    assert amounts(price(policy, slot_start=friday_evening, zone=LONDON)) == [1000]
    # The end hour is exclusive, the start hour inclusive.
    assert amounts(price(policy, slot_start=datetime(2030, 1, 9, 18, 0, tzinfo=UTC))) == [1000]
    assert amounts(price(policy, slot_start=datetime(2030, 1, 9, 21, 59, tzinfo=UTC))) == [1000]
    assert amounts(price(policy, slot_start=datetime(2030, 1, 9, 22, 0, tzinfo=UTC))) == []
    assert amounts(price(policy, slot_start=datetime(2030, 1, 9, 17, 59, tzinfo=UTC))) == []


def test_local_hour_and_weekday_follow_daylight_saving_time() -> None:
    nine = PricingRule(RuleKind.HOUR_OF_DAY, 1000, "nine o'clock", start_hour=9, end_hour=10)
    monday = PricingRule(RuleKind.DAY_OF_WEEK, 500, "Monday", weekdays=frozenset({0}))
    policy = rules(nine, monday)
    now = datetime(2030, 3, 1, tzinfo=UTC)
    # Saturday 30 March 2030 is GMT (09:00 local = 09:00 UTC); Sunday 31 March is BST (09:00 local = 08:00 UTC).
    assert amounts(price(policy, now=now, slot_start=datetime(2030, 3, 30, 9, 0, tzinfo=UTC))) == [1000]
    assert amounts(price(policy, now=now, slot_start=datetime(2030, 3, 31, 9, 0, tzinfo=UTC))) == []  # 10:00 BST
    assert amounts(price(policy, now=now, slot_start=datetime(2030, 3, 31, 8, 0, tzinfo=UTC))) == [1000]
    # Sunday 23:30 UTC in summer is already Monday 00:30 in London.
    assert amounts(price(policy, now=now, slot_start=datetime(2030, 4, 7, 23, 30, tzinfo=UTC))) == [500]
    assert amounts(price(policy, now=now, slot_start=datetime(2030, 1, 6, 23, 30, tzinfo=UTC))) == []  # GMT


# --- rounding, sums, clamps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "bps", "expected"),
    [pytest.param(1005, 500, 50, id="50.25-down"),
     pytest.param(1010, 500, 51, id="50.5-up"),
     pytest.param(1010, -500, -51, id="minus-50.5-away"),
     pytest.param(1005, -500, -50, id="minus-50.25-toward"),
     pytest.param(1030, 500, 52, id="51.5-up"),
     pytest.param(1, 5000, 1, id="half-a-cent-up"),
     pytest.param(1, -5000, -1, id="minus-half-a-cent"),
     pytest.param(1, 4999, 0, id="under-half"),
     pytest.param(0, 100_000, 0, id="free"),
     pytest.param(10_000, -10_000, -10_000, id="minus-100%")],
)
def test_adjustments_round_half_away_from_zero(base: int, bps: int, expected: int) -> None:
    assert apply_bps(base, bps) == expected
    result = price(rules(PricingRule(RuleKind.DAY_OF_WEEK, bps, weekdays=frozenset(range(7)))), base=base)
    assert amounts(result) == [expected]
    assert result.unit_minor == base + expected


def test_rules_of_different_kinds_add_up_in_rule_order() -> None:
    policy = rules(PricingRule(RuleKind.HOUR_OF_DAY, 1000, "morning", start_hour=6, end_hour=12),
                   PricingRule(RuleKind.OCCUPANCY, 2500, "busy", min_occupancy_bps=8000),
                   PricingRule(RuleKind.LEAD_TIME, -500, "early", min_lead=timedelta(days=7)),
                   PricingRule(RuleKind.DAY_OF_WEEK, 300, "weekend", weekdays=frozenset({5, 6})))
    result = price(policy, base=2000, seats_taken=8, capacity=10, seats=4)
    assert result.adjustments == (Adjustment("morning", 200), Adjustment("busy", 500), Adjustment("early", -100))
    assert (result.unit_minor, result.total_minor) == (2600, 10_400)


@pytest.mark.parametrize(
    ("floor", "ceiling", "bps", "unit", "clamp"),
    [pytest.param(9000, None, -2000, 9000, Adjustment("floor", 1000), id="floor"),
     pytest.param(None, 11_000, 2000, 11_000, Adjustment("ceiling", -1000), id="ceiling"),
     pytest.param(9000, 11_000, 500, 10_500, None, id="inside"),
     pytest.param(None, 8000, 0, 8000, Adjustment("ceiling", -2000), id="ceiling-below-base"),
     pytest.param(12_000, None, 0, 12_000, Adjustment("floor", 2000), id="floor-above-base"),
     pytest.param(None, None, -10_000, 0, None, id="free")],
)
def test_floor_and_ceiling_clamp_and_show_in_the_breakdown(floor: int | None, ceiling: int | None, bps: int,
                                                           unit: int, clamp: Adjustment | None) -> None:
    policy = PricingPolicy(rules=(PricingRule(RuleKind.DAY_OF_WEEK, bps, "sale", weekdays=frozenset(range(7))),),
                           floor_minor=floor, ceiling_minor=ceiling)
    result = price(policy, seats=2)
    assert result.unit_minor == unit
    assert result.total_minor == 2 * unit
    assert result.adjustments[-1] == (clamp or Adjustment("sale", apply_bps(10_000, bps)))
    assert result.unit_minor == result.base_unit_minor + sum(amounts(result))


def test_the_unit_price_never_goes_below_zero() -> None:
    policy = rules(PricingRule(RuleKind.DAY_OF_WEEK, -10_000, "free day", weekdays=frozenset(range(7))),
                   PricingRule(RuleKind.LEAD_TIME, -5000, "early", min_lead=timedelta(days=1)))
    result = price(policy, base=1000)
    assert result.adjustments == (Adjustment("free day", -1000), Adjustment("early", -500), Adjustment("floor", 500))
    assert (result.unit_minor, result.total_minor) == (0, 0)


def test_default_labels_describe_the_rule() -> None:
    assert rule_label(PricingRule(RuleKind.OCCUPANCY, 1, min_occupancy_bps=8000)) == "occupancy at least 80%"
    assert rule_label(PricingRule(RuleKind.OCCUPANCY, 1, min_occupancy_bps=4950)) == "occupancy at least 49.5%"
    assert rule_label(PricingRule(RuleKind.LEAD_TIME, 1, max_lead=timedelta(hours=2))) == \
        "booked within 2h of the start"
    assert rule_label(PricingRule(RuleKind.LEAD_TIME, 1, min_lead=timedelta(days=14))) == "booked 14d or more ahead"
    assert rule_label(PricingRule(RuleKind.LEAD_TIME, 1, max_lead=timedelta(minutes=90))) == \
        "booked within 90min of the start"
    assert rule_label(PricingRule(RuleKind.LEAD_TIME, 1, min_lead=timedelta(seconds=45))) == "booked 45s or more ahead"
    assert rule_label(PricingRule(RuleKind.DAY_OF_WEEK, 1, weekdays=frozenset({6, 5}))) == "on Sat, Sun"
    assert rule_label(PricingRule(RuleKind.HOUR_OF_DAY, 1, start_hour=18, end_hour=24)) == "starting 18:00-24:00"
    assert rule_label(PricingRule(RuleKind.HOUR_OF_DAY, 1, "happy hour", start_hour=17, end_hour=18)) == "happy hour"
    wednesday = rules(PricingRule(RuleKind.DAY_OF_WEEK, 100, weekdays=frozenset({2})))
    assert price(wednesday).adjustments[0].label == "on Wed"


def test_programming_errors_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        price(PricingPolicy(), slot_start=SLOT.replace(tzinfo=None))
    with pytest.raises(ValueError, match="positive"):
        price(PricingPolicy(), capacity=0)
    with pytest.raises(ValueError, match="positive"):
        price(PricingPolicy(), seats=0)


# --- validation ---------------------------------------------------------------------------------


def test_currency_codes() -> None:
    required = ["EUR", "USD", "GBP", "CHF", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD", "NZD", "INR",
                "BRL", "MXN", "ZAR", "SGD", "HKD"]
    for code in required:
        assert validate_currency(code), code
    for code in ["", "eur", "EURO", "EU", "ABC", "XXX", "E1R", "\uff25\uff35\uff32"]:
        assert not validate_currency(code), code


def test_a_sound_policy_has_no_violations() -> None:
    policy = PricingPolicy(
        rules=(PricingRule(RuleKind.OCCUPANCY, 100_000, min_occupancy_bps=10_000),
               PricingRule(RuleKind.OCCUPANCY, -10_000, min_occupancy_bps=0),
               PricingRule(RuleKind.LEAD_TIME, 100, max_lead=timedelta(seconds=1)),
               PricingRule(RuleKind.LEAD_TIME, 100, min_lead=timedelta(days=365)),
               PricingRule(RuleKind.DAY_OF_WEEK, 100, weekdays=frozenset(range(7))),
               PricingRule(RuleKind.HOUR_OF_DAY, 100, "x" * 100, start_hour=0, end_hour=24),
               PricingRule(RuleKind.HOUR_OF_DAY, 100, start_hour=23, end_hour=24)),
        floor_minor=0, ceiling_minor=0)
    assert validate_pricing(policy) == []
    assert validate_pricing(PricingPolicy(rules=tuple(policy.rules[:1] * 20))) == []


MINIMAL: dict[RuleKind, dict[str, Any]] = {  # the least each kind needs to be valid
    RuleKind.OCCUPANCY: {"min_occupancy_bps": 5000}, RuleKind.LEAD_TIME: {"max_lead": timedelta(hours=1)},
    RuleKind.DAY_OF_WEEK: {"weekdays": frozenset({0})}, RuleKind.HOUR_OF_DAY: {"start_hour": 9, "end_hour": 17},
}


def _rule(kind: RuleKind, **fields: Any) -> PricingPolicy:
    """A one-rule policy: the kind's minimal valid fields, overridden by `fields`."""
    return rules(PricingRule(kind, fields.pop("adjustment_bps", 100), **{**MINIMAL[kind], **fields}))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(_rule(RuleKind.OCCUPANCY, adjustment_bps=-10_001),
                     {"pricing.rules[0].adjustment_bps": "INVALID_VALUE"}, id="bps-too-low"),
        pytest.param(_rule(RuleKind.OCCUPANCY, adjustment_bps=100_001),
                     {"pricing.rules[0].adjustment_bps": "INVALID_VALUE"}, id="bps-too-high"),
        pytest.param(_rule(RuleKind.OCCUPANCY, label="x" * 101),
                     {"pricing.rules[0].label": "INVALID_VALUE"}, id="label-too-long"),
        pytest.param(_rule(RuleKind.OCCUPANCY, label="a\nb"),
                     {"pricing.rules[0].label": "INVALID_VALUE"}, id="label-control"),
        pytest.param(_rule(RuleKind.OCCUPANCY, min_occupancy_bps=10_001),
                     {"pricing.rules[0].occupancy.min_occupancy_bps": "INVALID_VALUE"}, id="occupancy-over-100%"),
        pytest.param(_rule(RuleKind.OCCUPANCY, min_occupancy_bps=-1),
                     {"pricing.rules[0].occupancy.min_occupancy_bps": "INVALID_VALUE"}, id="occupancy-negative"),
        pytest.param(_rule(RuleKind.LEAD_TIME, max_lead=None),
                     {"pricing.rules[0].lead_time": "INVALID_VALUE"}, id="lead-neither"),
        pytest.param(_rule(RuleKind.LEAD_TIME, min_lead=timedelta(days=1)),
                     {"pricing.rules[0].lead_time": "INVALID_VALUE"}, id="lead-both"),
        pytest.param(_rule(RuleKind.LEAD_TIME, max_lead=timedelta(0)),
                     {"pricing.rules[0].lead_time.max_lead": "INVALID_VALUE"}, id="max-lead-zero"),
        pytest.param(_rule(RuleKind.LEAD_TIME, max_lead=None, min_lead=timedelta(hours=-1)),
                     {"pricing.rules[0].lead_time.min_lead": "INVALID_VALUE"}, id="min-lead-negative"),
        pytest.param(_rule(RuleKind.DAY_OF_WEEK, weekdays=frozenset()),
                     {"pricing.rules[0].days_of_week.days": "INVALID_VALUE"}, id="no-days"),
        pytest.param(_rule(RuleKind.DAY_OF_WEEK, weekdays=frozenset({6, 7})),
                     {"pricing.rules[0].days_of_week.days": "INVALID_VALUE"}, id="day-7"),
        pytest.param(_rule(RuleKind.HOUR_OF_DAY, start_hour=-1),
                     {"pricing.rules[0].hours_of_day.start_hour": "INVALID_VALUE"}, id="start-negative"),
        pytest.param(_rule(RuleKind.HOUR_OF_DAY, start_hour=24, end_hour=24),
                     {"pricing.rules[0].hours_of_day.start_hour": "INVALID_VALUE"}, id="start-24"),
        pytest.param(_rule(RuleKind.HOUR_OF_DAY, start_hour=10, end_hour=10),
                     {"pricing.rules[0].hours_of_day.end_hour": "INVALID_VALUE"}, id="empty-hours"),
        pytest.param(_rule(RuleKind.HOUR_OF_DAY, start_hour=10, end_hour=25),
                     {"pricing.rules[0].hours_of_day.end_hour": "INVALID_VALUE"}, id="end-25"),
        pytest.param(_rule(RuleKind.OCCUPANCY, weekdays=frozenset({1})),
                     {"pricing.rules[0].days_of_week.days": "INVALID_VALUE"}, id="stray-weekdays"),
        pytest.param(_rule(RuleKind.DAY_OF_WEEK, min_occupancy_bps=10, max_lead=timedelta(hours=1)),
                     {"pricing.rules[0].occupancy.min_occupancy_bps": "INVALID_VALUE",
                      "pricing.rules[0].lead_time.max_lead": "INVALID_VALUE"}, id="stray-occupancy-and-lead"),
        pytest.param(_rule(RuleKind.LEAD_TIME, min_lead=None, end_hour=23),
                     {"pricing.rules[0].hours_of_day": "INVALID_VALUE"}, id="stray-hours"),
        pytest.param(_rule(RuleKind.HOUR_OF_DAY, min_lead=timedelta(days=1)),
                     {"pricing.rules[0].lead_time.min_lead": "INVALID_VALUE"}, id="stray-min-lead"),
        pytest.param(PricingPolicy(rules=_rule(RuleKind.OCCUPANCY).rules * 21),
                     {"pricing.rules": "TOO_MANY"}, id="21-rules"),
        pytest.param(PricingPolicy(floor_minor=-1), {"pricing.floor_minor": "INVALID_VALUE"}, id="floor-negative"),
        pytest.param(PricingPolicy(ceiling_minor=-1), {"pricing.ceiling_minor": "INVALID_VALUE"},
                     id="ceiling-negative"),
        pytest.param(PricingPolicy(floor_minor=101, ceiling_minor=100), {"pricing.ceiling_minor": "INVALID_VALUE"},
                     id="floor-above-ceiling"),
    ],
)
def test_each_pricing_rule_names_its_field(policy: PricingPolicy, expected: dict[str, str]) -> None:
    found = validate_pricing(policy)
    assert {v.field: v.reason for v in found} == expected
    assert all(v.description for v in found)


def test_the_prefix_is_prepended() -> None:
    policy = PricingPolicy(rules=(PricingRule(RuleKind.HOUR_OF_DAY, 100, start_hour=5, end_hour=4),),
                           floor_minor=-1)
    assert {v.field for v in validate_pricing(policy, prefix="service.pricing")} == {
        "service.pricing.rules[0].hours_of_day.end_hour", "service.pricing.floor_minor"}
    assert {v.field for v in validate_pricing(policy, prefix="")} == {"rules[0].hours_of_day.end_hour", "floor_minor"}


# --- properties ---------------------------------------------------------------------------------

bps = st.integers(-10_000, 100_000)
pricing_rules = st.one_of(
    st.builds(PricingRule, kind=st.just(RuleKind.OCCUPANCY), adjustment_bps=bps,
              min_occupancy_bps=st.integers(0, 10_000)),
    st.builds(PricingRule, kind=st.just(RuleKind.LEAD_TIME), adjustment_bps=bps,
              max_lead=st.integers(1, 60 * 24 * 30).map(lambda m: timedelta(minutes=m))),
    st.builds(PricingRule, kind=st.just(RuleKind.LEAD_TIME), adjustment_bps=bps,
              min_lead=st.integers(1, 60 * 24 * 30).map(lambda m: timedelta(minutes=m))),
    st.builds(PricingRule, kind=st.just(RuleKind.DAY_OF_WEEK), adjustment_bps=bps,
              weekdays=st.frozensets(st.integers(0, 6), min_size=1)),
    st.integers(0, 23).flatmap(lambda start: st.builds(
        PricingRule, kind=st.just(RuleKind.HOUR_OF_DAY), adjustment_bps=bps, start_hour=st.just(start),
        end_hour=st.integers(start + 1, 24))),
)


@st.composite
def policies(draw: st.DrawFn) -> PricingPolicy:
    floor = draw(st.none() | st.integers(0, 50_000))
    ceiling = draw(st.none() | st.integers(floor or 0, 100_000))
    policy = PricingPolicy(rules=tuple(draw(st.lists(pricing_rules, max_size=6))), floor_minor=floor,
                           ceiling_minor=ceiling)
    assert validate_pricing(policy) == []
    return policy


@st.composite
def quotes(draw: st.DrawFn) -> tuple[PricingPolicy, Quote]:
    policy = draw(policies())
    capacity = draw(st.integers(1, 500))
    now = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 60 * 24 * 365)))
    result = quote(base_unit_minor=draw(st.integers(0, 200_000)), currency="EUR", policy=policy,
                   slot_start=now + timedelta(minutes=draw(st.integers(0, 60 * 24 * 60))),
                   zone=draw(st.sampled_from([LONDON, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")])),
                   now=now, seats_taken=draw(st.integers(0, capacity)), capacity=capacity,
                   seats=draw(st.integers(1, 100)))
    return policy, result


@settings(max_examples=200, deadline=None)
@given(quotes())
def test_quotes_add_up_stay_in_bounds_and_use_integers_only(case: tuple[PricingPolicy, Quote]) -> None:
    policy, result = case
    assert result.unit_minor == result.base_unit_minor + sum(a.amount_minor for a in result.adjustments)
    assert result.unit_minor >= 0
    if policy.floor_minor is not None:
        assert result.unit_minor >= policy.floor_minor
    if policy.ceiling_minor is not None:
        assert result.unit_minor <= policy.ceiling_minor
    assert result.total_minor == result.unit_minor * result.seats
    numbers = [result.base_unit_minor, result.unit_minor, result.seats, result.total_minor,
               *(a.amount_minor for a in result.adjustments)]
    assert all(type(n) is int for n in numbers)
    clamps = [a for a in result.adjustments if a.label in {"floor", "ceiling"}]
    assert len(clamps) <= 1 and (not clamps or clamps[0] is result.adjustments[-1])
    # Generated rules carry no label, so occupancy lines are recognisable by their derived one.
    assert sum(1 for a in result.adjustments if a.label.startswith("occupancy at least")) <= 1  # tiers never stack


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**12, 10**12), st.integers(-10_000, 100_000))
def test_apply_bps_is_the_exact_rational_rounded_half_away_from_zero(amount: int, rate: int) -> None:
    exact = Fraction(amount * rate, 10_000)
    rounded = apply_bps(amount, rate)
    assert type(rounded) is int
    assert abs(exact - rounded) <= Fraction(1, 2)
    if abs(exact - rounded) == Fraction(1, 2):
        assert abs(rounded) > abs(exact)  # a tie goes away from zero
    assert apply_bps(-amount, rate) == -rounded  # symmetric
