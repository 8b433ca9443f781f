"""Request checks every RPC needs before any servicer sees the request."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from foothills_rpc.domain.cancellation import MAX_TIERS
from foothills_rpc.domain.catalog import MAX_REMINDERS
from foothills_rpc.domain.errors import FieldViolation
from foothills_rpc.domain.pricing import MAX_RULES
from foothills_rpc.domain.slots import MAX_OVERRIDES, MAX_RANGES_PER_OVERRIDE, MAX_WEEKLY_WINDOWS

MAX_DEPTH = 16
# The most items a repeated field of a request may carry, checked before any item is read: converting
# or validating a million items first would let one caller stall the process. A repeated enum may hold
# each of its values once (its limit is the number of values); every other repeated field a request
# can reach is listed here, and its comment in the protos states the same limit (both are tested).
MAX_ITEMS = {
    "foothills.catalog.v1.Availability.weekly_windows": MAX_WEEKLY_WINDOWS,
    "foothills.catalog.v1.Availability.overrides": MAX_OVERRIDES,
    "foothills.catalog.v1.DateOverride.hours": MAX_RANGES_PER_OVERRIDE,
    "foothills.catalog.v1.CancellationPolicy.tiers": MAX_TIERS,
    "foothills.catalog.v1.PricingPolicy.rules": MAX_RULES,
    "foothills.catalog.v1.Reminders.before_start": MAX_REMINDERS,
    "google.protobuf.FieldMask.paths": 20,
}
# A repeated field nobody listed yet (google.protobuf.Struct's, say); the test that checks every field a
# request can reach fails until it has its own entry.
DEFAULT_MAX_ITEMS = 100
_SCANNED = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE)


def max_items(field: FieldDescriptor) -> int:
    if field.enum_type is not None:
        return len([value for value in field.enum_type.values if value.number != 0])
    return MAX_ITEMS.get(field.full_name, DEFAULT_MAX_ITEMS)


def request_violations(message: Message, prefix: str = "", depth: int = 0) -> list[FieldViolation]:
    """Repeated fields over their limit, and fields holding a NUL character (no field of ours may, and
    PostgreSQL text cannot store one). Items of an oversized field are not looked at."""
    found: list[FieldViolation] = []
    if depth > MAX_DEPTH:
        return found
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.is_repeated:
            limit = max_items(field)
            if len(value) > limit:
                found.append(FieldViolation(path, f"must have at most {limit} items", "TOO_MANY"))
                continue
            if field.type not in _SCANNED:
                continue
            items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        else:
            items = [(path, value)]
        for item_path, item in items:
            if field.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                found.append(FieldViolation(item_path, "must not contain NUL characters"))
            elif field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(item, Message):
                found.extend(request_violations(item, f"{item_path}.", depth + 1))
    return found
