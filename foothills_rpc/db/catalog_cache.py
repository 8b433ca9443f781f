"""The read cache of services, kept correct across server processes.

Catalog reads outnumber catalog edits by far, and a service's row (its settings, pricing rules and
availability) changes only through the catalog use cases. Those send `NOTIFY foothills_catalog` in the
edit's own transaction and drop this process's cache after the commit; every other process drops its
cache when the notification arrives. So a process serves an edit from another process at most one
notification late (milliseconds), and its own edits at once.

Only what the catalog owns is cached. Seat counts, prices (they follow demand) and bookings are read
from the database on every call. A copy is used to price or book only if it is still at the service's
version read in the same statement as the seats (ListSlots, and the lone booking of
`Bookings._service_and_slot`); the rest of the booking path reads the service in its own transaction.

The cache is on only while the process's LISTEN connection is up: on SQLite, before the connection is
made, and after it is lost, every read goes to the database. A read that was under way while anything
was dropped does not store its (maybe older) row.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from foothills_rpc.db.changes import CATALOG, Listener
from foothills_rpc.db.models import Service

# About 1 kB a service: a bound on memory for any catalog; past it the cache starts over.
MAX_ENTRIES = 20_000


class CatalogCache:
    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._services: dict[uuid.UUID, Service] = {}
        self._generation = 0
        listener.subscribe(CATALOG, lambda _payload: self.drop())  # any catalog notification: drop it all

    def drop(self) -> None:
        """Forgets everything; reads under way when this runs do not store what they read."""
        self._generation += 1
        self._services.clear()

    async def service(self, service_id: uuid.UUID, load: Callable[[], Awaitable[Service]]) -> Service:
        """The service from the cache, else from `load()`. The row is shared: never change it."""
        cached = self._services.get(service_id)
        if cached is not None:
            return cached
        generation = self._generation
        service = await load()
        self.keep([service], generation)
        return service

    def services(self, service_ids: list[uuid.UUID]) -> dict[uuid.UUID, Service]:
        """Those of `service_ids` the cache holds."""
        return {i: s for i in service_ids if (s := self._services.get(i)) is not None}

    def keep(self, services: list[Service], generation: int) -> None:
        """Stores rows read since `generation()` returned `generation`, if nothing was dropped since."""
        if self._listener.listening and generation == self._generation:
            if len(self._services) + len(services) > MAX_ENTRIES:
                self._services.clear()
            self._services.update((s.id, s) for s in services)

    def generation(self) -> int:
        return self._generation
