"""Waiting-line entry states and the moves between them.

A customer waits; freed seats make an offer (a hold in their name); the offer is booked, left or lapses;
a line whose slot started or whose service was archived closes. Joining again (after leaving, an offer
that lapsed, a booking since cancelled, or a closed line reopened by a new start) puts the entry at the
end of the line. Every other move is refused.
"""

from __future__ import annotations

import enum

from foothills_rpc.domain.holds import HoldStatus


class EntryStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # holds seats for the customer until the offer's hold ends
    BOOKED = "booked"  # the offer's hold was used by a booking
    LEFT = "left"  # the customer left the line (or released the offer's hold)
    EXPIRED = "expired"  # the offer's hold lapsed
    CLOSED = "closed"  # the slot started or the service was archived while waiting


LIVE = frozenset({EntryStatus.WAITING, EntryStatus.OFFERED})  # in the line now

TRANSITIONS: dict[EntryStatus, frozenset[EntryStatus]] = {
    EntryStatus.WAITING: frozenset({EntryStatus.OFFERED, EntryStatus.LEFT, EntryStatus.CLOSED}),
    EntryStatus.OFFERED: frozenset({EntryStatus.BOOKED, EntryStatus.LEFT, EntryStatus.EXPIRED}),
    EntryStatus.BOOKED: frozenset({EntryStatus.WAITING}),
    EntryStatus.LEFT: frozenset({EntryStatus.WAITING}),
    EntryStatus.EXPIRED: frozenset({EntryStatus.WAITING}),
    EntryStatus.CLOSED: frozenset({EntryStatus.WAITING}),
}

# What an offered entry becomes when its offer's hold ends.
FOLLOWS_HOLD: dict[HoldStatus, EntryStatus] = {
    HoldStatus.USED: EntryStatus.BOOKED, HoldStatus.EXPIRED: EntryStatus.EXPIRED,
    HoldStatus.RELEASED: EntryStatus.LEFT,
}


def may_become(current: EntryStatus, target: EntryStatus) -> bool:
    return target in TRANSITIONS[current]
