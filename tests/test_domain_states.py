"""The state tables of holds, waiting-line entries and support requests: every move not listed is refused,
and the database's check constraints admit exactly the states of each enum."""

from __future__ import annotations

import itertools

import pytest

from foothills_rpc.db.models import Base
from foothills_rpc.domain import holds, support, waitlist
from foothills_rpc.domain.bookings import Status
from foothills_rpc.domain.errors import FailedPrecondition
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.support import SupportStatus
from foothills_rpc.domain.waitlist import FOLLOWS_HOLD, EntryStatus

HOLD_MOVES = {(HoldStatus.ACTIVE, HoldStatus.USED), (HoldStatus.ACTIVE, HoldStatus.RELEASED),
              (HoldStatus.ACTIVE, HoldStatus.EXPIRED)}
ENTRY_MOVES = {(EntryStatus.WAITING, EntryStatus.OFFERED), (EntryStatus.WAITING, EntryStatus.LEFT),
               (EntryStatus.WAITING, EntryStatus.CLOSED), (EntryStatus.OFFERED, EntryStatus.BOOKED),
               (EntryStatus.OFFERED, EntryStatus.LEFT), (EntryStatus.OFFERED, EntryStatus.EXPIRED),
               *((ended, EntryStatus.WAITING) for ended in (EntryStatus.BOOKED, EntryStatus.LEFT,
                                                            EntryStatus.EXPIRED, EntryStatus.CLOSED))}
SUPPORT_MOVES = {(SupportStatus.OPEN, SupportStatus.IN_PROGRESS), (SupportStatus.IN_PROGRESS, SupportStatus.RESOLVED),
                 (SupportStatus.RESOLVED, SupportStatus.CLOSED), (SupportStatus.RESOLVED, SupportStatus.OPEN)}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(HoldStatus, HoldStatus)), ids=str)
def test_every_hold_move(current: HoldStatus, target: HoldStatus) -> None:
    assert holds.may_become(current, target) == ((current, target) in HOLD_MOVES)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(EntryStatus, EntryStatus)), ids=str)
def test_every_waiting_line_move(current: EntryStatus, target: EntryStatus) -> None:
    assert waitlist.may_become(current, target) == ((current, target) in ENTRY_MOVES)


def test_an_offer_follows_its_hold_along_allowed_moves_only() -> None:
    assert set(FOLLOWS_HOLD) == {HoldStatus.USED, HoldStatus.RELEASED, HoldStatus.EXPIRED}
    assert all(waitlist.may_become(EntryStatus.OFFERED, entry) for entry in FOLLOWS_HOLD.values())


@pytest.mark.parametrize(("current", "target"), list(itertools.product(SupportStatus, SupportStatus)), ids=str)
def test_every_support_move(current: SupportStatus, target: SupportStatus) -> None:
    if (current, target) in SUPPORT_MOVES:
        support.check_transition(current, target)
        return
    with pytest.raises(FailedPrecondition) as caught:
        support.check_transition(current, target)
    assert caught.value.reason == "INVALID_STATUS_TRANSITION"
    assert caught.value.message.endswith("support request cannot be " + {
        SupportStatus.OPEN: "reopened", SupportStatus.IN_PROGRESS: "put in progress",
        SupportStatus.RESOLVED: "resolved", SupportStatus.CLOSED: "closed"}[target])


@pytest.mark.parametrize(("table", "states"), [("bookings", Status), ("holds", HoldStatus),
                                               ("waitlist_entries", EntryStatus), ("support_requests", SupportStatus)])
def test_each_status_check_constraint_admits_exactly_its_enum(table: str, states: type) -> None:
    (check,) = [c for c in Base.metadata.tables[table].constraints if c.name == "ck_" + table + "_status"]
    assert str(check.sqltext) == "status IN ({})".format(", ".join(f"'{s.value}'" for s in states))
