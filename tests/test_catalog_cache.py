"""The catalog read cache across server processes (db/catalog_cache.py).

Two servers on one database, each with its own components (cache, LISTEN connection, pool): they share
nothing but the database, as two processes on two hosts would. An edit through one must be seen by the
other; seats and prices must be exact at once; on PostgreSQL the cache must really serve reads from
memory, forget them on a notification, and switch itself off while its LISTEN connection is down.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from foothills.admin.v1 import admin_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.db.changes import APPLICATION_NAME, CATALOG
from tests.catalog_support import CatalogWorld, at, mask, ts
from tests.conftest import Running, eventually, listening
from tests.support import run_sql

WEEK = at("2030-01-14T00:00"), at("2030-01-21T00:00")


async def _name(server: Running, service: str) -> str:
    reply = await server.catalog.GetService(catalog_pb2.GetServiceRequest(name=service))
    return str(reply.service.display_name)


async def _warm(server: Running, world: CatalogWorld, service: str) -> None:
    """Reads that fill the cache: the service, a search that finds it, and a week of its slots."""
    await server.catalog.GetService(catalog_pb2.GetServiceRequest(name=service))
    await server.catalog.ListServices(catalog_pb2.ListServicesRequest(category=world.category))
    await server.catalog.ListSlots(catalog_pb2.ListSlotsRequest(service=service, start_time=ts(WEEK[0]),
                                                                end_time=ts(WEEK[1])))


async def test_an_edit_through_one_server_is_seen_by_the_other(running: Running, other: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(display_name="Yoga")
    await _warm(other, world, service.name)
    assert await _name(other, service.name) == "Yoga"

    edited = (await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, display_name="Hot yoga",
                                    base_price=types_pb2.Money(amount_minor=7000, currency_code="EUR")),
        update_mask=mask("display_name", "base_price")), metadata=world.provider.metadata)).service

    # Prices are never served from the cache: the other server quotes the new price at once, without
    # waiting for the notification (its slots are read with the service's version in one statement).
    slots = (await other.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=service.name, start_time=ts(WEEK[0]), end_time=ts(WEEK[1])))).slots
    assert slots and {s.price.total_price.amount_minor for s in slots} == {7000}

    async def seen() -> bool:
        return await _name(other, service.name) == "Hot yoga"

    await eventually(seen)
    reply = await other.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))
    assert reply.service.etag == edited.etag
    found = await other.catalog.ListServices(catalog_pb2.ListServicesRequest(category=world.category))
    assert [(s.name, s.display_name) for s in found.services] == [(service.name, "Hot yoga")]

    # Archiving through the first server: the second stops offering slots at once, and shows the state.
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name, etag=edited.etag),
                                        metadata=world.provider.metadata)
    assert not (await other.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=service.name, start_time=ts(WEEK[0]), end_time=ts(WEEK[1])))).slots

    async def archived() -> bool:
        reply = await other.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))
        return bool(reply.service.state == catalog_pb2.SERVICE_STATE_ARCHIVED)

    await eventually(archived)


async def test_seats_are_exact_at_once_on_the_other_server(running: Running, other: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(capacity=3)
    customer = await running.signed_in("customer@example.com")
    await _warm(other, world, service.name)
    start = at("2030-01-14T10:00")
    await running.booking.CreateBooking(booking_pb2.CreateBookingRequest(
        service=service.name, start_time=ts(start), seats=2, request_id="seats-exact-1"), metadata=customer.metadata)
    slots = (await other.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=service.name, start_time=ts(start), end_time=ts(start + timedelta(minutes=1))))).slots
    assert [s.remaining_seats for s in slots] == [1]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_reads_come_from_memory_until_a_notification(running: Running, other: Running,
                                                           database_url: str) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(display_name="Pilates")
    await listening(running, other)
    await _warm(other, world, service.name)
    # A change behind the servers' backs (no notification): the cache keeps serving what it read...
    run_sql(database_url, "UPDATE services SET display_name = 'Changed in SQL', base_price_minor = 9000, "
                          "version = version + 1 WHERE display_name = 'Pilates'")
    assert await _name(other, service.name) == "Pilates"
    found = await other.catalog.ListServices(catalog_pb2.ListServicesRequest(category=world.category))
    assert [s.display_name for s in found.services] == ["Pilates"]
    # ... but never for prices: slots are read with the service's version, and priced from the new row.
    slots = (await other.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
        service=service.name, start_time=ts(WEEK[0]), end_time=ts(WEEK[1])))).slots
    assert slots and {s.price.total_price.amount_minor for s in slots} == {9000}
    # The notification every catalog edit sends makes both servers read again.
    run_sql(database_url, "SELECT pg_notify(%s, '')", CATALOG)

    async def seen() -> bool:
        return await _name(other, service.name) == await _name(running, service.name) == "Changed in SQL"

    await eventually(seen)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_booking_prices_with_the_copy_only_at_the_version_it_reads(running: Running, other: Running,
                                                                           database_url: str) -> None:
    """A lone booking takes the service from the cache, not from a second read of its row, but only if
    the copy is still at the version read with the slot: a stale copy is read anew (and kept)."""
    world = await CatalogWorld.create(running)
    service = await world.service(display_name="Spin", capacity=10)
    customer = await running.signed_in("spinner@example.com")
    await listening(running, other)
    await _warm(other, world, service.name)

    async def charged(hour: str) -> int:
        made = await other.booking.CreateBooking(booking_pb2.CreateBookingRequest(
            service=service.name, start_time=ts(at(f"2030-01-14T{hour}")), request_id=f"spin-{hour[:2]}"),
            metadata=customer.metadata)
        return int(made.booking.price.total_price.amount_minor)

    # Another process's edit, its notification not arrived yet: the copy is stale, the booking sees it.
    run_sql(database_url,
            "UPDATE services SET base_price_minor = 9000, version = version + 1 WHERE display_name = 'Spin'")
    assert await charged("10:00") == 9000
    # A change no catalog edit makes (the version stays): the booking shows where its service came from,
    # the copy the stale read replaced.
    run_sql(database_url, "UPDATE services SET base_price_minor = 11000 WHERE display_name = 'Spin'")
    assert await charged("11:00") == 9000


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_lost_listen_connection_turns_the_cache_off_until_it_is_back(
        running: Running, other: Running, database_url: str) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(display_name="Pilates")
    await listening(running, other)
    await _warm(other, world, service.name)
    # Both servers' LISTEN connections die; notifications sent meanwhile would be lost, so the caches
    # must forget everything and read from the database until they listen again.
    run_sql(database_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            APPLICATION_NAME)
    run_sql(database_url, "UPDATE services SET display_name = 'Renamed unheard' WHERE display_name = 'Pilates'")

    async def seen() -> bool:
        return await _name(other, service.name) == "Renamed unheard"

    await eventually(seen)
    # Back: the cache serves from memory again.
    await listening(running, other)
    await _warm(other, world, service.name)
    run_sql(database_url, "UPDATE services SET display_name = 'Renamed later' WHERE display_name = 'Renamed unheard'")
    assert await _name(other, service.name) == "Renamed unheard"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_process_serves_its_own_provider_changes_at_once_not_a_notification_late(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disabling a provider suspends their services, enabling resumes them: the process that made the
    change must serve it at once, without waiting for its own notification to come back."""
    world = await CatalogWorld.create(running)
    service = await world.service(display_name="Pilates")
    await listening(running)
    # This process's catalog notifications are held back: only its own drop after the commit remains.
    monkeypatch.setitem(running.server.components.listener._subscribers, CATALOG, [])

    async def state() -> int:
        return int((await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service.state)

    assert await state() == catalog_pb2.SERVICE_STATE_ACTIVE  # cached
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=world.provider.name, reason="audit"),
                                    metadata=world.admin.metadata)
    assert await state() == catalog_pb2.SERVICE_STATE_SUSPENDED  # and cached again
    await running.admin.EnableUser(admin_pb2.EnableUserRequest(name=world.provider.name), metadata=world.admin.metadata)
    assert await state() == catalog_pb2.SERVICE_STATE_ACTIVE


