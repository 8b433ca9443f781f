"""Periodic background work that stops between runs, never in the middle of one.

Cancelling a task mid-query can leave a half-open database connection behind (PostgreSQL then
waits for it up to its authentication timeout), so loops finish their current run and exit when
told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from foothills_rpc.observability.metrics import Metrics

log = logging.getLogger(__name__)


class Periodic:
    """Runs `work` every `interval` seconds (sooner when `wake()` is called) until `stop()`, counting its
    runs, failures and last success in `metrics`."""

    def __init__(self, name: str, work: Callable[[], Awaitable[object]], interval: float, metrics: Metrics) -> None:
        self.name = name
        self._runs = metrics.task_runs.labels(name)
        self._failures = metrics.task_failures.labels(name)
        self._last_success = metrics.task_last_success
        self._work = work
        self._interval = interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, patience: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), patience)
        except TimeoutError:
            log.warning("background task %s did not finish in %.0fs; cancelling it", self.name, patience)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while not self._stopping:
            self._runs.inc()
            try:
                await self._work()
            except Exception:
                self._failures.inc()
                log.warning("background task %s failed; will retry", self.name, exc_info=True)
            else:
                self._last_success.labels(self.name).set(time.time())  # no series before a success
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
