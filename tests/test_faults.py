"""Faults, nothing lost: the database stops or freezes, the server is killed or drained, SMTP misbehaves.

Real processes throughout: `foothills-rpc serve` subprocesses, a PostgreSQL server of the test's own
(`tests/throwaway_postgres.py`) that the tests stop and start with `pg_ctl`, freeze with SIGSTOP, or
make stall its commits, and real SMTP servers on a real port for the real mail dispatcher.

1. Database outage (`pg_ctl stop -m fast` mid-load, then start): calls fail fast with UNAVAILABLE,
   health NOT_SERVING, then SERVING and booking again without a server restart.
1b. Frozen database (SIGSTOP): health NOT_SERVING all the same; retries after SIGCONT book once.
2. SIGKILL of the server mid-load, with a booking's COMMIT certainly in doubt; restart on the same
   port: retries get the committed booking or a new one, never two.
2b. SIGTERM with bookings held inside the server: it refuses new calls, finishes those, exits 0.
3. SMTP closed, mute, stalling, 451, 554, then healthy: every failure recorded with its backoff,
   then each mail delivered exactly once.

The booking load (`Load`) is many customers, each booking a few distinct hours of one service with
`CreateBooking`, each request with its own `request_id`. A call that gets no answer the client can
act on (UNAVAILABLE, ABORTED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED) is retried with the same
request_id and the same content until it is acknowledged (OK) or refused for good
(FAILED_PRECONDITION SLOT_UNAVAILABLE: the slot is full). The fault strikes when a third of the
requests are settled. Afterwards the checker reads the database itself (Jepsen's set checker):

- found: every acknowledged booking is stored (lost = acknowledged - stored must be empty);
- duplicated: no request produced two bookings, neither as seen by the client (two different
  booking names for one request_id) nor in the rows (two bookings of one customer at one start);
- no phantom: every stored booking was acknowledged to its caller, and its idempotency key carries
  that caller's request_id;
- no slot over capacity, seats_taken equal to the seats of the slot's active bookings, no
  overlapping active bookings (self-joins), one `created` event per booking (the race tests' checks).

Run with `-s` to see the figures of each run (calls during the fault, acknowledged, found, lost,
duplicated). Without PostgreSQL (or, for the tests with a server of their own, its server binaries)
the tests are skipped with a loud reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.admin.v1 import admin_pb2, admin_pb2_grpc
from foothills.auth.v1 import auth_pb2, auth_pb2_grpc, user_pb2
from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from foothills_rpc.clock import ManualClock
from foothills_rpc.config import SmtpSettings
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import OutboxMessage
from foothills_rpc.mail import outbox
from foothills_rpc.mail.mailer import SmtpMailer
from tests.catalog_support import ts
from tests.cluster_support import (
    ADMIN_EMAIL,
    CHECKS,
    PASSWORD,
    Node,
    Process,
    User,
    World,
    check_database,
    cluster_env,
    sign_up,
    wait_until_serving,
)
from tests.reasons import recorders
from tests.support import Mailbox, admin_execute, free_port, psycopg_conninfo, reason, stop_process
from tests.throwaway_postgres import ThrowawayPostgres, Unavailable

CUSTOMERS = 30
REQUESTS_EACH = 5  # distinct hours per customer, so a customer's bookings never overlap
HOURS = 12
CAPACITY = 10  # 12 slots x 10 seats for 150 requests: most are booked, some find their slot full
CALL_TIMEOUT = 30.0  # far beyond any answer we expect: a call that reaches it has hung
SETTLE_WITHIN = 90.0  # liveness bound for the whole load once the fault is over
FAIL_FAST = 10.0  # a failing call during a fault must be answered within this (it is ~ms in practice)
HEALTH_WITHIN = 15.0  # health follows the database within this (the probe runs every 2 s)
DRAIN_CALLS = 8

OK = grpc.StatusCode.OK
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
# No answer the client can act on: retry with the same request_id.
RETRY = {UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Clients reconnect quickly to a restarted server (gRPC's default first backoff is 1 s, growing to 120 s).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]


# --- where the servers run ---------------------------------------------------------------------


def _unavailable(what: str, why: str) -> None:
    message = f"{what}: {why}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires it. {message}")
    pytest.skip(f"!!! SKIPPING FAULT TEST !!! {message}")


@pytest.fixture
def throwaway() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test's own, on a free port, which the test may stop and start."""
    try:
        server = ThrowawayPostgres.create()
    except Unavailable as exc:
        _unavailable("cannot run a PostgreSQL server of the test's own", str(exc))
        raise AssertionError("unreachable") from exc
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def shared_database(postgres_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh migrated database on the suite's PostgreSQL (cloned from the session's template)."""
    name = f"foothills_fault_{uuid.uuid4().hex[:12]}"
    admin_execute(postgres_url, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(postgres_template)))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    admin_execute(postgres_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _cli(env: dict[str, str], folder: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "foothills_rpc.cli", *args], cwd=folder, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"foothills-rpc {' '.join(args)} exited with {done.returncode}:\n{done.stderr}"
    return done.stdout


def _create_admin(env: dict[str, str], folder: Path) -> None:
    out = _cli({**env, "FOOTHILLS_ADMIN_PASSWORD": PASSWORD}, folder, "create-admin", ADMIN_EMAIL,
               "--display-name", "Fault Admin")
    assert out.startswith("created admin users/"), out


def _serve(env: dict[str, str], folder: Path, port: int, label: str) -> Process:
    log = folder / f"{label}.log"
    with log.open("wb") as stderr:
        popen = subprocess.Popen(
            [sys.executable, "-m", "foothills_rpc.cli", "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    return Process(popen=popen, port=port, log=log)


def _connect(port: int) -> Node:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS, interceptors=recorders())
    return Node(channel=channel, auth=auth_pb2_grpc.AuthServiceStub(channel),
                admin=admin_pb2_grpc.AdminServiceStub(channel),
                catalog=catalog_pb2_grpc.CatalogServiceStub(channel),
                booking=booking_pb2_grpc.BookingServiceStub(channel))


async def _populate(node: Node, process: Process, database_url: str, customers: int) -> World:
    """Through the API: the admin (from create-admin) signs in, a provider and a category, customers."""
    await wait_until_serving(process, node)
    login = await node.auth.Login(auth_pb2.LoginRequest(email=ADMIN_EMAIL, password=PASSWORD), timeout=CALL_TIMEOUT)
    assert login.user.role == user_pb2.ROLE_ADMIN
    admin = User(name=str(login.user.name), email=ADMIN_EMAIL, token=str(login.credentials.access_token))
    tag = uuid.uuid4().hex[:8]
    (provider,) = await sign_up([node], [f"fault.provider.{tag}@example.com"])
    await node.admin.SetUserRole(admin_pb2.SetUserRoleRequest(name=provider.name, role=user_pb2.ROLE_PROVIDER),
                                 metadata=admin.metadata, timeout=CALL_TIMEOUT)
    category = (await node.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name=f"Faults {tag}")), metadata=admin.metadata,
        timeout=CALL_TIMEOUT)).category.name
    users = await sign_up([node], [f"fault.customer{i}.{tag}@example.com" for i in range(customers)])
    first = (datetime.now(UTC) + timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    return World(nodes=[node], processes=[process], database_url=database_url, admin=admin,
                 providers=[provider.name], category=str(category), customers=users, first_start=first)


async def _health(node: Node) -> str:
    try:
        answer = await health_pb2_grpc.HealthStub(node.channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2.0)
    except grpc.aio.AioRpcError as error:
        return error.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


async def _await_health(node: Node, wanted: int, within: float) -> float:
    """Seconds until the health check answers `wanted`; fails after `within`."""
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(wanted)
    started = time.monotonic()
    seen = "nothing"
    while time.monotonic() - started < within:
        if (seen := await _health(node)) == name:
            return time.monotonic() - started
        await asyncio.sleep(0.05)  # between polls only
    raise AssertionError(f"health not {name} within {within}s (last answer: {seen})")


async def _until(what: str, predicate: Callable[[], bool], within: float) -> None:
    """Waits until `predicate()` holds (a liveness bound, polled)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)


# --- the booking load --------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    started: float
    ended: float
    code: grpc.StatusCode
    reason: str = ""  # ErrorInfo.reason; "" when the server sent none (the transport failed)
    booking: str = ""
    created: datetime | None = None

    @property
    def label(self) -> str:
        return self.code.name if self.code is OK else f"{self.code.name}/{self.reason or '-'}"

    def overlaps(self, start: float, end: float) -> bool:
        return self.started < end and self.ended > start


@dataclass
class Request:
    """One booking a customer wants, sent until it is acknowledged or refused, always with one request_id."""

    customer: User
    start: datetime
    request_id: str = field(default_factory=lambda: f"fault-{uuid.uuid4().hex}")
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str = ""  # "" while open; "booked", or the reason of the final refusal

    @property
    def names(self) -> set[str]:
        """Every booking any attempt was answered with: one at most, or a retry booked twice."""
        return {a.booking for a in self.attempts if a.booking}

    @property
    def acknowledged(self) -> str | None:
        return self.attempts[-1].booking if self.outcome == "booked" else None


def _reason(error: grpc.aio.AioRpcError) -> str:
    try:
        return reason(error)
    except AssertionError:
        return ""


class Load:
    """`customers x REQUESTS_EACH` requests, each customer sending its own one after another."""

    def __init__(self, node: Node, service: str, customers: list[User], starts: list[datetime], *, seed: int,
                 each: int = REQUESTS_EACH, timeout: float = CALL_TIMEOUT) -> None:
        rng = random.Random(seed)  # noqa: S311 (a reproducible plan, not a secret)
        self.node = node
        self.service = service
        self.timeout = timeout
        self.plans = [[Request(customer=user, start=starts[h]) for h in rng.sample(range(len(starts)), each)]
                      for user in customers]
        self.requests = [request for plan in self.plans for request in plan]

    @property
    def settled(self) -> int:
        return sum(bool(r.outcome) for r in self.requests)

    @property
    def attempts(self) -> list[Attempt]:
        return [a for r in self.requests for a in r.attempts]

    def started_after(self, moment: float) -> int:
        return sum(a.started >= moment for a in self.attempts)

    async def run(self) -> None:
        await asyncio.gather(*(self._customer(plan) for plan in self.plans))

    async def _customer(self, plan: list[Request]) -> None:
        for request in plan:
            await self._send(request)

    async def _send(self, request: Request) -> None:
        pause = 0.05
        while True:
            started = time.monotonic()
            try:
                response = await self.node.booking.CreateBooking(booking_pb2.CreateBookingRequest(
                    service=self.service, start_time=ts(request.start), request_id=request.request_id),
                    metadata=request.customer.metadata, timeout=self.timeout)
            except grpc.aio.AioRpcError as error:
                attempt = Attempt(started, time.monotonic(), error.code(), _reason(error))
            else:
                booking = response.booking
                attempt = Attempt(started, time.monotonic(), OK, booking=str(booking.name),
                                  created=booking.create_time.ToDatetime(tzinfo=UTC))
            request.attempts.append(attempt)
            if attempt.code is OK:
                request.outcome = "booked"
                return
            if attempt.code not in RETRY:  # SLOT_UNAVAILABLE, or something the checks below refuse
                request.outcome = attempt.label
                return
            await asyncio.sleep(pause)  # a client's retry backoff, not a wait for time to pass
            pause = min(pause * 2, 0.5)


async def _prepare(world: World, label: str) -> tuple[str, list[datetime]]:
    """A service of CAPACITY seats and HOURS fresh consecutive hourly slots of it."""
    service = await world.service(label, capacity=CAPACITY, provider=0)
    first = world.take_hours(HOURS)
    starts = [first + timedelta(hours=h) for h in range(HOURS)]
    for start in starts:
        slot = await world.slot(service, start)
        assert (slot.capacity, slot.remaining_seats) == (CAPACITY, CAPACITY)
    return service, starts


# --- the checker -------------------------------------------------------------------------------


@dataclass
class Audit:
    requests: int
    acknowledged: int
    refused: int
    found: int
    lost: int
    duplicated: int
    stored: int

    def line(self) -> str:
        return (f"{self.requests} requests: {self.acknowledged} acknowledged, {self.refused} refused (slot full); "
                f"{self.stored} bookings stored, {self.found} acknowledged found, lost {self.lost}, "
                f"duplicated {self.duplicated}")


def audit(database_url: str, load: Load) -> Audit:
    """The database against what the clients were told. Asserts lost = duplicated = 0 and every invariant."""
    open_requests = [r for r in load.requests if not r.outcome]
    assert not open_requests, f"{len(open_requests)} requests never settled"
    final = {"booked", "FAILED_PRECONDITION/SLOT_UNAVAILABLE"}
    unexpected = Counter(r.outcome for r in load.requests if r.outcome not in final)
    assert not unexpected, f"requests that ended in an unexpected answer: {unexpected}"
    acknowledged = {name: r for r in load.requests if (name := r.acknowledged)}
    with psycopg.connect(psycopg_conninfo(database_url)) as conn:
        stored = {f"bookings/{row[0].hex}" for row in conn.execute("SELECT id FROM bookings").fetchall()}
        doubles = conn.execute("""SELECT customer_id, start_at, COUNT(*) FROM bookings
                                  GROUP BY customer_id, start_at HAVING COUNT(*) > 1""").fetchall()
        keys = {f"bookings/{row[1].hex}": row[0] for row in conn.execute(
            "SELECT request_id, booking_id FROM idempotency_keys WHERE method = 'CreateBooking'").fetchall()}
        broken = {name: rows for name, query in CHECKS.items() if (rows := conn.execute(query).fetchall())}
    lost = set(acknowledged) - stored
    client_doubles = [r for r in load.requests if len(r.names) > 1]
    result = Audit(requests=len(load.requests), acknowledged=len(acknowledged),
                   refused=sum(r.outcome != "booked" for r in load.requests), found=len(set(acknowledged) & stored),
                   lost=len(lost), stored=len(stored),
                   duplicated=len(client_doubles) + sum(count - 1 for *_, count in doubles))
    assert not broken, f"invariants broken: {broken}"
    assert not lost, f"acknowledged bookings missing from the database: {sorted(lost)}"
    assert not client_doubles, [(r.request_id, r.names) for r in client_doubles]
    assert not doubles, f"one customer booked twice at one start: {doubles}"
    assert stored == set(acknowledged), f"bookings nobody was told about: {sorted(stored - set(acknowledged))}"
    wrong_keys = {name: (keys.get(name), r.request_id) for name, r in acknowledged.items()
                  if keys.get(name) != r.request_id}
    assert not wrong_keys, f"bookings whose idempotency key is not their request's: {wrong_keys}"
    print("[faults]", check_database(database_url, set(acknowledged)))  # also: events numbered without gaps
    return result


def _codes(attempts: list[Attempt]) -> str:
    return ", ".join(f"{label} x{n}" for label, n in sorted(Counter(a.label for a in attempts).items())) or "none"


def _assert_no_hang_or_bug(load: Load) -> None:
    """No call hung until its deadline, none failed with INTERNAL/UNKNOWN or anything undocumented."""
    allowed = {"OK", "FAILED_PRECONDITION/SLOT_UNAVAILABLE", "UNAVAILABLE/DATABASE_UNAVAILABLE", "UNAVAILABLE/-"}
    odd = [a for a in load.attempts if a.label not in allowed and a.code is not grpc.StatusCode.ABORTED]
    assert not odd, f"unexpected answers: {_codes(odd)}"


# --- 1. the database stops and comes back ------------------------------------------------------


async def test_a_database_outage_fails_fast_and_recovers_without_losing_or_doubling_a_booking(
        throwaway: ThrowawayPostgres, tmp_path: Path) -> None:
    """PostgreSQL is stopped (`pg_ctl stop -m fast`) while the booking load runs. Calls fail fast with
    UNAVAILABLE (DATABASE_UNAVAILABLE), never hang or answer INTERNAL/UNKNOWN; health turns NOT_SERVING.
    When PostgreSQL is started again, the same server process turns SERVING and books again within
    seconds. Every acknowledged booking is stored, none twice."""
    database_url = throwaway.create_database("foothills_outage")
    env = cluster_env(database_url, tmp_path)
    _cli(env, tmp_path, "migrate")
    _create_admin(env, tmp_path)
    process = _serve(env, tmp_path, free_port(), "server")
    node = _connect(process.port)
    try:
        world = await _populate(node, process, database_url, CUSTOMERS)
        service, starts = await _prepare(world, "outage")
        load = Load(node, service, world.customers, starts, seed=1)
        running = asyncio.ensure_future(load.run())
        await _until("a third of the requests settled", lambda: load.settled >= len(load.requests) // 3, 60)

        fault_start = time.monotonic()
        await asyncio.to_thread(throwaway.stop)  # fast: sessions are terminated, in-flight transactions roll back
        down = time.monotonic()
        to_not_serving = await _await_health(node, NOT_SERVING, HEALTH_WITHIN)
        # Keep it down for a while: on average four calls per customer refused by the dead database.
        await _until("calls against the stopped database",
                     lambda: load.started_after(down) >= 4 * CUSTOMERS or running.done(), 60)
        settled_while_down = load.settled
        restarting = time.monotonic()
        await asyncio.to_thread(throwaway.start)
        fault_end = time.monotonic()
        to_serving = await _await_health(node, SERVING, HEALTH_WITHIN)
        serving = time.monotonic()
        await asyncio.wait_for(running, SETTLE_WITHIN)
        settled = time.monotonic()

        # The server was never restarted, and a fresh caller is served as usual.
        assert process.popen.poll() is None
        fresh = (await sign_up([node], [f"after.outage.{uuid.uuid4().hex[:8]}@example.com"]))[0]
        assert fresh.token
    finally:
        await node.channel.close()
        code = stop_process(process.popen)
    assert code == 0, f"server exited with {code} after SIGTERM:\n{process.log_text()}"

    during = [a for a in load.attempts if a.overlaps(fault_start, fault_end)]
    dead = [a for a in load.attempts if a.started >= down and a.ended <= restarting]  # database surely down
    after = [a for a in load.attempts if a.started >= serving]
    assert dead, "no call was made while the database was down"
    assert {a.label for a in dead} == {"UNAVAILABLE/DATABASE_UNAVAILABLE"}, _codes(dead)
    slowest = max(a.ended - a.started for a in during if a.code is not OK)
    assert slowest < FAIL_FAST, f"a call took {slowest:.1f}s to fail during the outage"
    assert settled_while_down < len(load.requests), "the load ended before the database came back"
    _assert_no_hang_or_bug(load)
    assert all(a.code is not UNAVAILABLE for a in after), f"refused after SERVING: {_codes(after)}"
    figures = audit(database_url, load)
    assert "unexpected error" not in process.log_text()
    assert "unreachable: NOT_SERVING" in process.log_text() and "reachable again: SERVING" in process.log_text()
    print(f"[faults] database outage ({(fault_end - fault_start):.1f}s down): {len(during)} calls during the fault "
          f"({_codes(during)}); slowest failure {slowest * 1000:.0f} ms; NOT_SERVING {to_not_serving:.1f}s after "
          f"the stop, SERVING {to_serving:.1f}s after the start, load settled {settled - fault_end:.1f}s after "
          f"the start; {len(load.attempts)} calls in all ({_codes(load.attempts)}); {figures.line()}")


# --- 1b. the database stops answering -----------------------------------------------------------


async def test_a_frozen_database_turns_health_not_serving_and_retries_book_once(
        throwaway: ThrowawayPostgres, tmp_path: Path) -> None:
    """PostgreSQL stops answering without closing anything (SIGSTOP on its processes: a hung server,
    or a network that drops every packet). Health turns NOT_SERVING within seconds all the same (the
    probe has its own timeout); bookings sent meanwhile get no answer before their 2 s deadline (the
    server cannot tell a frozen database from a slow one). After SIGCONT health is SERVING again and
    the retries, with the same request_ids, book each request once, although the calls that timed
    out may have gone on inside the server and committed."""
    database_url = throwaway.create_database("foothills_frozen")
    env = cluster_env(database_url, tmp_path)
    _cli(env, tmp_path, "migrate")
    _create_admin(env, tmp_path)
    process = _serve(env, tmp_path, free_port(), "server")
    node = _connect(process.port)
    customers = 4
    try:
        world = await _populate(node, process, database_url, customers)
        service, starts = await _prepare(world, "frozen")
        load = Load(node, service, world.customers, starts, seed=4, each=2, timeout=2.0)
        await asyncio.to_thread(throwaway.freeze)
        try:
            frozen = time.monotonic()
            # First with no call in flight, so the probe takes an idle pooled connection, whose query hangs.
            to_not_serving = await _await_health(node, NOT_SERVING, HEALTH_WITHIN)
            running = asyncio.ensure_future(load.run())
            await _until("every customer's first call timed out", lambda: all(
                any(a.code is grpc.StatusCode.DEADLINE_EXCEEDED for a in plan[0].attempts)
                for plan in load.plans), 30)
            assert load.settled == 0
            thawed = time.monotonic()
        finally:
            await asyncio.to_thread(throwaway.thaw)
        to_serving = await _await_health(node, SERVING, HEALTH_WITHIN)
        await asyncio.wait_for(running, SETTLE_WITHIN)
    finally:
        await node.channel.close()
        code = stop_process(process.popen)
    assert code == 0, f"server exited with {code} after SIGTERM:\n{process.log_text()}"
    during = [a for a in load.attempts if a.ended <= thawed]  # answered (or not) while frozen
    assert {a.label for a in during} <= {"DEADLINE_EXCEEDED/-", "UNAVAILABLE/DATABASE_UNAVAILABLE",
                                         "RESOURCE_EXHAUSTED/DATABASE_BUSY"}, _codes(during)
    odd = [a for a in load.attempts if a.started >= thawed and a.label not in {
        "OK", "FAILED_PRECONDITION/SLOT_UNAVAILABLE", "DEADLINE_EXCEEDED/-"}]
    assert not odd, _codes(odd)
    figures = audit(database_url, load)
    assert "unexpected error" not in process.log_text()
    print(f"[faults] frozen database ({thawed - frozen:.1f}s): NOT_SERVING {to_not_serving:.1f}s after the freeze, "
          f"SERVING {to_serving:.1f}s after the thaw; {len(during)} calls during the fault ({_codes(during)}); "
          f"{len(load.attempts)} calls in all ({_codes(load.attempts)}); {figures.line()}")


# --- 2. the server is killed and restarted -----------------------------------------------------


async def test_a_server_killed_mid_load_and_restarted_loses_and_doubles_nothing(
        throwaway: ThrowawayPostgres, tmp_path: Path) -> None:
    """SIGKILL mid-load: every call in flight dies unanswered (UNAVAILABLE from the transport), and
    some of them after their transaction committed. To make that case certain rather than lucky, the
    test first stalls commits in PostgreSQL (`synchronous_standby_names` naming a standby that does not
    exist: a COMMIT is durable locally but waits for the standby's ack, so the server never answers),
    kills the server while a booking's COMMIT waits, then lifts the stall. A new server on the same
    port and database answers each retry (same request_id) with the booking that was committed, or
    books it now; never both."""
    database_url = throwaway.create_database("foothills_kill")
    env = cluster_env(database_url, tmp_path)
    _cli(env, tmp_path, "migrate")
    _create_admin(env, tmp_path)
    port = free_port()
    process = _serve(env, tmp_path, port, "server")
    node = _connect(port)
    restarted: Process | None = None
    try:
        world = await _populate(node, process, database_url, CUSTOMERS)
        service, starts = await _prepare(world, "kill")
        load = Load(node, service, world.customers, starts, seed=2)
        running = asyncio.ensure_future(load.run())
        await _until("a third of the requests settled", lambda: load.settled >= len(load.requests) // 3, 60)

        await asyncio.to_thread(throwaway.configure, "synchronous_standby_names", "foothills_nobody")
        # A booking's COMMIT waits for the missing standby: the usual booking's own statement (one, in
        # autocommit), or a transaction a booking waits for (the mail dispatcher's hold no lock a booking
        # waits for). Waiting for a second booking to queue behind the first was luck: once every
        # customer's call stalled, none came until the stalled calls' deadlines, 30 s on.
        stalled = ("SELECT COUNT(*) FROM pg_stat_activity holder WHERE holder.wait_event = 'SyncRep' AND ("
                   "holder.query ILIKE '%INSERT INTO bookings%' OR EXISTS (SELECT 1 FROM pg_stat_activity waiter "
                   "WHERE waiter.wait_event_type = 'Lock' AND holder.pid = ANY(pg_blocking_pids(waiter.pid))))")
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(throwaway.count, stalled):
            assert time.monotonic() < deadline, "no booking's COMMIT stalled"
            await asyncio.sleep(0.02)
        killed_at = datetime.now(UTC)
        fault_start = time.monotonic()
        process.popen.kill()
        assert await asyncio.to_thread(process.popen.wait, 30) == -signal.SIGKILL
        down = time.monotonic()
        await asyncio.to_thread(throwaway.configure, "synchronous_standby_names", None)  # stalled COMMITs finish
        await _until("calls against the dead server", lambda: load.started_after(down) >= CUSTOMERS or running.done(),
                     60)
        # It logs every call: a call that hangs in it is named on failure.
        relaunched = time.monotonic()
        restarted = _serve({**env, "FOOTHILLS_LOG_LEVEL": "INFO"}, tmp_path, port, "server-restarted")
        await wait_until_serving(restarted, node)
        fault_end = time.monotonic()
        await asyncio.wait_for(running, SETTLE_WITHIN)
    finally:
        await node.channel.close()
        code = stop_process(restarted.popen) if restarted else None
        if process.popen.poll() is None:
            stop_process(process.popen)
    assert restarted is not None
    assert code == 0, f"restarted server exited with {code} after SIGTERM:\n{restarted.log_text()}"

    during = [a for a in load.attempts if a.overlaps(fault_start, fault_end)]
    spanning = [(r, a) for r in load.requests for a in r.attempts if a.started < fault_start < a.ended]
    # An answer the server sent just before the kill may still be read after it (it was in the socket):
    # such a call was answered, not cut. Every other call in flight dies unanswered.
    cut = [(r, a) for r, a in spanning if a.code is not OK]
    assert cut and {a.label for _, a in spanning} <= {"OK", "UNAVAILABLE/-"}, (
        f"{_codes([a for _, a in spanning])}; kill at {fault_start:.3f}, new server served at {fault_end:.3f}; hung: "
        f"{[(round(a.started, 3), round(a.ended, 3)) for _, a in spanning if a.code not in (OK, UNAVAILABLE)]}\n"
        f"the restarted server's calls of a second or more:\n{_slow_calls(restarted.log_text())}")
    dead = [a for a in load.attempts if a.started >= down and a.ended <= relaunched]
    assert dead and {a.label for a in dead} == {"UNAVAILABLE/-"}, _codes(dead)
    # The new server answers the load as soon as it listens, before the health poll sees it SERVING:
    # a booking, or a full slot's refusal, as it answers any call.
    starting = [a for a in load.attempts if a.started >= down and relaunched < a.ended <= fault_end]
    assert {a.label for a in starting} <= {"OK", "FAILED_PRECONDITION/SLOT_UNAVAILABLE", "UNAVAILABLE/-"}, (
        _codes(starting))
    _assert_no_hang_or_bug(load)
    # How the requests whose call the kill cut ended: the committed booking, a new one, or slot full.
    replayed = [r for r, _ in cut if (b := r.attempts[-1]).created is not None and b.created < killed_at]
    booked_anew = [r for r, _ in cut if (b := r.attempts[-1]).created is not None and b.created >= killed_at]
    assert replayed, "no retry met a booking committed before the kill"
    figures = audit(database_url, load)
    assert "unexpected error" not in restarted.log_text()
    print(f"[faults] SIGKILL: {len(cut)} calls in flight cut by the kill ({len(spanning) - len(cut)} answered "
          f"just before it): {len(replayed)} retried into the booking "
          f"committed before the kill, {len(booked_anew)} booked by the retry, "
          f"{len(cut) - len(replayed) - len(booked_anew)} refused (slot full); {len(during)} calls during the fault "
          f"({_codes(during)}); {(fault_end - fault_start):.1f}s until the new server served; "
          f"{len(load.attempts)} calls in all; {figures.line()}")


def _slow_calls(log: str) -> str:
    """The lines of a server's log (at INFO) for calls that took a second or more."""
    return "\n".join(line for line in log.splitlines()
                     if (took := re.search(r"duration_ms=([0-9.]+)", line)) and float(took.group(1)) >= 1000)


# --- 2b. SIGTERM drains in-flight bookings -----------------------------------------------------


async def test_sigterm_lets_bookings_in_flight_finish(shared_database: str, tmp_path: Path) -> None:
    """DRAIN_CALLS bookings are held inside the server (the test holds their slot's row lock in
    PostgreSQL), then the server gets SIGTERM. It stops taking new calls at once, yet every held
    booking completes with OK once the lock goes, and the server exits 0."""
    env = {**cluster_env(shared_database, tmp_path), "FOOTHILLS_SHUTDOWN_GRACE_SECONDS": "60",
           "FOOTHILLS_LOG_LEVEL": "INFO"}
    _create_admin(env, tmp_path)
    process = _serve(env, tmp_path, free_port(), "server")
    node = _connect(process.port)
    try:
        world = await _populate(node, process, shared_database, DRAIN_CALLS)
        service = await world.service("drain", capacity=DRAIN_CALLS, provider=0)
        start = world.take_hours(1)
        await world.slot(service, start)
        load = Load(node, service, world.customers, [start], seed=3, each=1)
        conninfo = psycopg_conninfo(shared_database)
        async with await psycopg.AsyncConnection.connect(conninfo) as blocker, \
                await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as watcher:
            locked = await blocker.execute("SELECT id FROM slots WHERE service_id = %s AND start_at = %s FOR UPDATE",
                                           (uuid.UUID(service.split("/")[1]), start))
            assert len(await locked.fetchall()) == 1
            running = asyncio.ensure_future(load.run())
            database = make_url(shared_database).database

            async def waiting() -> int:  # server sessions waiting for a lock (ours, on the slot's row)
                cursor = await watcher.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    (database,))
                row = await cursor.fetchone()
                return int(row[0]) if row else 0

            deadline = time.monotonic() + 30
            while (held := await waiting()) < DRAIN_CALLS:
                assert time.monotonic() < deadline, f"only {held} bookings reached the slot's lock"
                await asyncio.sleep(0.02)
            process.popen.send_signal(signal.SIGTERM)
            # The server stops accepting: a new connection is refused while the held calls are still running.
            deadline = time.monotonic() + 30
            while True:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{process.port}") as probe:
                    try:
                        await health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                    except grpc.aio.AioRpcError as error:
                        if error.code() is UNAVAILABLE:
                            break
                assert time.monotonic() < deadline, "the server kept accepting calls after SIGTERM"
                await asyncio.sleep(0.05)
            assert not running.done() and load.settled == 0 and not load.attempts
            await blocker.rollback()  # the held bookings go on
        await asyncio.wait_for(running, 60)
        exit_code = await asyncio.to_thread(process.popen.wait, 60)
    finally:
        await node.channel.close()
        if process.popen.poll() is None:
            stop_process(process.popen)
    assert exit_code == 0, process.log_text()
    assert [r.outcome for r in load.requests] == ["booked"] * DRAIN_CALLS, _codes(load.attempts)
    assert all(len(r.attempts) == 1 for r in load.requests), _codes(load.attempts)
    figures = audit(shared_database, load)
    assert figures.stored == DRAIN_CALLS
    text = process.log_text()
    assert re.search(r"shutting down", text) and "stopped" in text, text
    print(f"[faults] SIGTERM with {DRAIN_CALLS} bookings in flight: all answered OK, exit 0; {figures.line()}")


# --- 3. SMTP down, slow, refusing, then back ---------------------------------------------------


class FlakySmtp(Mailbox):
    """The suite's aiosmtpd sink, on one port, switched between behaviours.

    - "down": nothing listens on the port (connections are refused);
    - "mute": a plain TCP listener accepts and never says a word (no SMTP greeting);
    - "stall": SMTP, but after the message it says nothing for longer than the client waits, then 451;
    - "busy": 451 to RCPT (a temporary refusal); "reject": 554 to DATA (a permanent-looking one, but
      about the relay rather than one recipient, so it is retried);
    - "up": accepts and keeps every message, except 550 (no such user, for good) to RCPT of gone@...
    """

    STALL_SECONDS = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.mode = "down"
        self._smtp_running = False
        self._mute: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._mute_thread: threading.Thread | None = None
        self._muting = threading.Event()

    def switch(self, mode: str) -> None:
        if self._mute is not None:
            self._muting.clear()
            if self._mute_thread is not None:
                self._mute_thread.join(5)
            self._mute.close()
            for connection in self._held:
                connection.close()
            self._mute, self._held, self._mute_thread = None, [], None
        wants_smtp = mode in {"stall", "busy", "reject", "up"}
        if self._smtp_running and not wants_smtp:
            self.stop()
        if wants_smtp and not self._smtp_running:
            self.start()
        self._smtp_running = wants_smtp
        if mode == "mute":
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen()
            listener.settimeout(0.05)  # so that the holder thread notices when to stop
            self._mute = listener
            self._muting.set()
            self._mute_thread = threading.Thread(target=self._hold, args=(listener,), daemon=True)
            self._mute_thread.start()
        self.mode = mode

    def _hold(self, listener: socket.socket) -> None:
        while self._muting.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            self._held.append(connection)

    def close(self) -> None:
        self.switch("down")

    async def handle_RCPT(self, server: object, session: object, envelope: object, address: str,
                          rcpt_options: list[str]) -> str:
        if self.mode == "busy":
            return "451 4.3.2 try again later"
        if address.startswith("gone@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.mode == "stall":
            await asyncio.sleep(self.STALL_SECONDS)
            return "451 4.3.0 gave up"
        if self.mode == "reject":
            return "554 5.7.1 message refused"
        return await super().handle_DATA(server, session, envelope)


async def _outbox_rows(db: Database) -> list[OutboxMessage]:
    async def read(session: AsyncSession) -> list[OutboxMessage]:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.recipient))).scalars())

    return await db.run(read)


async def test_the_mail_dispatcher_survives_smtp_down_slow_and_refusing_and_then_delivers_each_mail_once(
        database_url: str) -> None:
    """The real Dispatcher with the real SmtpMailer, running its own background loop, against an SMTP
    port that is closed, then mute, then stalling, then answering 451, then 554, then healthy. Each
    failure is recorded on every row (attempts, last_error, available_at = now + backoff(attempts),
    not sent) and nothing is retried before its time; once the server is back every mail, including
    one written during the outage, arrives exactly once, and stays delivered once."""
    clock = ManualClock(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    smtp = FlakySmtp()
    db = Database(database_url, pool_size=4)
    settings = SmtpSettings(host="127.0.0.1", port=smtp.port, starttls=False, timeout_seconds=0.5)
    dispatcher = outbox.Dispatcher(db, SmtpMailer(settings), clock, sender="foothills@example.com", poll_seconds=0.05)

    async def enqueue(*recipients: str) -> None:
        async def write(session: AsyncSession) -> None:
            await outbox.enqueue(session, [outbox.Mail(recipient=recipient, subject=f"for {recipient}", body="hello")
                                           for recipient in recipients], clock.now())

        await db.run(write)
        dispatcher.notify()

    phases = [  # mode, what the client sees (in last_error)
        ("down", "ConnectionRefusedError"),
        ("mute", "timed out"),
        ("stall", "timed out"),
        ("busy", "451"),
        ("reject", "554"),
    ]
    history: list[str] = []
    try:
        dispatcher.start()
        await enqueue("a@example.com", "b@example.com", "c@example.com")
        for attempt, (mode, error) in enumerate(phases, start=1):
            smtp.switch(mode)
            if attempt > 1:  # the earlier failures' backoff has passed
                rows = await _outbox_rows(db)
                clock.advance(max(r.available_at for r in rows) - clock.now())
                dispatcher.notify()
            if mode == "busy":
                await enqueue("d@example.com")  # written during the outage: it joins the retries

            def expected(row: OutboxMessage, attempt: int = attempt) -> int:
                return attempt - 3 if row.recipient == "d@example.com" else attempt  # d joined at attempt 4

            def failed(rows: list[OutboxMessage]) -> bool:  # every row's latest attempt failed and was recorded
                return bool(rows) and all(r.attempts == expected(r) and r.sent_at is None
                                          and r.available_at == clock.now() + outbox.backoff(r.attempts) for r in rows)

            deadline = time.monotonic() + 30
            while not failed(rows := await _outbox_rows(db)):
                assert time.monotonic() < deadline, f"{mode}: no failed attempt recorded: {rows}"
                await asyncio.sleep(0.02)
            for row in rows:
                assert error in row.last_error, (mode, row.last_error)
                assert row.body == "hello"
            # Before the backoff has passed nothing is due: a pass claims nothing.
            assert await dispatcher.deliver_due() == 0
            assert smtp.messages == []
            history.append(f"{mode}: {rows[0].last_error[:80]}")

        smtp.switch("up")
        rows = await _outbox_rows(db)
        clock.advance(max(r.available_at for r in rows) - clock.now())
        dispatcher.notify()
        deadline = time.monotonic() + 30
        while True:
            rows = await _outbox_rows(db)
            if all(r.sent_at is not None for r in rows):
                break
            assert time.monotonic() < deadline, f"not delivered after recovery: {rows}"
            await asyncio.sleep(0.02)
        # Long after: past every lease and backoff, nothing is sent again.
        clock.advance(outbox.MAX_BACKOFF + outbox.CLAIM_LEASE)
        dispatcher.notify()
        assert await dispatcher.deliver_due() == 0
    finally:
        await dispatcher.stop()
        smtp.close()
        await db.dispose()
    received = Counter(str(m["Message-ID"]) for m in smtp.messages)
    assert received == Counter({f"<{r.id}@foothills>": 1 for r in rows}), received
    assert sorted(str(m["To"]) for m in smtp.messages) == [f"{x}@example.com" for x in "abcd"]
    assert all(r.body == "" and r.sent_at == clock.now() - outbox.MAX_BACKOFF - outbox.CLAIM_LEASE for r in rows)
    print(f"[faults] SMTP {', '.join(history)}; then up: {len(rows)} mails, each delivered once "
          f"(attempts {sorted(r.attempts for r in rows)})")


async def test_a_recipient_refused_for_good_is_abandoned_at_once_and_a_stale_mail_after_two_days(
        database_url: str) -> None:
    """550 to RCPT: one attempt, then the row is abandoned (body dropped, error kept) and never claimed
    again, while the other mails of its batch go out on the same connection. A mail that cannot be
    delivered for GIVE_UP_AFTER (the SMTP server down all along) is abandoned at its next attempt
    instead of being retried forever."""
    clock = ManualClock(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))
    smtp = FlakySmtp()
    db = Database(database_url, pool_size=4)
    settings = SmtpSettings(host="127.0.0.1", port=smtp.port, starttls=False, timeout_seconds=0.5)
    dispatcher = outbox.Dispatcher(db, SmtpMailer(settings), clock, sender="foothills@example.com")

    async def enqueue(*recipients: str) -> None:
        async def write(session: AsyncSession) -> None:
            await outbox.enqueue(session, [outbox.Mail(recipient=recipient, subject="news", body="hello")
                                           for recipient in recipients], clock.now())

        await db.run(write)

    def by_recipient(rows: list[OutboxMessage]) -> dict[str, OutboxMessage]:
        return {row.recipient: row for row in rows}

    try:
        smtp.switch("up")
        await enqueue("gone@example.com")
        clock.advance(timedelta(seconds=1))  # due later, so sent after the refused one
        await enqueue("here@example.com", "there@example.com")
        assert await dispatcher.deliver_due() == 3
        assert smtp.greetings == 1  # the batch went over one connection, the refusal in its middle
        rows = by_recipient(await _outbox_rows(db))
        gone = rows["gone@example.com"]
        assert gone.abandoned_at == clock.now() and gone.sent_at is None and gone.attempts == 1
        assert "550" in gone.last_error and gone.body == ""
        for here in (rows["here@example.com"], rows["there@example.com"]):
            assert here.sent_at == clock.now() and here.abandoned_at is None
        clock.advance(outbox.GIVE_UP_AFTER)
        assert await dispatcher.deliver_due() == 0  # never claimed again

        smtp.switch("down")
        await enqueue("patient@example.com")
        assert await dispatcher.deliver_due() == 1
        patient = by_recipient(await _outbox_rows(db))["patient@example.com"]
        assert patient.abandoned_at is None and patient.available_at == clock.now() + outbox.backoff(1)
        clock.advance(outbox.GIVE_UP_AFTER)  # still down two days later
        assert await dispatcher.deliver_due() == 1
        patient = by_recipient(await _outbox_rows(db))["patient@example.com"]
        assert patient.abandoned_at == clock.now() and patient.attempts == 2 and patient.body == ""
        assert "ConnectionRefusedError" in patient.last_error
        clock.advance(outbox.MAX_BACKOFF + outbox.CLAIM_LEASE)
        assert await dispatcher.deliver_due() == 0
    finally:
        smtp.close()
        await db.dispose()
    assert sorted(str(m["To"]) for m in smtp.messages) == ["here@example.com", "there@example.com"]
    print("[faults] SMTP 550 to RCPT: abandoned after 1 attempt, its batch delivered on the same connection; "
          f"SMTP down for {outbox.GIVE_UP_AFTER}: abandoned after 2 attempts; the healthy mails delivered once")
