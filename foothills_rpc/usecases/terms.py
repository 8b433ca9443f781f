"""Terms: when a slot of a service may be booked (its minimum notice and horizon) and what it costs.
Catalog, admission, holds, bookings and the waiting line's offers all ask this one object, so none of
them needs another's use case for it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from foothills_rpc.config import Settings
from foothills_rpc.db import catalog as repo
from foothills_rpc.db.models import Service, Slot
from foothills_rpc.domain.catalog import ServiceSpec
from foothills_rpc.domain.pricing import Quote, applicable_rules, price_of


class Terms:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings  # the platform defaults, for services that set none

    def price(self, service: Service, slot: Slot | repo.OpenSlot, *, seats: int, now: datetime,
              spec: ServiceSpec | None = None, prices: dict[tuple[int, ...], Quote] | None = None) -> Quote:
        """The one pricing function: slots, quotes and bookings all price through here. `spec`: the
        service's, when the caller already has it; `prices`: the quotes of this service, `seats` and
        `now` so far, by the rules that applied (a week of slots shares a handful of prices)."""
        spec = spec or repo.spec_of(service)
        applied = applicable_rules(spec.pricing, slot_start=slot.start_at, zone=ZoneInfo(spec.time_zone), now=now,
                                   seats_taken=slot.seats_taken, capacity=slot.capacity)
        found = None if prices is None else prices.get(applied)
        if found is None:
            found = price_of(base_unit_minor=spec.base_price_minor, currency=spec.currency, policy=spec.pricing,
                             applied=applied, seats=seats)
            if prices is not None:
                prices[applied] = found
        return found

    def minimum_notice(self, service: Service) -> timedelta:
        if service.minimum_notice_seconds is None:
            return self._settings.default_minimum_notice
        return timedelta(seconds=service.minimum_notice_seconds)

    def horizon(self, service: Service, now: datetime) -> datetime:
        """The latest instant a booking may start at, as of `now`."""
        days = service.maximum_days_ahead or self._settings.default_maximum_days_ahead
        return now + timedelta(days=days)
