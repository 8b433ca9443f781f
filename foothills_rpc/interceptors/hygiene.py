"""Request checks every RPC needs before any servicer sees the request."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from foothills_rpc.domain.errors import FieldViolation

MAX_DEPTH = 16


def nul_characters(message: Message, prefix: str = "", depth: int = 0) -> list[FieldViolation]:
    """Fields holding a NUL character: no field of ours may, and PostgreSQL text cannot store one."""
    found: list[FieldViolation] = []
    if depth > MAX_DEPTH:
        return found
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        repeated = field.is_repeated
        values = list(value) if repeated else [value]
        for index, item in enumerate(values):
            item_path = f"{path}[{index}]" if repeated else path
            if field.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                found.append(FieldViolation(item_path, "must not contain NUL characters"))
            elif field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(item, Message):
                found.extend(nul_characters(item, f"{item_path}.", depth + 1))
    return found
