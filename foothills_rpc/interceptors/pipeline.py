"""The one server interceptor: admission, request id, authorization, error mapping, one log line per RPC.

grpc.aio interceptors see only the handler, so this wraps each handler's behaviour function in
`_call`, which does all four things around the servicer call (around the whole stream, for
streaming RPCs).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from grpc import aio

from foothills_rpc.domain.errors import DomainError, InvalidArgument, ResourceExhausted, Unavailable
from foothills_rpc.domain.requests import REQUEST_ID
from foothills_rpc.interceptors.auth import Authenticator, optional_principal
from foothills_rpc.interceptors.errors import rich_status
from foothills_rpc.interceptors.hygiene import request_violations

log = logging.getLogger("foothills_rpc.rpc")

_QUIET = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_ALWAYS_ADMITTED = "/grpc.health.v1.Health/"


class _Undecodable:
    """Stands in for a request whose bytes are not the method's message: grpc.aio would answer a
    deserializer's exception with UNKNOWN, and the caller deserves INVALID_ARGUMENT."""


_UNDECODABLE = _Undecodable()


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _UNDECODABLE
    return parse


def _check(request: Message | _Undecodable) -> None:
    if isinstance(request, _Undecodable):
        raise InvalidArgument.single("request", "is not a valid message of this method's request type",
                                     "MALFORMED_REQUEST")
    if violations := request_violations(request):
        raise InvalidArgument(violations)


class RpcPipeline(aio.ServerInterceptor):
    """`max_in_flight` bounds the unary calls being served at once: beyond it a call is refused at once
    with RESOURCE_EXHAUSTED instead of queueing behind the others (grpc's own limit would also count,
    and so refuse, the health checks that load balancers need answered). Streams are not counted:
    they are long-lived and mostly idle.

    `max_call_seconds` caps a unary call for callers that set no deadline (or a longer one): against a
    database that stops answering, the call ends with UNAVAILABLE and its work is cancelled instead of
    holding a connection and an admission slot for ever."""

    def __init__(self, authenticator: Authenticator, *, max_in_flight: int, max_call_seconds: float) -> None:
        self._auth = authenticator
        self._max_in_flight = max_in_flight
        self._max_call_seconds = max_call_seconds
        self._in_flight = 0

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method: str = details.method
        headers: tuple[tuple[str, str | bytes], ...] = tuple(details.invocation_metadata or ())
        kwargs = {"request_deserializer": handler.request_deserializer and _tolerant(handler.request_deserializer),
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: aio.ServicerContext) -> Any:
                async with self._call(method, headers, context, counted=True):
                    _check(request)
                    try:
                        async with asyncio.timeout(self._max_call_seconds):
                            return await unary(request, context)
                    except TimeoutError:  # the server's limit, or a dependency that timed out: retryable
                        raise Unavailable(f"the call did not finish in time (the limit is {self._max_call_seconds:g} "
                                          "s); retry with the same request_id", reason="CALL_TIMEOUT") from None

            return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
        streaming = handler.unary_stream or handler.stream_stream
        assert streaming is not None, f"{method}: client-streaming RPCs are not served"

        async def stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            async with self._call(method, headers, context):
                if handler.unary_stream:
                    _check(request)
                if inspect.iscoroutinefunction(streaming):  # writes with context.write (grpc's health Watch)
                    await streaming(request, context)
                    return
                async for item in streaming(request, context):
                    yield item

        wrap = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        return wrap(stream, **kwargs)

    @contextlib.asynccontextmanager
    async def _call(self, method: str, headers: tuple[tuple[str, str | bytes], ...], context: aio.ServicerContext, *,
                    counted: bool = False) -> AsyncIterator[None]:
        supplied = next((v for k, v in headers if k == "x-request-id" and isinstance(v, str)), "")
        request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        token = None
        counted = counted and not method.startswith(_ALWAYS_ADMITTED)
        if counted:
            self._in_flight += 1
        try:
            if counted and self._in_flight > self._max_in_flight:
                raise ResourceExhausted("the server is at capacity; retry shortly", reason="SERVER_OVERLOADED")
            authorization = [v for k, v in headers if k == "authorization" and isinstance(v, str)]
            token = await self._auth.authorize(method, authorization)
            context.set_trailing_metadata((("x-request-id", request_id),))
            yield
        except DomainError as error:
            code, message, status = rich_status(error)
            await context.abort(code, message, trailing_metadata=(
                ("grpc-status-details-bin", status), ("x-request-id", request_id)))
        except aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            # The caller's deadline passed or it went away: grpc cancels this task, and with it the
            # call's database work (its transaction rolls back), so nothing is half-done later.
            remaining = context.time_remaining()
            passed = remaining is not None and remaining <= 0
            code = grpc.StatusCode.DEADLINE_EXCEEDED if passed else grpc.StatusCode.CANCELLED
            raise
        except NotImplementedError:  # a generated servicer's default method (grpc's health List, say)
            code = grpc.StatusCode.UNIMPLEMENTED
            await context.abort(code, "method not implemented", trailing_metadata=(("x-request-id", request_id),))
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unexpected error method=%s request_id=%s", method, request_id)
            await context.abort(code, f"internal error; quote request id {request_id}",
                                trailing_metadata=(("x-request-id", request_id),))
        finally:
            if counted:
                self._in_flight -= 1
            caller = optional_principal()
            if token is not None:
                Authenticator.reset(token)
            if not method.startswith(_QUIET) or code != grpc.StatusCode.OK:
                log.info("rpc method=%s code=%s duration_ms=%.1f request_id=%s user_id=%s", method,
                         code.name, (time.perf_counter() - started) * 1000, request_id,
                         caller.user_id.hex if caller else "-")
