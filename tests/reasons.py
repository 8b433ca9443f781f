"""Every (RPC, ErrorInfo.reason) the servers under test answer, recorded on the client side of each
channel the `running` fixture opens, so that scripts/check_reasons.py can hold the protos to what the
server really says. Written at the end of a session to $FOOTHILLS_REASONS_OUT when that is set; each
pytest-xdist worker merges its own into that one file, under a lock."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from tests.support import error_info, violations

OBSERVED: set[tuple[str, str, str]] = set()  # (method, status code or FIELD_VIOLATION, reason)


def _record(method: str | bytes, error: grpc.aio.AioRpcError) -> None:
    name = method.decode() if isinstance(method, bytes) else method
    try:
        reason = str(error_info(error).reason)
    except AssertionError:  # no details: grpc's own refusal (a deadline, a message over the limit)
        return
    OBSERVED.add((name, error.code().name, reason))
    if error.code() == grpc.StatusCode.INVALID_ARGUMENT and reason == "INVALID_ARGUMENT":
        OBSERVED.update((name, "FIELD_VIOLATION", rule) for rule in violations(error).values())


class UnaryReasonRecorder(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        call = await continuation(details, request)
        try:
            await call
        except grpc.aio.AioRpcError as error:
            _record(details.method, error)
        return call


class StreamReasonRecorder(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any,
                                     request: Any) -> AsyncIterator[Any]:
        # grpc.aio wraps the iterator in a call that keeps the real call's status, metadata and cancel.
        call = await continuation(details, request)

        async def responses() -> AsyncIterator[Any]:
            try:
                async for response in call:
                    yield response
            except grpc.aio.AioRpcError as error:
                _record(details.method, error)
                raise
        return responses()


def recorders() -> list[grpc.aio.ClientInterceptor]:
    """One of each: grpc.aio files an interceptor under the first kind it is, so one object cannot be both."""
    return [UnaryReasonRecorder(), StreamReasonRecorder()]


def write(path: str | None = None) -> None:
    target = path or os.environ.get("FOOTHILLS_REASONS_OUT")
    if not target:
        return
    with Path(target).open("a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
        file.seek(0)
        earlier = file.read()
        merged = OBSERVED | {tuple(entry) for entry in json.loads(earlier)} if earlier.strip() else OBSERVED
        file.seek(0)
        file.truncate()
        file.write(json.dumps(sorted(merged), indent=0))
