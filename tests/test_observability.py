"""What operators read, through real servers: the Prometheus endpoint (scraped over HTTP and parsed
with prometheus_client's own parser), OpenTelemetry spans (kept by the SDK's in-memory exporter),
and the logs of a real `serve` and `send-mail` process in JSON, searched for the secrets the run used.
tests/test_prometheus.py scrapes with a real Prometheus."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.samples import Sample

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.config import ConfigError, Settings
from foothills_rpc.interceptors.pipeline import code_label
from foothills_rpc.supervisor import metrics_listen_of
from tests.booking_support import error_of
from tests.conftest import running_server
from tests.e2e_support import START_TIMEOUT, STOP_TIMEOUT, server_env
from tests.support import Mailbox, free_port, reason, scrape, stop_process, value

PASSWORD = "observed passphrase 5b7d"


def names(samples: list[Sample]) -> set[str]:
    return {s.name for s in samples}


# --- metrics -------------------------------------------------------------------------------------


async def test_metrics_count_calls_by_method_and_code_and_refusals_by_reason(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, metrics_listen="127.0.0.1:0") as running:
        port = running.server.components.metrics.port
        caller = await running.signed_in("metrics.user@example.com")
        refused = await error_of(running.catalog.GetService(catalog_pb2.GetServiceRequest(
            name=f"services/{uuid.uuid4().hex}"), metadata=caller.metadata))
        samples = await asyncio.to_thread(scrape, port)
        async with asyncio.timeout(30):  # the first health probe may still be running on a busy machine
            while not value(samples, "foothills_background_last_success_timestamp_seconds", task="health-probe"):
                await asyncio.sleep(0.05)
                samples = await asyncio.to_thread(scrape, port)

    register = {"grpc_type": "unary", "grpc_service": "foothills.auth.v1.AuthService", "grpc_method": "Register"}
    assert value(samples, "grpc_server_started_total", **register) == 1
    assert value(samples, "grpc_server_handled_total", **register, grpc_code="OK") == 1
    assert value(samples, "grpc_server_handling_seconds_count", **register) == 1
    assert value(samples, "grpc_server_handling_seconds_bucket", **register, le="+Inf") == 1
    assert value(samples, "grpc_server_msg_received_total", **register) == 1
    assert value(samples, "grpc_server_msg_sent_total", **register) == 1
    assert value(samples, "grpc_server_msg_received_bytes_sum", **register) > len("metrics.user@example.com")
    get = {"grpc_service": "foothills.catalog.v1.CatalogService", "grpc_method": "GetService"}
    assert value(samples, "grpc_server_handled_total", **get, grpc_code="NotFound") == 1
    assert value(samples, "grpc_server_handled_total", **get, grpc_code="OK") == 0
    assert value(samples, "foothills_rpc_failures_total", **get, grpc_code="NotFound", reason=reason(refused)) == 1
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert value(samples, "grpc_server_msg_sent_total", **get) == 0  # a refusal sends no message

    assert value(samples, "foothills_rpc_in_flight") == 0
    assert value(samples, "foothills_db_pool_size") >= 1
    # The background tasks, and the scrape's own outbox query, may hold a connection meanwhile.
    assert 0 <= value(samples, "foothills_db_pool_in_use") <= value(samples, "foothills_db_pool_size")
    assert value(samples, "foothills_db_pool_wait_seconds_count") >= 3
    assert value(samples, "foothills_db_transactions_total", kind="write", outcome="ok") >= 2  # the sign-up, ...
    assert value(samples, "foothills_health_serving", service="overall") == 1
    assert value(samples, "foothills_health_serving", service="foothills.booking.v1.BookingService") == 1
    assert value(samples, "foothills_background_runs_total", task="health-probe") >= 1
    assert value(samples, "foothills_background_failures_total", task="health-probe") == 0
    assert value(samples, "foothills_background_last_success_timestamp_seconds", task="health-probe") > 0
    assert {"foothills_outbox_pending", "foothills_outbox_oldest_unsent_age_seconds",
            "process_cpu_seconds_total", "process_resident_memory_bytes"} <= names(samples)

    # Bounded labels only: no email, token, user id or request id in any of them.
    user_id = caller.name.split("/")[1]
    labels = {label for s in samples for label in s.labels.values()}
    for secret in (caller.email, caller.credentials.access_token, user_id, "@"):
        assert not [label for label in labels if secret in label], secret


async def test_a_busy_database_and_lost_races_are_counted_by_outcome(database_url: str, clock: ManualClock,
                                                                      mailbox: Mailbox) -> None:
    """Writes that a rule refuses count as `refused`, not as failures of the database."""
    async with running_server(database_url, clock, mailbox) as running:
        await running.register("twice@example.com")
        duplicate = await error_of(running.auth.Register(auth_pb2.RegisterRequest(
            email="twice@example.com", password=PASSWORD, display_name="Again")))
        registry = running.server.components.metrics.registry
        samples = await asyncio.to_thread(lambda: [s for family in registry.collect() for s in family.samples])
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    assert value(samples, "foothills_db_transactions_total", kind="write", outcome="refused") == 1
    assert value(samples, "foothills_db_transactions_total", outcome="failed") == 0
    assert value(samples, "foothills_rpc_failures_total", grpc_method="Register", reason=reason(duplicate)) == 1


async def test_the_outbox_backlog_is_read_from_the_database_at_each_scrape(database_url: str, clock: ManualClock,
                                                                         mailbox: Mailbox) -> None:
    """With mail left to a `send-mail` process, the API server's scrape still shows what waits."""
    async with running_server(database_url, clock, mailbox, metrics_listen="127.0.0.1:0",
                              send_mail=False) as running:
        port = running.server.components.metrics.port
        running.server.components.dispatcher.start()  # its backlog gauge, without the delivery loop
        await running.server.components.dispatcher.stop()
        before = await asyncio.to_thread(scrape, port)
        await running.register("pending.mail@example.com")
        await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(
            email="pending.mail@example.com"))
        clock.advance(timedelta(seconds=90))
        after = await asyncio.to_thread(scrape, port)
    assert value(before, "foothills_outbox_pending") == 0
    assert value(before, "foothills_outbox_oldest_unsent_age_seconds") == 0
    assert value(after, "foothills_outbox_pending") == value(before, "foothills_outbox_pending") + 1
    assert value(after, "foothills_outbox_oldest_unsent_age_seconds") == pytest.approx(90, abs=1)


def test_status_codes_are_labelled_as_go_grpc_prometheus_spells_them() -> None:
    assert [code_label(c) for c in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED, grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAUTHENTICATED)] == [
        "OK", "Canceled", "NotFound", "DeadlineExceeded", "Unauthenticated"]


def test_each_worker_gets_its_own_metrics_port() -> None:
    assert metrics_listen_of("127.0.0.1:9464", 0) == "127.0.0.1:9464"
    assert metrics_listen_of("127.0.0.1:9464", 3) == "127.0.0.1:9467"
    assert metrics_listen_of("[::1]:9464", 1) == "[::1]:9465"
    assert metrics_listen_of(None, 1) is None


@pytest.mark.parametrize(("variable", "raw", "problem"), [
    ("FOOTHILLS_METRICS_LISTEN", "9464", "HOST:PORT"),
    ("FOOTHILLS_METRICS_LISTEN", "localhost:http", "HOST:PORT"),
    ("FOOTHILLS_LOG_FORMAT", "xml", "text, json"),
    ("FOOTHILLS_MAX_CONNECTION_AGE_SECONDS", "-5", "positive"),
])
def test_observability_settings_are_checked(variable: str, raw: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings.from_env({variable: raw})


def test_tracing_follows_the_standard_opentelemetry_variables() -> None:
    assert not Settings.from_env({}).tracing
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}).tracing
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}).tracing
    assert not Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
                                  "OTEL_SDK_DISABLED": "true"}).tracing


# --- traces --------------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def test_a_call_is_a_server_span_with_its_statements_as_children_and_continues_the_callers_trace(
        database_url: str, clock: ManualClock, mailbox: Mailbox, spans: tuple[TracerProvider, InMemorySpanExporter],
        caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter = spans
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    caplog.set_level(logging.INFO, logger="foothills_rpc.rpc")
    async with running_server(database_url, clock, mailbox, tracer_provider=provider) as running:
        call = running.auth.Register(auth_pb2.RegisterRequest(
            email="traced@example.com", password=PASSWORD, display_name="Traced"),
            metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),))
        await call
        trailers = dict(await call.trailing_metadata())
        await running.auth.Login(auth_pb2.LoginRequest(email="traced@example.com", password=PASSWORD))
        await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email="traced@example.com"))
        await running.mailbox.wait_for(lambda m: m["To"] == "traced@example.com")
    finished = exporter.get_finished_spans()

    (server,) = [s for s in finished if s.name == "/foothills.auth.v1.AuthService/Register"]
    assert server.kind == SpanKind.SERVER
    assert server.attributes is not None and server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.method"] == "Register"
    assert format(server.context.trace_id, "032x") == trace_id  # the caller's trace goes on
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id
    statements = [s for s in finished if s.parent is not None and s.parent.span_id == server.context.span_id]
    assert statements and {s.kind for s in statements} == {SpanKind.CLIENT}
    assert any("INSERT" in str((s.attributes or {}).get("db.statement", "")) for s in statements), statements
    assert trailers["x-trace-id"] == trace_id
    (line,) = [r.getMessage() for r in caplog.records if "AuthService/Register" in r.getMessage()]
    assert f"trace_id={trace_id}" in line

    (login,) = [s for s in finished if s.name == "/foothills.auth.v1.AuthService/Login"]
    assert login.parent is None and login.context.trace_id != server.context.trace_id  # a trace of its own
    assert [s for s in finished if s.name == "mail send" and s.kind == SpanKind.CLIENT]


# --- logs of real processes ----------------------------------------------------------------------


def _spawn(folder: Path, command: str, port: int | None, **env: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "foothills_rpc.cli", command, *(["--listen", f"127.0.0.1:{port}"] if port else [])]
    with (folder / f"{command}.log").open("ab") as log:
        return subprocess.Popen(argv, cwd=folder, env={**server_env(folder), **env}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log)


def _wait_for_metrics(port: int, process: subprocess.Popen[bytes]) -> list[Sample]:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            return scrape(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # between polls only


async def test_json_logs_of_serve_and_send_mail_carry_the_rpc_fields_and_no_secret(tmp_path: Path) -> None:
    port, server_metrics, mail_metrics = free_port(), free_port(), free_port()
    server = _spawn(tmp_path, "serve", port, FOOTHILLS_LOG_FORMAT="json", FOOTHILLS_SEND_MAIL="false",
                    FOOTHILLS_METRICS_LISTEN=f"127.0.0.1:{server_metrics}")
    sender = None
    email = f"json.{uuid.uuid4().hex[:8]}@example.com"
    new_password = f"changed {uuid.uuid4().hex}"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                    break
                except grpc.aio.AioRpcError:
                    assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
                    await asyncio.sleep(0.05)
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            await auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Json"))
            login = await auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))
            refreshed = await auth.RefreshToken(auth_pb2.RefreshTokenRequest(
                refresh_token=login.credentials.refresh_token))
            wrong = await error_of(auth.Login(auth_pb2.LoginRequest(email=email, password="not " + PASSWORD)))
            await auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
            sender = _spawn(tmp_path, "send-mail", None, FOOTHILLS_LOG_FORMAT="json",
                            FOOTHILLS_METRICS_LISTEN=f"127.0.0.1:{mail_metrics}")
            mail = await _one_mail(tmp_path / "outbox")
            reset_token = re.search(r"^Code: ([A-Za-z0-9_-]{20,})\r?$", mail, re.MULTILINE)
            assert reset_token, mail
            await auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=reset_token.group(1),
                                                                   new_password=new_password))
        served = await asyncio.to_thread(_wait_for_metrics, server_metrics, server)
        sending = await asyncio.to_thread(_wait_for_metrics, mail_metrics, sender)
    finally:
        codes = [stop_process(p, timeout=STOP_TIMEOUT) for p in (server, sender) if p is not None]
    assert codes == [0, 0]
    assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED

    # Each process exposes its own: the server its calls, send-mail its deliveries.
    assert value(served, "grpc_server_handled_total", grpc_method="Login", grpc_code="Unauthenticated") == 1
    assert value(served, "foothills_outbox_sent_total") == 0
    assert value(sending, "foothills_outbox_sent_total") == 1
    assert value(sending, "foothills_background_runs_total", task="outbox-dispatcher") >= 1
    assert "grpc_server_handled_total" not in names(sending)

    text = (tmp_path / "serve.log").read_text() + (tmp_path / "send-mail.log").read_text()
    records = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert {"time", "level", "logger", "pid", "message", "trace_id", "span_id"} <= records[0].keys()
    rpcs = [r for r in records if r["logger"] == "foothills_rpc.rpc"]
    assert [r["method"].rsplit("/", 1)[1] for r in rpcs] == [
        "Register", "Login", "RefreshToken", "Login", "RequestPasswordReset", "ResetPassword"]
    assert {r["code"] for r in rpcs} == {"OK", "UNAUTHENTICATED"}
    assert all(isinstance(r["duration_ms"], float) and re.fullmatch(r"[0-9a-f]{32}", r["request_id"]) for r in rpcs)
    assert any(r["message"] == "mail sent" or r["message"].startswith("mail sent ") for r in records)
    for secret in (PASSWORD, new_password, login.credentials.access_token, login.credentials.refresh_token,
                   refreshed.credentials.access_token, refreshed.credentials.refresh_token, reset_token.group(1),
                   email, email.split("@")[0]):
        assert secret not in text, secret


async def _one_mail(folder: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while not (found := await asyncio.to_thread(lambda: sorted(folder.glob("*.eml")))):
        assert time.monotonic() < deadline, "send-mail sent nothing"
        await asyncio.sleep(0.05)
    message = message_from_bytes(await asyncio.to_thread(found[0].read_bytes), policy=policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


# --- connection age ------------------------------------------------------------------------------


@pytest.mark.parametrize("age", [None, 0.5])
async def test_a_maximum_connection_age_closes_idle_connections_so_channels_reconnect(
        database_url: str, clock: ManualClock, mailbox: Mailbox, age: float | None) -> None:
    """With FOOTHILLS_MAX_CONNECTION_AGE_SECONDS the server sends GOAWAY once a connection is that old:
    the caller's channel leaves READY (its next call opens a new connection, which a balancer may
    place on another worker) and no call fails. Without it a connection stays up."""
    async with running_server(database_url, clock, mailbox, max_connection_age_seconds=age,
                              max_connection_age_grace_seconds=1.0) as running:
        channel = running.channel
        await running.register("aged@example.com")
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        try:
            await asyncio.wait_for(channel.wait_for_state_change(grpc.ChannelConnectivity.READY), 3.0)
            changed = True
        except TimeoutError:
            changed = False
        login = await running.login("aged@example.com")
    assert changed is (age is not None)
    assert login.credentials.access_token


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace collector: what the exporter sends, kept."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
               context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


async def test_spans_go_over_otlp_to_the_endpoint_the_standard_variables_name(
        database_url: str, clock: ManualClock, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    collector = _Collector()
    otlp = grpc.server(futures.ThreadPoolExecutor(max_workers=2))  # the exporter's thread, not our loop, calls it
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, otlp)
    port = otlp.add_insecure_port("127.0.0.1:0")
    otlp.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "foothills-under-test")
    try:
        async with running_server(database_url, clock, mailbox, tracing=True) as running:
            await running.register("exported@example.com")
        # Stopping the server flushed the batch.
    finally:
        otlp.stop(None)
    spans = {span.name: resource for request in collector.requests for resource in request.resource_spans
             for scope in resource.scope_spans for span in scope.spans}
    assert "/foothills.auth.v1.AuthService/Register" in spans
    resource = spans["/foothills.auth.v1.AuthService/Register"].resource
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "foothills-under-test"
