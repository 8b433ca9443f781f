"""The one server interceptor: admission, request id, authorization, error mapping, metrics, one log
line per RPC.

grpc.aio interceptors see only the handler, so this wraps each handler's behaviour function in
`_call`, which does all of it around the servicer call (around the whole stream, for streaming
RPCs), and its (de)serializers, which count the messages and their sizes. OpenTelemetry's interceptor
runs outside this one when tracing is on, so its span is the current one here.
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
from foothills_rpc.observability.metrics import Metrics
from foothills_rpc.observability.tracing import current_ids

log = logging.getLogger("foothills_rpc.rpc")

_QUIET = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_ALWAYS_ADMITTED = "/grpc.health.v1.Health/"


class _Undecodable:
    """Stands in for a request whose bytes are not the method's message: grpc.aio would answer a
    deserializer's exception with UNKNOWN, and the caller deserves INVALID_ARGUMENT."""


_UNDECODABLE = _Undecodable()


def code_label(code: grpc.StatusCode) -> str:
    """A status code as Go's codes.Code.String() spells it (`NotFound`, `Canceled`), as go-grpc-prometheus
    labels it: the alerts and dashboards written for those metrics match these values."""
    return _GO_NAMES.get(code) or code.name.title().replace("_", "")


_GO_NAMES = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}


class _MethodMetrics:
    """One method's labelled series, looked up once (a `labels()` call per observation costs more)."""

    def __init__(self, metrics: Metrics, method: str, kind: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        labels = (kind, service, name)
        self.labels = labels
        self.metrics = metrics
        self.started = metrics.rpc_started.labels(*labels)
        self.seconds = metrics.rpc_seconds.labels(*labels)
        self.received = metrics.messages_received.labels(*labels)
        self.sent = metrics.messages_sent.labels(*labels)
        self.received_bytes = metrics.received_bytes.labels(*labels)
        self.sent_bytes = metrics.sent_bytes.labels(*labels)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        if (series := self._handled.get(code)) is None:
            series = self._handled[code] = self.metrics.rpc_handled.labels(*self.labels, code_label(code))
        return series

    def failed(self, code: grpc.StatusCode, reason: str) -> None:
        self.metrics.rpc_failures.labels(*self.labels, code_label(code), reason).inc()

    def parsing(self, deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """`deserialize`, counting what arrives; undecodable bytes become `_UNDECODABLE`."""
        def parse(data: bytes) -> Any:
            self.received.inc()
            self.received_bytes.observe(len(data))
            try:
                return deserialize(data)
            except DecodeError:
                return _UNDECODABLE
        return parse

    def serializing(self, serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
        def write(message: Any) -> bytes:
            data = serialize(message)
            self.sent.inc()
            self.sent_bytes.observe(len(data))
            return data
        return write


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

    def __init__(self, authenticator: Authenticator, metrics: Metrics, *, max_in_flight: int,
                 max_call_seconds: float) -> None:
        self._auth = authenticator
        self._metrics = metrics
        self._max_in_flight = max_in_flight
        self._max_call_seconds = max_call_seconds
        self._in_flight = 0
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method: (its handler, wrapped); bounded by the methods
        metrics.watch(metrics.rpc_in_flight, lambda: self._in_flight)

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        # One wrapped handler per method, built at its first call (the wrapper reads each call's headers
        # from its context), not three closures and a handler built again for every call.
        method: str = details.method
        found = self._wrapped.get(method)
        if found is None or found[0] is not handler:
            found = self._wrapped[method] = (handler, self._wrap(method, handler))
        return found[1]

    def _wrap(self, method: str, handler: Any) -> Any:
        """`handler` with `_call` around its behaviour and its (de)serializers measured."""
        kind = ("unary" if handler.unary_unary else "server_stream" if handler.unary_stream
                else "bidi_stream" if handler.stream_stream else "client_stream")
        measured = _MethodMetrics(self._metrics, method, kind)
        parse, serialize = handler.request_deserializer, handler.response_serializer
        kwargs = {"request_deserializer": parse and measured.parsing(parse),
                  "response_serializer": serialize and measured.serializing(serialize)}
        if handler.unary_unary:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: aio.ServicerContext) -> Any:
                async with self._call(method, measured, context, counted=True):
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
            async with self._call(method, measured, context):
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
    async def _call(self, method: str, measured: _MethodMetrics, context: aio.ServicerContext, *,
                    counted: bool = False) -> AsyncIterator[None]:
        headers: tuple[tuple[str, str | bytes], ...] = context.invocation_metadata() or ()
        supplied = next((v for k, v in headers if k == "x-request-id" and isinstance(v, str)), "")
        request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex
        trace_id, _ = current_ids()
        # The caller gets the trace id beside the request id, to find the trace it started or joined.
        ids = (("x-request-id", request_id), ("x-trace-id", trace_id)) if trace_id else (("x-request-id", request_id),)
        measured.started.inc()
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
            context.set_trailing_metadata(ids)
            yield
        except DomainError as error:
            code, message, status = rich_status(error)
            measured.failed(code, error.reason)
            await context.abort(code, message, trailing_metadata=(("grpc-status-details-bin", status), *ids))
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
            await context.abort(code, "method not implemented", trailing_metadata=ids)
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unexpected error method=%s request_id=%s", method, request_id)
            await context.abort(code, f"internal error; quote request id {request_id}", trailing_metadata=ids)
        finally:
            if counted:
                self._in_flight -= 1
            caller = optional_principal()
            if token is not None:
                Authenticator.reset(token)
            elapsed = time.perf_counter() - started
            measured.handled(code).inc()
            measured.seconds.observe(elapsed)
            if (not method.startswith(_QUIET) or code != grpc.StatusCode.OK) and log.isEnabledFor(logging.INFO):
                fields = {"method": method, "code": code.name, "duration_ms": round(elapsed * 1000, 1),
                          "request_id": request_id, "user_id": caller.user_id.hex if caller else "-"}
                if trace_id:
                    fields["trace_id"] = trace_id
                log.info("rpc %s", " ".join(f"{key}={value}" for key, value in fields.items()), extra=fields)
