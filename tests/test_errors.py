"""Error mapping: every domain error has a status code; unexpected failures never leak details."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import text

from foothills.auth.v1 import auth_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.domain import errors
from foothills_rpc.interceptors.auth import principal
from foothills_rpc.interceptors.errors import STATUS_CODES
from foothills_rpc.interceptors.hygiene import request_violations
from tests.conftest import Running
from tests.support import reason, violations


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def test_every_domain_error_has_a_status_code() -> None:
    unmapped = [cls.__name__ for cls in _subclasses(errors.DomainError)
                if not any(base in STATUS_CODES for base in cls.__mro__)]
    assert unmapped == []


async def test_an_unexpected_failure_is_internal_with_a_request_id_and_no_sql(
        running: Running, caplog: pytest.LogCaptureFixture) -> None:
    """Break the schema under the running server: the caller sees INTERNAL, the log sees why."""

    async def drop(session):  # type: ignore[no-untyped-def]
        await session.execute(text("DROP TABLE login_throttle"))

    await running.server.components.db.run(drop)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.login("who@example.com", password="wrong password!!")
    error = caught.value
    assert error.code() == grpc.StatusCode.INTERNAL
    trailers = dict(error.trailing_metadata() or ())
    request_id = trailers["x-request-id"]
    assert error.details() == f"internal error; quote request id {request_id}"
    assert "login_throttle" not in error.details()
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log only


async def test_a_callers_request_id_is_echoed(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=(("x-request-id", "trace-123"),))
    assert dict(caught.value.trailing_metadata() or ())["x-request-id"] == "trace-123"


async def test_request_violations_are_invalid_argument_in_any_field(running: Running) -> None:
    """PostgreSQL text cannot hold NUL; the pipeline refuses it in any field of any request, by path."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.Register(auth_pb2.RegisterRequest(email="a\x00@example.com", password="x" * 12,
                                                             display_name="A"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {"email": "INVALID_VALUE"}
    caller = await running.signed_in("nul@example.com")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.UpdateProfile(auth_pb2.UpdateProfileRequest(user={"phone": "+4420\x00"}),
                                         metadata=caller.metadata)
    assert violations(caught.value) == {"user.phone": "INVALID_VALUE"}


async def test_an_unknown_method_is_unimplemented_and_the_server_goes_on(running: Running) -> None:
    unknown = running.channel.unary_unary("/foothills.auth.v1.AuthService/NoSuchMethod")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unknown(b"")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    await running.register("after-unknown@example.com")


@pytest.mark.parametrize(("header", "expected"), [
    pytest.param("Bearer not-a-jwt", "TOKEN_INVALID", id="forged"),
    pytest.param("Basic dXNlcjpwYXNz", "TOKEN_INVALID", id="basic"),
    pytest.param("Bearer ", "TOKEN_INVALID", id="empty-bearer"),
])
async def test_a_broken_token_on_a_public_call_is_refused_not_ignored(running: Running, header: str,
                                                                       expected: str) -> None:
    """A public RPC takes an optional token, but a token that is sent is checked: a client with a broken
    one learns it at once instead of quietly running as anonymous."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.auth.Register(auth_pb2.RegisterRequest(
            email="stale@example.com", password="long enough pass", display_name="S"),
            metadata=(("authorization", header),))
    assert (caught.value.code(), reason(caught.value)) == (grpc.StatusCode.UNAUTHENTICATED, expected)
    registered = await running.auth.Register(auth_pb2.RegisterRequest(
        email="stale@example.com", password="long enough pass", display_name="S"))  # nothing was created
    assert registered.user.name.startswith("users/")


async def test_an_expired_token_on_a_public_call_says_it_expired(running: Running) -> None:
    caller = await running.signed_in("expired@example.com")
    running.clock.advance(timedelta(hours=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.catalog.ListCategories(catalog_pb2.ListCategoriesRequest(), metadata=caller.metadata)
    assert (caught.value.code(), reason(caught.value)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")
    fresh = await running.again(caller)
    await running.catalog.ListCategories(catalog_pb2.ListCategoriesRequest(), metadata=fresh.metadata)


async def test_health_and_reflection_never_read_a_token(running: Running) -> None:
    """grpcurl sends the RPC's headers to reflection too, and a probe may carry anything: an expired
    or doubled token must not hide the server's health or its description."""
    headers = (("authorization", "Bearer not-a-jwt"), ("authorization", "Basic x"))
    health = await health_pb2_grpc.HealthStub(running.channel).Check(health_pb2.HealthCheckRequest(), metadata=headers)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    answers = [answer async for answer in stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=headers)]
    assert "foothills.auth.v1.AuthService" in {s.name for s in answers[0].list_services_response.service}


@pytest.mark.parametrize("method", ["public", "signed-in"])
async def test_more_than_one_authorization_header_is_refused(running: Running, method: str) -> None:
    """Two headers are never resolved by picking one (a proxy and the server could pick differently),
    not even two copies of the same valid token."""
    ann = await running.signed_in("ann@example.com")
    token = ann.metadata[0]
    for headers in ((token, token), (token, ("authorization", "Bearer forged"))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            if method == "public":
                await running.catalog.ListCategories(catalog_pb2.ListCategoriesRequest(), metadata=headers)
            else:
                await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=headers)
        assert (caught.value.code(), reason(caught.value)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
        assert "one `authorization` header" in (caught.value.details() or "")
    await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=ann.metadata)


async def test_a_method_without_a_policy_is_denied(running: Running) -> None:
    """Default deny, at the component every call passes through (every served RPC has an entry, see
    test_policy.py, so no real call can reach this)."""
    with pytest.raises(errors.PermissionDenied) as caught:
        await running.server.components.authenticator.authorize("/foothills.auth.v1.AuthService/Unlisted", [])
    assert caught.value.reason == "NO_POLICY"


def test_the_current_principal_outside_a_signed_in_call_is_unauthenticated() -> None:
    with pytest.raises(errors.Unauthenticated):
        principal()


def test_nul_checks_stop_at_a_depth_no_contract_of_ours_reaches() -> None:
    """google.protobuf.Value nests without end; the check walks 16 levels and no further."""
    value = struct_pb2.Value(string_value="deep\x00")
    for _ in range(40):
        value = struct_pb2.Value(list_value=struct_pb2.ListValue(values=[value]))
    assert request_violations(value) == []
    shallow = struct_pb2.Value(list_value=struct_pb2.ListValue(values=[struct_pb2.Value(string_value="x\x00")]))
    assert [v.field for v in request_violations(shallow)] == ["list_value.values[0].string_value"]
