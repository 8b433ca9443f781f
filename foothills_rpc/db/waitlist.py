"""Data access for waitlist entries. Offers are made by `usecases/waitlist.py` under the slot's row lock."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Exists, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db.models import Hold, Service, WaitlistEntry
from foothills_rpc.db.visibility import visible_row
from foothills_rpc.domain.errors import NotFound
from foothills_rpc.domain.holds import HoldStatus
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.users import Role
from foothills_rpc.domain.waitlist import FOLLOWS_HOLD, EntryStatus


async def entry_for(session: AsyncSession, caller: Principal, entry_id: uuid.UUID, *,
                    for_update: bool = False) -> WaitlistEntry:
    return await visible_row(session, select(WaitlistEntry).where(WaitlistEntry.id == entry_id),
                             owner=WaitlistEntry.customer_id, caller=caller, for_update=for_update,
                             missing=NotFound("no such waitlist entry", reason="WAITLIST_ENTRY_NOT_FOUND"))


async def entry_of(session: AsyncSession, slot_id: uuid.UUID, customer_id: uuid.UUID) -> WaitlistEntry | None:
    return (await session.execute(select(WaitlistEntry).where(
        WaitlistEntry.slot_id == slot_id, WaitlistEntry.customer_id == customer_id))).scalar_one_or_none()


async def waiting_line(session: AsyncSession, slot_id: uuid.UUID) -> list[WaitlistEntry]:
    """The slot's waiting entries in line order, locked (the caller holds the slot's lock too)."""
    return list((await session.execute(_WAITING_LINE, {"slot_id": slot_id})).scalars())


async def someone_waits(session: AsyncSession, slot_id: uuid.UUID) -> bool:
    """Whether the slot's line has anyone waiting (one index probe, nothing locked or loaded)."""
    return bool((await session.execute(_SOMEONE_WAITS, {"slot_id": slot_id})).scalar())


def line_waits(slot_id: ColumnElement[uuid.UUID]) -> Exists:
    """Whether anyone waits in the line of the slot `slot_id`. Pass a value, not a column: SQLite's
    RETURNING names columns without their table, so a correlated subquery there would compare the
    line's own columns."""
    return exists().where(_waiting(slot_id))


def _waiting(slot_id: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    return and_(WaitlistEntry.slot_id == slot_id, WaitlistEntry.status == EntryStatus.WAITING.value)


# Built once: every cancellation looks at its slot's line.
_WAITING_LINE = (select(WaitlistEntry).where(_waiting(bindparam("slot_id"))).order_by(WaitlistEntry.position)
                 .with_for_update())
_SOMEONE_WAITS = select(line_waits(bindparam("slot_id")))


async def next_position(session: AsyncSession, slot_id: uuid.UUID) -> int:
    """The back of the slot's line; the caller holds the slot's lock, so no one else takes it."""
    last = (await session.execute(select(func.max(WaitlistEntry.position))
                                  .where(WaitlistEntry.slot_id == slot_id))).scalar_one()
    return int(last or 0) + 1


async def follow_hold(session: AsyncSession, hold_id: uuid.UUID, hold_status: HoldStatus, now: datetime) -> None:
    """The offered entry whose hold just ended follows it (booked, expired or left)."""
    await session.execute(
        update(WaitlistEntry).where(WaitlistEntry.hold_id == hold_id, WaitlistEntry.status == EntryStatus.OFFERED.value)
        .values(status=FOLLOWS_HOLD[hold_status].value, updated_at=now).execution_options(synchronize_session="fetch"))


async def close_stale(session: AsyncSession, now: datetime) -> int:
    """Ends the line of slots that started, and of archived services: their waiting entries can never
    get an offer (offer_freed skips them), so they are closed rather than left waiting for ever."""
    result = await session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.status == EntryStatus.WAITING.value,
               or_(WaitlistEntry.start_at <= now,
                   WaitlistEntry.service_id.in_(select(Service.id).where(Service.archived.is_(True)))))
        .values(status=EntryStatus.CLOSED.value, updated_at=now).returning(WaitlistEntry.id)
        .execution_options(synchronize_session=False))
    return len(result.all())


async def slots_with_waiting(session: AsyncSession, service_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await session.execute(
        select(WaitlistEntry.slot_id).where(WaitlistEntry.service_id == service_id,
                                            WaitlistEntry.status == EntryStatus.WAITING.value)
        .distinct().order_by(WaitlistEntry.slot_id))).scalars())


async def offer_expiry(session: AsyncSession, entry: WaitlistEntry) -> datetime | None:
    if entry.hold_id is None:
        return None
    return (await session.execute(select(Hold.expires_at).where(Hold.id == entry.hold_id))).scalar_one()


async def list_entries(session: AsyncSession, caller: Principal, service_id: uuid.UUID | None, *,
                       after: tuple[datetime, uuid.UUID] | None,
                       limit: int) -> list[tuple[WaitlistEntry, datetime | None]]:
    query = select(WaitlistEntry, Hold.expires_at).outerjoin(Hold, Hold.id == WaitlistEntry.hold_id)
    if caller.role is not Role.ADMIN:
        query = query.where(WaitlistEntry.customer_id == caller.user_id)
    if service_id is not None:
        query = query.where(WaitlistEntry.service_id == service_id)
    if after is not None:
        at, last = after
        query = query.where(or_(WaitlistEntry.joined_at < at,
                                and_(WaitlistEntry.joined_at == at, WaitlistEntry.id < last)))
    query = query.order_by(WaitlistEntry.joined_at.desc(), WaitlistEntry.id.desc()).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


def page_key(entry: WaitlistEntry) -> list[Any]:
    return [entry.joined_at.isoformat(), str(entry.id)]
