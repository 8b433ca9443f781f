"""Categories and services through the real server: CRUD, ownership, etags, archiving."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.domain.users import Role
from tests.catalog_support import CatalogWorld, duration, mask, service_message
from tests.conftest import Running
from tests.support import reason, violations


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


# --- categories -----------------------------------------------------------------------------


async def test_admin_manages_categories_and_anyone_reads_them(running: Running) -> None:
    world = await CatalogWorld.create(running)
    md = world.admin.metadata
    yoga = (await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name="Yoga", description="Classes")), metadata=md)).category
    assert yoga.name.startswith("categories/")
    read = (await running.catalog.GetCategory(catalog_pb2.GetCategoryRequest(name=yoga.name))).category
    assert read == yoga
    renamed = (await running.catalog.UpdateCategory(catalog_pb2.UpdateCategoryRequest(
        category=catalog_pb2.Category(name=yoga.name, display_name="Yoga & Pilates", description="ignored"),
        update_mask=mask("display_name")), metadata=md)).category
    assert (renamed.display_name, renamed.description) == ("Yoga & Pilates", "Classes")
    listed = (await running.catalog.ListCategories(catalog_pb2.ListCategoriesRequest())).categories
    assert [c.display_name for c in listed] == ["Massage", "Yoga & Pilates"]
    await running.catalog.DeleteCategory(catalog_pb2.DeleteCategoryRequest(name=yoga.name), metadata=md)
    error = await _error(running.catalog.GetCategory(catalog_pb2.GetCategoryRequest(name=yoga.name)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_category_names_are_unique_ignoring_case(running: Running) -> None:
    world = await CatalogWorld.create(running)
    error = await _error(running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name="MASSAGE")), metadata=world.admin.metadata))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(error) == "CATEGORY_EXISTS"


async def test_categories_page_through_every_row_once(running: Running) -> None:
    world = await CatalogWorld.create(running)
    for index in range(7):
        await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name=f"Cat {index}")), metadata=world.admin.metadata)
    seen, token = [], ""
    while True:
        page = await running.catalog.ListCategories(catalog_pb2.ListCategoriesRequest(page_size=3, page_token=token))
        seen += [c.display_name for c in page.categories]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen, key=str.lower) and len(seen) == 8


async def test_a_category_with_active_services_cannot_be_deleted(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    error = await _error(running.catalog.DeleteCategory(catalog_pb2.DeleteCategoryRequest(name=world.category),
                                                        metadata=world.admin.metadata))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "CATEGORY_IN_USE"
    await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name),
                                        metadata=world.provider.metadata)
    # Archived services keep their history, so the category still cannot go.
    error = await _error(running.catalog.DeleteCategory(catalog_pb2.DeleteCategoryRequest(name=world.category),
                                                        metadata=world.admin.metadata))
    assert reason(error) == "CATEGORY_IN_USE"


@pytest.mark.parametrize("role", [None, Role.CUSTOMER, Role.PROVIDER])
async def test_only_admins_write_categories(running: Running, role: Role | None) -> None:
    world = await CatalogWorld.create(running)
    metadata = () if role is None else (await running.signed_in("x@example.com", role=role)).metadata
    calls = [
        running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Nope")), metadata=metadata),
        running.catalog.UpdateCategory(catalog_pb2.UpdateCategoryRequest(
            category=catalog_pb2.Category(name=world.category, display_name="Nope"),
            update_mask=mask("display_name")), metadata=metadata),
        running.catalog.DeleteCategory(catalog_pb2.DeleteCategoryRequest(name=world.category), metadata=metadata),
    ]
    expected = grpc.StatusCode.UNAUTHENTICATED if role is None else grpc.StatusCode.PERMISSION_DENIED
    for call in calls:
        assert (await _error(call)).code() == expected
    listed = await running.catalog.ListCategories(catalog_pb2.ListCategoriesRequest())
    names = [c.display_name for c in listed.categories]
    assert names == ["Massage"]


# --- services -------------------------------------------------------------------------------


async def test_a_provider_creates_a_service_for_themselves(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(availability=[])
    assert service.provider == world.provider.name
    assert service.state == catalog_pb2.SERVICE_STATE_ACTIVE
    assert service.etag
    assert service.booking_settings.minimum_notice.ToTimedelta().total_seconds() == 3600
    assert service.base_price == types_pb2.Money(amount_minor=5000, currency_code="EUR")
    fetched = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service
    assert fetched == service


async def test_an_admin_creates_a_service_for_a_provider_but_must_name_one(running: Running) -> None:
    world = await CatalogWorld.create(running)
    created = (await running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
        service=service_message(world.category, provider=world.provider.name)), metadata=world.admin.metadata)).service
    assert created.provider == world.provider.name
    error = await _error(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
        service=service_message(world.category)), metadata=world.admin.metadata))
    assert violations(error) == {"service.provider": "INVALID_VALUE"}
    error = await _error(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
        service=service_message(world.category, provider=world.admin.name)), metadata=world.admin.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_A_PROVIDER")


async def test_a_provider_cannot_create_or_change_another_providers_service(running: Running) -> None:
    world = await CatalogWorld.create(running)
    other = await running.signed_in("other@example.com", role=Role.PROVIDER)
    error = await _error(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
        service=service_message(world.category, provider=world.provider.name)), metadata=other.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")
    service = await world.service()
    update = catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, display_name="Hijacked"),
        update_mask=mask("display_name"))
    error = await _error(running.catalog.UpdateService(update, metadata=other.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")
    for call in [
        running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name), metadata=other.metadata),
        running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
            availability=catalog_pb2.Availability(name=f"{service.name}/availability")), metadata=other.metadata),
    ]:
        assert reason(await _error(call)) == "NOT_OWNER"
    customer = await running.signed_in("cust@example.com")
    assert (await _error(running.catalog.UpdateService(update, metadata=customer.metadata))).code() == \
        grpc.StatusCode.PERMISSION_DENIED
    unchanged = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service
    assert unchanged == service
    # The admin may change anything.
    await running.catalog.UpdateService(update, metadata=world.admin.metadata)


async def test_create_service_reports_every_bad_field(running: Running) -> None:
    world = await CatalogWorld.create(running)
    bad = service_message(
        world.category, display_name="", capacity=-1, time_zone="Mars/Base",
        base_price=types_pb2.Money(amount_minor=-5, currency_code="EURO"), duration=duration(minutes=3),
        booking_settings=catalog_pb2.BookingSettings(maximum_days_ahead=0, buffer_before=duration(minutes=-5)))
    error = await _error(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(service=bad),
                                                       metadata=world.provider.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) >= {
        "service.display_name", "service.capacity", "service.time_zone", "service.base_price.amount_minor",
        "service.base_price.currency_code", "service.duration", "service.booking_settings.maximum_days_ahead",
        "service.booking_settings.buffer_before"}


async def test_create_service_needs_a_real_category(running: Running) -> None:
    world = await CatalogWorld.create(running)
    missing = "categories/" + "0" * 32
    error = await _error(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
        service=service_message(missing)), metadata=world.provider.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "CATEGORY_NOT_FOUND")
    error = await _error(running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
        service=service_message("")), metadata=world.provider.metadata))
    assert violations(error) == {"service.category": "INVALID_VALUE"}


async def test_update_service_moves_it_to_another_category_only_an_existing_one(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    yoga = (await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name="Yoga")), metadata=world.admin.metadata)).category
    moved = (await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, category=yoga.name),
        update_mask=mask("category")), metadata=world.provider.metadata)).service
    assert moved.category == yoga.name
    for bad in ("", "categories/not-a-uuid", "services/00000000-0000-0000-0000-000000000000"):
        error = await _error(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
            service=catalog_pb2.Service(name=service.name, etag=moved.etag, category=bad),
            update_mask=mask("category")), metadata=world.provider.metadata))
        assert violations(error) == {"service.category": "INVALID_VALUE"}, bad
    gone = "categories/00000000-0000-0000-0000-000000000000"
    error = await _error(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=moved.etag, category=gone),
        update_mask=mask("category")), metadata=world.provider.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "service.category" in violations(error)
    current = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service
    assert current.category == yoga.name


async def test_update_service_with_the_current_etag_then_a_stale_one(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    updated = (await running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, capacity=4, display_name="ignored"),
        update_mask=mask("capacity")), metadata=world.provider.metadata)).service
    assert updated.capacity == 4 and updated.display_name == service.display_name
    assert updated.etag != service.etag
    error = await _error(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, capacity=9),
        update_mask=mask("capacity")), metadata=world.provider.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    error = await _error(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, capacity=9), update_mask=mask("capacity")),
        metadata=world.provider.metadata))
    assert violations(error) == {"service.etag": "INVALID_VALUE"}


async def test_two_simultaneous_edits_with_one_etag_let_exactly_one_win(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    edits = [running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag, display_name=f"Edit {i}"),
        update_mask=mask("display_name")), metadata=world.provider.metadata) for i in range(4)]
    results = await asyncio.gather(*edits, return_exceptions=True)
    winners = [r for r in results if isinstance(r, catalog_pb2.UpdateServiceResponse)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert {(e.code(), reason(e)) for e in losers} == {(grpc.StatusCode.ABORTED, "ETAG_MISMATCH")}
    final = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service
    assert final.display_name == winners[0].service.display_name


@pytest.mark.parametrize(
    ("paths", "field"),
    [pytest.param([], "update_mask", id="empty"), pytest.param(["provider"], "update_mask", id="provider"),
     pytest.param(["etag"], "update_mask", id="etag"), pytest.param(["state"], "update_mask", id="state")],
)
async def test_update_service_refuses_masks_it_cannot_apply(running: Running, paths: list[str], field: str) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(availability=[])
    error = await _error(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=service.etag), update_mask=mask(*paths)),
        metadata=world.provider.metadata))
    assert set(violations(error)) == {field}


async def test_archiving_hides_a_service_and_freezes_it(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service()
    archived = (await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name),
                                                    metadata=world.provider.metadata)).service
    assert archived.state == catalog_pb2.SERVICE_STATE_ARCHIVED
    again = (await running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(name=service.name),
                                                 metadata=world.provider.metadata)).service
    assert again == archived  # idempotent
    listed = (await running.catalog.ListServices(catalog_pb2.ListServicesRequest())).services
    assert service.name not in [s.name for s in listed]
    assert (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=service.name))).service == archived
    error = await _error(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
        service=catalog_pb2.Service(name=service.name, etag=archived.etag, capacity=3),
        update_mask=mask("capacity")), metadata=world.provider.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "SERVICE_ARCHIVED")


async def test_delete_service_checks_a_given_etag(running: Running) -> None:
    world = await CatalogWorld.create(running)
    service = await world.service(availability=[])
    error = await _error(running.catalog.DeleteService(catalog_pb2.DeleteServiceRequest(
        name=service.name, etag="v999"), metadata=world.provider.metadata))
    assert (error.code(), reason(error)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")


@pytest.mark.parametrize("name", ["", "services/", "services/xyz", "categories/" + "a" * 32])
async def test_get_service_validates_the_name(running: Running, name: str) -> None:
    error = await _error(running.catalog.GetService(catalog_pb2.GetServiceRequest(name=name)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"name"}


async def test_get_service_of_an_unknown_id_is_not_found(running: Running) -> None:
    error = await _error(running.catalog.GetService(catalog_pb2.GetServiceRequest(name="services/" + "f" * 32)))
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "SERVICE_NOT_FOUND")


async def test_a_pricing_policy_round_trips_with_every_rule_kind_and_its_bounds(running: Running) -> None:
    world = await CatalogWorld.create(running)
    pricing = catalog_pb2.PricingPolicy(floor_minor=1000, ceiling_minor=90_000, rules=[
        catalog_pb2.PricingRule(adjustment_bps=2000, label="busy",
                                occupancy=catalog_pb2.OccupancyCondition(min_occupancy_bps=5000)),
        catalog_pb2.PricingRule(adjustment_bps=-1000, label="early",
                                lead_time=catalog_pb2.LeadTimeCondition(min_lead=duration(days=14))),
        catalog_pb2.PricingRule(adjustment_bps=500, label="weekend", days_of_week=catalog_pb2.DaysOfWeekCondition(
            days=[types_pb2.DAY_OF_WEEK_SATURDAY, types_pb2.DAY_OF_WEEK_SUNDAY])),
        catalog_pb2.PricingRule(adjustment_bps=700, label="morning",
                                hours_of_day=catalog_pb2.HoursOfDayCondition(start_hour=9, end_hour=12))])
    created = await world.service(pricing=pricing)
    assert created.pricing == pricing
    got = (await running.catalog.GetService(catalog_pb2.GetServiceRequest(name=created.name))).service
    assert got.pricing == pricing
