"""Password reset by mail: real SMTP delivery, single use, expiry, no account enumeration."""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.auth.v1 import auth_pb2
from foothills_rpc.db.models import OutboxMessage
from tests.conftest import Running
from tests.support import reason, text_of, violations

NEW_PASSWORD = "a brand new passphrase"


def _token(message: EmailMessage) -> str:
    body = text_of(message)
    match = re.search(r"^Code: ([A-Za-z0-9_-]{20,})$", body, re.MULTILINE)
    assert match, body
    return match.group(1)


async def _request_reset(running: Running, email: str) -> str:
    await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
    message = await running.mailbox.wait_for(lambda m: m["To"] == email.lower().strip())
    assert message["Subject"] == "Reset your Foothills password"
    assert message["Message-ID"].endswith("@foothills>")
    return _token(message)


async def test_reset_by_mail_sets_the_password_and_ends_every_session(running: Running) -> None:
    caller = await running.signed_in("reset1@example.com")
    token = await _request_reset(running, "Reset1@Example.com")
    await running.auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=caller.metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await running.login("reset1@example.com", password=NEW_PASSWORD)
    with pytest.raises(grpc.aio.AioRpcError):
        await running.login("reset1@example.com")  # the old password is gone


async def test_a_sent_reset_mail_leaves_no_token_in_the_database(running: Running) -> None:
    await running.signed_in("kept@example.com")
    token = await _request_reset(running, "kept@example.com")

    async def stored(session: AsyncSession) -> list[tuple[str, object]]:
        rows = await session.execute(select(OutboxMessage.body, OutboxMessage.sent_at)
                                     .where(OutboxMessage.subject == "Reset your Foothills password"))
        return [(body, sent) for body, sent in rows.all()]

    for _ in range(100):  # the dispatcher records the delivery just after the SMTP server got it
        rows = await running.server.components.db.run(stored)
        if rows and rows[0][1] is not None:
            break
        await asyncio.sleep(0.02)
    assert len(rows) == 1 and rows[0][1] is not None
    assert token not in rows[0][0]


async def test_a_reset_token_works_once(running: Running) -> None:
    await running.register("reset2@example.com")
    token = await _request_reset(running, "reset2@example.com")
    await running.auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.ResetPassword(auth_pb2.ResetPasswordRequest(
            token=token, new_password="yet another passphrase"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) == "RESET_TOKEN_INVALID"


async def test_a_reset_token_expires_after_thirty_minutes(running: Running) -> None:
    await running.register("reset3@example.com")
    token = await _request_reset(running, "reset3@example.com")
    running.clock.advance(running.server.components.settings.password_reset_ttl)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD))
    assert reason(caught.value) == "RESET_TOKEN_INVALID"


async def test_reset_applies_the_password_policy_and_keeps_the_token(running: Running) -> None:
    await running.register("reset4@example.com")
    token = await _request_reset(running, "reset4@example.com")
    for bad, rule in [("short", "PASSWORD_TOO_SHORT"), ("reset4@example.com", "PASSWORD_EQUALS_EMAIL")]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await running.auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=bad))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(caught.value) == {"new_password": rule}
    # A refused password did not use the token up.
    await running.auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD))


async def test_unknown_and_known_emails_get_the_same_answer(running: Running) -> None:
    await running.register("known@example.com")
    known = await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email="known@example.com"))
    unknown = await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(
        email="unknown@example.com"))
    assert known == unknown
    await running.mailbox.wait_for(lambda m: m["To"] == "known@example.com")
    await running.server.components.dispatcher.deliver_due()  # flush: nothing else is due
    assert running.mailbox.to("unknown@example.com") == []


@pytest.mark.parametrize("email", [pytest.param("", id="empty"), pytest.param("nope", id="malformed")])
async def test_request_reset_validates_the_email(running: Running, email: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"email"}


async def test_reset_without_a_token_is_invalid_argument(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.ResetPassword(auth_pb2.ResetPasswordRequest(new_password=NEW_PASSWORD))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"token"}
