"""Failed-login throttling, kept in the database so it holds across server processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from foothills.auth.v1 import auth_pb2
from tests.conftest import PASSWORD, Running
from tests.support import reason, retry_delay


async def _fail(running: Running, email: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.login(email, password="definitely wrong")
    return caught.value


async def test_repeated_failures_lock_the_email_then_the_owner_gets_back_in(running: Running) -> None:
    settings = running.server.components.settings
    await running.register("lock@example.com")
    for _ in range(settings.login_max_failures):
        assert (await _fail(running, "lock@example.com")).code() == grpc.StatusCode.UNAUTHENTICATED
    # Now even the right password is refused until the cooling-off ends.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.login("LOCK@example.com")
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason(caught.value) == "LOGIN_THROTTLED"
    assert retry_delay(caught.value) == settings.login_lockout
    running.clock.advance(settings.login_lockout - timedelta(seconds=1))
    with pytest.raises(grpc.aio.AioRpcError):
        await running.login("lock@example.com")
    running.clock.advance(timedelta(seconds=1))
    await running.login("lock@example.com")  # the legitimate user is not locked out forever


async def test_unknown_emails_are_throttled_exactly_like_known_ones(running: Running) -> None:
    settings = running.server.components.settings
    for _ in range(settings.login_max_failures):
        await _fail(running, "ghost@example.com")
    assert (await _fail(running, "ghost@example.com")).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_failures_outside_the_window_do_not_add_up(running: Running) -> None:
    settings = running.server.components.settings
    await running.register("slow@example.com")
    for _ in range(settings.login_max_failures - 1):
        await _fail(running, "slow@example.com")
    running.clock.advance(settings.login_window)
    for _ in range(settings.login_max_failures - 1):
        await _fail(running, "slow@example.com")
    await running.login("slow@example.com")


async def test_a_successful_login_resets_the_count(running: Running) -> None:
    settings = running.server.components.settings
    await running.register("reset@example.com")
    for _ in range(settings.login_max_failures - 1):
        await _fail(running, "reset@example.com")
    await running.login("reset@example.com")
    for _ in range(settings.login_max_failures - 1):
        await _fail(running, "reset@example.com")
    await running.login("reset@example.com")


async def test_concurrent_failures_are_all_counted(running: Running) -> None:
    """The counter is one atomic upsert: simultaneous failures cannot overwrite each other."""
    settings = running.server.components.settings
    await running.register("burst@example.com")
    await asyncio.gather(*(_fail(running, "burst@example.com") for _ in range(settings.login_max_failures)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.login("burst@example.com")
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_forged_forwarded_for_does_not_reset_the_count(running: Running) -> None:
    """Failures are counted per email, wherever they claim to come from."""
    settings = running.server.components.settings
    await running.register("spoof@example.com")
    for i in range(settings.login_max_failures):
        with pytest.raises(grpc.aio.AioRpcError):
            await running.auth.Login(auth_pb2.LoginRequest(email="spoof@example.com", password="definitely wrong"),
                                     metadata=(("x-forwarded-for", f"198.51.100.{i}"), ("x-real-ip", f"10.0.0.{i}")))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.Login(auth_pb2.LoginRequest(email="spoof@example.com", password=PASSWORD),
                                 metadata=(("x-forwarded-for", "203.0.113.250"),))
    assert (caught.value.code(), reason(caught.value)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_THROTTLED")
