"""Support request states and the moves between them: open -> in progress -> resolved -> closed; a
resolved request may reopen. Every other move is refused, in a sentence a person reads."""

from __future__ import annotations

import enum

from foothills_rpc.domain.errors import FailedPrecondition


class SupportStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


TRANSITIONS: dict[SupportStatus, frozenset[SupportStatus]] = {
    SupportStatus.OPEN: frozenset({SupportStatus.IN_PROGRESS}),
    SupportStatus.IN_PROGRESS: frozenset({SupportStatus.RESOLVED}),
    SupportStatus.RESOLVED: frozenset({SupportStatus.CLOSED, SupportStatus.OPEN}),
    SupportStatus.CLOSED: frozenset(),
}
# How a refused transition reads: "an in-progress support request cannot be closed".
_AS_STATE = {SupportStatus.OPEN: "an open", SupportStatus.IN_PROGRESS: "an in-progress",
             SupportStatus.RESOLVED: "a resolved", SupportStatus.CLOSED: "a closed"}
_AS_CHANGE = {SupportStatus.OPEN: "reopened", SupportStatus.IN_PROGRESS: "put in progress",
              SupportStatus.RESOLVED: "resolved", SupportStatus.CLOSED: "closed"}


def check_transition(current: SupportStatus, target: SupportStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise FailedPrecondition(f"{_AS_STATE[current]} support request cannot be {_AS_CHANGE[target]}",
                                 reason="INVALID_STATUS_TRANSITION")
