"""The session cache across server processes (db/session_cache.py).

Two servers on one database, each with its own components (cache, LISTEN connection, pool), as two
processes on two hosts would have. A session ended or changed through one server must end or change
on the other, a notification late; on PostgreSQL the cache must really answer from memory, forget
a user's sessions on their notification only, never serve a session past its expiry, and switch
itself off while its LISTEN connection is down. (On SQLite it is off: the other tests cover that.)
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest

from foothills.admin.v1 import admin_pb2
from foothills.auth.v1 import auth_pb2, user_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.changes import APPLICATION_NAME, SESSIONS
from foothills_rpc.domain.users import Role
from tests.conftest import PASSWORD, Caller, Running, eventually, listening, running_server
from tests.support import Mailbox, reason, run_sql

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def _answer(server: Running, caller: Caller) -> str:
    """'OK' if `server` takes the caller's token, else the refusal's reason."""
    try:
        await server.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)
    except grpc.aio.AioRpcError as error:
        return reason(error)
    return "OK"


async def _refused_on(server: Running, caller: Caller, expected: str = "SESSION_REVOKED") -> None:
    async def refused() -> bool:
        return await _answer(server, caller) == expected

    await eventually(refused)


def _user_id(caller: Caller) -> uuid.UUID:
    return uuid.UUID(caller.name.removeprefix("users/"))


async def test_sessions_come_from_memory_and_only_the_named_users_are_forgotten(
        running: Running, other: Running, database_url: str) -> None:
    ann = await running.signed_in("ann@example.com")
    bob = await running.signed_in("bob@example.com")
    await listening(running, other)
    assert [await _answer(other, ann), await _answer(other, bob)] == ["OK", "OK"]
    # Both sessions ended behind the servers' backs (no notification): the cache keeps answering...
    run_sql(database_url, "UPDATE auth_sessions SET revoked_at = now(), revoke_reason = 'sql'")
    assert [await _answer(other, ann), await _answer(other, bob)] == ["OK", "OK"]
    # ... until the notification that every change of a user's sessions sends, for that user only.
    run_sql(database_url, "SELECT pg_notify(%s, %s)", SESSIONS, _user_id(ann).hex)
    await _refused_on(other, ann)
    assert await _answer(other, bob) == "OK"
    # A payload that names nobody makes a process forget every session rather than guess.
    run_sql(database_url, "SELECT pg_notify(%s, 'not a user id')", SESSIONS)
    await _refused_on(other, bob)


async def test_a_logout_on_one_server_ends_the_session_on_the_other(running: Running, other: Running) -> None:
    caller = await running.signed_in("bye@example.com")
    staying = await running.again(caller)
    await listening(running, other)
    assert await _answer(other, caller) == "OK"
    await running.auth.Logout(auth_pb2.LogoutRequest(), metadata=caller.metadata)
    assert await _answer(running, caller) == "SESSION_REVOKED"  # at once where it was made
    await _refused_on(other, caller)
    assert await _answer(other, staying) == "OK"


async def test_a_password_change_and_a_disable_end_sessions_on_the_other_server(running: Running,
                                                                                other: Running) -> None:
    caller = await running.signed_in("chg@example.com")
    elsewhere = await running.again(caller)
    await listening(running, other)
    assert await _answer(other, elsewhere) == "OK"
    await running.auth.ChangePassword(auth_pb2.ChangePasswordRequest(
        current_password=PASSWORD, new_password="another long passphrase"), metadata=caller.metadata)
    await _refused_on(other, elsewhere)
    assert await _answer(other, caller) == "OK"  # the session that changed it stays
    await running.server.components.users.set_disabled(None, _user_id(caller), True, "test")
    assert await _answer(running, caller) == "SESSION_REVOKED"
    await _refused_on(other, caller)


async def test_a_role_change_on_one_server_applies_on_the_other(running: Running, other: Running) -> None:
    admin = await running.signed_in("root@example.com", role=Role.ADMIN)
    deputy = await running.signed_in("deputy@example.com", role=Role.ADMIN)
    await listening(running, other)
    users = admin_pb2.ListUsersRequest()
    await other.admin.ListUsers(users, metadata=deputy.metadata)  # an admin, as the cache remembers
    await running.admin.SetUserRole(admin_pb2.SetUserRoleRequest(name=deputy.name, role=user_pb2.ROLE_CUSTOMER),
                                    metadata=admin.metadata)

    async def demoted() -> bool:
        try:
            await other.admin.ListUsers(users, metadata=deputy.metadata)
        except grpc.aio.AioRpcError as error:
            return error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "ROLE_NOT_ALLOWED"
        return False

    await eventually(demoted)


async def test_a_cached_session_is_never_served_past_its_expiry(database_url: str, clock: ManualClock,
                                                                mailbox: Mailbox) -> None:
    # Sessions shorter than access tokens: a token still valid by its own expiry outlives its session.
    async with running_server(database_url, clock, mailbox, refresh_token_ttl=timedelta(minutes=5),
                              access_token_ttl=timedelta(minutes=15)) as running:
        caller = await running.signed_in("brief@example.com")
        await listening(running)
        assert await _answer(running, caller) == "OK"
        clock.advance(timedelta(minutes=6))
        assert await _answer(running, caller) == "SESSION_REVOKED"


async def test_a_lost_listen_connection_turns_the_session_cache_off_until_it_is_back(
        running: Running, other: Running, database_url: str) -> None:
    caller = await running.signed_in("gap@example.com")
    await listening(running, other)
    assert await _answer(other, caller) == "OK"
    # Both LISTEN connections die; a notification sent meanwhile would be lost, so the caches must
    # forget every session and ask the database until they listen again.
    run_sql(database_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            APPLICATION_NAME)
    run_sql(database_url, "UPDATE auth_sessions SET revoked_at = now(), revoke_reason = 'sql'")
    await _refused_on(other, caller)


async def test_a_process_applies_its_own_session_changes_at_once_not_a_notification_late(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the process's own forgetting after each commit remains: its notifications are held back."""
    admin = await running.signed_in("root@example.com", role=Role.ADMIN)
    leaving, changing, demoted, disabled = [await running.signed_in(f"{who}@example.com", role=Role.ADMIN)
                                            for who in ("leaving", "changing", "demoted", "disabled")]
    changing_elsewhere = await running.again(changing)
    await listening(running)
    monkeypatch.setitem(running.server.components.listener._subscribers, SESSIONS, [])
    for caller in (leaving, changing_elsewhere, demoted, disabled):
        assert await _answer(running, caller) == "OK"  # and cached
    users = admin_pb2.ListUsersRequest()
    await running.admin.ListUsers(users, metadata=demoted.metadata)

    await running.auth.Logout(auth_pb2.LogoutRequest(), metadata=leaving.metadata)
    assert await _answer(running, leaving) == "SESSION_REVOKED"
    await running.auth.ChangePassword(auth_pb2.ChangePasswordRequest(
        current_password=PASSWORD, new_password="another long passphrase"), metadata=changing.metadata)
    assert await _answer(running, changing_elsewhere) == "SESSION_REVOKED"
    await running.admin.SetUserRole(admin_pb2.SetUserRoleRequest(name=demoted.name, role=user_pb2.ROLE_CUSTOMER),
                                    metadata=admin.metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.admin.ListUsers(users, metadata=demoted.metadata)
    assert reason(caught.value) == "ROLE_NOT_ALLOWED"
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=disabled.name, reason="audit"),
                                    metadata=admin.metadata)
    assert await _answer(running, disabled) == "SESSION_REVOKED"


async def test_a_reused_refresh_token_ends_its_session_at_once_in_the_process_that_saw_it(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = await running.signed_in("thief@example.com")
    await listening(running)
    monkeypatch.setitem(running.server.components.listener._subscribers, SESSIONS, [])
    rotated = await running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(
        refresh_token=caller.credentials.refresh_token))
    current = Caller(name=caller.name, email=caller.email, credentials=rotated.credentials)
    assert await _answer(running, current) == "OK"  # and cached
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=caller.credentials.refresh_token))
    assert reason(caught.value) == "REFRESH_TOKEN_REUSED"
    assert await _answer(running, current) == "SESSION_REVOKED"
