"""ListServices: free text, filters combined, sort orders, and pages that stay stable under inserts."""

from __future__ import annotations

import grpc
import pytest

from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.domain.users import Role
from tests.catalog_support import CatalogWorld, at, ts, weekly
from tests.conftest import Running
from tests.support import reason, violations


async def _names(running: Running, **fields: object) -> list[str]:
    response = await running.catalog.ListServices(catalog_pb2.ListServicesRequest(**fields))  # type: ignore[arg-type]
    return [s.display_name for s in response.services]


async def _catalog(running: Running) -> tuple[CatalogWorld, str, str]:
    world = await CatalogWorld.create(running)
    other = await running.signed_in("other-provider@example.com", role=Role.PROVIDER)
    sport = (await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
        category=catalog_pb2.Category(display_name="Sport")), metadata=world.admin.metadata)).category.name
    await world.service(display_name="Swedish massage", description="Gentle and slow",
                        base_price=types_pb2.Money(amount_minor=4000, currency_code="EUR"))
    await world.service(display_name="Hot stone massage", description="Warm basalt stones",
                        base_price=types_pb2.Money(amount_minor=7000, currency_code="EUR"),
                        availability=weekly([types_pb2.DAY_OF_WEEK_SATURDAY], "10:00", "12:00"))
    await world.service(display_name="Tennis court", description="Clay, 100% outdoor", category=sport,
                        base_price=types_pb2.Money(amount_minor=2000, currency_code="GBP"), by=other)
    await world.service(display_name="Squash_court", description="Indoor MASSAGE-free zone", category=sport,
                        base_price=types_pb2.Money(amount_minor=1500, currency_code="EUR"), by=other,
                        availability=[])
    return world, sport, other.name


async def test_free_text_matches_name_or_description_ignoring_case(running: Running) -> None:
    await _catalog(running)
    assert await _names(running, query="MASSAGE") == ["Hot stone massage", "Squash_court", "Swedish massage"]
    assert await _names(running, query="basalt") == ["Hot stone massage"]
    # % and _ are literal characters, not wildcards.
    assert await _names(running, query="100%") == ["Tennis court"]
    assert await _names(running, query="h_") == ["Squash_court"]
    assert await _names(running, query="nothing like this") == []


async def test_filters_combine(running: Running) -> None:
    world, sport, other = await _catalog(running)
    assert await _names(running, category=sport) == ["Squash_court", "Tennis court"]
    assert await _names(running, provider=other, currency_code="EUR") == ["Squash_court"]
    assert await _names(running, category=world.category, min_price_minor=4000, max_price_minor=6999,
                        currency_code="EUR") == ["Swedish massage"]
    # 1,500 minor units: the squash court's 15 EUR, never the tennis court's 20 GBP compared as 2,000 of "units".
    assert await _names(running, query="court", max_price_minor=1500, currency_code="EUR") == ["Squash_court"]
    assert await _names(running, query="court", min_price_minor=1, currency_code="GBP") == ["Tennis court"]


async def test_has_a_free_slot_between_two_instants(running: Running) -> None:
    await _catalog(running)
    # Saturday 2030-01-12: only the hot stone massage opens on Saturdays.
    names = await _names(running, available_after=ts(at("2030-01-12T00:00")),
                         available_before=ts(at("2030-01-13T00:00")))
    assert names == ["Hot stone massage"]
    weekday = await _names(running, available_after=ts(at("2030-01-08T00:00")),
                           available_before=ts(at("2030-01-09T00:00")))
    assert weekday == ["Swedish massage", "Tennis court"]  # the squash court has no availability


async def test_sort_orders(running: Running) -> None:
    await _catalog(running)
    assert await _names(running, order_by=catalog_pb2.SERVICE_ORDER_PRICE, currency_code="EUR") == [
        "Squash_court", "Swedish massage", "Hot stone massage"]
    soonest = await _names(running, order_by=catalog_pb2.SERVICE_ORDER_SOONEST_AVAILABLE)
    # Monday 09:00 now: weekday services have a slot today; Saturday's comes later; no slots at all last.
    assert soonest[2:] == ["Hot stone massage", "Squash_court"]
    assert sorted(soonest[:2]) == ["Swedish massage", "Tennis court"]


@pytest.mark.parametrize("order", [catalog_pb2.SERVICE_ORDER_NAME, catalog_pb2.SERVICE_ORDER_PRICE,
                                   catalog_pb2.SERVICE_ORDER_SOONEST_AVAILABLE])
async def test_pages_neither_skip_nor_repeat_while_services_are_added(running: Running, order: int) -> None:
    world = await CatalogWorld.create(running)
    for index in range(9):
        await world.service(display_name=f"Service {index:02d}",
                            base_price=types_pb2.Money(amount_minor=1000 + 100 * index, currency_code="EUR"))
    seen: list[str] = []
    token = ""
    added = 0
    while True:
        page = await running.catalog.ListServices(catalog_pb2.ListServicesRequest(
            page_size=2, page_token=token, order_by=order, currency_code="EUR"))
        seen += [s.display_name for s in page.services]
        token = page.next_page_token
        if not token:
            break
        await world.service(display_name=f"Added {added}", availability=[])  # lands anywhere in the order
        added += 1
    originals = [name for name in seen if name.startswith("Service")]
    assert sorted(originals) == [f"Service {i:02d}" for i in range(9)]
    assert len(seen) == len(set(seen))


async def test_page_tokens_are_tamper_checked_and_bound_to_their_filters(running: Running) -> None:
    world = await CatalogWorld.create(running)
    for index in range(3):
        await world.service(display_name=f"S{index}", availability=[])
    page = await running.catalog.ListServices(catalog_pb2.ListServicesRequest(page_size=1, query="s"))
    token = page.next_page_token
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad, fields in [(flipped, {"query": "s"}), (token, {"query": "s1"}), ("garbage!", {"query": "s"})]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await running.catalog.ListServices(catalog_pb2.ListServicesRequest(page_size=1, page_token=bad, **fields))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(caught.value) == "INVALID_ARGUMENT"
        assert violations(caught.value) == {"page_token": "INVALID_PAGE_TOKEN"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [pytest.param({"query": "x" * 101}, "query", id="long-query"),
     pytest.param({"min_price_minor": 10, "max_price_minor": 5, "currency_code": "EUR"}, "max_price_minor",
                  id="inverted-price"),
     pytest.param({"max_price_minor": 5}, "currency_code", id="price-without-currency"),
     pytest.param({"order_by": catalog_pb2.SERVICE_ORDER_PRICE}, "currency_code", id="price-order-without-currency"),
     pytest.param({"currency_code": "eur"}, "currency_code", id="bad-currency"),
     pytest.param({"available_after": ts(at("2030-01-08T00:00"))}, "available_before", id="half-a-range"),
     pytest.param({"category": "categories/nope"}, "category", id="bad-category"),
     pytest.param({"provider": "services/" + "a" * 32}, "provider", id="bad-provider"),
     pytest.param({"page_size": -1}, "page_size", id="negative-page-size"),
     pytest.param({"order_by": 42}, "order_by", id="unknown-order")],
)
async def test_list_services_rejects_bad_filters(running: Running, fields: dict, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.catalog.ListServices(catalog_pb2.ListServicesRequest(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(caught.value)
