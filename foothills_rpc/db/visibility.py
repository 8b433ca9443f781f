"""One rule for rows that belong to a customer (holds, waitlist entries, support requests): the owner
sees them, an admin sees all, and anyone else gets NOT_FOUND, so that existence does not leak."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from foothills_rpc.domain.errors import NotFound
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.users import Role

T = TypeVar("T")


async def visible_row(session: AsyncSession, query: Select[T], *, owner: InstrumentedAttribute[uuid.UUID],
                      caller: Principal, missing: NotFound, for_update: bool = False,
                      admin_sees_all: bool = True) -> T:
    """The one row `query` selects if `caller` may see it (`owner` is the caller, or the caller is an
    admin and `admin_sees_all`); raises `missing` otherwise."""
    if caller.role is not Role.ADMIN or not admin_sees_all:
        query = query.where(owner == caller.user_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise missing
    return row
