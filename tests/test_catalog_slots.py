"""Availability, slots and prices through the real server, including DST weeks in two zones."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest

from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.catalog_cache import CatalogCache
from foothills_rpc.db.changes import Listener
from foothills_rpc.security.page_tokens import PageTokens
from foothills_rpc.usecases.catalog import Catalog
from tests.booking_support import Desk
from tests.catalog_support import WEEKDAYS, CatalogWorld, at, duration, hours, mask, ts, weekly
from tests.conftest import Running
from tests.support import TEST_SECRET, reason, violations

EVERY_DAY = [*WEEKDAYS, types_pb2.DAY_OF_WEEK_SATURDAY, types_pb2.DAY_OF_WEEK_SUNDAY]


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_weekly_windows_make_hourly_slots_after_the_minimum_notice(running: Running) -> None:
    world = await CatalogWorld.create(running)  # the clock says Monday 2030-01-07 09:00 UTC (= London)
    service = await world.service(capacity=3)
    slots = await world.slots(service.name, at("2030-01-07T00:00"), at("2030-01-12T00:00"))
    starts = [s.start_time.ToDatetime().isoformat() for s in slots]
    # Monday: 09:00 is inside the one-hour notice, so 10:00..16:00; Tuesday to Friday: 09:00..16:00.
    assert len(starts) == 7 + 4 * 8
    assert starts[:2] == ["2030-01-07T10:00:00", "2030-01-07T11:00:00"]
    assert starts[-1] == "2030-01-11T16:00:00"
    assert all(s.end_time.ToDatetime() - s.start_time.ToDatetime() == timedelta(hours=1) for s in slots)
    assert {(s.capacity, s.remaining_seats) for s in slots} == {(3, 3)}
    assert {s.price.total_price.amount_minor for s in slots} == {5000}


async def test_buffers_space_the_grid_and_a_slot_never_overruns_its_window(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(
        duration=duration(minutes=50), booking_settings=catalog_pb2.BookingSettings(
            buffer_after=duration(minutes=10), buffer_before=duration(minutes=15), maximum_days_ahead=30),
        availability=weekly([types_pb2.DAY_OF_WEEK_TUESDAY], "09:00", "12:00"))
    slots = await world.slots(service.name, at("2030-01-08T00:00"), at("2030-01-09T00:00"))
    # Step 50 + 10 + 15 = 75 minutes: 09:00, 10:15; 11:30 + 50 min would pass 12:00.
    assert [s.start_time.ToDatetime().strftime("%H:%M") for s in slots] == ["09:00", "10:15"]


async def test_date_overrides_close_replace_and_add_hours(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(availability=[])
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{service.name}/availability", weekly_windows=weekly(WEEKDAYS, "09:00", "12:00"),
        overrides=[
            catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=1, day=8),
                                     kind=catalog_pb2.OVERRIDE_KIND_CLOSED),
            catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=1, day=9),
                                     kind=catalog_pb2.OVERRIDE_KIND_HOURS, hours=[hours("14:00", "16:00")]),
            catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=1, day=10),
                                     kind=catalog_pb2.OVERRIDE_KIND_EXTRA, hours=[hours("18:00", "19:00")]),
            catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=1, day=12),
                                     kind=catalog_pb2.OVERRIDE_KIND_EXTRA, hours=[hours("10:00", "11:00")]),
        ])), metadata=world.provider.metadata)
    slots = await world.slots(service.name, at("2030-01-08T00:00"), at("2030-01-13T00:00"))
    by_day: dict[str, list[str]] = {}
    for slot in slots:
        start = slot.start_time.ToDatetime()
        by_day.setdefault(start.strftime("%a"), []).append(start.strftime("%H"))
    assert by_day == {"Wed": ["14", "15"], "Thu": ["09", "10", "11", "18"], "Fri": ["09", "10", "11"],
                      "Sat": ["10"]}
    stored = (await running.catalog.GetAvailability(catalog_pb2.GetAvailabilityRequest(
        name=f"{service.name}/availability"))).availability
    assert len(stored.overrides) == 4 and len(stored.weekly_windows) == 5


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [pytest.param("Europe/London", "2030-03-29", "2030-04-01", id="london-spring-forward"),
     pytest.param("America/New_York", "2030-11-01", "2030-11-04", id="new-york-fall-back")],
)
async def test_a_nine_oclock_slot_stays_nine_local_across_dst(running: Running, zone: str, before: str,
                                                               after: str) -> None:
    running.clock.advance(datetime.fromisoformat(before + "T00:00+00:00") - running.clock.now() - timedelta(days=2))
    world = await CatalogWorld.create(running)
    service = await world.service(time_zone=zone, availability=weekly(EVERY_DAY, "09:00", "10:00"))
    slots = await world.slots(service.name, at(before + "T00:00"), at(after + "T23:59"))
    local = [s.start_time.ToDatetime().replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone)) for s in slots]
    assert [t.strftime("%H:%M") for t in local] == ["09:00"] * 4
    utc_hours = [s.start_time.ToDatetime().hour for s in slots]
    assert utc_hours[0] != utc_hours[-1]  # the UTC instant moved with the clocks


async def test_nonexistent_local_starts_are_skipped_and_ambiguous_ones_happen_once(running: Running) -> None:
    running.clock.advance(at("2030-03-25T00:00") - running.clock.now())
    world = await CatalogWorld.create(running)
    service = await world.service(duration=duration(minutes=30),
                                  booking_settings=catalog_pb2.BookingSettings(maximum_days_ahead=240),
                                  availability=weekly([types_pb2.DAY_OF_WEEK_SUNDAY], "00:00", "03:00"))
    spring = await world.slots(service.name, at("2030-03-30T12:00"), at("2030-03-31T12:00"))
    local = [s.start_time.ToDatetime().replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Europe/London"))
             for s in spring]
    assert [t.strftime("%H:%M") for t in local] == ["00:00", "00:30", "02:00", "02:30"]  # 01:00-02:00 does not exist
    autumn = await world.slots(service.name, at("2030-10-26T12:00"), at("2030-10-27T12:00"))
    utc = [s.start_time.ToDatetime().strftime("%H:%M") for s in autumn]
    # Local 00:00 and 00:30 are BST (23:00, 23:30 UTC the day before); 01:00 and 01:30 happen twice and
    # take their first (BST) occurrence; 02:00 and 02:30 are GMT.
    assert utc == ["23:00", "23:30", "00:00", "00:30", "02:00", "02:30"]


async def test_a_lagging_horizon_extension_never_removes_slots(running: Running) -> None:
    # Another process's periodic extension that read its clock earlier (a shorter horizon) runs after a
    # service got slots further out: it may add slots, never take any away.
    world = await CatalogWorld.create(running)
    service = await world.service(booking_settings=catalog_pb2.BookingSettings(maximum_days_ahead=60))
    running.clock.advance(timedelta(days=30))
    provider = await running.again(world.provider)
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{service.name}/availability", weekly_windows=weekly(WEEKDAYS, "09:00", "17:00"))),
        metadata=provider.metadata)  # slots now reach 90 days past the start
    far = at("2030-03-28T00:00"), at("2030-04-05T00:00")
    before = [s.start_time for s in await world.slots(service.name, *far)]
    assert before
    components = running.server.components
    lagging = Catalog(db=components.db, clock=ManualClock(at("2030-01-07T09:00")), terms=components.terms,
                      page_tokens=PageTokens(TEST_SECRET), cache=CatalogCache(Listener(components.db.url)))
    await lagging.extend_horizons()
    assert [s.start_time for s in await world.slots(service.name, *far)] == before


async def test_the_periodic_extension_adds_just_the_new_stretch_and_leaves_other_services_alone(
        running: Running) -> None:
    world = await CatalogWorld.create(running)
    settings = catalog_pb2.BookingSettings(maximum_days_ahead=3)
    extended = await world.service(booking_settings=settings)
    unavailable = await world.service(booking_settings=settings, availability=[])
    extension = running.server.components.catalog
    assert await extension.extend_horizons() == 0  # both made their slots when created
    running.clock.advance(timedelta(days=2, hours=5))
    assert await extension.extend_horizons() == 1  # the one with availability, not the one without
    assert await extension.extend_horizons() == 0
    # Its slots now are what a service created today with the same grid gets.
    fresh = await world.service(by=await running.again(world.provider), booking_settings=settings)
    window = running.clock.now(), running.clock.now() + timedelta(days=4)
    starts = [s.start_time for s in await world.slots(extended.name, *window)]
    assert starts and starts == [s.start_time for s in await world.slots(fresh.name, *window)]
    assert not await world.slots(unavailable.name, *window)


async def test_a_shortened_horizon_moves_on_past_a_booked_slot_it_left_beyond(running: Running) -> None:
    # The booked slot stays, no longer offered; the hourly extension must not take it for the grid's end.
    desk = await Desk.open(running, booking_settings=catalog_pb2.BookingSettings(maximum_days_ahead=10))
    await desk.book(await desk.customer(), at("2030-01-15T10:00"))
    world = desk.world
    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=desk.service.name))).service
    shorter = catalog_pb2.BookingSettings(maximum_days_ahead=3)
    await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, booking_settings=shorter),
        update_mask=mask("booking_settings")), metadata=world.provider.metadata)
    running.clock.advance(timedelta(days=2))
    await running.server.components.catalog.extend_horizons()
    fresh = await world.service(by=await running.again(world.provider), booking_settings=shorter)
    window = running.clock.now(), running.clock.now() + timedelta(days=4)
    starts = [s.start_time for s in await world.slots(service.name, *window)]
    assert starts and starts == [s.start_time for s in await world.slots(fresh.name, *window)]


@pytest.mark.parametrize(
    ("windows", "overrides", "field", "rule"),
    [
        pytest.param(weekly([types_pb2.DAY_OF_WEEK_MONDAY], "12:00", "09:00"), [],
                     "availability.weekly_windows[0]", "INVERTED_WINDOW", id="inverted"),
        pytest.param(weekly([types_pb2.DAY_OF_WEEK_MONDAY], "09:00", "12:00")
                     + weekly([types_pb2.DAY_OF_WEEK_MONDAY], "11:00", "13:00"), [],
                     "availability.weekly_windows[1]", "OVERLAPPING_WINDOWS", id="overlapping"),
        pytest.param([catalog_pb2.WeeklyWindow(hours=hours("09:00", "10:00"))], [],
                     "availability.weekly_windows[0].day_of_week", "INVALID_VALUE", id="no-day"),
        pytest.param(weekly([types_pb2.DAY_OF_WEEK_MONDAY], "09:00", "25:00"), [],
                     "availability.weekly_windows[0].hours.end_time", "INVALID_VALUE", id="25-oclock"),
        pytest.param([], [catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=2, day=30),
                                                   kind=catalog_pb2.OVERRIDE_KIND_CLOSED)],
                     "availability.overrides[0].date", "INVALID_VALUE", id="february-30"),
        pytest.param([], [catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=2, day=3))],
                     "availability.overrides[0].kind", "INVALID_VALUE", id="no-kind"),
    ],
)
async def test_set_availability_names_the_offending_field(running: Running, windows: list, overrides: list,
                                                          field: str, rule: str) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(availability=[])
    error = await _error(running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
        availability=catalog_pb2.Availability(name=f"{service.name}/availability", weekly_windows=windows,
                                              overrides=overrides)), metadata=world.provider.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(error)
    assert any(f.startswith(field) and r == rule for f, r in found.items()), found


async def test_changing_availability_replaces_the_slots(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{service.name}/availability", weekly_windows=weekly([types_pb2.DAY_OF_WEEK_WEDNESDAY], "13:00",
                                                                   "15:00"))), metadata=world.provider.metadata)
    slots = await world.slots(service.name, at("2030-01-07T00:00"), at("2030-01-14T00:00"))
    assert [s.start_time.ToDatetime().isoformat() for s in slots] == ["2030-01-09T13:00:00", "2030-01-09T14:00:00"]


async def test_capacity_changes_reach_future_slots(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, capacity=6), update_mask=mask("capacity")),
        metadata=world.provider.metadata)
    slots = await world.slots(service.name, at("2030-01-08T00:00"), at("2030-01-09T00:00"))
    assert {(s.capacity, s.remaining_seats) for s in slots} == {(6, 6)}


async def test_slots_stop_at_the_booking_horizon(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(booking_settings=catalog_pb2.BookingSettings(maximum_days_ahead=3))
    slots = await world.slots(service.name, at("2030-01-07T00:00"), at("2030-01-20T00:00"))
    assert max(s.start_time.ToDatetime() for s in slots) < at("2030-01-10T09:00").replace(tzinfo=None)
    # As days pass, the horizon moves with them.
    running.clock.advance(timedelta(days=7))
    await running.server.components.catalog.extend_horizons()
    later = await world.slots(service.name, at("2030-01-14T00:00"), at("2030-01-20T00:00"))
    assert later and max(s.start_time.ToDatetime() for s in later) >= at("2030-01-16T09:00").replace(tzinfo=None)


@pytest.mark.parametrize(
    ("start", "end", "seats", "field"),
    [pytest.param("2030-01-08T00:00", "2030-01-07T00:00", 1, "end_time", id="inverted"),
     pytest.param("2030-01-07T00:00", "2030-02-08T00:00", 1, "end_time", id="longer-than-31-days"),
     pytest.param("2030-01-07T00:00", "2030-01-08T00:00", -1, "seats", id="negative-seats")],
)
async def test_list_slots_validates_the_range(running: Running, start: str, end: str, seats: int, field: str) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(availability=[])
    error = await _error(running.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=service.name, start_time=ts(at(start)), end_time=ts(at(end)), seats=seats)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {field}


async def test_list_slots_needs_a_range(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(availability=[])
    error = await _error(running.catalog.ListSlots(catalog_pb2.ListSlotsRequest(service=service.name)))
    assert set(violations(error)) == {"start_time", "end_time"}


async def test_quotes_apply_rules_and_agree_with_list_slots(running: Running) -> None:
    world = await CatalogWorld.create(running)
    pricing = catalog_pb2.PricingPolicy(ceiling_minor=6500, rules=[
        catalog_pb2.PricingRule(adjustment_bps=2000, label="Friday", days_of_week=catalog_pb2.DaysOfWeekCondition(
            days=[types_pb2.DAY_OF_WEEK_FRIDAY])),
        catalog_pb2.PricingRule(adjustment_bps=1000, label="Evening", hours_of_day=catalog_pb2.HoursOfDayCondition(
            start_hour=15, end_hour=24)),
        catalog_pb2.PricingRule(adjustment_bps=-1000, label="Early bird", lead_time=catalog_pb2.LeadTimeCondition(
            min_lead=duration(days=3))),
    ])
    service = await world.service(pricing=pricing, capacity=2)
    friday_late = at("2030-01-11T16:00")
    quote = (await running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
        service=service.name, start_time=ts(friday_late), seats=2))).quote
    assert [(a.label, a.amount.amount_minor) for a in quote.adjustments] == [
        ("Friday", 1000), ("Evening", 500), ("Early bird", -500)]
    assert (quote.unit_price.amount_minor, quote.total_price.amount_minor, quote.seats) == (6000, 12000, 2)
    listed = await world.slots(service.name, at("2030-01-10T00:00"), at("2030-01-12T00:00"), seats=2)
    assert [s.price for s in listed if s.start_time == ts(friday_late)] == [quote]
    # Every listed price is the slot's own quote, though slots with the same rules share one price.
    for slot in listed:
        assert slot.price == (await running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
            service=service.name, start_time=slot.start_time, seats=2))).quote
    assert len({s.price.unit_price.amount_minor for s in listed}) >= 3
    monday = (await running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
        service=service.name, start_time=ts(at("2030-01-07T15:00"))))).quote
    assert monday.unit_price.amount_minor == 5500  # evening only; not early


async def test_quote_of_a_start_that_is_not_a_slot_fails_precondition(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    error = await _error(running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
        service=service.name, start_time=ts(at("2030-01-08T09:30")))))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "SLOT_UNAVAILABLE")
