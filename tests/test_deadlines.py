"""Deadlines: when a caller's deadline passes, the server stops the call's database work.

The slow path is made slow for real: another connection holds the write lock the booking needs. A
booking whose 50 ms deadline passed while it waited must not be written once the lock is released.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from foothills.booking.v1 import booking_pb2
from foothills_rpc.clock import ManualClock
from tests.booking_support import Desk
from tests.conftest import Running, running_server
from tests.support import Mailbox, reason, table_locked


async def test_a_booking_past_its_deadline_is_abandoned_and_never_written(
        running: Running, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="foothills_rpc.rpc")
    desk = await Desk.open(running, capacity=2)
    ann = await desk.customer()
    before = await desk.remaining()
    request = desk.request()
    async with table_locked(database_url, "slots"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await running.booking.CreateBooking(request, metadata=ann.metadata, timeout=0.05)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.sleep(0.5)  # the server's side of the call is still waiting on the lock, if it lives on
    await asyncio.sleep(0.5)  # time for an abandoned call that lived on to commit
    assert await desk.remaining() == before
    mine = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(), metadata=ann.metadata)
    assert list(mine.bookings) == []
    # The same request, retried with time to spare, books once.
    booked = await running.booking.CreateBooking(request, metadata=ann.metadata, timeout=10)
    assert booked.booking.seats == 1
    assert await desk.remaining() == before - 1
    codes = [r.getMessage().split(" code=")[1].split()[0] for r in caplog.records if "CreateBooking" in r.getMessage()]
    assert codes == ["DEADLINE_EXCEEDED", "OK"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_call_without_a_deadline_is_cut_at_the_servers_limit_and_never_written(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    """A caller that sets no deadline against a database that does not answer: the server's own
    limit ends the call with UNAVAILABLE (CALL_TIMEOUT), and the booking is not written later.

    PostgreSQL only: SQLite waits for its write lock inside the driver's thread, which cancelling the
    call cannot interrupt; there the wait ends at busy_timeout (10 s) with ABORTED, DATABASE_BUSY."""
    # The world is set up through a server with the usual limits (on a busy machine a first login or
    # a season of slots can take longer than 0.3 s); only the call under test goes through the
    # limited one, a second server on the same database.
    async with running_server(database_url, clock, mailbox) as running:
        desk = await Desk.open(running, capacity=2)
        ann = await desk.customer()
        before = await desk.remaining()
        request = desk.request()
        async with running_server(database_url, clock, mailbox, max_call_seconds=0.3) as limited:
            async with table_locked(database_url, "slots"):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await limited.booking.CreateBooking(request, metadata=ann.metadata)  # no deadline
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                assert reason(caught.value) == "CALL_TIMEOUT"
                await asyncio.sleep(0.3)
            await asyncio.sleep(0.5)  # time for a call that lived on to commit
        assert await desk.remaining() == before
        booked = await running.booking.CreateBooking(request, metadata=ann.metadata)  # the retry books it once
        assert await desk.remaining() == before - booked.booking.seats
