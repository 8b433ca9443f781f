"""Register, Login and GetProfile through the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from foothills.auth.v1 import auth_pb2, user_pb2
from tests.conftest import PASSWORD, Running
from tests.support import reason, violations


async def test_register_normalises_email_and_makes_a_customer(running: Running) -> None:
    response = await running.auth.Register(auth_pb2.RegisterRequest(
        email="  Ann.Smith@Example.COM ", password=PASSWORD, display_name=" Ann "))
    user = response.user
    assert user.email == "ann.smith@example.com"
    assert user.display_name == "Ann"
    assert user.role == user_pb2.ROLE_CUSTOMER
    assert user.name.startswith("users/") and len(user.name) == len("users/") + 32
    assert not user.disabled
    assert user.create_time.ToDatetime() == running.clock.now().replace(tzinfo=None)


async def test_register_refuses_an_email_taken_in_another_case(running: Running) -> None:
    await running.register("bob@example.com")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.register("BOB@example.com")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(caught.value) == "EMAIL_TAKEN"


async def test_concurrent_registrations_of_one_email_create_one_account(running: Running) -> None:
    results = await asyncio.gather(*(running.register("race@example.com") for _ in range(8)),
                                   return_exceptions=True)
    created = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) == 1
    assert len(refused) == 7
    assert {e.code() for e in refused} == {grpc.StatusCode.ALREADY_EXISTS}


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        pytest.param("short pass", "PASSWORD_TOO_SHORT", id="11-chars"),
        pytest.param("x" * 129, "PASSWORD_TOO_LONG", id="129-chars"),
        pytest.param("qwertyuiop123", "PASSWORD_TOO_COMMON", id="common"),
        pytest.param("PASSWORD1234", "PASSWORD_TOO_COMMON", id="common-any-case"),
        pytest.param("carol@example.com", "PASSWORD_EQUALS_EMAIL", id="equals-email"),
    ],
)
async def test_register_enforces_the_password_policy(running: Running, password: str, rule: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.register("carol@example.com", password=password)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {"password": rule}


async def test_register_accepts_the_policy_boundaries(running: Running) -> None:
    await running.register("min@example.com", password="abcdefghijk!")  # exactly 12
    await running.register("max@example.com", password="y" * 127 + "!")  # exactly 128


@pytest.mark.parametrize(
    ("email", "name", "expected"),
    [
        pytest.param("", "Dan", {"email"}, id="no-email"),
        pytest.param("not-an-email", "Dan", {"email"}, id="malformed-email"),
        pytest.param("a" * 250 + "@x.io", "Dan", {"email"}, id="long-email"),
        pytest.param("dan@example.com", "", {"display_name"}, id="no-name"),
        pytest.param("dan@example.com", "n" * 101, {"display_name"}, id="long-name"),
        pytest.param("", "", {"email", "display_name"}, id="every-bad-field-at-once"),
    ],
)
async def test_register_reports_each_bad_field(running: Running, email: str, name: str, expected: set[str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name=name))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == expected


async def test_login_returns_tokens_that_open_get_profile(running: Running) -> None:
    name = await running.register("erin@example.com", name="Erin")
    login = await running.login("ERIN@example.com")
    assert login.user.name == name
    assert login.credentials.refresh_token
    expected_expiry = running.clock.now() + running.server.components.settings.access_token_ttl
    assert login.credentials.access_token_expire_time.ToDatetime().timestamp() == pytest.approx(
        expected_expiry.timestamp(), abs=1)
    profile = await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=(
        ("authorization", f"Bearer {login.credentials.access_token}"),))
    assert profile.user.email == "erin@example.com"
    assert profile.user.display_name == "Erin"


async def test_wrong_password_and_unknown_email_get_the_same_answer(running: Running) -> None:
    await running.register("fay@example.com")
    answers = []
    for email, password in [("fay@example.com", "wrong password!!"), ("nobody@example.com", PASSWORD)]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await running.login(email, password=password)
        answers.append((caught.value.code(), caught.value.details(), reason(caught.value)))
    assert answers[0] == answers[1] == (grpc.StatusCode.UNAUTHENTICATED, "email or password is incorrect",
                                        "INVALID_CREDENTIALS")


async def test_login_without_fields_is_invalid_argument(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.Login(auth_pb2.LoginRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"email", "password"}


@pytest.mark.parametrize(
    ("metadata", "expected_reason"),
    [
        pytest.param((), "TOKEN_MISSING", id="no-token"),
        pytest.param((("authorization", "Basic abc"),), "TOKEN_INVALID", id="wrong-scheme"),
        pytest.param((("authorization", "Bearer not.a.jwt"),), "TOKEN_INVALID", id="garbage"),
    ],
)
async def test_get_profile_needs_a_valid_token(running: Running, metadata: tuple, expected_reason: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) == expected_reason


async def test_an_expired_access_token_is_refused(running: Running) -> None:
    caller = await running.signed_in("gus@example.com")
    await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)  # its signature is known
    running.clock.advance(running.server.components.settings.access_token_ttl - timedelta(seconds=1))
    await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)
    running.clock.advance(timedelta(seconds=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) == "TOKEN_EXPIRED"
