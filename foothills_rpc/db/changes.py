"""Tells every server process that something committed: catalog edits, and booking events.

Catalog edits and ended sessions (rare, and read everywhere) are pushed. PostgreSQL: a `NOTIFY` is
queued inside the change's own transaction (delivered at commit, never for a rollback). Every process
keeps one `LISTEN` connection (the `Listener`) that calls its local subscribers with the payload; a
notification only says "look again": the catalog cache drops what it holds, the session cache the
sessions of the user named. Whenever the connection is made, lost or found dead, every subscriber is
called with None (forget everything), since notifications may have been missed meanwhile. SQLite has
no cross-process notifications: both caches stay off (db/catalog_cache.py, db/session_cache.py).

Booking events (every booking writes one) are pulled: the `ChangeFeed` polls the stream's last
readable position while someone watches, so no booking commit waits on NOTIFY's queue lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

CATALOG = "foothills_catalog"
SESSIONS = "foothills_sessions"  # the payload: the hex id of the user whose sessions ended or changed
RECONNECT_SECONDS = 1.0
# A connection that died silently (a cut network, a frozen server) delivers nothing and says nothing:
# a round trip this often, with this timeout, finds it out.
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TIMEOUT_SECONDS = 2.0
# Keepalives let the kernel find a dead peer even while no heartbeat is on the wire.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2}
APPLICATION_NAME = "foothills-listener"  # how operators (and tests) find it in pg_stat_activity


async def notify(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Queues a wake-up on `channel` in the current transaction (PostgreSQL; a no-op on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(channel, payload)))


class Listener:
    """The process's one LISTEN connection. `listening` is True only while notifications are sure to
    arrive; each subscriber is called with the payload of its channel's notifications, and with None
    on every gap."""

    def __init__(self, database_url: str) -> None:
        parsed = make_url(database_url)
        self._conninfo = (make_conninfo(parsed.set(drivername="postgresql").render_as_string(hide_password=False),
                                        application_name=APPLICATION_NAME, **KEEPALIVES)
                          if parsed.get_backend_name() in {"postgresql", "postgres"} else None)
        self._subscribers: dict[str, list[Callable[[str | None], None]]] = {}
        self.listening = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, channel: str, callback: Callable[[str | None], None]) -> None:
        """Before `start()`."""
        self._subscribers.setdefault(channel, []).append(callback)

    def start(self) -> None:
        if self._conninfo is not None and self._subscribers:
            self._task = asyncio.create_task(self._listen(self._conninfo), name="change-listener")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            # Cancelled, not awaited: it notices `_stopping` only once a second, and an idle server
            # should stop at once. Leaving the `async with` closes its connection.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _gap(self) -> None:
        for callbacks in self._subscribers.values():
            for callback in callbacks:
                callback(None)

    async def _listen(self, conninfo: str) -> None:
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True,
                                                                 connect_timeout=5) as connection:
                    for channel in self._subscribers:
                        await connection.execute(f"LISTEN {channel}")
                    self.listening = True
                    self._gap()  # whatever committed while nobody listened
                    await self._deliver(connection)
            except (psycopg.Error, OSError, TimeoutError) as error:
                if not self._stopping:
                    log.warning("change listener lost its connection (%s); reconnecting",
                                error.__class__.__name__)
            finally:
                if self.listening:
                    self.listening = False
                    self._gap()
            if not self._stopping:
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _deliver(self, connection: psycopg.AsyncConnection[object]) -> None:
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + HEARTBEAT_SECONDS
        while not self._stopping:
            async for notification in connection.notifies(timeout=1.0):
                for callback in self._subscribers.get(notification.channel, ()):
                    callback(notification.payload)
            if loop.time() >= next_heartbeat:
                await asyncio.wait_for(connection.execute("SELECT 1"), HEARTBEAT_TIMEOUT_SECONDS)
                next_heartbeat = loop.time() + HEARTBEAT_SECONDS


class ChangeFeed:
    """Booking events from every process: `mark()` before reading events, then `wait(mark)`: returns
    at once if anything changed since the mark (so a change between the read and the wait is never
    slept through), else once one is seen.

    Changes are seen by polling `last_event()` every `poll_seconds`, one query for all of this
    process's waiters and only while someone waits; this process's own commits wake them at once. No
    NOTIFY: on PostgreSQL every notifying commit queues on one lock (migration 0013)."""

    def __init__(self, last_event: Callable[[], Awaitable[int]], *, poll_seconds: float) -> None:
        self._last_event = last_event
        self._poll_seconds = poll_seconds
        self._generation = 0
        self._changed = asyncio.Event()
        self._waiting = 0
        self._seen: int | None = None
        self._poller: asyncio.Task[None] | None = None

    def changed(self) -> None:
        """Something committed: wake every waiter of this process."""
        self._generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def mark(self) -> int:
        return self._generation

    async def wait(self, mark: int) -> None:
        if self._generation != mark:
            return
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="change-feed-poller")
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            if not self._waiting:
                return
            try:
                last = await self._last_event()
            except Exception as error:  # the database is away: watchers wait on, the next poll retries
                log.debug("change feed poll failed: %s", error.__class__.__name__)
                continue
            if last != self._seen:  # the first poll wakes them too: its baseline is unknown
                self._seen = last
                self.changed()
