"""Operations that would strand bookings say so first, and hurt none silently: a disabled provider's
services stop taking bookings at once; schedule changes can be checked first (validate_only) and
answer with the bookings they strand; conflicts are resolved by providers too, one by one or in bulk."""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.protobuf import field_mask_pb2

from foothills.admin.v1 import admin_pb2, conflicts_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.domain.users import Role
from tests.booking_support import TUESDAY_10, Desk, error_of
from tests.catalog_support import WEEKDAYS, ts, weekly
from tests.conftest import Running
from tests.support import reason, text_of, violations


async def _set_provider(running: Running, desk: Desk, *, disabled: bool) -> None:
    admin, provider = desk.world.admin, desk.world.provider
    if disabled:
        await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=provider.name, reason="audit"),
                                        metadata=admin.metadata)
    else:
        await running.admin.EnableUser(admin_pb2.EnableUserRequest(name=provider.name), metadata=admin.metadata)


async def test_a_disabled_providers_services_stop_taking_bookings_at_once_and_resume(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    ann, bob = await desk.customer(), await desk.customer()
    booked = await desk.book(ann)
    name = desk.service.name
    await _set_provider(running, desk, disabled=True)

    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=name))).service
    assert service.state == catalog_pb2.SERVICE_STATE_SUSPENDED
    listed = await running.catalog.ListServices(catalog_pb2.ListServicesRequest())
    assert name not in {s.name for s in listed.services}
    slots = await running.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=name, start_time=ts(running.clock.now()), end_time=ts(running.clock.now() + timedelta(days=7))))
    assert list(slots.slots) == [] and not slots.HasField("bookable_start_time")
    for call in (desk.book(bob, TUESDAY_10 + timedelta(hours=1)),
                 running.booking.HoldSlot(booking_pb2.HoldSlotRequest(
                     service=name, start_time=ts(TUESDAY_10 + timedelta(hours=2)), request_id="h"),
                     metadata=bob.metadata)):
        error = await error_of(call)
        assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "SERVICE_SUSPENDED")
    conflicts = (await running.admin.ListConflicts(admin_pb2.ListConflictsRequest(),
                                                   metadata=desk.world.admin.metadata)).conflicts
    assert [(c.booking.name, list(c.reasons)) for c in conflicts] == [
        (booked.name, [conflicts_pb2.CONFLICT_REASON_PROVIDER_DISABLED])]

    await _set_provider(running, desk, disabled=False)
    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=name))).service
    assert service.state == catalog_pb2.SERVICE_STATE_ACTIVE
    assert name in {s.name for s in (await running.catalog.ListServices(catalog_pb2.ListServicesRequest())).services}
    await desk.book(bob, TUESDAY_10 + timedelta(hours=1))
    assert await desk.remaining() == 2


async def test_schedule_changes_list_the_bookings_they_strand_and_validate_only_changes_nothing(
        running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    ann, bob = await desk.customer(), await desk.customer()
    tuesday = await desk.book(ann)
    wednesday = await desk.book(bob, TUESDAY_10 + timedelta(days=1), seats=2)
    provider = desk.world.provider
    name = desk.service.name
    closed_tuesday = catalog_pb2.Availability(name=f"{name}/availability", weekly_windows=[
        w for w in (await running.catalog.GetAvailability(catalog_pb2.GetAvailabilityRequest(
            name=f"{name}/availability"))).availability.weekly_windows if w.day_of_week != 2])

    async def conflicts() -> list[str]:
        return [c.booking.name for c in (await running.admin.ListConflicts(
            admin_pb2.ListConflictsRequest(), metadata=desk.world.admin.metadata)).conflicts]

    checked = await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
        availability=closed_tuesday, validate_only=True), metadata=provider.metadata)
    assert [(s.booking, s.customer, s.seats, s.start_time) for s in checked.stranded_bookings] == [
        (tuesday.name, ann.name, 1, ts(TUESDAY_10))]
    assert checked.stranded_booking_count == 1
    assert await conflicts() == []  # nothing changed
    assert len(await desk.world.slots(name, TUESDAY_10, TUESDAY_10 + timedelta(hours=1))) == 1

    done = await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=closed_tuesday),
                                                 metadata=provider.metadata)
    assert [s.booking for s in done.stranded_bookings] == [tuesday.name]
    assert await conflicts() == [tuesday.name]

    # Capacity 1 strands Wednesday's two seats; already-stranded Tuesday is not listed again.
    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=name))).service
    shrink = catalog_pb2.UpdateServiceRequest(service=catalog_pb2.Service(name=name, etag=service.etag, capacity=1),
                                              update_mask=field_mask_pb2.FieldMask(paths=["capacity"]))
    shrink.validate_only = True
    checked_update = await running.catalog.UpdateService(shrink, metadata=provider.metadata)
    assert [s.booking for s in checked_update.stranded_bookings] == [wednesday.name]
    assert checked_update.service.capacity == 1 and checked_update.service.etag != service.etag
    assert (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=name))).service == service

    archive = await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(
        name=name, etag=service.etag, validate_only=True), metadata=provider.metadata)
    assert archive.service.state == catalog_pb2.SERVICE_STATE_ARCHIVED
    assert [s.booking for s in archive.stranded_bookings] == [wednesday.name]
    assert (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=name))).service.state == (
        catalog_pb2.SERVICE_STATE_ACTIVE)
    archived = await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=name, etag=service.etag),
                                                   metadata=provider.metadata)
    assert archived.stranded_booking_count == 1
    assert set(await conflicts()) == {tuesday.name, wednesday.name}


async def test_providers_list_and_resolve_the_conflicts_of_their_own_services_only(running: Running) -> None:
    desk = await Desk.open(running, capacity=2)
    ann = await desk.customer()
    mine = await desk.book(ann)
    other = await running.signed_in("other-provider@example.com", role=Role.PROVIDER)
    theirs_service = await desk.world.service(by=other, display_name="Other massage")
    theirs = await desk.book(ann, TUESDAY_10 + timedelta(hours=3), service=theirs_service.name)
    admin = desk.world.admin
    for service in (desk.service, theirs_service):
        current = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service
        await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name, etag=current.etag),
                                            metadata=admin.metadata)
    provider = desk.world.provider
    listed = (await running.admin.ListConflicts(admin_pb2.ListConflictsRequest(), metadata=provider.metadata))
    assert [c.booking.name for c in listed.conflicts] == [mine.name]
    error = await error_of(running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=theirs.name, resolution=admin_pb2.CONFLICT_RESOLUTION_CANCEL, reason="x"), metadata=provider.metadata))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await error_of(running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=mine.name, resolution=admin_pb2.CONFLICT_RESOLUTION_CANCEL, reason=""), metadata=provider.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    customer_error = await error_of(running.admin.ListConflicts(admin_pb2.ListConflictsRequest(),
                                                                metadata=ann.metadata))
    assert customer_error.code() == grpc.StatusCode.PERMISSION_DENIED

    resolved = (await running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=mine.name, resolution=admin_pb2.CONFLICT_RESOLUTION_CANCEL, reason="we closed the studio"),
        metadata=provider.metadata)).booking
    assert resolved.status == booking_pb2.BOOKING_STATUS_CANCELLED and resolved.cancellation_fee.amount_minor == 0
    assert resolved.cancel_reason == "conflict: we closed the studio"
    mail = await running.mailbox.wait_for(lambda m: m["To"] == ann.email and m["Subject"].startswith("Cancelled:"))
    assert "Reason: conflict: we closed the studio" in text_of(mail)


async def test_a_moved_conflict_keeps_its_reason_in_the_audit_log_and_the_customers_mail(running: Running) -> None:
    desk = await Desk.open(running, capacity=1)
    ann = await desk.customer()
    booking = await desk.book(ann)
    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=desk.service.name))).service
    shrunk = catalog_pb2.Availability(name=f"{service.name}/availability",
                                      weekly_windows=weekly(WEEKDAYS, "11:00", "17:00"))
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=shrunk),
                                          metadata=desk.world.provider.metadata)
    admin = desk.world.admin
    moved = (await running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=booking.name, resolution=admin_pb2.CONFLICT_RESOLUTION_MOVE_TO_NEAREST, reason="hours changed"),
        metadata=admin.metadata)).booking
    assert moved.start_time == ts(TUESDAY_10 + timedelta(hours=1))  # 11:00, the nearest free slot
    events = (await running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(target=booking.name),
                                                  metadata=admin.metadata)).audit_events
    assert [(e.action, e.reason) for e in events] == [("RescheduleBooking", "conflict: hours changed")]
    mail = await running.mailbox.wait_for(lambda m: m["To"] == ann.email and m["Subject"].startswith("Moved:"))
    assert "Reason: conflict: hours changed" in text_of(mail)


async def test_conflicts_resolve_in_bulk_once_per_request_id_with_a_report_per_booking(running: Running) -> None:
    desk = await Desk.open(running, capacity=1)
    customers = [await desk.customer() for _ in range(3)]
    early = await desk.book(customers[0])  # Tuesday 10:00
    late = await desk.book(customers[1], TUESDAY_10 + timedelta(hours=6))  # 16:00
    wednesday = await desk.book(customers[2], TUESDAY_10 + timedelta(days=1))
    # Tuesday's hours shrink to 11:00-16:00: 10:00 and 16:00 are stranded; Wednesday is not.
    windows = [w for w in weekly(WEEKDAYS, "09:00", "17:00") if w.day_of_week != 2]
    windows += weekly([WEEKDAYS[1]], "11:00", "16:00")
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{desk.service.name}/availability", weekly_windows=windows)), metadata=desk.world.provider.metadata)
    # Tuesday 11:00 and 15:00 (the nearest for each) are taken, so each moves one further.
    await desk.book(await desk.customer(), TUESDAY_10 + timedelta(hours=1))
    await desk.book(await desk.customer(), TUESDAY_10 + timedelta(hours=5))
    request = admin_pb2.ResolveConflictsRequest(
        service=desk.service.name, reasons=[conflicts_pb2.CONFLICT_REASON_OUTSIDE_AVAILABILITY],
        resolution=admin_pb2.CONFLICT_RESOLUTION_MOVE_TO_NEAREST, reason="shorter Tuesdays", request_id="bulk-1")
    provider = desk.world.provider
    report = (await running.admin.ResolveConflicts(request, metadata=provider.metadata)).outcomes
    moved = admin_pb2.CONFLICT_OUTCOME_RESULT_MOVED
    assert [(o.booking, o.result, o.new_start_time) for o in report] == [
        (early.name, moved, ts(TUESDAY_10 + timedelta(hours=2))),
        (late.name, moved, ts(TUESDAY_10 + timedelta(hours=4)))]
    # The retry returns the first report and moves nothing again; other content is refused.
    again = (await running.admin.ResolveConflicts(request, metadata=provider.metadata)).outcomes
    assert list(again) == list(report)
    request.reason = "something else"
    error = await error_of(running.admin.ResolveConflicts(request, metadata=provider.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    got = (await running.booking.GetBooking(booking_pb2.GetBookingRequest(name=wednesday.name),
                                            metadata=customers[2].metadata)).booking
    assert got.start_time == wednesday.start_time

    # Nothing free: reported as unresolved, with the reason, and left as it was.
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=desk.service.name),
                                        metadata=desk.world.admin.metadata)
    cancel = admin_pb2.ResolveConflictsRequest(resolution=admin_pb2.CONFLICT_RESOLUTION_MOVE_TO_NEAREST,
                                               reason="closed", request_id="bulk-2")
    report = (await running.admin.ResolveConflicts(cancel, metadata=desk.world.admin.metadata)).outcomes
    assert {(o.result, o.failure_reason) for o in report} == {(admin_pb2.CONFLICT_OUTCOME_RESULT_UNRESOLVED,
                                                                "NO_FREE_SLOT")}
    cancel.resolution, cancel.request_id = admin_pb2.CONFLICT_RESOLUTION_CANCEL, "bulk-3"
    report = (await running.admin.ResolveConflicts(cancel, metadata=desk.world.admin.metadata)).outcomes
    assert len(report) == 5 and {o.result for o in report} == {admin_pb2.CONFLICT_OUTCOME_RESULT_CANCELLED}
    bad = await error_of(running.admin.ResolveConflicts(admin_pb2.ResolveConflictsRequest(
        resolution=admin_pb2.CONFLICT_RESOLUTION_RESCHEDULE, request_id="no id!"), metadata=provider.metadata))
    assert set(violations(bad)) == {"resolution", "reason", "request_id"}
