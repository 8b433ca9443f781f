"""Booking and reschedule limits through the real server, and booking on a customer's behalf."""

from __future__ import annotations

from datetime import timedelta

import grpc

from foothills.admin.v1 import admin_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.domain.users import Role
from tests.booking_support import Desk, Holds, error_of
from tests.catalog_support import at, duration, ts
from tests.conftest import Caller, Running
from tests.support import reason, violations

TUE_10, TUE_11, TUE_12 = at("2030-01-08T10:00"), at("2030-01-08T11:00"), at("2030-01-08T12:00")
WED_10, THU_10, THU_11 = at("2030-01-09T10:00"), at("2030-01-10T10:00"), at("2030-01-10T11:00")


def settings(**fields: object) -> catalog_pb2.BookingSettings:
    return catalog_pb2.BookingSettings(minimum_notice=duration(hours=1), maximum_days_ahead=60,
                                       **fields)  # type: ignore[arg-type]


async def limited(running: Running, **fields: object) -> Desk:
    """Capacity 5 and no cancellation fees, with the given limits; the clock is Monday 2030-01-07 09:00 UTC."""
    return await Desk.open(running, capacity=5, booking_settings=settings(**fields),
                           cancellation_policy=catalog_pb2.CancellationPolicy())


async def move(running: Running, who: Caller, booking: booking_pb2.Booking, start: object,
               request_id: str) -> booking_pb2.Booking:
    return (await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(start), request_id=request_id), metadata=who.metadata)).booking


async def test_a_daily_limit_counts_pending_and_confirmed_bookings_of_the_day(running: Running) -> None:
    desk = await limited(running, max_bookings_per_day=2)
    assert desk.service.booking_settings.max_bookings_per_day == 2
    ann = await desk.customer()
    first = await desk.book(ann, TUE_10)
    await desk.book(ann, TUE_11)
    error = await error_of(desk.book(ann, TUE_12))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "USER_OVER_BOOKING_LIMIT")
    await desk.book(ann, WED_10)  # another day
    await desk.book(await desk.customer(), TUE_12)  # another customer
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=first.name), metadata=ann.metadata)
    await desk.book(ann, TUE_12)  # a cancelled booking no longer counts


async def test_weekly_and_monthly_limits(running: Running) -> None:
    desk = await limited(running, max_bookings_per_week=2, max_bookings_per_month=3)
    ann = await desk.customer()
    await desk.book(ann, TUE_10)
    await desk.book(ann, THU_10)
    error = await error_of(desk.book(ann, at("2030-01-11T10:00")))  # Friday of the same week
    assert reason(error) == "USER_OVER_BOOKING_LIMIT"
    await desk.book(ann, at("2030-01-14T10:00"))  # next Monday: a new week, the third of January
    error = await error_of(desk.book(ann, at("2030-01-15T10:00")))
    assert reason(error) == "USER_OVER_BOOKING_LIMIT"
    await desk.book(ann, at("2030-02-05T10:00"))  # a new month


async def test_unexpired_holds_count_and_booking_with_the_hold_is_not_counted_twice(running: Running) -> None:
    desk = await limited(running, max_bookings_per_day=1)
    holds = Holds(desk)
    ann = await desk.customer()
    hold = await holds.hold(ann, TUE_10)
    error = await error_of(desk.book(ann, TUE_11))
    assert reason(error) == "USER_OVER_BOOKING_LIMIT"
    error = await error_of(holds.hold(ann, TUE_12))
    assert reason(error) == "USER_OVER_BOOKING_LIMIT"
    await holds.book_with(ann, hold.name)
    running.clock.advance(timedelta(minutes=10))  # any other hold of hers would have expired by now
    error = await error_of(desk.book(ann, TUE_11))
    assert reason(error) == "USER_OVER_BOOKING_LIMIT"


async def test_an_expired_hold_stops_counting(running: Running) -> None:
    desk = await limited(running, max_bookings_per_day=1)
    ann = await desk.customer()
    await Holds(desk).hold(ann, TUE_10)
    running.clock.advance(timedelta(minutes=5))
    await desk.book(ann, TUE_11)


async def test_a_reschedule_within_the_period_does_not_count_twice(running: Running) -> None:
    desk = await limited(running, max_bookings_per_day=1)
    ann = await desk.customer()
    booking = await desk.book(ann, TUE_10)
    moved = await move(running, ann, booking, TUE_11, "move-1")
    assert moved.start_time == ts(TUE_11)
    await desk.book(ann, WED_10)
    error = await error_of(move(running, ann, moved, WED_10 + timedelta(hours=2), "move-2"))
    assert reason(error) == "USER_OVER_BOOKING_LIMIT"


async def test_reschedules_are_limited_in_number(running: Running) -> None:
    desk = await limited(running, max_reschedules=1)
    ann = await desk.customer()
    booking = await move(running, ann, await desk.book(ann, TUE_10), TUE_11, "move-1")
    error = await error_of(move(running, ann, booking, TUE_12, "move-2"))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "RESCHEDULE_LIMIT")
    never = Desk(desk.world, await desk.world.service(capacity=5, booking_settings=settings(max_reschedules=0)))
    error = await error_of(move(running, ann, await never.book(ann, WED_10), THU_10, "move-3"))
    assert reason(error) == "RESCHEDULE_LIMIT"


async def test_reschedules_are_limited_in_distance_from_the_original_start(running: Running) -> None:
    desk = await limited(running, max_reschedule_distance=duration(hours=24))
    ann = await desk.customer()
    booking = await desk.book(ann, TUE_10)
    error = await error_of(move(running, ann, booking, THU_10, "move-1"))
    assert reason(error) == "RESCHEDULE_LIMIT"
    booking = await move(running, ann, booking, WED_10, "move-2")  # exactly 24 hours: allowed
    # Measured from the original start, not from the last one: Thursday is 48 hours from Tuesday.
    error = await error_of(move(running, ann, booking, THU_10, "move-3"))
    assert reason(error) == "RESCHEDULE_LIMIT"
    await move(running, ann, booking, TUE_11, "move-4")


async def test_limit_settings_are_validated(running: Running) -> None:
    desk = await limited(running)
    error = await error_of(desk.world.service(booking_settings=catalog_pb2.BookingSettings(
        max_bookings_per_day=0, max_bookings_per_week=1001, max_reschedules=-1,
        max_reschedule_distance=duration(seconds=30))))
    assert violations(error) == {f"service.booking_settings.{f}": "INVALID_VALUE" for f in (
        "max_bookings_per_day", "max_bookings_per_week", "max_reschedules", "max_reschedule_distance")}


async def test_providers_and_admins_book_for_a_customer_inside_the_notice_customers_cannot(running: Running) -> None:
    desk = await Desk.open(running, capacity=5, booking_settings=catalog_pb2.BookingSettings(
        minimum_notice=duration(hours=3), requires_approval=True))
    ann = await desk.customer("ann@example.com")
    soon = at("2030-01-07T10:00")  # the clock says 09:00: inside the three-hour notice
    error = await error_of(desk.book(ann, soon))
    assert reason(error) == "MINIMUM_NOTICE"
    error = await error_of(desk.book(ann, soon, customer=(await desk.customer()).name))
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")
    stranger = await running.signed_in("other.provider@example.com", role=Role.PROVIDER)
    error = await error_of(desk.book(stranger, soon, customer=ann.name))
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")
    error = await error_of(desk.book(desk.world.provider, soon, customer="users/" + "0" * 32))
    assert error.code() == grpc.StatusCode.NOT_FOUND

    booking = await desk.book(desk.world.provider, soon, customer=ann.name)
    assert (booking.customer, booking.status) == (ann.name, booking_pb2.BOOKING_STATUS_CONFIRMED)
    listed = (await running.booking.ListBookings(booking_pb2.ListBookingsRequest(), metadata=ann.metadata)).bookings
    assert [b.name for b in listed] == [booking.name]
    by_admin = await desk.book(desk.world.admin, at("2030-01-07T11:00"), customer=ann.name)
    assert by_admin.customer == ann.name
    events = (await running.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(target=booking.name),
                                                  metadata=desk.world.admin.metadata)).audit_events
    assert [(e.actor, e.action, e.reason) for e in events] == [
        (desk.world.provider.name, "CreateBooking", "booked on the customer's behalf, inside the minimum notice")]
    error = await error_of(running.booking.CreateBooking(booking_pb2.CreateBookingRequest(
        hold="holds/" + "1" * 32, customer=ann.name, request_id="x"), metadata=desk.world.admin.metadata))
    assert "customer" in violations(error)


async def test_limits_apply_to_bookings_made_on_a_customers_behalf(running: Running) -> None:
    desk = await limited(running, max_bookings_per_day=1)
    ann = await desk.customer()
    await desk.book(ann, TUE_10)
    error = await error_of(desk.book(desk.world.provider, TUE_11, customer=ann.name))
    assert reason(error) == "USER_OVER_BOOKING_LIMIT"
