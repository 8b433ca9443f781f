"""The waitlist through the real server: joining a full slot, offers as seats free up (cancellation,
reschedule, expired or released holds, more capacity), offers passing down the line, mail by SMTP."""

from __future__ import annotations

from datetime import timedelta

import grpc

from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from tests.booking_support import TUESDAY_10, Desk, Holds, error_of, join
from tests.catalog_support import at, duration, mask, ts
from tests.conftest import Caller, Running
from tests.support import reason, text_of, violations

WAITING, OFFERED = booking_pb2.WAITLIST_ENTRY_STATE_WAITING, booking_pb2.WAITLIST_ENTRY_STATE_OFFERED
BOOKED, LEFT = booking_pb2.WAITLIST_ENTRY_STATE_BOOKED, booking_pb2.WAITLIST_ENTRY_STATE_LEFT
EXPIRED = booking_pb2.WAITLIST_ENTRY_STATE_OFFER_EXPIRED
CLOSED = booking_pb2.WAITLIST_ENTRY_STATE_CLOSED


async def open_desk(running: Running, **fields: object) -> Desk:
    fields.setdefault("cancellation_policy", catalog_pb2.CancellationPolicy())
    fields.setdefault("booking_settings", catalog_pb2.BookingSettings(
        minimum_notice=duration(hours=1), maximum_days_ahead=60, waitlist_offer_duration=duration(minutes=2)))
    return await Desk.open(running, **fields)


async def mine(running: Running, who: Caller) -> list[booking_pb2.WaitlistEntry]:
    return list((await running.booking.ListWaitlistEntries(booking_pb2.ListWaitlistEntriesRequest(),
                                                           metadata=who.metadata)).waitlist_entries)


async def state(running: Running, who: Caller) -> booking_pb2.WaitlistEntry:
    (entry,) = await mine(running, who)
    return entry


async def cancel(running: Running, who: Caller, booking: booking_pb2.Booking) -> None:
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name), metadata=who.metadata)


async def test_a_cancellation_offers_the_seat_to_the_first_in_line_by_mail(running: Running) -> None:
    desk = await open_desk(running)
    ann, bob = await desk.customer("ann@example.com"), await desk.customer("bob@example.com")
    booking = await desk.book(ann)
    entry = await join(running, desk, bob)
    assert (entry.state, entry.customer, entry.start_time, entry.seats, entry.hold) == (
        WAITING, bob.name, ts(TUESDAY_10), 1, "")
    assert await join(running, desk, bob) == entry  # one entry per user and slot: a retry is safe
    await cancel(running, ann, booking)
    offered = await state(running, bob)
    assert offered.state == OFFERED and offered.hold.startswith("holds/")
    assert offered.offer_expire_time == ts(running.clock.now() + timedelta(minutes=2))
    assert await desk.remaining() == 0  # held for bob, not free for anyone
    mail = await running.mailbox.wait_for(lambda m: m["To"] == "bob@example.com" and "place is free" in m["Subject"])
    assert f"Hold: {offered.hold}" in text_of(mail)
    booked = await Holds(desk).book_with(bob, offered.hold)
    assert booked.customer == bob.name
    assert (await state(running, bob)).state == BOOKED


async def test_joining_needs_a_full_slot(running: Running) -> None:
    desk = await open_desk(running, capacity=2)
    bob = await desk.customer()
    error = await error_of(join(running, desk, bob))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "SLOT_AVAILABLE")
    await desk.book(await desk.customer())
    error = await error_of(join(running, desk, bob, seats=3))
    assert reason(error) == "SLOT_UNAVAILABLE"
    await join(running, desk, bob, seats=2)  # two seats do not fit the one left
    error = await error_of(running.booking.JoinWaitlist(booking_pb2.JoinWaitlistRequest(seats=-2),
                                                      metadata=bob.metadata))
    assert set(violations(error)) == {"service", "start_time", "seats"}


async def test_an_unused_offer_passes_to_the_next_in_line(running: Running) -> None:
    desk = await open_desk(running)
    ann, bob, cat = [await desk.customer() for _ in range(3)]
    booking = await desk.book(ann)
    await join(running, desk, bob)
    await join(running, desk, cat)
    await cancel(running, ann, booking)
    assert [(await state(running, bob)).state, (await state(running, cat)).state] == [OFFERED, WAITING]
    running.clock.advance(timedelta(minutes=2))
    assert await running.server.components.holds.expire_holds() == 1  # the sweeper, nobody calling
    assert [(await state(running, bob)).state, (await state(running, cat)).state] == [EXPIRED, OFFERED]
    error = await error_of(Holds(desk).book_with(bob, (await state(running, bob)).hold))
    assert reason(error) == "HOLD_EXPIRED"
    await Holds(desk).book_with(cat, (await state(running, cat)).hold)
    assert (await state(running, cat)).state == BOOKED


async def test_the_first_entry_that_fits_gets_the_seats(running: Running) -> None:
    desk = await open_desk(running, capacity=2)
    ann, dan, bob, cat = [await desk.customer() for _ in range(4)]
    first = await desk.book(ann)
    await desk.book(dan)
    await join(running, desk, bob, seats=2)
    await join(running, desk, cat, seats=1)
    await cancel(running, ann, first)
    assert [(await state(running, bob)).state, (await state(running, cat)).state] == [WAITING, OFFERED]


async def test_leaving_declines_an_offer_and_the_next_gets_it(running: Running) -> None:
    desk = await open_desk(running)
    ann, bob, cat, eve = [await desk.customer() for _ in range(4)]
    booking = await desk.book(ann)
    bobs = await join(running, desk, bob)
    await join(running, desk, cat)
    await join(running, desk, eve)
    await cancel(running, ann, booking)
    error = await error_of(running.booking.LeaveWaitlist(booking_pb2.LeaveWaitlistRequest(name=bobs.name),
                                                       metadata=cat.metadata))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    left = (await running.booking.LeaveWaitlist(booking_pb2.LeaveWaitlistRequest(name=bobs.name),
                                                metadata=bob.metadata)).entry
    assert left.state == LEFT
    cats = await state(running, cat)
    assert cats.state == OFFERED
    # Releasing the offer's hold declines it too.
    await running.booking.ReleaseHold(booking_pb2.ReleaseHoldRequest(name=cats.hold), metadata=cat.metadata)
    assert [(await state(running, cat)).state, (await state(running, eve)).state] == [LEFT, OFFERED]
    assert await desk.remaining() == 0


async def test_a_reschedule_away_and_more_capacity_make_offers(running: Running) -> None:
    desk = await open_desk(running)
    ann, bob, cat = [await desk.customer() for _ in range(3)]
    booking = await desk.book(ann)
    await join(running, desk, bob)
    await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(at("2030-01-08T11:00")), request_id="move"), metadata=ann.metadata)
    assert (await state(running, bob)).state == OFFERED
    await join(running, desk, cat, at("2030-01-08T11:00"))
    service = desk.service
    await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, capacity=2), update_mask=mask("capacity")),
        metadata=desk.world.provider.metadata)
    assert (await state(running, cat)).state == OFFERED


async def test_an_expired_ordinary_hold_offers_its_seat_to_the_line(running: Running) -> None:
    desk = await open_desk(running)
    ann, bob = await desk.customer(), await desk.customer()
    await Holds(desk).hold(ann)
    await join(running, desk, bob)
    running.clock.advance(timedelta(minutes=5))
    await running.server.components.holds.expire_holds()
    assert (await state(running, bob)).state == OFFERED


async def test_a_booking_that_finds_a_lapsed_hold_offers_its_seats_to_the_line_first(running: Running) -> None:
    """No sweep ran: the writer expires the lapsed hold itself, the line gets the seats it needs and
    the writer the rest."""
    desk = await open_desk(running, capacity=2)
    ann, bob, cat, dan = [await desk.customer() for _ in range(4)]
    await Holds(desk).hold(ann, seats=2)
    await join(running, desk, bob)
    running.clock.advance(timedelta(minutes=5))
    await desk.book(cat)
    assert (await state(running, bob)).state == OFFERED
    assert await desk.remaining() == 0
    assert reason(await error_of(desk.book(dan))) == "SLOT_UNAVAILABLE"
    assert await running.server.components.holds.expire_holds() == 0  # the writer claimed ann's hold


async def test_each_user_lists_only_their_own_entries(running: Running) -> None:
    desk = await open_desk(running)
    ann, bob, cat = [await desk.customer() for _ in range(3)]
    await desk.book(ann)
    await join(running, desk, bob)
    await join(running, desk, cat)
    assert [e.customer for e in await mine(running, bob)] == [bob.name]
    everyone = await mine(running, desk.world.admin)
    assert {e.customer for e in everyone} == {bob.name, cat.name}
    first = await running.booking.ListWaitlistEntries(booking_pb2.ListWaitlistEntriesRequest(page_size=1),
                                                      metadata=desk.world.admin.metadata)
    second = await running.booking.ListWaitlistEntries(booking_pb2.ListWaitlistEntriesRequest(
        page_size=1, page_token=first.next_page_token), metadata=desk.world.admin.metadata)
    assert [e.name for e in [*first.waitlist_entries, *second.waitlist_entries]] == [e.name for e in everyone]


async def test_a_line_that_can_no_longer_be_offered_anything_is_closed(running: Running) -> None:
    """Nobody cancelled before the slot started; another service was archived: the sweep closes both
    lines instead of leaving them waiting for ever, and leaves a line that can still move alone."""
    desk = await open_desk(running)
    ann, bob, cy = await desk.customer(), await desk.customer(), await desk.customer()
    await desk.book(ann)
    await join(running, desk, bob)
    later = TUESDAY_10 + timedelta(days=1)
    await desk.book(ann, later)
    await join(running, desk, cy, later)
    other = Desk(desk.world, await desk.world.service(
        cancellation_policy=catalog_pb2.CancellationPolicy(), display_name="Other"))
    eve, dee = await desk.customer(), await desk.customer()
    elsewhere = TUESDAY_10 + timedelta(days=2)  # the same provider: not at a time they are booked
    await other.book(eve, elsewhere)
    await join(running, other, dee, elsewhere)
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=other.service.name),
                                        metadata=desk.world.provider.metadata)  # archives it
    sweep = running.server.components.holds.expire_holds
    await sweep()
    assert [(await state(running, who)).state for who in (bob, cy, dee)] == [WAITING, WAITING, CLOSED]
    running.clock.advance(TUESDAY_10 - running.clock.now())  # Tuesday's slot starts
    await sweep()
    bob, cy = await running.again(bob), await running.again(cy)  # their tokens outlived
    assert [(await state(running, who)).state for who in (bob, cy)] == [CLOSED, WAITING]


async def test_an_offer_skips_a_customer_at_their_booking_limit(running: Running) -> None:
    """Bob already has his one booking of the day: the freed seat goes to Cy, behind him in line,
    and Bob keeps his place."""
    desk = await open_desk(running, booking_settings=catalog_pb2.BookingSettings(
        minimum_notice=duration(hours=1), maximum_days_ahead=60, waitlist_offer_duration=duration(minutes=2),
        max_bookings_per_day=1))
    ann, bob, cy = await desk.customer(), await desk.customer(), await desk.customer()
    booking = await desk.book(ann)
    await desk.book(bob, TUESDAY_10 + timedelta(hours=2))
    await join(running, desk, bob)
    await join(running, desk, cy)
    await cancel(running, ann, booking)
    assert [(await state(running, who)).state for who in (bob, cy)] == [WAITING, OFFERED]
