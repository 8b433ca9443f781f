"""`foothills-rpc seed-demo`: a realistic catalog, users and bookings for exploring and for benchmarks.

Rows are written in batches through the data layer (not one RPC each) so that benchmark-sized data
sets (1,000 services, 10,000 users, 100,000 bookings) build in about a minute: on PostgreSQL with
COPY, elsewhere with executemany. Every demo user shares one password (DEMO_PASSWORD), hashed once.

Bookings obey the invariants the booking path keeps, so the database's own constraints accept them
and the server treats them like any other:

- every booking sits on a materialised slot of its service, with the slot's start and end;
- a slot's `seats_taken` is the seats of its bookings that still hold seats (all but cancelled ones:
  completing a booking does not release its seats), never above the capacity;
- no customer has two overlapping bookings, and no provider two overlapping bookings of different
  slots of services that take the provider's own time (cancelled bookings aside; the PostgreSQL
  exclusion constraints check the active ones as the rows arrive);
- statuses follow the status machine: pending only ahead of the approval deadline of a service that
  requires approval, completed only once the slot has ended, cancelled under the cancellation policy
  (with its fee) or by the provider before the start;
- prices are quoted by the server's own pricing (`Catalog.price`) as of the booking's creation, and each
  change has the booking event the booking path would have written (numbered under the event
  sequence lock). No mail is queued: nobody should be mailed about demo history.

Bookings spread over the past (slots are materialised from `history` days back, as they would have
been when they lay ahead) and the booking horizon ahead, denser in the coming weeks.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from psycopg import sql
from sqlalchemy import JSON, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db.bookings import claim_ordinals, take_event_numbers, transaction_base
from foothills_rpc.db.holds import quote_json
from foothills_rpc.db.models import Base, Booking, BookingEvent, Category, Service, Slot, User, table_of
from foothills_rpc.domain import slots as slot_rules
from foothills_rpc.domain.bookings import Status
from foothills_rpc.domain.cancellation import CancellationPolicy, CancellationTier, evaluate
from foothills_rpc.domain.catalog import BookingSettings, ServiceSpec
from foothills_rpc.domain.pricing import PricingPolicy, PricingRule, RuleKind
from foothills_rpc.domain.users import Role
from foothills_rpc.server import Components

DEMO_PASSWORD = "demo password 2030"  # noqa: S105 (published on purpose: demo accounts only)
T = TypeVar("T")

CATEGORIES = {
    "Massage": ["Swedish massage", "Deep tissue massage", "Hot stone massage", "Sports massage", "Reflexology"],
    "Hair": ["Haircut", "Colour and cut", "Beard trim", "Blow-dry", "Balayage"],
    "Fitness": ["Personal training", "Yoga class", "Pilates class", "Spin class", "Boxing session"],
    "Courts": ["Tennis court", "Squash court", "Padel court", "Badminton court", "Five-a-side pitch"],
    "Health": ["Physiotherapy", "Dental check-up", "Eye test", "Nutrition consult", "Osteopathy"],
    "Lessons": ["Piano lesson", "Guitar lesson", "Language tutoring", "Driving lesson", "Cooking class"],
}
# Courts are let, not staffed: their bookings do not take the provider's time (they may overlap).
WITHOUT_PROVIDER = frozenset({"Courts"})
# Clinics accept each booking first (bookings start pending until the provider confirms).
NEEDS_APPROVAL = frozenset({"Health"})
ZONES = ["Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"]
CURRENCY = {"Europe/London": "GBP", "Europe/Berlin": "EUR", "America/New_York": "USD",
            "America/Los_Angeles": "USD", "Asia/Tokyo": "JPY"}
DEMAND = PricingPolicy(rules=(
    PricingRule(kind=RuleKind.OCCUPANCY, adjustment_bps=1000, label="Popular", min_occupancy_bps=5000),
    PricingRule(kind=RuleKind.OCCUPANCY, adjustment_bps=2500, label="Almost full", min_occupancy_bps=8000),
    PricingRule(kind=RuleKind.LEAD_TIME, adjustment_bps=1500, label="Last minute", max_lead=timedelta(hours=24)),
    PricingRule(kind=RuleKind.DAY_OF_WEEK, adjustment_bps=1000, label="Weekend", weekdays=frozenset({5, 6})),
))
POLICY = CancellationPolicy(tiers=(CancellationTier(timedelta(hours=24), 5000),
                                   CancellationTier(timedelta(hours=2), 10000, allowed=False)))

BOOKINGS_PER_PROVIDER = 400  # about three a day over the seeded period: diaries with room left
MIN_HISTORY_DAYS = 30
CHUNK_SERVICES = 25  # services (whole providers) written per transaction
CANCELLED_SHARE = 0.1
CANCEL_REASONS = ("", "", "change of plans", "feeling unwell", "found another time")


def progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """Yields `items`, drawing a progress bar on stderr when it is a terminal or the run is large."""
    show = total >= 500 or sys.stderr.isatty()
    started = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        if show and (done == total or done % max(total // 50, 1) == 0):
            filled = int(30 * done / total)
            sys.stderr.write(f"\r{label:>10} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} "
                             f"{time.monotonic() - started:5.1f}s")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _batches(items: list[T], size: int = 1000) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def insert_rows(session: AsyncSession, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Inserts many rows: COPY on PostgreSQL (fast, and checked by every constraint), else executemany."""
    if not rows:
        return
    table = table_of(model)
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        for batch in _batches(rows):
            await session.execute(insert(table), batch)
        return
    columns = [column.name for column in table.columns if column.name in rows[0]]
    json_columns = {column.name for column in table.columns if isinstance(column.type, JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(name) for name in columns))
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row([json.dumps(row[name]) if name in json_columns else row[name] for name in columns])


class Diary:
    """Busy intervals (epoch seconds) of one person, bucketed by hour for quick overlap checks."""

    __slots__ = ("_hours",)

    def __init__(self) -> None:
        self._hours: dict[int, list[tuple[int, int, uuid.UUID]]] = defaultdict(list)

    def clashes(self, start: int, end: int, slot_id: uuid.UUID | None = None) -> bool:
        """Whether [start, end) overlaps a busy interval (one on `slot_id` itself does not count)."""
        for hour in range(start // 3600, (end - 1) // 3600 + 1):
            for busy_start, busy_end, busy_slot in self._hours.get(hour, ()):
                if busy_start < end and busy_end > start and busy_slot != slot_id:
                    return True
        return False

    def add(self, start: int, end: int, slot_id: uuid.UUID) -> None:
        for hour in range(start // 3600, (end - 1) // 3600 + 1):
            self._hours[hour].append((start, end, slot_id))


@dataclass
class _Slot:
    id: uuid.UUID
    start: datetime
    end: datetime
    taken: int = 0


@dataclass
class _Chunk:
    services: list[dict[str, Any]] = field(default_factory=list)
    slots: list[dict[str, Any]] = field(default_factory=list)
    bookings: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[datetime, str, dict[str, Any]]] = field(default_factory=list)


class BookingPlanner:
    """Draws bookings for one service at a time, keeping every invariant listed in the module doc."""

    def __init__(self, components: Components, rng: random.Random, customers: list[uuid.UUID], *, now: datetime,
                 history: timedelta) -> None:
        self._components = components
        self._rng = rng
        self._customers = customers
        self._customer_diaries: dict[int, Diary] = defaultdict(Diary)
        self._provider_diaries: dict[uuid.UUID, Diary] = defaultdict(Diary)
        self._now = now
        # The share of bookings in the past grows with the history, as it does on a real platform.
        self._past_share = history.days / (history.days + 60)

    def forget_providers(self) -> None:
        """Drops the providers' diaries once all their services are planned (each is planned once)."""
        self._provider_diaries.clear()

    def plan(self, service: Service, slots: list[_Slot], wanted: int, chunk: _Chunk) -> int:
        """Adds up to `wanted` bookings of `service` on `slots` to `chunk`; returns how many it placed."""
        rng, now = self._rng, self._now
        past = [s for s in slots if s.start < now]
        ahead = [s for s in slots if s.start >= now]
        notice = self._components.terms.minimum_notice(service)
        horizon = self._components.terms.horizon(service, now) - now
        policy = catalog_repo.cancellation_of(service.cancellation_policy)
        uses_provider_time = not service.runs_without_provider
        provider = self._provider_diaries[service.provider_id]
        placed = attempts = 0
        while placed < wanted and attempts < 8 * wanted + 20 and (past or ahead):
            attempts += 1
            if past and (not ahead or rng.random() < self._past_share):
                slot = rng.choice(past)
            else:
                slot = ahead[int(len(ahead) * rng.random() ** 2)]  # the coming weeks book up first
            seats = 1 if service.capacity == 1 else min(rng.choice((1, 1, 1, 2)), service.capacity)
            cancelled = rng.random() < CANCELLED_SHARE
            start, end = int(slot.start.timestamp()), int(slot.end.timestamp())
            if not cancelled and (slot.taken + seats > service.capacity
                                  or (uses_provider_time and provider.clashes(start, end, slot.id))):
                continue
            customer = self._customer(start, end, free=not cancelled)
            if customer is None:
                continue
            # Booked some days ahead (at least the notice, at most the horizon), never after now.
            lead = notice + timedelta(days=min(rng.expovariate(1 / 7), horizon.days))
            created = min(max(slot.start - lead, slot.start - horizon), now, slot.start - notice)
            booking = self._booking(service, slot, self._customers[customer], seats, created, notice)
            events = [("created", created)]
            if service.requires_approval:
                deadline = slot.start - notice
                if not cancelled and deadline > now and rng.random() < 0.6:
                    booking["status"] = Status.PENDING.value
                else:
                    events.append(("confirmed", min(created + (deadline - created) * rng.random() / 2, now)))
            if cancelled:
                self._cancel(booking, policy, events, rng)
            else:
                done = slot.end + timedelta(hours=rng.uniform(0.2, 36))  # the provider marks it completed
                if done <= now:
                    booking["status"] = Status.COMPLETED.value
                    events.append(("completed", done))
                slot.taken += seats
                self._customer_diaries[customer].add(start, end, slot.id)
                if uses_provider_time:
                    provider.add(start, end, slot.id)
            booking["updated_at"] = events[-1][1]
            chunk.bookings.append(booking)
            chunk.events += [(at, kind, booking) for kind, at in events]
            placed += 1
        return placed

    def _customer(self, start: int, end: int, *, free: bool) -> int | None:
        """A customer (the first ones book more often) free over [start, end) if `free`; None if none found."""
        for _ in range(3):
            index = int(len(self._customers) * self._rng.random() ** 1.5)
            if not free or not self._customer_diaries[index].clashes(start, end):
                return index
        return None

    def _booking(self, service: Service, slot: _Slot, customer: uuid.UUID, seats: int, created: datetime,
                 notice: timedelta) -> dict[str, Any]:
        # Priced as the booking path prices: by the one pricing function, with the seats taken before it.
        priced = Slot(id=slot.id, service_id=service.id, start_at=slot.start, end_at=slot.end,
                      capacity=service.capacity, seats_taken=slot.taken, offered=True)
        quote = self._components.terms.price(service, priced, seats=seats, now=created)
        return {
            "id": uuid.uuid4(), "service_id": service.id, "slot_id": slot.id, "customer_id": customer,
            "provider_id": service.provider_id, "uses_provider_time": not service.runs_without_provider,
            "start_at": slot.start, "end_at": slot.end, "seats": seats, "status": Status.CONFIRMED.value,
            "currency": quote.currency, "unit_price_minor": quote.unit_minor, "total_price_minor": quote.total_minor,
            "price_breakdown": quote_json(quote), "cancellation_policy": service.cancellation_policy,
            "cancellation_fee_minor": 0, "cancel_reason": "", "notes": "", "reschedule_count": 0,
            "approval_deadline": slot.start - notice if service.requires_approval else None,
            "created_at": created, "updated_at": created,
        }

    def _cancel(self, booking: dict[str, Any], policy: CancellationPolicy, events: list[tuple[str, datetime]],
                rng: random.Random) -> None:
        """Cancelled by the customer under the policy, or (when it no longer allows it) by the provider."""
        after = events[-1][1]
        at = after + (min(self._now, booking["start_at"]) - after) * rng.random()
        verdict = evaluate(policy, start=booking["start_at"], now=at, charged_minor=booking["total_price_minor"])
        booking["status"] = Status.CANCELLED.value
        if verdict.allowed:
            booking["cancellation_fee_minor"] = verdict.fee_minor
            booking["cancel_reason"] = rng.choice(CANCEL_REASONS)
        else:
            booking["cancel_reason"] = "cancelled by the provider"
        events.append(("cancelled", at))


async def _write_chunk(session: AsyncSession, chunk: _Chunk) -> None:
    """One transaction: services, their slots and bookings, then the events under the sequence lock."""
    await insert_rows(session, Service, chunk.services)
    await insert_rows(session, Slot, chunk.slots)
    await insert_rows(session, Booking, chunk.bookings)
    if not chunk.events:
        return
    # Positioned as `record_change` positions one event: by this transaction's id on PostgreSQL, from the
    # sequence row on SQLite.
    count = len(chunk.events)
    if session.get_bind().dialect.name == "postgresql":
        first = await transaction_base(session) + claim_ordinals(session, count)
    else:
        first = await take_event_numbers(session, count) - count + 1
    ordered = sorted(chunk.events, key=lambda event: event[0])
    await insert_rows(session, BookingEvent, [
        {"id": first + index, "booking_id": booking["id"], "customer_id": booking["customer_id"],
         "provider_id": booking["provider_id"], "type": kind, "created_at": at}
        for index, (at, kind, booking) in enumerate(ordered)])


def _quotas(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders), summing to exactly `total`."""
    whole = sum(weights)
    shares = [total * weight / whole for weight in weights]
    quotas = [int(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: quotas[i] - shares[i])
    for i in by_remainder[:total - sum(quotas)]:
        quotas[i] += 1
    return quotas


async def seed_demo(components: Components, *, services: int, users: int, bookings: int = 0,
                    seed: int = 7) -> dict[str, object]:
    """Adds `users` customers, providers, the categories, `services` services with availability and
    materialised slots, and `bookings` bookings (see the module doc)."""
    rng = random.Random(seed)  # noqa: S311 (demo data, not security)
    now = components.clock.now()
    password_hash = await components.hasher.hash(DEMO_PASSWORD)
    run_id = uuid.uuid4().hex[:6]  # lets seed-demo run twice on one database without clashing emails

    def user_row(email: str, name: str, role: Role) -> dict[str, object]:
        return {"id": uuid.uuid4(), "email": email, "password_hash": password_hash, "display_name": name,
                "phone": "", "time_zone": rng.choice(ZONES), "role": role.value, "disabled": False,
                "disabled_reason": "", "created_at": now, "updated_at": now}

    provider_count = max(3, services // 20, min(services, bookings // BOOKINGS_PER_PROVIDER))
    providers = [user_row(f"provider{i}.{run_id}@demo.foothills.invalid", f"Provider {i}", Role.PROVIDER)
                 for i in range(provider_count)]
    customers = [user_row(f"customer{i}.{run_id}@demo.foothills.invalid", f"Customer {i}", Role.CUSTOMER)
                 for i in range(users)]
    admin = user_row(f"admin.{run_id}@demo.foothills.invalid", "Demo Admin", Role.ADMIN)
    everyone = [admin, *providers, *customers]
    for batch in progress(list(_batches(everyone, 5000)), -(-len(everyone) // 5000), "users"):
        await components.db.run(lambda s, b=batch: insert_rows(s, User, b))  # type: ignore[misc]

    categories = [{"id": uuid.uuid4(), "display_name": f"{name} {run_id}", "name_key": f"{name} {run_id}".lower(),
                   "description": f"Everything {name.lower()}", "created_at": now, "updated_at": now}
                  for name in CATEGORIES]
    await components.db.run(lambda s: s.execute(insert(Category), categories))

    # More bookings per service mean a longer history (a real platform's bookings pile up in the past).
    history = timedelta(days=0 if not bookings else max(
        MIN_HISTORY_DAYS, math.ceil(MIN_HISTORY_DAYS * bookings / max(services, 1) / 100)))
    catalog: list[tuple[Service, slot_rules.Availability]] = []
    for index in range(services):
        category = categories[index] if index < len(categories) else rng.choice(categories)  # each kind once
        category_name = str(category["display_name"]).rsplit(" ", 1)[0]
        zone = rng.choice(ZONES)
        title = rng.choice(CATEGORIES[category_name])
        spec = ServiceSpec(
            display_name=f"{title} #{index}", description=f"{title} with a friendly professional in {zone}.",
            duration=timedelta(minutes=rng.choice([30, 45, 60, 90])), capacity=rng.choice([1, 1, 1, 4, 8, 12]),
            base_price_minor=rng.randrange(1500, 15000, 500),  # yen have no minor unit: 1500-15000 JPY
            currency=CURRENCY[zone], time_zone=zone,
            booking=BookingSettings(buffer_after=timedelta(minutes=rng.choice([0, 0, 15])),
                                    requires_approval=category_name in NEEDS_APPROVAL),
            cancellation=POLICY, pricing=DEMAND if rng.random() < 0.7 else PricingPolicy(),
            runs_without_provider=category_name in WITHOUT_PROVIDER)
        opening = rng.choice([(9, 17), (8, 20), (10, 18), (7, 12)])
        availability = slot_rules.Availability(
            weekly=tuple(slot_rules.WeeklyWindow(weekday=day, hours=slot_rules.TimeRange(opening[0] * 60,
                                                                                         opening[1] * 60))
                         for day in range(7) if day < 5 or rng.random() < 0.4),
            overrides=())
        service = Service(id=uuid.uuid4(), category_id=category["id"], provider_id=rng.choice(providers)["id"],
                          archived=False, suspended=False, version=1, created_at=now, updated_at=now)
        catalog_repo.apply_spec(service, spec)
        catalog_repo.store_availability(service, availability)
        catalog.append((service, availability))

    # Popular services and classes (more seats) draw more bookings; the quotas add up to `bookings`.
    quotas = _quotas(bookings, [rng.paretovariate(2.0) * (2 + service.capacity) for service, _ in catalog])
    by_provider: dict[uuid.UUID, list[int]] = defaultdict(list)
    for index, (service, _) in enumerate(catalog):
        by_provider[service.provider_id].append(index)
    chunks: list[list[int]] = [[]]
    for indexes in by_provider.values():
        if len(chunks[-1]) >= CHUNK_SERVICES:
            chunks.append([])
        chunks[-1] += indexes

    planner = BookingPlanner(components, rng, [row["id"] for row in customers], now=now,  # type: ignore[misc]
                             history=history)
    grids: dict[tuple[slot_rules.Availability, slot_rules.SlotGrid, str, datetime], list[slot_rules.Slot]] = {}
    columns = [column.key for column in Service.__table__.columns]
    placed = behind = 0
    for indexes in progress(chunks, len(chunks), "catalog" if not bookings else "bookings"):
        chunk = _Chunk()
        for index in indexes:
            service, availability = catalog[index]
            chunk.services.append({name: getattr(service, name) for name in columns})
            spec = catalog_repo.spec_of(service)
            horizon = components.terms.horizon(service, now)
            key = (availability, spec.grid, service.time_zone, horizon)  # services often share a grid: cut it once
            if key not in grids:
                grids[key] = slot_rules.generate_slots(availability, spec.grid, ZoneInfo(service.time_zone),
                                                       now - history, horizon)
            slots = [_Slot(uuid.uuid4(), s.start, s.end) for s in grids[key]]
            wanted = quotas[index] + behind  # what one service could not take, the next ones try
            done = planner.plan(service, slots, wanted, chunk) if wanted else 0
            placed, behind = placed + done, wanted - done
            chunk.slots += [{"id": s.id, "service_id": service.id, "start_at": s.start, "end_at": s.end,
                             "capacity": service.capacity, "seats_taken": s.taken, "offered": True} for s in slots]
        planner.forget_providers()
        await components.db.run(lambda s, c=chunk: _write_chunk(s, c))  # type: ignore[misc]
    counts: dict[str, object] = {"users": len(customers), "providers": len(providers), "admin": 1,
                                 "categories": len(categories), "services": services}
    if bookings:
        counts["bookings"] = placed
        counts["conflicts"] = await components.db.run(
            lambda s: _disable_busiest_customer(s, [row["id"] for row in customers[1:]], now))  # type: ignore[misc]
    counts["sign_in_as"] = [str(row["email"]) for row in (customers[:1] + providers[:1] + [admin])]
    return counts


async def _disable_busiest_customer(session: AsyncSession, customer_ids: list[uuid.UUID], now: datetime) -> int:
    """Disables the customer (not the first, whose sign-in is printed) with the most future active bookings,
    so the admin's conflict list has something to show: each of those bookings is now a conflict."""
    future = (select(Booking.customer_id, func.count().label("n"))
              .where(Booking.customer_id.in_(customer_ids), Booking.start_at > now,
                     Booking.status.in_(("pending", "confirmed")))
              .group_by(Booking.customer_id).order_by(func.count().desc(), Booking.customer_id).limit(1))
    busiest = (await session.execute(future)).first()
    if busiest is None:
        return 0
    await session.execute(update(User).where(User.id == busiest[0]).values(
        disabled=True, disabled_reason="demo: disabled to show booking conflicts", updated_at=now))
    return int(busiest[1])
