"""The pure rules of a service's settings that the API's own checks do not reach first."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from foothills_rpc.domain.catalog import BookingSettings, ServiceSpec, validate_service
from foothills_rpc.domain.errors import Collector

SPEC = ServiceSpec(display_name="Yoga", description="", duration=timedelta(hours=1), capacity=1,
                   base_price_minor=1000, currency="EUR", time_zone="Europe/London")


def _problems(spec: ServiceSpec) -> list[tuple[str, str]]:
    errors = Collector()
    validate_service(spec, errors)
    return [(v.field, v.description) for v in errors.violations]


@pytest.mark.parametrize(("reminders", "said"), [
    # Six never reach this through the API (its hygiene check refuses them unread): other callers may.
    ((timedelta(hours=1),) * 6, "must have at most 5 items"),
    ((timedelta(seconds=90),), "each must be 1 minute to 30 days, whole minutes"),
    ((timedelta(days=31),), "each must be 1 minute to 30 days, whole minutes"),
    ((timedelta(hours=2), timedelta(hours=2)), "must all be different"),
])
def test_a_services_reminders_are_bounded(reminders: tuple[timedelta, ...], said: str) -> None:
    spec = replace(SPEC, booking=BookingSettings(reminders=reminders))
    assert _problems(spec) == [("service.booking_settings.reminders.before_start", said)]


def test_no_reminders_and_the_default_are_both_valid() -> None:
    assert _problems(replace(SPEC, booking=BookingSettings(reminders=()))) == []
    assert _problems(SPEC) == []
