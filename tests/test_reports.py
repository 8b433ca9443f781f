"""AdminService reports through the real server, on SQLite and PostgreSQL: GetBookingStats and ExportBookings.

One small fixed data set (three services, seven bookings in the range, one after it) made through the
real RPCs; every grouping's figures are checked against numbers worked out by hand below.

The world (the clock starts Monday 2030-01-07 09:00 UTC; Europe/London is UTC in winter; 60-minute slots):

  service  category  provider  capacity  price     open
  A        Massage   Pat (P1)  2         50.00 EUR Mon-Fri 09-17 (8 slots)  -> 16 seats a weekday
  B        Yoga      Quinn(P2) 4         20.00 GBP every day 09-17 (8 slots) -> 32 seats a day, needs approval
  C        Massage   Quinn(P2) 1         30.00 EUR Sat 10-12 (2 slots)       -> 2 seats a Saturday

  #  svc  start (UTC)       seats  status     charged    fee    revenue   seats held
  1  A    Tue 01-08 10:00   2      completed  10000 EUR  0      10000 EUR 2
  2  B    Fri 01-25 10:00   1      pending     2000 GBP  0       2000 GBP 1
  3  A    Wed 01-09 14:00   1      cancelled   5000 EUR  2500   2500 EUR 0   (23 h before: the 50 % tier)
  4  B    Sun 01-13 09:00   3      cancelled   6000 GBP  0         0 GBP 0   (a week ahead: free)
  5  A    Fri 02-01 16:00   1      confirmed   5000 EUR  0       5000 EUR 1
  6  B    Thu 01-17 11:00   2      confirmed   4000 GBP  0       4000 GBP 2   (approved)
  8  C    Sat 01-19 10:00   1      confirmed   3000 EUR  0       3000 EUR 1
  7  A    Mon 02-04 09:00   1      confirmed   5000 EUR  -  (after the range)

The range [2030-01-08, 2030-02-02) holds 25 days: 19 weekdays, 3 Saturdays, 3 Sundays. Offered seats:
A 19 x 16 = 304, B 25 x 32 = 800, C 3 x 2 = 6: 1110 in all (48 a weekday, 34 a Saturday, 32 a Sunday).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.admin.v1 import admin_pb2, reports_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.db.models import Booking, Slot
from foothills_rpc.domain.users import Role
from foothills_rpc.usecases.reports import EXPORT_BATCH
from tests.booking_support import error_of
from tests.catalog_support import CatalogWorld, at, ts
from tests.conftest import Caller, Running
from tests.report_support import EUR, GBP, RANGE, Data, display_names
from tests.support import violations


def fig(key: str = "", label: str | None = None, *, bookings: int = 0, pending: int = 0, confirmed: int = 0,
        cancelled: int = 0, completed: int = 0, revenue: dict[str, int] | None = None, booked: int = 0,
        offered: int = 0) -> reports_pb2.BookingStats:
    """Expected figures; the two ratios follow from the counts by their definitions in reports.proto."""
    assert bookings == pending + confirmed + cancelled + completed
    return reports_pb2.BookingStats(
        key=key, label=key if label is None else label, bookings=bookings, pending=pending, confirmed=confirmed,
        cancelled=cancelled, completed=completed,
        revenue=[types_pb2.Money(amount_minor=v, currency_code=c) for c, v in sorted((revenue or {}).items())],
        cancellation_rate=cancelled / bookings if bookings else 0.0, booked_seats=booked, offered_seats=offered,
        utilisation=booked / offered if offered else 0.0)


TOTAL = fig(bookings=7, pending=1, confirmed=3, cancelled=2, completed=1, revenue={EUR: 20500, GBP: 6000},
            booked=7, offered=1110)


def _days() -> list[str]:
    first = RANGE[0]
    return [(first + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(25)]


def _offered_on(day: str) -> int:
    weekday = datetime.fromisoformat(day).weekday()
    return {5: 32 + 2, 6: 32}.get(weekday, 16 + 32)


def expected_groups(data: Data, group_by: int) -> list[reports_pb2.BookingStats]:
    a, b, c = data.a.name, data.b.name, data.c.name
    p1, p2 = data.p1.name, data.p2.name
    if group_by == reports_pb2.STATS_GROUPING_DAY:
        booked_days = {
            "2030-01-08": {"completed": 1, "revenue": {EUR: 10000}, "booked": 2},
            "2030-01-09": {"cancelled": 1, "revenue": {EUR: 2500}},
            "2030-01-13": {"cancelled": 1, "revenue": {GBP: 0}},
            "2030-01-17": {"confirmed": 1, "revenue": {GBP: 4000}, "booked": 2},
            "2030-01-19": {"confirmed": 1, "revenue": {EUR: 3000}, "booked": 1},
            "2030-01-25": {"pending": 1, "revenue": {GBP: 2000}, "booked": 1},
            "2030-02-01": {"confirmed": 1, "revenue": {EUR: 5000}, "booked": 1},
        }
        return [fig(day, bookings=1 if day in booked_days else 0, offered=_offered_on(day),
                    **booked_days.get(day, {}))  # type: ignore[arg-type]
                for day in _days()]
    if group_by == reports_pb2.STATS_GROUPING_WEEK:  # ISO weeks: Sunday 01-13 belongs to the week of Monday 01-07
        return [fig("2030-01-07", bookings=3, completed=1, cancelled=2, revenue={EUR: 12500, GBP: 0}, booked=2,
                    offered=4 * 48 + 34 + 32),
                fig("2030-01-14", bookings=2, confirmed=2, revenue={EUR: 3000, GBP: 4000}, booked=3,
                    offered=5 * 48 + 34 + 32),
                fig("2030-01-21", bookings=1, pending=1, revenue={GBP: 2000}, booked=1, offered=5 * 48 + 34 + 32),
                fig("2030-01-28", bookings=1, confirmed=1, revenue={EUR: 5000}, booked=1, offered=5 * 48)]
    if group_by == reports_pb2.STATS_GROUPING_MONTH:
        return [fig("2030-01", bookings=6, pending=1, confirmed=2, cancelled=2, completed=1,
                    revenue={EUR: 15500, GBP: 6000}, booked=6, offered=18 * 16 + 24 * 32 + 3 * 2),
                fig("2030-02", bookings=1, confirmed=1, revenue={EUR: 5000}, booked=1, offered=48)]
    by_a = {"bookings": 3, "confirmed": 1, "cancelled": 1, "completed": 1, "revenue": {EUR: 17500}, "booked": 3,
            "offered": 304}
    by_b = {"bookings": 3, "pending": 1, "confirmed": 1, "cancelled": 1, "revenue": {GBP: 6000}, "booked": 3,
            "offered": 800}
    by_c = {"bookings": 1, "confirmed": 1, "revenue": {EUR: 3000}, "booked": 1, "offered": 6}
    if group_by == reports_pb2.STATS_GROUPING_SERVICE:
        groups = [fig(a, "Massage A", **by_a), fig(b, "Yoga B", **by_b), fig(c, "Hot stones C", **by_c)]  # type: ignore[arg-type]
    elif group_by == reports_pb2.STATS_GROUPING_CATEGORY:
        groups = [fig(data.massage, "Massage", bookings=4, confirmed=2, cancelled=1, completed=1,
                      revenue={EUR: 20500}, booked=4, offered=310),
                  fig(data.yoga, "Yoga", **by_b)]  # type: ignore[arg-type]
    elif group_by == reports_pb2.STATS_GROUPING_PROVIDER:
        groups = [fig(p1, "Pat Provider", **by_a),  # type: ignore[arg-type]
                  fig(p2, "Quinn Provider", bookings=4, pending=1, confirmed=2, cancelled=1,
                      revenue={EUR: 3000, GBP: 6000}, booked=4, offered=806)]
    else:  # by status: offered seats have no meaning per status
        groups = [fig("BOOKING_STATUS_CANCELLED", bookings=2, cancelled=2, revenue={EUR: 2500, GBP: 0}),
                  fig("BOOKING_STATUS_COMPLETED", bookings=1, completed=1, revenue={EUR: 10000}, booked=2),
                  fig("BOOKING_STATUS_CONFIRMED", bookings=3, confirmed=3, revenue={EUR: 8000, GBP: 4000}, booked=4),
                  fig("BOOKING_STATUS_PENDING", bookings=1, pending=1, revenue={GBP: 2000}, booked=1)]
    return sorted(groups, key=lambda g: g.key)  # key order: ids sort as their hex


async def _data(running: Running) -> Data:
    return await Data.build(running)


GROUPINGS = [pytest.param(value, id=reports_pb2.StatsGrouping.Name(value).removeprefix("STATS_GROUPING_").lower())
             for value in reports_pb2.StatsGrouping.values() if value != reports_pb2.STATS_GROUPING_UNSPECIFIED]


@pytest.mark.parametrize("group_by", GROUPINGS)
async def test_stats_match_the_hand_computed_figures(running: Running, group_by: int) -> None:
    """Counts by status, revenue per currency (charged prices plus cancellation fees), cancellation rate,
    booked and offered seats and utilisation, per group in key order, and the total over every booking in the
    range (the booking after it is left out)."""
    data = await _data(running)
    stats = await data.stats(group_by)
    assert stats.total == TOTAL
    assert (stats.total.cancellation_rate, stats.total.utilisation) == (2 / 7, 7 / 1110)
    assert list(stats.groups) == expected_groups(data, group_by)


async def test_top_services_rank_active_and_completed_bookings(running: Running) -> None:
    """A and B have two bookings each that are not cancelled (ties go in key order), C one; a limit cuts the list."""
    data = await _data(running)
    stats = await data.stats(reports_pb2.STATS_GROUPING_STATUS)
    tied = sorted([(data.a.name, "Massage A"), (data.b.name, "Yoga B")])
    assert [(t.service, t.display_name, t.bookings) for t in stats.top_services] == [
        (*tied[0], 2), (*tied[1], 2), (data.c.name, "Hot stones C", 1)]
    top_one = await data.stats(reports_pb2.STATS_GROUPING_STATUS, top_services=1)
    assert [t.service for t in top_one.top_services] == [tied[0][0]]
    assert len((await data.stats(reports_pb2.STATS_GROUPING_STATUS, top_services=1000)).top_services) == 3


async def test_the_range_is_half_open_on_the_start_time(running: Running) -> None:
    """[01-08 10:00, 02-01 16:00) holds #1 (starting exactly at the start) but not #5 (starting exactly at the
    end); an empty stretch has no bookings but still its offered seats."""
    data = await _data(running)
    stats = await data.stats(reports_pb2.STATS_GROUPING_STATUS, start=at("2030-01-08T10:00"),
                             end=at("2030-02-01T16:00"))
    assert (stats.total.bookings, stats.total.confirmed, stats.total.completed) == (6, 2, 1)
    quiet = await data.stats(reports_pb2.STATS_GROUPING_DAY, start=at("2030-01-10T00:00"),
                             end=at("2030-01-12T00:00"))
    assert quiet.total == fig(offered=96)
    assert list(quiet.groups) == [fig("2030-01-10", offered=48), fig("2030-01-11", offered=48)]
    assert not quiet.top_services


# --- export ----------------------------------------------------------------------------------


async def _export(running: Running, caller: Caller, start: datetime,
                  end: datetime) -> list[admin_pb2.ExportBookingsResponse]:
    call = running.admin.ExportBookings(admin_pb2.ExportBookingsRequest(start_time=ts(start), end_time=ts(end)),
                                        metadata=caller.metadata)
    return [message async for message in call]


def _row(booking: booking_pb2.Booking, service: catalog_pb2.Service,
         names: dict[str, str]) -> reports_pb2.BookingRow:
    return reports_pb2.BookingRow(
        booking=booking.name, service=service.name, service_display_name=service.display_name,
        category=service.category, category_display_name=names[service.category], customer=booking.customer,
        customer_email=names[f"email:{booking.customer}"], customer_display_name=names[booking.customer],
        provider=booking.provider, provider_display_name=names[booking.provider],
        start_time=booking.start_time, end_time=booking.end_time, seats=booking.seats, status=booking.status,
        total_price=booking.price.total_price, cancellation_fee=booking.cancellation_fee,
        create_time=booking.create_time)


async def test_export_streams_every_booking_of_the_range_soonest_first_with_all_fields(running: Running) -> None:
    data = await _data(running)
    messages = await _export(running, data.admin, at("2030-01-08T10:00"), at("2030-02-01T16:00"))
    assert len(messages) == 1
    services = {1: data.a, 2: data.b, 3: data.a, 4: data.b, 6: data.b, 8: data.c}
    names = await display_names(running, data.admin, [data.bookings[n] for n in services],
                                {s.category for s in services.values()})
    assert list(messages[0].rows) == [_row(data.bookings[n], services[n], names) for n in (1, 3, 4, 6, 8, 2)]
    assert messages[0].rows[2].cancellation_fee == types_pb2.Money(amount_minor=0, currency_code=GBP)
    assert messages[0].rows[1].cancellation_fee == types_pb2.Money(amount_minor=2500, currency_code=EUR)
    assert await _export(running, data.admin, at("2030-03-01T00:00"), at("2030-04-01T00:00")) == []


async def _insert_history(running: Running, world: CatalogWorld, customer: Caller, *, slots: int,
                          per_slot: int) -> None:
    """`slots` x `per_slot` finished bookings in 2029, written straight to the database (the booking path
    cannot make past bookings): `per_slot` bookings share each start, so the sort needs the id tie-break."""
    svc = await world.service(display_name="History", capacity=per_slot)
    service_id = uuid.UUID(svc.name.split("/")[1])
    provider_id = uuid.UUID(world.provider.name.split("/")[1])
    customer_id = uuid.UUID(customer.name.split("/")[1])
    first = at("2029-06-01T08:00")
    now = running.clock.now()

    async def write(session: AsyncSession) -> None:
        starts = [first + timedelta(hours=n) for n in range(slots)]
        made = [Slot(id=uuid.uuid4(), service_id=service_id, start_at=start, end_at=start + timedelta(hours=1),
                     capacity=per_slot, seats_taken=0, offered=False) for start in starts]
        session.add_all(made)
        await session.flush()  # the slots before the bookings that refer to them
        for n, slot in enumerate(made):
            for k in range(per_slot):
                status = "completed" if (n + k) % 3 else "cancelled"
                session.add(Booking(
                    id=uuid.uuid4(), service_id=service_id, slot_id=slot.id, customer_id=customer_id,
                    provider_id=provider_id, uses_provider_time=True, start_at=slot.start_at, end_at=slot.end_at,
                    seats=1, status=status, currency=EUR, unit_price_minor=5000, total_price_minor=5000,
                    price_breakdown={"base_unit_minor": 5000, "adjustments": []}, cancellation_policy=[],
                    cancellation_fee_minor=1000 if status == "cancelled" else 0, cancel_reason="", notes="",
                    reschedule_count=0, approval_deadline=None, created_at=now, updated_at=now))

    await running.server.components.db.run(write)


@pytest.mark.parametrize(("slots", "per_slot", "sizes"), [
    pytest.param(334, 3, [EXPORT_BATCH, EXPORT_BATCH, 2], id="1002-rows-a-tie-across-the-batch-boundary"),
    pytest.param(250, 2, [EXPORT_BATCH], id="exactly-one-full-batch-and-no-empty-message"),
])
async def test_export_pages_through_batches_without_gaps_or_repeats(running: Running, slots: int, per_slot: int,
                                                                    sizes: list[int]) -> None:
    """Batches of at most 500 rows; together every booking once, ordered by start then by booking id."""
    world = await CatalogWorld.create(running)
    customer = await running.signed_in("history@example.com")
    await _insert_history(running, world, customer, slots=slots, per_slot=per_slot)
    messages = await _export(running, world.admin, at("2029-06-01T00:00"), at("2029-12-01T00:00"))
    assert [len(m.rows) for m in messages] == sizes
    rows = [row for message in messages for row in message.rows]
    assert len({row.booking for row in rows}) == slots * per_slot
    keys = [(row.start_time.ToDatetime(), uuid.UUID(row.booking.split("/")[1])) for row in rows]
    assert keys == sorted(keys)
    assert {row.status for row in rows} == {booking_pb2.BOOKING_STATUS_COMPLETED, booking_pb2.BOOKING_STATUS_CANCELLED}


# --- validation and permissions --------------------------------------------------------------

START = at("2030-01-08T00:00")


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param({"end_time": ts(START + timedelta(days=1)), "group_by": reports_pb2.STATS_GROUPING_DAY},
                 {"start_time"}, id="no-start"),
    pytest.param({"start_time": ts(START), "group_by": reports_pb2.STATS_GROUPING_DAY}, {"end_time"}, id="no-end"),
    pytest.param({}, {"start_time", "end_time", "group_by"}, id="nothing"),
    pytest.param({"start_time": ts(START), "end_time": ts(START + timedelta(days=1))}, {"group_by"},
                 id="no-grouping"),
    pytest.param({"start_time": ts(START), "end_time": ts(START + timedelta(days=1)), "group_by": 99}, {"group_by"},
                 id="unknown-grouping"),
    pytest.param({"start_time": ts(START), "end_time": ts(START), "group_by": reports_pb2.STATS_GROUPING_DAY},
                 {"end_time"}, id="empty-range"),
    pytest.param({"start_time": ts(START), "end_time": ts(START - timedelta(days=1)),
                  "group_by": reports_pb2.STATS_GROUPING_DAY}, {"end_time"}, id="inverted-range"),
    pytest.param({"start_time": ts(START), "end_time": ts(START + timedelta(days=366, seconds=1)),
                  "group_by": reports_pb2.STATS_GROUPING_MONTH}, {"end_time"}, id="longer-than-366-days"),
    pytest.param({"start_time": ts(START), "end_time": ts(START + timedelta(days=1)),
                  "group_by": reports_pb2.STATS_GROUPING_DAY, "top_services": -1}, {"top_services"},
                 id="negative-top-services"),
])
async def test_stats_refuse_bad_requests_naming_each_field(running: Running, fields: dict[str, object],
                                                           expected: set[str]) -> None:
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    error = await error_of(running.admin.GetBookingStats(admin_pb2.GetBookingStatsRequest(**fields),  # type: ignore[arg-type]
                                                       metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == expected


async def test_a_366_day_range_is_accepted(running: Running) -> None:
    """Leap years have 366 days; the limit is inclusive."""
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    stats = await running.admin.GetBookingStats(admin_pb2.GetBookingStatsRequest(
        start_time=ts(START), end_time=ts(START + timedelta(days=366)), group_by=reports_pb2.STATS_GROUPING_MONTH),
        metadata=admin.metadata)
    assert stats.total.bookings == 0


@pytest.mark.parametrize(("start", "end", "expected"), [
    pytest.param(None, START, {"start_time"}, id="no-start"),
    pytest.param(START, None, {"end_time"}, id="no-end"),
    pytest.param(START, START - timedelta(seconds=1), {"end_time"}, id="inverted-range"),
    pytest.param(START, START + timedelta(days=367), {"end_time"}, id="longer-than-366-days"),
])
async def test_export_refuses_bad_ranges(running: Running, start: datetime | None, end: datetime | None,
                                         expected: set[str]) -> None:
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    request = admin_pb2.ExportBookingsRequest(start_time=ts(start) if start else None,
                                              end_time=ts(end) if end else None)
    call = running.admin.ExportBookings(request, metadata=admin.metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == expected


@pytest.mark.parametrize("role", [pytest.param(Role.CUSTOMER, id="customer"),
                                  pytest.param(Role.PROVIDER, id="provider"),
                                  pytest.param(None, id="anonymous")])
async def test_only_admins_see_reports(running: Running, role: Role | None) -> None:
    metadata: tuple[tuple[str, str], ...] = ()
    if role is not None:
        metadata = (await running.signed_in("someone@example.com", role=role)).metadata
    code = grpc.StatusCode.UNAUTHENTICATED if role is None else grpc.StatusCode.PERMISSION_DENIED
    stats = admin_pb2.GetBookingStatsRequest(start_time=ts(START), end_time=ts(START + timedelta(days=1)),
                                             group_by=reports_pb2.STATS_GROUPING_DAY)
    assert (await error_of(running.admin.GetBookingStats(stats, metadata=metadata))).code() == code
    call = running.admin.ExportBookings(admin_pb2.ExportBookingsRequest(
        start_time=ts(START), end_time=ts(START + timedelta(days=1))), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == code

