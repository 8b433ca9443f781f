"""Slot holds through the real server: seats reserved for a checkout, the locked price, expiry by the
application clock, the sweeper, and booking with a hold."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from tests.booking_support import TUESDAY_10, Desk, Holds, error_of
from tests.catalog_support import at, duration, ts
from tests.conftest import Running
from tests.support import reason, violations

DEMAND = catalog_pb2.PricingPolicy(rules=[
    catalog_pb2.PricingRule(adjustment_bps=2000, label="filling up",
                            occupancy=catalog_pb2.OccupancyCondition(min_occupancy_bps=5000))])


async def test_a_hold_takes_seats_until_it_expires_and_shows_its_expiry_and_price(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    holds = Holds(desk)
    ann = await desk.customer()
    hold = await holds.hold(ann, seats=2)
    assert hold.state == booking_pb2.HOLD_STATE_ACTIVE
    assert (hold.service, hold.customer, hold.seats, hold.start_time) == (desk.service.name, ann.name, 2,
                                                                          ts(TUESDAY_10))
    assert hold.expire_time == ts(running.clock.now() + timedelta(minutes=5))  # the default
    assert hold.price.total_price.amount_minor == 10000
    assert await desk.remaining() == 1  # held seats count as taken
    error = await error_of(desk.book(await desk.customer(), seats=2))
    assert reason(error) == "SLOT_UNAVAILABLE"
    # An expired hold stops counting at once, before any sweep.
    running.clock.advance(timedelta(minutes=5))
    assert await desk.remaining() == 3
    got = (await running.booking.GetHold(booking_pb2.GetHoldRequest(name=hold.name), metadata=ann.metadata)).hold
    assert got.state == booking_pb2.HOLD_STATE_EXPIRED
    await desk.book(await desk.customer(), seats=3)  # the writer claims the lapsed hold itself
    assert await desk.remaining() == 0
    assert await running.server.components.holds.expire_holds() == 0  # nothing left to sweep


async def test_the_sweeper_claims_each_expired_hold_once(running: Running) -> None:
    desk = await Desk.open(running, capacity=4)
    holds = Holds(desk)
    for _ in range(3):
        await holds.hold(await desk.customer())
    running.clock.advance(timedelta(minutes=4, seconds=59))
    bookings = running.server.components.holds
    assert await bookings.expire_holds() == 0
    assert await desk.remaining() == 1
    running.clock.advance(timedelta(seconds=1))
    assert await bookings.expire_holds() == 3
    assert await bookings.expire_holds() == 0
    assert await desk.remaining() == 4


async def test_hold_duration_is_set_per_service(running: Running) -> None:
    desk = await Desk.open(running, booking_settings=catalog_pb2.BookingSettings(
        minimum_notice=duration(hours=1), maximum_days_ahead=60, hold_duration=duration(minutes=15)))
    assert desk.service.booking_settings.hold_duration == duration(minutes=15)
    hold = await Holds(desk).hold(await desk.customer())
    assert hold.expire_time == ts(running.clock.now() + timedelta(minutes=15))
    error = await error_of(desk.world.service(booking_settings=catalog_pb2.BookingSettings(
        hold_duration=duration(seconds=30))))
    assert violations(error) == {"service.booking_settings.hold_duration": "INVALID_VALUE"}


async def test_booking_with_a_hold_gets_its_seats_and_its_price_even_after_demand_moved(running: Running) -> None:
    desk = await Desk.open(running, capacity=4, pricing=DEMAND)
    holds = Holds(desk)
    ann = await desk.customer("ann@example.com")
    hold = await holds.hold(ann, seats=1)
    assert hold.price.unit_price.amount_minor == 5000
    await desk.book(await desk.customer(), seats=2)  # occupancy now 3/4: the price went up
    quote = (await running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
        service=desk.service.name, start_time=ts(TUESDAY_10), seats=1))).quote
    assert quote.unit_price.amount_minor == 6000
    booking = await holds.book_with(ann, hold.name, notes="by the window")
    assert booking.price == hold.price
    assert (booking.seats, booking.start_time, booking.customer) == (1, hold.start_time, ann.name)
    assert await desk.remaining() == 1  # the hold's seat passed to the booking, nothing taken twice
    used = (await running.booking.GetHold(booking_pb2.GetHoldRequest(name=hold.name), metadata=ann.metadata)).hold
    assert (used.state, used.booking) == (booking_pb2.HOLD_STATE_USED, booking.name)
    error = await error_of(holds.book_with(ann, hold.name))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "HOLD_ALREADY_USED")
    error = await error_of(running.booking.ReleaseHold(booking_pb2.ReleaseHoldRequest(name=hold.name),
                                                     metadata=ann.metadata))
    assert reason(error) == "HOLD_ALREADY_USED"
    running.clock.advance(timedelta(hours=1))
    assert await running.server.components.holds.expire_holds() == 0
    assert await desk.remaining() == 1


async def test_an_expired_hold_cannot_be_booked(running: Running) -> None:
    desk = await Desk.open(running)
    holds = Holds(desk)
    ann = await desk.customer()
    hold = await holds.hold(ann)
    running.clock.advance(timedelta(minutes=5))
    error = await error_of(holds.book_with(ann, hold.name))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "HOLD_EXPIRED")
    assert await desk.remaining() == 1


async def test_another_users_hold_is_not_found(running: Running) -> None:
    desk = await Desk.open(running)
    holds = Holds(desk)
    ann, bob = await desk.customer(), await desk.customer()
    hold = await holds.hold(ann)
    error = await error_of(holds.book_with(bob, hold.name))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    for call in (running.booking.GetHold(booking_pb2.GetHoldRequest(name=hold.name), metadata=bob.metadata),
                 running.booking.ReleaseHold(booking_pb2.ReleaseHoldRequest(name=hold.name), metadata=bob.metadata)):
        assert (await error_of(call)).code() == grpc.StatusCode.NOT_FOUND
    # Not even an admin books with someone else's hold (the booking would be theirs).
    error = await error_of(holds.book_with(desk.world.admin, hold.name))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_releasing_gives_the_seats_back_at_once_and_is_safe_to_retry(running: Running) -> None:
    desk = await Desk.open(running, capacity=2)
    holds = Holds(desk)
    ann = await desk.customer()
    hold = await holds.hold(ann, seats=2)
    assert await desk.remaining() == 0
    for _ in range(2):
        released = (await running.booking.ReleaseHold(booking_pb2.ReleaseHoldRequest(name=hold.name),
                                                      metadata=ann.metadata)).hold
        assert released.state == booking_pb2.HOLD_STATE_RELEASED
        assert await desk.remaining() == 2
    error = await error_of(holds.book_with(ann, hold.name))
    assert reason(error) == "HOLD_EXPIRED"
    running.clock.advance(timedelta(minutes=10))
    assert await running.server.components.holds.expire_holds() == 0
    assert await desk.remaining() == 2


async def test_hold_request_id_makes_a_retry_return_the_first_hold(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    holds = Holds(desk)
    ann = await desk.customer()
    first = await holds.hold(ann, request_id="checkout-1")
    again = await holds.hold(ann, request_id="checkout-1")
    assert again == first
    assert await desk.remaining() == 2
    error = await error_of(holds.hold(ann, request_id="checkout-1", seats=2))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")


async def test_holds_follow_the_booking_rules(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    holds = Holds(desk)
    ann = await desk.customer()
    await holds.hold(ann)
    error = await error_of(holds.hold(ann))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "SLOT_ALREADY_HELD_BY_USER")
    error = await error_of(holds.hold(ann, at("2030-01-07T09:00")))
    assert reason(error) == "MINIMUM_NOTICE"
    error = await error_of(holds.hold(ann, seats=4))
    assert reason(error) == "SLOT_UNAVAILABLE"
    booked = await desk.customer()
    await desk.book(booked)
    error = await error_of(holds.hold(booked))
    assert reason(error) == "SLOT_ALREADY_BOOKED_BY_USER"
    error = await error_of(running.booking.HoldSlot(booking_pb2.HoldSlotRequest(seats=-1), metadata=ann.metadata))
    assert set(violations(error)) == {"service", "start_time", "seats", "request_id"}


async def test_booking_with_a_hold_checks_the_fields_it_repeats(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    holds = Holds(desk)
    ann = await desk.customer()
    hold = await holds.hold(ann)
    error = await error_of(holds.book_with(ann, hold.name, seats=2, start_time=ts(at("2030-01-08T11:00"))))
    assert set(violations(error)) == {"seats", "start_time"}
    error = await error_of(holds.book_with(ann, "holds/nope"))
    assert set(violations(error)) == {"hold"}
    booking = await holds.book_with(ann, hold.name, service=desk.service.name, start_time=ts(TUESDAY_10), seats=1)
    assert booking.seats == 1


@pytest.mark.parametrize("role", ["admin"])
async def test_an_admin_may_see_and_release_any_hold(running: Running, role: str) -> None:
    desk = await Desk.open(running)
    hold = await Holds(desk).hold(await desk.customer())
    released = (await running.booking.ReleaseHold(booking_pb2.ReleaseHoldRequest(name=hold.name),
                                                  metadata=desk.world.admin.metadata)).hold
    assert released.state == booking_pb2.HOLD_STATE_RELEASED
    assert await desk.remaining() == 1
