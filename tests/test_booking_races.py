"""Booking races: simultaneous calls through two real server processes on one PostgreSQL database.

Jepsen in miniature. Two `foothills-rpc serve` subprocesses share one fresh, migrated PostgreSQL
database and run on the real clock. Everything is set up through the API (the first admin from
`foothills-rpc create-admin`), then each race fires its calls at once with `asyncio.gather`,
alternating between the two processes, and checks every answer:

1. a capacity-1 slot, 100 users at once: exactly one booking;
2. a capacity-5 slot, 60 users at once: exactly five;
3. one user, two overlapping slots of two providers' services, 10 attempts at each: exactly one;
4. a reschedule into a capacity-1 slot racing 20 creates there (and 10 creates at the slot it frees):
   exactly one of them gets the seat, and the freed seat is free exactly when the reschedule won;
4b. 10 reschedules at once, 5 from S1 to S2 and 5 from S2 to S1, with room for all: all succeed;
5. one request_id sent 20 times at once: one booking and the same answer every time (and the same
   for a reschedule); the request_id with other content: REQUEST_ID_REUSED;
6. a capacity-5 slot, 60 users holding at once: exactly five holds;
7. holds expiring while bookings race for the freed seats: the test moves the holds' expiry into the
   past in the database (time travel for those rows, no sleeping), then 30 users book, the holders
   try to book with their holds and both processes' sweepers run every 50 ms, all at once: exactly
   capacity bookings, every holder HOLD_EXPIRED, each hold expired once (seats_taken stays exact);
8. one customer, a daily limit of 3, 14 bookings and 6 holds of 20 different hours of one day at once:
   exactly 3 succeed, the rest USER_OVER_BOOKING_LIMIT;
9. a full capacity-3 slot with 6 customers in line: its 3 bookings cancelled at once while 10 others try
   to book it: exactly the first 3 in line get an offer (one hold each), nobody else gets the seats;
   then those offers expire (time travel again) while 10 others try to book and both sweepers run:
   exactly the next 3 get offers. No seat offered twice, no offer lost.
10. one booking cancelled 10 times at once by its customer, through both processes, half of the calls
   with a request_id, while the test holds the booking's row lock until all 10 wait for it: each
   cancellation read the booking as confirmed, yet exactly one cancels it, the others are refused
   BOOKING_ALREADY_CANCELLED, its seat is given back once and it has one `cancelled` event.

Every refusal must be FAILED_PRECONDITION with a documented reason, ABORTED with a reason, or (race
5) ALREADY_EXISTS REQUEST_ID_REUSED; never INTERNAL, UNKNOWN, UNAVAILABLE, RESOURCE_EXHAUSTED or a
timeout. Each race runs ROUNDS rounds (3; set RACE_ROUNDS for more) on fresh slots. After each race
a checker reads the database directly: no slot over capacity, every slot's seats_taken equal to the
seats of its active bookings, no customer (nor provider) with overlapping active bookings, one
`created` event per booking, and the stored bookings exactly the acknowledged ones (nothing lost,
nothing phantom). Run with `-s` to see the one-line summary of each race.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2
from psycopg import sql
from sqlalchemy.engine import make_url

from foothills.admin.v1 import admin_pb2
from foothills.auth.v1 import auth_pb2, user_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from tests.catalog_support import ts
from tests.cluster_support import (
    ADMIN_EMAIL,
    CALL_TIMEOUT,
    PASSWORD,
    START_TIMEOUT,
    Node,
    Process,
    User,
    World,
    check_database,
    cluster_env,
    sign_up,
    wait_until_serving,
)
from tests.support import admin_execute, free_port, psycopg_conninfo, reason, stop_process

ROUNDS = int(os.environ.get("RACE_ROUNDS", "3"))
CUSTOMERS = 100
OK = grpc.StatusCode.OK
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ABORTED = grpc.StatusCode.ABORTED
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS



# --- the cluster: one database, two server processes -------------------------------------------


@pytest.fixture(scope="module")
def race_database(postgres_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for this module (cloned from the session's template)."""
    name = f"foothills_race_{uuid.uuid4().hex[:12]}"
    admin_execute(postgres_url, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(postgres_template)))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    admin_execute(postgres_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))




@pytest.fixture(scope="module")
def processes(race_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Process]]:
    """The first admin (from the command line), then two `serve` processes on the same database."""
    folder = tmp_path_factory.mktemp("races")
    env = cluster_env(race_database, folder)
    created = subprocess.run(
        [sys.executable, "-m", "foothills_rpc.cli", "create-admin", ADMIN_EMAIL, "--display-name", "Race Admin"],
        cwd=folder, env={**env, "FOOTHILLS_ADMIN_PASSWORD": PASSWORD}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"created admin users/[0-9a-f]{32} <.+>\n", created.stdout), created.stdout
    started: list[Process] = []
    try:
        for index in range(2):
            port = free_port()
            log = folder / f"server{index}.log"
            with log.open("wb") as stderr:
                popen = subprocess.Popen(
                    [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{port}"],
                    cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
            started.append(Process(popen=popen, port=port, log=log))
        yield started
    finally:
        codes = [stop_process(process.popen) for process in started]
    for process, code in zip(started, codes, strict=True):
        assert code == 0, f"server on {process.port} exited with {code} after SIGTERM:\n{process.log_text()}"


@pytest.fixture(scope="module")
async def world(processes: list[Process], race_database: str) -> AsyncIterator[World]:
    nodes = [Node.connect(process.port) for process in processes]
    try:
        await asyncio.gather(*(wait_until_serving(p, n) for p, n in zip(processes, nodes, strict=True)))
        login = await nodes[0].auth.Login(auth_pb2.LoginRequest(email=ADMIN_EMAIL, password=PASSWORD))
        assert login.user.role == user_pb2.ROLE_ADMIN
        admin = User(name=str(login.user.name), email=ADMIN_EMAIL, token=str(login.credentials.access_token))
        tag = uuid.uuid4().hex[:8]
        providers = await sign_up(nodes, [f"race.provider{i}.{tag}@example.com" for i in range(2)])
        for i, provider in enumerate(providers):
            promoted = await nodes[i % 2].admin.SetUserRole(admin_pb2.SetUserRoleRequest(
                name=provider.name, role=user_pb2.ROLE_PROVIDER), metadata=admin.metadata)
            assert promoted.user.role == user_pb2.ROLE_PROVIDER
        category = (await nodes[1].catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name=f"Races {tag}")), metadata=admin.metadata)).category.name
        customers = await sign_up(nodes, [f"race.customer{i}.{tag}@example.com" for i in range(CUSTOMERS)])
        # Slots at least two days ahead on the real clock, from a UTC midnight; races never share an hour.
        first = (datetime.now(UTC) + timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
        yield World(nodes=nodes, processes=processes, database_url=race_database, admin=admin,
                    providers=[p.name for p in providers], category=str(category), customers=customers,
                    first_start=first)
    finally:
        for node in nodes:
            await node.channel.close()


# --- firing calls and judging answers --------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    reason: str
    response: Any = None
    message: str = ""

    @property
    def label(self) -> str:
        return self.code.name if self.code is OK else f"{self.code.name}/{self.reason}"


async def _outcome(call: Awaitable[Any]) -> Outcome:
    try:
        return Outcome(code=OK, reason="", response=await call)
    except grpc.aio.AioRpcError as error:
        try:
            why = reason(error)
        except AssertionError:
            why = "<no ErrorInfo>"
        return Outcome(code=error.code(), reason=why, message=str(error.details()))


async def later(delay: float, call: Awaitable[Any]) -> Any:
    """`call`, started `delay` seconds from now (0: at once)."""
    if delay:
        await asyncio.sleep(delay)
    return await call


async def fire(calls: Sequence[Awaitable[Any]]) -> list[Outcome]:
    """All calls at once; every answer, in order."""
    return list(await asyncio.gather(*(_outcome(call) for call in calls)))


def assert_clean(outcomes: Sequence[Outcome], refusals: set[str], *,
                 also: frozenset[tuple[grpc.StatusCode, str]] = frozenset()) -> None:
    """Every failure is FAILED_PRECONDITION with one of `refusals`, ABORTED with a reason, or in `also`."""
    bad = [o for o in outcomes if o.code is not OK and not (
        (o.code is FAILED_PRECONDITION and o.reason in refusals)
        or (o.code is ABORTED and o.reason not in {"", "<no ErrorInfo>"})
        or (o.code, o.reason) in also)]
    assert not bad, f"unclean answers {Counter(o.label for o in bad)}; first: {bad[0]}"


@dataclass
class Tally:
    """What one race saw over its rounds, for the summary line."""

    race: str
    rounds: int = 0
    calls: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, outcomes: Sequence[Outcome]) -> None:
        self.calls += len(outcomes)
        self.ok += sum(o.code is OK for o in outcomes)
        self.errors.update(o.label for o in outcomes if o.code is not OK)

    def line(self) -> str:
        errors = ", ".join(f"{label} x{count}" for label, count in sorted(self.errors.items())) or "none"
        extra = f"; {'; '.join(self.notes)}" if self.notes else ""
        return (f"[races] {self.race}: {self.rounds} rounds, {self.calls} calls fired, {self.ok} OK; "
                f"errors: {errors}{extra} ({time.monotonic() - self.started:.1f}s)")


async def create(world: World, index: int, user: User, service: str, start: timestamp_pb2.Timestamp, *,
                 seats: int = 0, request_id: str | None = None) -> booking_pb2.CreateBookingResponse:
    """CreateBooking on process `index % 2`; a coroutine, so the call starts when `fire` schedules it."""
    return await world.node(index).booking.CreateBooking(booking_pb2.CreateBookingRequest(
        service=service, start_time=start, seats=seats, request_id=request_id or uuid.uuid4().hex),
        metadata=user.metadata, timeout=CALL_TIMEOUT)


async def reschedule(world: World, index: int, user: User, name: str, start: timestamp_pb2.Timestamp,
                     request_id: str) -> booking_pb2.RescheduleBookingResponse:
    return await world.node(index).booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=name, new_start_time=start, request_id=request_id), metadata=user.metadata, timeout=CALL_TIMEOUT)


async def cancel(world: World, index: int, user: User, name: str, *,
                 request_id: str = "") -> booking_pb2.CancelBookingResponse:
    return await world.node(index).booking.CancelBooking(booking_pb2.CancelBookingRequest(
        name=name, request_id=request_id), metadata=user.metadata, timeout=CALL_TIMEOUT)


def booked(world: World, outcomes: Sequence[Outcome]) -> list[booking_pb2.Booking]:
    """The bookings of the successful outcomes, remembered as acknowledged."""
    bookings = [o.response.booking for o in outcomes if o.code is OK]
    world.acknowledged.update(b.name for b in bookings)
    return bookings


# --- the checker: the database itself --------------------------------------------------------

async def checked(world: World) -> None:
    print(await asyncio.to_thread(check_database, world.database_url, set(world.acknowledged)))


# --- the races -------------------------------------------------------------------------------


async def test_a_capacity_one_slot_has_exactly_one_winner(world: World) -> None:
    tally = Tally(f"race 1, capacity-1 slot, {CUSTOMERS} users at once")
    service = await world.service("one seat", capacity=1, provider=0)
    for _ in range(ROUNDS):
        start = world.take_hours(1)
        slot = await world.slot(service, start)
        assert (slot.capacity, slot.remaining_seats) == (1, 1)
        outcomes = await fire([create(world, i, user, service, slot.start_time)
                               for i, user in enumerate(world.customers)])
        tally.add(outcomes)
        tally.rounds += 1
        assert_clean(outcomes, {"SLOT_UNAVAILABLE"})
        winners = booked(world, outcomes)
        assert len(winners) == 1, Counter(o.label for o in outcomes)
        assert winners[0].start_time.ToDatetime(tzinfo=UTC) == start
        assert await world.remaining(service, start) == 0
        listed = await world.active_bookings(service, start, start + timedelta(minutes=1))
        assert [b.name for b in listed] == [winners[0].name]
    print(tally.line())
    await checked(world)


async def test_a_capacity_five_slot_has_exactly_five_winners(world: World) -> None:
    users = world.customers[CUSTOMERS - 60:]
    tally = Tally(f"race 2, capacity-5 slot, {len(users)} users at once")
    service = await world.service("five seats", capacity=5, provider=1)
    for _ in range(ROUNDS):
        start = world.take_hours(1)
        slot = await world.slot(service, start)
        assert (slot.capacity, slot.remaining_seats) == (5, 5)
        outcomes = await fire([create(world, i, user, service, slot.start_time) for i, user in enumerate(users)])
        tally.add(outcomes)
        tally.rounds += 1
        assert_clean(outcomes, {"SLOT_UNAVAILABLE"})
        winners = booked(world, outcomes)
        assert len(winners) == 5, Counter(o.label for o in outcomes)
        assert len({b.customer for b in winners}) == 5
        assert await world.remaining(service, start) == 0
        listed = await world.active_bookings(service, start, start + timedelta(minutes=1))
        assert sorted(b.name for b in listed) == sorted(b.name for b in winners)
        assert sum(b.seats for b in listed) == 5
    print(tally.line())
    await checked(world)


async def test_one_user_racing_for_two_overlapping_services_gets_one(world: World) -> None:
    tally = Tally("race 3, one user, 10 attempts at each of two overlapping services of two providers")
    # Y runs 120 minutes from each even hour; X runs 60 minutes, so X at T+1h overlaps Y at T.
    short = await world.service("overlap short", capacity=10, provider=0, minutes=60)
    long = await world.service("overlap long", capacity=10, provider=1, minutes=120)
    winners_by_service: Counter[str] = Counter()
    for round_ in range(ROUNDS):
        start = world.take_hours(2)
        long_slot = await world.slot(long, start)
        short_slot = await world.slot(short, start + timedelta(hours=1))
        user = world.customers[round_]
        calls = []
        for i in range(20):
            # Alternate which service's attempt leaves first, round by round.
            service, slot = (short, short_slot) if (i + round_) % 2 == 0 else (long, long_slot)
            calls.append(create(world, i // 2, user, service, slot.start_time))
        outcomes = await fire(calls)
        tally.add(outcomes)
        tally.rounds += 1
        assert_clean(outcomes, {"OVERLAPPING_BOOKING", "SLOT_ALREADY_BOOKED_BY_USER"})
        winners = booked(world, outcomes)
        assert len(winners) == 1, Counter(o.label for o in outcomes)
        winners_by_service["short" if winners[0].service == short else "long"] += 1
        mine = [b for service in (short, long)
                for b in await world.active_bookings(service, start, start + timedelta(hours=2), caller=user)]
        assert [b.name for b in mine] == [winners[0].name]
        assert await world.remaining(short, short_slot.start_time.ToDatetime(tzinfo=UTC)) == 10 - (
            winners[0].service == short)
        assert await world.remaining(long, start) == 10 - (winners[0].service == long)
    tally.notes.append(f"winning service: {dict(winners_by_service)}")
    print(tally.line())
    await checked(world)


async def test_a_reschedule_racing_creates_for_the_same_seat(world: World) -> None:
    tally = Tally("race 4, RescheduleBooking into a capacity-1 slot vs 20 creates there + 10 creates at the "
                  "slot it frees")
    service = await world.service("reschedule", capacity=1, provider=0)
    into_new, into_old = world.customers[:20], world.customers[20:30]
    won: list[str] = []  # per round: R when the reschedule got the seat, C when a create did
    freed: list[list[booking_pb2.Booking]] = []  # per round: creates that took the seat the reschedule freed
    # Rounds 1..ROUNDS: everything at once, the reschedule sent first, amid the creates, or last. Then
    # as many rounds where the creates leave a few milliseconds after the reschedule, still while its
    # transaction runs, so that the branch where the reschedule wins is exercised too.
    head_starts = [0.0] * ROUNDS + [0.002 * 2 ** (i % 3) for i in range(ROUNDS)]  # 2, 4, 8 ms
    for round_, head_start in enumerate(head_starts):
        old = world.take_hours(2)
        new = old + timedelta(hours=1)
        old_slot, new_slot = await world.slot(service, old), await world.slot(service, new)
        mover = world.customers[90 + round_ % 10]
        first = await _outcome(create(world, round_, mover, service, old_slot.start_time))
        assert first.code is OK, first
        (booking,) = booked(world, [first])
        assert await world.remaining(service, old) == 0

        calls: list[tuple[str, Awaitable[Any]]] = [
            ("create-new", later(head_start, create(world, i, user, service, new_slot.start_time)))
            for i, user in enumerate(into_new)]
        calls += [("create-old", later(head_start, create(world, i, user, service, old_slot.start_time)))
                  for i, user in enumerate(into_old)]
        move = reschedule(world, round_ + 1, mover, booking.name, new_slot.start_time, uuid.uuid4().hex)
        position = 0 if head_start else [0, 10, 30][round_ % 3]  # sent first, amid the creates, or last
        calls.insert(position, ("reschedule", move))
        outcomes = await fire([call for _, call in calls])
        by_kind: dict[str, list[Outcome]] = {}
        for (kind, _), outcome in zip(calls, outcomes, strict=True):
            by_kind.setdefault(kind, []).append(outcome)
        tally.add(outcomes)
        tally.rounds += 1
        assert_clean(outcomes, {"SLOT_UNAVAILABLE"})
        (moved,) = by_kind["reschedule"]
        new_winners = booked(world, by_kind["create-new"])
        old_winners = booked(world, by_kind["create-old"])
        freed.append(old_winners)
        current = (await world.node(round_).booking.GetBooking(booking_pb2.GetBookingRequest(name=booking.name),
                                                               metadata=mover.metadata)).booking
        if moved.code is OK:
            won.append("R")
            assert new_winners == [], "a create and the reschedule both got the one seat"
            assert len(old_winners) <= 1
            assert moved.response.booking.start_time.ToDatetime(tzinfo=UTC) == new
            assert (current.start_time.ToDatetime(tzinfo=UTC), current.reschedule_count) == (new, 1)
            expected = {booking.name: new, **{b.name: old for b in old_winners}}
        else:
            won.append("C")
            assert len(new_winners) == 1, [o.label for o in by_kind["create-new"]]
            assert old_winners == [], "a create got the seat of a booking that never moved"
            assert (current.start_time.ToDatetime(tzinfo=UTC), current.reschedule_count) == (old, 0)
            expected = {booking.name: old, new_winners[0].name: new}
        assert await world.remaining(service, new) == 0
        assert await world.remaining(service, old) == 1 - sum(start == old for start in expected.values())
        listed = await world.active_bookings(service, old, new + timedelta(minutes=1))
        assert {b.name: b.start_time.ToDatetime(tzinfo=UTC) for b in listed} == expected
    delays = "/".join(f"{d * 1000:g}" for d in head_starts[ROUNDS:ROUNDS + 3])
    tally.notes.append(f"the seat went to (R reschedule, C a create): {''.join(won[:ROUNDS])} all at once, "
                       f"{''.join(won[ROUNDS:])} with the creates {delays} ms behind; "
                       f"{sum(len(b) for b in freed)} create(s) took a freed seat")
    print(tally.line())
    await checked(world)


async def test_reschedules_swapping_two_slots_all_succeed(world: World) -> None:
    tally = Tally("race 4b, 5 bookings at S1 and 5 at S2 (capacity 10) all rescheduled to the other slot at once")
    service = await world.service("swap", capacity=10, provider=0)
    users = world.customers[60:70]
    for round_ in range(ROUNDS):
        first = world.take_hours(2)
        starts = [first, first + timedelta(hours=1)]
        slots = [await world.slot(service, start) for start in starts]
        bookings = booked(world, await fire([create(world, i, user, service, slots[i % 2].start_time)
                                             for i, user in enumerate(users)]))
        assert len(bookings) == len(users)
        assert [await world.remaining(service, start) for start in starts] == [5, 5]
        outcomes = await fire([
            reschedule(world, i + round_, user, booking.name, slots[(i + 1) % 2].start_time, uuid.uuid4().hex)
            for i, (user, booking) in enumerate(zip(users, bookings, strict=True))])
        tally.add(outcomes)
        tally.rounds += 1
        assert_clean(outcomes, set())
        # Nothing conflicts (there is room for every move), so no move may be refused, not even with
        # ABORTED: opposite moves must not deadlock on the two slots' rows.
        assert all(o.code is OK for o in outcomes), Counter(o.label for o in outcomes)
        assert [await world.remaining(service, start) for start in starts] == [5, 5]
        listed = await world.active_bookings(service, first, first + timedelta(hours=2))
        assert {b.name: b.start_time.ToDatetime(tzinfo=UTC) for b in listed} == {
            b.name: starts[(i + 1) % 2] for i, b in enumerate(bookings)}
    print(tally.line())
    await checked(world)


async def test_one_request_id_sent_at_once_books_once(world: World) -> None:
    tally = Tally("race 5, one request_id sent 20 times at once (create), 10 times (reschedule), "
                  "and 10+10 with different seats")
    services = {1: await world.service("idempotent one seat", capacity=1, provider=1),
                5: await world.service("idempotent five seats", capacity=5, provider=1)}
    reused = frozenset({(ALREADY_EXISTS, "REQUEST_ID_REUSED")})
    for round_ in range(ROUNDS):
        capacity = 1 if round_ % 2 == 0 else 5
        service, user = services[capacity], world.customers[40 + round_]
        start = world.take_hours(2)
        slot = await world.slot(service, start)
        request_id = f"race5-{uuid.uuid4()}"
        outcomes = await fire([create(world, i, user, service, slot.start_time, request_id=request_id)
                               for i in range(20)])
        tally.add(outcomes)
        tally.rounds += 1
        assert {o.label for o in outcomes} == {"OK"}, Counter(o.label for o in outcomes)
        names = {b.name for b in booked(world, outcomes)}
        assert len(names) == 1, names
        listed = await world.active_bookings(service, start, start + timedelta(hours=2))
        assert [b.name for b in listed] == list(names)
        assert await world.remaining(service, start) == capacity - 1

        # The same request_id with other content is refused, on either process.
        for index in range(2):
            other = await _outcome(create(world, index, user, service, slot.start_time, seats=2,
                                          request_id=request_id))
            tally.add([other])
            assert (other.code, other.reason) == (ALREADY_EXISTS, "REQUEST_ID_REUSED"), other

        # One reschedule, sent 10 times at once with one request_id, moves the booking once.
        (name,) = names
        target = start + timedelta(hours=1)
        move_id = f"race5-move-{uuid.uuid4()}"
        moves = await fire([reschedule(world, i, user, name, ts(target), move_id) for i in range(10)])
        tally.add(moves)
        assert {o.label for o in moves} == {"OK"}, Counter(o.label for o in moves)
        assert {(o.response.booking.name, o.response.booking.start_time.ToDatetime(tzinfo=UTC),
                 o.response.booking.reschedule_count) for o in moves} == {(name, target, 1)}
        assert await world.remaining(service, start) == capacity
        assert await world.remaining(service, target) == capacity - 1

    # 10 callers send seats=2 and 10 send seats=1, all with one request_id: one content wins, the
    # other is REQUEST_ID_REUSED, and exactly one booking exists.
    service, user = services[5], world.customers[40 + ROUNDS]
    start = world.take_hours(1)
    slot = await world.slot(service, start)
    request_id = f"race5-mixed-{uuid.uuid4()}"
    seats = [2 - i % 2 for i in range(20)]
    outcomes = await fire([create(world, i // 2, user, service, slot.start_time, seats=n, request_id=request_id)
                           for i, n in enumerate(seats)])
    tally.add(outcomes)
    tally.rounds += 1
    assert_clean(outcomes, set(), also=reused)
    winners = booked(world, outcomes)
    assert len({b.name for b in winners}) == 1, winners
    winning_seats = winners[0].seats
    for n, outcome in zip(seats, outcomes, strict=True):
        assert outcome.code is (OK if n == winning_seats else ALREADY_EXISTS), (n, winning_seats, outcome)
    listed = await world.active_bookings(service, start, start + timedelta(minutes=1))
    assert [b.name for b in listed] == [winners[0].name]
    assert await world.remaining(service, start) == 5 - winning_seats
    tally.notes.append(f"mixed round: seats={winning_seats} won")
    print(tally.line())
    await checked(world)



async def hold(world: World, index: int, user: User, service: str, start: timestamp_pb2.Timestamp
               ) -> booking_pb2.HoldSlotResponse:
    return await world.node(index).booking.HoldSlot(booking_pb2.HoldSlotRequest(
        service=service, start_time=start, request_id=uuid.uuid4().hex), metadata=user.metadata, timeout=CALL_TIMEOUT)


async def book_with_hold(world: World, index: int, user: User, name: str) -> booking_pb2.CreateBookingResponse:
    return await world.node(index).booking.CreateBooking(booking_pb2.CreateBookingRequest(
        hold=name, request_id=uuid.uuid4().hex), metadata=user.metadata, timeout=CALL_TIMEOUT)


def _expire_holds_now(url: str, names: list[str]) -> None:
    """Time travel for these rows only: their expiry moves into the past (the servers' clocks run on)."""
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        conn.execute("UPDATE holds SET expires_at = expires_at - interval '1 hour' WHERE id = ANY(%s)",
                     ([uuid.UUID(name.split("/")[1]) for name in names],))


async def test_many_users_holding_a_capacity_five_slot_get_exactly_five(world: World) -> None:
    tally = Tally("race 6, capacity-5 slot, 60 users holding at once")
    service = await world.service("holds", capacity=5, provider=0)
    for _ in range(ROUNDS):
        start = world.take_hours(1)
        outcomes = await fire([hold(world, i, user, service, ts(start))
                               for i, user in enumerate(world.customers[:60])])
        tally.rounds += 1
        tally.add(outcomes)
        assert_clean(outcomes, {"SLOT_UNAVAILABLE"})
        assert sum(o.code is OK for o in outcomes) == 5, Counter(o.label for o in outcomes)
        assert await world.remaining(service, start) == 0
    print(tally.line())
    await checked(world)


async def test_holds_expiring_while_bookings_race_for_the_freed_seats(world: World) -> None:
    tally = Tally("race 7, 3 expired holds, 30 bookings, 3 holders and both sweepers at once")
    service = await world.service("expiring holds", capacity=3, provider=1)
    for round_ in range(ROUNDS):
        start = world.take_hours(1)
        holders = world.customers[60 + 3 * round_: 63 + 3 * round_]
        held = [o.response.hold.name for o in await fire([hold(world, i, u, service, ts(start))
                                                          for i, u in enumerate(holders)])]
        assert await world.remaining(service, start) == 0
        await asyncio.to_thread(_expire_holds_now, world.database_url, held)
        assert await world.remaining(service, start) == 3  # lapsed holds stop counting at once
        bookers = world.customers[:30]
        outcomes = await fire([*(create(world, i, u, service, ts(start)) for i, u in enumerate(bookers)),
                               *(book_with_hold(world, i, u, name)
                                 for i, (u, name) in enumerate(zip(holders, held, strict=True)))])
        tally.rounds += 1
        tally.add(outcomes)
        assert_clean(outcomes, {"SLOT_UNAVAILABLE", "HOLD_EXPIRED"})
        assert [o.reason for o in outcomes[30:]] == ["HOLD_EXPIRED"] * 3
        assert len(booked(world, outcomes[:30])) == 3, Counter(o.label for o in outcomes)
        assert await world.remaining(service, start) == 0
    print(tally.line())
    await checked(world)



async def test_one_customer_racing_past_a_daily_limit_never_exceeds_it(world: World) -> None:
    tally = Tally("race 8, one customer, daily limit 3, 14 bookings + 6 holds of one day at once")
    service = await world.service("daily limit", capacity=10, provider=0, max_bookings_per_day=3)
    for round_ in range(ROUNDS):
        day = world.take_hours(24)  # one whole UTC day (the service's zone)
        user = world.customers[90 + round_]
        starts = [ts(day + timedelta(hours=h)) for h in range(20)]
        outcomes = await fire([*(create(world, i, user, service, start) for i, start in enumerate(starts[:14])),
                               *(hold(world, i, user, service, start) for i, start in enumerate(starts[14:]))])
        tally.rounds += 1
        tally.add(outcomes)
        assert_clean(outcomes, {"USER_OVER_BOOKING_LIMIT"})
        assert sum(o.code is OK for o in outcomes) == 3, Counter(o.label for o in outcomes)
        booked(world, outcomes[:14])
        mine = await world.active_bookings(service, day, day + timedelta(days=1), caller=user)
        assert len(mine) == sum(o.code is OK for o in outcomes[:14])
    print(tally.line())
    await checked(world)


async def _line(world: World, service: str, start: datetime, customers: Sequence[User]) -> list[str]:
    """The state of each customer's waitlist entry for the slot, as the admin lists them."""
    entries = (await world.node(0).booking.ListWaitlistEntries(booking_pb2.ListWaitlistEntriesRequest(
        service=service, page_size=200), metadata=world.admin.metadata)).waitlist_entries
    states = {e.customer: booking_pb2.WaitlistEntryState.Name(e.state).removeprefix("WAITLIST_ENTRY_STATE_")
              for e in entries if e.start_time == ts(start)}
    return [states[c.name] for c in customers]


async def _line_becomes(world: World, service: str, start: datetime, customers: Sequence[User],
                        expected: list[str]) -> list[str]:
    """Waits (up to 30 s, for a sweep) until the line reads `expected`; returns what it read last."""
    deadline = time.monotonic() + 30.0
    while (seen := await _line(world, service, start, customers)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return seen


async def test_concurrent_cancellations_offer_each_freed_seat_once_down_the_line(world: World) -> None:
    tally = Tally("race 9, 3 cancellations + 10 creates at once, 6 in line; then 3 offers expiring + 10 creates")
    service = await world.service("waitlist", capacity=3, provider=1)
    for round_ in range(ROUNDS):
        start = world.take_hours(1)
        base = 10 * (round_ % 4)  # customers 0-99 cover four rounds; later rounds reuse them (at other hours)
        holders, line, others = (world.customers[base:base + 3], world.customers[30 + base:36 + base],
                                 world.customers[60 + base:70 + base])
        bookings = booked(world, await fire([create(world, i, u, service, ts(start)) for i, u in enumerate(holders)]))
        assert len(bookings) == 3
        for i, user in enumerate(line):  # one after the other: the order of the line is known
            joined = await world.node(i).booking.JoinWaitlist(booking_pb2.JoinWaitlistRequest(
                service=service, start_time=ts(start)), metadata=user.metadata, timeout=CALL_TIMEOUT)
            assert joined.entry.state == booking_pb2.WAITLIST_ENTRY_STATE_WAITING
        outcomes = await fire([
            *(world.node(i).booking.CancelBooking(booking_pb2.CancelBookingRequest(name=b.name),
                                                  metadata=u.metadata, timeout=CALL_TIMEOUT)
              for i, (u, b) in enumerate(zip(holders, bookings, strict=True))),
            *(create(world, i, u, service, ts(start)) for i, u in enumerate(others))])
        tally.rounds += 1
        tally.add(outcomes)
        assert_clean(outcomes, {"SLOT_UNAVAILABLE"})
        assert all(o.code is OK for o in outcomes[:3]) and not any(o.code is OK for o in outcomes[3:])
        assert await _line(world, service, start, line) == ["OFFERED"] * 3 + ["WAITING"] * 3
        assert await world.remaining(service, start) == 0
        with psycopg.connect(psycopg_conninfo(world.database_url)) as conn:
            offers = conn.execute("SELECT h.id FROM holds h JOIN waitlist_entries w ON w.hold_id = h.id "
                                  "JOIN slots s ON s.id = h.slot_id WHERE s.start_at = %s", (start,)).fetchall()
        assert len(offers) == 3
        # The three offers lapse unused while others try to book and both processes sweep.
        await asyncio.to_thread(_expire_holds_now, world.database_url, [f"holds/{row[0].hex}" for row in offers])
        outcomes = await fire([create(world, i, u, service, ts(start)) for i, u in enumerate(others)])
        tally.add(outcomes)
        assert_clean(outcomes, {"SLOT_UNAVAILABLE"})
        assert not any(o.code is OK for o in outcomes)
        seen = await _line_becomes(world, service, start, line, ["OFFER_EXPIRED"] * 3 + ["OFFERED"] * 3)
        assert seen == ["OFFER_EXPIRED"] * 3 + ["OFFERED"] * 3
        assert await world.remaining(service, start) == 0
    print(tally.line())
    await checked(world)

async def test_one_booking_cancelled_ten_times_at_once_is_cancelled_once(world: World) -> None:
    tally = Tally("race 10, one booking cancelled 10 times at once, its row held until all wait")
    service = await world.service("cancel once", capacity=3, provider=0)
    conninfo = psycopg_conninfo(world.database_url)
    for round_ in range(ROUNDS):
        start = world.take_hours(1)
        customer, neighbour = world.customers[round_], world.customers[50 + round_]
        mine, = booked(world, await fire([create(world, 0, customer, service, ts(start))]))
        booked(world, await fire([create(world, 1, neighbour, service, ts(start))]))
        booking_id = uuid.UUID(mine.name.split("/")[1])
        cancels = [cancel(world, i, customer, mine.name, request_id=uuid.uuid4().hex if i % 4 < 2 else "")
                   for i in range(10)]
        async with await psycopg.AsyncConnection.connect(conninfo) as blocker, \
                await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as watcher:
            await blocker.execute("SELECT id FROM bookings WHERE id = %s FOR UPDATE", (booking_id,))
            fired = asyncio.ensure_future(fire(cancels))
            deadline = time.monotonic() + 30
            while True:
                waiting = await (await watcher.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")).fetchone()
                if waiting and waiting[0] >= len(cancels):
                    break
                assert time.monotonic() < deadline and not fired.done(), f"only {waiting} cancellations wait"
                await asyncio.sleep(0.02)
            await blocker.rollback()
            outcomes = await fired
            events = await (await watcher.execute(
                "SELECT type, COUNT(*) FROM booking_events WHERE booking_id = %s GROUP BY type ORDER BY type",
                (booking_id,))).fetchall()
        tally.rounds += 1
        tally.add(outcomes)
        assert_clean(outcomes, {"BOOKING_ALREADY_CANCELLED"})
        assert sum(o.code is OK for o in outcomes) == 1, Counter(o.label for o in outcomes)
        assert events == [("cancelled", 1), ("created", 1)]
        assert await world.remaining(service, start) == 2
    print(tally.line())
    await checked(world)


async def test_no_server_logged_an_unexpected_error(world: World) -> None:
    await checked(world)
    for process in world.processes:
        log = process.log_text()
        assert "unexpected error" not in log and "Traceback" not in log, log
