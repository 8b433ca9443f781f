"""AdminService beyond users: support requests, the audit log and booking conflicts, through the real
server on SQLite and PostgreSQL. Conflicts are produced by real catalog and user changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.admin.v1 import admin_pb2, conflicts_pb2, support_pb2
from foothills.auth.v1 import user_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.domain.users import Role
from tests.booking_support import TUESDAY_10, Desk, error_of
from tests.catalog_support import WEEKDAYS, mask, ts, weekly
from tests.conftest import Caller, Running
from tests.support import reason, text_of, violations

OPEN, IN_PROGRESS, RESOLVED, CLOSED = (support_pb2.SUPPORT_REQUEST_STATUS_OPEN,
                                       support_pb2.SUPPORT_REQUEST_STATUS_IN_PROGRESS,
                                       support_pb2.SUPPORT_REQUEST_STATUS_RESOLVED,
                                       support_pb2.SUPPORT_REQUEST_STATUS_CLOSED)


async def _ask(running: Running, who: Caller, *, subject: str = "Parking?", body: str = "Where do I park?",
               booking: str = "", request_id: str = "ask-1") -> support_pb2.SupportRequest:
    return (await running.admin.CreateSupportRequest(admin_pb2.CreateSupportRequestRequest(
        subject=subject, body=body, booking=booking, request_id=request_id), metadata=who.metadata)).support_request


async def _status(running: Running, admin: Caller, name: str, status: int) -> support_pb2.SupportRequest:
    return (await running.admin.SetSupportRequestStatus(admin_pb2.SetSupportRequestStatusRequest(
        name=name, status=status), metadata=admin.metadata)).support_request  # type: ignore[arg-type]


# --- support requests ------------------------------------------------------------------------


async def test_a_customer_asks_about_their_booking_and_a_retry_opens_nothing_new(running: Running) -> None:
    desk = await Desk.open(running)
    ann, bob = await desk.customer(), await desk.customer()
    booking = await desk.book(ann)
    asked = await _ask(running, ann, booking=booking.name)
    assert asked.name.startswith("supportRequests/")
    assert (asked.requester, asked.booking, asked.status, asked.assignee) == (ann.name, booking.name, OPEN, "")
    assert [(m.author, m.from_staff, m.body) for m in asked.messages] == [(ann.name, False, "Where do I park?")]
    assert await _ask(running, ann, booking=booking.name) == asked  # the same request_id: the same request
    reused = await error_of(_ask(running, ann, subject="Something else"))
    assert (reused.code(), reason(reused)) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    # Bob cannot attach Ann's booking, nor see her request: both are NOT_FOUND, so nothing leaks.
    foreign = await error_of(_ask(running, bob, booking=booking.name, request_id="bob-1"))
    assert foreign.code() == grpc.StatusCode.NOT_FOUND
    hidden = await error_of(running.admin.GetSupportRequest(admin_pb2.GetSupportRequestRequest(name=asked.name),
                                                          metadata=bob.metadata))
    assert hidden.code() == grpc.StatusCode.NOT_FOUND
    await _ask(running, bob, request_id="bob-2")
    mine = (await running.admin.ListSupportRequests(admin_pb2.ListSupportRequestsRequest(),
                                                    metadata=ann.metadata)).support_requests
    assert [r.name for r in mine] == [asked.name]
    assert not mine[0].messages  # lists leave the conversation out
    everything = (await running.admin.ListSupportRequests(admin_pb2.ListSupportRequestsRequest(),
                                                          metadata=desk.world.admin.metadata)).support_requests
    assert len(everything) == 2
    by_ann = (await running.admin.ListSupportRequests(admin_pb2.ListSupportRequestsRequest(requester=ann.name),
                                                      metadata=desk.world.admin.metadata)).support_requests
    assert [r.name for r in by_ann] == [asked.name]
    nosy = await error_of(running.admin.ListSupportRequests(admin_pb2.ListSupportRequestsRequest(requester=bob.name),
                                                          metadata=ann.metadata))
    assert nosy.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_support_requests_validate_their_fields(running: Running) -> None:
    ann = await running.signed_in("ann@example.com")
    error = await error_of(_ask(running, ann, subject=" ", body="x" * 5001, booking="bookings/nope", request_id=""))
    assert violations(error) == {"booking": "INVALID_VALUE"}  # a malformed name is refused before the rest
    error = await error_of(_ask(running, ann, subject=" ", body="x" * 5001, request_id=""))
    assert set(violations(error)) == {"subject", "body", "request_id"}


async def test_admins_assign_reply_and_move_a_request_along(running: Running) -> None:
    ann = await running.signed_in("ann@example.com")
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    asked = await _ask(running, ann)
    not_admin = await error_of(running.admin.AssignSupportRequest(admin_pb2.AssignSupportRequestRequest(
        name=asked.name, assignee=ann.name), metadata=admin.metadata))
    assert (not_admin.code(), reason(not_admin)) == (grpc.StatusCode.FAILED_PRECONDITION, "ASSIGNEE_NOT_ADMIN")
    assigned = (await running.admin.AssignSupportRequest(admin_pb2.AssignSupportRequestRequest(
        name=asked.name, assignee=admin.name), metadata=admin.metadata)).support_request
    assert assigned.assignee == admin.name

    replied = (await running.admin.AddSupportMessage(admin_pb2.AddSupportMessageRequest(
        name=asked.name, body="Behind the building."), metadata=admin.metadata)).support_request
    assert [(m.author, m.from_staff) for m in replied.messages] == [(ann.name, False), (admin.name, True)]
    mail = await running.mailbox.wait_for(lambda m: m["To"] == "ann@example.com" and "Reply" in m["Subject"])
    assert "Reply: Behind the building." in text_of(mail)

    refused = await error_of(_status(running, admin, asked.name, CLOSED))  # open cannot jump to closed
    assert (refused.code(), reason(refused)) == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_STATUS_TRANSITION")
    assert refused.details() == "an open support request cannot be closed"
    await _status(running, admin, asked.name, IN_PROGRESS)
    refused = await error_of(_status(running, admin, asked.name, OPEN))
    assert refused.details() == "an in-progress support request cannot be reopened"
    await _status(running, admin, asked.name, RESOLVED)
    await _status(running, admin, asked.name, OPEN)
    for status in (IN_PROGRESS, RESOLVED, OPEN, IN_PROGRESS, RESOLVED, CLOSED):  # including a reopening
        assert (await _status(running, admin, asked.name, status)).status == status
    await running.mailbox.wait_for(lambda m: m["To"] == "ann@example.com" and "closed" in m["Subject"])
    closed = await error_of(running.admin.AddSupportMessage(admin_pb2.AddSupportMessageRequest(
        name=asked.name, body="One more thing"), metadata=ann.metadata))
    assert (closed.code(), reason(closed)) == (grpc.StatusCode.FAILED_PRECONDITION, "SUPPORT_REQUEST_CLOSED")
    unspecified = await error_of(_status(running, admin, asked.name, support_pb2.SUPPORT_REQUEST_STATUS_UNSPECIFIED))
    assert violations(unspecified) == {"status": "INVALID_VALUE"}
    listed = (await running.admin.ListSupportRequests(admin_pb2.ListSupportRequestsRequest(
        statuses=[CLOSED], assignee=admin.name), metadata=admin.metadata)).support_requests
    assert [r.name for r in listed] == [asked.name]


# --- the permission matrix of the admin-only RPCs ----------------------------------------------

ADMIN_ONLY: dict[str, Callable[[Running, tuple[tuple[str, str], ...]], Awaitable[object]]] = {
    "AssignSupportRequest": lambda r, md: r.admin.AssignSupportRequest(
        admin_pb2.AssignSupportRequestRequest(name="supportRequests/" + "0" * 32), metadata=md),
    "SetSupportRequestStatus": lambda r, md: r.admin.SetSupportRequestStatus(
        admin_pb2.SetSupportRequestStatusRequest(name="supportRequests/" + "0" * 32, status=CLOSED), metadata=md),
    # ListConflicts, ResolveConflict(s): providers too, for their own services (test_operations.py).
    "ListAuditEvents": lambda r, md: r.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(), metadata=md),
}


@pytest.mark.parametrize("rpc", sorted(ADMIN_ONLY))
@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.PROVIDER])
async def test_only_admins_run_oversight(running: Running, rpc: str, role: Role) -> None:
    caller = await running.signed_in("someone@example.com", role=role)
    error = await error_of(ADMIN_ONLY[rpc](running, caller.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")
    anonymous = await error_of(ADMIN_ONLY[rpc](running, ()))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED


# --- audit log -----------------------------------------------------------------------------------


async def test_admin_and_provider_changes_are_audited_with_before_and_after(running: Running) -> None:
    desk = await Desk.open(running)
    admin, provider = desk.world.admin, desk.world.provider
    ann = await desk.customer()
    await running.admin.SetUserRole(admin_pb2.SetUserRoleRequest(name=ann.name, role=user_pb2.ROLE_PROVIDER),
                                    metadata=admin.metadata)
    service = desk.service
    await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, capacity=3),
        update_mask=mask("capacity")), metadata=provider.metadata)

    role_events = (await running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(target=ann.name),
                                                       metadata=admin.metadata)).audit_events
    assert [(e.actor, e.action, dict(e.before), dict(e.after)) for e in role_events] == [
        (admin.name, "SetUserRole", {"role": "customer"}, {"role": "provider"})]
    by_provider = (await running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(actor=provider.name),
                                                       metadata=admin.metadata)).audit_events
    # Newest first: the capacity change, then the availability and the creation of the service.
    assert [e.action for e in by_provider] == ["UpdateService", "SetAvailability", "CreateService"]
    assert (dict(by_provider[0].before), dict(by_provider[0].after)) == ({"capacity": 1}, {"capacity": 3})
    assert all(e.target == service.name for e in by_provider)
    first_page = await running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(page_size=2),
                                                     metadata=admin.metadata)
    second_page = await running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(
        page_size=2, page_token=first_page.next_page_token), metadata=admin.metadata)
    names = [e.name for e in first_page.audit_events] + [e.name for e in second_page.audit_events]
    assert len(set(names)) == 4  # the category, then the three above... minus none: pages do not overlap
    backwards = await error_of(running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(
        start_time=ts(TUESDAY_10), end_time=ts(TUESDAY_10 - timedelta(hours=1))), metadata=admin.metadata))
    assert violations(backwards) == {"end_time": "INVALID_VALUE"}


async def test_the_database_refuses_to_change_or_delete_audit_events(running: Running) -> None:
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    ann = await running.signed_in("ann@example.com")
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=ann.name, reason="spam"),
                                    metadata=admin.metadata)
    db = running.server.components.db
    for statement in ("UPDATE audit_events SET reason = 'nothing happened'", "DELETE FROM audit_events"):
        async def tamper(session: AsyncSession, statement: str = statement) -> None:
            await session.execute(text(statement))

        with pytest.raises(Exception, match="append-only"):
            await db.run(tamper)
    events = (await running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(),
                                                  metadata=admin.metadata)).audit_events
    assert [(e.action, e.reason) for e in events] == [("DisableUser", "spam")]


# --- conflicts -----------------------------------------------------------------------------------


async def _conflicts(running: Running, admin: Caller) -> dict[str, list[int]]:
    found = (await running.admin.ListConflicts(admin_pb2.ListConflictsRequest(),
                                               metadata=admin.metadata)).conflicts
    return {c.booking.name: list(c.reasons) for c in found}


async def test_catalog_and_user_changes_put_bookings_in_conflict(running: Running) -> None:
    desk = await Desk.open(running, capacity=2)
    admin, provider = desk.world.admin, desk.world.provider
    ann, bob = await desk.customer(), await desk.customer()
    first, second = await desk.book(ann), await desk.book(bob)
    assert await _conflicts(running, admin) == {}

    # Capacity drops to one: both bookings of the slot are over capacity, for the admin to decide.
    service = desk.service
    service = (await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, capacity=1),
        update_mask=mask("capacity")), metadata=provider.metadata)).service
    over = [conflicts_pb2.CONFLICT_REASON_OVER_CAPACITY]
    assert await _conflicts(running, admin) == {first.name: over, second.name: over}

    # Tuesdays close: the slot leaves the availability too.
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{service.name}/availability", weekly_windows=weekly([WEEKDAYS[0], *WEEKDAYS[2:]], "09:00", "17:00"))),
        metadata=provider.metadata)
    both = [conflicts_pb2.CONFLICT_REASON_OUTSIDE_AVAILABILITY, conflicts_pb2.CONFLICT_REASON_OVER_CAPACITY]
    assert await _conflicts(running, admin) == {first.name: both, second.name: both}

    # The admin cancels Bob's booking (no fee) and moves Ann's to Wednesday; both are mailed.
    cancelled = (await running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=second.name, resolution=admin_pb2.CONFLICT_RESOLUTION_CANCEL, reason="Tuesdays are closed"),
        metadata=admin.metadata)).booking
    assert cancelled.status == booking_pb2.BOOKING_STATUS_CANCELLED
    assert cancelled.cancellation_fee.amount_minor == 0
    await running.mailbox.wait_for(lambda m: m["To"] == bob.email and m["Subject"].startswith("Cancelled:"))
    wednesday = TUESDAY_10 + timedelta(days=1)
    moved = (await running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=first.name, resolution=admin_pb2.CONFLICT_RESOLUTION_RESCHEDULE, new_start_time=ts(wednesday),
        reason="Tuesdays are closed"), metadata=admin.metadata)).booking
    assert (moved.start_time, moved.status) == (ts(wednesday), booking_pb2.BOOKING_STATUS_CONFIRMED)
    await running.mailbox.wait_for(lambda m: m["To"] == ann.email and m["Subject"].startswith("Moved:"))
    assert await _conflicts(running, admin) == {}
    settled = await error_of(running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=first.name, resolution=admin_pb2.CONFLICT_RESOLUTION_CANCEL, reason="again"),
        metadata=admin.metadata))
    assert (settled.code(), reason(settled)) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_IN_CONFLICT")

    # Disabling the provider, then archiving the service, adds their reasons.
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=provider.name), metadata=admin.metadata)
    assert await _conflicts(running, admin) == {first.name: [conflicts_pb2.CONFLICT_REASON_PROVIDER_DISABLED]}
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name), metadata=admin.metadata)
    # An archived service offers nothing, so the slot is also outside its (now empty) availability.
    assert await _conflicts(running, admin) == {first.name: [conflicts_pb2.CONFLICT_REASON_OUTSIDE_AVAILABILITY,
                                                             conflicts_pb2.CONFLICT_REASON_SERVICE_ARCHIVED,
                                                             conflicts_pb2.CONFLICT_REASON_PROVIDER_DISABLED]}
    archived = await error_of(running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=first.name, resolution=admin_pb2.CONFLICT_RESOLUTION_RESCHEDULE,
        new_start_time=ts(wednesday + timedelta(days=1)), reason="x"), metadata=admin.metadata))
    assert (archived.code(), reason(archived)) == (grpc.StatusCode.FAILED_PRECONDITION, "SERVICE_ARCHIVED")


async def test_a_disabled_customer_s_future_bookings_are_conflicts(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=ann.name), metadata=desk.world.admin.metadata)
    assert await _conflicts(running, desk.world.admin) == {
        booking.name: [conflicts_pb2.CONFLICT_REASON_CUSTOMER_DISABLED]}


async def test_resolve_conflict_validates_its_fields(running: Running) -> None:
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    error = await error_of(running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking="bookings/" + "0" * 32), metadata=admin.metadata))
    assert violations(error) == {"resolution": "INVALID_VALUE"}
    error = await error_of(running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking="bookings/" + "0" * 32, resolution=admin_pb2.CONFLICT_RESOLUTION_RESCHEDULE, reason="x"),
        metadata=admin.metadata))
    assert violations(error) == {"new_start_time": "INVALID_VALUE"}
