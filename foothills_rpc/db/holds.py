"""Data access for slot holds.

A hold leaves `active` exactly once, through a conditional update (`claim`): whoever's update
matches the row (a booking using it, its holder releasing it, the sweeper or a writer of its slot
expiring it) owns the transition, and only an expiry or a release gives the seats back. Expiry is
compared with the application's clock, passed in as `now`, never with the database's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BindParameter, ColumnElement, and_, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db.database import UNIQUE_VIOLATION, sqlstate
from foothills_rpc.db.models import Booking, Hold
from foothills_rpc.db.visibility import visible_row
from foothills_rpc.domain.errors import Aborted, NotFound
from foothills_rpc.domain.holds import HoldStatus, may_become
from foothills_rpc.domain.pricing import Adjustment, Quote
from foothills_rpc.domain.principal import Principal

if TYPE_CHECKING:  # db.bookings imports this module
    from foothills_rpc.db.bookings import BookingLine


def quote_json(quote: Quote) -> dict[str, object]:
    """The stored form of a quote, on holds and bookings alike."""
    return {"base_unit_minor": quote.base_unit_minor, "unit_minor": quote.unit_minor, "seats": quote.seats,
            "total_minor": quote.total_minor, "currency": quote.currency,
            "adjustments": [[a.label, a.amount_minor] for a in quote.adjustments]}


def stored_quote(row: Hold | Booking | BookingLine) -> Quote:
    """The quote a hold or a booking locked, as it was priced: its breakdown, with the amounts and
    seats of its own columns."""
    data = row.price_breakdown
    return Quote(base_unit_minor=data["base_unit_minor"], unit_minor=row.unit_price_minor, seats=row.seats,
                 total_minor=row.total_price_minor, currency=row.currency,
                 adjustments=tuple(Adjustment(label, amount) for label, amount in data["adjustments"]))


async def hold_for(session: AsyncSession, caller: Principal, hold_id: uuid.UUID, *, for_update: bool = False,
                   admin_sees_all: bool = True) -> Hold:
    """The caller's hold (an admin's: any, unless `admin_sees_all` is false); NOT_FOUND otherwise."""
    return await visible_row(session, select(Hold).where(Hold.id == hold_id), owner=Hold.customer_id, caller=caller,
                             missing=NotFound("no such hold", reason="HOLD_NOT_FOUND"), for_update=for_update,
                             admin_sees_all=admin_sees_all)


async def hold_by_request(session: AsyncSession, customer_id: uuid.UUID, request_id: str) -> Hold | None:
    return (await session.execute(select(Hold).where(Hold.customer_id == customer_id,
                                                     Hold.request_id == request_id))).scalar_one_or_none()


async def flush_hold(session: AsyncSession) -> None:
    """Flushes a new hold; a concurrent HoldSlot with the same request_id makes it a retry."""
    try:
        await session.flush()
    except DBAPIError as exc:
        if sqlstate(exc) == UNIQUE_VIOLATION:
            raise Aborted("a concurrent call with the same request_id won") from exc
        raise


async def holds_slot(session: AsyncSession, customer_id: uuid.UUID, slot_id: uuid.UUID, now: datetime,
                     exclude: uuid.UUID) -> bool:
    """True if the customer has another unexpired active hold on the slot."""
    query = select(Hold.id).where(Hold.customer_id == customer_id, Hold.slot_id == slot_id,
                                  Hold.status == HoldStatus.ACTIVE.value, Hold.expires_at > now,
                                  Hold.id != exclude).limit(1)
    return (await session.execute(query)).scalar_one_or_none() is not None


async def claim(session: AsyncSession, hold_id: uuid.UUID, *, to: HoldStatus, now: datetime, unexpired: bool,
                booking_id: uuid.UUID | None = None) -> bool:
    """Moves an active hold to `to` if it is still active (and, with `unexpired`, not past its expiry;
    without it, past it when `to` is EXPIRED). True for the one caller whose update matched."""
    assert may_become(HoldStatus.ACTIVE, to), to
    query = update(Hold).where(Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE.value)
    if unexpired:
        query = query.where(Hold.expires_at > now)
    elif to is HoldStatus.EXPIRED:
        query = query.where(Hold.expires_at <= now)
    result = await session.execute(
        query.values(status=to.value, booking_id=booking_id, updated_at=now).returning(Hold.id)
        .execution_options(synchronize_session=False))
    return result.scalar_one_or_none() is not None


def lapsed(slot_id: uuid.UUID | BindParameter[uuid.UUID],
           now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """The slot's active holds past their expiry: their seats are free, waiting to be claimed (values, or
    bind parameters in a statement built once)."""
    return and_(Hold.slot_id == slot_id, Hold.status == HoldStatus.ACTIVE.value, Hold.expires_at <= now)


async def expire_lapsed(session: AsyncSession, slot_id: uuid.UUID, now: datetime) -> tuple[list[uuid.UUID], int]:
    """Expires the slot's active holds past their expiry; returns their ids and their seats, which the
    caller gives back (`usecases.waitlist.release_and_offer`)."""
    rows = (await session.execute(
        update(Hold).where(lapsed(slot_id, now))
        .values(status=HoldStatus.EXPIRED.value, updated_at=now).returning(Hold.id, Hold.seats)
        .execution_options(synchronize_session=False))).all()
    return [row[0] for row in rows], sum(row[1] for row in rows)


async def count_customer_holds(session: AsyncSession, *, customer_id: uuid.UUID, service_id: uuid.UUID,
                               start: datetime, end: datetime, now: datetime, exclude: uuid.UUID | None) -> int:
    """The customer's unexpired active holds of the service starting in [start, end), but `exclude`."""
    query = select(func.count()).select_from(Hold).where(
        Hold.customer_id == customer_id, Hold.service_id == service_id, Hold.status == HoldStatus.ACTIVE.value,
        Hold.expires_at > now, Hold.start_at >= start, Hold.start_at < end)
    if exclude is not None:
        query = query.where(Hold.id != exclude)
    return int((await session.execute(query)).scalar_one())


async def lapsed_holds(session: AsyncSession, now: datetime, limit: int = 100) -> list[uuid.UUID]:
    return list((await session.execute(
        select(Hold.id).where(Hold.status == HoldStatus.ACTIVE.value, Hold.expires_at <= now)
        .order_by(Hold.expires_at).limit(limit))).scalars())
