"""Reminders: rows due at a time, planned from the booking events and claimed once across processes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from foothills_rpc.db.database import insert_on_conflict
from foothills_rpc.db.models import Booking, Reminder, Service, User, table_of

_REMINDERS = table_of(Reminder)


@dataclass(frozen=True)
class Plan:
    """A reminder `offset` before `start` of the booking for each of `offsets` still ahead of `after`."""

    booking_id: uuid.UUID
    start: datetime
    offsets: Iterable[timedelta]
    after: datetime


async def plan(session: AsyncSession, plans: Iterable[Plan]) -> None:
    """Plans the reminders of `plans` in one statement; one planned before (same booking, start and
    offset) stays as it is."""
    rows = [{"id": uuid.uuid4(), "booking_id": p.booking_id, "start_at": p.start,
             "offset_seconds": int(offset.total_seconds()), "due_at": p.start - offset, "sent_at": None}
            for p in plans for offset in p.offsets if p.start - offset > p.after]
    if rows:
        await session.execute(insert_on_conflict(session, _REMINDERS).on_conflict_do_nothing(
            index_elements=["booking_id", "start_at", "offset_seconds"]), rows)


@dataclass(frozen=True)
class Due:
    reminder: Reminder
    booking: Booking
    customer: User
    provider: User
    service: Service


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[Due]:
    """Up to `limit` reminders due by `now`, locked for this transaction (others skip them)."""
    ids = list((await session.execute(_CLAIM_DUE, {"now": now, "limit": limit})).scalars())
    if not ids:
        return []
    return [Due(*row) for row in (await session.execute(_DUE_WITH_BOOKINGS, {"ids": ids})).all()]


# send-mail asks on every pass (usually finding none): built once, not per pass.
_CLAIM_DUE = (select(Reminder.id).where(Reminder.sent_at.is_(None), Reminder.due_at <= bindparam("now"))
              .order_by(Reminder.due_at).limit(bindparam("limit")).with_for_update(skip_locked=True))
_customer, _provider = aliased(User), aliased(User)
_DUE_WITH_BOOKINGS = (
    select(Reminder, Booking, _customer, _provider, Service).where(Reminder.id.in_(bindparam("ids", expanding=True)))
    .join(Booking, Booking.id == Reminder.booking_id).join(_customer, _customer.id == Booking.customer_id)
    .join(_provider, _provider.id == Booking.provider_id).join(Service, Service.id == Booking.service_id)
    .order_by(Reminder.due_at))


async def due(session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
    """How many reminders are due and unsent, and when the oldest fell due."""
    row = (await session.execute(select(func.count(), func.min(Reminder.due_at))
                                 .where(Reminder.sent_at.is_(None), Reminder.due_at <= now))).one()
    return int(row[0]), row[1]


async def mark_sent(session: AsyncSession, reminder_ids: Collection[uuid.UUID], now: datetime) -> None:
    if reminder_ids:
        await session.execute(update(Reminder).where(Reminder.id.in_(reminder_ids)).values(sent_at=now))


async def drop(session: AsyncSession, reminder_ids: Collection[uuid.UUID]) -> None:
    """Reminders that no longer apply (the booking was cancelled or moved since they were planned)."""
    if reminder_ids:
        await session.execute(delete(Reminder).where(Reminder.id.in_(reminder_ids)))
