"""`foothills-rpc seed-demo` as a subprocess, then the seeded catalog through a real server.

The command runs exactly as a person would run it (`python -m foothills_rpc.cli seed-demo`), on
SQLite and on PostgreSQL. On SQLite it gets a fresh, unmigrated file, because the command migrates
the embedded database itself; PostgreSQL gets the suite's fresh migrated database (the command only
auto-migrates SQLite). An in-process server on the real clock (the seed materialises slots from the
real "now") then serves the result.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc, user_pb2
from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from foothills_rpc.db.models import Booking, BookingEvent, EventSequence, Service, Slot, User
from foothills_rpc.seed import CATEGORIES, DEMO_PASSWORD
from foothills_rpc.server import FoothillsServer, build_components
from tests.catalog_support import ts
from tests.support import TEST_SECRET, make_settings

SEED_TIMEOUT = 120.0
DEMO_EMAIL = re.compile(r"(customer\d+|provider\d+|admin)\.([0-9a-f]{6})@demo\.foothills\.invalid")
EXPECTED_OUTPUT = re.compile(re.escape(f"seeded 30 users, 3 providers, 1 admin, 6 categories, 12 services; "
                                       f"every demo account's password is {DEMO_PASSWORD!r} (try customer0.")
                             + r"([0-9a-f]{6})@demo\.foothills\.invalid, the provider provider0\.\1@demo\.foothills"
                             + r"\.invalid or the admin admin\.\1@demo\.foothills\.invalid\)\n")


def _seed(url: str, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHILLS_")}
    env.update(FOOTHILLS_DATABASE_URL=url, FOOTHILLS_JWT_SECRET=TEST_SECRET, FOOTHILLS_ARGON2_MEMORY_KIB="64",
               FOOTHILLS_ARGON2_TIME_COST="1", FOOTHILLS_OUTBOX_DIR=str(folder / "outbox"))
    return subprocess.run([sys.executable, "-m", "foothills_rpc.cli", "seed-demo", "--services", "12", "--users", "30",
                           *extra],
                          cwd=folder, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=SEED_TIMEOUT, check=False)


@dataclass
class Browser:
    server: FoothillsServer
    auth: auth_pb2_grpc.AuthServiceStub
    catalog: catalog_pb2_grpc.CatalogServiceStub
    booking: booking_pb2_grpc.BookingServiceStub

    async def services(self) -> list[catalog_pb2.Service]:
        """Every active service, page by page (small pages, so paging really happens)."""
        found: list[catalog_pb2.Service] = []
        token = ""
        for _ in range(100):
            page = await self.catalog.ListServices(catalog_pb2.ListServicesRequest(page_size=5, page_token=token))
            assert len(page.services) <= 5
            found += page.services
            token = page.next_page_token
            if not token:
                return found
        raise AssertionError("ListServices never reached its last page")

    async def categories(self) -> list[catalog_pb2.Category]:
        return list((await self.catalog.ListCategories(catalog_pb2.ListCategoriesRequest(page_size=200))).categories)

    async def users(self) -> list[tuple[str, str, uuid.UUID]]:
        """(email, role, id) of every user, read straight from the database."""
        rows = await self.server.components.db.run(
            lambda s: s.execute(select(User.email, User.role, User.id).order_by(User.email)))
        return [(row.email, row.role, row.id) for row in rows.all()]


@asynccontextmanager
async def _browse(url: str, folder: Path) -> AsyncIterator[Browser]:
    server = FoothillsServer(build_components(make_settings(url, outbox_dir=folder / "outbox")))
    port = await server.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Browser(server=server, auth=auth_pb2_grpc.AuthServiceStub(channel),
                      catalog=catalog_pb2_grpc.CatalogServiceStub(channel),
                      booking=booking_pb2_grpc.BookingServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(0)


async def test_seed_demo_builds_a_browsable_catalog_and_can_run_twice(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'seed.db'}"  # fresh and unmigrated: the command migrates it

    first = _seed(database_url, tmp_path, "--bookings", "0")
    assert first.returncode == 0, first.stderr
    assert EXPECTED_OUTPUT.fullmatch(first.stdout), first.stdout

    async with _browse(database_url, tmp_path) as browser:
        services = await browser.services()
        assert len(services) == 12
        assert len({s.name for s in services}) == 12
        assert {s.state for s in services} == {catalog_pb2.SERVICE_STATE_ACTIVE}

        categories = await browser.categories()
        assert len(categories) == 6
        run_ids = {c.display_name.rsplit(" ", 1)[1] for c in categories}
        assert len(run_ids) == 1
        (run_id,) = run_ids
        assert sorted(c.display_name for c in categories) == sorted(f"{name} {run_id}" for name in CATEGORIES)
        assert {s.category for s in services} <= {c.name for c in categories}

        users = await browser.users()
        assert all(DEMO_EMAIL.fullmatch(email) and email.split("@")[0].endswith(run_id) for email, _, _ in users)
        customers = [email for email, role, _ in users if role == "customer"]
        providers = {f"users/{user_id.hex}" for _, role, user_id in users if role == "provider"}
        assert len(customers) == 30
        assert len(providers) == 3
        admin = next(email for email, role, _ in users if role == "admin")
        assert (await browser.auth.Login(auth_pb2.LoginRequest(email=admin, password=DEMO_PASSWORD))).user.role == (
            user_pb2.ROLE_ADMIN)
        assert {s.provider for s in services} <= providers

        login = await browser.auth.Login(auth_pb2.LoginRequest(email=customers[0], password=DEMO_PASSWORD))
        assert login.user.email == customers[0]
        assert login.user.role == user_pb2.ROLE_CUSTOMER
        assert login.credentials.access_token

        # Every seeded service opens at least Monday to Friday, so any 7 days have slots.
        now = datetime.now(UTC)
        for service in services:
            slots = (await browser.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
                service=service.name, start_time=ts(now), end_time=ts(now + timedelta(days=7))))).slots
            assert slots, f"{service.display_name} ({service.time_zone}) has no slots in the next 7 days"
            assert all(s.start_time.ToDatetime(UTC) >= now + timedelta(hours=1) for s in slots)  # default notice
            assert {(s.capacity, s.remaining_seats) for s in slots} == {(service.capacity, service.capacity)}
            assert {s.price.total_price.currency_code for s in slots} == {service.base_price.currency_code}

    # A second run adds a second, separate demo world (its own run id), clashing with nothing.
    second = _seed(database_url, tmp_path, "--bookings", "0")
    assert second.returncode == 0, second.stderr
    assert EXPECTED_OUTPUT.fullmatch(second.stdout), second.stdout

    async with _browse(database_url, tmp_path) as browser:
        assert len({s.name for s in await browser.services()}) == 24
        categories = await browser.categories()
        assert len(categories) == 12
        assert len({c.display_name.rsplit(" ", 1)[1] for c in categories}) == 2
        users = await browser.users()
        assert len(users) == 2 * (30 + 3 + 1)
        assert len({DEMO_EMAIL.fullmatch(email).group(2) for email, _, _ in users}) == 2  # type: ignore[union-attr]
        newest = next(email for email, role, _ in users if role == "customer" and not email.endswith(
            f"{run_id}@demo.foothills.invalid"))
        login = await browser.auth.Login(auth_pb2.LoginRequest(email=newest, password=DEMO_PASSWORD))
        assert login.user.email == newest


BOOKED_OUTPUT = re.compile(re.escape("seeded 30 users, 3 providers, 1 admin, 6 categories, 12 services, 400 bookings, ")
                           + r"(\d+) conflicts; .*\n")


async def _booking_facts(session: AsyncSession) -> dict[str, Any]:
    """Everything the invariants test needs, read with plain SQL through SQLAlchemy (both databases)."""
    held = (select(Booking.slot_id, func.sum(Booking.seats).label("seats")).where(Booking.status != "cancelled")
            .group_by(Booking.slot_id).subquery())
    seat_mismatches = (await session.execute(
        select(func.count()).select_from(Slot).outerjoin(held, held.c.slot_id == Slot.id)
        .where(or_(Slot.seats_taken != func.coalesce(held.c.seats, 0), Slot.seats_taken > Slot.capacity)))).scalar()
    off_slot = (await session.execute(
        select(func.count()).select_from(Booking).join(Slot, Slot.id == Booking.slot_id)
        .join(Service, Service.id == Booking.service_id)
        .where(or_(Slot.service_id != Booking.service_id, Slot.start_at != Booking.start_at,
                   Slot.end_at != Booking.end_at, Service.provider_id != Booking.provider_id,
                   Booking.uses_provider_time == Service.runs_without_provider)))).scalar()
    a, b = aliased(Booking), aliased(Booking)
    overlapping = and_(a.id != b.id, a.start_at < b.end_at, b.start_at < a.end_at, a.status != "cancelled",
                       b.status != "cancelled")
    customer_overlaps = (await session.execute(
        select(func.count()).select_from(a).join(b, and_(a.customer_id == b.customer_id, overlapping)))).scalar()
    provider_overlaps = (await session.execute(
        select(func.count()).select_from(a).join(b, and_(
            a.provider_id == b.provider_id, a.slot_id != b.slot_id, a.uses_provider_time, b.uses_provider_time,
            overlapping)))).scalar()
    bookings = list((await session.execute(select(Booking))).scalars())
    services = {s.id: s for s in (await session.execute(select(Service))).scalars()}
    events = [(e.id, e.booking_id, e.type) for e in (await session.execute(select(BookingEvent))).scalars()]
    sequence = (await session.execute(select(EventSequence.last_value))).scalar()
    used_slots = (await session.execute(select(func.count()).where(Slot.seats_taken > 0))).scalar()
    return {"seat_mismatches": seat_mismatches, "off_slot": off_slot, "customer_overlaps": customer_overlaps,
            "provider_overlaps": provider_overlaps, "bookings": bookings, "services": services, "events": events,
            "sequence": sequence, "used_slots": used_slots,
            "disabled": set((await session.execute(select(User.id).where(User.disabled.is_(True)))).scalars())}


async def test_seed_demo_bookings_keep_every_booking_invariant(database_url: str, tmp_path: Path) -> None:
    """`--bookings N` adds N bookings, past and future, that the booking path itself could have made.

    Seats taken equal the seats of the bookings holding them (all but cancelled ones) within capacity;
    no customer, and no provider of services that take their time, has overlapping bookings; every
    status obeys the status machine and the clock; prices are the server's own quotes; each booking
    has its `created` event and one event per later change, numbered like the booking path numbers them.
    """
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'seed.db'}"
    started = datetime.now(UTC)
    result = _seed(database_url, tmp_path, "--bookings", "400")
    finished = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    assert BOOKED_OUTPUT.fullmatch(result.stdout), result.stdout

    async with _browse(database_url, tmp_path) as browser:
        facts = await browser.server.components.db.run(_booking_facts)
        assert facts["seat_mismatches"] == 0
        assert facts["used_slots"] > 0
        assert facts["off_slot"] == 0
        assert facts["customer_overlaps"] == 0
        assert facts["provider_overlaps"] == 0

        bookings: list[Booking] = facts["bookings"]
        services: dict[uuid.UUID, Service] = facts["services"]
        assert len(bookings) == 400
        assert {b.status for b in bookings} == {"pending", "confirmed", "cancelled", "completed"}
        assert any(b.end_at < started for b in bookings) and any(b.start_at > finished for b in bookings)
        assert any(not b.uses_provider_time for b in bookings)  # courts run without the provider
        assert any(b.seats > 1 for b in bookings)
        for booking in bookings:
            service = services[booking.service_id]
            assert booking.created_at <= booking.updated_at <= finished
            assert booking.created_at <= booking.start_at - timedelta(hours=1)  # the default minimum notice
            assert booking.start_at - booking.created_at <= timedelta(days=90)  # the default horizon
            if booking.status == "completed":
                assert booking.end_at <= booking.updated_at
            if booking.status == "pending":
                assert service.requires_approval
                assert booking.approval_deadline is not None and booking.approval_deadline > started
            assert (booking.approval_deadline is not None) == service.requires_approval
            assert booking.currency == service.currency
            assert booking.total_price_minor == booking.unit_price_minor * booking.seats
            assert booking.price_breakdown["total_minor"] == booking.total_price_minor
            assert booking.price_breakdown["base_unit_minor"] == service.base_price_minor
            assert booking.cancellation_policy == service.cancellation_policy
            assert 0 <= booking.cancellation_fee_minor <= booking.total_price_minor
            assert booking.cancellation_fee_minor == 0 or booking.status == "cancelled"

        events = facts["events"]
        assert len({event_id for event_id, _, _ in events}) == len(events)
        if database_url.startswith("sqlite"):  # numbered 1..N; PostgreSQL positions by transaction id
            assert facts["sequence"] == len(events) == max(event_id for event_id, _, _ in events)
        kinds: dict[uuid.UUID, list[str]] = {}
        for _, booking_id, kind in sorted(events):
            kinds.setdefault(booking_id, []).append(kind)
        for booking in bookings:
            expected = ["created"]
            if services[booking.service_id].requires_approval and booking.status != "pending":
                expected.append("confirmed")
            if booking.status in ("cancelled", "completed"):
                expected.append(booking.status)
            assert kinds[booking.id] == expected, booking.status  # in the stream's order

        # One busy customer is disabled: their future active bookings are the demo's conflicts.
        match = BOOKED_OUTPUT.fullmatch(result.stdout)
        assert match is not None
        disabled = facts["disabled"]
        assert len(disabled) == 1
        future = [b for b in bookings if b.customer_id in disabled and b.start_at > finished
                  and b.status in ("pending", "confirmed")]
        assert len(future) == int(match.group(1)) > 0

        # The server reads them like its own: the busiest enabled customer's list through ListBookings.
        busiest = Counter(b.customer_id for b in bookings if b.customer_id not in disabled).most_common(1)[0][0]
        email = next(e for e, _, user_id in await browser.users() if user_id == busiest)
        login = await browser.auth.Login(auth_pb2.LoginRequest(email=email, password=DEMO_PASSWORD))
        listed = await browser.booking.ListBookings(
            booking_pb2.ListBookingsRequest(page_size=200),
            metadata=(("authorization", f"Bearer {login.credentials.access_token}"),))
        theirs = {f"bookings/{b.id.hex}": b for b in bookings if b.customer_id == busiest}
        assert {b.name for b in listed.bookings} == set(theirs)
        for listed_booking in listed.bookings:
            stored = theirs[listed_booking.name]
            assert listed_booking.price.total_price.amount_minor == stored.total_price_minor
            assert booking_pb2.BookingStatus.Name(listed_booking.status) == f"BOOKING_STATUS_{stored.status.upper()}"
