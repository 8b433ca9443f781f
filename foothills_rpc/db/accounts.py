"""Data access for users, sessions, refresh and reset tokens, the login throttle and rate limits.

Functions take the caller's AsyncSession and never commit: `Database.run` owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from foothills_rpc.db.changes import SESSIONS, notify
from foothills_rpc.db.database import UNIQUE_VIOLATION, Database, insert_on_conflict, sqlstate
from foothills_rpc.db.models import (
    AuthSession,
    LoginThrottle,
    PasswordReset,
    RateLimit,
    RefreshToken,
    User,
    UtcDateTime,
    table_of,
)
from foothills_rpc.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from foothills_rpc.domain.users import Role


async def insert_user(
    session: AsyncSession, *, email: str, password_hash: str, display_name: str, role: Role, now: datetime
) -> User:
    user = User(
        id=uuid.uuid4(), email=email, password_hash=password_hash, display_name=display_name,
        phone="", time_zone="", role=role.value, disabled=False, disabled_reason="",
        created_at=now, updated_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except DBAPIError as exc:
        if sqlstate(exc) == UNIQUE_VIOLATION:
            raise AlreadyExists("an account with this email already exists", reason="EMAIL_TAKEN") from exc
        raise
    return user


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def enabled_admins(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).where(User.role == "admin", User.disabled.is_(False))
                                       .order_by(User.created_at))).scalars())


async def user_by_id(session: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False) -> User:
    """Like `catalog.service_by_id`: a plain read reuses the row this transaction already loaded."""
    user = await session.get(User, user_id, with_for_update=for_update, populate_existing=for_update)
    if user is None:
        raise NotFound("no such user", reason="USER_NOT_FOUND")
    return user


# --- sessions and refresh tokens -------------------------------------------------------------


async def start_session(
    session: AsyncSession, *, user_id: uuid.UUID, now: datetime, ttl: timedelta
) -> AuthSession:
    auth_session = AuthSession(
        id=uuid.uuid4(), user_id=user_id, created_at=now, expires_at=now + ttl, revoke_reason=""
    )
    session.add(auth_session)
    await session.flush()
    return auth_session


async def add_refresh_token(
    session: AsyncSession, *, session_id: uuid.UUID, token_hash: str, now: datetime, expires_at: datetime
) -> None:
    session.add(RefreshToken(token_hash=token_hash, session_id=session_id, created_at=now,
                             expires_at=expires_at))
    await session.flush()


@dataclass(frozen=True)
class Rotation:
    """What happened to a refresh token offered for rotation."""

    session_id: uuid.UUID | None  # set when the token was valid and is now used up
    reused: bool = False  # the token had been rotated before: treat as stolen


async def use_refresh_token(session: AsyncSession, *, token_hash: str, now: datetime) -> Rotation:
    """Marks the token used, once: of two concurrent calls with one token, one wins."""
    used = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None),
               RefreshToken.expires_at > now)
        .values(used_at=now)
        .returning(RefreshToken.session_id)
    )
    session_id = used.scalar_one_or_none()
    if session_id is not None:
        return Rotation(session_id=session_id)
    known = (await session.execute(
        select(RefreshToken.session_id, RefreshToken.used_at).where(RefreshToken.token_hash == token_hash)
    )).one_or_none()
    if known is not None and known.used_at is not None:
        return Rotation(session_id=known.session_id, reused=True)
    return Rotation(session_id=None)


@dataclass(frozen=True)
class SessionOwner:
    user_id: uuid.UUID
    role: Role
    email: str
    expires_at: datetime  # the session's


# Built once, not per call: this runs on every signed-in call, and building and hashing the statement
# cost the server more CPU than running it (about 0.35 of 0.94 ms).
_SESSION_OWNER = (
    select(User.id, User.role, User.email, AuthSession.expires_at)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(AuthSession.id == bindparam("session_id"), AuthSession.revoked_at.is_(None),
           AuthSession.expires_at > bindparam("now"), User.disabled.is_(False))
)
_SESSION_OWNER_OF_USER = _SESSION_OWNER.where(User.id == bindparam("user_id"))


async def active_session_owner(session: AsyncSession, *, session_id: uuid.UUID, now: datetime) -> SessionOwner | None:
    """The owner of a live session (not revoked, not expired, user enabled), else None."""
    return _owner((await session.execute(_SESSION_OWNER, {"session_id": session_id, "now": now})).one_or_none())


async def caller_of(db: Database, *, session_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> SessionOwner | None:
    """`active_session_owner` for a signed-in call, whose token names `user_id` (through the session
    cache, db/session_cache.py). One primary-key join, on a bare connection (`Database.read_row`:
    psycopg runs it on PostgreSQL)."""
    return _owner(await db.read_row(_SESSION_OWNER_OF_USER, {"session_id": session_id, "user_id": user_id,
                                                             "now": now}))


def _owner(row: Sequence[Any] | None) -> SessionOwner | None:
    return None if row is None else SessionOwner(user_id=row[0], role=Role(row[1]), email=row[2], expires_at=row[3])


async def revoke_sessions(
    session: AsyncSession, *, now: datetime, reason: str, user_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None, keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revokes one session (`session_id`) or every session of `user_id` except `keep`; returns the users
    whose sessions ended, which every process is told of at the commit (`sessions_changed`)."""
    conditions: list[ColumnElement[bool]] = [AuthSession.revoked_at.is_(None)]
    if session_id is not None:
        conditions.append(AuthSession.id == session_id)
    if user_id is not None:
        conditions.append(AuthSession.user_id == user_id)
    if keep is not None:
        conditions.append(AuthSession.id != keep)
    ended = sorted(set((await session.execute(update(AuthSession).where(*conditions).values(
        revoked_at=now, revoke_reason=reason).returning(AuthSession.user_id))).scalars()))
    for owner in ended:
        await sessions_changed(session, owner)
    return ended


async def sessions_changed(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Tells every server process, when this transaction commits, to forget the user's cached sessions
    (db/session_cache.py). The process that commits forgets them itself, at once."""
    await notify(session, SESSIONS, user_id.hex)


# --- password resets -------------------------------------------------------------------------


async def add_password_reset(
    session: AsyncSession, *, user_id: uuid.UUID, token_hash: str, now: datetime, expires_at: datetime
) -> None:
    session.add(PasswordReset(token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at))
    await session.flush()


async def use_password_reset(session: AsyncSession, *, token_hash: str, now: datetime) -> uuid.UUID | None:
    """Consumes a reset token once; the user it was for, or None when unknown, used or expired."""
    result = await session.execute(
        update(PasswordReset)
        .where(PasswordReset.token_hash == token_hash, PasswordReset.used_at.is_(None),
               PasswordReset.expires_at > now)
        .values(used_at=now)
        .returning(PasswordReset.user_id)
    )
    return result.scalar_one_or_none()


# --- login throttle --------------------------------------------------------------------------


async def login_locked_until(session: AsyncSession, *, email: str, now: datetime) -> datetime | None:
    row = await session.get(LoginThrottle, email)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


async def record_login_failure(
    session: AsyncSession, *, email: str, now: datetime, window: timedelta, max_failures: int,
    lockout: timedelta,
) -> None:
    """Counts one failure in one atomic upsert, so concurrent failures on many processes all count."""
    table = table_of(LoginThrottle)
    window_open = table.c.window_started_at > now - window
    failures = func.coalesce(table.c.failures, 0)
    next_failures = case((window_open, failures + 1), else_=1)
    statement = insert_on_conflict(session, table).values(email=email, failures=1, window_started_at=now,
                                                          locked_until=None).on_conflict_do_update(
        index_elements=[table.c.email],
        set_={
            "failures": next_failures,
            "window_started_at": case((window_open, table.c.window_started_at), else_=at(now)),
            "locked_until": case((next_failures >= max_failures, at(now + lockout)),
                                 else_=table.c.locked_until),
        },
    )
    await session.execute(statement)


def at(instant: datetime):  # type: ignore[no-untyped-def]
    """A timestamp literal stored like the columns (UTC) on both databases."""
    return literal(instant, UtcDateTime())


async def clear_login_failures(session: AsyncSession, *, email: str) -> None:
    row = await session.get(LoginThrottle, email)
    if row is not None:
        await session.delete(row)


# --- rate limits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hits:
    count: int
    window_started_at: datetime


async def hit_rate_limit(session: AsyncSession, *, scope: str, key: str, now: datetime, window: timedelta) -> Hits:
    """Counts one call in one atomic upsert (a fresh window once the old one has passed) and returns the
    count so far, so concurrent calls on many processes are all counted and each sees its own number."""
    table = table_of(RateLimit)
    window_open = table.c.window_started_at > now - window
    upsert = insert_on_conflict(session, table).values(
        scope=scope, key=key, hits=1, window_started_at=now).on_conflict_do_update(
        index_elements=[table.c.scope, table.c.key],
        set_={
            "hits": case((window_open, table.c.hits + 1), else_=1),
            "window_started_at": case((window_open, table.c.window_started_at), else_=at(now)),
        },
    )
    row = (await session.execute(upsert.returning(table.c.hits, table.c.window_started_at))).one()
    return Hits(count=row.hits, window_started_at=row.window_started_at)


# --- admin: listing and changing users -------------------------------------------------------


@dataclass(frozen=True)
class UserFilter:
    query: str = ""
    role: Role | None = None
    disabled: bool | None = None


async def list_users(
    session: AsyncSession, *, filters: UserFilter, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[User]:
    """Oldest first, keyset-paginated on (created_at, id) so pages stay stable while rows are added."""
    query = select(User).order_by(User.created_at, User.id).limit(limit)
    if filters.query:
        pattern = "%" + filters.query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(User.email.like(pattern, escape="\\"),
                                func.lower(User.display_name).like(pattern, escape="\\")))
    if filters.role is not None:
        query = query.where(User.role == filters.role.value)
    if filters.disabled is not None:
        query = query.where(User.disabled.is_(filters.disabled))
    if after is not None:
        created_at, user_id = after
        query = query.where(or_(User.created_at > created_at,
                                and_(User.created_at == created_at, User.id > user_id)))
    return list((await session.execute(query)).scalars())


async def ensure_other_active_admin(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Refuses a change that would leave no active admin.

    Locks every active admin row first (FOR UPDATE on PostgreSQL; SQLite writers are already
    serialised by BEGIN IMMEDIATE), so two admins demoting each other at once cannot both win.
    """
    admins = (await session.execute(
        select(User.id).where(User.role == Role.ADMIN.value, User.disabled.is_(False))
        .order_by(User.id).with_for_update()
    )).scalars().all()
    if user_id in admins and len(admins) <= 1:
        raise FailedPrecondition("the platform must keep at least one active admin", reason="LAST_ADMIN")
