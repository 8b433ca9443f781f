"""Default deny: every RPC the server exposes has a policy entry, and the entries are enforced."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory

from foothills_rpc.domain.users import Role
from foothills_rpc.policy import POLICY
from tests.conftest import Running
from tests.support import reason, served_methods


def test_every_rpc_has_a_policy_entry() -> None:
    missing = [name for name, _ in served_methods() if name not in POLICY]
    assert missing == [], f"RPCs without a policy entry (default deny would refuse them): {missing}"


def test_every_policy_entry_names_a_real_rpc() -> None:
    real = {name for name, _ in served_methods()}
    assert sorted(set(POLICY) - real) == []


PROTECTED = [(name, method) for name, method in served_methods()
             if name in POLICY and not POLICY[name].public
             and not method.client_streaming and not method.server_streaming]


def _call(running: Running, name: str, method: object) -> grpc.aio.UnaryUnaryMultiCallable:
    pool = descriptor_pool.Default()
    request_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(method.input_type.full_name))  # type: ignore[attr-defined]
    response_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(method.output_type.full_name))  # type: ignore[attr-defined]
    return running.channel.unary_unary(name, request_serializer=request_class.SerializeToString,
                                       response_deserializer=response_class.FromString), request_class


@pytest.mark.parametrize(("name", "method"), [pytest.param(n, m, id=n) for n, m in PROTECTED])
async def test_protected_rpcs_refuse_anonymous_callers(running: Running, name: str, method: object) -> None:
    call, request_class = _call(running, name, method)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request_class())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) == "TOKEN_MISSING"


ROLE_RESTRICTED = [(n, m) for n, m in PROTECTED if POLICY[n].roles]


@pytest.mark.parametrize(("name", "method"), [pytest.param(n, m, id=n) for n, m in ROLE_RESTRICTED])
async def test_role_restricted_rpcs_refuse_other_roles(running: Running, name: str, method: object) -> None:
    call, request_class = _call(running, name, method)
    for index, role in enumerate(r for r in Role if r not in POLICY[name].roles):
        caller = await running.signed_in(f"role{index}@example.com", role=role)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request_class(), metadata=caller.metadata)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason(caught.value) == "ROLE_NOT_ALLOWED"
