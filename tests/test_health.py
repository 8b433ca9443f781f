"""Health: SERVING while the database answers, NOT_SERVING while it cannot be reached, and back.

The database is put out of reach for real: the server talks to PostgreSQL through a TCP relay that
the test cuts and restores.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.db.database import PING_TIMEOUT_SECONDS
from foothills_rpc.server import SERVICE_NAMES, FoothillsServer, build_components
from tests.support import make_settings

# An embedded SQLite file cannot become unreachable: these tests run on PostgreSQL only.
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Relay:
    """A TCP relay to (host, port) that can be cut (closing every connection) and restored."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0

    async def stall(self, seconds: float) -> None:
        """Holds every byte for `seconds`, connections kept open: a database that is slow, not gone."""
        self._flowing.clear()
        await asyncio.sleep(seconds)
        self._flowing.set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    await self._flowing.wait()
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


@pytest.fixture
async def relayed(database_url: str) -> AsyncIterator[tuple[Relay, FoothillsServer, grpc.aio.Channel]]:
    url = make_url(database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    await relay.open()
    settings = make_settings(url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False))
    server = FoothillsServer(build_components(settings))
    port = await server.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield relay, server, channel
    await channel.close()
    await server.stop(0)
    with contextlib.suppress(Exception):
        await relay.cut()


async def _statuses(channel: grpc.aio.Channel) -> set[int]:
    stub = health_pb2_grpc.HealthStub(channel)
    return {(await stub.Check(health_pb2.HealthCheckRequest(service=name))).status for name in ("", *SERVICE_NAMES)}


async def _until(channel: grpc.aio.Channel, status: int) -> None:
    async with asyncio.timeout(10):
        while await _statuses(channel) != {status}:
            await asyncio.sleep(0.05)


async def test_health_follows_the_database(relayed: tuple[Relay, FoothillsServer, grpc.aio.Channel]) -> None:
    relay, _, channel = relayed
    assert await _statuses(channel) == {SERVING}
    await relay.cut()
    await _until(channel, NOT_SERVING)
    # Calls that need the database fail fast and cleanly meanwhile.
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.Register(auth_pb2.RegisterRequest(email="x@example.com", password="long enough pass",
                                                     display_name="X"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    await relay.open()
    await _until(channel, SERVING)
    # And the server works again without a restart.
    await auth.Register(auth_pb2.RegisterRequest(email="back@example.com", password="long enough pass",
                                                 display_name="Back"))


async def test_unknown_service_is_not_found(relayed: tuple[Relay, FoothillsServer, grpc.aio.Channel]) -> None:
    _, _, channel = relayed
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="nope.v1.Nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_one_slow_probe_does_not_turn_health_not_serving(
        relayed: tuple[Relay, FoothillsServer, grpc.aio.Channel]) -> None:
    """The database stalls for longer than one probe waits (PING_TIMEOUT_SECONDS) but answers before a
    second probe gives up: a load balancer must not drain a process for one slow moment."""
    relay, _, channel = relayed
    stall = asyncio.ensure_future(relay.stall(PING_TIMEOUT_SECONDS * 1.5))
    seen = set()
    while not stall.done():
        seen |= await _statuses(channel)
        await asyncio.sleep(0.05)
    assert seen == {SERVING}
    await relay.cut()  # while a real outage still turns it within seconds
    await _until(channel, NOT_SERVING)
