"""Error mapping: every domain error has a status code; unexpected failures never leak details."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text

from foothills.auth.v1 import auth_pb2
from foothills_rpc.domain import errors
from foothills_rpc.interceptors.errors import STATUS_CODES
from tests.conftest import Running
from tests.support import violations


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


async def test_nul_characters_are_invalid_argument_in_any_field(running: Running) -> None:
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
