"""Client-chosen request ids: the mutations a client may retry carry one, and a retry with the same id
returns the first result (the x-request-id header of any call follows the same pattern)."""

from __future__ import annotations

import hashlib
import re

from foothills_rpc.domain.errors import Collector

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def check_request_id(request_id: str, errors: Collector) -> None:
    if not REQUEST_ID.match(request_id):
        errors.add("request_id", "is required: 1 to 64 of A-Z a-z 0-9 . _ - (a UUID works)")


def request_digest(*parts: object) -> str:
    """What a request asked for, so the same request_id with other content is told apart."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()
