"""Opaque, tamper-checked page tokens (AIP-158).

A token carries the last row's sort key and a fingerprint of the request's filters, signed with
HMAC-SHA256. A token that was altered, or is replayed with other filters, is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from foothills_rpc.domain.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
K = TypeVar("K")
R = TypeVar("R")


class PageTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"foothills page tokens\x00" + secret.encode()).digest()

    def encode(self, key: list[Any], filters: object) -> str:
        payload = json.dumps({"k": key, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

    async def page(self, token: str, filters: object, requested_size: int, *, parse: Callable[[list[Any]], K],
                   fetch: Callable[[K | None, int], Awaitable[list[R]]],
                   key_of: Callable[[R], list[Any]]) -> tuple[list[R], str]:
        """One page of a keyset-paginated list, the one way every List RPC pages: the token (bound to
        `filters`) gives the last row's sort key, `parse` reads it (any error: INVALID_PAGE_TOKEN, for a
        key this server signed can still be the wrong shape for another list), `fetch(after, n)` reads up
        to n rows after it, and the last row shown signs the next page's token (empty on the last page)."""
        limit = page_size(requested_size)
        raw = self.decode(token, filters)
        try:
            after = None if raw is None else parse(raw)
        except (ValueError, IndexError, TypeError, AttributeError) as exc:
            raise InvalidArgument.single("page_token", "is malformed", "INVALID_PAGE_TOKEN") from exc
        rows = await fetch(after, limit + 1)
        if len(rows) <= limit:
            return rows, ""
        return rows[:limit], self.encode(key_of(rows[limit - 1]), filters)

    def decode(self, token: str, filters: object) -> list[Any] | None:
        """The sort key in `token` (None for an empty token, i.e. the first page)."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:16], raw[16:]
            if not hmac.compare_digest(mac, hmac.new(self._key, payload, hashlib.sha256).digest()[:16]):
                raise ValueError("bad signature")
            data = json.loads(payload)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument.single("page_token", "is not a token this server issued",
                                         "INVALID_PAGE_TOKEN") from exc
        if data.get("f") != _fingerprint(filters) or not isinstance(data.get("k"), list):
            raise InvalidArgument.single("page_token", "was issued for a request with other filters",
                                         "INVALID_PAGE_TOKEN")
        return list(data["k"])


def instant_and_id(key: list[Any]) -> tuple[datetime, uuid.UUID]:
    """The usual sort key: an aware instant (the UTC columns refuse naive ones) and a row id."""
    at = datetime.fromisoformat(key[0])
    if at.tzinfo is None:
        raise ValueError("a naive instant in a page token")
    return at, uuid.UUID(key[1])


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.single("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:16]
