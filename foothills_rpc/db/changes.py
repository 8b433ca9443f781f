"""Wakes booking-event watchers when any server process commits a change.

PostgreSQL: the writer sends `NOTIFY` inside the change's own transaction (delivered at commit, never
for a rollback) and every process keeps one `LISTEN` connection that wakes its local watchers. SQLite
has no cross-process notifications, so watchers there also poll every `poll_seconds`. Either way a
watcher reads the events table after waking: a notification only says "look again", so a lost one
delays an event (until the next poll) but can never drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

CHANNEL = "foothills_booking_events"
# With a live LISTEN connection polling is only a safety net.
SAFETY_POLL_SECONDS = 10.0
RECONNECT_SECONDS = 1.0


async def notify_watchers(session: AsyncSession) -> None:
    """Queues the wake-up in the current transaction (PostgreSQL; a no-op on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, "")))


class ChangeFeed:
    """`mark()` before reading events, then `wait(mark)`: returns at once if anything changed since the
    mark (so a change between the read and the wait is never slept through), else at the next change
    or poll."""

    def __init__(self, database_url: str, *, poll_seconds: float) -> None:
        parsed = make_url(database_url)
        self._conninfo = (parsed.set(drivername="postgresql").render_as_string(hide_password=False)
                          if parsed.get_backend_name() in {"postgresql", "postgres"} else None)
        self._poll_seconds = poll_seconds
        self._generation = 0
        self._changed = asyncio.Event()
        self._listening = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._conninfo is not None:
            self._task = asyncio.create_task(self._listen(self._conninfo), name="booking-event-listener")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await self._task  # the listener checks `_stopping` at least once a second

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
        timeout = SAFETY_POLL_SECONDS if self._listening else self._poll_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def _listen(self, conninfo: str) -> None:
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True,
                                                                 connect_timeout=5) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._listening = True
                    self.changed()  # whatever committed while nobody listened
                    while not self._stopping:
                        async for _ in connection.notifies(timeout=1.0):
                            self.changed()
            except (psycopg.Error, OSError) as error:
                if not self._stopping:
                    log.warning("booking event listener lost its connection (%s); polling until it is back",
                                error.__class__.__name__)
            finally:
                self._listening = False
            if not self._stopping:
                await asyncio.sleep(RECONNECT_SECONDS)
