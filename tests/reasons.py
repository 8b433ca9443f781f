"""Every (RPC, ErrorInfo.reason) the servers under test answer, recorded on the client side of each
channel the `running` fixture opens, so that scripts/check_reasons.py can hold the protos to what the
server really says. Written at the end of a session to $FOOTHILLS_REASONS_OUT when that is set."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from tests.support import error_info

OBSERVED: set[tuple[str, str, str]] = set()  # (method, status code, reason)


def _record(method: str | bytes, error: grpc.aio.AioRpcError) -> None:
    name = method.decode() if isinstance(method, bytes) else method
    try:
        reason = str(error_info(error).reason)
    except AssertionError:  # no details: grpc's own refusal (a deadline, a message over the limit)
        return
    OBSERVED.add((name, error.code().name, reason))


class ReasonRecorder(grpc.aio.UnaryUnaryClientInterceptor):
    """Unary calls only: a stream's status reaches the test through its iteration, not the call."""

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        call = await continuation(details, request)
        try:
            await call
        except grpc.aio.AioRpcError as error:
            _record(details.method, error)
        return call


def write(path: str | None = None) -> None:
    target = path or os.environ.get("FOOTHILLS_REASONS_OUT")
    if target:
        Path(target).write_text(json.dumps(sorted(OBSERVED), indent=0))
