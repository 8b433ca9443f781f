"""AdminService user management through the real server, on SQLite and PostgreSQL.

ListUsers, GetUser, SetUserRole, DisableUser and EnableUser: who may call them, paging and filters,
name and argument validation, the last-admin rule (also under concurrency) and what disabling does to
sign-in and to the tokens a user already holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.admin.v1 import admin_pb2
from foothills.auth.v1 import auth_pb2, user_pb2
from foothills_rpc.db import accounts as repo
from foothills_rpc.db.accounts import UserFilter
from foothills_rpc.domain.users import Role
from foothills_rpc.security.page_tokens import PageTokens
from tests.conftest import PASSWORD, Caller, Running
from tests.support import TEST_SECRET, reason, violations

Metadata = tuple[tuple[str, str], ...]
SECOND = timedelta(seconds=1)
ROLE_TO_PROTO = {Role.CUSTOMER: user_pb2.ROLE_CUSTOMER, Role.PROVIDER: user_pb2.ROLE_PROVIDER,
                 Role.ADMIN: user_pb2.ROLE_ADMIN}


# --- helpers ---------------------------------------------------------------------------------


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The error `call` fails with; the test fails when it succeeds."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def _bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


async def _admin(running: Running, email: str = "root@example.com") -> Caller:
    """A new, signed-in admin (the first one is the platform's only admin)."""
    return await running.signed_in(email, role=Role.ADMIN)


async def _get(running: Running, caller: Caller, name: str) -> user_pb2.User:
    return (await running.admin.GetUser(admin_pb2.GetUserRequest(name=name), metadata=caller.metadata)).user


async def _list(running: Running, caller: Caller, **fields: Any) -> admin_pb2.ListUsersResponse:
    return await running.admin.ListUsers(admin_pb2.ListUsersRequest(**fields), metadata=caller.metadata)


async def _list_all(running: Running, caller: Caller, *, page_size: int = 200, **filters: Any) -> list[user_pb2.User]:
    """Every user matching `filters`, following next_page_token to the end."""
    users: list[user_pb2.User] = []
    token = ""
    for _ in range(100):
        page = await _list(running, caller, page_size=page_size, page_token=token, **filters)
        users.extend(page.users)
        token = page.next_page_token
        if not token:
            return users
    raise AssertionError("ListUsers never returned an empty next_page_token")


async def _set_role(running: Running, caller: Caller, name: str, role: int) -> admin_pb2.SetUserRoleResponse:
    return await running.admin.SetUserRole(admin_pb2.SetUserRoleRequest(name=name, role=role),
                                           metadata=caller.metadata)


async def _disable(running: Running, caller: Caller, name: str, why: str = "") -> admin_pb2.DisableUserResponse:
    return await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=name, reason=why),
                                           metadata=caller.metadata)


async def _enable(running: Running, caller: Caller, name: str) -> admin_pb2.EnableUserResponse:
    return await running.admin.EnableUser(admin_pb2.EnableUserRequest(name=name), metadata=caller.metadata)


async def _profile(running: Running, token: str) -> auth_pb2.GetProfileResponse:
    return await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=_bearer(token))


async def _refresh(running: Running, token: str) -> auth_pb2.RefreshTokenResponse:
    return await running.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=token))


async def _seed(running: Running, count: int) -> list[str]:
    """Inserts `count` customers straight into the database, one second apart, oldest first.

    Much faster than `count` registrations (no password hashing); for tests that only list users.
    """
    running.clock.advance(SECOND)
    start = running.clock.now()

    async def insert(session: AsyncSession) -> list[str]:
        names = []
        for i in range(count):
            user = await repo.insert_user(session, email=f"seed{i:04}@example.com", password_hash="-",
                                          display_name=f"Seed {i}", role=Role.CUSTOMER, now=start + i * SECOND)
            names.append(f"users/{user.id.hex}")
        return names

    names = await running.server.components.db.run(insert)
    running.clock.advance(count * SECOND)
    return names


def _emails(users: Any) -> list[str]:
    return [u.email for u in users]


# --- who may call ----------------------------------------------------------------------------


def _admin_calls(target: str, dormant: str) -> dict[str, Callable[[Running, Metadata], Awaitable[object]]]:
    """One representative call per AdminService RPC: changes `target`, re-enables `dormant`."""
    return {
        "ListUsers": lambda r, md: r.admin.ListUsers(admin_pb2.ListUsersRequest(), metadata=md),
        "GetUser": lambda r, md: r.admin.GetUser(admin_pb2.GetUserRequest(name=target), metadata=md),
        "SetUserRole": lambda r, md: r.admin.SetUserRole(
            admin_pb2.SetUserRoleRequest(name=target, role=user_pb2.ROLE_PROVIDER), metadata=md),
        "DisableUser": lambda r, md: r.admin.DisableUser(
            admin_pb2.DisableUserRequest(name=target, reason="testing"), metadata=md),
        "EnableUser": lambda r, md: r.admin.EnableUser(admin_pb2.EnableUserRequest(name=dormant), metadata=md),
    }


USER_RPCS = {"ListUsers", "GetUser", "SetUserRole", "DisableUser", "EnableUser"}


def test_the_permission_matrix_covers_every_user_management_rpc() -> None:
    """The user-management RPCs get the matrix below; the others have theirs in test_admin_oversight."""
    service = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
    assert {m.name for m in service.methods} >= USER_RPCS
    assert set(_admin_calls("users/x", "users/y")) == USER_RPCS


@pytest.mark.parametrize(
    ("caller_kind", "code", "expected_reason"),
    [
        pytest.param("anonymous", grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING", id="anonymous"),
        pytest.param("customer", grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED", id="customer"),
        pytest.param("provider", grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED", id="provider"),
        pytest.param("disabled-admin", grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED", id="disabled-admin"),
    ],
)
async def test_only_active_admins_may_call_admin_rpcs(
    running: Running, caller_kind: str, code: grpc.StatusCode, expected_reason: str
) -> None:
    """Every AdminService RPC refuses callers without a token, with a non-admin role, or whose admin
    account was disabled (their token died with it); a refused call changes nothing."""
    root = await _admin(running)
    target = await running.register("target@example.com")
    dormant = await running.register("dormant@example.com")
    await _disable(running, root, dormant)
    metadata: Metadata = ()
    if caller_kind in {"customer", "provider"}:
        metadata = (await running.signed_in(f"{caller_kind}@example.com", role=Role(caller_kind))).metadata
    elif caller_kind == "disabled-admin":
        former = await _admin(running, "former@example.com")
        await _disable(running, root, former.name)
        metadata = former.metadata
    before = await _list_all(running, root)
    running.clock.advance(SECOND)  # a change now would show in update_time

    for rpc, call in _admin_calls(target, dormant).items():
        error = await _error(call(running, metadata))
        assert (rpc, error.code(), reason(error)) == (rpc, code, expected_reason)

    assert await _list_all(running, root) == before
    target_now = await _get(running, root, target)
    assert (target_now.role, target_now.disabled) == (user_pb2.ROLE_CUSTOMER, False)
    assert (await _get(running, root, dormant)).disabled


async def test_an_admin_may_call_every_admin_rpc(running: Running) -> None:
    """The same calls, made by an active admin, succeed and take effect."""
    root = await _admin(running)
    target = await running.register("target@example.com")
    dormant = await running.register("dormant@example.com")
    await _disable(running, root, dormant)

    for call in _admin_calls(target, dormant).values():
        await call(running, root.metadata)

    target_now = await _get(running, root, target)
    assert (target_now.role, target_now.disabled) == (user_pb2.ROLE_PROVIDER, True)
    assert not (await _get(running, root, dormant)).disabled


# --- ListUsers: order and paging -------------------------------------------------------------


async def test_list_users_returns_the_oldest_account_first(running: Running) -> None:
    """Creation order, not email, name or id order."""
    root = await _admin(running)
    order = [("mia", "Zoe"), ("zed", "Al"), ("abe", "Mo"), ("kim", "Bea")]
    for local, name in order:
        running.clock.advance(SECOND)
        await running.register(f"{local}@example.com", name=name)

    page = await _list(running, root)

    assert _emails(page.users) == ["root@example.com"] + [f"{local}@example.com" for local, _ in order]
    times = [u.create_time.ToDatetime() for u in page.users]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert page.next_page_token == ""


@pytest.mark.parametrize(
    ("requested", "returned"),
    [
        pytest.param(0, 50, id="unset-means-50"),
        pytest.param(1, 1, id="one"),
        pytest.param(200, 200, id="the-maximum"),
        pytest.param(201, 200, id="over-the-maximum-is-capped"),
        pytest.param(2**31 - 1, 200, id="int32-max-is-capped"),
    ],
)
async def test_page_size_defaults_to_50_and_is_capped_at_200(running: Running, requested: int, returned: int) -> None:
    root = await _admin(running)
    seeded = await _seed(running, 205)  # 206 users with the admin

    page = await _list(running, root, page_size=requested)

    assert [u.name for u in page.users] == ([root.name, *seeded])[:returned]
    assert page.next_page_token != ""


@pytest.mark.parametrize("requested", [pytest.param(-1, id="minus-one"), pytest.param(-(2**31), id="int32-min")])
async def test_a_negative_page_size_is_invalid(running: Running, requested: int) -> None:
    root = await _admin(running)
    error = await _error(_list(running, root, page_size=requested))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"page_size"}


async def test_pages_neither_skip_nor_repeat_while_users_sign_up(running: Running) -> None:
    """Keyset paging on (create time, id): accounts created between page calls never make a page skip
    or repeat a user, even when several accounts share one create time and the page size changes."""
    root = await _admin(running)
    existing = [root.name]
    for group in range(8):
        running.clock.advance(SECOND)
        for member in range(3):  # three accounts per instant: page boundaries fall inside ties
            existing.append(await running.register(f"early{group}.{member}@example.com"))
    seen: list[str] = []
    newcomers: list[str] = []
    token = ""
    for page_number in range(1, 40):
        page = await _list(running, root, page_size=3 + page_number % 3, page_token=token)
        assert page.users, "only the last page may be short, and never empty"
        seen.extend(u.name for u in page.users)
        token = page.next_page_token
        if not token:
            break
        if page_number <= 5:  # sign-ups between pages: one at the newest instant (a tie), one later
            newcomers.append(await running.register(f"late{page_number}.tie@example.com"))
            running.clock.advance(SECOND)
            newcomers.append(await running.register(f"late{page_number}.next@example.com"))
    else:
        raise AssertionError("paging never ended")

    repeated = [name for name, count in Counter(seen).items() if count > 1]
    assert repeated == []
    assert set(existing) - set(seen) == set()
    # Every newcomer sorts after the page cursor at the time, so all of them show up too.
    assert sorted(seen) == sorted(existing + newcomers)


async def test_the_last_page_has_an_empty_token_even_when_full(running: Running) -> None:
    """Six users in pages of three: two pages, and no empty third one."""
    root = await _admin(running)
    await _seed(running, 5)
    first = await _list(running, root, page_size=3)
    second = await _list(running, root, page_size=3, page_token=first.next_page_token)
    assert (len(first.users), first.next_page_token != "") == (3, True)
    assert (len(second.users), second.next_page_token) == (3, "")


def _flip(token: str, index: int) -> str:
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1:]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: _flip(t, 3), id="signature-char-flipped"),
        pytest.param(lambda t: _flip(t, len(t) // 2), id="payload-char-flipped"),
        pytest.param(lambda t: t[:-5], id="truncated"),
        pytest.param(lambda t: t + "AAAA", id="extended"),
        pytest.param(lambda t: "not a page token", id="garbage"),
        pytest.param(lambda t: PageTokens("another server's secret, 32+ bytes long").encode(
            ["2030-01-07T09:00:00+00:00", str(uuid.uuid4())], UserFilter()), id="signed-with-another-key"),
        pytest.param(lambda t: PageTokens(TEST_SECRET).encode(["yesterday", "nobody"], UserFilter()),
                     id="signed-but-malformed-key"),
        pytest.param(lambda t: PageTokens(TEST_SECRET).encode([], UserFilter()), id="signed-but-empty-key"),
        pytest.param(lambda t: PageTokens(TEST_SECRET).encode(["2030-01-07T09:00:00", str(uuid.uuid4())],
                                                               UserFilter()), id="signed-but-naive-time"),
    ],
)
async def test_an_altered_page_token_is_invalid(running: Running, tamper: Callable[[str], str]) -> None:
    root = await _admin(running)
    await _seed(running, 3)
    token = (await _list(running, root, page_size=1)).next_page_token
    assert token

    error = await _error(_list(running, root, page_size=1, page_token=tamper(token)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"page_token": "INVALID_PAGE_TOKEN"}


@pytest.mark.parametrize(
    ("first", "then"),
    [
        pytest.param({"query": "example"}, {"query": "exam"}, id="query-changed"),
        pytest.param({"query": "example"}, {}, id="query-dropped"),
        pytest.param({}, {"role": user_pb2.ROLE_CUSTOMER}, id="role-added"),
        pytest.param({"role": user_pb2.ROLE_CUSTOMER}, {"role": user_pb2.ROLE_PROVIDER}, id="role-changed"),
        pytest.param({}, {"disabled": False}, id="disabled-added"),
        pytest.param({"disabled": False}, {"disabled": True}, id="disabled-flipped"),
        pytest.param({"disabled": False}, {}, id="disabled-dropped"),
    ],
)
async def test_a_page_token_replayed_with_other_filters_is_invalid(
    running: Running, first: dict[str, Any], then: dict[str, Any]
) -> None:
    root = await _admin(running)
    await _seed(running, 3)
    token = (await _list(running, root, page_size=1, **first)).next_page_token
    assert token

    error = await _error(_list(running, root, page_size=1, page_token=token, **then))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"page_token": "INVALID_PAGE_TOKEN"}


# --- ListUsers: filters ----------------------------------------------------------------------

# (local part of the email, display name, role, disabled), in creation order after root@ (an admin).
PEOPLE = [
    ("ann", "Ann Smith", Role.CUSTOMER, False),
    ("bob@shop.example", "Bob Jones", Role.PROVIDER, False),
    ("carol", "Carol Annex", Role.CUSTOMER, True),
    ("dave", "100% Dave", Role.CUSTOMER, False),
    ("agent", "Agent 007", Role.CUSTOMER, False),  # has a 0 but no %: "0%" must not match
    ("frank_f", "Frank", Role.PROVIDER, False),
    ("kofi", "Kofi", Role.CUSTOMER, False),  # "kof" would match "k_f" if _ were a wildcard
    ("back", "Back\\slash", Role.CUSTOMER, False),
    ("hannah", "HANNAH Lee", Role.PROVIDER, True),
]
EVERYONE = ["root", *(p[0].split("@")[0] for p in PEOPLE)]


def _everyone_but(*locals_: str) -> list[str]:
    return [p for p in EVERYONE if p not in locals_]


# id -> (ListUsersRequest filters, expected email local parts in creation order)
FILTER_CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "no-filter": ({}, EVERYONE),
    "name-substring-any-case": ({"query": "ANN"}, ["ann", "carol", "hannah"]),
    "name-only": ({"query": "sMiTh"}, ["ann"]),
    "email-substring-any-case": ({"query": "SHOP.Example"}, ["bob"]),
    "email-domain": ({"query": "@example.com"}, _everyone_but("bob")),
    "percent-is-literal": ({"query": "%"}, ["dave"]),
    "percent-after-text-is-literal": ({"query": "0%"}, ["dave"]),
    "underscore-is-literal": ({"query": "_"}, ["frank_f"]),
    "underscore-inside-is-literal": ({"query": "k_f"}, ["frank_f"]),
    "backslash-is-literal": ({"query": "\\"}, ["back"]),
    "no-match": ({"query": "nobody"}, []),
    "admins": ({"role": user_pb2.ROLE_ADMIN}, ["root"]),
    "providers": ({"role": user_pb2.ROLE_PROVIDER}, ["bob", "frank_f", "hannah"]),
    "customers": ({"role": user_pb2.ROLE_CUSTOMER}, ["ann", "carol", "dave", "agent", "kofi", "back"]),
    "unspecified-role-means-any": ({"role": user_pb2.ROLE_UNSPECIFIED}, EVERYONE),
    "disabled": ({"disabled": True}, ["carol", "hannah"]),
    "enabled": ({"disabled": False}, _everyone_but("carol", "hannah")),
    "query-and-role": ({"query": "ann", "role": user_pb2.ROLE_CUSTOMER}, ["ann", "carol"]),
    "query-role-enabled": ({"query": "ann", "role": user_pb2.ROLE_CUSTOMER, "disabled": False}, ["ann"]),
    "query-role-disabled": ({"query": "ann", "role": user_pb2.ROLE_PROVIDER, "disabled": True}, ["hannah"]),
    "role-and-disabled": ({"role": user_pb2.ROLE_CUSTOMER, "disabled": True}, ["carol"]),
}


async def test_list_users_filters(running: Running) -> None:
    """`query` is a case-insensitive substring of the email or the display name, with `%`, `_` and `\\`
    taken literally; `role` and `disabled` narrow further; all filters combine with AND, across pages.

    One population, every case of FILTER_CASES against it (a fresh database per case would cost a
    PostgreSQL database each); a failure lists every case that went wrong."""
    root = await _admin(running)
    for local, name, role, disabled in PEOPLE:
        running.clock.advance(SECOND)
        user = await running.register(local if "@" in local else f"{local}@example.com", name=name)
        if role is not Role.CUSTOMER:
            await _set_role(running, root, user, ROLE_TO_PROTO[role])
        if disabled:
            await _disable(running, root, user)

    wrong: dict[str, list[str]] = {}
    for case, (filters, expected) in FILTER_CASES.items():
        users = await _list_all(running, root, page_size=2, **filters)
        found = [u.email.split("@")[0] for u in users]
        if found != expected or ("disabled" in filters and {u.disabled for u in users} - {filters["disabled"]}):
            wrong[case] = found
    assert wrong == {}


async def test_query_is_case_insensitive_beyond_ascii(running: Running) -> None:
    """Names such as "ÉMILE Zola" or "Łukasz" are found whatever the case of the query."""
    root = await _admin(running)
    emile = await running.register("emile@example.com", name="ÉMILE Zola")
    lukasz = await running.register("lukasz@example.com", name="Łukasz")
    found = {query: [u.name for u in (await _list(running, root, query=query)).users]
             for query in ["émile", "ÉMILE", "Émile", "łukasz", "ŁUKASZ"]}
    expected = {"émile": [emile], "ÉMILE": [emile], "Émile": [emile], "łukasz": [lukasz], "ŁUKASZ": [lukasz]}
    assert found == expected


@pytest.mark.parametrize(
    ("query", "valid"),
    [
        pytest.param("q" * 100, True, id="100-chars"),
        pytest.param("q" * 101, False, id="101-chars"),
        pytest.param("ann\x00", False, id="nul"),
    ],
)
async def test_query_length_and_characters(running: Running, query: str, valid: bool) -> None:
    """At most 100 characters; a NUL is INVALID_ARGUMENT (PostgreSQL text cannot hold one: it was INTERNAL)."""
    root = await _admin(running)
    await running.register("ann@example.com", name="Ann")
    if valid:
        assert list((await _list(running, root, query=query)).users) == []
        return
    error = await _error(_list(running, root, query=query))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"query"}


@pytest.mark.parametrize("role", [pytest.param(99, id="unknown-99"), pytest.param(-1, id="negative")])
async def test_list_users_refuses_an_unknown_role_filter(running: Running, role: int) -> None:
    root = await _admin(running)
    error = await _error(_list(running, root, role=role))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"role"}


# --- GetUser and resource names --------------------------------------------------------------


async def test_get_user_returns_the_user(running: Running) -> None:
    root = await _admin(running)
    registered = (await running.auth.Register(auth_pb2.RegisterRequest(
        email="Gina@Example.com", password=PASSWORD, display_name="Gina"))).user

    user = await _get(running, root, registered.name)

    assert user == registered
    assert (user.email, user.display_name, user.role, user.disabled) == (
        "gina@example.com", "Gina", user_pb2.ROLE_CUSTOMER, False)


def _name_calls(name: str) -> dict[str, Callable[[Running, Metadata], Awaitable[object]]]:
    return {
        "GetUser": lambda r, md: r.admin.GetUser(admin_pb2.GetUserRequest(name=name), metadata=md),
        "SetUserRole": lambda r, md: r.admin.SetUserRole(
            admin_pb2.SetUserRoleRequest(name=name, role=user_pb2.ROLE_PROVIDER), metadata=md),
        "DisableUser": lambda r, md: r.admin.DisableUser(admin_pb2.DisableUserRequest(name=name), metadata=md),
        "EnableUser": lambda r, md: r.admin.EnableUser(admin_pb2.EnableUserRequest(name=name), metadata=md),
    }


HEX = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("users/", id="no-id"),
        pytest.param("users/xyz", id="not-hex"),
        pytest.param(f"bookings/{HEX}", id="other-collection"),
        pytest.param(f"USERS/{HEX}", id="collection-case"),
        pytest.param(HEX, id="bare-id"),
        pytest.param(f"users/{HEX}/extra", id="trailing-segment"),
        pytest.param(f"users/{HEX}00", id="id-too-long"),
    ],
)
async def test_a_malformed_user_name_is_invalid(running: Running, name: str) -> None:
    """GetUser, SetUserRole, DisableUser and EnableUser all name the `name` field."""
    root = await _admin(running)
    for rpc, call in _name_calls(name).items():
        error = await _error(call(running, root.metadata))
        assert (rpc, error.code(), set(violations(error))) == (rpc, grpc.StatusCode.INVALID_ARGUMENT, {"name"})


async def test_an_unknown_user_is_not_found(running: Running) -> None:
    root = await _admin(running)
    for rpc, call in _name_calls(f"users/{uuid.uuid4().hex}").items():
        error = await _error(call(running, root.metadata))
        assert (rpc, error.code(), reason(error)) == (rpc, grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


# --- SetUserRole -----------------------------------------------------------------------------


async def test_set_user_role_round_trip(running: Running) -> None:
    """customer -> provider -> admin -> customer; each change is stored and stamps update_time."""
    root = await _admin(running)
    target = await running.register("tom@example.com")
    for role in [user_pb2.ROLE_PROVIDER, user_pb2.ROLE_ADMIN, user_pb2.ROLE_CUSTOMER]:
        running.clock.advance(SECOND)
        changed = (await _set_role(running, root, target, role)).user
        assert changed.role == role
        assert changed.update_time.ToDatetime() == running.clock.now().replace(tzinfo=None)
        assert await _get(running, root, target) == changed

    running.clock.advance(SECOND)
    again = (await _set_role(running, root, target, user_pb2.ROLE_CUSTOMER)).user
    assert again == changed, "setting the current role changes nothing, update_time included"


@pytest.mark.parametrize(
    "role",
    [pytest.param(user_pb2.ROLE_UNSPECIFIED, id="unspecified"), pytest.param(99, id="unknown-99"),
     pytest.param(-5, id="negative")],
)
async def test_set_user_role_needs_a_real_role(running: Running, role: int) -> None:
    root = await _admin(running)
    target = await running.signed_in("tom@example.com", role=Role.PROVIDER)

    error = await _error(_set_role(running, root, target.name, role))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"role"}
    assert (await _get(running, root, target.name)).role == user_pb2.ROLE_PROVIDER


async def test_a_role_change_applies_to_the_next_call_without_a_new_sign_in(running: Running) -> None:
    root = await _admin(running)
    user = await running.signed_in("climber@example.com")
    denied = await _error(_list(running, user))
    assert (denied.code(), reason(denied)) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")

    await _set_role(running, root, user.name, user_pb2.ROLE_ADMIN)
    assert len((await _list(running, user)).users) == 2  # the same token, now an admin's

    await _set_role(running, root, user.name, user_pb2.ROLE_PROVIDER)
    denied = await _error(_list(running, user))
    assert (denied.code(), reason(denied)) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")
    assert (await _profile(running, user.credentials.access_token)).user.role == user_pb2.ROLE_PROVIDER


@pytest.mark.parametrize(
    "role", [pytest.param(user_pb2.ROLE_CUSTOMER, id="to-customer"), pytest.param(user_pb2.ROLE_PROVIDER,
                                                                                   id="to-provider")],
)
async def test_the_last_active_admin_cannot_demote_themselves(running: Running, role: int) -> None:
    """A disabled admin does not count as the other admin."""
    root = await _admin(running)
    dormant = await _admin(running, "dormant@example.com")
    await _disable(running, root, dormant.name)

    error = await _error(_set_role(running, root, root.name, role))

    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN")
    assert (await _get(running, root, root.name)).role == user_pb2.ROLE_ADMIN
    assert _emails(await _list_all(running, root, role=user_pb2.ROLE_ADMIN, disabled=False)) == ["root@example.com"]
    assert (await _set_role(running, root, root.name, user_pb2.ROLE_ADMIN)).user.role == user_pb2.ROLE_ADMIN


async def test_with_two_admins_one_may_demote_the_other(running: Running) -> None:
    root = await _admin(running)
    second = await _admin(running, "second@example.com")

    await _set_role(running, second, root.name, user_pb2.ROLE_CUSTOMER)

    denied = await _error(_list(running, root))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    # Now `second` is the last one.
    error = await _error(_set_role(running, second, second.name, user_pb2.ROLE_CUSTOMER))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN")


async def test_with_two_admins_one_may_demote_themselves(running: Running) -> None:
    root = await _admin(running)
    second = await _admin(running, "second@example.com")
    await _set_role(running, second, second.name, user_pb2.ROLE_PROVIDER)
    assert _emails(await _list_all(running, root, role=user_pb2.ROLE_ADMIN)) == ["root@example.com"]


class _Gate:
    """Holds calls to a use case until `parties` of them arrived, so all of them passed authorization
    (as admins) before any touches the data: the race the LAST_ADMIN lock must decide."""

    def __init__(self) -> None:
        self._parties = 0
        self._arrived = 0
        self._open = asyncio.Event()
        self._open.set()

    def arm(self, parties: int) -> None:
        self._parties, self._arrived, self._open = parties, 0, asyncio.Event()

    def wrap(self, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def gated(*args: Any, **kwargs: Any) -> Any:
            if not self._open.is_set():
                self._arrived += 1
                if self._arrived >= self._parties:
                    self._open.set()
                await asyncio.wait_for(self._open.wait(), timeout=10)
            return await func(*args, **kwargs)

        return gated


@pytest.mark.parametrize("action", [pytest.param("demote", id="demote"), pytest.param("disable", id="disable")])
async def test_two_admins_removing_each_other_at_once_leave_exactly_one(
    running: Running, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """Two active admins each demote (or disable) the other at the same moment: exactly one call
    wins, the other gets FAILED_PRECONDITION LAST_ADMIN, and one active admin remains. Five rounds."""
    users = running.server.components.users
    gate = _Gate()
    monkeypatch.setattr(users, "set_role", gate.wrap(users.set_role))
    monkeypatch.setattr(users, "set_disabled", gate.wrap(users.set_disabled))
    survivor: Caller | None = None
    for round_ in range(5):
        a = await _admin(running, f"a{round_}@example.com")
        b = await _admin(running, f"b{round_}@example.com")
        if survivor is not None:  # leave exactly two active admins: a and b
            await _set_role(running, a, survivor.name, user_pb2.ROLE_CUSTOMER)

        def remove(caller: Caller, victim: Caller) -> Awaitable[object]:
            if action == "demote":
                return _set_role(running, caller, victim.name, user_pb2.ROLE_CUSTOMER)
            return _disable(running, caller, victim.name, "race")

        gate.arm(2)
        results = await asyncio.gather(remove(a, b), remove(b, a), return_exceptions=True)

        outcomes = [(r.code(), reason(r)) if isinstance(r, grpc.aio.AioRpcError) else "ok" for r in results]
        assert sorted(outcomes, key=str) == sorted(
            ["ok", (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN")], key=str), f"round {round_}: {results}"
        survivor = (a, b)[outcomes.index("ok")]
        admins = await _list_all(running, survivor, role=user_pb2.ROLE_ADMIN, disabled=False)
        assert [u.name for u in admins] == [survivor.name], f"round {round_}"


# --- DisableUser and EnableUser --------------------------------------------------------------


@pytest.mark.parametrize("role", [pytest.param(r, id=r.value) for r in Role])
async def test_a_disabled_user_is_cut_off_at_once(running: Running, role: Role) -> None:
    """No sign-in (ACCOUNT_DISABLED only after the right password), and every access and refresh
    token the user holds, from every session, stops working on the next call."""
    root = await _admin(running)
    victim = await running.signed_in("victim@example.com", role=role)
    other_session = (await running.login("victim@example.com")).credentials
    running.clock.advance(SECOND)

    disabled = (await _disable(running, root, victim.name, "chargeback fraud")).user

    assert disabled.disabled
    assert disabled.update_time.ToDatetime() == running.clock.now().replace(tzinfo=None)
    for credentials in [victim.credentials, other_session]:
        error = await _error(_profile(running, credentials.access_token))
        assert (error.code(), reason(error)) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
        error = await _error(_refresh(running, credentials.refresh_token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = await _error(running.login("victim@example.com"))
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_DISABLED")
    error = await _error(running.login("victim@example.com", password="not the password"))
    assert (error.code(), reason(error)) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert await _get(running, root, victim.name) == disabled
    assert [u.name for u in (await _list(running, root, disabled=True)).users] == [victim.name]


async def test_the_last_active_admin_cannot_be_disabled(running: Running) -> None:
    root = await _admin(running)
    dormant = await _admin(running, "dormant@example.com")
    await _disable(running, root, dormant.name)

    error = await _error(_disable(running, root, root.name))

    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN")
    assert not (await _get(running, root, root.name)).disabled  # and root's token still works


async def test_an_admin_may_disable_themselves_when_another_remains(running: Running) -> None:
    root = await _admin(running)
    second = await _admin(running, "second@example.com")

    await _disable(running, second, second.name, "leaving")

    error = await _error(_list(running, second))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await _get(running, root, second.name)).disabled


@pytest.mark.parametrize(
    ("why", "valid"),
    [
        pytest.param("r" * 500, True, id="500-chars"),
        pytest.param("r" * 501, False, id="501-chars"),
        pytest.param("refund abuse,\nsee ticket 42\tthanks", True, id="newline-and-tab"),
        pytest.param("fraud\x00", False, id="nul"),
    ],
)
async def test_disable_reason_is_checked(running: Running, why: str, valid: bool) -> None:
    """At most 500 characters; line breaks and tabs are fine; a NUL is INVALID_ARGUMENT, not INTERNAL."""
    root = await _admin(running)
    target = await running.register("target@example.com")
    if valid:
        assert (await _disable(running, root, target, why)).user.disabled
        return
    error = await _error(_disable(running, root, target, why))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"reason"}
    assert not (await _get(running, root, target)).disabled


async def test_disable_and_enable_are_idempotent(running: Running) -> None:
    """Repeating either call succeeds and changes nothing, update_time included."""
    root = await _admin(running)
    target = await running.register("target@example.com")
    running.clock.advance(SECOND)
    first = (await _disable(running, root, target, "first")).user
    running.clock.advance(SECOND)
    second = (await _disable(running, root, target, "second")).user
    assert second == first and second.disabled

    running.clock.advance(SECOND)
    enabled = (await _enable(running, root, target)).user
    running.clock.advance(SECOND)
    again = (await _enable(running, root, target)).user
    assert again == enabled and not again.disabled
    assert enabled.update_time.ToDatetime() > first.update_time.ToDatetime()


async def test_enabling_restores_sign_in_but_not_the_old_tokens(running: Running) -> None:
    root = await _admin(running)
    user = await running.signed_in("back@example.com")
    await _disable(running, root, user.name)

    enabled = (await _enable(running, root, user.name)).user

    assert not enabled.disabled
    assert await _get(running, root, user.name) == enabled
    assert user.name in [u.name for u in (await _list(running, root, disabled=False)).users]
    error = await _error(_profile(running, user.credentials.access_token))
    assert (error.code(), reason(error)) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
    error = await _error(_refresh(running, user.credentials.refresh_token))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    fresh = (await running.login("back@example.com")).credentials  # they sign in anew
    assert (await _profile(running, fresh.access_token)).user.name == user.name
    refreshed = (await _refresh(running, fresh.refresh_token)).credentials
    await _enable(running, root, user.name)  # enabling an enabled user ends no session
    assert (await _profile(running, refreshed.access_token)).user.name == user.name


async def test_a_sign_in_racing_a_disable_does_not_survive_re_enabling(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Login reads the account (enabled), checks the password, then starts a session. A disable that
    lands in between must not let that session come alive when the account is enabled again."""
    root = await _admin(running)
    victim = await running.register("victim@example.com")
    hasher = running.server.components.hasher
    verify = hasher.verify
    checked, resume = asyncio.Event(), asyncio.Event()

    async def verify_then_wait(password: str, password_hash: str | None) -> bool:
        ok = await verify(password, password_hash)
        checked.set()
        await resume.wait()
        return ok

    monkeypatch.setattr(hasher, "verify", verify_then_wait)
    login = asyncio.create_task(running.login("victim@example.com"))
    await asyncio.wait_for(checked.wait(), timeout=10)
    await _disable(running, root, victim)
    resume.set()
    (outcome,) = await asyncio.gather(login, return_exceptions=True)

    await _enable(running, root, victim)

    if isinstance(outcome, grpc.aio.AioRpcError):
        assert (outcome.code(), reason(outcome)) == (grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_DISABLED")
    else:
        assert isinstance(outcome, auth_pb2.LoginResponse)
        error = await _error(_profile(running, outcome.credentials.access_token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        error = await _error(_refresh(running, outcome.credentials.refresh_token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    fresh = (await running.login("victim@example.com")).credentials
    assert (await _profile(running, fresh.access_token)).user.name == victim
