"""Test helpers that are not fixtures: settings, a real SMTP sink, status-detail readers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import signal
import socket
import sqlite3
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from email.message import EmailMessage

import grpc
import psycopg
from aiosmtpd.controller import Controller
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from psycopg import sql
from sqlalchemy.engine import make_url

from foothills.admin.v1 import admin_pb2
from foothills.auth.v1 import auth_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.config import Argon2Params, Settings

TEST_SECRET = "test-secret-that-is-at-least-32-bytes-long"


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Production settings except a cheap password hash (one test checks the real parameters) and a
    registration limit that tests registering many users from 127.0.0.1 do not reach."""
    base = Settings(database_url=database_url, jwt_secret=TEST_SECRET, registrations_per_address=100_000,
                    argon2=Argon2Params(memory_kib=64, time_cost=1, parallelism=1),
                    health_probe_seconds=0.2, shutdown_grace_seconds=1.0, watch_poll_seconds=0.05)
    return base.with_overrides(**overrides)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """An aiosmtpd server in its own thread that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.greetings = 0  # EHLOs: one per connection a client opens
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def handle_EHLO(self, server: object, session: object, envelope: object, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname  # type: ignore[attr-defined]  # aiosmtpd leaves it to this hook
        with self._lock:
            self.greetings += 1
        return responses

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[attr-defined]
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    async def wait_for(self, predicate: Callable[[EmailMessage], bool], within: float = 30.0) -> EmailMessage:
        """The first received message matching `predicate`; waits for delivery, up to `within` seconds."""
        try:
            async with asyncio.timeout(within):
                while True:
                    with self._lock:
                        for message in self.messages:
                            if predicate(message):
                                return message
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"no such mail arrived within {within}s") from None

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def to(self, recipient: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == recipient]


def text_of(message: EmailMessage) -> str:
    """The plain-text part a reader without HTML sees, with the wire's CRLF line ends as newlines."""
    part = message.get_body(("plain",))
    assert part is not None, "the mail has no text part"
    return str(part.get_content()).replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None, "the mail has no HTML part"
    return str(part.get_content())


def status_details(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    raise AssertionError("no grpc-status-details-bin trailer")


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for detail in status_details(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo detail")


def reason(error: grpc.aio.AioRpcError) -> str:
    return str(error_info(error).reason)


def _bad_request(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest:
    for detail in status_details(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return bad
    raise AssertionError("no BadRequest detail")


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """field -> reason of every BadRequest field violation."""
    return {v.field: v.reason for v in _bad_request(error).field_violations}


def violation_descriptions(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """field -> description of every BadRequest field violation."""
    return {v.field: v.description for v in _bad_request(error).field_violations}


def retry_delay(error: grpc.aio.AioRpcError) -> timedelta | None:
    for detail in status_details(error).details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta()
    return None


@asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[None]:
    """Another client holds `table` against writers until the block ends (on SQLite, whose one write
    lock covers every table, the whole database): calls that write it wait inside the database.

    The lock is taken in a worker thread: waiting for it on the event loop's thread would stall the
    in-process server, and a server transaction open at that moment could then never finish (a
    deadlock that ended in 'database is locked' after the 30 s wait)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        # Wait as long as the server would for a write it has in progress (slot extension, the sweep).
        connection = sqlite3.connect(str(url.database), isolation_level=None, timeout=30, check_same_thread=False)
        await asyncio.to_thread(connection.execute, "BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncio.to_thread(psycopg.connect, conninfo)
    try:
        await asyncio.to_thread(connection.execute, sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
            sql.Identifier(table)))
        yield
    finally:
        connection.rollback()
        connection.close()


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, *, timeout: float = 60.0) -> int | None:
    """`sig` (a graceful stop), then wait; kill only if it hangs. The exit code, or None if it had to be
    killed."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
        return None


def served_methods() -> list[tuple[str, MethodDescriptor]]:
    """(`/package.Service/Method`, descriptor) of every RPC the server serves, health and reflection
    included."""
    found = []
    for module in (auth_pb2, catalog_pb2, booking_pb2, admin_pb2, health_pb2, reflection_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            found += [(f"/{service.full_name}/{method.name}", method) for method in service.methods]
    return found


def psycopg_conninfo(url: str, database: str | None = None) -> str:
    """The SQLAlchemy URL as psycopg's connection string (optionally for another database)."""
    parsed = make_url(url)
    if database:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def admin_execute(url: str, statement: sql.Composable) -> None:
    """Runs one statement outside a transaction (CREATE/DROP DATABASE)."""
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute(statement)


def run_sql(url: str, statement: str, *params: object) -> None:
    """Runs one statement as another client would, bypassing the servers (and their notifications)."""
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def scrape(port: int) -> list[Sample]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())
