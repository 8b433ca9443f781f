"""Who owns each live session, cached in the process and kept correct across server processes.

Every signed-in call asks who owns its token's session (db/accounts.py::caller_of), and that round
trip was a quarter of the statements of a customer's visit. Each change that ends a session or
changes what its owner may do (a logout, a password change or reset, a reused refresh token, a role
change, a disable or enable) queues `NOTIFY foothills_sessions, '<user id>'` in its own transaction,
and the process that made it forgets that user's sessions after the commit (`forget_user`). Every
other process forgets them when the notification arrives, milliseconds later, and forgets everything
whenever its LISTEN connection is made, lost or found dead, since notifications may have been missed.

The cache is on only while the LISTEN connection is up (never on SQLite): otherwise every call reads
the database. A session is served from memory only before its expiry. A read that was under way
while anything was forgotten does not store its (maybe older) answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from foothills_rpc.db.accounts import SessionOwner
from foothills_rpc.db.changes import SESSIONS, Listener

# A few hundred bytes a session: at most a few MB whatever the number of users; past it the cache starts over.
MAX_ENTRIES = 20_000


class SessionCache:
    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._owners: dict[uuid.UUID, SessionOwner] = {}  # by session id
        self._sessions_of: dict[uuid.UUID, list[uuid.UUID]] = {}  # by user id
        self._generation = 0
        listener.subscribe(SESSIONS, self._notified)

    async def owner(self, session_id: uuid.UUID, user_id: uuid.UUID, now: datetime,
                    load: Callable[[], Awaitable[SessionOwner | None]]) -> SessionOwner | None:
        """The live session's owner from the cache, else from `load()` (None: no such live session of
        `user_id`)."""
        cached = self._owners.get(session_id)
        if cached is not None and cached.user_id == user_id and now < cached.expires_at:
            return cached
        generation = self._generation
        owner = await load()
        if owner is not None and self._listener.listening and generation == self._generation:
            if len(self._owners) >= MAX_ENTRIES:
                self._forget_all()
            self._owners[session_id] = owner
            self._sessions_of.setdefault(owner.user_id, []).append(session_id)
        return owner

    def forget_user(self, user_id: uuid.UUID) -> None:
        """Forgets the user's sessions: this process's own change, after its commit."""
        self._generation += 1
        for session_id in self._sessions_of.pop(user_id, ()):
            self._owners.pop(session_id, None)

    def _notified(self, payload: str | None) -> None:
        try:
            user_id = uuid.UUID(payload) if payload is not None else None
        except ValueError:  # not ours to read: forget everything rather than guess
            user_id = None
        if user_id is None:
            self._forget_all()
        else:
            self.forget_user(user_id)

    def _forget_all(self) -> None:
        self._generation += 1
        self._owners.clear()
        self._sessions_of.clear()
