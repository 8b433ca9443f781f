"""Overload: beyond the admitted number of calls the server refuses at once, and health still answers.

The calls in flight are made slow for real: another connection holds a lock on the users table, so
Register calls wait inside the database until it is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.clock import ManualClock
from foothills_rpc.mail.mailer import FileMailer
from foothills_rpc.server import FoothillsServer, build_components
from tests.conftest import PASSWORD
from tests.reasons import recorders
from tests.support import make_settings, reason, table_locked


@asynccontextmanager
async def server_admitting(database_url: str, clock: ManualClock, tmp_path: Path,
                           max_in_flight: int) -> AsyncIterator[grpc.aio.Channel]:
    server = FoothillsServer(build_components(make_settings(database_url, max_in_flight=max_in_flight),
                                              clock=clock, mailer=FileMailer(tmp_path / "outbox")))
    port = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=recorders()) as channel:
            yield channel
    finally:
        await server.stop(0)


def _register(channel: grpc.aio.Channel, email: str, timeout: float | None = None) -> object:
    return auth_pb2_grpc.AuthServiceStub(channel).Register(
        auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Load"), timeout=timeout)


async def test_calls_beyond_the_limit_are_refused_at_once_while_health_answers(
        database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with server_admitting(database_url, clock, tmp_path, max_in_flight=2) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        async with table_locked(database_url, "users"):
            # Five at once: whichever two arrive first are admitted and wait on the lock; three are refused.
            calls = [asyncio.ensure_future(_register(channel, f"load{i}@example.com")) for i in range(5)]
            refusals = []
            for finished in asyncio.as_completed(calls, timeout=15):
                try:
                    await finished
                except grpc.aio.AioRpcError as error:
                    refusals.append((error.code(), reason(error)))
                if len(refusals) == 3:
                    break
            assert refusals == [(grpc.StatusCode.RESOURCE_EXHAUSTED, "SERVER_OVERLOADED")] * 3
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            admitted = [call for call in calls if not call.done()]
            assert len(admitted) == 2  # still waiting for the lock
        registered = await asyncio.wait_for(asyncio.gather(*admitted), 20)
        assert len({r.user.name for r in registered}) == 2
        # The limit counts calls in flight, not calls ever made: the server admits again.
        await _register(channel, "after@example.com")
