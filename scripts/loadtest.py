"""A ghz-style gRPC load generator for Foothills (asyncio, grpc.aio, the project's own stubs).

    uv run python scripts/loadtest.py --scenario get-service -c 64 -z 10s
    uv run python scripts/loadtest.py --scenario journey --users 100,250,500,1000 --think 1 \\
        --chart docs/journey-latency.png
    uv run python scripts/loadtest.py --scenario health,get-service,search --processes 2 --json

Every run first measures `health` (the framework's own ceiling) closed-loop at the same concurrency
and connections, and reports every figure also as a ratio to it, so results compare across machines.

Modes: closed loop (`-c N` calls in flight, each worker sends its next call when the last returns),
open loop (`--rate R`: calls start on a fixed schedule whatever the answers; latency counts from the
scheduled start, so a slow server cannot hide queueing), and virtual users (`--users N --think S`:
each user runs the scenario with a random pause of about S seconds between calls; a comma list runs a
sweep, which `--chart` draws). `--processes P` splits workers, users, rate and calls over P generator
processes, so the Python client is not the bottleneck.

`--cpu NAME=REGEX` (Linux) also reports the CPU time, per call and in cores, of the processes whose
command line matches REGEX during each measured window (for example the server and PostgreSQL on the
same machine), beside the generator's own. It shows where a call's cost goes: on a shared machine
the client, the server and the database take from the same cores.

Scenarios run on the demo data of `foothills-rpc seed-demo`, signing in its demo customers (the run
is found from the category names, or `--run-id`): health, get-service, search (text + category +
price), list-slots (one week), list-bookings (a signed-in customer's first page), book-cancel
(CreateBooking, then CancelBooking), hot-service (the same, every worker on the largest-capacity
service, the earliest slot with a seat first: a popular class filling slot after slot), login
(argon2 on every call) and journey (browse, search, read a service, list a week of slots, book, list
one's bookings, cancel half the time). Each generator process runs on uvloop, as the server does:
the generator's CPU is reported apart, but on shared cores it takes from the server's. Bookings
avoid the signed-in customer's own bookings and, inside one generator process, each other's
providers (providers are split between processes); the server may still refuse a slot whose provider
is busy with a seeded booking (FAILED_PRECONDITION PROVIDER_UNAVAILABLE, counted by reason):
ListSlots does not know about the provider's other services.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import random
import re
import sys
import time
import traceback
import uuid
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import uvloop
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc

SCENARIOS = ("health", "get-service", "search", "list-slots", "list-bookings", "book-cancel", "hot-service", "login",
             "journey")
NEEDS_ACCOUNTS = frozenset({"list-bookings", "book-cancel", "hot-service", "journey"})
PERCENTILES = (50, 90, 95, 99)
DAY = 86_400
WEEK = 7 * DAY
ACTIVE = [booking_pb2.BOOKING_STATUS_PENDING, booking_pb2.BOOKING_STATUS_CONFIRMED]


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One measured run: a scenario under one load shape."""

    scenario: str
    concurrency: int  # closed loop: workers; open loop: most calls in flight
    users: int = 0  # >0: virtual users with think time instead of workers
    rate: float = 0.0  # >0: open loop, calls per second
    duration: float = 10.0  # seconds measured (ignored when total > 0)
    total: int = 0  # >0: stop after this many measured calls
    warmup: float = 1.0

    @property
    def mode(self) -> str:
        return "users" if self.users else "open" if self.rate else "closed"

    def share(self, part: int, parts: int) -> Phase:
        """This phase's part for generator process `part` of `parts`."""
        return replace(self, concurrency=max(1, _split(self.concurrency, part, parts)),
                       users=_split(self.users, part, parts), rate=self.rate / parts,
                       total=_split(self.total, part, parts) if self.total else 0)


@dataclass(frozen=True)
class Config:
    target: str
    phases: tuple[Phase, ...]
    connections: int = 1
    processes: int = 1
    think: float = 1.0
    timeout: float = 10.0
    accounts: int = 0  # 0: one per worker or user, at most 500
    run_id: str = ""
    password: str = ""
    seed: int = 1
    cpu: tuple[tuple[str, str], ...] = ()  # (name, command-line regex) of processes whose CPU to report


def _split(total: int, part: int, parts: int) -> int:
    return total // parts + (1 if part < total % parts else 0)


# --- recording -------------------------------------------------------------------------------


class Recorder:
    """Calls that start inside the measured window: OK latencies per method, and every status."""

    def __init__(self, start: float, end: float, total: int) -> None:
        self.start, self.end, self.total = start, end, total
        self.ok: dict[str, array[float]] = defaultdict(lambda: array("d"))
        self.statuses: Counter[tuple[str, str]] = Counter()
        self.reasons: Counter[tuple[str, str]] = Counter()
        self.count = 0
        self.last = start
        self.done = asyncio.Event()

    def record(self, method: str, status: str, reason: str, started: float, latency: float) -> None:
        if not self.start <= started < self.end or self.done.is_set():
            return
        self.count += 1
        self.last = started + latency
        self.statuses[(method, status)] += 1
        if reason:
            self.reasons[(method, reason)] += 1
        if status == "OK":
            self.ok[method].append(latency)
        if self.total and self.count >= self.total:
            self.done.set()

    def raw(self, elapsed: float) -> dict[str, Any]:
        return {"elapsed": elapsed, "ok": {m: a.tobytes() for m, a in self.ok.items()},
                "statuses": [[m, s, n] for (m, s), n in self.statuses.items()],
                "reasons": [[m, r, n] for (m, r), n in self.reasons.items()]}


def _code_name(code: grpc.StatusCode) -> str:
    """ghz's spelling of a status code: OK, Unavailable, FailedPrecondition, ..."""
    return "OK" if code is grpc.StatusCode.OK else "".join(p.capitalize() for p in code.name.split("_"))


def _reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a Foothills error (grpc-status-details-bin), or ''."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""


# --- CPU accounting -------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
GENERATOR = "generator"
CpuSnapshot = dict[str, dict[int, float]]  # group -> pid -> CPU seconds (user + system) so far


def _matching_cpu(pattern: re.Pattern[str]) -> dict[int, float]:
    """CPU seconds so far of every other process whose command line matches, from Linux's /proc."""
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not command or not pattern.search(command):
                continue
            # Fields after the parenthesised name: state is the first, utime the 12th, stime the 13th.
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def cpu_snapshot(groups: tuple[tuple[str, str], ...]) -> CpuSnapshot:
    snapshot = {GENERATOR: {os.getpid(): time.process_time()}}
    for name, pattern in groups:
        snapshot[name] = _matching_cpu(re.compile(pattern))
    return snapshot


def cpu_spent(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, list[float]]:
    """Per group: [CPU seconds spent between the snapshots, processes]. A process that started in
    between counts whole; one that ended in between is lost (long-lived servers and pools are the point)."""
    return {name: [sum(seconds - before.get(name, {}).get(pid, 0.0) for pid, seconds in pids.items()), len(pids)]
            for name, pids in after.items()}


# --- demo data the scenarios use -------------------------------------------------------------


@dataclass
class ServiceInfo:
    name: str
    provider: str
    category: str
    base_price: int
    takes_provider_time: bool
    capacity: int


@dataclass
class Diary:
    """Busy intervals (epoch seconds), for a customer or a provider, as seen by this process."""

    busy: dict[str, tuple[int, int]] = field(default_factory=dict)

    def free(self, start: int, end: int) -> bool:
        return all(not (s < end and start < e) for s, e in self.busy.values())

    def hold(self, key: str, start: int, end: int) -> None:
        self.busy[key] = (start, end)

    def release(self, key: str) -> None:
        self.busy.pop(key, None)


@dataclass
class Account:
    email: str
    token: str = ""
    diary: Diary = field(default_factory=Diary)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@dataclass
class PoolSlot:
    service: ServiceInfo
    start: int
    end: int

    @property
    def key(self) -> str:
        return f"{self.service.name}@{self.start}"


@dataclass
class Demo:
    """What setup learnt: the catalog, this process's accounts and the slots it may book."""

    services: list[ServiceInfo]
    mine: list[ServiceInfo]  # services whose provider this process books (providers split by process)
    categories: list[str]
    words: list[str]
    accounts: list[Account]
    pool: list[PoolSlot]
    hot: list[PoolSlot] = field(default_factory=list)  # the popular service's slots, earliest first
    providers: dict[str, Diary] = field(default_factory=lambda: defaultdict(Diary))


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.health = health_pb2_grpc.HealthStub(channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        self.booking = booking_pb2_grpc.BookingServiceStub(channel)


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(seconds))


async def _discover(config: Config, stubs: Stubs, part: int, parts: int, rng: random.Random,
                    scenarios: set[str], accounts_wanted: int) -> Demo:
    """Reads the catalog, signs in this process's demo customers and collects bookable slots (not measured)."""
    categories = list((await stubs.catalog.ListCategories(catalog_pb2.ListCategoriesRequest(page_size=200))).categories)
    if not categories:
        raise SystemExit("the server has no categories: run `foothills-rpc seed-demo` first")
    run_id = config.run_id or max(categories, key=lambda c: (c.create_time.ToNanoseconds(), c.name)
                                  ).display_name.rsplit(" ", 1)[-1]
    run_categories = [c.name for c in categories if c.display_name.endswith(f" {run_id}")]
    services: list[ServiceInfo] = []
    words: set[str] = set()  # search terms: the first word of every service's name ("swedish", "tennis")
    token = ""
    while True:
        page = await stubs.catalog.ListServices(catalog_pb2.ListServicesRequest(page_size=200, page_token=token))
        services += [ServiceInfo(s.name, s.provider, s.category, s.base_price.amount_minor,
                                 not s.runs_without_provider, s.capacity) for s in page.services]
        words.update(s.display_name.split()[0].lower() for s in page.services if s.display_name.split())
        token = page.next_page_token
        if not token or len(services) >= 20_000:
            break
    if not services:
        raise SystemExit("the server has no services: run `foothills-rpc seed-demo` first")
    mine = [s for s in services if zlib.crc32(s.provider.encode()) % parts == part] or services

    accounts = [Account(f"customer{i}.{run_id}@demo.foothills.invalid") for i in range(accounts_wanted)
                if i % parts == part]
    if scenarios & NEEDS_ACCOUNTS:
        accounts = await _sign_in(stubs, accounts, config.password)
    pool: list[PoolSlot] = []
    if "book-cancel" in scenarios:
        pool = await _slot_pool(stubs, rng, mine)
    hot = await _hot_pool(stubs, mine) if "hot-service" in scenarios else []
    return Demo(services=services, mine=mine, categories=run_categories or [c.name for c in categories],
                words=sorted(words), accounts=accounts, pool=pool, hot=hot)


async def _sign_in(stubs: Stubs, accounts: list[Account], password: str) -> list[Account]:
    """Signs the accounts in (a few at a time: argon2 is slow on purpose) and learns their active bookings."""
    gate = asyncio.Semaphore(4)
    now = time.time()

    async def one(account: Account) -> Account | None:
        async with gate:
            try:
                login = await stubs.auth.Login(auth_pb2.LoginRequest(email=account.email, password=password))
            except grpc.aio.AioRpcError:
                return None
            account.token = login.credentials.access_token
            token = ""
            while True:  # every page: a customer of many runs holds more than one page of active bookings
                page = await stubs.booking.ListBookings(booking_pb2.ListBookingsRequest(
                    page_size=200, statuses=ACTIVE, start_after=_ts(now - DAY), page_token=token),
                    metadata=account.metadata)
                for booking in page.bookings:
                    account.diary.hold(booking.name, booking.start_time.seconds, booking.end_time.seconds)
                if not (token := page.next_page_token):
                    return account

    signed = [a for a in await asyncio.gather(*(one(a) for a in accounts)) if a is not None]
    if not signed:
        raise SystemExit(f"no demo customer could sign in (tried {accounts[0].email if accounts else 'none'}...): "
                         "check --run-id and --password")
    return signed


async def _slot_pool(stubs: Stubs, rng: random.Random, services: list[ServiceInfo]) -> list[PoolSlot]:
    """Free slots 2 to 60 days ahead (cancelled free of charge) of up to 150 of this process's services."""
    now = time.time()
    chosen = rng.sample(services, min(150, len(services)))

    async def week(service: ServiceInfo) -> list[PoolSlot]:
        start = now + 2 * DAY + rng.random() * 58 * DAY
        reply = await stubs.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
            service=service.name, start_time=_ts(start), end_time=_ts(start + WEEK)))
        return [PoolSlot(service, s.start_time.seconds, s.end_time.seconds) for s in reply.slots if s.remaining_seats]

    gate = asyncio.Semaphore(16)

    async def gated(service: ServiceInfo) -> list[PoolSlot]:
        async with gate:
            return await week(service)

    return [slot for slots in await asyncio.gather(*(gated(s) for s in chosen)) for slot in slots]


async def _hot_pool(stubs: Stubs, services: list[ServiceInfo]) -> list[PoolSlot]:
    """The slots with a free seat, 2 to 16 days ahead, of this process's largest-capacity service."""
    hot = max(services, key=lambda s: (s.capacity, s.name))
    now = time.time()
    slots: list[PoolSlot] = []
    for start in (now + 2 * DAY, now + 2 * DAY + WEEK):
        reply = await stubs.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
            service=hot.name, start_time=_ts(start), end_time=_ts(start + WEEK)))
        slots += [PoolSlot(hot, s.start_time.seconds, s.end_time.seconds) for s in reply.slots if s.remaining_seats]
    return slots


# --- workers and scenarios -------------------------------------------------------------------


class Worker:
    """One closed-loop worker, open-loop slot or virtual user: its channel, account and pauses."""

    def __init__(self, runner: Runner, index: int, stubs: Stubs, account: Account | None, think: float) -> None:
        self.runner = runner
        self.index = index
        self.stubs = stubs
        self.account = account
        self.think = think
        self.rng = random.Random(runner.config.seed * 1_000_003 + runner.part * 10_007 + index)  # noqa: S311
        self.scheduled: float | None = None  # open loop: the first call's latency counts from here

    async def call(self, method: str, rpc: Callable[..., Awaitable[Any]], request: Any,
                   signed_in: bool = False) -> tuple[Any, str]:
        """Sends one call and records it; returns (response or None, ErrorInfo reason or '')."""
        started = time.perf_counter() if self.scheduled is None else self.scheduled
        self.scheduled = None
        metadata = self.account.metadata if signed_in and self.account else None
        try:
            response = await rpc(request, metadata=metadata, timeout=self.runner.config.timeout)
        except grpc.aio.AioRpcError as error:
            reason = _reason(error)
            self.runner.recorder.record(method, _code_name(error.code()), reason, started,
                                        time.perf_counter() - started)
            return None, reason
        self.runner.recorder.record(method, "OK", "", started, time.perf_counter() - started)
        return response, ""

    async def pause(self) -> bool:
        """A virtual user's think time (about `think` seconds); False once the run is over."""
        if self.think > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.runner.stopping.wait(), self.think * (0.5 + self.rng.random()))
        return not self.runner.stopping.is_set()


Scenario = Callable[[Worker], Awaitable[None]]


async def health(w: Worker) -> None:
    await w.call("Health/Check", w.stubs.health.Check, health_pb2.HealthCheckRequest())


async def get_service(w: Worker) -> None:
    service = w.rng.choice(w.runner.demo.services)
    await w.call("GetService", w.stubs.catalog.GetService, catalog_pb2.GetServiceRequest(name=service.name))


def _search_request(w: Worker) -> catalog_pb2.ListServicesRequest:
    low = w.rng.randrange(0, 12_000, 500)
    return catalog_pb2.ListServicesRequest(page_size=20, query=w.rng.choice(w.runner.demo.words),
                                           category=w.rng.choice(w.runner.demo.categories),
                                           min_price_minor=low, max_price_minor=low + 5000,
                                           currency_code=w.rng.choice(("EUR", "GBP", "USD")))


async def search(w: Worker) -> None:
    await w.call("ListServices", w.stubs.catalog.ListServices, _search_request(w))


def _week_request(w: Worker, service: ServiceInfo) -> catalog_pb2.ListSlotsRequest:
    start = time.time() + w.rng.random() * 80 * DAY
    return catalog_pb2.ListSlotsRequest(service=service.name, start_time=_ts(start), end_time=_ts(start + WEEK))


async def list_slots(w: Worker) -> None:
    await w.call("ListSlots", w.stubs.catalog.ListSlots, _week_request(w, w.rng.choice(w.runner.demo.services)))


async def list_bookings(w: Worker) -> None:
    """A signed-in customer's first page of bookings, newest first (the journey's ListBookings)."""
    await w.call("ListBookings", w.stubs.booking.ListBookings, booking_pb2.ListBookingsRequest(page_size=20),
                 signed_in=True)


async def login(w: Worker) -> None:
    accounts = w.runner.demo.accounts
    email = accounts[w.rng.randrange(len(accounts))].email
    await w.call("Login", w.stubs.auth.Login, auth_pb2.LoginRequest(email=email, password=w.runner.config.password))


def _hold(w: Worker, slot: PoolSlot) -> bool:
    """Claims the slot for this worker's customer and (inside this process) its provider, if both are free."""
    assert w.account is not None
    provider = w.runner.demo.providers[slot.service.provider]
    if not w.account.diary.free(slot.start, slot.end) or (
            slot.service.takes_provider_time and not provider.free(slot.start, slot.end)):
        return False
    w.account.diary.hold(slot.key, slot.start, slot.end)
    if slot.service.takes_provider_time:
        provider.hold(slot.key, slot.start, slot.end)
    return True


def _release(w: Worker, slot: PoolSlot) -> None:
    assert w.account is not None
    w.account.diary.release(slot.key)
    w.runner.demo.providers[slot.service.provider].release(slot.key)


async def _book(w: Worker, slot: PoolSlot) -> tuple[str, str]:
    """CreateBooking; (booking name or '', refusal reason)."""
    reply, reason = await w.call("CreateBooking", w.stubs.booking.CreateBooking, booking_pb2.CreateBookingRequest(
        service=slot.service.name, start_time=_ts(slot.start), seats=1, request_id=uuid.uuid4().hex), signed_in=True)
    return (reply.booking.name if reply is not None else ""), reason


async def _cancel(w: Worker, name: str) -> None:
    await w.call("CancelBooking", w.stubs.booking.CancelBooking,
                 booking_pb2.CancelBookingRequest(name=name, reason="load test"), signed_in=True)


async def book_cancel(w: Worker) -> None:
    pool = w.runner.demo.pool
    slot = next((s for s in (w.rng.choice(pool) for _ in range(20) if pool) if _hold(w, s)), None)
    if slot is None:  # every slot tried is someone else's now: let them finish
        w.scheduled = None
        await asyncio.sleep(0.002)
        return
    try:
        name, reason = await _book(w, slot)
        if name:
            await w.pause()
            await _cancel(w, name)  # even once the run is over: leave the data as it was
        elif reason in ("PROVIDER_UNAVAILABLE", "SLOT_UNAVAILABLE", "MINIMUM_NOTICE") and slot in pool:
            pool.remove(slot)  # busy for good (a seeded booking): do not try it again
    finally:
        _release(w, slot)


async def journey(w: Worker) -> None:
    """One visit: browse a category, search, read a service, list a week, book, list bookings, maybe cancel."""
    demo = w.runner.demo
    await w.call("ListServices", w.stubs.catalog.ListServices, catalog_pb2.ListServicesRequest(
        page_size=20, category=w.rng.choice(demo.categories)))
    if not await w.pause():
        return
    found, _ = await w.call("ListServices", w.stubs.catalog.ListServices, _search_request(w))
    if not await w.pause():
        return
    names = {s.name for s in demo.mine}
    choices = [s.name for s in (found.services if found else ()) if s.name in names]
    service = next((s for s in demo.mine if s.name == choices[0]), None) if choices else w.rng.choice(demo.mine)
    assert service is not None
    await w.call("GetService", w.stubs.catalog.GetService, catalog_pb2.GetServiceRequest(name=service.name))
    if not await w.pause():
        return
    week, _ = await w.call("ListSlots", w.stubs.catalog.ListSlots, _week_request(w, service))
    if not await w.pause():
        return
    free = [PoolSlot(service, s.start_time.seconds, s.end_time.seconds) for s in (week.slots if week else ())
            if s.remaining_seats and s.start_time.seconds > time.time() + 3 * 3600]
    w.rng.shuffle(free)
    slot = next((s for s in free[:20] if _hold(w, s)), None)
    name = ""
    if slot is not None:
        name, _ = await _book(w, slot)
        if not name:
            _release(w, slot)
        if not await w.pause():
            return
    await w.call("ListBookings", w.stubs.booking.ListBookings, booking_pb2.ListBookingsRequest(page_size=20),
                 signed_in=True)
    if name and slot is not None and w.rng.random() < 0.5 and await w.pause():
        await _cancel(w, name)
        _release(w, slot)


async def hot_service(w: Worker) -> None:
    """Every worker books the one popular service, the earliest slot with a seat first, then cancels.
    A full slot goes to the back of the line, so the bookings move on slot after slot."""
    assert w.account is not None
    pool = w.runner.demo.hot
    slot = next((s for s in pool if w.account.diary.free(s.start, s.end)), None)
    if slot is None:  # this customer holds a seat at every slot left: let the others finish
        w.scheduled = None
        await asyncio.sleep(0.002)
        return
    w.account.diary.hold(slot.key, slot.start, slot.end)  # not the provider's: the seats are shared
    try:
        name, reason = await _book(w, slot)
        if name:
            await w.pause()
            await _cancel(w, name)
        elif slot in pool:
            pool.remove(slot)
            if reason == "SLOT_UNAVAILABLE":  # full for now: it frees as the others cancel
                pool.append(slot)
    finally:
        w.account.diary.release(slot.key)


SCENARIO_CALLS: dict[str, Scenario] = {
    "health": health, "get-service": get_service, "search": search, "list-slots": list_slots,
    "list-bookings": list_bookings, "book-cancel": book_cancel, "hot-service": hot_service, "login": login,
    "journey": journey,
}


# --- running phases --------------------------------------------------------------------------


class Runner:
    """One generator process: its channels, its demo data, and the phases it runs."""

    def __init__(self, config: Config, part: int, parts: int) -> None:
        self.config, self.part, self.parts = config, part, parts
        self.recorder = Recorder(0, 0, 0)
        self.stopping = asyncio.Event()
        connections = max(1, _split(config.connections, part, parts))
        # A local subchannel pool per channel: each channel is its own TCP connection.
        self.channels = [grpc.aio.insecure_channel(config.target, options=[("grpc.use_local_subchannel_pool", 1)])
                         for _ in range(connections)]
        self.stubs = [Stubs(channel) for channel in self.channels]
        self.demo = Demo([], [], [], [], [], [])

    async def setup(self) -> None:
        scenarios = {phase.scenario for phase in self.config.phases}
        if scenarios == {"health"}:
            return
        wanted = self.config.accounts or min(500, max(max(p.users, p.concurrency) for p in self.config.phases))
        rng = random.Random(self.config.seed + self.part)  # noqa: S311
        self.demo = await _discover(self.config, self.stubs[0], self.part, self.parts, rng, scenarios,
                                    max(wanted, self.parts))

    async def run(self, phase: Phase) -> dict[str, Any]:
        phase = phase.share(self.part, self.parts)
        scenario = SCENARIO_CALLS[phase.scenario]
        self.stopping = asyncio.Event()
        began = time.perf_counter()
        start = began + phase.warmup
        end = math.inf if phase.total else start + phase.duration
        self.recorder = recorder = Recorder(start, end, phase.total)
        count = phase.users or phase.concurrency
        accounts = self.demo.accounts
        workers = [Worker(self, i, self.stubs[i % len(self.stubs)], accounts[i % len(accounts)] if accounts else None,
                          self.config.think if phase.users else 0.0) for i in range(count)]
        if phase.users == 0 and phase.concurrency > 0 and not self.demo.services and phase.scenario != "health":
            raise SystemExit("no demo data")
        if phase.rate:
            tasks = [asyncio.create_task(self._open_loop(phase, workers, scenario))]
        else:
            tasks = [asyncio.create_task(self._loop(w, scenario, stagger=bool(phase.users))) for w in workers]
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        groups = self.config.cpu if self.part == 0 else ()  # the other processes' CPU is read once
        before = cpu_snapshot(groups)
        if phase.total:
            await recorder.done.wait()
        else:
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
        cpu = cpu_spent(before, cpu_snapshot(groups))
        self.stopping.set()
        _, late = await asyncio.wait(tasks, timeout=self.config.timeout + 1)
        for task in late:
            task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]
        elapsed = (recorder.last if phase.total else end) - start
        return {**recorder.raw(max(elapsed, 1e-9)), "cpu": cpu}

    async def _loop(self, worker: Worker, scenario: Scenario, stagger: bool) -> None:
        if stagger and not await worker.pause():  # users arrive spread over one think time
            return
        while not self.stopping.is_set():
            await scenario(worker)
            if worker.think and not await worker.pause():
                return

    async def _open_loop(self, phase: Phase, workers: list[Worker], scenario: Scenario) -> None:
        """Starts an iteration every 1/rate seconds; at most `concurrency` run at once (the rest queue)."""
        idle: asyncio.Queue[Worker] = asyncio.Queue()
        for worker in workers:
            idle.put_nowait(worker)
        running: set[asyncio.Task[None]] = set()
        began, interval = time.perf_counter(), 1.0 / phase.rate

        async def one(scheduled: float) -> None:
            worker = await idle.get()
            try:
                worker.scheduled = scheduled
                await scenario(worker)
            finally:
                idle.put_nowait(worker)

        for n in range(10**12):
            scheduled = began + n * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                break
            task = asyncio.create_task(one(scheduled))
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.wait(running, timeout=self.config.timeout)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


async def generate(config: Config, part: int, parts: int, barrier: Any = None,
                   publish: Callable[[int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Runs every phase in this process; with a barrier, phases start together in every process."""
    runner = Runner(config, part, parts)
    results = []
    try:
        await runner.setup()
        for index, phase in enumerate(config.phases):
            if barrier is not None:
                await asyncio.to_thread(barrier.wait)
            result = await runner.run(phase)
            if publish is not None:
                publish(index, result)
            results.append(result)
    finally:
        await runner.close()
    return results


def _child(config: Config, part: int, barrier: Any, queue: Any) -> None:
    try:
        uvloop.run(generate(config, part, config.processes, barrier,
                             lambda index, result: queue.put(("result", part, index, result))))
    except BaseException as error:  # report anything (SystemExit included) to the parent
        barrier.abort()
        queue.put(("error", part, -1, f"{error}\n{traceback.format_exc()}"))


def run_all(config: Config) -> list[list[dict[str, Any]]]:
    """Every phase's raw results, one per generator process."""
    if config.processes == 1:
        return [[result] for result in uvloop.run(generate(config, 0, 1))]
    context = multiprocessing.get_context("spawn")  # fresh processes: never fork gRPC state
    barrier, queue = context.Barrier(config.processes), context.Queue()
    children = [context.Process(target=_child, args=(config, part, barrier, queue), daemon=True)
                for part in range(config.processes)]
    for child in children:
        child.start()
    results: list[list[dict[str, Any]]] = [[] for _ in config.phases]
    try:
        for _ in range(config.processes * len(config.phases)):
            kind, part, index, payload = queue.get()
            if kind == "error":
                raise SystemExit(f"generator process {part} failed: {payload}")
            results[index].append(payload)
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.terminate()
    return results


# --- reporting -------------------------------------------------------------------------------


def _percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def _latency(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"fastest": math.nan, "slowest": math.nan, "average": math.nan,
                **{f"p{p}": math.nan for p in PERCENTILES}}
    stats = {"fastest": ordered[0], "slowest": ordered[-1], "average": sum(ordered) / len(ordered),
             **{f"p{p}": _percentile(ordered, p) for p in PERCENTILES}}
    return {key: round(value * 1000, 3) for key, value in stats.items()}


def summarise(phase: Phase, config: Config, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merges the processes' raw results of one phase into ghz-like figures."""
    elapsed = max(part["elapsed"] for part in parts)
    ok: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for part in parts:
        for method, data in part["ok"].items():
            values = array("d")
            values.frombytes(data)
            ok[method] += values.tolist()
        for method, status, n in part["statuses"]:
            statuses[method][status] += n
        for method, reason, n in part["reasons"]:
            reasons[method][reason] += n
    spent: dict[str, list[float]] = {}
    for part in parts:
        for name, (seconds, processes) in part["cpu"].items():
            total = spent.setdefault(name, [0.0, 0])
            total[0] += seconds
            total[1] += processes
    every_ok = [v for values in ok.values() for v in values]
    total_statuses = sum(statuses.values(), Counter())
    count = sum(total_statuses.values())
    methods = {method: {"count": sum(codes.values()), "rps": round(sum(codes.values()) / elapsed, 2),
                        "latency_ms": _latency(ok.get(method, [])), "statuses": dict(codes),
                        "reasons": dict(reasons.get(method, {}))}
               for method, codes in sorted(statuses.items())}
    return {
        "scenario": phase.scenario, "mode": phase.mode, "concurrency": phase.concurrency, "users": phase.users,
        "think_s": config.think if phase.users else 0.0, "rate": phase.rate, "connections": config.connections,
        "processes": config.processes, "count": count, "ok": total_statuses.get("OK", 0),
        "errors": count - total_statuses.get("OK", 0), "duration_s": round(elapsed, 3),
        "rps": round(count / elapsed, 2), "latency_ms": _latency(every_ok), "statuses": dict(total_statuses),
        "reasons": dict(sum(reasons.values(), Counter())), "methods": methods,
        "cpu": {name: {"processes": int(processes), "seconds": round(seconds, 3),
                       "cores": round(seconds / elapsed, 3),
                       "ms_per_call": round(seconds * 1000 / count, 3) if count else math.nan}
                for name, (seconds, processes) in spent.items()},
    }


def _ratios(run: dict[str, Any], health_run: dict[str, Any] | None) -> dict[str, float] | None:
    if health_run is None or not health_run["rps"]:
        return None
    ratios = {"rps": round(run["rps"] / health_run["rps"], 3)}
    for key in ("average", *(f"p{p}" for p in PERCENTILES)):
        base, value = health_run["latency_ms"][key], run["latency_ms"][key]
        ratios[key] = round(value / base, 2) if base and not math.isnan(base) and not math.isnan(value) else math.nan
    return ratios


def _describe(run: dict[str, Any]) -> str:
    shape = {"closed": f"closed loop, {run['concurrency']} in flight",
             "open": f"open loop at {run['rate']:g} calls/s, at most {run['concurrency']} in flight",
             "users": f"{run['users']} virtual users, think {run['think_s']:g} s"}[run["mode"]]
    return f"{shape}, {run['connections']} connection(s), {run['processes']} process(es)"


def render(report: dict[str, Any]) -> str:
    """ghz's text layout, with the ratio to health beside each figure."""
    lines: list[str] = []
    for run in ([report["health"]] if report["health"] else []) + report["runs"]:
        ratio = run.get("ratio_to_health") or {}

        def vs(key: str, ratio: dict[str, float] = ratio) -> str:
            value = ratio.get(key)
            return "" if value is None or math.isnan(value) else f"   ({value:g} x health)"

        lat = run["latency_ms"]
        lines += ["", f"Scenario: {run['scenario']}   ({_describe(run)})", "", "Summary:",
                  f"  Count:        {run['count']}", f"  Total:        {run['duration_s']:.2f} s",
                  f"  Slowest:      {lat['slowest']:.2f} ms", f"  Fastest:      {lat['fastest']:.2f} ms",
                  f"  Average:      {lat['average']:.2f} ms{vs('average')}",
                  f"  Requests/sec: {run['rps']:.2f}{vs('rps')}", "", "Latency distribution (OK calls):"]
        lines += [f"  {p} % in {lat[f'p{p}']:.2f} ms{vs(f'p{p}')}" for p in PERCENTILES]
        lines += ["", "Status code distribution:"]
        lines += [f"  [{status}]   {n} responses" for status, n in sorted(run["statuses"].items())]
        if run["reasons"]:
            lines += ["", "Refusal reasons:"] + [f"  [{r}]   {n}" for r, n in sorted(run["reasons"].items())]
        lines += ["", "CPU in the measured window:"] + [
            f"  {name:<12}{cpu['ms_per_call']:>9.3f} ms per call{cpu['cores']:>8.2f} cores"
            f"   ({cpu['processes']} process(es))" for name, cpu in run["cpu"].items()]
        if len(run["methods"]) > 1:
            lines += ["", "Per method:", f"  {'method':<16}{'count':>8}{'rps':>10}{'avg ms':>9}{'p50':>8}{'p99':>8}"
                      "  statuses"]
            for method, m in run["methods"].items():
                lines.append(f"  {method:<16}{m['count']:>8}{m['rps']:>10.1f}{m['latency_ms']['average']:>9.2f}"
                             f"{m['latency_ms']['p50']:>8.2f}{m['latency_ms']['p99']:>8.2f}  "
                             + ", ".join(f"{k} {v}" for k, v in sorted(m["statuses"].items())))
    if report["health"] and report["runs"]:
        lines += ["", "Ratios to health (same run):",
                  f"  {'scenario':<12}{'mode':>24}{'rps':>10}{'x health':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"]
        for run in [report["health"], *report["runs"]]:
            load = run["users"] if run["mode"] == "users" else run["concurrency"]
            lines.append(f"  {run['scenario']:<12}{run['mode'] + ' ' + str(load):>24}{run['rps']:>10.1f}"
                         f"{(run.get('ratio_to_health') or {}).get('rps', math.nan):>10.3f}"
                         f"{run['latency_ms']['p50']:>9.2f}{run['latency_ms']['p99']:>9.2f}{run['errors']:>8}")
    return "\n".join(lines).lstrip("\n")


def chart(report: dict[str, Any], path: Path) -> None:
    """Latency percentiles of OK calls against virtual users, one line per percentile (and scenario)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run for run in report["runs"] if run["mode"] == "users"]
    if not runs:
        raise SystemExit("--chart needs a virtual-user run (--users N[,N...])")
    figure, axis = plt.subplots(figsize=(8, 5), dpi=120)
    scenarios = sorted({run["scenario"] for run in runs})
    for scenario in scenarios:
        mine = sorted((run for run in runs if run["scenario"] == scenario), key=lambda run: run["users"])
        for p, style in zip(PERCENTILES, ("-o", "-s", "-^", "-D"), strict=True):
            label = f"p{p}" if len(scenarios) == 1 else f"{scenario} p{p}"
            axis.plot([run["users"] for run in mine], [run["latency_ms"][f"p{p}"] for run in mine], style, label=label)
    think = runs[0]["think_s"]
    axis.axhline(200, color="red", linestyle="--", linewidth=1, label="200 ms")
    axis.axhline(50, color="orange", linestyle=":", linewidth=1, label="50 ms")
    axis.set_xlabel(f"virtual users (think time about {think:g} s)")
    axis.set_ylabel("latency of OK calls (ms)")
    axis.set_yscale("log")
    if max(run["users"] for run in runs) >= 10 * min(run["users"] for run in runs):
        axis.set_xscale("log")
    axis.set_title(f"{', '.join(scenarios)} against {report['target']} ({report['machine']['cpus']} CPUs)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def build_report(config: Config, raw: list[list[dict[str, Any]]], started: datetime) -> dict[str, Any]:
    runs = [summarise(phase, config, parts) for phase, parts in zip(config.phases, raw, strict=True)]
    health_run = runs[0] if config.phases[0].scenario == "health" and config.phases[0].mode == "closed" else None
    for run in runs:
        run["ratio_to_health"] = _ratios(run, health_run)
    return {
        "target": config.target, "started_at": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": {k: v for k, v in asdict(config).items() if k not in ("phases", "password")},
        "health": health_run, "runs": runs[1:] if health_run is not None and len(runs) > 1 else
        ([] if health_run is not None else runs),
    }


# --- command line ----------------------------------------------------------------------------


def _seconds(text: str) -> float:
    """10, 10s, 500ms, 2m."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def parse(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--target", default="127.0.0.1:50051", help="HOST:PORT (default %(default)s)")
    parser.add_argument("--scenario", default="health",
                        help=f"one or a comma list of: {', '.join(SCENARIOS)} (default %(default)s)")
    parser.add_argument("-c", "--concurrency", type=int, default=64, help="calls in flight (default %(default)s)")
    parser.add_argument("--connections", type=int, default=1, help="channels the workers share (default 1)")
    parser.add_argument("-z", "--duration", type=_seconds, default=10.0, help="measured time per run (default 10s)")
    parser.add_argument("-n", "--total", type=int, default=0, help="measured calls per run instead of a duration")
    parser.add_argument("--warmup", type=_seconds, default=1.0, help="unmeasured time before each run (default 1s)")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: calls per second (default: closed loop)")
    parser.add_argument("--users", default="", help="virtual users instead of workers; a comma list runs a sweep")
    parser.add_argument("--think", type=_seconds, default=1.0, help="virtual users' mean pause between calls")
    parser.add_argument("--processes", type=int, default=1, help="generator processes (default 1)")
    parser.add_argument("--accounts", type=int, default=0, help="demo customers to sign in (default: one per "
                        "worker or user, at most 500)")
    parser.add_argument("--run-id", default="", help="the seed-demo run whose customers sign in (default: newest)")
    parser.add_argument("--password", default="", help="the demo password (default: seed-demo's)")
    parser.add_argument("--timeout", type=_seconds, default=10.0, help="deadline of each call (default 10s)")
    parser.add_argument("--no-baseline", action="store_true", help="do not measure health first")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generators")
    parser.add_argument("--cpu", action="append", default=[], metavar="NAME=REGEX",
                        help="also report the CPU of the processes whose command line matches REGEX (Linux); "
                             "repeatable, e.g. --cpu server='foothills-rpc serve' --cpu database=postgres")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--chart", type=Path, help="draw latency percentiles against virtual users to this PNG")
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or not scenarios:
        parser.error(f"unknown scenario {', '.join(unknown) or '(none)'}; choose from {', '.join(SCENARIOS)}")
    users = [int(u) for u in args.users.split(",") if u.strip()]
    if min([args.concurrency, args.connections, args.processes, *users], default=1) < 1:
        parser.error("--concurrency, --connections, --processes and --users must be at least 1")
    cpu: list[tuple[str, str]] = []
    if args.cpu and not Path("/proc/self/stat").exists():
        parser.error("--cpu reads Linux's /proc, which this machine does not have")
    for spec in args.cpu:
        name, _, pattern = spec.partition("=")
        try:
            re.compile(pattern)
        except re.error as error:
            parser.error(f"--cpu {spec}: {error}")
        if not name or not pattern or name == GENERATOR or name in dict(cpu):
            parser.error(f"--cpu {spec}: give NAME=REGEX, a new NAME other than {GENERATOR!r}, and a REGEX")
        cpu.append((name, pattern))
    base = Phase(scenario="health", concurrency=args.concurrency, duration=args.duration, total=args.total,
                 warmup=args.warmup)
    phases = [] if args.no_baseline else [base]
    for scenario in scenarios:
        if scenario == "health" and not args.no_baseline and not users and not args.rate:
            continue  # the baseline is this run
        if users:
            phases += [replace(base, scenario=scenario, users=n) for n in users]
        else:
            phases.append(replace(base, scenario=scenario, rate=args.rate))
    password = args.password
    if not password:
        from foothills_rpc.seed import DEMO_PASSWORD

        password = DEMO_PASSWORD
    config = Config(target=args.target, phases=tuple(phases), connections=args.connections,
                    processes=args.processes, think=args.think, timeout=args.timeout, accounts=args.accounts,
                    run_id=args.run_id, password=password, seed=args.seed, cpu=tuple(cpu))
    return config, args


def _json_safe(value: Any) -> Any:
    """NaN (no OK call to measure) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def main(argv: list[str] | None = None) -> int:
    config, args = parse(argv)
    started = datetime.now(UTC)
    print(f"loadtest: {len(config.phases)} run(s) against {config.target}", file=sys.stderr)
    raw = run_all(config)
    report = build_report(config, raw, started)
    if args.chart:
        chart(report, args.chart)
    print(json.dumps(_json_safe(report), indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
