"""Cancellation tiers as pure functions: the edges of each tier, refusal, fees, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foothills_rpc.domain.cancellation import (
    CancellationPolicy,
    CancellationTier,
    Verdict,
    evaluate,
    validate_cancellation,
)

START = datetime(2030, 1, 9, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
# Free until 24 h before the start, 50 % from 24 h to 2 h, no cancellation in the last 2 h.
ISSUE_POLICY = CancellationPolicy(tiers=(CancellationTier(timedelta(hours=24), 5000),
                                         CancellationTier(timedelta(hours=2), 0, allowed=False)))
FREE = Verdict(allowed=True, fee_minor=0, tier_index=None, reason="")
REFUSED_AFTER_START = Verdict(allowed=False, fee_minor=0, tier_index=None, reason="OUTSIDE_CANCELLATION_WINDOW")


@pytest.mark.parametrize(
    ("lead", "expected"),
    [
        pytest.param(timedelta(days=3), FREE, id="3-days"),
        pytest.param(timedelta(hours=24), FREE, id="exactly-24h-is-free"),
        pytest.param(timedelta(hours=24) - SECOND, Verdict(True, 2500, 0, ""), id="24h-minus-1s-half"),
        pytest.param(timedelta(hours=2), Verdict(True, 2500, 0, ""), id="exactly-2h-half"),
        pytest.param(timedelta(hours=2) - SECOND, Verdict(False, 0, 1, "OUTSIDE_CANCELLATION_WINDOW"),
                     id="2h-minus-1s-refused"),
        pytest.param(SECOND, Verdict(False, 0, 1, "OUTSIDE_CANCELLATION_WINDOW"), id="1s-before-refused"),
        pytest.param(timedelta(0), REFUSED_AFTER_START, id="at-start-refused"),
        pytest.param(-timedelta(hours=1), REFUSED_AFTER_START, id="after-start-refused"),
    ],
)
def test_the_issue_example_at_every_edge(lead: timedelta, expected: Verdict) -> None:
    assert evaluate(ISSUE_POLICY, start=START, now=START - lead, charged_minor=5000) == expected


@pytest.mark.parametrize("lead", [timedelta(days=400), timedelta(minutes=1), SECOND, timedelta(microseconds=1)])
def test_an_empty_policy_is_free_until_the_start(lead: timedelta) -> None:
    assert evaluate(CancellationPolicy(), start=START, now=START - lead, charged_minor=9999) == FREE
    assert evaluate(CancellationPolicy(), start=START, now=START, charged_minor=9999) == REFUSED_AFTER_START


def test_fees_round_half_away_from_zero_in_integers() -> None:
    policy = CancellationPolicy(tiers=(CancellationTier(timedelta(hours=1), 3333),))
    now = START - timedelta(minutes=30)
    assert evaluate(policy, start=START, now=now, charged_minor=15).fee_minor == 5  # 4.9995 -> 5
    assert evaluate(policy, start=START, now=now, charged_minor=3).fee_minor == 1  # 0.9999 -> 1
    half = CancellationPolicy(tiers=(CancellationTier(timedelta(hours=1), 5000),))
    assert evaluate(half, start=START, now=now, charged_minor=1).fee_minor == 1  # 0.5 -> 1
    assert evaluate(half, start=START, now=now, charged_minor=0).fee_minor == 0
    full = CancellationPolicy(tiers=(CancellationTier(timedelta(hours=1), 10_000),))
    assert evaluate(full, start=START, now=now, charged_minor=12_345).fee_minor == 12_345


def test_the_smallest_tier_the_lead_is_under_wins() -> None:
    policy = CancellationPolicy(tiers=(CancellationTier(timedelta(days=7), 1000),
                                       CancellationTier(timedelta(days=2), 3000),
                                       CancellationTier(timedelta(hours=6), 8000)))
    charged = 10_000
    cases = {timedelta(days=8): (None, 0), timedelta(days=3): (0, 1000), timedelta(days=1): (1, 3000),
             timedelta(hours=1): (2, 8000)}
    for lead, (tier, fee) in cases.items():
        verdict = evaluate(policy, start=START, now=START - lead, charged_minor=charged)
        assert (verdict.allowed, verdict.tier_index, verdict.fee_minor) == (True, tier, fee), lead


def test_any_aware_zone_works_and_naive_or_negative_inputs_are_refused() -> None:
    local_now = (START - timedelta(hours=3)).astimezone(ZoneInfo("America/New_York"))
    assert evaluate(ISSUE_POLICY, start=START, now=local_now, charged_minor=100) == Verdict(True, 50, 0, "")
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(ISSUE_POLICY, start=START, now=START.replace(tzinfo=None), charged_minor=100)
    with pytest.raises(ValueError, match="negative"):
        evaluate(ISSUE_POLICY, start=START, now=START - timedelta(days=1), charged_minor=-1)


# --- validation ---------------------------------------------------------------------------------


def test_sound_policies_have_no_violations() -> None:
    assert validate_cancellation(ISSUE_POLICY) == []
    assert validate_cancellation(CancellationPolicy()) == []
    ten = CancellationPolicy(tiers=tuple(CancellationTier(timedelta(hours=10 - i), 1000 * i) for i in range(10)))
    assert validate_cancellation(ten) == []
    bounds = CancellationPolicy(tiers=(CancellationTier(timedelta(days=1), 10_000),
                                       CancellationTier(SECOND, 0)))
    assert validate_cancellation(bounds) == []


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        pytest.param((CancellationTier(timedelta(hours=2), 0), CancellationTier(timedelta(hours=24), 5000)),
                     {"cancellation_policy.tiers[1].before_start": "UNORDERED_TIERS"}, id="ascending"),
        pytest.param((CancellationTier(timedelta(hours=2), 0), CancellationTier(timedelta(hours=2), 5000)),
                     {"cancellation_policy.tiers[1].before_start": "UNORDERED_TIERS"}, id="equal"),
        pytest.param((CancellationTier(timedelta(0), 0),),
                     {"cancellation_policy.tiers[0].before_start": "INVALID_VALUE"}, id="zero"),
        pytest.param((CancellationTier(-SECOND, 0),),
                     {"cancellation_policy.tiers[0].before_start": "INVALID_VALUE"}, id="negative"),
        pytest.param((CancellationTier(timedelta(hours=1), 10_001),),
                     {"cancellation_policy.tiers[0].fee_bps": "INVALID_VALUE"}, id="fee-over-100%"),
        pytest.param((CancellationTier(timedelta(hours=1), -1),),
                     {"cancellation_policy.tiers[0].fee_bps": "INVALID_VALUE"}, id="fee-negative"),
        pytest.param(tuple(CancellationTier(timedelta(hours=11 - i), 0) for i in range(11)),
                     {"cancellation_policy.tiers": "TOO_MANY"}, id="11-tiers"),
    ],
)
def test_each_cancellation_rule_names_its_field(tiers: tuple[CancellationTier, ...],
                                                expected: dict[str, str]) -> None:
    found = validate_cancellation(CancellationPolicy(tiers=tiers))
    assert {v.field: v.reason for v in found} == expected
    assert all(v.description for v in found)


def test_the_prefix_is_prepended() -> None:
    policy = CancellationPolicy(tiers=(CancellationTier(timedelta(0), 20_000),))
    assert {v.field for v in validate_cancellation(policy, prefix="service.cancellation_policy")} == {
        "service.cancellation_policy.tiers[0].before_start", "service.cancellation_policy.tiers[0].fee_bps"}
    assert {v.field for v in validate_cancellation(policy, prefix="")} == {"tiers[0].before_start",
                                                                           "tiers[0].fee_bps"}


# --- properties ---------------------------------------------------------------------------------


@st.composite
def rising_policies(draw: st.DrawFn) -> CancellationPolicy:
    """Valid policies whose fee never falls as the start approaches; the last tiers may refuse."""
    minutes = sorted(draw(st.lists(st.integers(1, 60 * 24 * 30), min_size=0, max_size=10, unique=True)),
                     reverse=True)
    fees = sorted(draw(st.lists(st.integers(0, 10_000), min_size=len(minutes), max_size=len(minutes))))
    refused_from = draw(st.integers(0, len(minutes)))
    policy = CancellationPolicy(tiers=tuple(
        CancellationTier(timedelta(minutes=m), fee, allowed=i < refused_from)
        for i, (m, fee) in enumerate(zip(minutes, fees, strict=True))))
    assert validate_cancellation(policy) == []
    return policy


leads = st.integers(-60 * 24, 60 * 24 * 40).map(lambda m: timedelta(minutes=m))


@settings(max_examples=200, deadline=None)
@given(rising_policies(), st.integers(0, 10**9), st.lists(leads, min_size=2, max_size=8))
def test_fees_stay_within_the_charge_and_rise_as_the_start_nears(policy: CancellationPolicy, charged: int,
                                                                  lead_list: list[timedelta]) -> None:
    verdicts = [evaluate(policy, start=START, now=START - lead, charged_minor=charged)
                for lead in sorted(lead_list, reverse=True)]  # now moves toward (and past) the start
    for verdict in verdicts:
        assert type(verdict.fee_minor) is int
        assert 0 <= verdict.fee_minor <= charged
        assert verdict.allowed == (verdict.reason == "")
        assert verdict.allowed or verdict.fee_minor == 0
    allowed_fees = [v.fee_minor for v in verdicts if v.allowed]
    assert allowed_fees == sorted(allowed_fees)
    # Once refused, cancelling stays refused for every later `now`.
    first_refusal = next((i for i, v in enumerate(verdicts) if not v.allowed), len(verdicts))
    assert all(not v.allowed for v in verdicts[first_refusal:])
