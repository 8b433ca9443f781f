"""`foothills-rpc seed-demo`: a realistic catalog (and users) for exploring and for benchmarks.

Rows are written in batches through the data layer (not one RPC each) so that benchmark-sized data
sets build in minutes. Every demo user shares one password (DEMO_PASSWORD), hashed once.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import insert

from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db.models import Category, Service, User
from foothills_rpc.domain import slots as slot_rules
from foothills_rpc.domain.cancellation import CancellationPolicy, CancellationTier
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


async def seed_demo(components: Components, *, services: int, users: int, seed: int = 7) -> dict[str, object]:
    """Adds `users` customers, a few providers, the categories and `services` services with availability."""
    rng = random.Random(seed)  # noqa: S311 (demo data, not security)
    now = components.clock.now()
    password_hash = await components.hasher.hash(DEMO_PASSWORD)
    run_id = uuid.uuid4().hex[:6]  # lets seed-demo run twice on one database without clashing emails

    def user_row(email: str, name: str, role: Role) -> dict[str, object]:
        return {"id": uuid.uuid4(), "email": email, "password_hash": password_hash, "display_name": name,
                "phone": "", "time_zone": rng.choice(ZONES), "role": role.value, "disabled": False,
                "disabled_reason": "", "created_at": now, "updated_at": now}

    providers = [user_row(f"provider{i}.{run_id}@demo.foothills.invalid", f"Provider {i}", Role.PROVIDER)
                 for i in range(max(3, services // 20))]
    customers = [user_row(f"customer{i}.{run_id}@demo.foothills.invalid", f"Customer {i}", Role.CUSTOMER)
                 for i in range(users)]
    for batch in progress(list(_batches(providers + customers)), -(-(len(providers) + len(customers)) // 1000),
                          "users"):
        await components.db.run(lambda s, b=batch: s.execute(insert(User), b))  # type: ignore[misc]

    categories = [{"id": uuid.uuid4(), "display_name": f"{name} {run_id}", "name_key": f"{name} {run_id}".lower(),
                   "description": f"Everything {name.lower()}", "created_at": now, "updated_at": now}
                  for name in CATEGORIES]
    await components.db.run(lambda s: s.execute(insert(Category), categories))

    horizon_days = components.settings.default_maximum_days_ahead
    for index in progress(range(services), services, "services"):
        category = rng.choice(categories)
        zone = rng.choice(ZONES)
        title = rng.choice(CATEGORIES[str(category["display_name"]).rsplit(" ", 1)[0]])
        spec = ServiceSpec(
            display_name=f"{title} #{index}", description=f"{title} with a friendly professional in {zone}.",
            duration=timedelta(minutes=rng.choice([30, 45, 60, 90])), capacity=rng.choice([1, 1, 1, 4, 8, 12]),
            base_price_minor=rng.randrange(1500, 15000, 500),  # yen have no minor unit: 1500-15000 JPY
            currency=CURRENCY[zone], time_zone=zone,
            booking=BookingSettings(buffer_after=timedelta(minutes=rng.choice([0, 0, 15]))),
            cancellation=POLICY, pricing=DEMAND if rng.random() < 0.7 else PricingPolicy())
        opening = rng.choice([(9, 17), (8, 20), (10, 18), (7, 12)])
        availability = slot_rules.Availability(
            weekly=tuple(slot_rules.WeeklyWindow(weekday=day, hours=slot_rules.TimeRange(opening[0] * 60,
                                                                                         opening[1] * 60))
                         for day in range(7) if day < 5 or rng.random() < 0.4),
            overrides=())
        service = Service(id=uuid.uuid4(), category_id=category["id"], provider_id=rng.choice(providers)["id"],
                          archived=False, version=1, created_at=now, updated_at=now)
        catalog_repo.apply_spec(service, spec)
        catalog_repo.store_availability(service, availability)

        async def write(session, service=service):  # type: ignore[no-untyped-def]
            session.add(service)
            await session.flush()
            await catalog_repo.materialize_slots(session, service, now=now, horizon=now + timedelta(days=horizon_days))

        await components.db.run(write)
    return {"users": len(customers), "providers": len(providers), "categories": len(categories),
            "services": services, "sign_in_as": f"customer0.{run_id}@demo.foothills.invalid"}
