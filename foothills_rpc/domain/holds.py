"""Hold states and the moves between them: an active hold ends exactly once, used by a booking,
released by its customer, or expired; every other move is refused."""

from __future__ import annotations

import enum


class HoldStatus(enum.StrEnum):
    ACTIVE = "active"  # its seats are taken (until `expires_at`, after which they count as free)
    USED = "used"  # a booking took its seats
    RELEASED = "released"  # given back before its expiry
    EXPIRED = "expired"  # given back after its expiry


TRANSITIONS: dict[HoldStatus, frozenset[HoldStatus]] = {
    HoldStatus.ACTIVE: frozenset({HoldStatus.USED, HoldStatus.RELEASED, HoldStatus.EXPIRED}),
    HoldStatus.USED: frozenset(),
    HoldStatus.RELEASED: frozenset(),
    HoldStatus.EXPIRED: frozenset(),
}


def may_become(current: HoldStatus, target: HoldStatus) -> bool:
    return target in TRANSITIONS[current]
