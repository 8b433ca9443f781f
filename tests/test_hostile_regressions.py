"""What an outside fuzzer and hostile callers found, each pinned through the real server.

A customer's leftovers (a released hold, a waiting line left) must not block an admin's change of a
service; instants at the ends of the Timestamp range are refused up front instead of overflowing;
the authorization header is unambiguous and a broken token is never quietly ignored; oversized
repeated fields are refused before any per-item work.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills_rpc.interceptors.hygiene import MAX_ITEMS, max_items
from foothills_rpc.server import SERVICE_NAMES
from tests.booking_support import TUESDAY_10, Desk, Holds, error_of
from tests.catalog_support import WEEKDAYS, duration, mask, weekly
from tests.conftest import Running
from tests.support import reason, violation_descriptions, violations


async def _spent_hold(desk: Desk) -> None:
    """A customer holds TUESDAY_10 and releases it: the hold row stays, pointing at the slot."""
    ann = await desk.customer()
    hold = await Holds(desk).hold(ann)
    await desk.running.booking.ReleaseHold(booking_pb2.ReleaseHoldRequest(name=hold.name), metadata=ann.metadata)


async def test_a_released_hold_does_not_block_archiving_the_service(running: Running) -> None:
    desk = await Desk.open(running)
    await _spent_hold(desk)
    admin = desk.world.admin
    service = desk.service
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name, etag=service.etag),
                                        metadata=admin.metadata)
    got = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service
    assert got.state == catalog_pb2.SERVICE_STATE_ARCHIVED


async def test_a_released_hold_does_not_block_new_availability_or_a_longer_duration(running: Running) -> None:
    desk = await Desk.open(running)
    await _spent_hold(desk)
    provider = desk.world.provider
    # Tuesday leaves the schedule: its slots go, the held one included.
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{desk.service.name}/availability",
        weekly_windows=weekly([d for d in WEEKDAYS if d != WEEKDAYS[1]], "09:00", "17:00"))),
        metadata=provider.metadata)
    assert await desk.world.slots(desk.service.name, TUESDAY_10, TUESDAY_10 + timedelta(hours=1)) == []
    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=desk.service.name))).service
    updated = (await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, duration=duration(minutes=90)),
        update_mask=mask("duration")), metadata=provider.metadata)).service
    assert updated.duration == duration(minutes=90)


def _ts(value: object) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)  # type: ignore[arg-type]
    return message


# The ends of Timestamp's range, and one second past each end of ours.
EXTREMES = [
    pytest.param(timestamp_pb2.Timestamp(seconds=-62135596800), id="year-1"),
    pytest.param(timestamp_pb2.Timestamp(seconds=253402300799), id="9999-12-31T23:59:59Z"),
    pytest.param(timestamp_pb2.Timestamp(seconds=253370764800), id="9999-01-01"),
    pytest.param(timestamp_pb2.Timestamp(seconds=-1), id="before-1970"),
    pytest.param(timestamp_pb2.Timestamp(seconds=1, nanos=-1), id="negative-nanos"),
]


@pytest.mark.parametrize("instant", EXTREMES)
async def test_instants_past_the_documented_range_are_refused_on_a_limited_service(
        running: Running, instant: timestamp_pb2.Timestamp) -> None:
    desk = await Desk.open(running, booking_settings=catalog_pb2.BookingSettings(
        max_bookings_per_day=1, max_bookings_per_week=2, max_bookings_per_month=3))
    ann = await desk.customer()
    calls = [
        running.booking.HoldSlot(booking_pb2.HoldSlotRequest(service=desk.service.name, start_time=instant,
                                                             request_id="h1"), metadata=ann.metadata),
        running.booking.CreateBooking(booking_pb2.CreateBookingRequest(service=desk.service.name,
                                                                       start_time=instant, request_id="b1"),
                                      metadata=ann.metadata),
        running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(service=desk.service.name, start_time=instant)),
    ]
    for call in calls:
        error = await error_of(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violation_descriptions(error) == {
            "start_time": "must be from 1970-01-01T00:00:00Z to before 9999-01-01T00:00:00Z"}
    booking = await desk.book(ann)
    error = await error_of(running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=EXTREMES[1].values[0], request_id="r1"), metadata=ann.metadata))
    assert "new_start_time" in violations(error)


async def test_the_last_instant_in_range_is_an_ordinary_refusal_not_an_overflow(running: Running) -> None:
    desk = await Desk.open(running, booking_settings=catalog_pb2.BookingSettings(
        max_bookings_per_day=1, max_bookings_per_week=1, max_bookings_per_month=1))
    ann = await desk.customer()
    last = timestamp_pb2.Timestamp(seconds=253370764799)  # 9998-12-31T23:59:59Z
    error = await error_of(running.booking.CreateBooking(booking_pb2.CreateBookingRequest(
        service=desk.service.name, start_time=last, request_id="b1"), metadata=ann.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "TOO_FAR_AHEAD")


# --- repeated fields: limits documented, checked before any item is read ----------------------------

PROTOS = Path(__file__).resolve().parent.parent / "protos"


def _request_fields() -> list[FieldDescriptor]:
    """Every field a request of ours can reach, nested messages included (each message once)."""
    pool = descriptor_pool.Default()
    seen: set[str] = set()
    found: list[FieldDescriptor] = []

    def walk(message: Descriptor) -> None:
        if message.full_name in seen:
            return
        seen.add(message.full_name)
        for item in message.fields:
            found.append(item)
            if item.message_type is not None:
                walk(item.message_type)

    for service in SERVICE_NAMES:
        for method in pool.FindServiceByName(service).methods:
            walk(method.input_type)
    return found


def _comment(item: FieldDescriptor) -> str:
    """The comment above `item` in its .proto file."""
    lines = (PROTOS / item.containing_type.file.name).read_text().splitlines()
    start = lines.index(f"message {item.containing_type.name} {{")
    here = next(i for i in range(start, len(lines)) if re.search(rf"\b{item.name} = {item.number}[ ;]", lines[i]))
    above = []
    while lines[here - 1].strip().startswith("//"):
        here -= 1
        above.insert(0, lines[here].strip().removeprefix("//").strip())
    return " ".join(above)


def test_every_repeated_field_of_a_request_states_the_limit_the_server_enforces() -> None:
    fields = _request_fields()
    repeated = {f.full_name: f for f in fields if f.is_repeated}
    ours = {name for name in repeated if name.startswith("foothills.")}
    assert set(MAX_ITEMS) | {n for n, f in repeated.items() if f.type == f.TYPE_ENUM} == set(repeated)
    for name in ours:
        assert f"at most {max_items(repeated[name])} items" in _comment(repeated[name]).lower(), name
    masks = [f for f in fields if f.message_type and f.message_type.full_name == "google.protobuf.FieldMask"]
    assert masks
    for item in masks:
        assert f"at most {MAX_ITEMS['google.protobuf.FieldMask.paths']} paths" in _comment(item), item.full_name


async def test_oversized_repeated_fields_are_refused_before_any_item_is_read(running: Running) -> None:
    """1,000,000 statuses once took 1.3 s of CPU to refuse and 20,000 windows 1.2 s, stalling other calls:
    now the size alone decides, for about what receiving the message costs. The bound is on this
    process's CPU time (client and in-process server), which waiting on a busy host does not inflate."""
    desk = await Desk.open(running)
    ann = await desk.customer()
    statuses = booking_pb2.ListBookingsRequest(statuses=[booking_pb2.BOOKING_STATUS_CONFIRMED] * 1_000_000)
    windows = catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{desk.service.name}/availability", weekly_windows=weekly(WEEKDAYS, "09:00", "10:00") * 4000))
    for call, field in ((running.booking.ListBookings(statuses, metadata=ann.metadata), "statuses"),
                        (running.catalog.SetAvailability(windows, metadata=desk.world.provider.metadata),
                         "availability.weekly_windows")):
        started = time.process_time()
        error = await error_of(call)
        took = time.process_time() - started
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(error) == {field: "TOO_MANY"}
        assert took < 0.6, f"{field}: refused after {took:.2f} s of CPU"  # about 0.1 s; 1.2 s before the fix
    # One more than the limit is refused, the limit itself is not (each status once).
    error = await error_of(running.booking.ListBookings(booking_pb2.ListBookingsRequest(
        statuses=[1, 2, 3, 4, 1]), metadata=ann.metadata))
    assert violation_descriptions(error) == {"statuses": "must have at most 4 items"}
    await running.booking.ListBookings(booking_pb2.ListBookingsRequest(statuses=[1, 2, 3, 4]), metadata=ann.metadata)


async def test_an_oversized_list_is_reported_with_every_other_bad_field(running: Running) -> None:
    desk = await Desk.open(running)
    error = await error_of(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=desk.service.name, etag=desk.service.etag, display_name="x\x00",
                                    pricing=catalog_pb2.PricingPolicy(rules=[catalog_pb2.PricingRule()] * 21)),
        update_mask=mask("display_name", "pricing")), metadata=desk.world.provider.metadata))
    assert violations(error) == {"service.display_name": "INVALID_VALUE", "service.pricing.rules": "TOO_MANY"}

