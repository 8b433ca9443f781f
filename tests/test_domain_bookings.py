"""The booking status machine, every pair of statuses."""

from __future__ import annotations

import itertools

import pytest

from foothills_rpc.domain.bookings import TRANSITIONS, Status, check_transition
from foothills_rpc.domain.errors import FailedPrecondition

ALLOWED = {(Status.PENDING, Status.CONFIRMED), (Status.PENDING, Status.CANCELLED),
           (Status.CONFIRMED, Status.CANCELLED), (Status.CONFIRMED, Status.COMPLETED)}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)),
                         ids=lambda s: s.value)
def test_every_transition(current: Status, target: Status) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
        return
    with pytest.raises(FailedPrecondition) as caught:
        check_transition(current, target)
    expected = "BOOKING_ALREADY_CANCELLED" if current is Status.CANCELLED else "INVALID_STATUS_TRANSITION"
    assert caught.value.reason == expected
    assert caught.value.metadata == {"status": current.value}


def test_cancelled_and_completed_are_final() -> None:
    assert TRANSITIONS[Status.CANCELLED] == TRANSITIONS[Status.COMPLETED] == frozenset()
