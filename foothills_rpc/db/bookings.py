"""Data access for bookings, their idempotency keys and their event stream.

The invariants live here as atomic statements: seats are taken by a conditional update that
cannot pass the slot's capacity, overlaps are refused by PostgreSQL exclusion constraints (and
checked inside the serialised write transaction on SQLite), event positions are final once readable.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    CTE,
    BigInteger,
    BindParameter,
    ColumnElement,
    Executable,
    Insert,
    Integer,
    ScalarSelect,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from foothills_rpc.db.database import (
    EXCLUSION_VIOLATION,
    UNIQUE_VIOLATION,
    RetryTransaction,
    constraint_name,
    first_row_on_driver,
    rows_on,
    sqlstate,
)
from foothills_rpc.db.holds import lapsed as holds_lapsed
from foothills_rpc.db.models import (
    ACTIVE_STATUSES,
    Booking,
    BookingEvent,
    EventCursor,
    EventSequence,
    IdempotencyKey,
    Service,
    Slot,
    User,
    UtcDateTime,
    table_of,
)
from foothills_rpc.db.waitlist import line_waits, someone_waits
from foothills_rpc.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.users import Role

_SLOTS = table_of(Slot)
_OVERLAP_REASONS = {
    "ex_bookings_customer_overlap": ("you already have a booking at that time", "OVERLAPPING_BOOKING"),
    "ex_bookings_provider_overlap": ("the provider is booked elsewhere at that time", "PROVIDER_UNAVAILABLE"),
}


# --- idempotency -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestKey:
    caller_id: uuid.UUID
    method: str
    request_id: str
    request_hash: str


@dataclass(frozen=True)
class EarlierRequest:
    request_hash: str
    booking_id: uuid.UUID


async def earlier_request(session: AsyncSession, key: RequestKey) -> EarlierRequest | None:
    row = (await session.execute(_EARLIER, {"caller_id": key.caller_id, "method": key.method,
                                            "request_id": key.request_id})).one_or_none()
    return None if row is None else EarlierRequest(request_hash=row.request_hash, booking_id=row.booking_id)


async def remember_request(session: AsyncSession, key: RequestKey, booking_id: uuid.UUID, now: datetime) -> None:
    """Records the request that changed the booking; `RequestSeen` if its key was used before."""
    try:
        await session.execute(_REMEMBER, {**_key_params(key, now), "booking_id": booking_id})
    except DBAPIError as exc:
        if (refusal := _request_seen(exc)) is not None:
            raise refusal from exc
        raise


class RequestSeen(AlreadyExists):
    """The request's key was used before: the transaction that tried again is refused (a refusal, as
    the transaction metrics count it, not a conflict), and the caller answers with the earlier
    request's result instead. Writes do not look the key up first (a round trip every call would pay
    for the rare retry): its primary key refuses the second use."""

    def __init__(self) -> None:
        super().__init__("this request_id was used before", reason="REQUEST_ID_REUSED")


def _request_seen(exc: DBAPIError) -> RequestSeen | None:
    """RequestSeen if `exc` is the key's primary key refusing a second use (SQLite names no constraint:
    the statements that insert a key violate no other unique one)."""
    if sqlstate(exc) != UNIQUE_VIOLATION or constraint_name(exc) not in (None, "pk_idempotency_keys"):
        return None
    return RequestSeen()


def _key_params(key: RequestKey, now: datetime) -> dict[str, object]:
    return {"caller_id": key.caller_id, "method": key.method, "request_id": key.request_id,
            "request_hash": key.request_hash, "created_at": now}


# Built once, like the other statements every booking runs: building them cost more than running them.
_EARLIER = select(IdempotencyKey.request_hash, IdempotencyKey.booking_id).where(
    IdempotencyKey.caller_id == bindparam("caller_id"), IdempotencyKey.method == bindparam("method"),
    IdempotencyKey.request_id == bindparam("request_id"))
_REMEMBER = insert(table_of(IdempotencyKey))


# --- seats and overlaps ----------------------------------------------------------------------


async def lock_slots(session: AsyncSession, slot_ids: list[uuid.UUID]) -> None:
    """Row-locks slots in id order, so two reschedules crossing between the same slots queue instead of
    deadlocking (each would otherwise hold one slot and wait for the other)."""
    await session.execute(select(Slot.id).where(Slot.id.in_(slot_ids)).order_by(Slot.id).with_for_update())


async def take_seats(session: AsyncSession, slot_id: uuid.UUID, seats: int) -> bool:
    """Adds `seats` to the slot only if they fit its capacity now: one atomic statement."""
    result = await session.execute(
        update(Slot).where(Slot.id == slot_id, _seats_fit(seats)).values(seats_taken=Slot.seats_taken + seats)
        .returning(Slot.id))
    return result.scalar_one_or_none() is not None


def _seats_fit(seats: int | BindParameter[int]) -> ColumnElement[bool]:
    """The slot is offered and `seats` more fit its capacity: the one rule every take of seats asks."""
    return and_(_SLOTS.c.offered.is_(True), _SLOTS.c.seats_taken + seats <= _SLOTS.c.capacity)


async def release_seats(session: AsyncSession, slot_id: uuid.UUID, seats: int) -> bool:
    """Gives `seats` of the slot back; returns whether anyone waits in its line, asked by the same
    statement (seats given back are offered to the line next: `usecases.waitlist.release_and_offer`)."""
    released = await session.execute(
        update(Slot).where(Slot.id == slot_id).values(seats_taken=Slot.seats_taken - seats)
        .returning(line_waits(literal(slot_id, Uuid))))
    return bool(released.scalar_one())


async def lock_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Serialises one customer's limited bookings across processes: their user row, locked until commit.

    FOR NO KEY UPDATE: it queues behind itself but not behind the key-share locks of foreign keys that
    point at the user, so other writes referring to them go on. Taken before any slot lock (one order,
    no deadlock). SQLite needs none: its writers are serialised by BEGIN IMMEDIATE."""
    await session.execute(select(User.id).where(User.id == customer_id).with_for_update(key_share=True))


async def count_customer_bookings(session: AsyncSession, *, customer_id: uuid.UUID, service_id: uuid.UUID,
                                  start: datetime, end: datetime, exclude: uuid.UUID | None) -> int:
    """The customer's active bookings of the service starting in [start, end), but `exclude`."""
    query = select(func.count()).select_from(Booking).where(
        Booking.customer_id == customer_id, Booking.service_id == service_id, _active(), Booking.start_at >= start,
        Booking.start_at < end)
    if exclude is not None:
        query = query.where(Booking.id != exclude)
    return int((await session.execute(query)).scalar_one())


def _active() -> ColumnElement[bool]:
    # Written into the SQL, not sent as parameters: PostgreSQL's cached generic plans can then prove
    # that the partial indexes on active bookings (the exclusion constraints') apply.
    return Booking.status.in_(bindparam("active_statuses", ACTIVE_STATUSES, literal_execute=True))


@dataclass(frozen=True)
class Clashes:
    """What stands between a customer and a slot, read in one statement."""

    customer_slot_id: uuid.UUID | None  # the slot of one of the customer's active bookings overlapping it
    provider_busy: bool  # the provider has an active booking elsewhere overlapping it
    lapsed_holds: bool  # the slot has active holds past their expiry, whose seats are free to claim


@dataclass(frozen=True)
class Overlaps:
    """What `clashes` asks about a slot: the customer's and (unless `provider_id` is None) the provider's
    overlapping active bookings, but `exclude`, and (with `lapsed_holds`) whether the slot has holds
    lapsed at `now` (`holds.lapsed`)."""

    customer_id: uuid.UUID
    provider_id: uuid.UUID | None
    slot_id: uuid.UUID
    start: datetime
    end: datetime
    exclude: uuid.UUID | None
    lapsed_holds: bool
    now: datetime

    def params(self) -> dict[str, object]:
        """The bind parameters of `_clash_terms` of this shape."""
        params: dict[str, object] = {"customer_id": self.customer_id, "start": self.start, "end": self.end}
        if self.provider_id is not None:
            params |= {"provider_id": self.provider_id, "slot_id": self.slot_id}
        if self.exclude is not None:
            params["exclude"] = self.exclude
        if self.lapsed_holds:
            params |= {"slot_id": self.slot_id, "now": self.now}
        return params

    def shape(self, session: AsyncSession) -> tuple[str, bool, bool, bool]:
        return (session.get_bind().dialect.name, self.provider_id is not None, self.exclude is not None,
                self.lapsed_holds)


async def clashes(session: AsyncSession, asked: Overlaps) -> Clashes:
    """The answers to `asked`, in one round trip. On PostgreSQL the exclusion constraints refuse the
    overlaps anyway; this names the reason, and on SQLite (whose writers are serialised) it is the check
    itself."""
    row = (await session.execute(_clashes_statement(*asked.shape(session)), asked.params())).one()
    return Clashes(customer_slot_id=row[0], provider_busy=bool(row[1]), lapsed_holds=bool(row[2]))


async def take_seats_unless_clash(session: AsyncSession, asked: Overlaps, seats: int) -> bool:
    """Takes `seats` of the slot, as `take_seats` does, if nothing `clashes(asked)` would find stands in
    the way; False, taking nothing, if anything does or the seats do not fit (then `clashes` says which).
    A booking's usual case in one round trip instead of two. A Core statement: the slot loaded in the
    session keeps the seats taken before these (the price is quoted on them)."""
    taken = await session.execute(_take_unless_clash_statement(*asked.shape(session)),
                                  {**asked.params(), "slot_id": asked.slot_id, "seats": seats})
    return taken.scalar_one_or_none() is not None


@functools.cache
def _clashes_statement(dialect: str, provider: bool, exclude: bool,
                       lapsed_holds: bool) -> Select[uuid.UUID, bool, bool]:
    """The clashes statement of one shape, built once: building and hashing it on every booking cost
    0.6 ms of server CPU, more than running it."""
    return select(*_clash_terms(dialect, provider, exclude, lapsed_holds))


@functools.cache
def _take_unless_clash_statement(dialect: str, provider: bool, exclude: bool,
                                 lapsed_holds: bool) -> ReturningUpdate[tuple[uuid.UUID]]:
    customer, busy, lapsed = _clash_terms(dialect, provider, exclude, lapsed_holds)
    seats: BindParameter[int] = bindparam("seats")
    return (update(_SLOTS).where(_SLOTS.c.id == bindparam("slot_id"), _seats_fit(seats), customer.is_(None), ~busy,
                                 ~lapsed)
            .values(seats_taken=_SLOTS.c.seats_taken + seats).returning(_SLOTS.c.id))


_ClashTerms = tuple[ScalarSelect[uuid.UUID], ColumnElement[bool], ColumnElement[bool]]


def _clash_terms(dialect: str, provider: bool, exclude: bool, lapsed_holds: bool) -> _ClashTerms:
    """What `clashes` asks, as three expressions of bind parameters: the customer's overlapping booking's
    slot (or NULL), whether the provider is busy elsewhere, whether the slot has lapsed holds."""
    start: BindParameter[datetime] = bindparam("start")
    end: BindParameter[datetime] = bindparam("end")
    slot_id: BindParameter[uuid.UUID] = bindparam("slot_id")
    others = [Booking.id != bindparam("exclude")] if exclude else []
    during: ColumnElement[bool]
    if dialect == "postgresql":
        # Asked as the exclusion constraints ask it, so their gist indexes answer. Column by column, the
        # provider's check read every booking the provider ever had (at the benchmark's size 2,000 rows,
        # 1.5-3 ms; at 10x 16,500 rows, 6.6 ms; the index: 0.2 and 0.8 ms), and the customer's, on a
        # popular service's near slots, every active booking starting before the slot ends (200 buffers
        # a booking, against 27 through the index).
        during = func.tstzrange(Booking.start_at, Booking.end_at).bool_op("&&")(func.tstzrange(start, end))
    else:
        during = and_(Booking.start_at < end, Booking.end_at > start)
    customer = select(Booking.slot_id).where(Booking.customer_id == bindparam("customer_id"), _active(), during,
                                             *others).limit(1).scalar_subquery()
    busy: ColumnElement[bool] = false()
    if provider:
        busy = exists().where(Booking.provider_id == bindparam("provider_id"), Booking.uses_provider_time,
                              Booking.slot_id != slot_id, _active(), during, *others)
    lapsed = exists().where(holds_lapsed(slot_id, bindparam("now"))) if lapsed_holds else false()
    return customer, busy, lapsed


async def has_active_booking(session: AsyncSession, customer_id: uuid.UUID, slot_id: uuid.UUID) -> bool:
    """Whether the customer holds an active booking of the slot."""
    return bool((await session.execute(select(exists().where(
        Booking.customer_id == customer_id, Booking.slot_id == slot_id, _active())))).scalar())


async def insert_booking(session: AsyncSession, booking: Booking, key: RequestKey, *, by: uuid.UUID,
                         now: datetime) -> None:
    """Writes a new booking, the request that made it (`key`) and its "created" event; an overlap the
    exclusion constraints refuse raises the reason a caller can act on.

    PostgreSQL: one statement, the three inserts as one CTE (the hottest write's round trips are most
    of its cost); the position is taken as `record_change` takes it, with no guard (a new booking has no
    events). SQLite: the three statements, in that order. Core inserts, so the ORM tracks nothing: the
    booking stays a plain object, not in the session."""
    if session.get_bind().dialect.name != "postgresql":
        try:
            await session.execute(_INSERT_BOOKING, {column.key: getattr(booking, column.key) for column in _BOOKINGS.c})
        except DBAPIError as exc:
            if (refusal := _overlap_refusal(exc)) is not None:
                raise refusal from exc
            raise
        await remember_request(session, key, booking.id, now)
        await record_change(session, booking, "created", now, by=by)
        return
    await _written(session, _CREATED, _creation_params(session, booking, key, by=by, now=now))


async def book_unless_clash(session: AsyncSession, asked: Overlaps, booking: Booking, key: RequestKey, *,
                            by: uuid.UUID, now: datetime) -> Clashes | None:
    """`take_seats_unless_clash(asked, booking.seats)` and, if it took them, `insert_booking`: None if
    it booked; else, writing nothing, what stood in the way (`clashes(asked)`: nothing, if the seats
    did not fit).

    PostgreSQL: one statement, whichever way it goes (the inserts select from the take, the clashes
    are asked if it took nothing), so a booking is one round trip (the usual case of the hottest
    write) and so is a refusal; an overlap is refused by the exclusion constraints, raised as its
    reason. SQLite: the statements one by one."""
    if session.get_bind().dialect.name != "postgresql":
        if not await take_seats_unless_clash(session, asked, booking.seats):
            return await clashes(session, asked)
        await insert_booking(session, booking, key, by=by, now=now)
        return None
    params = _creation_params(session, booking, key, by=by, now=now)
    row = await _first_row(session, _book_unless_clash_statement(*asked.shape(session)),
                           {**params, **asked.params(), "slot_id": asked.slot_id, "seats": booking.seats})
    assert row is not None  # one row whichever way it went
    return None if row[0] is not None else Clashes(customer_slot_id=row[1], provider_busy=bool(row[2]),
                                                  lapsed_holds=bool(row[3]))


def _creation_params(session: AsyncSession, booking: Booking, key: RequestKey, *, by: uuid.UUID,
                     now: datetime) -> dict[str, object]:
    """The parameters of `_creating`'s statements (PostgreSQL)."""
    return {**_new_params({column.key: getattr(booking, column.key) for column in _BOOKINGS.c}),
            **_key_params(key, now), **_event_params(_event_fields(booking, "created", now, by=by)),
            "ordinal": claim_ordinals(session, 1)}


async def _written(session: AsyncSession, statement: Executable, params: dict[str, object]) -> bool:
    """Runs a statement that returns a row if it wrote (`_creating`'s, `_cancel_as_read_statement`'s)
    on psycopg; whether it wrote, with the refusals a caller can act on raised as such."""
    return await _first_row(session, statement, params) is not None


async def _first_row(session: AsyncSession, statement: Executable, params: dict[str, object]) -> Sequence[Any] | None:
    """The first row a booking write returns, run on psycopg, with the refusals a caller can act on
    raised as such."""
    try:
        return await first_row_on_driver(await session.connection(), statement, params)
    except DBAPIError as exc:
        if (refusal := _overlap_refusal(exc) or _request_seen(exc)) is not None:
            raise refusal from exc
        raise


def _overlap_refusal(exc: DBAPIError) -> FailedPrecondition | None:
    """The refusal an exclusion-constraint violation means for the caller (None for other errors)."""
    if sqlstate(exc) != EXCLUSION_VIOLATION:
        return None
    message, reason = _OVERLAP_REASONS.get(constraint_name(exc) or "", ("overlapping booking", "OVERLAPPING_BOOKING"))
    return FailedPrecondition(message, reason=reason)


# --- reading ---------------------------------------------------------------------------------


def visible_to(role: Role, user: uuid.UUID | BindParameter[uuid.UUID]) -> ColumnElement[bool] | None:
    """What a caller may see: their own bookings, a provider's services' bookings, or everything."""
    if role is Role.ADMIN:
        return None
    if role is Role.PROVIDER:
        return or_(Booking.customer_id == user, Booking.provider_id == user)
    return Booking.customer_id == user


async def booking_for(session: AsyncSession, caller: Principal, booking_id: uuid.UUID, *,
                      for_update: bool = False) -> Booking:
    """The booking as `caller` may see it (BOOKING_NOT_FOUND if they may not), with `for_update` locked
    for the transaction. Read as a plain row into a new object in no session: loading it through the
    ORM cost more than the query (a third of a cancellation's read). Nothing flushes it: its changes
    are written by statements of their own (`record_change`, `cancel_as_read`)."""
    rows = await rows_on(await session.connection(), _booking_statement(caller.role, for_update),
                         {"booking_id": booking_id, "caller_id": caller.user_id})
    if not rows:
        raise NotFound("no such booking", reason="BOOKING_NOT_FOUND")
    return Booking(**dict(zip(_BOOKING_COLUMNS, rows[0], strict=True)))


@functools.cache
def _booking_statement(role: Role, for_update: bool) -> Select[Any]:
    """One booking as a caller of `role` may see it, built once per shape (every cancel, confirm and
    reschedule reads one)."""
    query = select(*_BOOKINGS.c).where(Booking.id == bindparam("booking_id"))
    if (rule := visible_to(role, bindparam("caller_id"))) is not None:
        query = query.where(rule)
    return query.with_for_update() if for_update else query


@dataclass(frozen=True)
class BookingFilter:
    statuses: tuple[str, ...] = ()
    start_after: datetime | None = None
    start_before: datetime | None = None
    service_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    order: str = "newest"  # newest | soonest


class BookingLine(NamedTuple):
    """A booking as a list shows it: the columns of its message, read as a plain row (a page of ORM
    objects cost more than the query that found them)."""

    id: uuid.UUID
    service_id: uuid.UUID
    customer_id: uuid.UUID
    provider_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    seats: int
    status: str
    currency: str
    unit_price_minor: int
    total_price_minor: int
    price_breakdown: dict[str, Any]
    cancellation_policy: list[Any]
    cancellation_fee_minor: int
    cancel_reason: str
    notes: str
    reschedule_count: int
    created_at: datetime
    updated_at: datetime


def bookings_page_statement(caller: Principal, filters: BookingFilter, *, after: tuple[datetime, uuid.UUID] | None,
                            limit: int) -> tuple[Select[Any], dict[str, object]]:
    """The query for a page of the bookings `caller` may see that match `filters`, in its order, after
    the page key `after`, and its parameters; run it with `Database.read_rows` and read the rows with
    `BookingLine._make`. The statement depends only on the caller's role, which filters are set
    (which statuses) and the order: each shape is built once (building and cache-keying it cost more
    than running it), the values are parameters."""
    params: dict[str, object] = {"limit": limit}
    if caller.role is not Role.ADMIN:
        params["caller_id"] = caller.user_id
    for name in ("start_after", "start_before", "service_id", "customer_id"):
        if (value := getattr(filters, name)) is not None:
            params[name] = value
    if after is not None:
        params["after_at"], params["after_id"] = after
    return _bookings_shape(caller.role, frozenset(params), frozenset(filters.statuses), filters.order), params


@functools.cache
def _bookings_shape(role: Role, filters: frozenset[str], statuses: frozenset[str], order: str) -> Select[Any]:
    query = select(*(getattr(Booking, column) for column in BookingLine._fields))
    if (rule := visible_to(role, bindparam("caller_id"))) is not None:
        query = query.where(rule)
    if statuses:  # one of four values each: written into the shape, as psycopg takes no IN (...) list
        query = query.where(Booking.status.in_([literal(status) for status in sorted(statuses)]))
    for name, condition in (("start_after", Booking.start_at >= bindparam("start_after")),
                            ("start_before", Booking.start_at < bindparam("start_before")),
                            ("service_id", Booking.service_id == bindparam("service_id")),
                            ("customer_id", Booking.customer_id == bindparam("customer_id"))):
        if name in filters:
            query = query.where(condition)
    after_at, after_id = bindparam("after_at", type_=UtcDateTime()), bindparam("after_id", type_=Uuid())
    if order == "soonest":
        if "after_at" in filters:
            query = query.where(or_(Booking.start_at > after_at,
                                    and_(Booking.start_at == after_at, Booking.id > after_id)))
        query = query.order_by(Booking.start_at, Booking.id)
    else:
        if "after_at" in filters:
            query = query.where(or_(Booking.created_at < after_at,
                                    and_(Booking.created_at == after_at, Booking.id < after_id)))
        query = query.order_by(Booking.created_at.desc(), Booking.id.desc())
    return query.limit(bindparam("limit"))


def page_key(booking: BookingLine, order: str) -> list[Any]:
    instant = booking.start_at if order == "soonest" else booking.created_at
    return [instant.isoformat(), str(booking.id)]


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class News:
    """A booking event to tell people about, with whom and what it concerns."""

    event: BookingEvent
    booking: Booking
    customer: User
    provider: User
    service: Service


async def claim_news(session: AsyncSession, consumer: str, limit: int) -> list[News]:
    """The readable events past `consumer`'s cursor (at most `limit`), with the cursor advanced past them
    in this transaction: each is claimed once, whichever process asks. Empty while another
    process's transaction holds the cursor (it is claiming them)."""
    cursor = (await session.execute(_CLAIM_CURSOR, {"consumer": consumer})).scalar_one_or_none()
    if cursor is None:
        return []
    rows = (await session.execute(_news_statement(session.get_bind().dialect.name),
                                  {"cursor": cursor, "limit": limit})).all()
    if rows:
        await session.execute(_MOVE_CURSOR, {"consumer": consumer, "position": rows[-1][0].id})
    return [News(*row) for row in rows]


# send-mail claims news on every pass: its statements are built once, not per pass.
_CLAIM_CURSOR = (select(EventCursor.position).where(EventCursor.name == bindparam("consumer"))
                 .with_for_update(skip_locked=True))
_MOVE_CURSOR = (update(EventCursor).where(EventCursor.name == bindparam("consumer"))
                .values(position=bindparam("position")))


@functools.cache
def _news_statement(dialect: str) -> Select[BookingEvent, Booking, User, User, Service]:
    customer, provider = aliased(User), aliased(User)
    return (select(BookingEvent, Booking, customer, provider, Service)
            .join(Booking, Booking.id == BookingEvent.booking_id)
            .join(customer, customer.id == BookingEvent.customer_id).join(provider, provider.id == Booking.provider_id)
            .join(Service, Service.id == Booking.service_id)
            .where(BookingEvent.id > bindparam("cursor"), _readable_in(dialect))
            .order_by(BookingEvent.id).limit(bindparam("limit")))


async def untold_events(session: AsyncSession, consumer: str) -> tuple[int, datetime | None]:
    """How many booking events lie past `consumer`'s cursor, and when the oldest of them happened."""
    cursor = select(EventCursor.position).where(EventCursor.name == consumer).scalar_subquery()
    row = (await session.execute(select(func.count(), func.min(BookingEvent.created_at))
                                 .where(BookingEvent.id > cursor))).one()
    return int(row[0]), row[1]


# PostgreSQL: an event's position is its transaction's id shifted left by ORDINAL_BITS, plus its ordinal
# in that transaction (migration 0013). Taken without a lock, written with the row.
ORDINAL_BITS = 20
_ORDINALS = "booking_event_ordinals"  # session.info key: ordinals given out in this transaction
_TRANSACTION_BASE = literal_column("pg_current_xact_id()::text::bigint").op("<<")(ORDINAL_BITS)
# Every transaction still running has an id at least the oldest one's: positions below this are final.
_READABLE_BELOW = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint").op("<<")(ORDINAL_BITS)


class SlotSeats(NamedTuple):
    slot_id: uuid.UUID
    seats: int


async def record_change(session: AsyncSession, booking: Booking, kind: str, now: datetime, *,
                        by: uuid.UUID | None, changes: Mapping[str, object] | None = None, reason: str = "",
                        previous_start: datetime | None = None, release: SlotSeats | None = None) -> bool:
    """Writes `changes` (column: new value) to the booking, whose row this transaction has locked (or
    just inserted), and records the change as an event with a position in the stream: a watcher that
    has passed position N never later finds a smaller one committed, and one booking's events are
    positioned in the order they happened. An overlap the exclusion constraints refuse raises the
    reason a caller can act on.

    The object takes the values as already written (the ORM's flush does not write them again). On
    PostgreSQL the update and the event are one statement (a CTE): a round trip fewer on every change.

    PostgreSQL: the position comes from the transaction id (see ORDINAL_BITS), so writers share no row,
    lock or sequence; readers stop below the oldest running transaction (`readable_events`). Transaction
    ids follow the order transactions began, not committed: one that began before another's change to
    this booking committed would land its event before it, so the insert refuses and the transaction
    starts again with a newer id. SQLite serialises whole write transactions: the number is taken here.

    The event carries what the booking was at that moment, for the notices composed from it later
    (notifications/booking_news.py): `by` made the change (None: the system), `reason` is the one given
    to the customer, `previous_start` where a rescheduled booking was.

    With `release`, the change also gives those seats of that slot back (`release_seats`; on PostgreSQL
    in the same statement) and returns whether anyone waits in the slot's line (False without it)."""
    changes = dict(changes or {})
    for column, value in changes.items():
        set_committed_value(booking, column, value)
    fields = _event_fields(booking, kind, now, by=by, reason=reason, previous_start=previous_start)
    try:
        if session.get_bind().dialect.name != "postgresql":
            waits = release is not None and await release_seats(session, release.slot_id, release.seats)
            if changes:
                await session.execute(update(_BOOKINGS).where(_BOOKINGS.c.id == booking.id).values(changes))
            await session.execute(_EVENT, {"id": await take_event_numbers(session, 1), **fields})
            return waits
        params = {"ordinal": claim_ordinals(session, 1), **_event_params(fields),
                  **_new_params(changes)}
        if release is not None:
            params |= {"release_slot_id": release.slot_id, "release_seats": release.seats}
        recorded = await first_row_on_driver(await session.connection(),
                                             _changed_with_event(tuple(changes), release is not None), params)
    except DBAPIError as exc:
        if (refusal := _overlap_refusal(exc)) is not None:
            raise refusal from exc
        raise
    if recorded is None:
        raise RetryTransaction("a later transaction already recorded a change of this booking")
    return release is not None and bool(recorded[1])


async def cancel_as_read(session: AsyncSession, booking: Booking, changes: Mapping[str, object], *,
                         key: RequestKey | None, by: uuid.UUID, reason: str, now: datetime) -> bool:
    """Cancels `booking` as `record_change(kind "cancelled", release=its seats)` and then
    `remember_request(key)` would, without a transaction around it (`Database.write_alone`), if it is
    still as read (its status and `updated_at`, which every change of a booking sets) and nobody waits
    in its slot's line (their offer needs the transaction); False, writing nothing, otherwise. The
    object takes `changes` either way.

    PostgreSQL: one statement, every write in it selecting from the guarded update of the booking, so a
    cancellation is one round trip after its read: a concurrent change makes the update find no row,
    and nothing is written. SQLite: the statements of `record_change`, in the transaction
    `write_alone` runs there, which took SQLite's one write lock before the read."""
    freed = SlotSeats(booking.slot_id, booking.seats)
    if session.get_bind().dialect.name != "postgresql":
        if await someone_waits(session, freed.slot_id):
            return False
        await record_change(session, booking, "cancelled", now, by=by, reason=reason, release=freed, changes=changes)
        if key is not None:
            await remember_request(session, key, booking.id, now)
        return True
    read = {"read_status": booking.status, "read_updated_at": booking.updated_at}
    for column, value in changes.items():
        set_committed_value(booking, column, value)
    params = {**read, "ordinal": claim_ordinals(session, 1), "release_slot_id": freed.slot_id,
              "release_seats": freed.seats, **_new_params(changes),
              **_event_params(_event_fields(booking, "cancelled", now, by=by, reason=reason))}
    if key is not None:
        params |= _key_params(key, now)
    return await _written(session, _cancel_as_read_statement(tuple(changes), key is not None), params)


def _event_fields(booking: Booking, kind: str, now: datetime, *, by: uuid.UUID | None, reason: str = "",
                  previous_start: datetime | None = None) -> dict[str, object]:
    """An event's columns but its position: what the booking was at that moment (see `record_change`)."""
    details = {"status": booking.status, "start_at": booking.start_at.isoformat(),
               "end_at": booking.end_at.isoformat(), "seats": booking.seats, "total_minor": booking.total_price_minor,
               "currency": booking.currency, "fee_minor": booking.cancellation_fee_minor, "reason": reason,
               "by": by.hex if by else "",
               # Calendar apps keep the copy with the highest SEQUENCE: moving and cancelling raise it.
               "sequence": booking.reschedule_count + (booking.status == "cancelled")}
    if previous_start is not None:
        details["previous_start_at"] = previous_start.isoformat()
    if booking.approval_deadline is not None:
        details["approval_deadline"] = booking.approval_deadline.isoformat()
    return {"booking_id": booking.id, "customer_id": booking.customer_id, "provider_id": booking.provider_id,
            "type": kind, "created_at": now, "details": details}


def claim_ordinals(session: AsyncSession, count: int) -> int:
    """The first of `count` event ordinals unique within this session's transaction (PostgreSQL)."""
    first = session.info.get(_ORDINALS, 0) + 1
    session.info[_ORDINALS] = last = first + count - 1
    if last >= 1 << ORDINAL_BITS:
        raise ValueError(f"at most {(1 << ORDINAL_BITS) - 1} booking events per transaction")
    return first


async def transaction_base(session: AsyncSession) -> int:
    """Position 0 of this transaction's events (PostgreSQL): add an ordinal from `claim_ordinals`."""
    return int((await session.execute(select(_TRANSACTION_BASE))).scalar_one())


_EVENTS = table_of(BookingEvent)
_EVENT = insert(_EVENTS)
_POSITION = select((_TRANSACTION_BASE + bindparam("ordinal", type_=BigInteger)).label("id")).subquery()
_EVENT_COLUMNS = ["id", "booking_id", "customer_id", "provider_id", "type", "created_at", "details"]


def _event_row(position: ColumnElement[int], booking_id: ColumnElement[uuid.UUID]) -> Select[Any]:
    """The row a positioned event insert selects, from parameters event_<column>: a statement that also
    updates the booking would take unprefixed names for more of the booking's columns to set."""
    return select(position, booking_id, *(bindparam(f"event_{name}", type_=_EVENTS.c[name].type)
                                          for name in _EVENT_COLUMNS[2:]))


def _event_params(fields: Mapping[str, object]) -> dict[str, object]:
    return {f"event_{name}": value for name, value in fields.items()}


_EVENT_BOOKING = bindparam("event_booking_id", type_=Uuid)
_POSITIONED_EVENT = insert(_EVENTS).from_select(_EVENT_COLUMNS, _event_row(_POSITION.c.id, _EVENT_BOOKING).where(
    ~exists().where(BookingEvent.booking_id == _EVENT_BOOKING, BookingEvent.id > _POSITION.c.id)),
).returning(BookingEvent.id)
_BOOKINGS = table_of(Booking)
_BOOKING_COLUMNS = tuple(column.key for column in _BOOKINGS.c)
_INSERT_BOOKING = insert(_BOOKINGS)


def _key_of(booking_id: ColumnElement[uuid.UUID]) -> Insert:
    """The request's key (parameters as `_key_params` names them) for the booking `booking_id` selects:
    written only if that select finds a row."""
    return insert(table_of(IdempotencyKey)).from_select(
        ["caller_id", "method", "request_id", "request_hash", "created_at", "booking_id"],
        select(bindparam("caller_id", type_=Uuid), bindparam("method", type_=String),
               bindparam("request_id", type_=String), bindparam("request_hash", type_=String),
               bindparam("created_at", type_=UtcDateTime), booking_id))


def _new_values(columns: Sequence[str]) -> dict[str, BindParameter[Any]]:
    """The booking's `columns` as a statement writes them: parameters new_<column> (`_new_params`)."""
    return {column: bindparam(f"new_{column}", type_=_BOOKINGS.c[column].type) for column in columns}


def _new_params(values: Mapping[str, object]) -> dict[str, object]:
    return {f"new_{column}": value for column, value in values.items()}


def _creating(taken: CTE | None) -> ReturningInsert[tuple[int]]:
    """insert_booking's statement on PostgreSQL: the booking (parameters new_<column>), its request key,
    its event; returning the event's id. With `taken` (a take of seats returning the slot's id) each
    insert selects from it, so nothing is written unless the take took."""
    values = _new_values([c.key for c in _BOOKINGS.c])
    booking = (insert(_BOOKINGS).values(values) if taken is None
               else insert(_BOOKINGS).from_select(list(values), select(*values.values()).select_from(taken)))
    new_booking = booking.returning(_BOOKINGS.c.id).cte("new_booking")
    new_key = _key_of(new_booking.c.id).cte("new_key")
    return insert(_EVENTS).from_select(
        _EVENT_COLUMNS, _event_row(_TRANSACTION_BASE + bindparam("ordinal", type_=BigInteger), new_booking.c.id),
    ).add_cte(new_key).returning(_EVENTS.c.id)


_CREATED = _creating(None)


@functools.cache
def _book_unless_clash_statement(dialect: str, provider: bool, exclude: bool,
                                 lapsed_holds: bool) -> Select[tuple[int | None, uuid.UUID | None, bool, bool]]:
    """`book_unless_clash`'s statement on PostgreSQL; its one row holds the event's id and, only if it
    is NULL (nothing taken), the three answers of `clashes`. The take asks only about lapsed holds:
    an overlap is the exclusion constraints' to refuse as the booking is inserted (an error naming the
    constraint: `_overlap_refusal`), which they do anyway, so a booking searches the customer's and
    the provider's bookings once, not twice. On a popular slot the second search was a fifth of
    PostgreSQL's CPU: the provider's index holds every booking of the slot, live or not yet vacuumed."""
    customer, busy, lapsed = _clash_terms(dialect, provider, exclude, lapsed_holds)
    seats: BindParameter[int] = bindparam("seats")
    taken = (update(_SLOTS).where(_SLOTS.c.id == bindparam("slot_id"), _seats_fit(seats), ~lapsed)
             .values(seats_taken=_SLOTS.c.seats_taken + seats).returning(_SLOTS.c.id).cte("taken"))
    event = _creating(taken).cte("event")
    outcome = select(select(event.c.id).scalar_subquery().label("id")).subquery("outcome")
    refused = outcome.c.id.is_(None)  # each answer is asked only then
    return select(outcome.c.id, case((refused, customer)), case((refused, busy)), case((refused, lapsed)))


@functools.cache
def _changed_with_event(columns: tuple[str, ...], release: bool) -> Executable:
    """`_POSITIONED_EVENT` with the booking's update (parameters new_<column>) and, with `release`, the
    seats given back (parameters release_slot_id, release_seats) as its CTEs; its row holds the event's
    id and, with `release`, whether anyone waits in the line of the slot released (no row: the guard
    refused the event). Built once per shape a use case changes."""
    statement: Executable = _POSITIONED_EVENT
    if columns:
        changed = (update(_BOOKINGS).where(_BOOKINGS.c.id == _EVENT_BOOKING)
                   .values(_new_values(columns))
                   .returning(_BOOKINGS.c.id).cte("changed"))
        statement = _POSITIONED_EVENT.add_cte(changed)
    if not release:
        return statement
    slot_id = bindparam("release_slot_id", type_=Uuid)
    released = (update(_SLOTS).where(_SLOTS.c.id == slot_id)
                .values(seats_taken=_SLOTS.c.seats_taken - bindparam("release_seats", type_=Integer))
                .returning(line_waits(slot_id).label("waits")).cte("released"))
    event = cast(ReturningInsert[tuple[int]], statement).cte("event")
    return select(event.c.id, released.c.waits).select_from(event.join(released, true()))  # one row each


@functools.cache
def _cancel_as_read_statement(columns: tuple[str, ...], remember: bool) -> ReturningInsert[tuple[int]]:
    """`cancel_as_read`'s statement on PostgreSQL: the booking's update, guarded (parameters read_status,
    read_updated_at; no one waiting in the line of release_slot_id; no later event), and the seats'
    release, the request's key (with `remember`) and the event, each from the updated row: no row, no
    write. Returns the event's id."""
    booking_id, slot_id = _EVENT_BOOKING, bindparam("release_slot_id", type_=Uuid)
    position = _TRANSACTION_BASE + bindparam("ordinal", type_=BigInteger)
    changed = (update(_BOOKINGS)
               .where(_BOOKINGS.c.id == booking_id, _BOOKINGS.c.status == bindparam("read_status", type_=String),
                      _BOOKINGS.c.updated_at == bindparam("read_updated_at", type_=UtcDateTime), ~line_waits(slot_id),
                      ~exists().where(BookingEvent.booking_id == booking_id, BookingEvent.id > position))
               .values(_new_values(columns))
               .returning(_BOOKINGS.c.id).cte("changed"))
    released = (update(_SLOTS).where(_SLOTS.c.id == slot_id, exists().select_from(changed))
                .values(seats_taken=_SLOTS.c.seats_taken - bindparam("release_seats", type_=Integer))
                .returning(_SLOTS.c.id).cte("released"))
    statement = (insert(_EVENTS).from_select(_EVENT_COLUMNS, _event_row(position, changed.c.id))
                 .add_cte(released).returning(_EVENTS.c.id))
    if remember:
        statement = statement.add_cte(_key_of(changed.c.id).cte("new_key"))
    return statement


async def take_event_numbers(session: AsyncSession, count: int) -> int:
    """SQLite: takes the next `count` event numbers; returns the last. Under the sequence row (and
    SQLite's one writer), so the numbers become visible in order."""
    return int((await session.execute(
        update(EventSequence).where(EventSequence.id == 1).values(last_value=EventSequence.last_value + count)
        .returning(EventSequence.last_value))).scalar_one())


def _readable(session: AsyncSession) -> ColumnElement[bool]:
    return _readable_in(session.get_bind().dialect.name)


def _readable_in(dialect: str) -> ColumnElement[bool]:
    """Events a reader may pass: all on SQLite, those below every running transaction on PostgreSQL."""
    return BookingEvent.id < _READABLE_BELOW if dialect == "postgresql" else true()


async def last_event_id(session: AsyncSession) -> int:
    """The last event a reader may pass now (0 if none): a stream starting here misses nothing later."""
    return int((await session.execute(
        select(func.coalesce(func.max(BookingEvent.id), 0)).where(_readable(session)))).scalar_one())


async def events_after(session: AsyncSession, caller: Principal, after: int,
                       limit: int = 200) -> list[tuple[BookingEvent, Booking]]:
    query = (select(BookingEvent, Booking).join(Booking, Booking.id == BookingEvent.booking_id)
             .where(BookingEvent.id > after, _readable(session)).order_by(BookingEvent.id).limit(limit))
    if caller.role is Role.PROVIDER:
        query = query.where(or_(BookingEvent.customer_id == caller.user_id,
                                BookingEvent.provider_id == caller.user_id))
    elif caller.role is not Role.ADMIN:
        query = query.where(BookingEvent.customer_id == caller.user_id)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


# --- sweeping --------------------------------------------------------------------------------


async def expired_approvals(session: AsyncSession, now: datetime, limit: int = 100) -> list[uuid.UUID]:
    return list((await session.execute(
        select(Booking.id).where(Booking.status == "pending", Booking.approval_deadline <= now)
        .order_by(Booking.approval_deadline).limit(limit))).scalars())
