"""BookingService: converts requests, calls the booking use cases, converts answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills_rpc.db.bookings import BookingFilter, BookingLine
from foothills_rpc.db.catalog import cancellation_of
from foothills_rpc.db.holds import stored_quote
from foothills_rpc.db.models import Booking, Hold
from foothills_rpc.domain.catalog import check_seats
from foothills_rpc.domain.errors import Collector, InvalidArgument
from foothills_rpc.domain.requests import check_request_id
from foothills_rpc.interceptors.auth import principal
from foothills_rpc.services import catalog_convert as convert
from foothills_rpc.services.converters import optional_id, resource_id, set_timestamp, timestamp
from foothills_rpc.usecases.bookings import BookingRequest, Bookings
from foothills_rpc.usecases.holds import HoldRequest, Holds
from foothills_rpc.usecases.waitlist import EntryView, Waitlist

STATUS_TO_PROTO = {"pending": booking_pb2.BOOKING_STATUS_PENDING, "confirmed": booking_pb2.BOOKING_STATUS_CONFIRMED,
                   "cancelled": booking_pb2.BOOKING_STATUS_CANCELLED, "completed": booking_pb2.BOOKING_STATUS_COMPLETED}
STATUS_FROM_PROTO = {value: key for key, value in STATUS_TO_PROTO.items()}
EVENT_TO_PROTO = {"created": booking_pb2.BOOKING_EVENT_TYPE_CREATED,
                  "confirmed": booking_pb2.BOOKING_EVENT_TYPE_CONFIRMED,
                  "cancelled": booking_pb2.BOOKING_EVENT_TYPE_CANCELLED,
                  "rescheduled": booking_pb2.BOOKING_EVENT_TYPE_RESCHEDULED,
                  "completed": booking_pb2.BOOKING_EVENT_TYPE_COMPLETED}
ORDERS = {booking_pb2.BOOKING_ORDER_UNSPECIFIED: "newest", booking_pb2.BOOKING_ORDER_NEWEST_FIRST: "newest",
          booking_pb2.BOOKING_ORDER_SOONEST_FIRST: "soonest"}


HOLD_STATE_TO_PROTO = {"active": booking_pb2.HOLD_STATE_ACTIVE, "used": booking_pb2.HOLD_STATE_USED,
                       "released": booking_pb2.HOLD_STATE_RELEASED, "expired": booking_pb2.HOLD_STATE_EXPIRED}


ENTRY_STATE_TO_PROTO = {"waiting": booking_pb2.WAITLIST_ENTRY_STATE_WAITING,
                        "offered": booking_pb2.WAITLIST_ENTRY_STATE_OFFERED,
                        "booked": booking_pb2.WAITLIST_ENTRY_STATE_BOOKED,
                        "left": booking_pb2.WAITLIST_ENTRY_STATE_LEFT,
                        "expired": booking_pb2.WAITLIST_ENTRY_STATE_OFFER_EXPIRED,
                        "closed": booking_pb2.WAITLIST_ENTRY_STATE_CLOSED}


def _entry_to_proto(view: EntryView) -> booking_pb2.WaitlistEntry:
    entry, offer_expiry = view
    message = booking_pb2.WaitlistEntry(
        name=f"waitlistEntries/{entry.id.hex}", service=f"services/{entry.service_id.hex}",
        customer=f"users/{entry.customer_id.hex}", start_time=timestamp(entry.start_at), seats=entry.seats,
        state=ENTRY_STATE_TO_PROTO[entry.status], hold=f"holds/{entry.hold_id.hex}" if entry.hold_id else "",
        create_time=timestamp(entry.joined_at))
    if offer_expiry is not None:
        message.offer_expire_time.CopyFrom(timestamp(offer_expiry))
    return message


def booking_to_proto(booking: Booking | BookingLine) -> booking_pb2.Booking:
    message = booking_pb2.Booking(
        name=f"bookings/{booking.id.hex}",
        service=f"services/{booking.service_id.hex}",
        customer=f"users/{booking.customer_id.hex}",
        provider=f"users/{booking.provider_id.hex}",
        seats=booking.seats,
        status=STATUS_TO_PROTO[booking.status],
        cancel_reason=booking.cancel_reason,
        notes=booking.notes,
        reschedule_count=booking.reschedule_count,
    )
    # The parts in place: a page of bookings fills them per row, and a part passed in is copied.
    convert.set_quote(message.price, stored_quote(booking))
    message.cancellation_policy.CopyFrom(convert.cancellation_to_proto(cancellation_of(booking.cancellation_policy)))
    convert.set_money(message.cancellation_fee, booking.cancellation_fee_minor, booking.currency)
    set_timestamp(message.start_time, booking.start_at)
    set_timestamp(message.end_time, booking.end_at)
    set_timestamp(message.create_time, booking.created_at)
    set_timestamp(message.update_time, booking.updated_at)
    return message


class BookingServicer(booking_pb2_grpc.BookingServiceServicer):
    def __init__(self, bookings: Bookings, holds: Holds, waitlist: Waitlist) -> None:
        self._bookings = bookings
        self._holds = holds
        self._waitlist = waitlist

    async def CreateBooking(self, request: booking_pb2.CreateBookingRequest,
                            context: Any) -> booking_pb2.CreateBookingResponse:
        errors = Collector()
        hold_id = optional_id(request.hold, "holds", "hold", errors)
        customer_id = optional_id(request.customer, "users", "customer", errors)
        if request.hold and request.customer:
            errors.add("customer", "must be empty when booking with a hold (the hold names its customer)")
        held = bool(request.hold)  # with a hold, the slot fields may be empty
        service_id = optional_id(request.service, "services", "service", errors, required=not held)
        start = None
        if not held or request.HasField("start_time"):
            start = convert.instant(request.start_time, "start_time", errors)
        expected = None
        if request.HasField("expected_total_price"):
            expected = (request.expected_total_price.amount_minor, request.expected_total_price.currency_code)
        errors.check()
        booking = await self._bookings.create(principal(), BookingRequest(
            service_id=service_id, start=start, seats=request.seats, notes=request.notes,
            request_id=request.request_id, expected_total=expected, hold_id=hold_id, customer_id=customer_id))
        return booking_pb2.CreateBookingResponse(booking=booking_to_proto(booking))

    async def HoldSlot(self, request: booking_pb2.HoldSlotRequest, context: Any) -> booking_pb2.HoldSlotResponse:
        errors = Collector()
        service_id = optional_id(request.service, "services", "service", errors, required=True)
        start = convert.instant(request.start_time, "start_time", errors)
        check_seats(request.seats, errors)
        check_request_id(request.request_id, errors)
        errors.check()
        assert service_id is not None  # required: a missing one was reported
        hold = await self._holds.hold(principal(), HoldRequest(service_id=service_id, start=start,
                                                                  seats=request.seats, request_id=request.request_id))
        return booking_pb2.HoldSlotResponse(hold=self._hold_to_proto(hold))

    async def GetHold(self, request: booking_pb2.GetHoldRequest, context: Any) -> booking_pb2.GetHoldResponse:
        hold = await self._holds.get_hold(principal(), resource_id(request.name, "holds"))
        return booking_pb2.GetHoldResponse(hold=self._hold_to_proto(hold))

    async def ReleaseHold(self, request: booking_pb2.ReleaseHoldRequest,
                          context: Any) -> booking_pb2.ReleaseHoldResponse:
        hold = await self._holds.release_hold(principal(), resource_id(request.name, "holds"))
        return booking_pb2.ReleaseHoldResponse(hold=self._hold_to_proto(hold))

    async def JoinWaitlist(self, request: booking_pb2.JoinWaitlistRequest,
                           context: Any) -> booking_pb2.JoinWaitlistResponse:
        errors = Collector()
        service_id = optional_id(request.service, "services", "service", errors, required=True)
        start = convert.instant(request.start_time, "start_time", errors)
        check_seats(request.seats, errors)
        errors.check()
        assert service_id is not None  # required: a missing one was reported
        view = await self._waitlist.join_waitlist(principal(), service_id, start, request.seats)
        return booking_pb2.JoinWaitlistResponse(entry=_entry_to_proto(view))

    async def ListWaitlistEntries(self, request: booking_pb2.ListWaitlistEntriesRequest,
                                  context: Any) -> booking_pb2.ListWaitlistEntriesResponse:
        errors = Collector()
        service_id = optional_id(request.service, "services", "service", errors)
        errors.check()
        rows, token = await self._waitlist.list_waitlist_entries(principal(), service_id,
                                                                 requested_size=request.page_size,
                                                                 token=request.page_token)
        return booking_pb2.ListWaitlistEntriesResponse(waitlist_entries=[_entry_to_proto(v) for v in rows],
                                                       next_page_token=token)

    async def LeaveWaitlist(self, request: booking_pb2.LeaveWaitlistRequest,
                            context: Any) -> booking_pb2.LeaveWaitlistResponse:
        view = await self._waitlist.leave_waitlist(principal(), resource_id(request.name, "waitlistEntries"))
        return booking_pb2.LeaveWaitlistResponse(entry=_entry_to_proto(view))

    def _hold_to_proto(self, hold: Hold) -> booking_pb2.Hold:
        state = hold.status
        if state == "active" and hold.expires_at <= self._bookings.now():
            state = "expired"  # lapsed, whether or not the sweeper has claimed it yet
        return booking_pb2.Hold(
            name=f"holds/{hold.id.hex}",
            service=f"services/{hold.service_id.hex}",
            customer=f"users/{hold.customer_id.hex}",
            start_time=timestamp(hold.start_at),
            end_time=timestamp(hold.end_at),
            seats=hold.seats,
            state=HOLD_STATE_TO_PROTO[state],
            price=convert.quote_to_proto(stored_quote(hold)),
            expire_time=timestamp(hold.expires_at),
            booking=f"bookings/{hold.booking_id.hex}" if hold.booking_id is not None else "",
            create_time=timestamp(hold.created_at),
        )

    async def GetBooking(self, request: booking_pb2.GetBookingRequest, context: Any) -> booking_pb2.GetBookingResponse:
        booking = await self._bookings.get_booking(principal(), resource_id(request.name, "bookings"))
        return booking_pb2.GetBookingResponse(booking=booking_to_proto(booking))

    async def ListBookings(self, request: booking_pb2.ListBookingsRequest,
                           context: Any) -> booking_pb2.ListBookingsResponse:
        errors = Collector()
        statuses = []
        for index, status in enumerate(request.statuses):
            if status not in STATUS_FROM_PROTO:
                errors.add(f"statuses[{index}]", "is not a booking status")
            else:
                statuses.append(STATUS_FROM_PROTO[status])
        order = ORDERS.get(request.order_by)
        if order is None:
            errors.add("order_by", "is not a known order")
        filters = BookingFilter(
            statuses=tuple(sorted(set(statuses))),
            start_after=convert.instant(request.start_after, "start_after", errors)
            if request.HasField("start_after") else None,
            start_before=convert.instant(request.start_before, "start_before", errors)
            if request.HasField("start_before") else None,
            service_id=optional_id(request.service, "services", "service", errors),
            customer_id=optional_id(request.customer, "users", "customer", errors),
            order=order or "newest")
        errors.check()
        rows, token = await self._bookings.list_bookings(principal(), filters, requested_size=request.page_size,
                                                token=request.page_token)
        return booking_pb2.ListBookingsResponse(bookings=[booking_to_proto(b) for b in rows], next_page_token=token)

    async def CancelBooking(self, request: booking_pb2.CancelBookingRequest,
                            context: Any) -> booking_pb2.CancelBookingResponse:
        booking = await self._bookings.cancel(principal(), resource_id(request.name, "bookings"),
                                              reason=request.reason, override=request.override_policy,
                                              request_id=request.request_id, validate_only=request.validate_only)
        return booking_pb2.CancelBookingResponse(booking=booking_to_proto(booking))

    async def RescheduleBooking(self, request: booking_pb2.RescheduleBookingRequest,
                                context: Any) -> booking_pb2.RescheduleBookingResponse:
        booking_id = resource_id(request.name, "bookings")
        errors = Collector()
        start = convert.instant(request.new_start_time, "new_start_time", errors)
        errors.check()
        booking = await self._bookings.reschedule(principal(), booking_id, start, request.request_id)
        return booking_pb2.RescheduleBookingResponse(booking=booking_to_proto(booking))

    async def ConfirmBooking(self, request: booking_pb2.ConfirmBookingRequest,
                             context: Any) -> booking_pb2.ConfirmBookingResponse:
        booking = await self._bookings.confirm(principal(), resource_id(request.name, "bookings"))
        return booking_pb2.ConfirmBookingResponse(booking=booking_to_proto(booking))

    async def CompleteBooking(self, request: booking_pb2.CompleteBookingRequest,
                              context: Any) -> booking_pb2.CompleteBookingResponse:
        booking = await self._bookings.complete(principal(), resource_id(request.name, "bookings"))
        return booking_pb2.CompleteBookingResponse(booking=booking_to_proto(booking))

    async def WatchBookings(self, request: booking_pb2.WatchBookingsRequest,
                            context: Any) -> AsyncIterator[booking_pb2.WatchBookingsResponse]:
        caller = principal()
        if request.after_event_id:
            if not (request.after_event_id.isascii() and request.after_event_id.isdigit()
                    and len(request.after_event_id) <= 19 and int(request.after_event_id) < 2**63):
                raise InvalidArgument.single("after_event_id", "must be an event_id received from this stream")
            after = int(request.after_event_id)
        else:
            after = await self._bookings.last_event()
        # Headers mark the moment the stream is live: every change from here on will be sent.
        await context.send_initial_metadata((("x-watch-after-event-id", str(after)),))
        changes = self._bookings.changes
        while True:
            mark = changes.mark()
            events = await self._bookings.events_after(caller, after)
            for event, booking in events:
                after = event.id
                yield booking_pb2.WatchBookingsResponse(
                    event_id=str(event.id), type=EVENT_TO_PROTO[event.type], booking=booking_to_proto(booking),
                    event_time=timestamp(event.created_at))
            if not events:
                await changes.wait(mark)
