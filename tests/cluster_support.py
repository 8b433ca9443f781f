"""A cluster under test: `foothills-rpc serve` processes on one PostgreSQL database, the users signed in
through them, and the checker that reads the rows afterwards (the races' and the faults' tests share it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from foothills.admin.v1 import admin_pb2_grpc
from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from foothills.type.v1 import types_pb2
from tests.catalog_support import duration, hours, ts
from tests.reasons import recorders
from tests.support import psycopg_conninfo

SECRET = "booking-races-jwt-secret-7f3a9c1e5b2d4f6a8c0e"  # 40+ characters, shared by both processes
PASSWORD = "race passphrase 4d8e2b"
ADMIN_EMAIL = "race.admin@example.com"

START_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0


ACTIVE = (booking_pb2.BOOKING_STATUS_PENDING, booking_pb2.BOOKING_STATUS_CONFIRMED)
EVERY_DAY = [types_pb2.DAY_OF_WEEK_MONDAY, types_pb2.DAY_OF_WEEK_TUESDAY, types_pb2.DAY_OF_WEEK_WEDNESDAY,
             types_pb2.DAY_OF_WEEK_THURSDAY, types_pb2.DAY_OF_WEEK_FRIDAY, types_pb2.DAY_OF_WEEK_SATURDAY,
             types_pb2.DAY_OF_WEEK_SUNDAY]



@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def cluster_env(database_url: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHILLS_")}
    env.update(FOOTHILLS_DATABASE_URL=database_url, FOOTHILLS_JWT_SECRET=SECRET, FOOTHILLS_ARGON2_MEMORY_KIB="64",
               FOOTHILLS_ARGON2_TIME_COST="1", FOOTHILLS_OUTBOX_DIR=str(folder / "outbox"),
               FOOTHILLS_DB_POOL_SIZE="10", FOOTHILLS_LOG_LEVEL="WARNING", FOOTHILLS_SWEEP_SECONDS="0.05",
               FOOTHILLS_REGISTRATIONS_PER_ADDRESS="100000")  # hundreds of customers from 127.0.0.1
    return env


@dataclass
class Node:
    """Stubs on a channel to one server process."""

    channel: grpc.aio.Channel
    auth: auth_pb2_grpc.AuthServiceStub
    admin: admin_pb2_grpc.AdminServiceStub
    catalog: catalog_pb2_grpc.CatalogServiceStub
    booking: booking_pb2_grpc.BookingServiceStub

    @classmethod
    def connect(cls, port: int) -> Node:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=recorders())
        return cls(channel=channel, auth=auth_pb2_grpc.AuthServiceStub(channel),
                   admin=admin_pb2_grpc.AdminServiceStub(channel),
                   catalog=catalog_pb2_grpc.CatalogServiceStub(channel),
                   booking=booking_pb2_grpc.BookingServiceStub(channel))


async def wait_until_serving(process: Process, node: Node) -> None:
    health = health_pb2_grpc.HealthStub(node.channel)
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            pytest.fail(f"server exited with {process.popen.returncode} before serving:\n{process.log_text()}")
        try:
            answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        except grpc.aio.AioRpcError as error:
            last = f"{error.code().name}: {error.details()}"
        await asyncio.sleep(0.05)  # between polls only; readiness is the health answer
    pytest.fail(f"server on {process.port} not SERVING within {START_TIMEOUT}s ({last}):\n{process.log_text()}")


@dataclass
class User:
    name: str
    email: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@dataclass
class World:
    """Both servers, an admin, two providers, a category and a pool of signed-in customers."""

    nodes: list[Node]
    processes: list[Process]
    database_url: str
    admin: User
    providers: list[str]
    category: str
    customers: list[User]
    first_start: datetime
    hours_used: int = 0
    acknowledged: set[str] = field(default_factory=set)  # every booking a caller was told exists

    def node(self, index: int) -> Node:
        return self.nodes[index % len(self.nodes)]

    def take_hours(self, count: int) -> datetime:
        """A fresh block of `count` whole hours, aligned to `count`, used by no other race or round."""
        self.hours_used += -self.hours_used % count
        start = self.first_start + timedelta(hours=self.hours_used)
        self.hours_used += count
        return start

    async def service(self, label: str, *, capacity: int, provider: int, minutes: int = 60,
                      **settings: Any) -> str:
        """A UTC service bookable every day round the clock, 0s notice, 30 days ahead; made by the admin."""
        created = (await self.node(0).catalog.CreateService(catalog_pb2.CreateServiceRequest(
            service=catalog_pb2.Service(
                display_name=f"Race {label} {uuid.uuid4().hex[:6]}", category=self.category,
                provider=self.providers[provider], duration=duration(minutes=minutes), capacity=capacity,
                base_price=types_pb2.Money(amount_minor=2500, currency_code="EUR"), time_zone="UTC",
                booking_settings=catalog_pb2.BookingSettings(minimum_notice=duration(seconds=0),
                                                             maximum_days_ahead=30, **settings))),
            metadata=self.admin.metadata)).service
        await self.node(1).catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
            availability=catalog_pb2.Availability(name=f"{created.name}/availability", weekly_windows=[
                catalog_pb2.WeeklyWindow(day_of_week=day, hours=hours("00:00", "24:00")) for day in EVERY_DAY])),
            metadata=self.admin.metadata)
        return str(created.name)

    async def slot(self, service: str, start: datetime, *, node: int = 0) -> catalog_pb2.Slot:
        """The slot of `service` starting at `start`, as ListSlots shows it."""
        slots = (await self.node(node).catalog.ListSlots(catalog_pb2.ListSlotsRequest(
            service=service, start_time=ts(start), end_time=ts(start + timedelta(minutes=1))))).slots
        assert [s.start_time.ToDatetime(tzinfo=UTC) for s in slots] == [start], (service, start, slots)
        return slots[0]

    async def remaining(self, service: str, start: datetime) -> int:
        """Seats left at `start`, asked of both processes (they must agree)."""
        seen = {(await self.slot(service, start, node=n)).remaining_seats for n in range(len(self.nodes))}
        assert len(seen) == 1, seen
        return seen.pop()

    async def active_bookings(self, service: str, start: datetime, end: datetime,
                              caller: User | None = None) -> list[booking_pb2.Booking]:
        """Active bookings of `service` starting in [start, end), as the admin (or `caller`) lists them."""
        response = await self.node(1).booking.ListBookings(booking_pb2.ListBookingsRequest(
            page_size=200, statuses=list(ACTIVE), service=service, start_after=ts(start), start_before=ts(end)),
            metadata=(caller or self.admin).metadata)
        assert not response.next_page_token
        return list(response.bookings)


async def sign_up(nodes: list[Node], emails: Sequence[str]) -> list[User]:
    """Registers and signs in each email, spread across the processes, all at once."""
    registered = await asyncio.gather(*(
        nodes[i % len(nodes)].auth.Register(auth_pb2.RegisterRequest(
            email=email, password=PASSWORD, display_name=f"Racer {i}"), timeout=CALL_TIMEOUT)
        for i, email in enumerate(emails)))
    logins = await asyncio.gather(*(
        nodes[(i + 1) % len(nodes)].auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD),
                                               timeout=CALL_TIMEOUT)
        for i, email in enumerate(emails)))
    return [User(name=str(r.user.name), email=email, token=str(login.credentials.access_token))
            for r, email, login in zip(registered, emails, logins, strict=True)]



CHECKS = {
    "slots over capacity": "SELECT id, capacity, seats_taken FROM slots WHERE seats_taken > capacity",
    "slots whose seats_taken differ from their active bookings' and holds' seats": """
        SELECT s.id, s.seats_taken, b.seats, h.seats FROM slots s
        LEFT JOIN LATERAL (SELECT COALESCE(SUM(seats), 0) AS seats FROM bookings
                           WHERE slot_id = s.id AND status IN ('pending', 'confirmed')) b ON true
        LEFT JOIN LATERAL (SELECT COALESCE(SUM(seats), 0) AS seats FROM holds
                           WHERE slot_id = s.id AND status = 'active') h ON true
        WHERE s.seats_taken <> b.seats + h.seats""",
    "offered waitlist entries whose hold is not theirs or not active": """
        SELECT w.id FROM waitlist_entries w LEFT JOIN holds h ON h.id = w.hold_id
        WHERE w.status = 'offered' AND (h.id IS NULL OR h.customer_id <> w.customer_id OR h.status <> 'active')""",
    "used holds without their booking, or with another customer's": """
        SELECT h.id FROM holds h LEFT JOIN bookings b ON b.id = h.booking_id
        WHERE (h.status = 'used') <> (h.booking_id IS NOT NULL) OR b.customer_id <> h.customer_id""",
    "overlapping active bookings of one customer": """
        SELECT a.id, b.id FROM bookings a JOIN bookings b
          ON a.customer_id = b.customer_id AND a.id < b.id AND a.start_at < b.end_at AND b.start_at < a.end_at
        WHERE a.status IN ('pending', 'confirmed') AND b.status IN ('pending', 'confirmed')""",
    "overlapping active bookings of one provider in different slots": """
        SELECT a.id, b.id FROM bookings a JOIN bookings b
          ON a.provider_id = b.provider_id AND a.id < b.id AND a.slot_id <> b.slot_id
             AND a.start_at < b.end_at AND b.start_at < a.end_at
        WHERE a.status IN ('pending', 'confirmed') AND b.status IN ('pending', 'confirmed') AND a.uses_provider_time
          AND b.uses_provider_time""",
    "bookings at another time than their slot": """
        SELECT b.id FROM bookings b JOIN slots s ON s.id = b.slot_id
        WHERE b.start_at <> s.start_at OR b.end_at <> s.end_at""",
    "bookings without exactly one created event": """
        SELECT b.id, COUNT(e.id) FROM bookings b
        LEFT JOIN booking_events e ON e.booking_id = b.id AND e.type = 'created'
        GROUP BY b.id HAVING COUNT(e.id) <> 1""",
    "bookings whose reschedule_count differs from their rescheduled events": """
        SELECT b.id, b.reschedule_count, COUNT(e.id) FROM bookings b
        LEFT JOIN booking_events e ON e.booking_id = b.id AND e.type = 'rescheduled'
        GROUP BY b.id, b.reschedule_count HAVING b.reschedule_count <> COUNT(e.id)""",
    "bookings whose events, in stream order, do not start with their creation": """
        SELECT b.id, e.type FROM bookings b LEFT JOIN LATERAL (
            SELECT type FROM booking_events WHERE booking_id = b.id ORDER BY id LIMIT 1) e ON true
        WHERE e.type IS DISTINCT FROM 'created'""",
    "idempotency keys pointing at another caller's booking": """
        SELECT k.caller_id, k.request_id FROM idempotency_keys k JOIN bookings b ON b.id = k.booking_id
        WHERE b.customer_id <> k.caller_id""",
}


def check_database(url: str, acknowledged: set[str]) -> str:
    """Jepsen's set checker, on the rows: invariants hold, and stored bookings == acknowledged ones."""
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        failures = {name: rows for name, query in CHECKS.items() if (rows := conn.execute(query).fetchall())}
        stored = {f"bookings/{row[0].hex}" for row in conn.execute("SELECT id FROM bookings").fetchall()}
        (events,), = conn.execute("SELECT COUNT(*) FROM booking_events").fetchall()
        (slots,), = conn.execute("SELECT COUNT(*) FROM slots WHERE seats_taken > 0").fetchall()
    assert not failures, f"invariants broken: {failures}"
    assert not (lost := acknowledged - stored), f"acknowledged bookings missing from the database: {lost}"
    assert not (phantom := stored - acknowledged), f"bookings nobody was told about: {phantom}"
    return (f"[races] checker: {len(stored)} bookings, {events} events, {slots} occupied slots; no slot over "
            "capacity, seats_taken == active seats everywhere, no overlaps, stored == acknowledged")
