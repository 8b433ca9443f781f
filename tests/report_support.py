"""The fixed report data set of tests/test_reports.py's module doc, built through the real RPCs, for the
report RPC and report script tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from foothills.admin.v1 import admin_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.domain.users import Role
from tests.catalog_support import WEEKDAYS, CatalogWorld, at, duration, ts, weekly
from tests.conftest import Caller, Running

RANGE = (at("2030-01-08T00:00"), at("2030-02-02T00:00"))
POLICY = catalog_pb2.CancellationPolicy(tiers=[
    catalog_pb2.CancellationTier(before_start=duration(hours=24), fee_bps=5000),
    catalog_pb2.CancellationTier(before_start=duration(hours=2), refused=True)])
EUR, GBP = "EUR", "GBP"
EVERY_DAY = [*WEEKDAYS, types_pb2.DAY_OF_WEEK_SATURDAY, types_pb2.DAY_OF_WEEK_SUNDAY]


@dataclass
class Data:
    """The fixed data set of the module doc, built through the real RPCs."""

    running: Running
    admin: Caller
    p1: Caller
    p2: Caller
    massage: str
    yoga: str
    a: catalog_pb2.Service
    b: catalog_pb2.Service
    c: catalog_pb2.Service
    bookings: dict[int, booking_pb2.Booking]

    @classmethod
    async def build(cls, running: Running) -> Data:
        admin = await running.signed_in("admin@example.com", role=Role.ADMIN, name="Ada Admin")
        p1 = await running.signed_in("pat@example.com", role=Role.PROVIDER, name="Pat Provider")
        p2 = await running.signed_in("quinn@example.com", role=Role.PROVIDER, name="Quinn Provider")
        categories = [(await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name=name)), metadata=admin.metadata)).category.name
            for name in ("Massage", "Yoga")]
        world = CatalogWorld(running, admin, p1, categories[0])
        a = await world.service(display_name="Massage A", capacity=2, cancellation_policy=POLICY)
        b = await world.service(
            by=p2, display_name="Yoga B", category=categories[1], capacity=4, cancellation_policy=POLICY,
            base_price=types_pb2.Money(amount_minor=2000, currency_code=GBP), availability=weekly(EVERY_DAY, "09:00",
                                                                                                 "17:00"),
            booking_settings=catalog_pb2.BookingSettings(minimum_notice=duration(hours=1), maximum_days_ahead=60,
                                                         requires_approval=True))
        c = await world.service(by=p2, display_name="Hot stones C", capacity=1,
                                base_price=types_pb2.Money(amount_minor=3000, currency_code=EUR),
                                availability=weekly([types_pb2.DAY_OF_WEEK_SATURDAY], "10:00", "12:00"))
        c1, c2, c3 = [await running.signed_in(f"c{i}@example.com", name=f"Customer {i}") for i in (1, 2, 3)]

        made: dict[int, booking_pb2.Booking] = {}

        async def book(number: int, who: Caller, service: catalog_pb2.Service, start: str, seats: int) -> None:
            made[number] = (await running.booking.CreateBooking(booking_pb2.CreateBookingRequest(
                service=service.name, start_time=ts(at(start)), seats=seats, request_id=f"req-{number}"),
                metadata=who.metadata)).booking

        await book(1, c1, a, "2030-01-08T10:00", 2)
        await book(2, c2, b, "2030-01-25T10:00", 1)
        await book(3, c3, a, "2030-01-09T14:00", 1)
        await book(4, c1, b, "2030-01-13T09:00", 3)
        await book(5, c2, a, "2030-02-01T16:00", 1)
        await book(6, c3, b, "2030-01-17T11:00", 2)
        await book(7, c1, a, "2030-02-04T09:00", 1)
        await book(8, c2, c, "2030-01-19T10:00", 1)
        assert [made[n].price.total_price.amount_minor for n in range(1, 9)] == [
            10000, 2000, 5000, 6000, 5000, 4000, 5000, 3000]

        booking = running.booking
        made[4] = (await booking.CancelBooking(booking_pb2.CancelBookingRequest(name=made[4].name),
                                               metadata=c1.metadata)).booking
        made[6] = (await booking.ConfirmBooking(booking_pb2.ConfirmBookingRequest(name=made[6].name),
                                                metadata=p2.metadata)).booking
        running.clock.advance(timedelta(hours=30))  # Tuesday 01-08 15:00: #1 has ended, #3 is 23 h away
        p1, c3, admin = await running.again(p1), await running.again(c3), await running.again(admin)
        made[1] = (await booking.CompleteBooking(booking_pb2.CompleteBookingRequest(name=made[1].name),
                                                 metadata=p1.metadata)).booking
        made[3] = (await booking.CancelBooking(booking_pb2.CancelBookingRequest(name=made[3].name),
                                               metadata=c3.metadata)).booking
        assert (made[3].cancellation_fee.amount_minor, made[4].cancellation_fee.amount_minor) == (2500, 0)
        assert [made[n].status for n in range(1, 9)] == [
            booking_pb2.BOOKING_STATUS_COMPLETED, booking_pb2.BOOKING_STATUS_PENDING,
            booking_pb2.BOOKING_STATUS_CANCELLED, booking_pb2.BOOKING_STATUS_CANCELLED,
            booking_pb2.BOOKING_STATUS_CONFIRMED, booking_pb2.BOOKING_STATUS_CONFIRMED,
            booking_pb2.BOOKING_STATUS_CONFIRMED, booking_pb2.BOOKING_STATUS_CONFIRMED]
        return cls(running, admin, p1, p2, categories[0], categories[1], a, b, c, made)

    async def stats(self, group_by: int, *, start: datetime = RANGE[0], end: datetime = RANGE[1],
                    top_services: int = 0) -> admin_pb2.GetBookingStatsResponse:
        return await self.running.admin.GetBookingStats(admin_pb2.GetBookingStatsRequest(
            start_time=ts(start), end_time=ts(end), group_by=group_by, top_services=top_services),  # type: ignore[arg-type]
            metadata=self.admin.metadata)


async def display_names(running: Running, admin: Caller, bookings: list[booking_pb2.Booking],
                 categories: set[str]) -> dict[str, str]:
    """Display names by resource name of the bookings' customers and providers and of `categories`, and
    each customer's email under `email:<name>`."""
    names: dict[str, str] = {}
    for user in {b.customer for b in bookings} | {b.provider for b in bookings}:
        found = (await running.admin.GetUser(admin_pb2.GetUserRequest(name=user), metadata=admin.metadata)).user
        names[user], names[f"email:{user}"] = found.display_name, found.email
    for category in categories:
        got = await running.catalog.GetCategory(catalog_pb2.GetCategoryRequest(name=category))
        names[category] = got.category.display_name
    return names
