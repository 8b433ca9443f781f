"""CatalogService: converts requests, calls the catalog use cases, converts answers."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from foothills.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from foothills_rpc.db.catalog import ServiceSearch
from foothills_rpc.db.models import Service
from foothills_rpc.domain.errors import Collector, InvalidArgument
from foothills_rpc.interceptors.auth import principal
from foothills_rpc.services import catalog_convert as convert
from foothills_rpc.services.converters import optional_id, resource_id, set_timestamp, update_mask_paths
from foothills_rpc.usecases.catalog import Catalog

CATEGORY_FIELDS = ("display_name", "description")
# update_mask path -> ServiceSpec field it changes (category is handled apart: it is not in the spec).
SERVICE_FIELDS = {
    "display_name": "display_name", "description": "description", "duration": "duration",
    "capacity": "capacity", "base_price": "base_price", "time_zone": "time_zone",
    "booking_settings": "booking", "cancellation_policy": "cancellation", "pricing": "pricing",
    "runs_without_provider": "runs_without_provider", "category": None,
}
ORDERS = {catalog_pb2.SERVICE_ORDER_UNSPECIFIED: "name", catalog_pb2.SERVICE_ORDER_NAME: "name",
          catalog_pb2.SERVICE_ORDER_PRICE: "price", catalog_pb2.SERVICE_ORDER_SOONEST_AVAILABLE: "soonest"}


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        # A row from the catalog cache is shared by many calls: its message is built once, and goes
        # when the cache lets the row go.
        self._messages: WeakKeyDictionary[Service, catalog_pb2.Service] = WeakKeyDictionary()

    def _message(self, service: Service) -> catalog_pb2.Service:
        message = self._messages.get(service)
        if message is None:
            message = self._messages[service] = convert.service_to_proto(service)
        return message

    # --- categories ----------------------------------------------------------------------

    async def CreateCategory(self, request: catalog_pb2.CreateCategoryRequest,
                             context: Any) -> catalog_pb2.CreateCategoryResponse:
        category = await self._catalog.create_category(principal(), request.category.display_name,
                                                       request.category.description)
        return catalog_pb2.CreateCategoryResponse(category=convert.category_to_proto(category))

    async def GetCategory(self, request: catalog_pb2.GetCategoryRequest,
                          context: Any) -> catalog_pb2.GetCategoryResponse:
        category = await self._catalog.category(resource_id(request.name, "categories"))
        return catalog_pb2.GetCategoryResponse(category=convert.category_to_proto(category))

    async def ListCategories(self, request: catalog_pb2.ListCategoriesRequest,
                             context: Any) -> catalog_pb2.ListCategoriesResponse:
        rows, token = await self._catalog.categories(requested_size=request.page_size, token=request.page_token)
        return catalog_pb2.ListCategoriesResponse(categories=[convert.category_to_proto(c) for c in rows],
                                                  next_page_token=token)

    async def UpdateCategory(self, request: catalog_pb2.UpdateCategoryRequest,
                             context: Any) -> catalog_pb2.UpdateCategoryResponse:
        category_id = resource_id(request.category.name, "categories", field="category.name")
        paths = update_mask_paths(list(request.update_mask.paths), CATEGORY_FIELDS)
        category = await self._catalog.update_category(
            principal(), category_id,
            display_name=request.category.display_name if "display_name" in paths else None,
            description=request.category.description if "description" in paths else None)
        return catalog_pb2.UpdateCategoryResponse(category=convert.category_to_proto(category))

    async def DeleteCategory(self, request: catalog_pb2.DeleteCategoryRequest,
                             context: Any) -> catalog_pb2.DeleteCategoryResponse:
        await self._catalog.delete_category(principal(), resource_id(request.name, "categories"))
        return catalog_pb2.DeleteCategoryResponse()

    # --- services ------------------------------------------------------------------------

    async def CreateService(self, request: catalog_pb2.CreateServiceRequest,
                            context: Any) -> catalog_pb2.CreateServiceResponse:
        errors = Collector()
        if not request.service.HasField("base_price"):
            errors.add("service.base_price", "is required")
        spec = convert.service_spec_from_proto(request.service, errors)
        category_id = optional_id(request.service.category, "categories", "service.category", errors, required=True)
        provider_id = optional_id(request.service.provider, "users", "service.provider", errors)
        # The use case adds the spec's own violations, so every bad field is reported in one answer.
        service = await self._catalog.create_service(principal(), spec, category_id=category_id,
                                                     provider_id=provider_id, errors=errors)
        return catalog_pb2.CreateServiceResponse(service=convert.service_to_proto(service))

    async def GetService(self, request: catalog_pb2.GetServiceRequest, context: Any) -> catalog_pb2.GetServiceResponse:
        service = await self._catalog.service(resource_id(request.name, "services"))
        return catalog_pb2.GetServiceResponse(service=self._message(service))

    async def ListServices(self, request: catalog_pb2.ListServicesRequest,
                           context: Any) -> catalog_pb2.ListServicesResponse:
        errors = Collector()
        order = ORDERS.get(request.order_by)
        if order is None:
            errors.add("order_by", "is not a known order")
        search = ServiceSearch(
            query=request.query.strip(),
            category_id=optional_id(request.category, "categories", "category", errors),
            provider_id=optional_id(request.provider, "users", "provider", errors),
            min_price_minor=request.min_price_minor if request.HasField("min_price_minor") else None,
            max_price_minor=request.max_price_minor if request.HasField("max_price_minor") else None,
            currency=request.currency_code,
            available_after=convert.instant(request.available_after, "available_after", errors)
            if request.HasField("available_after") else None,
            available_before=convert.instant(request.available_before, "available_before", errors)
            if request.HasField("available_before") else None,
            order=order or "name",
        )
        errors.check()
        services, token = await self._catalog.search(search, requested_size=request.page_size,
                                                     token=request.page_token)
        return catalog_pb2.ListServicesResponse(services=[self._message(s) for s in services],
                                                next_page_token=token)

    async def UpdateService(self, request: catalog_pb2.UpdateServiceRequest,
                            context: Any) -> catalog_pb2.UpdateServiceResponse:
        service_id = resource_id(request.service.name, "services", field="service.name")
        paths = update_mask_paths(list(request.update_mask.paths), SERVICE_FIELDS)
        errors = Collector()
        proposed = convert.service_spec_from_proto(request.service, errors)
        category_id = None
        if "category" in paths:
            category_id = optional_id(request.service.category, "categories", "service.category", errors,
                                      required=True)
        changes: dict[str, object] = {}
        for path in paths:
            if path == "base_price":
                changes["base_price_minor"] = proposed.base_price_minor
                changes["currency"] = proposed.currency
            elif (field := SERVICE_FIELDS[path]) is not None:
                changes[field] = getattr(proposed, field)
        # The use case adds the changed service's violations, so every bad field is reported at once.
        change = await self._catalog.update_service(principal(), service_id, expected_etag=request.service.etag,
                                                    changes=changes, category_id=category_id,
                                                    validate_only=request.validate_only, errors=errors)
        response = catalog_pb2.UpdateServiceResponse(service=convert.service_to_proto(change.service))
        convert.set_stranded(response, change.stranded)
        return response

    async def DeleteService(self, request: catalog_pb2.DeleteServiceRequest,
                            context: Any) -> catalog_pb2.DeleteServiceResponse:
        change = await self._catalog.archive_service(principal(), resource_id(request.name, "services"),
                                                     expected_etag=request.etag, validate_only=request.validate_only)
        response = catalog_pb2.DeleteServiceResponse(service=convert.service_to_proto(change.service))
        convert.set_stranded(response, change.stranded)
        return response

    # --- availability, slots, prices -------------------------------------------------------

    async def SetAvailability(self, request: catalog_pb2.SetAvailabilityRequest,
                              context: Any) -> catalog_pb2.SetAvailabilityResponse:
        service_id = _availability_service(request.availability.name, "availability.name")
        errors = Collector()
        availability = convert.availability_from_proto(request.availability, errors)
        errors.check()
        change = await self._catalog.set_availability(principal(), service_id, availability,
                                                      validate_only=request.validate_only)
        response = catalog_pb2.SetAvailabilityResponse(availability=convert.availability_to_proto(change.service))
        convert.set_stranded(response, change.stranded)
        return response

    async def GetAvailability(self, request: catalog_pb2.GetAvailabilityRequest,
                              context: Any) -> catalog_pb2.GetAvailabilityResponse:
        service = await self._catalog.service(_availability_service(request.name, "name"))
        return catalog_pb2.GetAvailabilityResponse(availability=convert.availability_to_proto(service))

    async def ListSlots(self, request: catalog_pb2.ListSlotsRequest, context: Any) -> catalog_pb2.ListSlotsResponse:
        service_id = resource_id(request.service, "services", field="service")
        errors = Collector()
        start = convert.instant(request.start_time, "start_time", errors)
        end = convert.instant(request.end_time, "end_time", errors)
        errors.check()
        listing = await self._catalog.list_slots(service_id, start, end, request.seats)
        # Slots that share a price share one Quote object (see Catalog.price): one message each. Each
        # slot is filled in place in the response; building sub-messages and passing them in copies them.
        prices: dict[int, catalog_pb2.PriceQuote] = {}
        response = catalog_pb2.ListSlotsResponse()
        add_slot = response.slots.add
        if listing.bookable_from is not None and listing.bookable_until is not None:
            set_timestamp(response.bookable_start_time, listing.bookable_from)
            set_timestamp(response.bookable_end_time, listing.bookable_until)
        for p in listing.slots:
            price = prices.get(id(p.quote))
            if price is None:
                price = prices[id(p.quote)] = convert.quote_to_proto(p.quote)
            slot = add_slot(capacity=p.slot.capacity, remaining_seats=max(p.slot.capacity - p.slot.seats_taken, 0))
            set_timestamp(slot.start_time, p.slot.start_at)
            set_timestamp(slot.end_time, p.slot.end_at)
            slot.price.CopyFrom(price)
        return response

    async def QuotePrice(self, request: catalog_pb2.QuotePriceRequest, context: Any) -> catalog_pb2.QuotePriceResponse:
        service_id = resource_id(request.service, "services", field="service")
        errors = Collector()
        start = convert.instant(request.start_time, "start_time", errors)
        errors.check()
        quote = await self._catalog.quote(service_id, start, request.seats)
        return catalog_pb2.QuotePriceResponse(quote=convert.quote_to_proto(quote))


def _availability_service(name: str, field: str) -> Any:
    suffix = "/availability"
    if not name.endswith(suffix):
        raise InvalidArgument.single(field, "must look like services/{id}/availability")
    return resource_id(name.removesuffix(suffix), "services", field=field)
