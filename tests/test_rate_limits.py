"""Rate limits kept in the database: registrations per client address, password resets per email.

Two servers share one database, as two processes behind a load balancer would, and calls alternate
between them: the count is the database's, not a process's.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.clock import ManualClock
from foothills_rpc.config import Argon2Params
from foothills_rpc.mail.mailer import FileMailer
from foothills_rpc.server import FoothillsServer, build_components
from tests.conftest import PASSWORD, running_server
from tests.reasons import recorders
from tests.support import Mailbox, make_settings, reason, retry_delay

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
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=recorders()) for port in ports]
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


async def test_known_and_unknown_emails_take_a_similar_time(
        database_url: str, clock: ManualClock, mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    """No enumeration by timing (OWASP ASVS V2.2.x): with the production Argon2id cost, a wrong password
    for a real account and any password for an unknown email cost the same (a dummy hash is verified);
    a reset request costs one counted write either way. Medians of interleaved calls; a missing dummy
    hash would make unknown emails about ten times faster. The reset limit (5 an hour per email) also
    caps how many samples an attacker gets of any one email."""
    async with running_server(database_url, clock, mailbox, argon2=Argon2Params(), login_max_failures=1000,
                              password_resets_per_email=1000) as running:
        await running.register("known@example.com")
        login: dict[str, list[float]] = {"known": [], "unknown": []}
        reset: dict[str, list[float]] = {"known": [], "unknown": []}
        for i in range(15):
            for kind, email in (("known", "known@example.com"), ("unknown", f"ghost{i}@example.com")):
                started = time.perf_counter()
                with pytest.raises(grpc.aio.AioRpcError):
                    await running.login(email, password="not the password")
                login[kind].append(time.perf_counter() - started)
                started = time.perf_counter()
                await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
                reset[kind].append(time.perf_counter() - started)
    ratios = {name: statistics.median(times["unknown"]) / statistics.median(times["known"])
              for name, times in (("login", login), ("reset", reset))}
    with capsys.disabled():
        print(f"[timing] unknown/known median latency: login {ratios['login']:.2f}, reset {ratios['reset']:.2f}")
    assert 0.5 < ratios["login"] < 2.0, ratios
    assert 1 / 3 < ratios["reset"] < 3.0, ratios
