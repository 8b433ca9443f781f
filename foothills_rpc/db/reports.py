"""Queries for reports: booking statistics and the booking export.

Every figure is computed by the database with GROUP BY; Python only receives one row per group
(and currency), never the bookings themselves. Time buckets are UTC days, ISO weeks (Monday) and
months of the start, spelled `2030-01-07` / `2030-01`, with a dialect-specific expression each:

- PostgreSQL stores `timestamptz`: `timezone('UTC', start_at)` is the UTC wall time, which `date_trunc`
  and `to_char` turn into the key, whatever the session's time zone.
- SQLite stores naive UTC text, `2030-01-07 09:00:00.000000` (see `UtcDateTime`): the day and the month
  are prefixes of it, and the week's Monday is `date(day, 'weekday 0', '-6 days')` (the Sunday ending the
  ISO week, less six days). The day is cut off as text first: SQLite's date functions round fractional
  seconds to milliseconds, so `... 23:59:59.9999` would fall into the next day.

The export reads in keyset-paged batches ordered by (start_at, id), one short transaction per batch,
so a slow reader never holds a transaction (on SQLite, the write lock) open.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, func, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from foothills_rpc.db.models import Booking, Category, Service, Slot, User


class Grouping(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    SERVICE = "service"
    CATEGORY = "category"
    PROVIDER = "provider"
    STATUS = "status"


TIME_GROUPINGS = frozenset({Grouping.DAY, Grouping.WEEK, Grouping.MONTH})
AnySelect = Select[*tuple[Any, ...]]


@dataclass
class Figures:
    """One group's figures. `key`: the bucket (`2030-01-07`, `2030-01`), the id's hex (service, category,
    provider) or the status; empty for the total. `label`: the display name for ids, else empty."""

    key: str = ""
    label: str = ""
    bookings: int = 0
    pending: int = 0
    confirmed: int = 0
    cancelled: int = 0
    completed: int = 0
    # currency -> minor units: prices of pending, confirmed and completed bookings plus cancellation fees.
    revenue: dict[str, int] = field(default_factory=dict)
    booked_seats: int = 0
    offered_seats: int = 0

    @property
    def cancellation_rate(self) -> float:
        return self.cancelled / self.bookings if self.bookings else 0.0

    @property
    def utilisation(self) -> float:
        return self.booked_seats / self.offered_seats if self.offered_seats else 0.0


@dataclass(frozen=True)
class TopService:
    service_id: uuid.UUID
    display_name: str
    bookings: int


@dataclass(frozen=True)
class Stats:
    total: Figures
    groups: list[Figures]
    top_services: list[TopService]


# --- grouping expressions --------------------------------------------------------------------


def _day(dialect: str, instant: Any) -> Any:
    """The UTC day of `instant`: the one expression evaluated per booking or slot, so a cheap one."""
    if dialect == "postgresql":
        return func.date_trunc(literal_column("'day'"), func.timezone(literal_column("'UTC'"), instant))
    if dialect == "sqlite":
        return func.substr(instant, 1, 10, type_=String)
    raise ValueError(f"no time buckets for the {dialect} dialect")


def _bucket(dialect: str, grouping: Grouping, day: Any) -> ColumnElement[str]:
    """The key (`2030-01-07`, `2030-01`) of the day / ISO week (its Monday) / month holding `day` (a `_day`);
    evaluated once per day, after a first aggregation by day."""
    if dialect == "postgresql":
        if grouping is Grouping.WEEK:
            day = func.date_trunc(literal_column("'week'"), day)
        pattern = "'YYYY-MM'" if grouping is Grouping.MONTH else "'YYYY-MM-DD'"
        return func.to_char(day, literal_column(pattern), type_=String)
    if grouping is Grouping.WEEK:
        return func.date(day, literal_column("'weekday 0'"), literal_column("'-6 days'"), type_=String)
    if grouping is Grouping.MONTH:
        return func.substr(day, 1, 7, type_=String)
    return day


def _fine_key(dialect: str, grouping: Grouping) -> Any:
    """What bookings are first aggregated by: the group itself, or a finer key that is cheaper to compute
    per row and rolls up into it (the day, for time buckets; the service, for its category)."""
    if grouping in TIME_GROUPINGS:
        return _day(dialect, Booking.start_at)
    return {Grouping.SERVICE: Booking.service_id, Grouping.CATEGORY: Booking.service_id,
            Grouping.PROVIDER: Booking.provider_id, Grouping.STATUS: Booking.status}[grouping]


def _key_text(value: object) -> str:
    return value.hex if isinstance(value, uuid.UUID) else str(value)


# --- statistics ------------------------------------------------------------------------------


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


_FIGURES = ("n", "pending", "confirmed", "cancelled", "completed", "revenue", "seats")


def _booking_figures(dialect: str, grouping: Grouping, start: datetime, end: datetime) -> AnySelect:
    """Per group and currency: count, count per status, revenue, booked seats.

    Two levels where it saves work per row: first by day (or service), then the at most 366 days into their
    weeks or months (the services into their categories), so the bucket expression, or the join to services,
    runs per day (per service) rather than per booking. Currency leads the GROUP BY: on SQLite, status first
    lures the planner into walking the status index with a table lookup per booking."""
    r = (select(_fine_key(dialect, grouping).label("k"), Booking.currency, Booking.status, Booking.seats,
                Booking.total_price_minor, Booking.cancellation_fee_minor)
         .where(Booking.start_at >= start, Booking.start_at < end).subquery())
    cancelled = r.c.status == "cancelled"
    fine = select(
        r.c.k, r.c.currency, func.count().label("n"), _count(r.c.status == "pending").label("pending"),
        _count(r.c.status == "confirmed").label("confirmed"), _count(cancelled).label("cancelled"),
        _count(r.c.status == "completed").label("completed"),
        func.sum(case((cancelled, r.c.cancellation_fee_minor), else_=r.c.total_price_minor)).label("revenue"),
        func.sum(case((cancelled, 0), else_=r.c.seats)).label("seats"),
    ).group_by(r.c.currency, r.c.k)
    if grouping in TIME_GROUPINGS:
        d = fine.subquery()
        mapped = select(_bucket(dialect, grouping, d.c.k).label("k"), d.c.currency, *(d.c[f] for f in _FIGURES))
    elif grouping is Grouping.CATEGORY:
        d = fine.subquery()
        mapped = (select(Service.category_id.label("k"), d.c.currency, *(d.c[f] for f in _FIGURES))
                  .select_from(d).join(Service, Service.id == d.c.k))
    else:
        return fine
    b = mapped.subquery()
    return select(b.c.k, b.c.currency, *(func.sum(b.c[f]) for f in _FIGURES)).group_by(b.c.currency, b.c.k)


def _offered_seats(dialect: str, grouping: Grouping, start: datetime, end: datetime) -> AnySelect:
    """Per group: the capacity of the offered slots starting in the range. Summed per start first for time
    buckets (services share starts; SQLite streams this along the start index), per service first for
    categories and providers (one join per service, not per slot)."""
    in_range = (Slot.offered.is_(True), Slot.start_at >= start, Slot.start_at < end)
    if grouping in TIME_GROUPINGS:
        starts = (select(Slot.start_at.label("k"), func.sum(Slot.capacity).label("c")).where(*in_range)
                  .group_by(Slot.start_at).subquery())
        mapped = select(_bucket(dialect, grouping, _day(dialect, starts.c.k)).label("k"), starts.c.c)
    else:
        per_service = (select(Slot.service_id.label("k"), func.sum(Slot.capacity).label("c")).where(*in_range)
                       .group_by(Slot.service_id))
        if grouping is Grouping.SERVICE:
            return per_service
        owner = Service.category_id if grouping is Grouping.CATEGORY else Service.provider_id
        services = per_service.subquery()
        mapped = (select(owner.label("k"), services.c.c).select_from(services)
                  .join(Service, Service.id == services.c.k))
    b = mapped.subquery()
    return select(b.c.k, func.sum(b.c.c)).group_by(b.c.k)


async def booking_stats(session: AsyncSession, *, start: datetime, end: datetime, grouping: Grouping,
                        top: int) -> Stats:
    """Figures for the bookings starting in [start, end), grouped; the total; the `top` most booked services."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # one snapshot for the queries, so the figures agree with each other
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    groups: dict[str, Figures] = {}

    def group(key: object) -> Figures:
        text = _key_text(key)
        return groups.setdefault(text, Figures(key=text))

    # Bookings: the database sums per group and currency; here the currencies' counts are added per group.
    for k, currency, count, pending, confirmed, cancelled, completed, revenue, seats in (
            await session.execute(_booking_figures(dialect, grouping, start, end))).all():
        figures = group(k)
        figures.bookings += int(count)
        figures.pending += int(pending)
        figures.confirmed += int(confirmed)
        figures.cancelled += int(cancelled)
        figures.completed += int(completed)
        figures.booked_seats += int(seats)
        figures.revenue[currency] = figures.revenue.get(currency, 0) + int(revenue)

    # Offered seats (no meaning per status: there only the total).
    offered_total = 0
    if grouping is Grouping.STATUS:
        offered_total = int((await session.execute(
            select(func.coalesce(func.sum(Slot.capacity), 0))
            .where(Slot.offered.is_(True), Slot.start_at >= start, Slot.start_at < end))).scalar_one())
    else:
        for k, seats in (await session.execute(_offered_seats(dialect, grouping, start, end))).all():
            group(k).offered_seats = int(seats)
            offered_total += int(seats)

    await _label(session, grouping, groups)
    ordered = [groups[k] for k in sorted(groups)]
    return Stats(total=_total(ordered, offered_total), groups=ordered,
                 top_services=await _top_services(session, start=start, end=end, limit=top))


def _total(groups: Sequence[Figures], offered_seats: int) -> Figures:
    """The total of a partition: every booking falls in exactly one group, so the sums are exact."""
    total = Figures(offered_seats=offered_seats)
    revenue: dict[str, int] = defaultdict(int)
    for figures in groups:
        total.bookings += figures.bookings
        total.pending += figures.pending
        total.confirmed += figures.confirmed
        total.cancelled += figures.cancelled
        total.completed += figures.completed
        total.booked_seats += figures.booked_seats
        for currency, amount in figures.revenue.items():
            revenue[currency] += amount
    total.revenue = dict(revenue)
    return total


async def _label(session: AsyncSession, grouping: Grouping, groups: dict[str, Figures]) -> None:
    """Display names of the services, categories or providers grouped by."""
    columns = {Grouping.SERVICE: (Service.id, Service.display_name),
               Grouping.CATEGORY: (Category.id, Category.display_name),
               Grouping.PROVIDER: (User.id, User.display_name)}.get(grouping)
    if columns is None or not groups:
        return
    id_column, name_column = columns
    ids = [uuid.UUID(hex=k) for k in groups]
    names = await session.execute(select(id_column, name_column).where(id_column.in_(ids)))
    for id_, name in names.all():
        groups[id_.hex].label = name


async def _top_services(session: AsyncSession, *, start: datetime, end: datetime, limit: int) -> list[TopService]:
    if limit <= 0:
        return []
    bookings = func.count().label("n")
    ranked = (select(Booking.service_id, bookings)
              .where(Booking.start_at >= start, Booking.start_at < end, Booking.status != "cancelled")
              .group_by(Booking.service_id).order_by(bookings.desc(), Booking.service_id).limit(limit).subquery())
    query = (select(ranked.c.service_id, Service.display_name, ranked.c.n)
             .join(Service, Service.id == ranked.c.service_id).order_by(ranked.c.n.desc(), ranked.c.service_id))
    return [TopService(service_id, name, int(n)) for service_id, name, n in (await session.execute(query)).all()]


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRow:
    booking_id: uuid.UUID
    service_id: uuid.UUID
    service_display_name: str
    category_id: uuid.UUID
    category_display_name: str
    customer_id: uuid.UUID
    customer_email: str
    customer_display_name: str
    provider_id: uuid.UUID
    provider_display_name: str
    start_at: datetime
    end_at: datetime
    seats: int
    status: str
    currency: str
    total_price_minor: int
    cancellation_fee_minor: int
    created_at: datetime


async def export_batch(session: AsyncSession, *, start: datetime, end: datetime,
                       after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[ExportRow]:
    """Up to `limit` bookings starting in [start, end), soonest first (then by id), after the key `after`."""
    customer, provider = aliased(User), aliased(User)
    query = (select(Booking.id.label("booking_id"), Booking.service_id,
                    Service.display_name.label("service_display_name"), Service.category_id,
                    Category.display_name.label("category_display_name"), Booking.customer_id,
                    customer.email.label("customer_email"), customer.display_name.label("customer_display_name"),
                    Booking.provider_id, provider.display_name.label("provider_display_name"), Booking.start_at,
                    Booking.end_at, Booking.seats, Booking.status, Booking.currency, Booking.total_price_minor,
                    Booking.cancellation_fee_minor, Booking.created_at)
             .join(Service, Service.id == Booking.service_id).join(Category, Category.id == Service.category_id)
             .join(customer, customer.id == Booking.customer_id).join(provider, provider.id == Booking.provider_id)
             .where(Booking.start_at >= start, Booking.start_at < end))
    if after is not None:
        query = query.where(tuple_(Booking.start_at, Booking.id) > after)  # row values: index-friendly
    query = query.order_by(Booking.start_at, Booking.id).limit(limit)
    return [ExportRow(**row._asdict()) for row in (await session.execute(query)).all()]
