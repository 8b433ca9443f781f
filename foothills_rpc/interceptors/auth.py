"""Authentication and authorization of every call, from the policy table.

The verified caller is kept in a context variable for the duration of the call; servicers read it
with `principal()`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence

from foothills_rpc.clock import Clock
from foothills_rpc.db import accounts as repo
from foothills_rpc.db.database import Database
from foothills_rpc.db.session_cache import SessionCache
from foothills_rpc.domain.errors import PermissionDenied, Unauthenticated
from foothills_rpc.domain.principal import Principal
from foothills_rpc.policy import access_for
from foothills_rpc.security.tokens import AccessTokens

_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def principal() -> Principal:
    """The signed-in caller of the current RPC (the policy guarantees one on non-public RPCs)."""
    caller = _current.get()
    if caller is None:
        raise Unauthenticated("sign in first", reason="TOKEN_MISSING")
    return caller


def optional_principal() -> Principal | None:
    return _current.get()


class Authenticator:
    def __init__(self, *, tokens: AccessTokens, db: Database, clock: Clock, sessions: SessionCache) -> None:
        self._tokens = tokens
        self._db = db
        self._clock = clock
        self._sessions = sessions

    async def authorize(self, method: str, authorization: Sequence[str]) -> contextvars.Token[Principal | None]:
        """Checks the call against the policy; sets the principal. Raises a DomainError if refused.

        `authorization`: every `authorization` header of the call. More than one is refused rather than
        resolved: a proxy and a client that disagree about which one counts must not decide who calls.
        A token sent to a public RPC is checked like any other: a broken one is refused, not ignored,
        so a client learns its token is bad instead of silently browsing as anonymous."""
        access = access_for(method)
        if access is None:  # default deny: an RPC nobody decided on is closed
            raise PermissionDenied("this method is not open to callers", reason="NO_POLICY")
        if not access.reads_token:
            return _current.set(None)
        if len(authorization) > 1:
            raise Unauthenticated("send one `authorization` header, not several", reason="TOKEN_INVALID")
        header = authorization[0] if authorization else ""
        if not header:
            if access.public:
                return _current.set(None)
            raise Unauthenticated("sign in first: send `authorization: Bearer <access token>`",
                                  reason="TOKEN_MISSING")
        caller = await self._verify(header)
        if access.public:
            return _current.set(caller)
        if access.roles and caller.role not in access.roles:
            raise PermissionDenied("your role may not call this method", reason="ROLE_NOT_ALLOWED")
        return _current.set(caller)

    @staticmethod
    def reset(token: contextvars.Token[Principal | None]) -> None:
        try:
            _current.reset(token)
        except ValueError:  # a cancelled stream is cleaned up in another task's context
            _current.set(None)

    async def _verify(self, header: str) -> Principal:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be `Bearer <access token>`", reason="TOKEN_INVALID")
        now = self._clock.now()
        claims = self._tokens.verify(token.strip(), now=now)
        owner = await self._sessions.owner(claims.session_id, claims.user_id, now, lambda: repo.caller_of(
            self._db, session_id=claims.session_id, user_id=claims.user_id, now=now))
        if owner is None:
            raise Unauthenticated("session has ended; sign in again", reason="SESSION_REVOKED")
        # The role comes from the database (or the session cache, which a role change empties), not the
        # token: a role change applies at once.
        return Principal(user_id=owner.user_id, session_id=claims.session_id, role=owner.role)
