"""Shared fixtures: a real grpc.aio server on a free port, on SQLite and on PostgreSQL.

Every database test runs once per backend. Each test gets a fresh database cloned from one
migrated template (a copied SQLite file; PostgreSQL `CREATE DATABASE ... TEMPLATE`), because the
server under test commits its own transactions.

PostgreSQL comes from FOOTHILLS_TEST_DATABASE_URL (default: the local server that
scripts/setup-postgresql prepares). When it is unreachable the PostgreSQL half is skipped with a
loud reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import psycopg
import pytest
import uvloop
from opentelemetry.sdk.trace import TracerProvider
from psycopg import sql
from sqlalchemy.engine import make_url

from foothills.admin.v1 import admin_pb2_grpc
from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills.booking.v1 import booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2_grpc
from foothills_rpc.clock import ManualClock
from foothills_rpc.config import SmtpSettings
from foothills_rpc.db.migrations import upgrade
from foothills_rpc.domain.users import Role
from foothills_rpc.mail.mailer import SmtpMailer
from foothills_rpc.server import FoothillsServer, build_components
from tests.reasons import recorders, write
from tests.support import Mailbox, admin_execute, make_settings, psycopg_conninfo
from tests.throwaway_postgres import ThrowawayPostgres, Unavailable

DEFAULT_PG_URL = "postgresql://foothills:foothills@127.0.0.1:5432/foothills_test"
PASSWORD = "a long enough passphrase"


def _pg_url() -> str:
    return os.environ.get("FOOTHILLS_TEST_DATABASE_URL", DEFAULT_PG_URL)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], object]]:
    """Every test runs on uvloop, the loop `foothills-rpc` runs its commands on."""
    return {"uvloop": uvloop.new_event_loop}


def pytest_sessionfinish(session: pytest.Session) -> None:
    write()  # the reasons the servers answered, for scripts/check_reasons.py (when asked for)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The maintenance URL of a reachable PostgreSQL; skips (or fails in CI) when there is none.

    Under pytest-xdist the first worker takes the local server and each other worker starts a server of
    its own (`ThrowawayPostgres`), where the machine can: the booking event feed reads only below the
    oldest transaction running anywhere in its cluster, so a test holding a transaction open would
    otherwise hold back another worker's feed. A server named by FOOTHILLS_TEST_DATABASE_URL serves
    every worker, as asked."""
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0" and "FOOTHILLS_TEST_DATABASE_URL" not in os.environ:
        with contextlib.suppress(Unavailable):
            server = ThrowawayPostgres.create()
            try:
                server.admin_execute(sql.SQL("CREATE ROLE foothills LOGIN CREATEDB PASSWORD 'foothills' "
                                             "IN ROLE pg_signal_backend"))
                yield f"postgresql://foothills:foothills@127.0.0.1:{server.port}/postgres"
            finally:
                server.remove()
            return
    url = _pg_url()
    try:
        with psycopg.connect(psycopg_conninfo(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        message = (f"PostgreSQL unreachable at {make_url(url).render_as_string()} ({exc.__class__.__name__}): "
                   "run scripts/setup-postgresql or set FOOTHILLS_TEST_DATABASE_URL")
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true requires PostgreSQL. " + message)
        pytest.skip("!!! SKIPPING POSTGRESQL TESTS !!! " + message)
    yield url


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    name = f"foothills_tpl_{uuid.uuid4().hex[:12]}"
    admin_execute(postgres_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    upgrade(make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
    yield name
    admin_execute(postgres_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if request.param == "sqlite":
        path = tmp_path / "foothills.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    admin_url: str = request.getfixturevalue("postgres_url")
    template: str = request.getfixturevalue("postgres_template")
    name = f"foothills_t_{uuid.uuid4().hex[:12]}"
    admin_execute(admin_url, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    admin_execute(admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free port; the server under test mails it."""
    box = Mailbox()
    box.start()
    yield box
    box.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2030, 1, 7, 9, 0, tzinfo=UTC))


@dataclass
class Running:
    """A live server and stubs on a real channel to it."""

    server: FoothillsServer
    port: int
    channel: grpc.aio.Channel
    auth: auth_pb2_grpc.AuthServiceStub
    admin: admin_pb2_grpc.AdminServiceStub
    catalog: catalog_pb2_grpc.CatalogServiceStub
    booking: booking_pb2_grpc.BookingServiceStub
    clock: ManualClock
    mailbox: Mailbox

    async def register(self, email: str, *, password: str = PASSWORD, name: str = "Test User") -> str:
        """Registers a customer; returns the user's resource name."""
        response = await self.auth.Register(auth_pb2.RegisterRequest(
            email=email, password=password, display_name=name))
        return str(response.user.name)

    async def login(self, email: str, *, password: str = PASSWORD) -> auth_pb2.LoginResponse:
        return await self.auth.Login(auth_pb2.LoginRequest(email=email, password=password))

    async def again(self, caller: Caller) -> Caller:
        """The same user signed in anew (after the test clock moved past their token's life)."""
        login = await self.login(caller.email)
        return Caller(name=caller.name, email=caller.email, credentials=login.credentials)

    async def signed_in(self, email: str, *, role: Role = Role.CUSTOMER, name: str = "Test User") -> Caller:
        """A new user with `role` (and display name `name`), signed in."""
        name = await self.register(email, name=name)
        if role is not Role.CUSTOMER:
            await self.server.components.users.set_role(None, uuid.UUID(name.split("/")[1]), role)
        login = await self.login(email)
        return Caller(name=name, email=email, credentials=login.credentials)


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> None:
    """Waits until `check()` is true, for what another process learns by notification: that takes
    milliseconds, and `within` only bounds a slow machine."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"not seen within {within} s"
        await asyncio.sleep(0.02)


async def listening(*servers: Running, within: float = 5.0) -> None:
    """Waits until every server's LISTEN connection is up: only then do its caches keep what they read."""
    async def up() -> bool:
        return all(server.server.components.listener.listening for server in servers)

    await eventually(up, within=within)


@dataclass
class Caller:
    name: str
    email: str
    credentials: auth_pb2.Credentials

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.credentials.access_token}"),)


@pytest.fixture
async def running(database_url: str, clock: ManualClock, mailbox: Mailbox) -> AsyncIterator[Running]:
    async with running_server(database_url, clock, mailbox) as server:
        yield server


@pytest.fixture
async def other(database_url: str, clock: ManualClock, mailbox: Mailbox) -> AsyncIterator[Running]:
    """A second server on the database of `running`."""
    async with running_server(database_url, clock, mailbox) as server:
        yield server


@contextlib.asynccontextmanager
async def running_server(database_url: str, clock: ManualClock, mailbox: Mailbox, *,
                         tracer_provider: TracerProvider | None = None,
                         **settings_overrides: object) -> AsyncIterator[Running]:
    """What the `running` fixture gives, for a test that needs other settings (or keeps its spans)."""
    mailbox.clear()  # each test sees only its own mail
    settings = make_settings(database_url, smtp=SmtpSettings(host="127.0.0.1", port=mailbox.port, starttls=False),
                             **settings_overrides)
    components = build_components(settings, clock=clock, mailer=SmtpMailer(settings.smtp),  # type: ignore[arg-type]
                                  tracer_provider=tracer_provider)
    server = FoothillsServer(components)
    port = await server.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=recorders())
    try:
        yield Running(server=server, port=port, channel=channel, auth=auth_pb2_grpc.AuthServiceStub(channel),
                      admin=admin_pb2_grpc.AdminServiceStub(channel),
                      catalog=catalog_pb2_grpc.CatalogServiceStub(channel),
                      booking=booking_pb2_grpc.BookingServiceStub(channel), clock=clock, mailbox=mailbox)
    finally:
        await channel.close()
        await server.stop(0)


__all__ = ["PASSWORD", "Caller", "Running"]
