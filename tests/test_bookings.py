"""BookingService through the real server: the rules, the status machine, idempotency, mail, watching."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import grpc
import psycopg
import pytest
from sqlalchemy import JSON, Connection, String, Uuid, bindparam, event, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.booking.v1 import booking_pb2, booking_pb2_grpc
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.bookings import events_after, last_event_id, record_change
from foothills_rpc.db.database import Database, first_row_on_driver, rows_on_driver
from foothills_rpc.db.models import Booking, UtcDateTime
from foothills_rpc.domain.principal import Principal
from foothills_rpc.domain.users import Role
from foothills_rpc.mail.mailer import FileMailer
from foothills_rpc.server import FoothillsServer, build_components
from tests.booking_support import POLICY, TUESDAY_10, Desk, Holds, error_of
from tests.catalog_support import at, duration, mask, ts
from tests.conftest import Caller, Running, listening, running_server
from tests.support import Mailbox, make_settings, reason, text_of, violations


async def test_booking_a_slot_confirms_it_charges_the_quote_and_takes_a_seat(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    ann = await desk.customer("ann@example.com")
    quote = (await running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
        service=desk.service.name, start_time=ts(TUESDAY_10), seats=2))).quote
    booking = await desk.book(ann, seats=2, notes="Window seat", expected_total_price=quote.total_price)
    assert booking.status == booking_pb2.BOOKING_STATUS_CONFIRMED
    assert (booking.customer, booking.provider, booking.service) == (ann.name, desk.world.provider.name,
                                                                     desk.service.name)
    assert booking.price == quote
    assert (booking.seats, booking.notes) == (2, "Window seat")
    assert booking.cancellation_policy == POLICY
    assert await desk.remaining() == 1
    assert (await running.booking.GetBooking(booking_pb2.GetBookingRequest(name=booking.name),
                                             metadata=ann.metadata)).booking == booking
    mail = await running.mailbox.wait_for(lambda m: m["To"] == "ann@example.com")
    assert mail["Subject"] == f"Booked: {desk.service.display_name}, Jan 8, 2030, 10:00 AM"
    body = text_of(mail)
    assert body.startswith("Hello Test User,") and f"Reference: {booking.name}" in body
    assert "Seats: 2\n" in body and f"Your booking of {desk.service.display_name} with " in body


async def test_capacity_fills_exactly(running: Running) -> None:
    desk = await Desk.open(running, capacity=2)
    await desk.book(await desk.customer())
    error = await error_of(desk.book(await desk.customer(), seats=2))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "SLOT_UNAVAILABLE")
    await desk.book(await desk.customer())
    error = await error_of(desk.book(await desk.customer()))
    assert reason(error) == "SLOT_UNAVAILABLE"
    assert await desk.remaining() == 0


async def test_simultaneous_bookings_of_the_last_seat_let_exactly_one_through(running: Running) -> None:
    desk = await Desk.open(running)
    customers = [await desk.customer() for _ in range(12)]
    results = await asyncio.gather(*(running.booking.CreateBooking(desk.request(), metadata=c.metadata)
                                     for c in customers), return_exceptions=True)
    won = [r for r in results if isinstance(r, booking_pb2.CreateBookingResponse)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1
    assert {(e.code(), reason(e)) for e in lost} <= {(grpc.StatusCode.FAILED_PRECONDITION, "SLOT_UNAVAILABLE"),
                                                     (grpc.StatusCode.ABORTED, "CONCURRENT_MODIFICATION"),
                                                     (grpc.StatusCode.ABORTED, "DATABASE_BUSY")}
    assert await desk.remaining() == 0


@pytest.mark.parametrize(
    ("start", "expected"),
    [pytest.param(at("2030-01-08T10:30"), "SLOT_UNAVAILABLE", id="off-grid"),
     pytest.param(at("2030-01-12T10:00"), "SLOT_UNAVAILABLE", id="closed-saturday"),
     pytest.param(at("2030-01-07T09:00"), "MINIMUM_NOTICE", id="inside-notice"),
     pytest.param(at("2030-03-20T10:00"), "TOO_FAR_AHEAD", id="beyond-the-60-day-horizon")],
)
async def test_only_real_slots_inside_the_booking_window(running: Running, start: object, expected: str) -> None:
    desk = await Desk.open(running)
    error = await error_of(desk.book(await desk.customer(), start))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, expected)


async def test_an_archived_service_takes_no_bookings(running: Running) -> None:
    desk = await Desk.open(running)
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=desk.service.name),
                                        metadata=desk.world.provider.metadata)
    error = await error_of(desk.book(await desk.customer()))
    assert reason(error) == "SERVICE_ARCHIVED"


async def test_a_user_holds_no_two_overlapping_bookings(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    other_provider = await running.signed_in("p2@example.com", role=Role.PROVIDER)
    other = await desk.world.service(by=other_provider, display_name="Other", duration=duration(minutes=90))
    ann = await desk.customer()
    await desk.book(ann)
    assert reason(await error_of(desk.book(ann))) == "SLOT_ALREADY_BOOKED_BY_USER"
    error = await error_of(running.booking.CreateBooking(desk.request(at("2030-01-08T09:00"), service=other.name),
                                                       metadata=ann.metadata))
    assert reason(error) == "OVERLAPPING_BOOKING"
    await desk.book(ann, at("2030-01-08T11:00"))  # touching, not overlapping


async def test_a_full_slot_is_refused_naming_the_customers_own_booking_first(running: Running) -> None:
    """When the slot is full, a customer who already holds it (or something overlapping it) is told
    that, which they can act on, rather than that the seats are gone."""
    desk = await Desk.open(running, capacity=1)
    other_provider = await running.signed_in("p2@example.com", role=Role.PROVIDER)
    other = await desk.world.service(by=other_provider, display_name="Other", duration=duration(minutes=90))
    ann, bob = await desk.customer(), await desk.customer()
    await desk.book(ann)
    assert reason(await error_of(desk.book(ann))) == "SLOT_ALREADY_BOOKED_BY_USER"
    await running.booking.CreateBooking(desk.request(at("2030-01-08T09:00"), service=other.name),
                                        metadata=bob.metadata)
    assert reason(await error_of(desk.book(bob))) == "OVERLAPPING_BOOKING"
    assert reason(await error_of(desk.book(await desk.customer()))) == "SLOT_UNAVAILABLE"


async def test_a_provider_is_in_one_place_at_a_time_unless_the_service_runs_without_them(running: Running) -> None:
    desk = await Desk.open(running)
    second = await desk.world.service(display_name="Second service")
    await desk.book(await desk.customer())
    error = await error_of(running.booking.CreateBooking(desk.request(service=second.name),
                                                       metadata=(await desk.customer()).metadata))
    assert reason(error) == "PROVIDER_UNAVAILABLE"
    # A hold has no constraint behind it (it is not a booking): only the check refuses it.
    error = await error_of(running.booking.HoldSlot(booking_pb2.HoldSlotRequest(
        service=second.name, start_time=ts(TUESDAY_10), request_id="hold-1"),
        metadata=(await desk.customer()).metadata))
    assert reason(error) == "PROVIDER_UNAVAILABLE"
    # Back to back is not at the same time, on either side.
    for start in (TUESDAY_10 - timedelta(hours=1), TUESDAY_10 + timedelta(hours=1)):
        await running.booking.CreateBooking(desk.request(start, service=second.name),
                                            metadata=(await desk.customer()).metadata)
    staffed = await desk.world.service(display_name="Staffed class", runs_without_provider=True, capacity=5)
    await running.booking.CreateBooking(desk.request(service=staffed.name), metadata=(await desk.customer()).metadata)


async def test_a_changed_price_is_refused_with_the_new_quote(running: Running) -> None:
    desk = await Desk.open(running)
    error = await error_of(desk.book(await desk.customer(), expected_total_price=types_pb2.Money(
        amount_minor=4000, currency_code="EUR")))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "PRICE_CHANGED")
    assert await desk.remaining() == 1
    await desk.book(await desk.customer())
    error = await error_of(desk.book(await desk.customer(), expected_total_price=types_pb2.Money(
        amount_minor=4000, currency_code="EUR")))
    assert reason(error) == "SLOT_UNAVAILABLE"  # the slot's reasons come first: no new price makes it fit


async def test_seats_a_lapsed_hold_frees_are_priced_as_free(running: Running) -> None:
    """The quote a customer saw counts the lapsed hold's seat as free, as the booking does once it
    claims the hold: same price, booked."""
    desk = await Desk.open(running, capacity=2, pricing=catalog_pb2.PricingPolicy(rules=[
        catalog_pb2.PricingRule(adjustment_bps=2500, label="busy",
                                occupancy=catalog_pb2.OccupancyCondition(min_occupancy_bps=5000))]))
    await Holds(desk).hold(await desk.customer())
    running.clock.advance(timedelta(minutes=5))
    quote = (await running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
        service=desk.service.name, start_time=ts(TUESDAY_10)))).quote.total_price
    assert quote.amount_minor == 5000  # the base price: nothing counts as taken
    booking = await desk.book(await desk.customer(), expected_total_price=quote)
    assert booking.price.total_price == quote
    assert await desk.remaining() == 1


async def test_the_charged_price_never_changes_afterwards(running: Running) -> None:
    desk = await Desk.open(running, capacity=2)
    ann = await desk.customer()
    booking = await desk.book(ann)
    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=desk.service.name))).service
    await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag,
                                    base_price=types_pb2.Money(amount_minor=9900, currency_code="EUR")),
        update_mask=mask("base_price")), metadata=desk.world.provider.metadata)
    again = (await running.booking.GetBooking(booking_pb2.GetBookingRequest(name=booking.name),
                                              metadata=ann.metadata)).booking
    assert again.price.total_price.amount_minor == 5000


async def test_prices_rise_with_demand_as_bookings_fill_the_slot(running: Running) -> None:
    # +10 % from half the seats taken, +25 % from 80 %: the tier reached by the bookings that exist.
    desk = await Desk.open(running, capacity=5, pricing=catalog_pb2.PricingPolicy(rules=[
        catalog_pb2.PricingRule(adjustment_bps=1000, label="filling up",
                                occupancy=catalog_pb2.OccupancyCondition(min_occupancy_bps=5000)),
        catalog_pb2.PricingRule(adjustment_bps=2500, label="busy",
                                occupancy=catalog_pb2.OccupancyCondition(min_occupancy_bps=8000))]))

    async def quote() -> int:
        return (await running.catalog.QuotePrice(catalog_pb2.QuotePriceRequest(
            service=desk.service.name, start_time=ts(TUESDAY_10)))).quote.total_price.amount_minor

    charged = []
    for _ in range(5):
        shown = await quote()
        booking = await desk.book(await desk.customer(), expected_total_price=types_pb2.Money(
            amount_minor=shown, currency_code="EUR"))
        charged.append(booking.price.total_price.amount_minor)
    assert charged == [5000, 5000, 5000, 5500, 6250]  # up to 2/5 taken: base; 3/5: +10 %; 4/5: +25 %
    first = (await running.booking.ListBookings(booking_pb2.ListBookingsRequest(),
                                                metadata=desk.world.admin.metadata)).bookings
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=first[0].name, reason="test",
                                                                         override_policy=True),
                                        metadata=desk.world.admin.metadata)
    assert await quote() == 6250  # 4/5 taken again after the cancellation


async def test_a_retry_with_the_same_request_id_returns_the_first_booking(running: Running) -> None:
    desk = await Desk.open(running, capacity=5)
    ann = await desk.customer()
    request = desk.request(request_id="retry-1", seats=2)
    first = (await running.booking.CreateBooking(request, metadata=ann.metadata)).booking
    second = (await running.booking.CreateBooking(request, metadata=ann.metadata)).booking
    assert first == second
    assert await desk.remaining() == 3
    request.seats = 3
    error = await error_of(running.booking.CreateBooking(request, metadata=ann.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    # Another caller's request_id is theirs alone.
    bob = await desk.customer()
    request.seats = 1
    theirs = (await running.booking.CreateBooking(request, metadata=bob.metadata)).booking
    assert theirs.name != first.name


async def test_simultaneous_retries_create_one_booking(running: Running) -> None:
    desk = await Desk.open(running, capacity=5)
    ann = await desk.customer()
    request = desk.request(request_id="burst")
    results = await asyncio.gather(*(running.booking.CreateBooking(request, metadata=ann.metadata)
                                     for _ in range(6)), return_exceptions=True)
    names = {r.booking.name for r in results if isinstance(r, booking_pb2.CreateBookingResponse)}
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(names) == 1
    assert all(e.code() == grpc.StatusCode.ABORTED for e in errors)
    assert await desk.remaining() == 4


async def test_a_retry_that_would_succeed_again_returns_the_first_answer_and_changes_nothing(
        running: Running) -> None:
    # The writes do not look a request_id up first: its key refuses a second use as the change commits.
    # Here each retry's change would pass every rule today (the seats are free again, the booking is
    # elsewhere), so only the key stops it.
    desk = await Desk.open(running, capacity=5)
    ann = await desk.customer()
    request = desk.request(request_id="book-once")
    first = (await running.booking.CreateBooking(request, metadata=ann.metadata)).booking
    cancel = booking_pb2.CancelBookingRequest(name=first.name, reason="plans changed", request_id="cancel-once")
    cancelled = (await running.booking.CancelBooking(cancel, metadata=ann.metadata)).booking
    assert (await running.booking.CreateBooking(request, metadata=ann.metadata)).booking == cancelled
    assert await desk.remaining() == 5  # booked once, cancelled once
    assert (await running.booking.CancelBooking(cancel, metadata=ann.metadata)).booking == cancelled

    booking = await desk.book(ann)
    two, three = at("2030-01-08T14:00"), at("2030-01-08T15:00")
    move = booking_pb2.RescheduleBookingRequest(name=booking.name, new_start_time=ts(two), request_id="move-once")
    await running.booking.RescheduleBooking(move, metadata=ann.metadata)
    moved = (await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(three), request_id="move-twice"), metadata=ann.metadata)).booking
    assert (await running.booking.RescheduleBooking(move, metadata=ann.metadata)).booking == moved
    assert [await desk.remaining(start) for start in (TUESDAY_10, two, three)] == [5, 5, 4]
    # Each retry's attempt counts as refused, the transaction doing its job; not as a lost race.
    transactions = running.server.components.db.metrics.transactions
    assert transactions.labels("write", "conflict")._value.get() == 0
    assert transactions.labels("write", "refused")._value.get() >= 3


async def test_a_booking_call_costs_these_round_trips(database_url: str, clock: ManualClock, mailbox: Mailbox,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A booking call's server CPU is mostly its round trips to the database (docs/benchmarks.md parts
    # eleven and twelve), so their number is pinned here: a change that adds one shows. Counted per
    # call: every statement (the session check included) and every COMMIT or ROLLBACK; PostgreSQL
    # also sends a BEGIN per transaction (psycopg's own, unseen here). No mail and no sweeps run.
    async with running_server(database_url, clock, mailbox, send_mail=False, health_probe_seconds=3600.0,
                              sweep_seconds=3600.0) as running:
        desk = await Desk.open(running, capacity=1)
        ann, bob = await desk.customer(), await desk.customer()
        if database_url.startswith("postgresql"):  # the session cache keeps what it reads once it listens
            await listening(running, within=10)
        await desk.book(ann, at("2030-01-08T15:00"))  # the first call of a kind builds its statements
        await running.booking.ListBookings(booking_pb2.ListBookingsRequest(), metadata=bob.metadata)
        engine = running.server.components.db.engine.sync_engine
        trips: list[str] = []

        def statement(_conn: object, _cursor: object, sql: str, *_: object) -> None:
            trips.append(sql.split(None, 1)[0])

        async def counted(call: Awaitable[object]) -> list[str]:
            trips.clear()
            await call
            return list(trips)

        def ended(how: str) -> Callable[[Connection], None]:
            def end(conn: Connection) -> None:  # an autocommit read's "rollback" sends nothing
                if not getattr(conn.connection.driver_connection, "autocommit", False):
                    trips.append(how)
            return end

        listeners: list[tuple[str, Callable[..., None]]] = [("commit", ended("COMMIT")),
                                                             ("rollback", ended("ROLLBACK"))]
        if database_url.startswith("postgresql"):  # statements are counted where psycopg sends them: the
            # hottest bypass SQLAlchemy (`first_row_on_driver`)
            sent = psycopg.AsyncCursor.execute

            async def execute(cursor: psycopg.AsyncCursor[object], query: str, *args: object,
                              **kwargs: object) -> psycopg.AsyncCursor[object]:
                trips.append(str(query).split(None, 1)[0])
                return await sent(cursor, query, *args, **kwargs)  # type: ignore[arg-type]
            monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute)
        else:
            listeners.append(("before_cursor_execute", statement))
        for name, listener in listeners:
            event.listen(engine, name, listener)
        booked = await counted(desk.book(ann))
        refused = await counted(error_of(desk.book(bob)))  # the slot is full
        cancelled = await counted(running.booking.CancelBooking(
            booking_pb2.CancelBookingRequest(name=(await desk.book(bob, at("2030-01-08T14:00"))).name,
                                             reason="plans changed"), metadata=bob.metadata))
    if database_url.startswith("postgresql"):
        # the session from the session cache (no round trip); the service and slot, the seats taken with
        # the booking, its key and event: one statement, a transaction of its own (no BEGIN, no COMMIT)
        assert booked == ["SELECT", "WITH"]
        # the service and slot; the booking statement, taking nothing and naming no clash; the
        # request_id looked up: all without a transaction
        assert refused == ["SELECT", "WITH", "SELECT"]
        # the booking read; the update guarded by what was read (and by an empty line), with its event
        # and the seats given back: one statement, a transaction of its own
        assert cancelled == ["SELECT", "WITH"]
    else:  # in process, so cheaper: every transaction is BEGIN IMMEDIATE, the session check's ends in a
        # ROLLBACK (it only read), and the writes go one by one (a cancellation asks for the slot's line
        # first)
        assert booked == ["BEGIN", "SELECT", "ROLLBACK", "BEGIN", "SELECT", "UPDATE", "INSERT", "INSERT", "UPDATE",
                          "INSERT", "COMMIT"]
        assert refused == ["BEGIN", "SELECT", "ROLLBACK", "BEGIN", "SELECT", "UPDATE", "SELECT", "ROLLBACK",
                           "BEGIN", "SELECT", "COMMIT"]
        assert cancelled == ["BEGIN", "SELECT", "ROLLBACK", "BEGIN", "SELECT", "SELECT", "UPDATE", "UPDATE", "UPDATE",
                             "INSERT", "COMMIT"]


async def test_a_booking_call_counts_as_one_write(database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    """The attempt without a transaction that changes nothing (here: the price moved) is no write of its
    own in `foothills_db_transactions`: each call below is one write, ok or refused."""
    async with running_server(database_url, clock, mailbox, send_mail=False, health_probe_seconds=3600.0,
                              sweep_seconds=3600.0) as running:  # nothing else writes meanwhile
        desk = await Desk.open(running, capacity=2)
        ann = await desk.customer()
        transactions = running.server.components.db.metrics.transactions

        async def writes_of(call: Awaitable[object]) -> dict[str, float]:
            counters = {outcome: transactions.labels("write", outcome) for outcome in ("ok", "refused")}
            before = {outcome: counter._value.get() for outcome, counter in counters.items()}
            await call
            return {outcome: counter._value.get() - before[outcome] for outcome, counter in counters.items()}

        wrong_price = types_pb2.Money(amount_minor=4000, currency_code="EUR")
        assert await writes_of(error_of(desk.book(ann, expected_total_price=wrong_price))) == {"ok": 0, "refused": 1}
        assert await writes_of(desk.book(ann)) == {"ok": 1, "refused": 0}
        assert await writes_of(error_of(desk.book(ann))) == {"ok": 0, "refused": 1}  # already booked


@pytest.mark.parametrize("request_id", ["", "x" * 65, "has space"])
async def test_create_booking_validates_its_fields(running: Running, request_id: str) -> None:
    desk = await Desk.open(running, availability=[])
    ann = await desk.customer()
    error = await error_of(running.booking.CreateBooking(booking_pb2.CreateBookingRequest(
        service="services/nope", request_id=request_id, seats=-1, notes="n" * 2001), metadata=ann.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"service", "start_time"}
    error = await error_of(running.booking.CreateBooking(desk.request(request_id=request_id, seats=-1,
                                                                    notes="n" * 2001), metadata=ann.metadata))
    assert set(violations(error)) == {"request_id", "seats", "notes"}


# --- cancelling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before_start", "fee", "refused"),
    [pytest.param(timedelta(hours=24), 0, False, id="exactly-24h-free"),
     pytest.param(timedelta(hours=24) - timedelta(seconds=1), 2500, False, id="inside-24h-half"),
     pytest.param(timedelta(hours=2), 2500, False, id="exactly-2h-half"),
     pytest.param(timedelta(hours=2) - timedelta(seconds=1), 0, True, id="last-2h-refused"),
     pytest.param(timedelta(0), 0, True, id="at-start-refused")],
)
async def test_the_customer_cancels_under_the_agreed_policy(running: Running, before_start: timedelta, fee: int,
                                                            refused: bool) -> None:
    start = at("2030-01-10T10:00")
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann, start)
    # Later policy edits do not change what the customer agreed to.
    service = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=desk.service.name))).service
    await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag), update_mask=mask("cancellation_policy")),
        metadata=desk.world.provider.metadata)
    running.clock.advance(start.replace(tzinfo=running.clock.now().tzinfo) - before_start - running.clock.now())
    ann = await running.again(ann)
    call = running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name, reason="ill"),
                                         metadata=ann.metadata)
    if refused:
        error = await error_of(call)
        assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "OUTSIDE_CANCELLATION_WINDOW")
        return
    cancelled = (await call).booking
    assert cancelled.status == booking_pb2.BOOKING_STATUS_CANCELLED
    assert cancelled.cancellation_fee.amount_minor == fee
    assert cancelled.cancel_reason == "ill"
    assert await desk.remaining(start) == 1


async def test_cancelling_twice_says_already_cancelled(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name), metadata=ann.metadata)
    error = await error_of(running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name),
                                                       metadata=ann.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "BOOKING_ALREADY_CANCELLED")


async def test_admins_override_the_policy_with_a_reason_and_others_cannot(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)
    running.clock.advance(timedelta(hours=24))  # Tuesday 09:00: inside the no-cancellation tier
    ann, admin = await running.again(ann), await running.again(desk.world.admin)
    override = booking_pb2.CancelBookingRequest(name=booking.name, override_policy=True, reason="storm")
    error = await error_of(running.booking.CancelBooking(override, metadata=ann.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "OVERRIDE_NOT_ALLOWED")
    error = await error_of(running.booking.CancelBooking(booking_pb2.CancelBookingRequest(
        name=booking.name, override_policy=True), metadata=admin.metadata))
    assert violations(error) == {"reason": "INVALID_VALUE"}
    cancelled = (await running.booking.CancelBooking(override, metadata=admin.metadata)).booking
    assert (cancelled.status, cancelled.cancel_reason, cancelled.cancellation_fee.amount_minor) == (
        booking_pb2.BOOKING_STATUS_CANCELLED, "storm", 0)


async def test_the_provider_cancels_without_a_fee(running: Running) -> None:
    desk = await Desk.open(running)
    booking = await desk.book(await desk.customer())
    running.clock.advance(timedelta(hours=23))  # inside the 50 % tier for a customer
    provider = await running.again(desk.world.provider)
    cancelled = (await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name),
                                                     metadata=provider.metadata)).booking
    assert cancelled.cancellation_fee.amount_minor == 0


# --- approval, completion, status machine -----------------------------------------------------


async def test_approval_flow_confirm_then_complete_after_the_end(running: Running) -> None:
    desk = await Desk.open(running, booking_settings=catalog_pb2.BookingSettings(
        minimum_notice=duration(hours=1), maximum_days_ahead=60, requires_approval=True))
    ann = await desk.customer()
    booking = await desk.book(ann)
    assert booking.status == booking_pb2.BOOKING_STATUS_PENDING
    assert await desk.remaining() == 0  # pending holds its seat
    error = await error_of(running.booking.ConfirmBooking(booking_pb2.ConfirmBookingRequest(name=booking.name),
                                                        metadata=ann.metadata))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    stranger = await running.signed_in("stranger@example.com", role=Role.PROVIDER)
    error = await error_of(running.booking.ConfirmBooking(booking_pb2.ConfirmBookingRequest(name=booking.name),
                                                        metadata=stranger.metadata))
    assert error.code() == grpc.StatusCode.NOT_FOUND  # not theirs to see
    error = await error_of(running.booking.CompleteBooking(booking_pb2.CompleteBookingRequest(name=booking.name),
                                                         metadata=desk.world.provider.metadata))
    assert reason(error) == "INVALID_STATUS_TRANSITION"
    confirmed = (await running.booking.ConfirmBooking(booking_pb2.ConfirmBookingRequest(name=booking.name),
                                                      metadata=desk.world.provider.metadata)).booking
    assert confirmed.status == booking_pb2.BOOKING_STATUS_CONFIRMED
    error = await error_of(running.booking.CompleteBooking(booking_pb2.CompleteBookingRequest(name=booking.name),
                                                         metadata=desk.world.provider.metadata))
    assert reason(error) == "BOOKING_NOT_ENDED"
    running.clock.advance(timedelta(days=1, hours=2))  # Tuesday 11:00: it has ended
    admin = await running.again(desk.world.admin)
    completed = (await running.booking.CompleteBooking(booking_pb2.CompleteBookingRequest(name=booking.name),
                                                       metadata=admin.metadata)).booking
    assert completed.status == booking_pb2.BOOKING_STATUS_COMPLETED
    error = await error_of(running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name),
                                                       metadata=admin.metadata))
    assert reason(error) == "INVALID_STATUS_TRANSITION"


async def test_unconfirmed_bookings_expire_at_the_notice_deadline(running: Running) -> None:
    desk = await Desk.open(running, booking_settings=catalog_pb2.BookingSettings(
        minimum_notice=duration(hours=1), maximum_days_ahead=60, requires_approval=True))
    booking = await desk.book(await desk.customer())
    bookings = running.server.components.bookings
    running.clock.advance(timedelta(hours=23, minutes=59))  # Tuesday 08:59: one minute before the deadline
    assert await bookings.expire_approvals() == 0
    running.clock.advance(timedelta(minutes=1))
    assert await bookings.expire_approvals() == 1
    assert await bookings.expire_approvals() == 0  # claimed once
    expired = (await running.booking.GetBooking(booking_pb2.GetBookingRequest(name=booking.name),
                                                metadata=(await running.again(desk.world.admin)).metadata)).booking
    assert (expired.status, expired.cancel_reason) == (booking_pb2.BOOKING_STATUS_CANCELLED, "APPROVAL_EXPIRED")


# --- rescheduling ----------------------------------------------------------------------------


async def test_reschedule_moves_the_seats_atomically_and_keeps_the_price(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)
    later = at("2030-01-08T14:00")
    moved = (await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(later), request_id="move-1"), metadata=ann.metadata)).booking
    assert (moved.start_time, moved.reschedule_count, moved.price) == (ts(later), 1, booking.price)
    assert await desk.remaining() == 1 and await desk.remaining(later) == 0
    again = (await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(later), request_id="move-1"), metadata=ann.metadata)).booking
    assert again == moved  # a retry, not a second move
    bob = await desk.customer()
    await desk.book(bob, at("2030-01-08T15:00"))
    error = await error_of(running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(at("2030-01-08T15:00")), request_id="move-2"), metadata=ann.metadata))
    assert reason(error) == "SLOT_UNAVAILABLE"
    still = (await running.booking.GetBooking(booking_pb2.GetBookingRequest(name=booking.name),
                                              metadata=ann.metadata)).booking
    assert still.start_time == ts(later)  # nothing changed


async def test_a_cancelled_booking_cannot_be_rescheduled(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name), metadata=ann.metadata)
    error = await error_of(running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(at("2030-01-08T14:00")), request_id="m"), metadata=ann.metadata))
    assert reason(error) == "BOOKING_ALREADY_CANCELLED"


# --- reading and visibility ------------------------------------------------------------------


async def test_who_sees_which_booking(running: Running) -> None:
    desk = await Desk.open(running, capacity=4)
    ann, bob = await desk.customer(), await desk.customer()
    booking = await desk.book(ann)
    await desk.book(bob)
    error = await error_of(running.booking.GetBooking(booking_pb2.GetBookingRequest(name=booking.name),
                                                    metadata=bob.metadata))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await error_of(running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name),
                                                       metadata=bob.metadata))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    mine = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(), metadata=ann.metadata)
    assert [b.name for b in mine.bookings] == [booking.name]
    provider_view = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(),
                                                       metadata=desk.world.provider.metadata)
    assert len(provider_view.bookings) == 2
    admin_view = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(customer=ann.name),
                                                    metadata=desk.world.admin.metadata)
    assert [b.name for b in admin_view.bookings] == [booking.name]
    error = await error_of(running.booking.ListBookings(booking_pb2.ListBookingsRequest(customer=ann.name),
                                                      metadata=bob.metadata))
    assert violations(error) == {"customer": "INVALID_VALUE"}


async def test_list_bookings_filters_sorts_and_pages(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    starts = [at(f"2030-01-{day:02d}T10:00") for day in (8, 9, 10, 11)]
    made = []
    for start in reversed(starts):
        made.append(await desk.book(ann, start))
        running.clock.advance(timedelta(seconds=1))
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=made[0].name), metadata=ann.metadata)
    newest = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(), metadata=ann.metadata)
    assert [b.name for b in newest.bookings] == [b.name for b in reversed(made)]
    for listed in newest.bookings:  # a list shows each booking exactly as GetBooking does
        assert listed == (await running.booking.GetBooking(booking_pb2.GetBookingRequest(name=listed.name),
                                                           metadata=ann.metadata)).booking
    for statuses, expected in (([booking_pb2.BOOKING_STATUS_CANCELLED], made[:1]),
                               ([booking_pb2.BOOKING_STATUS_CONFIRMED, booking_pb2.BOOKING_STATUS_CANCELLED], made),
                               ([booking_pb2.BOOKING_STATUS_PENDING, booking_pb2.BOOKING_STATUS_COMPLETED], [])):
        page = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(statuses=statuses),
                                                  metadata=ann.metadata)
        assert [b.name for b in page.bookings] == [b.name for b in reversed(expected)], statuses
    seen, token = [], ""
    while True:
        page = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(
            page_size=1, page_token=token, order_by=booking_pb2.BOOKING_ORDER_SOONEST_FIRST,
            statuses=[booking_pb2.BOOKING_STATUS_CONFIRMED]), metadata=ann.metadata)
        seen += [b.start_time for b in page.bookings]
        if not (token := page.next_page_token):
            break
    assert seen == [ts(s) for s in starts[:3]]
    names, token = [], ""
    while True:  # newest first, page by page, of the one service
        page = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(
            page_size=1, page_token=token, service=desk.service.name), metadata=ann.metadata)
        names += [b.name for b in page.bookings]
        if not (token := page.next_page_token):
            break
    assert names == [b.name for b in reversed(made)]
    ranged = await running.booking.ListBookings(booking_pb2.ListBookingsRequest(
        start_after=ts(starts[1]), start_before=ts(starts[3])), metadata=ann.metadata)
    assert sorted(b.start_time.seconds for b in ranged.bookings) == [ts(s).seconds for s in starts[1:3]]


# --- watching --------------------------------------------------------------------------------


async def test_watch_streams_changes_and_resumes_without_gaps(running: Running) -> None:
    desk = await Desk.open(running, capacity=3)
    ann, bob = await desk.customer(), await desk.customer()
    stream = running.booking.WatchBookings(booking_pb2.WatchBookingsRequest(), metadata=ann.metadata)
    await stream.initial_metadata()  # live from here
    first = await desk.book(ann)
    await desk.book(bob)  # not ann's: she must not see it
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=first.name), metadata=ann.metadata)
    events = []
    async with asyncio.timeout(10):
        async for event in stream:
            events.append(event)
            if len(events) == 2:
                break
    stream.cancel()
    assert [(e.type, e.booking.name) for e in events] == [
        (booking_pb2.BOOKING_EVENT_TYPE_CREATED, first.name), (booking_pb2.BOOKING_EVENT_TYPE_CANCELLED, first.name)]
    # Resuming from the first event replays the second, once.
    resumed = running.booking.WatchBookings(booking_pb2.WatchBookingsRequest(after_event_id=events[0].event_id),
                                            metadata=ann.metadata)
    async with asyncio.timeout(10):
        replay = await anext(aiter(resumed))
    resumed.cancel()
    assert replay.event_id == events[1].event_id
    provider_stream = running.booking.WatchBookings(booking_pb2.WatchBookingsRequest(after_event_id="0"),
                                                    metadata=desk.world.provider.metadata)
    seen = []
    async with asyncio.timeout(10):
        async for event in provider_stream:
            seen.append(event.type)
            if len(seen) == 3:
                break
    provider_stream.cancel()
    assert seen == [booking_pb2.BOOKING_EVENT_TYPE_CREATED] * 2 + [booking_pb2.BOOKING_EVENT_TYPE_CANCELLED]


async def test_watch_refuses_a_malformed_resume_point(running: Running) -> None:
    ann = await running.signed_in("w@example.com")
    stream = running.booking.WatchBookings(booking_pb2.WatchBookingsRequest(after_event_id="abc"),
                                           metadata=ann.metadata)
    error = await error_of(anext(aiter(stream)))
    assert violations(error) == {"after_event_id": "INVALID_VALUE"}


async def _stream_events(running: Running, who: Caller, count: int) -> list[tuple[int, int, str]]:
    """The first `count` events of `who`'s stream from the beginning: (position, type, booking name)."""
    stream = running.booking.WatchBookings(booking_pb2.WatchBookingsRequest(after_event_id="0"),
                                           metadata=who.metadata)
    events = []
    async with asyncio.timeout(10):
        async for event in stream:
            events.append((int(event.event_id), event.type, event.booking.name))
            if len(events) == count:
                break
    stream.cancel()
    return events


async def _booking_row(running: Running, booked: booking_pb2.Booking) -> Booking:
    booking_id = uuid.UUID(booked.name.split("/")[1])
    booking = await running.server.components.db.read(lambda s: s.get(Booking, booking_id))
    assert booking is not None
    return booking


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_no_reader_passes_an_event_a_running_transaction_may_still_commit(running: Running) -> None:
    # Two booking changes in flight at once, as two processes would have them: the early one began
    # first and commits last. Neither waits for the other (the timeout), and until the early one ends
    # the late one's event is not readable: a watcher that passed it would never see the early one.
    desk = await Desk.open(running, capacity=2)
    ann = await desk.customer()
    first, second = await desk.book(ann), await desk.book(ann, TUESDAY_10 + timedelta(hours=1))
    one, two = await _booking_row(running, first), await _booking_row(running, second)
    db, now = running.server.components.db, running.clock.now()
    admin = Principal(user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.ADMIN)
    before = await db.read(last_event_id)
    async with AsyncSession(db.transactions) as early, AsyncSession(db.transactions) as late, early.begin():
        await early.execute(select(func.pg_current_xact_id()))  # began: it has the lower transaction id
        async with asyncio.timeout(5), late.begin():
            await record_change(late, two, "rescheduled", now, by=None)
        assert await db.read(last_event_id) == before  # committed, yet held back behind `early`
        assert [e.type for e, _ in await db.read(lambda s: events_after(s, admin, 0))] == ["created"] * 2
        await record_change(early, one, "cancelled", now, by=None)
    events = await _stream_events(running, ann, 4)
    assert [(kind, name) for _, kind, name in events] == [
        (booking_pb2.BOOKING_EVENT_TYPE_CREATED, first.name), (booking_pb2.BOOKING_EVENT_TYPE_CREATED, second.name),
        (booking_pb2.BOOKING_EVENT_TYPE_CANCELLED, first.name),
        (booking_pb2.BOOKING_EVENT_TYPE_RESCHEDULED, second.name)]
    assert [position for position, _, _ in events] == sorted({position for position, _, _ in events})
    assert await db.read(last_event_id) == events[-1][0]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_one_bookings_events_stay_in_the_order_they_happened(running: Running) -> None:
    # A transaction that began before another's change of the same booking committed would position
    # its own change before that one: its event is refused and the whole transaction runs again.
    desk = await Desk.open(running)
    ann = await desk.customer()
    booked = await desk.book(ann)
    booking = await _booking_row(running, booked)
    db, now = running.server.components.db, running.clock.now()
    began: list[int] = []
    other_committed = asyncio.Event()

    async def slow_change(session: AsyncSession) -> None:
        began.append(int((await session.execute(select(func.pg_current_xact_id().cast(String)))).scalar_one()))
        await other_committed.wait()
        row = await session.get(Booking, booking.id, with_for_update=True)
        assert row is not None
        await record_change(session, row, "cancelled", now, by=None)

    slow = asyncio.create_task(db.run(slow_change))
    async with asyncio.timeout(5):
        while not began:
            await asyncio.sleep(0.01)
    async with AsyncSession(db.transactions) as quick, quick.begin():
        row = await quick.get(Booking, booking.id, with_for_update=True)
        assert row is not None
        await record_change(quick, row, "rescheduled", now, by=None)
    other_committed.set()
    await slow
    assert len(began) == 2 and began[0] < began[1]  # started over, with a newer transaction id
    events = await _stream_events(running, ann, 3)
    assert [kind for _, kind, _ in events] == [booking_pb2.BOOKING_EVENT_TYPE_CREATED,
                                               booking_pb2.BOOKING_EVENT_TYPE_RESCHEDULED,
                                               booking_pb2.BOOKING_EVENT_TYPE_CANCELLED]


async def test_a_change_made_through_another_server_process_reaches_watchers(
        running: Running, database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    # A second server on the same database, as another process would be: it learns of the change only
    # by polling the stream (the first server's own watchers are woken by its commit).
    other = FoothillsServer(build_components(make_settings(database_url), clock=clock,
                                             mailer=FileMailer(tmp_path / "outbox")))
    port = await other.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            desk = await Desk.open(running)
            ann = await desk.customer()
            stream = booking_pb2_grpc.BookingServiceStub(channel).WatchBookings(
                booking_pb2.WatchBookingsRequest(), metadata=ann.metadata)
            await stream.initial_metadata()
            await asyncio.sleep(0.2)  # the idle stream is now parked in its wait
            booked = await desk.book(ann)  # through the first server
            async with asyncio.timeout(5):
                event = await anext(aiter(stream))
            stream.cancel()
    finally:
        await other.stop(0)
    assert (event.type, event.booking.name) == (booking_pb2.BOOKING_EVENT_TYPE_CREATED, booked.name)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_statement_run_on_psycopg_reads_and_writes_what_sqlalchemy_would(database_url: str) -> None:
    # The hottest statements bypass SQLAlchemy's execution (`first_row_on_driver`); their parameters
    # must still go through the columns' own conversions, and the values a statement carries (a
    # literal IN list, a constant) must still be there.
    db = Database(database_url)
    when = datetime(2030, 1, 7, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    statement = select(bindparam("when", type_=UtcDateTime), bindparam("details", type_=JSON),
                       bindparam("id", type_=Uuid), literal(41) + 1,
                       literal("confirmed").in_(bindparam("statuses", ("pending", "confirmed"), literal_execute=True)))
    params = {"when": when, "details": {"seats": 2, "reason": "a 'quoted' reason"}, "id": uuid.uuid4()}
    try:
        async with db.engine.connect() as conn:
            by_driver = await first_row_on_driver(conn, statement, params)
            by_sqlalchemy = (await conn.execute(statement, params)).one()
            with pytest.raises(ValueError, match="IN"):
                await first_row_on_driver(conn, select(Booking.id).where(Booking.status.in_(["pending"])), {})
            # Every row, in order, with a bound LIMIT (as the search statements have).
            days = select(func.generate_series(1, 5).label("day")).order_by(text("day DESC")).limit(bindparam("n"))
            several_by_driver = await rows_on_driver(conn, days, {"n": 3})
            several_by_sqlalchemy = (await conn.execute(days, {"n": 3})).all()
    finally:
        await db.dispose()
    assert [tuple(r) for r in several_by_driver] == [tuple(r) for r in several_by_sqlalchemy] == [(5,), (4,), (3,)]
    assert by_driver is not None
    assert tuple(by_driver) == tuple(by_sqlalchemy) == (when.astimezone(UTC), params["details"], params["id"], 42,
                                                         True)
