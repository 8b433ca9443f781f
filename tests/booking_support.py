"""Builders for booking tests through the real server: a desk (a service to book), holds, the waiting
line, and the error a call fails with."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from tests.catalog_support import CatalogWorld, at, duration, ts
from tests.conftest import Caller, Running

TUESDAY_10 = at("2030-01-08T10:00")  # the clock starts Monday 2030-01-07 09:00 UTC
POLICY = catalog_pb2.CancellationPolicy(tiers=[
    catalog_pb2.CancellationTier(before_start=duration(hours=24), fee_bps=5000),
    catalog_pb2.CancellationTier(before_start=duration(hours=2), refused=True)])


async def error_of(call: object) -> grpc.aio.AioRpcError:
    """The error `call` fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


class Desk:
    """A catalog with one service and helpers to book it."""

    def __init__(self, world: CatalogWorld, service: catalog_pb2.Service) -> None:
        self.world = world
        self.running = world.running
        self.service = service
        self._count = 0

    @classmethod
    async def open(cls, running: Running, **fields: object) -> Desk:
        world = await CatalogWorld.create(running)
        fields.setdefault("cancellation_policy", POLICY)
        return cls(world, await world.service(**fields))

    async def customer(self, email: str | None = None) -> Caller:
        self._count += 1
        return await self.running.signed_in(email or f"customer{self._count}@example.com")

    def request(self, start: object = TUESDAY_10, **fields: object) -> booking_pb2.CreateBookingRequest:
        self._count += 1
        fields.setdefault("request_id", f"req-{self._count}")
        fields.setdefault("service", self.service.name)
        return booking_pb2.CreateBookingRequest(start_time=ts(start), **fields)  # type: ignore[arg-type]

    async def book(self, who: Caller, start: object = TUESDAY_10, **fields: object) -> booking_pb2.Booking:
        return (await self.running.booking.CreateBooking(self.request(start, **fields), metadata=who.metadata)).booking

    async def remaining(self, start: object = TUESDAY_10) -> int:
        day = at(start.strftime("%Y-%m-%dT00:00"))  # type: ignore[attr-defined]
        slots = await self.world.slots(self.service.name, day, day + timedelta(days=1))
        return next(s.remaining_seats for s in slots if s.start_time == ts(start))


class Holds:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.booking = desk.running.booking
        self._count = 0

    async def hold(self, who: Caller, start: object = TUESDAY_10, **fields: object) -> booking_pb2.Hold:
        self._count += 1
        fields.setdefault("request_id", f"hold-{self._count}")
        fields.setdefault("service", self.desk.service.name)
        return (await self.booking.HoldSlot(booking_pb2.HoldSlotRequest(start_time=ts(start), **fields),  # type: ignore[arg-type]
                                            metadata=who.metadata)).hold

    async def book_with(self, who: Caller, hold: str, **fields: object) -> booking_pb2.Booking:
        self._count += 1
        fields.setdefault("request_id", f"book-{self._count}")
        return (await self.booking.CreateBooking(booking_pb2.CreateBookingRequest(hold=hold, **fields),  # type: ignore[arg-type]
                                                 metadata=who.metadata)).booking


async def join(running: Running, desk: Desk, who: Caller, start: object = TUESDAY_10,
               seats: int = 0) -> booking_pb2.WaitlistEntry:
    return (await running.booking.JoinWaitlist(booking_pb2.JoinWaitlistRequest(
        service=desk.service.name, start_time=ts(start), seats=seats), metadata=who.metadata)).entry
