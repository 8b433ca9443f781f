"""The documented refusals no feature test provokes, each proven reachable through the real server.

Every RPC's comment in protos/foothills/** has an "Errors:" paragraph: the status codes and the
`ErrorInfo.reason` values a client may branch on. Those reasons are a contract, and
scripts/check_reasons.py holds the protos to it: a reason documented for an RPC that no test ever saw
that RPC answer is either unreachable (and must leave the contract) or untested. The feature modules
(test_bookings, test_holds, test_waitlist, ...) provoke most of them while testing their feature; this
module provokes the rest. It is a table: this RPC, in this situation, refuses with this code and
reason. Every call goes through the `running` fixture's stubs, so tests/reasons.py records what it saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import grpc
import psycopg
import pytest

from foothills.admin.v1 import admin_pb2
from foothills.auth.v1 import auth_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.database import MAX_ATTEMPTS
from foothills_rpc.domain.users import Role
from tests.booking_support import TUESDAY_10, Desk, Holds, error_of, join
from tests.catalog_support import at, duration, mask, ts
from tests.conftest import Caller, Running, running_server
from tests.support import Mailbox, psycopg_conninfo, reason, table_locked, violations

REFUSED = grpc.StatusCode.FAILED_PRECONDITION
DENIED = grpc.StatusCode.PERMISSION_DENIED
WEDNESDAY_10 = TUESDAY_10 + timedelta(days=1)


async def archive(desk: Desk) -> None:
    """DeleteService archives: the service keeps its history but takes nothing new."""
    await desk.running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=desk.service.name),
                                             metadata=desk.world.provider.metadata)


# --- HoldSlot and JoinWaitlist: the booking rules of the slot and the caller ---------------------
#
# Both ask the same admission rules as CreateBooking before anything of their own (a waiting line
# checks that the slot is full only after them), so each situation is a caller and a start on a
# fresh desk: one service, capacity 1, Mon-Fri 09:00-17:00, 1 hour notice, 60 days ahead.

Situation = Callable[[Desk], Awaitable[tuple[Caller, datetime]]]


async def service_archived(desk: Desk) -> tuple[Caller, datetime]:
    await archive(desk)
    return await desk.customer(), TUESDAY_10


async def provider_disabled(desk: Desk) -> tuple[Caller, datetime]:
    """Disabling a provider suspends their services."""
    await desk.running.admin.DisableUser(admin_pb2.DisableUserRequest(name=desk.world.provider.name, reason="gone"),
                                         metadata=desk.world.admin.metadata)
    return await desk.customer(), TUESDAY_10


async def slot_started(desk: Desk) -> tuple[Caller, datetime]:
    desk.running.clock.advance(timedelta(minutes=1))  # Monday 09:01: the 09:00 slot has begun
    return await desk.customer(), at("2030-01-07T09:00")


async def inside_notice(desk: Desk) -> tuple[Caller, datetime]:
    return await desk.customer(), at("2030-01-07T09:00")  # starts now; the service wants an hour's notice


async def beyond_horizon(desk: Desk) -> tuple[Caller, datetime]:
    return await desk.customer(), at("2030-03-20T10:00")  # 72 days ahead; the service takes 60


async def booked_already(desk: Desk) -> tuple[Caller, datetime]:
    who = await desk.customer()
    await desk.book(who)  # the slot is full, with the caller's own booking
    return who, TUESDAY_10


async def booked_elsewhere(desk: Desk) -> tuple[Caller, datetime]:
    """The caller has a booking with another provider, Tuesday 09:00-10:30, across the 10:00 slot."""
    other_provider = await desk.running.signed_in("p2@example.com", role=Role.PROVIDER)
    other = await desk.world.service(by=other_provider, display_name="Other", duration=duration(minutes=90))
    who = await desk.customer()
    await desk.running.booking.CreateBooking(desk.request(at("2030-01-08T09:00"), service=other.name),
                                             metadata=who.metadata)
    return who, TUESDAY_10


SlotCall = Callable[[Desk, Caller, datetime], Awaitable[object]]
SLOT_RPCS: dict[str, SlotCall] = {
    "HoldSlot": lambda desk, who, start: Holds(desk).hold(who, start),
    "JoinWaitlist": lambda desk, who, start: join(desk.running, desk, who, start),
}

SLOT_REFUSALS = [
    pytest.param("HoldSlot", service_archived, "SERVICE_ARCHIVED", id="HoldSlot-archived"),
    pytest.param("HoldSlot", beyond_horizon, "TOO_FAR_AHEAD", id="HoldSlot-beyond-horizon"),
    pytest.param("HoldSlot", booked_elsewhere, "OVERLAPPING_BOOKING", id="HoldSlot-booked-elsewhere"),
    pytest.param("JoinWaitlist", service_archived, "SERVICE_ARCHIVED", id="JoinWaitlist-archived"),
    pytest.param("JoinWaitlist", provider_disabled, "SERVICE_SUSPENDED", id="JoinWaitlist-provider-disabled"),
    pytest.param("JoinWaitlist", slot_started, "START_IN_PAST", id="JoinWaitlist-started"),
    pytest.param("JoinWaitlist", inside_notice, "MINIMUM_NOTICE", id="JoinWaitlist-inside-notice"),
    pytest.param("JoinWaitlist", beyond_horizon, "TOO_FAR_AHEAD", id="JoinWaitlist-beyond-horizon"),
    pytest.param("JoinWaitlist", booked_already, "SLOT_ALREADY_BOOKED_BY_USER", id="JoinWaitlist-booked-already"),
    pytest.param("JoinWaitlist", booked_elsewhere, "OVERLAPPING_BOOKING", id="JoinWaitlist-booked-elsewhere"),
]


@pytest.mark.parametrize(("rpc", "situation", "expected"), SLOT_REFUSALS)
async def test_holding_or_queueing_follows_the_booking_rules(running: Running, rpc: str, situation: Situation,
                                                             expected: str) -> None:
    desk = await Desk.open(running)
    who, start = await situation(desk)
    error = await error_of(SLOT_RPCS[rpc](desk, who, start))
    assert (error.code(), reason(error)) == (REFUSED, expected)


# --- ConfirmBooking and CompleteBooking: the provider's verbs ------------------------------------

ProviderVerb = Callable[[Running, str, Caller], Awaitable[object]]
PROVIDER_VERBS: dict[str, ProviderVerb] = {
    "ConfirmBooking": lambda running, name, who: running.booking.ConfirmBooking(
        booking_pb2.ConfirmBookingRequest(name=name), metadata=who.metadata),
    "CompleteBooking": lambda running, name, who: running.booking.CompleteBooking(
        booking_pb2.CompleteBookingRequest(name=name), metadata=who.metadata),
}


@pytest.mark.parametrize("rpc", PROVIDER_VERBS)
async def test_a_provider_may_not_confirm_or_complete_what_they_booked_as_a_customer(running: Running,
                                                                                      rpc: str) -> None:
    """A provider may book another provider's service; they see that booking as its customer, but the
    provider's verbs on it belong to the service's provider."""
    desk = await Desk.open(running)
    elsewhere = await running.signed_in("p2@example.com", role=Role.PROVIDER)
    booking = await desk.book(elsewhere)
    error = await error_of(PROVIDER_VERBS[rpc](running, booking.name, elsewhere))
    assert (error.code(), reason(error)) == (DENIED, "NOT_OWNER")


@pytest.mark.parametrize("rpc", PROVIDER_VERBS)
async def test_a_cancelled_booking_is_neither_confirmed_nor_completed(running: Running, rpc: str) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)
    await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booking.name), metadata=ann.metadata)
    error = await error_of(PROVIDER_VERBS[rpc](running, booking.name, desk.world.provider))
    assert (error.code(), reason(error)) == (REFUSED, "BOOKING_ALREADY_CANCELLED")


# --- RescheduleBooking -----------------------------------------------------------------------------


def reschedule(running: Running, booking: booking_pb2.Booking, who: Caller) -> Awaitable[object]:
    return running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
        name=booking.name, new_start_time=ts(WEDNESDAY_10), request_id="move"), metadata=who.metadata)


async def test_the_service_s_provider_sees_a_booking_but_may_not_move_it(running: Running) -> None:
    desk = await Desk.open(running)
    booking = await desk.book(await desk.customer())
    error = await error_of(reschedule(running, booking, desk.world.provider))
    assert (error.code(), reason(error)) == (DENIED, "NOT_OWNER")


async def test_a_completed_booking_cannot_be_rescheduled(running: Running) -> None:
    desk = await Desk.open(running)
    ann = await desk.customer()
    booking = await desk.book(ann)
    running.clock.advance(timedelta(days=1, hours=2))  # Tuesday 11:00: it has ended
    provider, ann = await running.again(desk.world.provider), await running.again(ann)
    await running.booking.CompleteBooking(booking_pb2.CompleteBookingRequest(name=booking.name),
                                          metadata=provider.metadata)
    error = await error_of(reschedule(running, booking, ann))
    assert (error.code(), reason(error)) == (REFUSED, "INVALID_STATUS_TRANSITION")


# --- CatalogService --------------------------------------------------------------------------------


async def test_an_archived_service_s_availability_cannot_be_set(running: Running) -> None:
    desk = await Desk.open(running)
    await archive(desk)
    error = await error_of(running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
        availability=catalog_pb2.Availability(name=f"{desk.service.name}/availability")),
        metadata=desk.world.provider.metadata))
    assert (error.code(), reason(error)) == (REFUSED, "SERVICE_ARCHIVED")


async def test_two_overrides_of_one_date_are_refused(running: Running) -> None:
    desk = await Desk.open(running)
    closed = catalog_pb2.DateOverride(date=types_pb2.Date(year=2030, month=1, day=8),
                                      kind=catalog_pb2.OVERRIDE_KIND_CLOSED)
    error = await error_of(running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
        availability=catalog_pb2.Availability(name=f"{desk.service.name}/availability", overrides=[closed, closed])),
        metadata=desk.world.provider.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"availability.overrides[1].date": "DUPLICATE_OVERRIDE"}


async def test_a_category_cannot_be_renamed_to_another_category_s_name(running: Running) -> None:
    desk = await Desk.open(running)  # its category is "Massage"
    admin = desk.world.admin
    yoga = (await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name="Yoga")), metadata=admin.metadata)).category
    error = await error_of(running.catalog.UpdateCategory(catalog_pb2.UpdateCategoryRequest(
        category=catalog_pb2.Category(name=yoga.name, display_name="Massage"), update_mask=mask("display_name")),
        metadata=admin.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "CATEGORY_EXISTS")


# --- AdminService ----------------------------------------------------------------------------------


async def test_moving_a_conflict_to_the_nearest_slot_needs_a_free_slot_near_it(running: Running) -> None:
    """The provider closes the service's calendar: Tuesday's booking is left outside the availability,
    and no slot within 14 days either side could take it."""
    desk = await Desk.open(running)
    booking = await desk.book(await desk.customer())
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
        availability=catalog_pb2.Availability(name=f"{desk.service.name}/availability")),
        metadata=desk.world.provider.metadata)
    error = await error_of(running.admin.ResolveConflict(admin_pb2.ResolveConflictRequest(
        booking=booking.name, resolution=admin_pb2.CONFLICT_RESOLUTION_MOVE_TO_NEAREST, reason="calendar closed"),
        metadata=desk.world.admin.metadata))
    assert (error.code(), reason(error)) == (REFUSED, "NO_FREE_SLOT")


# --- What every RPC may answer when the database fails (PostgreSQL: the failures are its own) ------


def _execute(database_url: str, statement: str) -> None:
    with psycopg.connect(psycopg_conninfo(database_url), autocommit=True) as conn:
        conn.execute(statement)


async def _admin(running: Running) -> Caller:
    return await running.signed_in("dba.admin@example.com", role=Role.ADMIN)


def _category(name: str) -> catalog_pb2.CreateCategoryRequest:
    return catalog_pb2.CreateCategoryRequest(category=catalog_pb2.Category(display_name=name))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_write_that_loses_every_retry_is_aborted_concurrent_modification(running: Running,
                                                                                 database_url: str) -> None:
    """The database answers every attempt with a serialization failure (a trigger raising SQLSTATE
    40001, as a conflicting transaction would): the server retries, then says ABORTED."""
    admin = await _admin(running)
    _execute(database_url, """CREATE FUNCTION always_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure'; END $$""")
    _execute(database_url, "CREATE TRIGGER always_conflict BEFORE INSERT ON categories "
                           "FOR EACH ROW EXECUTE FUNCTION always_conflict()")
    error = await error_of(running.catalog.CreateCategory(_category("Contended"), metadata=admin.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ABORTED, "CONCURRENT_MODIFICATION")
    metrics = running.server.components.metrics
    assert metrics.transaction_retries.labels("serialization_failure")._value.get() == MAX_ATTEMPTS - 1
    assert metrics.transactions.labels("write", "conflict")._value.get() == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_statement_the_database_cancels_is_unavailable_database_timeout(running: Running,
                                                                                database_url: str) -> None:
    """A statement cancelled by the database (statement_timeout, or an operator's pg_cancel_backend,
    as here, while it waits for a lock) is UNAVAILABLE: retryable, nothing written."""
    admin = await _admin(running)
    async with table_locked(database_url, "categories"):
        call = asyncio.ensure_future(running.catalog.CreateCategory(_category("Cancelled"), metadata=admin.metadata))
        waiting = """SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT%'"""
        async with asyncio.timeout(30):
            while not await asyncio.to_thread(_cancelled, database_url, waiting):
                await asyncio.sleep(0.05)
        error = await error_of(call)
    assert (error.code(), reason(error)) == (grpc.StatusCode.UNAVAILABLE, "DATABASE_TIMEOUT")


def _cancelled(database_url: str, query: str) -> bool:
    with psycopg.connect(psycopg_conninfo(database_url), autocommit=True) as conn:
        return bool(conn.execute(query).fetchall())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_no_pool_connection_free_in_time_is_resource_exhausted_database_busy(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    """One pooled connection, held by a call that waits for a lock: the next call waits for a connection
    for the pool's timeout (5 s), then is told to retry."""
    async with running_server(database_url, clock, mailbox, db_pool_size=1) as running:
        admin = await _admin(running)
        async with table_locked(database_url, "categories"):
            held = asyncio.ensure_future(running.catalog.CreateCategory(_category("Holding"), metadata=admin.metadata))
            await asyncio.sleep(0.2)  # the first call has the connection and waits for the lock
            error = await error_of(running.auth.Register(auth_pb2.RegisterRequest(
                email="waiting@example.com", password="a waiting passphrase", display_name="Waiting")))
        await held
    assert (error.code(), reason(error)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "DATABASE_BUSY")
