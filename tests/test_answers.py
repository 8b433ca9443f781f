"""Answers that say what happened: every bad field at once, a past start called past, an empty slot
list that says why, a wrong current password that does not sign the caller out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from tests.booking_support import TUESDAY_10, Desk, error_of
from tests.catalog_support import duration, ts
from tests.conftest import Running
from tests.support import error_info, reason, violation_descriptions, violations


@pytest.mark.parametrize("category", [pytest.param("bad", id="malformed"), pytest.param("", id="missing")])
async def test_create_service_reports_every_bad_field_at_once(running: Running, category: str) -> None:
    """A malformed category name once hid the bad currency and time zone beside it."""
    desk = await Desk.open(running)
    service = catalog_pb2.Service(display_name="Massage", category=category, duration=duration(minutes=60),
                                  capacity=1, time_zone="Mars/Olympus",
                                  base_price=types_pb2.Money(amount_minor=100, currency_code="XX"))
    error = await error_of(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(service=service),
                                                       metadata=desk.world.provider.metadata))
    assert set(violations(error)) == {"service.category", "service.time_zone", "service.base_price.currency_code"}
    service.ClearField("base_price")
    error = await error_of(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(service=service),
                                                       metadata=desk.world.provider.metadata))
    described = violation_descriptions(error)
    assert set(described) == {"service.category", "service.time_zone", "service.base_price"}
    assert described["service.base_price"] == "is required"


async def test_booking_or_holding_a_start_in_the_past_says_it_is_in_the_past(running: Running) -> None:
    desk = await Desk.open(running, booking_settings=catalog_pb2.BookingSettings(minimum_notice=duration(seconds=0)))
    ann = await desk.customer()
    booking = await desk.book(ann)
    past = running.clock.now() - timedelta(days=1)  # a Sunday: no slot was ever made for it
    for call in (desk.book(ann, past),
                 running.booking.HoldSlot(booking_pb2.HoldSlotRequest(service=desk.service.name, start_time=ts(past),
                                                                      request_id="h"), metadata=ann.metadata),
                 running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
                     name=booking.name, new_start_time=ts(past), request_id="r"), metadata=ann.metadata)):
        error = await error_of(call)
        assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "START_IN_PAST")
        assert error.details() == "that start is in the past"
    # A slot that was materialised and has since started reads the same, not as too soon.
    running.clock.advance(TUESDAY_10 - running.clock.now() + timedelta(minutes=1))
    error = await error_of(desk.book(await desk.customer(), TUESDAY_10))
    assert reason(error) == "START_IN_PAST"


async def test_list_slots_says_where_the_bookable_window_lies(running: Running) -> None:
    """An empty answer for last week is explained by the window the response carries."""
    desk = await Desk.open(running)  # minimum notice 1 hour, 60 days ahead
    now = running.clock.now()
    past = (await running.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=desk.service.name, start_time=ts(now - timedelta(days=7)), end_time=ts(now))))
    assert list(past.slots) == []
    assert past.bookable_start_time == ts(now + timedelta(hours=1))
    assert past.bookable_end_time == ts(now + timedelta(days=60))
    week = await desk.world.slots(desk.service.name, now, now + timedelta(days=7))
    assert week and all(s.start_time.ToDatetime() >= (now + timedelta(hours=1)).replace(tzinfo=None) for s in week)
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=desk.service.name,
                                                                         etag=desk.service.etag),
                                        metadata=desk.world.provider.metadata)
    archived = await running.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=desk.service.name, start_time=ts(now), end_time=ts(now + timedelta(days=7))))
    assert list(archived.slots) == [] and not archived.HasField("bookable_start_time")


async def test_a_customer_sees_the_cancellation_fee_before_cancelling(running: Running) -> None:
    desk = await Desk.open(running, capacity=2)  # 50 % from 24 h before the start, refused from 2 h
    ann = await desk.customer("ann@example.com")
    booking = await desk.book(ann)
    running.mailbox.clear()

    async def preview() -> booking_pb2.Booking:
        return (await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(
            name=booking.name, reason="plans changed", validate_only=True), metadata=ann.metadata)).booking

    assert (await preview()).cancellation_fee.amount_minor == 0  # 25 h ahead: free
    running.clock.advance(timedelta(hours=2))
    ann = await running.again(ann)
    shown = await preview()
    assert (shown.status, shown.cancellation_fee, shown.cancel_reason) == (
        booking_pb2.BOOKING_STATUS_CANCELLED, types_pb2.Money(amount_minor=2500, currency_code="EUR"), "plans changed")
    # Nothing changed: the booking and its seat.
    got = (await running.booking.GetBooking(booking_pb2.GetBookingRequest(name=booking.name),
                                            metadata=ann.metadata)).booking
    assert got == booking
    assert await desk.remaining() == 1
    cancelled = (await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(
        name=booking.name, reason="plans changed"), metadata=ann.metadata)).booking
    assert cancelled.cancellation_fee == shown.cancellation_fee

    late = await desk.book(await desk.customer(), TUESDAY_10 + timedelta(hours=1))
    running.clock.advance(timedelta(hours=22, minutes=30))  # 1.5 h before it: refused
    admin = await running.again(desk.world.admin)
    error = await error_of(running.booking.CancelBooking(booking_pb2.CancelBookingRequest(
        name=late.name, validate_only=True), metadata=admin.metadata))
    assert reason(error) == "OUTSIDE_CANCELLATION_WINDOW"
    assert dict(error_info(error).metadata) == {"overridable_with": "override_policy"}
    assert "override_policy" in (error.details() or "")
    overridden = (await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(
        name=late.name, override_policy=True, reason="storm", validate_only=True),
        metadata=admin.metadata)).booking
    assert overridden.cancellation_fee.amount_minor == 0


async def test_a_retried_cancel_returns_the_first_result(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)

    def cancel(request_id: str, why: str = "ill") -> object:
        return running.booking.CancelBooking(booking_pb2.CancelBookingRequest(
            name=booking.name, reason=why, request_id=request_id), metadata=ann.metadata)

    first = (await cancel("cancel-1")).booking  # type: ignore[attr-defined]
    assert first.status == booking_pb2.BOOKING_STATUS_CANCELLED
    assert (await cancel("cancel-1")).booking == first  # type: ignore[attr-defined]
    error = await error_of(cancel("cancel-2"))
    assert reason(error) == "BOOKING_ALREADY_CANCELLED"
    error = await error_of(cancel("cancel-1", why="something else"))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    error = await error_of(cancel("not an id"))
    assert violations(error) == {"request_id": "INVALID_VALUE"}


async def test_update_service_reports_every_bad_field_at_once(running: Running) -> None:
    desk = await Desk.open(running)
    error = await error_of(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=desk.service.name, category="bad", time_zone="Mars/Olympus",
                                    base_price=types_pb2.Money(amount_minor=100, currency_code="XX")),
        update_mask=field_mask_pb2.FieldMask(paths=["category", "time_zone", "base_price"])),
        metadata=desk.world.provider.metadata))
    assert set(violations(error)) == {"service.category", "service.time_zone", "service.base_price.currency_code",
                                      "service.etag"}


async def test_simultaneous_bookings_of_one_slot_by_one_customer_get_the_sequential_reason(
        running: Running) -> None:
    """A second booking of the same slot by the same customer is SLOT_ALREADY_BOOKED_BY_USER whether the
    check saw the first or, racing it, PostgreSQL's overlap constraint caught it (an overlap to it)."""
    desk = await Desk.open(running, capacity=10)
    ann = await desk.customer()
    results = await asyncio.gather(*(running.booking.CreateBooking(desk.request(), metadata=ann.metadata)
                                     for _ in range(8)), return_exceptions=True)
    won = [r for r in results if isinstance(r, booking_pb2.CreateBookingResponse)]
    refused = {(e.code(), reason(e)) for e in results if isinstance(e, grpc.aio.AioRpcError)}
    assert len(won) == 1
    assert refused <= {(grpc.StatusCode.FAILED_PRECONDITION, "SLOT_ALREADY_BOOKED_BY_USER"),
                       (grpc.StatusCode.ABORTED, "CONCURRENT_MODIFICATION"), (grpc.StatusCode.ABORTED, "DATABASE_BUSY")}
    sequential = await error_of(running.booking.CreateBooking(desk.request(), metadata=ann.metadata))
    assert reason(sequential) == "SLOT_ALREADY_BOOKED_BY_USER"
