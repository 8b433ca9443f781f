"""User management for admins: list, read, change roles, disable and enable."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import Clock
from foothills_rpc.db import accounts as repo
from foothills_rpc.db import audit
from foothills_rpc.db import catalog as catalog_repo
from foothills_rpc.db.changes import CATALOG, notify
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import User
from foothills_rpc.domain.errors import InvalidArgument
from foothills_rpc.domain.principal import Principal
from foothills_rpc.notifications import notices
from foothills_rpc.security.page_tokens import PageTokens, instant_and_id

MAX_QUERY_LENGTH = 100
MAX_REASON_LENGTH = 500


class UserAdmin:
    def __init__(self, *, db: Database, clock: Clock, page_tokens: PageTokens,
                 catalog_changed: Callable[[], None] = lambda: None,
                 sessions_changed: Callable[[uuid.UUID], None] = lambda _user_id: None) -> None:
        self._db = db
        self._clock = clock
        self._page_tokens = page_tokens
        # This process's caches forget at once: the catalog (a provider's services suspended or resumed)
        # and the user's sessions (their role, or their end).
        self._catalog_changed = catalog_changed
        self._sessions_changed = sessions_changed

    async def list(self, filters: repo.UserFilter, *, requested_size: int, token: str) -> tuple[list[User], str]:
        if len(filters.query) > MAX_QUERY_LENGTH:
            raise InvalidArgument.single("query", f"must be at most {MAX_QUERY_LENGTH} characters")
        return await self._page_tokens.page(
            token, filters, requested_size, parse=instant_and_id,
            fetch=lambda after, n: self._db.run(lambda s: repo.list_users(s, filters=filters, after=after, limit=n)),
            key_of=lambda user: [user.created_at.isoformat(), str(user.id)])

    async def get(self, user_id: uuid.UUID) -> User:
        return await self._db.run(lambda s: repo.user_by_id(s, user_id))

    async def set_role(self, actor: Principal | None, user_id: uuid.UUID, role: repo.Role) -> User:
        """`actor` None: a set-up step outside the API (the command line, tests), not audited."""
        now = self._clock.now()

        async def apply(session: AsyncSession) -> User:
            if role is not repo.Role.ADMIN:
                await repo.ensure_other_active_admin(session, user_id=user_id)
            user = await repo.user_by_id(session, user_id, for_update=True)
            if user.role != role.value:
                if actor is not None:
                    audit.record(session, actor_id=actor.user_id, action="SetUserRole", target=f"users/{user.id.hex}",
                                 before={"role": user.role}, after={"role": role.value}, now=now)
                    await notices.notify(session, user, notices.ROLE_CHANGED,
                                         {"role": role.value, "previous_role": user.role, "changed": now,
                                          "account": user.email}, key=f"role-{uuid.uuid4().hex}", now=now)
                user.role = role.value
                user.updated_at = now
                await repo.sessions_changed(session, user.id)
            return user

        try:
            return await self._db.run(apply)
        finally:
            self._catalog_changed()
            self._sessions_changed(user_id)

    async def set_disabled(self, actor: Principal | None, user_id: uuid.UUID, disabled: bool,
                           reason: str = "") -> User:
        """`actor` None: a set-up step outside the API (tests), not audited."""
        if len(reason) > MAX_REASON_LENGTH:
            raise InvalidArgument.single("reason", f"must be at most {MAX_REASON_LENGTH} characters")
        now = self._clock.now()

        async def apply(session: AsyncSession) -> User:
            if disabled:
                await repo.ensure_other_active_admin(session, user_id=user_id)
            user = await repo.user_by_id(session, user_id, for_update=True)
            was_disabled = user.disabled
            if user.disabled != disabled:
                if actor is not None:
                    audit.record(session, actor_id=actor.user_id, action="DisableUser" if disabled else "EnableUser",
                                 target=f"users/{user.id.hex}", before={"disabled": user.disabled},
                                 after={"disabled": disabled}, reason=reason, now=now)
                    told = notices.ACCOUNT_DISABLED if disabled else notices.ACCOUNT_ENABLED
                    await notices.notify(session, user, told, {"reason": reason, "changed": now, "account": user.email},
                                         key=f"access-{uuid.uuid4().hex}", now=now)
                user.disabled = disabled
                user.disabled_reason = reason if disabled else ""
                user.updated_at = now
                # A disabled provider's services stop taking bookings at once, in every process.
                if await catalog_repo.suspend_services_of(session, user.id, suspended=disabled, now=now):
                    await notify(session, CATALOG)
            if disabled:
                await repo.revoke_sessions(session, user_id=user_id, now=now, reason="user_disabled")
            elif was_disabled:
                # Re-enabling must not bring any session back: they sign in anew. That includes one a
                # sign-in started after reading the account as enabled but committed after the disable.
                await repo.revoke_sessions(session, user_id=user_id, now=now, reason="user_enabled")
            return user

        try:
            return await self._db.run(apply)
        finally:
            self._catalog_changed()  # a provider's services suspended or resumed: not one notification late
            self._sessions_changed(user_id)
