"""Tables. Invariants that must hold across server processes are constraints here."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    and_,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from foothills_rpc.domain.bookings import ACTIVE, Status
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.support import SupportStatus
from foothills_rpc.domain.waitlist import EntryStatus

# Stable constraint names, so migrations and error translation can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; stored as timestamptz on PostgreSQL, naive UTC on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def status_check(states: type[enum.StrEnum]) -> CheckConstraint:
    """The `status` column's check constraint, from the state enum: the database refuses any other value.
    (Same SQL as the migrations wrote, value for value, so no migration follows from it.)"""
    values = ", ".join(f"'{state.value}'" for state in states)
    return CheckConstraint(f"status IN ({values})", name="status")


def table_of(model: type[Base]) -> Table:
    """A model's Core table: for upserts, bulk loads, and hot-path inserts that need none of the ORM's
    per-statement work (identity map, unit of work)."""
    return cast(Table, model.__table__)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('customer', 'provider', 'admin')", name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Normalised (trimmed, lower-cased) before it gets here, so uniqueness holds across case.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(16), default="")
    time_zone: Mapped[str] = mapped_column(String(64), default="")
    # BCP 47 tag the user's mail is formatted for (dates, money); templates are in English.
    locale: Mapped[str] = mapped_column(String(35), default="en")
    # Off: no reminders / no notices other than the terms of their own bookings and security.
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    notices_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    role: Mapped[str] = mapped_column(String(16), default="customer", index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


Index("ix_users_created_at_id", User.created_at, User.id)


class AuthSession(Base):
    """One sign-in; also the family of its rotating refresh tokens."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoke_reason: Mapped[str] = mapped_column(String(32), default="")


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set once, by the conditional update that rotates it: a second use is theft.
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class PasswordReset(Base):
    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class LoginThrottle(Base):
    """Failed sign-ins per normalised email, whether or not an account has it."""

    __tablename__ = "login_throttle"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class RateLimit(Base):
    """Calls counted per (scope, key) in a fixed window: registrations per client address, password
    resets per email. Counted in the database so every server process sees the same count."""

    __tablename__ = "rate_limits"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxMessage(Base):
    """A mail to send, written in the same transaction as the change it reports."""

    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Due for a (next) attempt from this instant; a claim pushes it forward by the lease.
    available_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Set when delivery was given up (the recipient refused for good, or the mail grew too old).
    abandoned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    html: Mapped[str] = mapped_column(Text, default="")  # the HTML alternative of `body`, or empty
    calendar: Mapped[str] = mapped_column(Text, default="")  # an iCalendar attachment, or empty
    # (event, kind, recipient) of a notification: the outbox holds each once. Empty for one-off mail.
    notice_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)


# The mail still to send, in the order the dispatcher claims it (migration 0018): as small as the backlog.
_UNSENT = and_(OutboxMessage.sent_at.is_(None), OutboxMessage.abandoned_at.is_(None))
Index("ix_outbox_due", OutboxMessage.available_at, postgresql_where=_UNSENT, sqlite_where=_UNSENT)


class Reminder(Base):
    """A reminder of a booking due at a time; planned from its events, claimed and sent once."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("booking_id", "start_at", "offset_seconds"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"))
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the booking's start it was planned for
    offset_seconds: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


Index("ix_reminders_due", Reminder.sent_at, Reminder.due_at)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    display_name: Mapped[str] = mapped_column(String(80))
    # Lower-cased display name: uniqueness that ignores case, the same on both databases.
    name_key: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("duration_minutes >= 1", name="duration_positive"),
        CheckConstraint("base_price_minor >= 0", name="price_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    display_name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    # Lower-cased "name description": what free-text search matches (trigram-indexed on PostgreSQL).
    search_text: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"), index=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    base_price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64))
    # NULL: the platform default from configuration applies.
    minimum_notice_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    maximum_days_ahead: Mapped[int | None] = mapped_column(Integer, nullable=True)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    # NULL: holds last the platform default (5 minutes).
    hold_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Limits; NULL: none.
    max_bookings_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_bookings_per_week: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_bookings_per_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_reschedules: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_reschedule_distance_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # NULL: waitlist offers last the platform default (15 minutes).
    waitlist_offer_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    runs_without_provider: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seconds before the start customers are reminded, longest first; NULL: the platform's default.
    reminder_seconds: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    cancellation_policy: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pricing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    availability: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # True while the provider is disabled (set in the same transaction): the service takes no bookings
    # or holds and shows no free slots, without the hot path reading the provider's row.
    suspended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Bumped by every change; the etag is derived from it (optimistic concurrency).
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


Index("ix_services_display_name_id", Service.display_name, Service.id)
Index("ix_services_price_id", Service.base_price_minor, Service.id)


class Slot(Base):
    """One bookable start of a service, materialised up to the booking horizon.

    The row the booking path locks: `seats_taken` only changes through a conditional update that
    keeps it within `capacity`, so capacity holds across server processes.
    """

    __tablename__ = "slots"
    __table_args__ = (
        UniqueConstraint("service_id", "start_at", name="uq_slots_service_start"),
        CheckConstraint("seats_taken >= 0", name="seats_taken_not_negative"),
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    # False when availability changed and the slot is no longer on the grid but still has bookings.
    offered: Mapped[bool] = mapped_column(Boolean, default=True)


# Leads with start_at like a plain index would; the rest lets report sums of offered seats read only it.
Index("ix_slots_start_offered", Slot.start_at, Slot.offered, Slot.capacity, Slot.service_id)


# In the order of the enum: the active statuses are compiled into hot statements as literals.
ACTIVE_STATUSES = tuple(status.value for status in Status if status in ACTIVE)


class Booking(Base):
    """Seats of one slot held by one customer.

    On PostgreSQL, exclusion constraints (created by the migration) keep a customer's active
    bookings, and a provider's active bookings of services that take their time, from overlapping.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        status_check(Status),
        CheckConstraint("seats >= 1", name="seats_positive"),
        CheckConstraint("end_at > start_at", name="ends_after_start"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"), index=True)
    slot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slots.id"), index=True)
    # Indexed first in ix_bookings_customer_created (an index of its own would only cost every write).
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    provider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    # False for services that run without the provider's own time (they may overlap).
    uses_provider_time: Mapped[bool] = mapped_column(Boolean)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime)
    seats: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    total_price_minor: Mapped[int] = mapped_column(BigInteger)
    # The quote as charged (base, adjustments): what the customer agreed to.
    price_breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The cancellation tiers in force when booked.
    cancellation_policy: Mapped[list[Any]] = mapped_column(JSON)
    cancellation_fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    reschedule_count: Mapped[int] = mapped_column(Integer, default=0)
    # Where it was first booked: how far it may be rescheduled is measured from here. NULL on
    # bookings made before this column existed and never moved since: their start.
    original_start_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # A pending booking not confirmed by then is cancelled (APPROVAL_EXPIRED): start minus notice.
    approval_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


Index("ix_bookings_customer_created", Booking.customer_id, Booking.created_at, Booking.id)
Index("ix_bookings_status_start", Booking.status, Booking.start_at)
Index("ix_bookings_customer_service_start", Booking.customer_id, Booking.service_id, Booking.start_at)
# The export's order (start, id); the other columns let every statistics query read only the index.
Index("ix_bookings_start_id", Booking.start_at, Booking.id, Booking.currency, Booking.status, Booking.seats,
      Booking.total_price_minor, Booking.cancellation_fee_minor, Booking.service_id, Booking.provider_id)




class Hold(Base):
    """Seats of one slot reserved for one customer until `expires_at`.

    An active hold has taken its seats in `slots.seats_taken` (the same conditional update as a
    booking). It leaves `active` exactly once, by a conditional update: used by a booking (which
    keeps the seats), released or expired (which give them back). An active hold past `expires_at`
    is already free: every reader and writer of the slot compares `expires_at` with the
    application's clock, and the writer claims it before counting seats.
    """

    __tablename__ = "holds"
    __table_args__ = (
        status_check(HoldStatus),
        CheckConstraint("seats >= 1", name="seats_positive"),
        # A retried HoldSlot finds its first hold, even when the two calls race.
        UniqueConstraint("customer_id", "request_id", name="uq_holds_customer_request"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"))
    slot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slots.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime)
    seats: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The locked quote, in the same form as a booking's.
    currency: Mapped[str] = mapped_column(String(3))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    total_price_minor: Mapped[int] = mapped_column(BigInteger)
    price_breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    booking_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bookings.id"), nullable=True)
    request_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# The sweeper's scan (active, oldest expiry first) and a slot's lapsed holds.
Index("ix_holds_status_expires", Hold.status, Hold.expires_at)
Index("ix_holds_slot_status", Hold.slot_id, Hold.status, Hold.expires_at)
Index("ix_holds_customer_status", Hold.customer_id, Hold.status)




class WaitlistEntry(Base):
    """A customer in line for seats of one slot; (slot, customer) is unique.

    Offers are made under the slot's row lock, in the transaction that frees the seats: the entry
    moves from waiting to offered with a hold (its seats taken like any hold), so a freed seat is
    offered once. The entry follows its hold: used -> booked, expired -> expired, released -> left.
    A waiting entry whose slot started, or whose service was archived, is closed by the sweep.
    """

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        status_check(EntryStatus),
        CheckConstraint("seats >= 1", name="seats_positive"),
        UniqueConstraint("slot_id", "customer_id", name="uq_waitlist_entries_slot_customer"),
        # One entry per offer.
        UniqueConstraint("hold_id", name="uq_waitlist_entries_hold"),
        # The line: 1, 2, 3... per slot, given under the slot's lock (a clock tick may hold many joins).
        UniqueConstraint("slot_id", "position", name="uq_waitlist_entries_slot_position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"))
    slot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slots.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    seats: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    hold_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("holds.id"), nullable=True)
    position: Mapped[int] = mapped_column(Integer)
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


Index("ix_waitlist_entries_line", WaitlistEntry.slot_id, WaitlistEntry.status, WaitlistEntry.position)
Index("ix_waitlist_entries_customer_joined", WaitlistEntry.customer_id, WaitlistEntry.joined_at, WaitlistEntry.id)


class IdempotencyKey(Base):
    """A retried mutation returns its first result: one row per (caller, method, request_id)."""

    __tablename__ = "idempotency_keys"

    caller_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Digest of the request's content: the same request_id with other content is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BulkRequest(Base):
    """A retried bulk mutation returns its first report: one row per (caller, method, request_id)."""

    __tablename__ = "bulk_requests"

    caller_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BookingEvent(Base):
    """A change of a booking, written in the same transaction; WatchBookings streams these."""

    __tablename__ = "booking_events"

    # The position in the stream (see record_change): on PostgreSQL from the transaction id, on SQLite
    # from event_sequence. A watcher that has passed N never later finds a smaller one committed.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), index=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What the booking was when this happened, for the mail composed later (db/bookings.py::record_change);
    # empty for the demo's seeded history, which is not mailed.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EventCursor(Base):
    """How far a consumer of the booking events has got (`mail`: the booking news composed)."""

    __tablename__ = "event_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)


class EventSequence(Base):
    """SQLite's event numbers (PostgreSQL positions events by transaction id)."""

    __tablename__ = "event_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger)




class SupportRequest(Base):
    """A user's request for help. (requester, request_id) is unique, so a retried create cannot
    open a second request even when the two calls race."""

    __tablename__ = "support_requests"
    __table_args__ = (
        status_check(SupportStatus),
        UniqueConstraint("requester_id", "request_id", name="uq_support_requests_requester_request"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    requester_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    subject: Mapped[str] = mapped_column(String(200))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bookings.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    request_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


Index("ix_support_requests_created_id", SupportRequest.created_at, SupportRequest.id)
Index("ix_support_requests_requester_created", SupportRequest.requester_id, SupportRequest.created_at)


class SupportMessage(Base):
    __tablename__ = "support_messages"
    __table_args__ = (UniqueConstraint("request_id", "position", name="uq_support_messages_request_position"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("support_requests.id"))
    # 1, 2, 3... within the request: the conversation's order, whatever the clock says.
    position: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    from_staff: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)




class AuditEvent(Base):
    """Who changed what, when, from what to what. Append-only: the migration adds triggers that make
    the database refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_events"

    # Increasing, so "newest first" is exact even for events within one clock tick.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any]] = mapped_column(JSON)
    after: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


Index("ix_audit_events_created_at", AuditEvent.created_at)
Index("ix_audit_events_actor_id", AuditEvent.actor_id, AuditEvent.id)
Index("ix_audit_events_target_id", AuditEvent.target, AuditEvent.id)
