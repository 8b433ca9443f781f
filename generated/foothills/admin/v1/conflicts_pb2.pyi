from foothills.booking.v1 import booking_pb2 as _booking_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConflictReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFLICT_REASON_UNSPECIFIED: _ClassVar[ConflictReason]
    CONFLICT_REASON_OUTSIDE_AVAILABILITY: _ClassVar[ConflictReason]
    CONFLICT_REASON_OVER_CAPACITY: _ClassVar[ConflictReason]
    CONFLICT_REASON_SERVICE_ARCHIVED: _ClassVar[ConflictReason]
    CONFLICT_REASON_PROVIDER_DISABLED: _ClassVar[ConflictReason]
    CONFLICT_REASON_CUSTOMER_DISABLED: _ClassVar[ConflictReason]
CONFLICT_REASON_UNSPECIFIED: ConflictReason
CONFLICT_REASON_OUTSIDE_AVAILABILITY: ConflictReason
CONFLICT_REASON_OVER_CAPACITY: ConflictReason
CONFLICT_REASON_SERVICE_ARCHIVED: ConflictReason
CONFLICT_REASON_PROVIDER_DISABLED: ConflictReason
CONFLICT_REASON_CUSTOMER_DISABLED: ConflictReason

class Conflict(_message.Message):
    __slots__ = ("booking", "reasons")
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    booking: _booking_pb2.Booking
    reasons: _containers.RepeatedScalarFieldContainer[ConflictReason]
    def __init__(self, booking: _Optional[_Union[_booking_pb2.Booking, _Mapping]] = ..., reasons: _Optional[_Iterable[_Union[ConflictReason, str]]] = ...) -> None: ...
