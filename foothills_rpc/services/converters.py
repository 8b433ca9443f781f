"""Proto <-> domain conversions shared by the servicers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from foothills.auth.v1 import user_pb2
from foothills_rpc.db.models import User
from foothills_rpc.domain.errors import Collector, InvalidArgument
from foothills_rpc.domain.users import Role

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CANONICAL_ID = re.compile(r"^[0-9a-f]{32}$")
ROLE_TO_PROTO = {Role.CUSTOMER: user_pb2.ROLE_CUSTOMER, Role.PROVIDER: user_pb2.ROLE_PROVIDER,
                 Role.ADMIN: user_pb2.ROLE_ADMIN}
ROLE_FROM_PROTO = {value: role for role, value in ROLE_TO_PROTO.items()}


def timestamp(instant: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    set_timestamp(message, instant)
    return message


def set_timestamp(target: timestamp_pb2.Timestamp, instant: datetime) -> None:
    """Sets `target` to `instant` in place: filling a field of a message already in its parent costs
    far less than building a Timestamp and copying it in (the hot list paths do this per row)."""
    # timedelta normalises like Timestamp (whole seconds may be negative, the fraction never is), and
    # is several times cheaper than Timestamp.FromDatetime.
    since = instant - _EPOCH
    target.seconds = since.days * 86_400 + since.seconds
    target.nanos = since.microseconds * 1000


def resource_id(name: str, collection: str, *, field: str = "name") -> uuid.UUID:
    """The id in `<collection>/<id>`; INVALID_ARGUMENT naming `field` when malformed."""
    prefix = f"{collection}/"
    if not name:
        raise InvalidArgument.single(field, "is required")
    if not name.startswith(prefix):
        raise InvalidArgument.single(field, f"must look like {prefix}{{id}}")
    raw = name[len(prefix):]
    if not _CANONICAL_ID.match(raw):  # one spelling per id: 32 lower-case hex digits
        raise InvalidArgument.single(field, f"must look like {prefix}{{id}}")
    return uuid.UUID(hex=raw)


def optional_id(name: str, collection: str, field: str, errors: Collector, *,
                required: bool = False) -> uuid.UUID | None:
    """The id in `name`, None when empty; a malformed name (or a missing required one) is recorded in
    `errors`, so it is reported with every other bad field."""
    if not name:
        if required:
            errors.add(field, "is required")
        return None
    try:
        return resource_id(name, collection, field=field)
    except InvalidArgument as error:
        errors.violations.extend(error.violations)
        return None


def update_mask_paths(paths: list[str], allowed: Collection[str], field: str = "update_mask") -> list[str]:
    """The fields an update names; INVALID_ARGUMENT for none, or for one that cannot be changed."""
    if not paths:
        raise InvalidArgument.single(field, "name at least one field to change")
    if unknown := [p for p in paths if p not in allowed]:
        raise InvalidArgument.single(field, f"cannot change {', '.join(unknown)}; editable: {', '.join(allowed)}")
    return paths


def user_name(user_id: uuid.UUID) -> str:
    return f"users/{user_id.hex}"


def role_from_proto(value: int, *, field: str = "role") -> Role:
    role = ROLE_FROM_PROTO.get(value)  # type: ignore[call-overload]
    if role is None:
        raise InvalidArgument.single(field, "must be ROLE_CUSTOMER, ROLE_PROVIDER or ROLE_ADMIN")
    return role


def user_to_proto(user: User) -> user_pb2.User:
    return user_pb2.User(
        name=user_name(user.id),
        email=user.email,
        display_name=user.display_name,
        phone=user.phone,
        time_zone=user.time_zone,
        locale=user.locale,
        reminders_enabled=user.reminders_enabled,
        notices_enabled=user.notices_enabled,
        role=ROLE_TO_PROTO[Role(user.role)],
        disabled=user.disabled,
        create_time=timestamp(user.created_at),
        update_time=timestamp(user.updated_at),
    )
