"""Operations that would strand bookings say so first, and hurt none silently: a disabled provider's
services stop taking bookings at once; schedule changes can be checked first (validate_only) and
answer with the bookings they strand; conflicts are resolved by providers too, one by one or in bulk."""

from __future__ import annotations

from datetime import timedelta

import grpc

from foothills.admin.v1 import admin_pb2, conflicts_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from tests.catalog_support import ts
from tests.conftest import Running
from tests.support import reason
from tests.test_bookings import TUESDAY_10, Desk, _error


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
        error = await _error(call)
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
