"""Reading the audit log (writing happens inside each change's own transaction, see db/audit.py)."""

from __future__ import annotations

from foothills_rpc.db import audit as repo
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import AuditEvent
from foothills_rpc.domain.errors import InvalidArgument
from foothills_rpc.security.page_tokens import PageTokens


class AuditLog:
    def __init__(self, *, db: Database, page_tokens: PageTokens) -> None:
        self._db = db
        self._page_tokens = page_tokens

    async def list(self, filters: repo.AuditFilter, *, requested_size: int,
                   token: str) -> tuple[list[AuditEvent], str]:
        if filters.start and filters.end and filters.start >= filters.end:
            raise InvalidArgument.single("end_time", "must be after start_time")
        return await self._page_tokens.page(
            token, filters, requested_size, parse=lambda key: int(key[0]),
            fetch=lambda after, n: self._db.run(lambda s: repo.list_events(s, filters, after=after, limit=n)),
            key_of=lambda event: [event.id])
