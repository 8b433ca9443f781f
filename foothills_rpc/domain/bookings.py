"""Booking statuses and the rules of moving between them."""

from __future__ import annotations

import enum

from foothills_rpc.domain.errors import FailedPrecondition


class Status(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


ACTIVE = frozenset({Status.PENDING, Status.CONFIRMED})  # these hold seats

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.CONFIRMED, Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.CANCELLED, Status.COMPLETED}),
    Status.CANCELLED: frozenset(),
    Status.COMPLETED: frozenset(),
}


def check_transition(current: Status, target: Status) -> None:
    """Raises FailedPrecondition naming the current status when `current -> target` is not allowed."""
    if target in TRANSITIONS[current]:
        return
    if current is Status.CANCELLED:
        raise FailedPrecondition("the booking is already cancelled", reason="BOOKING_ALREADY_CANCELLED",
                                 metadata={"status": current.value})
    raise FailedPrecondition(f"a {current.value} booking cannot become {target.value}",
                             reason="INVALID_STATUS_TRANSITION", metadata={"status": current.value})
