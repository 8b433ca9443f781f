"""Forged, stale and misused tokens against every protected RPC (RFC 8725, OWASP API2:2023).

Each forgery is tried on every RPC that needs a token, unary and streaming alike, through the real
server: every one must answer UNAUTHENTICATED, before any validation or data access happens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import descriptor_pool, message_factory

from foothills.admin.v1 import admin_pb2
from foothills.auth.v1 import auth_pb2
from foothills_rpc.domain.users import Role
from foothills_rpc.policy import POLICY
from tests.conftest import PASSWORD, Caller, Running
from tests.support import TEST_SECRET, served_methods, text_of

PROTECTED: list[tuple[str, Any]] = [(n, m) for n, m in served_methods() if n in POLICY and not POLICY[n].public]
ISSUER, AUDIENCE = "foothills", "foothills-api"


def _claims(running: Running, victim: Caller, **changes: Any) -> dict[str, Any]:
    """Claims exactly like a real access token of `victim`'s, then changed."""
    real = jwt.decode(victim.credentials.access_token, TEST_SECRET, algorithms=["HS256"], audience=AUDIENCE,
                      options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    real.update(changes)
    return {key: value for key, value in real.items() if value is not None}


def _sign(claims: dict[str, Any], *, key: str = TEST_SECRET, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers=headers)


def _epoch(running: Running, offset: timedelta) -> int:
    return int((running.clock.now() + offset).timestamp())


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _signed_with_empty_key(claims: dict[str, Any], header: dict[str, Any]) -> str:
    """What a verifier that read its key from the `kid` path (/dev/null: empty) would accept."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', **header})}.{_b64(claims)}"
    signature = hmac.new(b"", signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


async def _reset_token(running: Running, victim: Caller) -> str:
    await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=victim.email))
    mail = await running.mailbox.wait_for(lambda m: m["To"] == victim.email)
    match = re.search(r"^Code: ([A-Za-z0-9_-]{20,})$", text_of(mail), re.MULTILINE)
    assert match is not None
    return match.group(1)


Forgery = Callable[[Running, Caller], Awaitable[str]]


async def _after_password_change(running: Running, victim: Caller) -> str:
    other = await running.login(victim.email)  # a second session; the change ends the first
    await running.auth.ChangePassword(auth_pb2.ChangePasswordRequest(
        current_password=PASSWORD, new_password="an entirely new passphrase"),
        metadata=(("authorization", f"Bearer {other.credentials.access_token}"),))
    return victim.credentials.access_token


async def _after_logout(running: Running, victim: Caller) -> str:
    await running.auth.Logout(auth_pb2.LogoutRequest(), metadata=victim.metadata)
    return victim.credentials.access_token


async def _of_a_disabled_user(running: Running, victim: Caller) -> str:
    admin = await running.signed_in("root@example.com", role=Role.ADMIN)
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=victim.name), metadata=admin.metadata)
    return victim.credentials.access_token


def _made(build: Callable[[Running, Caller], str]) -> Forgery:
    async def forge(running: Running, victim: Caller) -> str:
        return build(running, victim)
    return forge


FORGERIES: dict[str, Forgery] = {
    "malformed": _made(lambda r, v: "not-a-jwt"),
    "empty-bearer": _made(lambda r, v: ""),
    "expired": _made(lambda r, v: _sign(_claims(r, v, exp=_epoch(r, timedelta(seconds=-1))))),
    "not-yet-valid": _made(lambda r, v: _sign(_claims(r, v, nbf=_epoch(r, timedelta(hours=1))))),
    "alg-none": _made(lambda r, v: _unsigned(_claims(r, v))),
    "other-key": _made(lambda r, v: _sign(_claims(r, v), key="another secret, at least thirty-two bytes")),
    "tampered-signature": _made(lambda r, v: v.credentials.access_token[:-4]
                                + ("AAAA" if not v.credentials.access_token.endswith("AAAA") else "BBBB")),
    "tampered-payload": _made(lambda r, v: ".".join([v.credentials.access_token.split(".")[0],
                                                     _b64(_claims(r, v, role="admin")),
                                                     v.credentials.access_token.split(".")[2]])),
    "wrong-audience": _made(lambda r, v: _sign(_claims(r, v, aud="someone-else"))),
    "wrong-issuer": _made(lambda r, v: _sign(_claims(r, v, iss="evil"))),
    "missing-exp": _made(lambda r, v: _sign(_claims(r, v, exp=None))),
    "missing-sub": _made(lambda r, v: _sign(_claims(r, v, sub=None))),
    "unknown-subject": _made(lambda r, v: _sign(_claims(r, v, sub=str(uuid.uuid4())))),
    "jku-header": _made(lambda r, v: _sign(_claims(r, v), headers={"jku": "https://evil.example/keys"})),
    "jwk-header": _made(lambda r, v: _sign(_claims(r, v), headers={"jwk": {"kty": "oct", "k": "c2VjcmV0"}})),
    "kid-injection": _made(lambda r, v: _signed_with_empty_key(_claims(r, v), {"kid": "../../../../dev/null"})),
    "unknown-crit": _made(lambda r, v: _sign(_claims(r, v), headers={"crit": ["exp"], "exp": 1})),
    "refresh-token-type": _made(lambda r, v: _sign(_claims(r, v, typ="refresh"))),
    "refresh-token-as-access": _made(lambda r, v: v.credentials.refresh_token),
    "reset-token-as-access": _reset_token,
    "disabled-user": _of_a_disabled_user,
    "issued-before-password-change": _after_password_change,
    "after-logout": _after_logout,
}


def _stub(running: Running, name: str, method: Any) -> tuple[Any, Any]:
    pool = descriptor_pool.Default()
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName(method.input_type.full_name))
    response = message_factory.GetMessageClass(pool.FindMessageTypeByName(method.output_type.full_name))
    factory = running.channel.unary_stream if method.server_streaming else running.channel.unary_unary
    return factory(name, request_serializer=request.SerializeToString,
                   response_deserializer=response.FromString), request


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_every_protected_rpc_refuses_the_token(running: Running, forgery: str) -> None:
    victim = await running.signed_in("victim@example.com", role=Role.ADMIN)  # the most a token could open
    await running.signed_in("keeper@example.com", role=Role.ADMIN)  # so the victim is not the last admin
    token = await FORGERIES[forgery](running, victim)
    metadata = (("authorization", f"Bearer {token}"),)
    answers = {}
    for name, method in PROTECTED:
        call, request = _stub(running, name, method)
        try:
            if method.server_streaming:
                stream = call(request(), metadata=metadata)
                async for _ in stream:
                    break
                answers[name] = "OK"
            else:
                await call(request(), metadata=metadata)
                answers[name] = "OK"
        except grpc.aio.AioRpcError as error:
            answers[name] = error.code().name
    assert answers == {name: "UNAUTHENTICATED" for name, _ in PROTECTED}


async def test_the_genuine_token_passes_authentication_everywhere(running: Running) -> None:
    # The control: the same harness with the real token gets past authentication on every RPC (the
    # empty requests then fail validation or lookups, never UNAUTHENTICATED).
    victim = await running.signed_in("victim@example.com", role=Role.ADMIN)
    unauthenticated = []
    for name, method in sorted(PROTECTED, key=lambda pair: pair[0].endswith("/Logout")):  # Logout ends it: last
        call, request = _stub(running, name, method)
        try:
            if method.server_streaming:
                async for _ in call(request(), metadata=victim.metadata, timeout=1):
                    break
            else:
                await call(request(), metadata=victim.metadata)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                unauthenticated.append(name)
    assert unauthenticated == []
