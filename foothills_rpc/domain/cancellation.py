"""Cancellation policy: how much cancelling costs, or whether it is allowed, by how close the start is.

A policy is a list of tiers ordered from the earliest to the latest (before_start descending), e.g.
"free until 24 h before, 50 % from 24 h to 2 h, refused in the last 2 h" is
`(CancellationTier(24h, 5000), CancellationTier(2h, 0, allowed=False))`. Pure: `now` is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from foothills_rpc.domain.errors import FieldViolation
from foothills_rpc.domain.pricing import apply_bps

BPS = 10_000
MAX_TIERS = 10
OUTSIDE_CANCELLATION_WINDOW = "OUTSIDE_CANCELLATION_WINDOW"


@dataclass(frozen=True)
class CancellationTier:
    """Applies when cancelling less than `before_start` ahead of the start (and no later tier applies)."""

    before_start: timedelta
    fee_bps: int  # of the charged total, 0..10000
    allowed: bool = True  # False: cancelling is refused inside this tier


@dataclass(frozen=True)
class CancellationPolicy:
    """Tiers by before_start descending; cancelling earlier than the first tier is free."""

    tiers: tuple[CancellationTier, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """Whether a cancellation may go ahead now, and its fee; `reason` is "" when allowed."""

    allowed: bool
    fee_minor: int
    tier_index: int | None
    reason: str


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def validate_cancellation(policy: CancellationPolicy, prefix: str = "cancellation_policy") -> list[FieldViolation]:
    """Every problem of `policy`; paths follow the proto (`tiers[1].before_start`)."""
    if len(policy.tiers) > MAX_TIERS:
        return [FieldViolation(_path(prefix, "tiers"), f"must have at most {MAX_TIERS} tiers", "TOO_MANY")]
    found = []
    for i, tier in enumerate(policy.tiers):
        path = _path(prefix, f"tiers[{i}]")
        if tier.before_start <= timedelta(0):
            found.append(FieldViolation(f"{path}.before_start", "must be positive"))
        elif i and tier.before_start >= policy.tiers[i - 1].before_start:
            found.append(FieldViolation(f"{path}.before_start",
                                        f"must be shorter than tiers[{i - 1}].before_start (tiers go from the "
                                        "earliest to the latest)", "UNORDERED_TIERS"))
        if not 0 <= tier.fee_bps <= BPS:
            found.append(FieldViolation(f"{path}.fee_bps", f"must be between 0 and {BPS}"))
    return found


def evaluate(policy: CancellationPolicy, *, start: datetime, now: datetime, charged_minor: int) -> Verdict:
    """The verdict on cancelling a booking that starts at `start`, at `now`.

    At or after the start cancelling is refused. Otherwise the tier with the smallest before_start
    that the lead is still under applies; a lead exactly equal to a tier's before_start is outside
    that tier (the earlier, cheaper rule applies). No tier: free. The fee is rounded half away
    from zero with the same integer arithmetic as prices (`pricing.apply_bps`).
    """
    for name, value in (("start", start), ("now", now)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
    if charged_minor < 0:
        raise ValueError("charged_minor must not be negative")
    lead = start - now
    if lead <= timedelta(0):
        return Verdict(allowed=False, fee_minor=0, tier_index=None, reason=OUTSIDE_CANCELLATION_WINDOW)
    chosen: int | None = None
    for index, tier in enumerate(policy.tiers):
        if lead < tier.before_start and (chosen is None or tier.before_start < policy.tiers[chosen].before_start):
            chosen = index
    if chosen is None:
        return Verdict(allowed=True, fee_minor=0, tier_index=None, reason="")
    tier = policy.tiers[chosen]
    if not tier.allowed:
        return Verdict(allowed=False, fee_minor=0, tier_index=chosen, reason=OUTSIDE_CANCELLATION_WINDOW)
    return Verdict(allowed=True, fee_minor=apply_bps(charged_minor, tier.fee_bps), tier_index=chosen, reason="")
