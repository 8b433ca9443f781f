"""Deadlines: when a caller's deadline passes, the server stops the call's database work.

The slow path is made slow for real: another connection holds the write lock the booking needs. A
booking whose 50 ms deadline passed while it waited must not be written once the lock is released.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.booking.v1 import booking_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import Category
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


async def test_a_call_cancelled_again_as_it_rolls_back_hands_its_connection_back_quietly(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A call can be cancelled more than once: by its deadline, by the server's own limit, by the
    server's stop. A cancellation that lands while the first one's rollback and return to the pool are
    under way must not interrupt them: SQLAlchemy would discard the connection and log an error (or
    psycopg log its query cancellation interrupted). Nothing is written, nothing is logged, no
    connection is lost, and the database keeps serving."""
    caplog.set_level(logging.WARNING)
    database = Database(database_url, pool_size=2)
    try:
        for attempt in range(30):
            written = asyncio.Event()

            async def write_then_hang(session: AsyncSession) -> None:
                now = datetime.now(UTC)
                name = f"abandoned {uuid.uuid4().hex}"
                session.add(Category(display_name=name, name_key=name, created_at=now, updated_at=now))
                await session.flush()
                written.set()  # noqa: B023 - each call waits for its own event before the next starts
                await asyncio.sleep(30)

            call = asyncio.ensure_future(database.run(write_then_hang))
            await written.wait()
            for _ in range(3):  # cancelled, then cancelled again at varying points of its way out
                call.cancel()
                for _ in range(attempt % 6):
                    await asyncio.sleep(0)
            with pytest.raises(asyncio.CancelledError):
                await call
        for _ in range(100):  # the closes that ran on by themselves finish
            if database.engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert await database.read_row(Category.__table__.select(), {}) is None  # all rolled back
        gc.collect()  # a task collected unfinished is logged only now
    finally:
        await database.dispose()
    assert not caplog.records, caplog.text  # psycopg warns as it closes a connection it gave up on
