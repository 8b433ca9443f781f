"""The audit log: who changed what, when, from what to what.

Use cases call `record` inside the transaction of the change itself, so an audit event exists exactly
when its change does. The table is append-only in the database (triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db.models import AuditEvent


def plain(value: Any) -> Any:
    """A JSON-safe copy: durations in seconds, instants in ISO 8601, ids as hex, enums by value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, enum.Enum):
        return plain(value.value)
    return value


def record(session: AsyncSession, *, actor_id: uuid.UUID, action: str, target: str, now: datetime,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, reason: str = "") -> None:
    """Adds an audit event with only the fields that differ between `before` and `after`."""
    old, new = plain(before or {}), plain(after or {})
    changed = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
    session.add(AuditEvent(actor_id=actor_id, action=action, target=target,
                           before={k: old[k] for k in changed if k in old},
                           after={k: new[k] for k in changed if k in new}, reason=reason, created_at=now))


@dataclass(frozen=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    target: str = ""
    start: datetime | None = None
    end: datetime | None = None


async def list_events(session: AsyncSession, filters: AuditFilter, *, after: int | None,
                      limit: int) -> list[AuditEvent]:
    """Newest first, keyset-paged on the increasing id."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if filters.actor_id is not None:
        query = query.where(AuditEvent.actor_id == filters.actor_id)
    if filters.target:
        query = query.where(AuditEvent.target == filters.target)
    if filters.start is not None:
        query = query.where(AuditEvent.created_at >= filters.start)
    if filters.end is not None:
        query = query.where(AuditEvent.created_at < filters.end)
    if after is not None:
        query = query.where(AuditEvent.id < after)
    return list((await session.execute(query)).scalars())
