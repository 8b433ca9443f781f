"""Sessions: refresh-token rotation and theft detection, logout, password change, disabled users."""

from __future__ import annotations

import asyncio
import logging
import uuid

import grpc
import psycopg
import pytest

from foothills.auth.v1 import auth_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.changes import APPLICATION_NAME
from tests.conftest import PASSWORD, Running, running_server
from tests.support import Mailbox, psycopg_conninfo, reason, violations

NEW_PASSWORD = "another long passphrase"


async def _profile(running: Running, token: str) -> auth_pb2.GetProfileResponse:
    return await running.auth.GetProfile(auth_pb2.GetProfileRequest(),
                                         metadata=(("authorization", f"Bearer {token}"),))


async def _expect_unauthenticated(call: object, expected_reason: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) == expected_reason


async def test_refresh_rotates_both_tokens(running: Running) -> None:
    caller = await running.signed_in("rot@example.com")
    running.clock.advance(running.server.components.settings.access_token_ttl)  # access token now expired
    refreshed = await running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(
        refresh_token=caller.credentials.refresh_token))
    fresh = refreshed.credentials
    assert fresh.refresh_token != caller.credentials.refresh_token
    assert (await _profile(running, fresh.access_token)).user.email == "rot@example.com"
    # The session's absolute expiry does not move with rotation.
    assert fresh.refresh_token_expire_time == caller.credentials.refresh_token_expire_time


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_session(running: Running) -> None:
    caller = await running.signed_in("theft@example.com")
    stolen = caller.credentials.refresh_token
    legit = (await running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=stolen))).credentials
    await _expect_unauthenticated(
        running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=stolen)), "REFRESH_TOKEN_REUSED")
    # Every token of that family is dead now, the legitimate holder's too.
    await _expect_unauthenticated(
        running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=legit.refresh_token)),
        "REFRESH_TOKEN_INVALID")
    await _expect_unauthenticated(_profile(running, legit.access_token), "SESSION_REVOKED")


async def test_two_simultaneous_refreshes_with_one_token_let_at_most_one_through(running: Running) -> None:
    for round_ in range(3):
        caller = await running.signed_in(f"twice{round_}@example.com")
        request = auth_pb2.RefreshTokenRequest(refresh_token=caller.credentials.refresh_token)
        results = await asyncio.gather(*(running.auth.RefreshToken(request) for _ in range(4)),
                                       return_exceptions=True)
        succeeded = [r for r in results if isinstance(r, auth_pb2.RefreshTokenResponse)]
        failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(succeeded) <= 1
        assert len(succeeded) + len(failed) == 4
        assert {e.code() for e in failed} == {grpc.StatusCode.UNAUTHENTICATED}


@pytest.mark.parametrize(
    "token",
    [pytest.param("", id="empty"), pytest.param("made-up-token", id="unknown")],
)
async def test_refresh_refuses_missing_and_unknown_tokens(running: Running, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=token))
    if token:
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason(caught.value) == "REFRESH_TOKEN_INVALID"
    else:
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(caught.value) == {"refresh_token": "INVALID_VALUE"}


async def test_an_expired_session_cannot_be_refreshed(running: Running) -> None:
    caller = await running.signed_in("old@example.com")
    running.clock.advance(running.server.components.settings.refresh_token_ttl)
    await _expect_unauthenticated(
        running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=caller.credentials.refresh_token)),
        "REFRESH_TOKEN_INVALID")


async def test_logout_ends_only_that_session_at_once(running: Running) -> None:
    caller = await running.signed_in("bye@example.com")
    other = (await running.login("bye@example.com")).credentials
    await running.auth.Logout(auth_pb2.LogoutRequest(), metadata=caller.metadata)
    await _expect_unauthenticated(_profile(running, caller.credentials.access_token), "SESSION_REVOKED")
    await _expect_unauthenticated(
        running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=caller.credentials.refresh_token)),
        "REFRESH_TOKEN_INVALID")
    assert (await _profile(running, other.access_token)).user.email == "bye@example.com"


async def test_logout_needs_a_token(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.Logout(auth_pb2.LogoutRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_change_password_keeps_this_session_and_ends_the_others(running: Running) -> None:
    caller = await running.signed_in("chg@example.com")
    other = (await running.login("chg@example.com")).credentials
    await running.auth.ChangePassword(auth_pb2.ChangePasswordRequest(
        current_password=PASSWORD, new_password=NEW_PASSWORD), metadata=caller.metadata)
    assert (await _profile(running, caller.credentials.access_token)).user.email == "chg@example.com"
    await _expect_unauthenticated(_profile(running, other.access_token), "SESSION_REVOKED")
    with pytest.raises(grpc.aio.AioRpcError):
        await running.login("chg@example.com")
    await running.login("chg@example.com", password=NEW_PASSWORD)


async def test_change_password_checks_the_current_one_and_the_policy(running: Running) -> None:
    caller = await running.signed_in("pol@example.com")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.ChangePassword(auth_pb2.ChangePasswordRequest(
            current_password="not my password", new_password=NEW_PASSWORD), metadata=caller.metadata)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "WRONG_CURRENT_PASSWORD"
    assert (await _profile(running, caller.credentials.access_token)).user.email == "pol@example.com"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.ChangePassword(auth_pb2.ChangePasswordRequest(
            current_password="", new_password="pol@example.com"), metadata=caller.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {"current_password": "INVALID_VALUE",
                                        "new_password": "PASSWORD_EQUALS_EMAIL"}
    await running.login("pol@example.com")  # unchanged


async def test_a_disabled_users_tokens_stop_working_at_once(running: Running) -> None:
    caller = await running.signed_in("off@example.com")
    user_id = uuid.UUID(caller.name.removeprefix("users/"))
    await running.server.components.users.set_disabled(None, user_id, True, "test")
    await _expect_unauthenticated(_profile(running, caller.credentials.access_token), "SESSION_REVOKED")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.login("off@example.com")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason(caught.value) == "ACCOUNT_DISABLED"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_pooled_connection_the_database_dropped_answers_unavailable_and_leaves_the_pool(
        database_url: str, clock: ManualClock, mailbox: Mailbox, caplog: pytest.LogCaptureFixture) -> None:
    # The session check runs on psycopg itself (`Database.read_row`), beside SQLAlchemy: a connection
    # that died while it rested in the pool must still read as the database being unreachable, and
    # be dropped, not handed out again. No mail, and the sweeps' runs at start-up are waited out, so
    # no other work takes a connection.
    async with running_server(database_url, clock, mailbox, send_mail=False, health_probe_seconds=3600.0,
                              sweep_seconds=3600.0) as running:
        caller = await running.signed_in("dropped@example.com")
        token = caller.credentials.access_token
        await asyncio.gather(*(_profile(running, token) for _ in range(3)))  # a few connections rest in the pool
        pool = running.server.components.db.engine.pool
        async with asyncio.timeout(30):
            while pool.checkedout():  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
        resting = pool.checkedin()  # type: ignore[attr-defined]
        with psycopg.connect(psycopg_conninfo(database_url), autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND application_name <> %s", (APPLICATION_NAME,)).fetchone()
        assert dropped is not None and dropped[0] == resting >= 1
        refusals = []
        for _ in range(resting + 1):
            try:
                await _profile(running, token)
                break
            except grpc.aio.AioRpcError as error:
                refusals.append((error.code(), reason(error)))
        else:
            pytest.fail(f"still refused after every dropped connection: {refusals}")
    assert refusals and set(refusals) == {(grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")}
    assert len(refusals) <= resting
    # Dropped as lost, not left for the pool's reset to trip over (which would log it as an error).
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
