"""Data access for categories, services and their materialised slots."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db.database import FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, rows_on, sqlstate
from foothills_rpc.db.models import Booking, Category, Hold, Service, Slot, WaitlistEntry
from foothills_rpc.domain import slots as slot_rules
from foothills_rpc.domain.cancellation import CancellationPolicy, CancellationTier
from foothills_rpc.domain.catalog import BookingSettings, ServiceSpec
from foothills_rpc.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.limits import BookingLimits
from foothills_rpc.domain.pricing import PricingPolicy, PricingRule, RuleKind
from foothills_rpc.security.page_tokens import instant_and_id

# --- categories ------------------------------------------------------------------------------


async def insert_category(session: AsyncSession, *, display_name: str, description: str, now: datetime) -> Category:
    category = Category(id=uuid.uuid4(), display_name=display_name, name_key=display_name.lower(),
                        description=description, created_at=now, updated_at=now)
    session.add(category)
    await _flush_unique(session, "a category with this name already exists", "CATEGORY_EXISTS")
    return category


async def category_by_id(session: AsyncSession, category_id: uuid.UUID) -> Category:
    category = await session.get(Category, category_id)
    if category is None:
        raise NotFound("no such category", reason="CATEGORY_NOT_FOUND")
    return category


async def list_categories(session: AsyncSession, *, after: tuple[str, uuid.UUID] | None, limit: int) -> list[Category]:
    query = select(Category).order_by(Category.name_key, Category.id).limit(limit)
    if after is not None:
        query = query.where(or_(Category.name_key > after[0],
                                and_(Category.name_key == after[0], Category.id > after[1])))
    return list((await session.execute(query)).scalars())


async def rename_category(session: AsyncSession, category: Category, display_name: str) -> None:
    category.display_name = display_name
    category.name_key = display_name.lower()
    await _flush_unique(session, "a category with this name already exists", "CATEGORY_EXISTS")


async def delete_category(session: AsyncSession, category_id: uuid.UUID) -> None:
    category = await category_by_id(session, category_id)
    if (await session.execute(select(exists().where(Service.category_id == category_id,
                                                     Service.archived.is_(False))))).scalar():
        raise FailedPrecondition("the category still has active services", reason="CATEGORY_IN_USE")
    # Archived services keep pointing at it for history; detach by refusing only active ones above,
    # and let the foreign key refuse the rest (mapped to the same reason).
    await session.delete(category)
    try:
        await session.flush()
    except DBAPIError as exc:
        if sqlstate(exc) == FOREIGN_KEY_VIOLATION:
            raise FailedPrecondition("archived services still refer to the category",
                                     reason="CATEGORY_IN_USE") from exc
        raise


async def _flush_unique(session: AsyncSession, message: str, reason: str) -> None:
    try:
        await session.flush()
    except DBAPIError as exc:
        if sqlstate(exc) == UNIQUE_VIOLATION:
            raise AlreadyExists(message, reason=reason) from exc
        raise


# --- services: storage form of the domain values ----------------------------------------------


def spec_of(service: Service) -> ServiceSpec:
    """The domain view of a stored service."""
    return ServiceSpec(
        display_name=service.display_name,
        description=service.description,
        duration=timedelta(minutes=service.duration_minutes),
        capacity=service.capacity,
        base_price_minor=service.base_price_minor,
        currency=service.currency,
        time_zone=service.time_zone,
        booking=BookingSettings(
            minimum_notice=None if service.minimum_notice_seconds is None
            else timedelta(seconds=service.minimum_notice_seconds),
            maximum_days_ahead=service.maximum_days_ahead,
            buffer_before=timedelta(minutes=service.buffer_before_minutes),
            buffer_after=timedelta(minutes=service.buffer_after_minutes),
            requires_approval=service.requires_approval,
            hold_duration=None if service.hold_seconds is None else timedelta(seconds=service.hold_seconds),
            limits=BookingLimits(per_day=service.max_bookings_per_day, per_week=service.max_bookings_per_week,
                                 per_month=service.max_bookings_per_month),
            max_reschedules=service.max_reschedules,
            max_reschedule_distance=None if service.max_reschedule_distance_seconds is None
            else timedelta(seconds=service.max_reschedule_distance_seconds),
            waitlist_offer_duration=None if service.waitlist_offer_seconds is None
            else timedelta(seconds=service.waitlist_offer_seconds),
            reminders=reminders_of(service),
        ),
        cancellation=cancellation_of(service.cancellation_policy),
        pricing=_pricing_from_json(service.pricing),
        runs_without_provider=service.runs_without_provider,
    )


def reminders_of(service: Service) -> tuple[timedelta, ...] | None:
    """The service's own reminders, longest first; None: the platform's default."""
    if service.reminder_seconds is None:
        return None
    return tuple(timedelta(seconds=s) for s in service.reminder_seconds)


def apply_spec(service: Service, spec: ServiceSpec) -> None:
    service.display_name = spec.display_name
    service.description = spec.description
    service.search_text = f"{spec.display_name} {spec.description}".lower()
    service.duration_minutes = int(spec.duration.total_seconds() // 60)
    service.capacity = spec.capacity
    service.base_price_minor = spec.base_price_minor
    service.currency = spec.currency
    service.time_zone = spec.time_zone
    notice = spec.booking.minimum_notice
    service.minimum_notice_seconds = None if notice is None else int(notice.total_seconds())
    service.maximum_days_ahead = spec.booking.maximum_days_ahead
    service.buffer_before_minutes = int(spec.booking.buffer_before.total_seconds() // 60)
    service.buffer_after_minutes = int(spec.booking.buffer_after.total_seconds() // 60)
    service.requires_approval = spec.booking.requires_approval
    hold = spec.booking.hold_duration
    service.hold_seconds = None if hold is None else int(hold.total_seconds())
    limits = spec.booking.limits
    service.max_bookings_per_day, service.max_bookings_per_week, service.max_bookings_per_month = (
        limits.per_day, limits.per_week, limits.per_month)
    service.max_reschedules = spec.booking.max_reschedules
    distance = spec.booking.max_reschedule_distance
    service.max_reschedule_distance_seconds = None if distance is None else int(distance.total_seconds())
    offer = spec.booking.waitlist_offer_duration
    service.waitlist_offer_seconds = None if offer is None else int(offer.total_seconds())
    reminders = spec.booking.reminders
    service.reminder_seconds = None if reminders is None else [int(r.total_seconds()) for r in reminders]
    service.runs_without_provider = spec.runs_without_provider
    service.cancellation_policy = [
        {"before_start_s": int(t.before_start.total_seconds()), "fee_bps": t.fee_bps, "allowed": t.allowed}
        for t in spec.cancellation.tiers
    ]
    service.pricing = _pricing_to_json(spec.pricing)


def cancellation_of(data: list[Any]) -> CancellationPolicy:
    """The cancellation policy of stored tiers: one shared (frozen) object per distinct policy, as a
    page of bookings carries the same few."""
    return _cancellation_policy(tuple((t["before_start_s"], t["fee_bps"], t["allowed"]) for t in data or ()))


@functools.lru_cache(maxsize=1024)
def _cancellation_policy(tiers: tuple[tuple[int, int, bool], ...]) -> CancellationPolicy:
    return CancellationPolicy(tiers=tuple(
        CancellationTier(before_start=timedelta(seconds=before_start_s), fee_bps=fee_bps, allowed=allowed)
        for before_start_s, fee_bps, allowed in tiers))


def _pricing_to_json(policy: PricingPolicy) -> dict[str, Any]:
    return {
        "floor_minor": policy.floor_minor,
        "ceiling_minor": policy.ceiling_minor,
        "rules": [{
            "kind": r.kind.value, "adjustment_bps": r.adjustment_bps, "label": r.label,
            "min_occupancy_bps": r.min_occupancy_bps,
            "max_lead_s": None if r.max_lead is None else int(r.max_lead.total_seconds()),
            "min_lead_s": None if r.min_lead is None else int(r.min_lead.total_seconds()),
            "weekdays": sorted(r.weekdays), "start_hour": r.start_hour, "end_hour": r.end_hour,
        } for r in policy.rules],
    }


def _pricing_from_json(data: dict[str, Any]) -> PricingPolicy:
    if not data:
        return PricingPolicy()
    return PricingPolicy(
        floor_minor=data.get("floor_minor"),
        ceiling_minor=data.get("ceiling_minor"),
        rules=tuple(PricingRule(
            kind=RuleKind(r["kind"]), adjustment_bps=r["adjustment_bps"], label=r["label"],
            min_occupancy_bps=r["min_occupancy_bps"],
            max_lead=None if r["max_lead_s"] is None else timedelta(seconds=r["max_lead_s"]),
            min_lead=None if r["min_lead_s"] is None else timedelta(seconds=r["min_lead_s"]),
            weekdays=frozenset(r["weekdays"]), start_hour=r["start_hour"], end_hour=r["end_hour"],
        ) for r in data.get("rules", ())),
    )


def availability_of(service: Service) -> slot_rules.Availability:
    data = service.availability or {}
    return slot_rules.Availability(
        weekly=tuple(slot_rules.WeeklyWindow(weekday=w["weekday"], hours=slot_rules.TimeRange(w["start"], w["end"]))
                     for w in data.get("weekly", ())),
        overrides=tuple(slot_rules.DateOverride(
            day=date.fromisoformat(o["day"]), kind=slot_rules.OverrideKind(o["kind"]),
            hours=tuple(slot_rules.TimeRange(h[0], h[1]) for h in o["hours"])) for o in data.get("overrides", ())),
    )


def store_availability(service: Service, availability: slot_rules.Availability) -> None:
    service.availability = {
        "weekly": [{"weekday": w.weekday, "start": w.hours.start_minute, "end": w.hours.end_minute}
                   for w in availability.weekly],
        "overrides": [{"day": o.day.isoformat(), "kind": o.kind.value,
                       "hours": [[h.start_minute, h.end_minute] for h in o.hours]} for o in availability.overrides],
    }


# --- services --------------------------------------------------------------------------------


async def service_by_id(session: AsyncSession, service_id: uuid.UUID, *, for_update: bool = False) -> Service:
    """A lock is always taken in the database, and refreshes a row this transaction loaded before (the
    ORM would otherwise keep the older values); a plain read reuses such a row (a booking reads its
    service more than once), else selects it."""
    service = await session.get(Service, service_id, with_for_update=for_update, populate_existing=for_update)
    if service is None:
        raise NotFound("no such service", reason="SERVICE_NOT_FOUND")
    return service


@dataclass(frozen=True)
class ServiceSearch:
    query: str = ""
    category_id: uuid.UUID | None = None
    provider_id: uuid.UUID | None = None
    min_price_minor: int | None = None
    max_price_minor: int | None = None
    currency: str = ""
    available_after: datetime | None = None
    available_before: datetime | None = None
    order: str = "name"  # name | price | soonest


FAR_FUTURE = datetime(9999, 1, 1, tzinfo=ZoneInfo("UTC"))


def _free_slot(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    return and_(Slot.service_id == Service.id, Slot.offered.is_(True), Slot.seats_taken < Slot.capacity,
                Slot.start_at >= now)


@dataclass(frozen=True, slots=True)
class Found:
    """A service that matched a search, and its page-token key (its sort value, then its id)."""

    service_id: uuid.UUID
    key: list[Any]


def search_statement(search: ServiceSearch, *, now: datetime, after: tuple[Any, uuid.UUID] | None,
                     limit: int) -> tuple[Any, dict[str, object]]:
    """The query for active services matching `search`, sorted, keyset-paginated after the sort key
    `after`, and its parameters; run it with `Database.read_rows` and read the rows with `found_in`.

    A search's statement depends only on which filters it sets and its order: each such shape is
    built once (building the expression cost more than running it), the values are parameters."""
    params: dict[str, object] = {"limit": limit}
    if search.query:
        escaped = search.query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["pattern"] = f"%{escaped}%"
    for name in ("category_id", "provider_id", "min_price_minor", "max_price_minor"):
        if (value := getattr(search, name)) is not None:
            params[name] = value
    if search.currency:
        params["currency"] = search.currency
    if search.available_after is not None and search.available_before is not None:
        params["free_from"] = max(now, search.available_after)
        params["free_before"] = search.available_before
    if search.order == "soonest":
        params["now"] = now
    if after is not None:
        params["after_value"], params["after_id"] = after
    return _search_shape(frozenset(params), search.order), params


@functools.cache
def _search_shape(filters: frozenset[str], order: str) -> Any:
    query = select(Service.id).where(Service.archived.is_(False), Service.suspended.is_(False))
    if "pattern" in filters:
        query = query.where(Service.search_text.like(bindparam("pattern"), escape="\\"))
    for name, condition in (("category_id", Service.category_id == bindparam("category_id")),
                            ("provider_id", Service.provider_id == bindparam("provider_id")),
                            ("min_price_minor", Service.base_price_minor >= bindparam("min_price_minor")),
                            ("max_price_minor", Service.base_price_minor <= bindparam("max_price_minor")),
                            ("currency", Service.currency == bindparam("currency"))):
        if name in filters:
            query = query.where(condition)
    if "free_from" in filters:
        query = query.where(exists().where(_free_slot(bindparam("free_from", type_=Slot.start_at.type)),
                                           Slot.start_at < bindparam("free_before")))
    sort_value: Any
    if order == "price":
        sort_value = Service.base_price_minor
    elif order == "soonest":  # the next free slot's start; only this order pays for finding it
        next_free = (select(func.min(Slot.start_at)).where(_free_slot(bindparam("now", type_=Slot.start_at.type)))
                     .correlate(Service).scalar_subquery())
        sort_value = func.coalesce(next_free, FAR_FUTURE)
    else:
        sort_value = Service.display_name
    if "after_value" in filters:
        after_value = bindparam("after_value", type_=sort_value.type)
        query = query.where(or_(sort_value > after_value,
                                and_(sort_value == after_value, Service.id > bindparam("after_id"))))
    return query.add_columns(sort_value).order_by(sort_value, Service.id).limit(bindparam("limit"))


def found_in(rows: Sequence[Sequence[Any]]) -> list[Found]:
    """The services a `search_statement` found, with their page-token keys: ids, not rows (the
    caller takes the rows from the catalog cache)."""
    return [Found(row[0], [row[1].isoformat() if isinstance(row[1], datetime) else row[1], str(row[0])])
            for row in rows]


def search_key(order: str, key: list[Any]) -> tuple[Any, uuid.UUID]:
    """A search page token's sort key, read back as the order's column compares: an aware instant, a
    whole number of minor units, or a name (ValueError or TypeError for any other shape)."""
    if order == "soonest":
        return instant_and_id(key)
    value = key[0]
    if type(value) is not (int if order == "price" else str):
        raise TypeError(f"a {order} page key must not be {type(value).__name__}")
    return value, uuid.UUID(key[1])


async def services_by_ids(session: AsyncSession, service_ids: list[uuid.UUID]) -> list[Service]:
    return list((await session.execute(select(Service).where(Service.id.in_(service_ids)))).scalars())


# --- slots -----------------------------------------------------------------------------------


async def materialize_slots(session: AsyncSession, service: Service, *, now: datetime, horizon: datetime,
                            extend_only: bool = False) -> None:
    """Makes the slots table match the service's grid from `now` to `horizon`.

    New grid starts are inserted; starts that left the grid are deleted when nobody holds a seat,
    or kept but no longer offered when someone does (an admin resolves those). Future slots take the
    service's current capacity. `extend_only` (the periodic horizon extension) only inserts: its `now`
    may be older than a concurrent edit's, and pruning against its shorter horizon would delete slots
    that edit just made.
    """
    wanted = {} if service.archived else {s.start: s for s in grid_slots(service, now, horizon)}
    existing = {row.start_at: row for row in (await session.execute(
        select(Slot.start_at, Slot.seats_taken, Slot.offered, Slot.end_at)
        .where(Slot.service_id == service.id, Slot.start_at >= now))).all()}
    new = [{"id": uuid.uuid4(), "service_id": service.id, "start_at": s.start, "end_at": s.end,
            "capacity": service.capacity, "seats_taken": 0, "offered": True}
           for start, s in wanted.items() if start not in existing]
    for chunk in range(0, len(new), 1000):
        await session.execute(insert(Slot), new[chunk:chunk + 1000])
    if extend_only:
        return
    gone = [start for start, row in existing.items() if start not in wanted and row.seats_taken == 0]
    if gone:
        # Cancelled bookings, spent holds and closed waiting lines still point at their slot (history,
        # reports): such slots stay, unoffered. Any customer can leave such a row, so none may block this.
        await session.execute(delete(Slot).where(
            Slot.service_id == service.id, Slot.start_at.in_(gone), ~exists().where(Booking.slot_id == Slot.id),
            ~exists().where(Hold.slot_id == Slot.id), ~exists().where(WaitlistEntry.slot_id == Slot.id)))
    stale = [start for start, row in existing.items() if start not in wanted and row.offered]
    if stale:
        await session.execute(update(Slot).where(Slot.service_id == service.id, Slot.start_at.in_(stale))
                              .values(offered=False))
    revived = [s for s, row in existing.items() if s in wanted and (not row.offered or row.end_at != wanted[s].end)]
    if revived:
        for start in revived:
            await session.execute(update(Slot).where(Slot.service_id == service.id, Slot.start_at == start)
                                  .values(offered=True, end_at=wanted[start].end))
    await session.execute(update(Slot).where(Slot.service_id == service.id, Slot.start_at >= now,
                                             Slot.capacity != service.capacity).values(capacity=service.capacity))


def grid_slots(service: Service, start: datetime, end: datetime) -> list[slot_rules.Slot]:
    """The slots of the service's grid whose start lies in [start, end)."""
    return slot_rules.generate_slots(availability_of(service), spec_of(service).grid, ZoneInfo(service.time_zone),
                                     start, end)


class OpenSlot(NamedTuple):
    """A slot as ListSlots shows it: seats of holds that have lapsed (expired, not swept yet) are free.
    A named tuple: ListSlots builds one per slot of a week, and a tuple is built several times faster
    than a frozen dataclass."""

    start_at: datetime
    end_at: datetime
    capacity: int
    seats_taken: int


def _open_seats_taken() -> ColumnElement[int]:
    """The slot's seats taken but those of its lapsed holds (parameter `now`), as a correlated sum."""
    lapsed = (select(func.coalesce(func.sum(Hold.seats), 0))
              .where(Hold.slot_id == Slot.id, Hold.status == HoldStatus.ACTIVE.value,
                     Hold.expires_at <= bindparam("now"))
              .correlate(Slot).scalar_subquery())
    return Slot.seats_taken - lapsed


def _open_slots_statement() -> Any:
    in_window = and_(Slot.service_id == Service.id, Slot.offered.is_(True), Slot.start_at >= bindparam("start"),
                     Slot.start_at < bindparam("end"))
    return (select(Service.version, Slot.start_at, Slot.end_at, Slot.capacity, _open_seats_taken())
            .select_from(Service).outerjoin(Slot, in_window).where(Service.id == bindparam("service_id"))
            .order_by(Slot.start_at))


# Built once: this is the hottest catalog read, and building the expression costs more than running it.
_OPEN_SLOTS = _open_slots_statement()


def open_slots_statement(service_id: uuid.UUID, start: datetime, end: datetime,
                         now: datetime) -> tuple[Any, dict[str, object]]:
    """The query for the service's offered slots starting in [start, end), as of `now`, and its
    parameters; run it with `Database.read_rows` and read the rows with `open_slots_of`."""
    return _OPEN_SLOTS, {"service_id": service_id, "start": start, "end": end, "now": now}


def open_slots_of(rows: Sequence[Sequence[Any]], *, version: int) -> list[OpenSlot] | None:
    """The slots `open_slots_statement` read, in order; None if the service is no longer at `version`
    (the caller's copy of it, which set the window and prices the slots, is stale).

    One statement, plain rows: the service's version comes from the same snapshot as the seats, and the
    lapsed holds (expired, not swept yet) are a correlated sum instead of a second round trip. The
    caller runs it with `Database.read_rows`: rows of columns need no ORM session."""
    if not rows or rows[0][0] != version:
        return None
    return [OpenSlot(row[1], row[2], row[3], int(row[4])) for row in rows if row[1] is not None]


async def service_and_slot(session: AsyncSession, service_id: uuid.UUID,
                           start: datetime) -> tuple[Service, Slot | None]:
    """The service and its offered slot at `start` (None if it has none there), read together: every
    booking, hold and quote needs both, and one round trip is the cheaper half of two."""
    row = (await session.execute(_SERVICE_AND_SLOT, {"service_id": service_id, "start": start})).one_or_none()
    if row is None:
        raise NotFound("no such service", reason="SERVICE_NOT_FOUND")
    return row[0], row[1]


async def version_and_slot(session: AsyncSession, service_id: uuid.UUID, start: datetime) -> tuple[int, Slot | None]:
    """The service's version and its offered slot at `start` (None if it has none there), read together
    as plain values: a booking may take a copy of the service read before (`CatalogCache`) instead of
    the row, if the copy is still at this version. The slot is a new object, in no session."""
    rows = await rows_on(await session.connection(), _VERSION_AND_SLOT, {"service_id": service_id, "start": start})
    if not rows:
        raise NotFound("no such service", reason="SERVICE_NOT_FOUND")
    version, slot_id, end, capacity, taken = rows[0]
    slot = None if slot_id is None else Slot(id=slot_id, service_id=service_id, start_at=start, end_at=end,
                                             capacity=capacity, seats_taken=taken, offered=True)
    return version, slot


async def service_and_open_slot(session: AsyncSession, service_id: uuid.UUID, start: datetime,
                                now: datetime) -> tuple[Service, OpenSlot | None]:
    """The service and its offered slot at `start` as ListSlots shows it (seats of lapsed holds free,
    as a booking that claims them finds them): QuotePrice prices what booking would charge."""
    row = (await session.execute(_SERVICE_AND_OPEN_SLOT, {"service_id": service_id, "start": start,
                                                          "now": now})).one_or_none()
    if row is None:
        raise NotFound("no such service", reason="SERVICE_NOT_FOUND")
    slot = None if row[1] is None else OpenSlot(row[1], row[2], row[3], int(row[4]))
    return row[0], slot


# Built once: every booking, hold and quote runs it.
_OFFERED_AT_START = and_(Slot.service_id == Service.id, Slot.start_at == bindparam("start"), Slot.offered.is_(True))
_SERVICE_AND_SLOT = (select(Service, Slot).outerjoin(Slot, _OFFERED_AT_START)
                     .where(Service.id == bindparam("service_id")))
_VERSION_AND_SLOT = (select(Service.version, Slot.id, Slot.end_at, Slot.capacity, Slot.seats_taken)
                     .outerjoin(Slot, _OFFERED_AT_START).where(Service.id == bindparam("service_id")))
_SERVICE_AND_OPEN_SLOT = (select(Service, Slot.start_at, Slot.end_at, Slot.capacity, _open_seats_taken())
                          .outerjoin(Slot, _OFFERED_AT_START).where(Service.id == bindparam("service_id")))


async def suspend_services_of(session: AsyncSession, provider_id: uuid.UUID, *, suspended: bool,
                              now: datetime) -> int:
    """Suspends (or resumes) the provider's services, bumping their version so no copy read before is
    used to price or list slots; how many changed."""
    result = await session.execute(
        update(Service).where(Service.provider_id == provider_id, Service.suspended.is_(not suspended))
        .values(suspended=suspended, version=Service.version + 1, updated_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def active_services_and_last_slots(session: AsyncSession) -> list[tuple[Service, datetime | None]]:
    """Every active service with the start of its last offered slot (None if it has none): one probe of
    the slots' (service, start) index each. A slot an edit took off the grid but kept for its booking
    is not offered, and may lie beyond a shortened horizon."""
    last = (select(func.max(Slot.start_at)).where(Slot.service_id == Service.id, Slot.offered.is_(True))
            .correlate(Service).scalar_subquery())
    return [(service, last_start) for service, last_start in
            await session.execute(select(Service, last).where(Service.archived.is_(False)))]
