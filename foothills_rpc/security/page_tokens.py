"""Opaque, tamper-checked page tokens (AIP-158).

A token carries the last row's sort key and a fingerprint of the request's filters, signed with
HMAC-SHA256. A token that was altered, or is replayed with other filters, is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from foothills_rpc.domain.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class PageTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"foothills page tokens\x00" + secret.encode()).digest()

    def encode(self, key: list[Any], filters: object) -> str:
        payload = json.dumps({"k": key, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

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


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.single("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:16]
