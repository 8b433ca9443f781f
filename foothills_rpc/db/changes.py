"""Tells every server process that something committed: booking events, and catalog edits.

PostgreSQL: a `NOTIFY` is queued inside the change's own transaction (delivered at commit, never
for a rollback): by a catalog edit itself, and for booking events by the trigger that numbers them at
commit (migration 0011). Every process keeps one `LISTEN` connection (the `Listener`) that calls its
local subscribers. A notification only says "look again": a booking watcher re-reads the events
table, the catalog cache drops what it holds. Whenever the connection is made, lost or found dead,
every subscriber is called as well, since notifications may have been missed meanwhile.

SQLite has no cross-process notifications: booking watchers also poll every `poll_seconds`, and the
catalog cache stays off (see db/catalog_cache.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

BOOKING_EVENTS = "foothills_booking_events"  # also spelled in migration 0011's trigger
CATALOG = "foothills_catalog"
# With a live LISTEN connection polling is only a safety net.
SAFETY_POLL_SECONDS = 10.0
RECONNECT_SECONDS = 1.0
# A connection that died silently (a cut network, a frozen server) delivers nothing and says nothing:
# a round trip this often, with this timeout, finds it out.
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TIMEOUT_SECONDS = 2.0
# Keepalives let the kernel find a dead peer even while no heartbeat is on the wire.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2}
APPLICATION_NAME = "foothills-listener"  # how operators (and tests) find it in pg_stat_activity


async def notify(session: AsyncSession, channel: str) -> None:
    """Queues a wake-up on `channel` in the current transaction (PostgreSQL; a no-op on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(channel, "")))


class Listener:
    """The process's one LISTEN connection. `listening` is True only while notifications are sure to
    arrive; each subscriber is called on its channel's notifications and on every gap."""

    def __init__(self, database_url: str) -> None:
        parsed = make_url(database_url)
        self._conninfo = (make_conninfo(parsed.set(drivername="postgresql").render_as_string(hide_password=False),
                                        application_name=APPLICATION_NAME, **KEEPALIVES)
                          if parsed.get_backend_name() in {"postgresql", "postgres"} else None)
        self._subscribers: dict[str, list[Callable[[], None]]] = {}
        self.listening = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
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
                callback()

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
                    callback()
            if loop.time() >= next_heartbeat:
                await asyncio.wait_for(connection.execute("SELECT 1"), HEARTBEAT_TIMEOUT_SECONDS)
                next_heartbeat = loop.time() + HEARTBEAT_SECONDS


class ChangeFeed:
    """Booking events: `mark()` before reading events, then `wait(mark)`: returns at once if anything
    changed since the mark (so a change between the read and the wait is never slept through), else at
    the next change or poll."""

    def __init__(self, listener: Listener, *, poll_seconds: float) -> None:
        self._listener = listener
        self._poll_seconds = poll_seconds
        self._generation = 0
        self._changed = asyncio.Event()
        listener.subscribe(BOOKING_EVENTS, self.changed)

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
        timeout = SAFETY_POLL_SECONDS if self._listener.listening else self._poll_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
