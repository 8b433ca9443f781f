"""Rate limits kept in the database: registrations per client address, password resets per email.

Two servers share one database, as two processes behind a load balancer would, and calls alternate
between them: the count is the database's, not a process's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.clock import ManualClock
from foothills_rpc.mail.mailer import FileMailer
from foothills_rpc.server import FoothillsServer, build_components
from tests.conftest import PASSWORD
from tests.support import make_settings, reason, retry_delay

REGISTRATIONS = 3
RESETS = 2
WINDOW = timedelta(hours=1)


@asynccontextmanager
async def two_servers(
        database_url: str, clock: ManualClock, tmp_path: Path,
        trusted_proxies: frozenset[str] = frozenset()) -> AsyncIterator[list[auth_pb2_grpc.AuthServiceStub]]:
    settings = make_settings(database_url, registrations_per_address=REGISTRATIONS, password_resets_per_email=RESETS,
                             rate_window=WINDOW, trusted_proxies=trusted_proxies)
    servers = [FoothillsServer(build_components(settings, clock=clock, mailer=FileMailer(tmp_path / "outbox")))
               for _ in range(2)]
    ports = [await server.start("127.0.0.1:0") for server in servers]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    try:
        yield [auth_pb2_grpc.AuthServiceStub(channel) for channel in channels]
    finally:
        for channel in channels:
            await channel.close()
        for server in servers:
            await server.stop(0)


def _register(stub: auth_pb2_grpc.AuthServiceStub, email: str, forwarded_for: str | None = None) -> object:
    metadata = (("x-forwarded-for", forwarded_for),) if forwarded_for else None
    return stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Sweep"),
                         metadata=metadata)


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_registrations_per_address_are_counted_across_servers_including_taken_emails(
        database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with two_servers(database_url, clock, tmp_path) as stubs:
        await _register(stubs[0], "first@example.com")
        # Probing a taken email counts too: that is the sweep the limit is for.
        taken = await _refused(_register(stubs[1], "first@example.com"))
        assert taken.code() == grpc.StatusCode.ALREADY_EXISTS
        await _register(stubs[0], "second@example.com")
        refused = await _refused(_register(stubs[1], "third@example.com"))
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(refused) == "REGISTRATION_RATE_LIMITED"
        assert retry_delay(refused) == WINDOW
        # Once refused, a taken email gets the same refusal: the limit answers before the lookup.
        probe = await _refused(_register(stubs[0], "first@example.com"))
        assert probe.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        clock.advance(WINDOW)
        await _register(stubs[1], "third@example.com")


async def test_invalid_requests_do_not_use_up_the_allowance(
        database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with two_servers(database_url, clock, tmp_path) as stubs:
        for _ in range(REGISTRATIONS + 2):
            bad = await _refused(stubs[0].Register(auth_pb2.RegisterRequest(email="not an email", password="x")))
            assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        for i in range(REGISTRATIONS):
            await _register(stubs[i % 2], f"valid{i}@example.com")


async def test_concurrent_registrations_never_exceed_the_limit(
        database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with two_servers(database_url, clock, tmp_path) as stubs:
        outcomes = await asyncio.gather(*(_register(stubs[i % 2], f"rush{i}@example.com") for i in range(12)),
                                        return_exceptions=True)
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(created) == REGISTRATIONS
    assert len(refused) == 12 - REGISTRATIONS
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}


async def test_a_forged_forwarded_for_is_ignored_from_an_untrusted_peer(
        database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with two_servers(database_url, clock, tmp_path) as stubs:
        for i in range(REGISTRATIONS):
            await _register(stubs[0], f"forged{i}@example.com", forwarded_for=f"203.0.113.{i}")
        refused = await _refused(_register(stubs[0], "forged9@example.com", forwarded_for="198.51.100.9"))
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_allowance(
        database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with two_servers(database_url, clock, tmp_path, trusted_proxies=frozenset({"127.0.0.1"})) as stubs:
        for i in range(REGISTRATIONS):
            await _register(stubs[0], f"alice{i}@example.com", forwarded_for="203.0.113.7")
        refused = await _refused(_register(stubs[1], "alice9@example.com", forwarded_for="203.0.113.7"))
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Another client behind the same proxy is unaffected; so is one whose own forged entry sits to
        # the left of the address the proxy appended (only the proxy's entry counts).
        await _register(stubs[1], "bob@example.com", forwarded_for="198.51.100.2")
        again = await _refused(_register(stubs[0], "alice10@example.com", forwarded_for="10.9.9.9, 203.0.113.7"))
        assert again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_password_resets_are_limited_per_email_and_answer_alike_for_unknown_ones(
        database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with two_servers(database_url, clock, tmp_path) as stubs:
        await _register(stubs[0], "owner@example.com")
        answers: dict[str, tuple[grpc.StatusCode, str]] = {}
        for email in ("owner@example.com", "nobody@example.com"):
            for i in range(RESETS):
                await stubs[i % 2].RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
            refused = await _refused(stubs[0].RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email)))
            answers[email] = (refused.code(), reason(refused))
        assert answers["owner@example.com"] == answers["nobody@example.com"] == (
            grpc.StatusCode.RESOURCE_EXHAUSTED, "PASSWORD_RESET_RATE_LIMITED")
        # Another account is not affected, and the owner may ask again after the window.
        await stubs[1].RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email="other@example.com"))
        clock.advance(WINDOW)
        await stubs[1].RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email="OWNER@example.com"))
