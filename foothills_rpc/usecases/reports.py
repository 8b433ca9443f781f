"""Reports for admins: booking statistics over a time range, and the booking export."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from functools import partial

from foothills_rpc.clock import Clock
from foothills_rpc.db import reports as repo
from foothills_rpc.db.database import Database
from foothills_rpc.domain.errors import Collector

MAX_RANGE = timedelta(days=366)
DEFAULT_TOP_SERVICES = 10
MAX_TOP_SERVICES = 100
EXPORT_BATCH = 500  # rows per ExportBookingsResponse (the proto promises at most 500)


def check_range(start: datetime, end: datetime, errors: Collector) -> None:
    """[start, end) must be non-empty and at most MAX_RANGE long (a year, leap years included)."""
    if end <= start:
        errors.add("end_time", "must be after start_time")
    elif end - start > MAX_RANGE:
        errors.add("end_time", f"must be at most {MAX_RANGE.days} days after start_time")


class Reports:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def stats(self, *, start: datetime, end: datetime, grouping: repo.Grouping,
                    top_services: int = 0) -> repo.Stats:
        """Figures for the bookings starting in [start, end); `top_services` 0 means the default, above the
        maximum means the maximum."""
        errors = Collector()
        check_range(start, end, errors)
        if top_services < 0:
            errors.add("top_services", "must not be negative")
        errors.check()
        top = min(top_services or DEFAULT_TOP_SERVICES, MAX_TOP_SERVICES)
        return await self._db.run(lambda s: repo.booking_stats(s, start=start, end=end, grouping=grouping, top=top))

    def export(self, *, start: datetime, end: datetime) -> AsyncIterator[list[repo.ExportRow]]:
        """Batches of the bookings starting in [start, end), soonest first. The range is checked here, before
        the first batch is asked for, so a bad request fails at once."""
        errors = Collector()
        check_range(start, end, errors)
        errors.check()
        return self._batches(start, end)

    async def _batches(self, start: datetime, end: datetime) -> AsyncIterator[list[repo.ExportRow]]:
        after: tuple[datetime, uuid.UUID] | None = None
        limit = EXPORT_BATCH
        while True:
            batch = await self._db.run(partial(repo.export_batch, start=start, end=end, after=after, limit=limit))
            if batch:
                yield batch
            if len(batch) < limit:
                return
            after = (batch[-1].start_at, batch[-1].booking_id)
