"""Builders for catalog tests: categories, services and availability through the real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc.domain.users import Role
from tests.conftest import Caller, Running

WEEKDAYS = [types_pb2.DAY_OF_WEEK_MONDAY, types_pb2.DAY_OF_WEEK_TUESDAY, types_pb2.DAY_OF_WEEK_WEDNESDAY,
            types_pb2.DAY_OF_WEEK_THURSDAY, types_pb2.DAY_OF_WEEK_FRIDAY]


def duration(**kwargs: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(**kwargs))
    return message


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def at(text: str) -> datetime:
    """An aware UTC instant from ISO text (`2030-01-07T09:00`)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hours(start: str, end: str) -> types_pb2.TimeRange:
    (sh, sm), (eh, em) = (map(int, start.split(":")), map(int, end.split(":")))
    return types_pb2.TimeRange(start_time=types_pb2.TimeOfDay(hours=sh, minutes=sm),
                               end_time=types_pb2.TimeOfDay(hours=eh, minutes=em))


def weekly(days: list[int], start: str, end: str) -> list[catalog_pb2.WeeklyWindow]:
    return [catalog_pb2.WeeklyWindow(day_of_week=day, hours=hours(start, end)) for day in days]


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def service_message(category_name: str, **fields: object) -> catalog_pb2.Service:
    defaults: dict[str, object] = {
        "display_name": "Deep tissue massage", "description": "Sixty minutes of firm pressure.",
        "category": category_name, "duration": duration(minutes=60), "capacity": 1,
        "base_price": types_pb2.Money(amount_minor=5000, currency_code="EUR"), "time_zone": "Europe/London",
        "booking_settings": catalog_pb2.BookingSettings(minimum_notice=duration(hours=1), maximum_days_ahead=60),
    }
    defaults.update(fields)
    return catalog_pb2.Service(**defaults)  # type: ignore[arg-type]


class CatalogWorld:
    """An admin, a provider and a category, ready for services."""

    def __init__(self, running: Running, admin: Caller, provider: Caller, category: str) -> None:
        self.running = running
        self.admin = admin
        self.provider = provider
        self.category = category

    @classmethod
    async def create(cls, running: Running) -> CatalogWorld:
        admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
        provider = await running.signed_in("provider@example.com", role=Role.PROVIDER)
        category = await running.catalog.CreateCategory(catalog_pb2.CreateCategoryRequest(
            category=catalog_pb2.Category(display_name="Massage")), metadata=admin.metadata)
        return cls(running, admin, provider, category.category.name)

    async def service(self, *, by: Caller | None = None, availability: list[catalog_pb2.WeeklyWindow] | None = None,
                      **fields: object) -> catalog_pb2.Service:
        """Creates a service (as the provider by default), with Mon-Fri 09:00-17:00 unless told otherwise."""
        by = by or self.provider
        created = (await self.running.catalog.CreateService(catalog_pb2.CreateServiceRequest(
            service=service_message(self.category, **fields)), metadata=by.metadata)).service
        windows = weekly(WEEKDAYS, "09:00", "17:00") if availability is None else availability
        if windows:
            await self.running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(
                availability=catalog_pb2.Availability(name=f"{created.name}/availability", weekly_windows=windows)),
                metadata=by.metadata)
            created = (await self.running.catalog.GetService(catalog_pb2.GetServiceRequest(name=created.name))).service
        return created

    async def slots(self, service: str, start: datetime, end: datetime, seats: int = 0) -> list[catalog_pb2.Slot]:
        return list((await self.running.catalog.ListSlots(catalog_pb2.ListSlotsRequest(
            service=service, start_time=ts(start), end_time=ts(end), seats=seats))).slots)
