"""Object- and function-level authorization (OWASP API1, API3, API5) over every RPC in the descriptors.

One world: customer Ann owns a booking, a hold, a waitlist entry and a support request; provider
Pat owns the service; Bea (another customer), Quinn (another provider) and Pat himself, where Ann's
things are not his to see, are the attackers, and so is an anonymous caller. Every RPC is in exactly
one of three tables below, so a new RPC fails `test_every_rpc_is_in_the_matrix` until someone decides
how it is attacked:

- ATTACKS: the RPC aimed at someone else's object. Each attacker gets PERMISSION_DENIED or
  NOT_FOUND (anonymous: UNAUTHENTICATED), and no table changes.
- OWN_SCOPE: the RPC acts on the caller only, or lists; called by Bea with filters naming Ann's
  things, it may answer OK but nothing of Ann's may appear in the answer.
- PUBLIC: catalog reads and the sign-in flows: OK for anyone, and nothing of Ann's in the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from sqlalchemy import select

from foothills.admin.v1 import admin_pb2, support_pb2
from foothills.auth.v1 import auth_pb2, user_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.db.bookings import untold_events
from foothills_rpc.db.models import Base
from foothills_rpc.domain.users import Role
from tests.booking_support import TUESDAY_10, Desk, Holds, join
from tests.catalog_support import service_message, ts
from tests.conftest import Caller, Running

SERVICES = {"foothills.auth.v1.AuthService": auth_pb2, "foothills.catalog.v1.CatalogService": catalog_pb2,
            "foothills.booking.v1.BookingService": booking_pb2, "foothills.admin.v1.AdminService": admin_pb2}
DENIED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND}
# Rows a refused call may still touch: mail delivery of the world's own set-up.
UNCOMPARED_TABLES = {"outbox"}


@dataclass
class World:
    running: Running
    desk: Desk
    ann: Caller
    bea: Caller
    pat: Caller
    quinn: Caller
    admin: Caller
    booking: str
    hold: str
    entry: str
    support: str

    def secrets(self) -> list[str]:
        """What only Ann (and those serving her) may see: her email and her objects' ids."""
        return [self.ann.email, *(name.split("/")[1] for name in (self.booking, self.hold, self.entry, self.support))]


async def _world(running: Running) -> World:
    desk = await Desk.open(running, capacity=1)
    ann, bea, cy = await desk.customer("ann@example.com"), await desk.customer("bea@example.com"), await desk.customer()
    quinn = await running.signed_in("quinn@example.com", role=Role.PROVIDER)
    booking = await desk.book(ann)
    await desk.book(cy, TUESDAY_10 + timedelta(hours=2))
    entry = await join(running, desk, ann, TUESDAY_10 + timedelta(hours=2))
    hold = await Holds(desk).hold(ann, TUESDAY_10 + timedelta(hours=4))
    support = (await running.admin.CreateSupportRequest(admin_pb2.CreateSupportRequestRequest(
        subject="Parking?", body="Where do I park?", booking=booking.name, request_id="ask-ann"),
        metadata=ann.metadata)).support_request
    await running.mailbox.wait_for(lambda m: "ann@example.com" in str(m["To"]))  # set-up mail is out
    # The news of every set-up event is composed too (reminders written, the cursor moved), or the
    # dispatcher would change the tables while an attack runs, as it did on a slow host.
    async with asyncio.timeout(10):
        while (await running.server.components.db.read(lambda s: untold_events(s, "mail")))[0]:
            await asyncio.sleep(0.02)
    return World(running, desk, ann, bea, desk.world.provider, quinn, desk.world.admin, booking.name, hold.name,
                 entry.name, support.name)


Build = Callable[[World], Message]


@dataclass(frozen=True)
class Attack:
    rpc: str  # Service/Method
    build: Build
    attackers: tuple[str, ...]  # World attributes


CUSTOMER_AND_PROVIDERS = ("bea", "quinn", "pat")  # none may see Ann's hold, entry, request or account
OTHERS_OF_THE_BOOKING = ("bea", "quinn")  # Pat provides the service: Ann's booking is his to see
OTHERS_OF_THE_SERVICE = ("bea", "quinn")


def _later(w: World) -> Any:
    return ts(TUESDAY_10 + timedelta(days=1))


ATTACKS = [
    Attack("BookingService/GetBooking", lambda w: booking_pb2.GetBookingRequest(name=w.booking), OTHERS_OF_THE_BOOKING),
    Attack("BookingService/CancelBooking", lambda w: booking_pb2.CancelBookingRequest(
        name=w.booking, reason="not mine"), OTHERS_OF_THE_BOOKING),
    Attack("BookingService/RescheduleBooking", lambda w: booking_pb2.RescheduleBookingRequest(
        name=w.booking, new_start_time=_later(w), request_id="move-ann"), OTHERS_OF_THE_BOOKING),
    Attack("BookingService/ConfirmBooking", lambda w: booking_pb2.ConfirmBookingRequest(name=w.booking),
           OTHERS_OF_THE_BOOKING),
    Attack("BookingService/CompleteBooking", lambda w: booking_pb2.CompleteBookingRequest(name=w.booking),
           OTHERS_OF_THE_BOOKING),
    Attack("BookingService/CreateBooking", lambda w: booking_pb2.CreateBookingRequest(
        hold=w.hold, request_id="steal-hold"), CUSTOMER_AND_PROVIDERS),
    Attack("BookingService/CreateBooking#for-another-customer", lambda w: booking_pb2.CreateBookingRequest(
        service=w.desk.service.name, start_time=_later(w), customer=w.ann.name, request_id="book-for-ann"),
        OTHERS_OF_THE_SERVICE),
    Attack("BookingService/GetHold", lambda w: booking_pb2.GetHoldRequest(name=w.hold), CUSTOMER_AND_PROVIDERS),
    Attack("BookingService/ReleaseHold", lambda w: booking_pb2.ReleaseHoldRequest(name=w.hold), CUSTOMER_AND_PROVIDERS),
    Attack("BookingService/LeaveWaitlist", lambda w: booking_pb2.LeaveWaitlistRequest(name=w.entry),
           CUSTOMER_AND_PROVIDERS),
    Attack("CatalogService/UpdateService", lambda w: catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=w.desk.service.name, etag=w.desk.service.etag, capacity=50),
        update_mask=field_mask_pb2.FieldMask(paths=["capacity"])), OTHERS_OF_THE_SERVICE),
    Attack("CatalogService/DeleteService", lambda w: catalog_pb2.DeleteServiceRequest(name=w.desk.service.name),
           OTHERS_OF_THE_SERVICE),
    Attack("CatalogService/SetAvailability", lambda w: catalog_pb2.SetAvailabilityRequest(
        availability=catalog_pb2.Availability(name=f"{w.desk.service.name}/availability")), OTHERS_OF_THE_SERVICE),
    Attack("CatalogService/CreateService", lambda w: catalog_pb2.CreateServiceRequest(
        service=service_message(w.desk.world.category, display_name="A customer's service")), ("bea",)),
    Attack("CatalogService/CreateCategory", lambda w: catalog_pb2.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name="Mine now")), CUSTOMER_AND_PROVIDERS),
    Attack("CatalogService/UpdateCategory", lambda w: catalog_pb2.UpdateCategoryRequest(
        category=catalog_pb2.Category(name=w.desk.world.category, display_name="Mine now"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"])), CUSTOMER_AND_PROVIDERS),
    Attack("CatalogService/DeleteCategory", lambda w: catalog_pb2.DeleteCategoryRequest(name=w.desk.world.category),
           CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/GetSupportRequest", lambda w: admin_pb2.GetSupportRequestRequest(name=w.support),
           CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/AddSupportMessage", lambda w: admin_pb2.AddSupportMessageRequest(
        name=w.support, body="me too"), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/AssignSupportRequest", lambda w: admin_pb2.AssignSupportRequestRequest(
        name=w.support, assignee=w.quinn.name), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/SetSupportRequestStatus", lambda w: admin_pb2.SetSupportRequestStatusRequest(
        name=w.support, status=support_pb2.SUPPORT_REQUEST_STATUS_CLOSED), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/CreateSupportRequest", lambda w: admin_pb2.CreateSupportRequestRequest(
        subject="About Ann's booking", body="Tell me about it", booking=w.booking, request_id="pry"),
        ("bea", "quinn")),
    Attack("AdminService/GetUser", lambda w: admin_pb2.GetUserRequest(name=w.ann.name), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/ListUsers", lambda w: admin_pb2.ListUsersRequest(), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/SetUserRole", lambda w: admin_pb2.SetUserRoleRequest(
        name=w.bea.name, role=user_pb2.ROLE_ADMIN), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/DisableUser", lambda w: admin_pb2.DisableUserRequest(name=w.ann.name, reason="x"),
           CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/EnableUser", lambda w: admin_pb2.EnableUserRequest(name=w.ann.name), CUSTOMER_AND_PROVIDERS),
    # Pat may resolve the conflicts of his own service (Ann's booking is in none); the others may not.
    Attack("AdminService/ResolveConflict", lambda w: admin_pb2.ResolveConflictRequest(
        booking=w.booking, resolution=admin_pb2.CONFLICT_RESOLUTION_CANCEL, reason="x"), OTHERS_OF_THE_SERVICE),
    Attack("AdminService/GetBookingStats", lambda w: admin_pb2.GetBookingStatsRequest(
        start_time=ts(TUESDAY_10 - timedelta(days=1)), end_time=_later(w)), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/ExportBookings", lambda w: admin_pb2.ExportBookingsRequest(
        start_time=ts(TUESDAY_10 - timedelta(days=1)), end_time=_later(w)), CUSTOMER_AND_PROVIDERS),
    Attack("AdminService/ListAuditEvents", lambda w: admin_pb2.ListAuditEventsRequest(), CUSTOMER_AND_PROVIDERS),
]

# Called by Bea, naming Ann's things where a field allows it: OK or refused, never Ann's data.
OWN_SCOPE: dict[str, Build] = {
    "AuthService/Logout": lambda w: auth_pb2.LogoutRequest(),
    "AuthService/GetProfile": lambda w: auth_pb2.GetProfileRequest(),
    "AuthService/UpdateProfile": lambda w: auth_pb2.UpdateProfileRequest(
        user=user_pb2.User(name=w.ann.name, display_name="Bea was here"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"])),
    "AuthService/ChangePassword": lambda w: auth_pb2.ChangePasswordRequest(
        current_password="wrong", new_password="another long passphrase"),
    "BookingService/ListBookings": lambda w: booking_pb2.ListBookingsRequest(customer=w.ann.name),
    "BookingService/WatchBookings": lambda w: booking_pb2.WatchBookingsRequest(),
    "BookingService/HoldSlot": lambda w: booking_pb2.HoldSlotRequest(
        service=w.desk.service.name, start_time=ts(TUESDAY_10 + timedelta(hours=4)), request_id="bea-hold"),
    "BookingService/JoinWaitlist": lambda w: booking_pb2.JoinWaitlistRequest(
        service=w.desk.service.name, start_time=ts(TUESDAY_10 + timedelta(hours=2))),
    "BookingService/ListWaitlistEntries": lambda w: booking_pb2.ListWaitlistEntriesRequest(
        service=w.desk.service.name),
    "AdminService/ListSupportRequests": lambda w: admin_pb2.ListSupportRequestsRequest(requester=w.ann.name),
    # A provider's conflicts are those of their own services: Bea is refused.
    "AdminService/ListConflicts": lambda w: admin_pb2.ListConflictsRequest(service=w.desk.service.name),
    "AdminService/ResolveConflicts": lambda w: admin_pb2.ResolveConflictsRequest(
        service=w.desk.service.name, resolution=admin_pb2.CONFLICT_RESOLUTION_CANCEL, reason="x",
        request_id="bea-bulk"),
}

# Anyone, signed in or not: public data only.
PUBLIC: dict[str, Build] = {
    "AuthService/Register": lambda w: auth_pb2.RegisterRequest(
        email="newcomer@example.com", password="long enough pass", display_name="New"),
    "AuthService/Login": lambda w: auth_pb2.LoginRequest(email=w.ann.email, password="not her password"),
    "AuthService/RefreshToken": lambda w: auth_pb2.RefreshTokenRequest(refresh_token="guessed"),
    "AuthService/RequestPasswordReset": lambda w: auth_pb2.RequestPasswordResetRequest(email=w.ann.email),
    "AuthService/ResetPassword": lambda w: auth_pb2.ResetPasswordRequest(
        token="guessed", new_password="another long passphrase"),
    "CatalogService/GetCategory": lambda w: catalog_pb2.GetCategoryRequest(name=w.desk.world.category),
    "CatalogService/ListCategories": lambda w: catalog_pb2.ListCategoriesRequest(),
    "CatalogService/GetService": lambda w: catalog_pb2.GetServiceRequest(name=w.desk.service.name),
    "CatalogService/ListServices": lambda w: catalog_pb2.ListServicesRequest(),
    "CatalogService/GetAvailability": lambda w: catalog_pb2.GetAvailabilityRequest(
        name=f"{w.desk.service.name}/availability"),
    "CatalogService/ListSlots": lambda w: catalog_pb2.ListSlotsRequest(
        service=w.desk.service.name, start_time=ts(TUESDAY_10 - timedelta(hours=1)), end_time=_later(w)),
    "CatalogService/QuotePrice": lambda w: catalog_pb2.QuotePriceRequest(
        service=w.desk.service.name, start_time=ts(TUESDAY_10 + timedelta(hours=6))),
}


def _split(rpc: str) -> tuple[str, str]:
    service, method = rpc.split("#")[0].split("/")
    return f"foothills.{service.removesuffix('Service').lower()}.v1.{service}", method


def _stub(running: Running, service: str) -> Any:
    return {"AuthService": running.auth, "CatalogService": running.catalog, "BookingService": running.booking,
            "AdminService": running.admin}[service.rsplit(".", 1)[1]]


async def _call(w: World, rpc: str, request: Message, who: Caller | None) -> tuple[grpc.StatusCode, str]:
    """(code, text of every answer message) of one call; streams are read for half a second."""
    service, method = _split(rpc)
    metadata = who.metadata if who else ()
    call = getattr(_stub(w.running, service), method)(request, metadata=metadata, timeout=10)
    texts: list[str] = []
    try:
        if hasattr(call, "read"):
            try:
                async with asyncio.timeout(0.5):
                    async for message in call:
                        texts.append(str(message))
            except TimeoutError:
                call.cancel()
            return grpc.StatusCode.OK, "\n".join(texts)
        return grpc.StatusCode.OK, str(await call)
    except grpc.aio.AioRpcError as error:
        return error.code(), str(error.details())


async def _snapshot(running: Running) -> dict[str, list[str]]:
    async def read(session: Any) -> dict[str, list[str]]:
        tables = {}
        for table in Base.metadata.sorted_tables:
            if table.name not in UNCOMPARED_TABLES:
                tables[table.name] = sorted(repr(tuple(row)) for row in (await session.execute(select(table))).all())
        return tables
    return await running.server.components.db.run(read)


def test_every_rpc_is_in_the_matrix() -> None:
    served = {f"{name.rsplit('.', 1)[1]}/{method.name}"
              for name, module in SERVICES.items()
              for method in module.DESCRIPTOR.services_by_name[name.rsplit(".", 1)[1]].methods}
    attacked = {a.rpc.split("#")[0] for a in ATTACKS}
    assert served == attacked | set(OWN_SCOPE) | set(PUBLIC)
    assert not (attacked & set(OWN_SCOPE)) and not (attacked & set(PUBLIC)) and not (set(OWN_SCOPE) & set(PUBLIC))


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.rpc for a in ATTACKS])
async def test_nobody_reaches_another_principals_object(running: Running, attack: Attack) -> None:
    w = await _world(running)
    request = attack.build(w)
    before = await _snapshot(running)
    outcomes = {}
    for who in (*attack.attackers, "anonymous"):
        caller = getattr(w, who) if who != "anonymous" else None
        code, text = await _call(w, attack.rpc, request, caller)
        outcomes[who] = code
        assert not any(secret in text for secret in w.secrets() if secret not in str(request)), (who, text)
    assert outcomes.pop("anonymous") == grpc.StatusCode.UNAUTHENTICATED
    assert set(outcomes.values()) <= DENIED, outcomes
    assert await _snapshot(running) == before  # nothing changed, not even half-way
    # The owner side still works: the attacks were refused for who made them, not broken.
    if attack.rpc == "BookingService/GetBooking":
        assert (await _call(w, attack.rpc, request, w.ann))[0] == grpc.StatusCode.OK
        assert (await _call(w, attack.rpc, request, w.pat))[0] == grpc.StatusCode.OK


@pytest.mark.parametrize("rpc", sorted(OWN_SCOPE))
async def test_own_scope_rpcs_never_answer_with_another_users_things(running: Running, rpc: str) -> None:
    w = await _world(running)
    request = OWN_SCOPE[rpc](w)
    code, text = await _call(w, rpc, request, w.bea)
    assert code in {grpc.StatusCode.OK, *DENIED, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED}, (code, text)
    assert not any(secret in text for secret in w.secrets()), text
    # Ann's account is untouched whatever Bea's call named.
    ann = (await running.auth.GetProfile(auth_pb2.GetProfileRequest(), metadata=w.ann.metadata)).user
    assert ann.display_name != "Bea was here"


@pytest.mark.parametrize("rpc", sorted(PUBLIC))
async def test_public_rpcs_answer_anyone_without_another_users_things(running: Running, rpc: str) -> None:
    w = await _world(running)
    for who in (None, w.bea):
        code, text = await _call(w, rpc, PUBLIC[rpc](w), who)
        assert code is not grpc.StatusCode.INTERNAL and code is not grpc.StatusCode.UNKNOWN, (code, text)
        assert not any(secret in text for secret in w.secrets()), text


# --- mass assignment (OWASP API3): fields a caller may not set ------------------------------------


@pytest.mark.parametrize("path", ["provider", "state", "name", "etag", "create_time", "rating"])
async def test_an_update_naming_a_field_the_caller_may_not_set_is_refused(running: Running, path: str) -> None:
    """Refused, not ignored: the caller learns the change did not happen."""
    w = await _world(running)
    before = await _snapshot(running)
    code, text = await _call(w, "CatalogService/UpdateService", catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=w.desk.service.name, etag=w.desk.service.etag, provider=w.quinn.name,
                                    state=catalog_pb2.SERVICE_STATE_ARCHIVED),
        update_mask=field_mask_pb2.FieldMask(paths=[path])), w.pat)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in text, (code, text)
    assert await _snapshot(running) == before


async def test_a_create_cannot_name_another_owner_and_its_output_only_fields_are_ignored(running: Running) -> None:
    """Quinn cannot create a service in Pat's name (refused); a state or name he sends is ignored, and
    the answer shows it."""
    w = await _world(running)
    code, _ = await _call(w, "CatalogService/CreateService", catalog_pb2.CreateServiceRequest(service=service_message(
        w.desk.world.category, display_name="Pat's?", provider=w.pat.name)), w.quinn)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    created = (await running.catalog.CreateService(catalog_pb2.CreateServiceRequest(service=service_message(
        w.desk.world.category, display_name="Quinn's", state=catalog_pb2.SERVICE_STATE_ARCHIVED,
        name="services/00000000000000000000000000000001")), metadata=w.quinn.metadata)).service
    assert (created.provider, created.state) == (w.quinn.name, catalog_pb2.SERVICE_STATE_ACTIVE)
    assert created.name != "services/00000000000000000000000000000001"
