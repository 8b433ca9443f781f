import datetime

from foothills.booking.v1 import booking_pb2 as _booking_pb2
from foothills.type.v1 import types_pb2 as _types_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsGrouping(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATS_GROUPING_UNSPECIFIED: _ClassVar[StatsGrouping]
    STATS_GROUPING_DAY: _ClassVar[StatsGrouping]
    STATS_GROUPING_WEEK: _ClassVar[StatsGrouping]
    STATS_GROUPING_MONTH: _ClassVar[StatsGrouping]
    STATS_GROUPING_SERVICE: _ClassVar[StatsGrouping]
    STATS_GROUPING_CATEGORY: _ClassVar[StatsGrouping]
    STATS_GROUPING_PROVIDER: _ClassVar[StatsGrouping]
    STATS_GROUPING_STATUS: _ClassVar[StatsGrouping]
STATS_GROUPING_UNSPECIFIED: StatsGrouping
STATS_GROUPING_DAY: StatsGrouping
STATS_GROUPING_WEEK: StatsGrouping
STATS_GROUPING_MONTH: StatsGrouping
STATS_GROUPING_SERVICE: StatsGrouping
STATS_GROUPING_CATEGORY: StatsGrouping
STATS_GROUPING_PROVIDER: StatsGrouping
STATS_GROUPING_STATUS: StatsGrouping

class BookingStats(_message.Message):
    __slots__ = ("key", "label", "bookings", "pending", "confirmed", "cancelled", "completed", "revenue", "cancellation_rate", "booked_seats", "offered_seats", "utilisation")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BOOKINGS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_RATE_FIELD_NUMBER: _ClassVar[int]
    BOOKED_SEATS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_SEATS_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_FIELD_NUMBER: _ClassVar[int]
    key: str
    label: str
    bookings: int
    pending: int
    confirmed: int
    cancelled: int
    completed: int
    revenue: _containers.RepeatedCompositeFieldContainer[_types_pb2.Money]
    cancellation_rate: float
    booked_seats: int
    offered_seats: int
    utilisation: float
    def __init__(self, key: _Optional[str] = ..., label: _Optional[str] = ..., bookings: _Optional[int] = ..., pending: _Optional[int] = ..., confirmed: _Optional[int] = ..., cancelled: _Optional[int] = ..., completed: _Optional[int] = ..., revenue: _Optional[_Iterable[_Union[_types_pb2.Money, _Mapping]]] = ..., cancellation_rate: _Optional[float] = ..., booked_seats: _Optional[int] = ..., offered_seats: _Optional[int] = ..., utilisation: _Optional[float] = ...) -> None: ...

class TopService(_message.Message):
    __slots__ = ("service", "display_name", "bookings")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BOOKINGS_FIELD_NUMBER: _ClassVar[int]
    service: str
    display_name: str
    bookings: int
    def __init__(self, service: _Optional[str] = ..., display_name: _Optional[str] = ..., bookings: _Optional[int] = ...) -> None: ...

class BookingRow(_message.Message):
    __slots__ = ("booking", "service", "service_display_name", "category", "customer", "provider", "start_time", "end_time", "seats", "status", "total_price", "cancellation_fee", "create_time", "category_display_name", "customer_email", "customer_display_name", "provider_display_name")
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_FEE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    booking: str
    service: str
    service_display_name: str
    category: str
    customer: str
    provider: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    seats: int
    status: _booking_pb2.BookingStatus
    total_price: _types_pb2.Money
    cancellation_fee: _types_pb2.Money
    create_time: _timestamp_pb2.Timestamp
    category_display_name: str
    customer_email: str
    customer_display_name: str
    provider_display_name: str
    def __init__(self, booking: _Optional[str] = ..., service: _Optional[str] = ..., service_display_name: _Optional[str] = ..., category: _Optional[str] = ..., customer: _Optional[str] = ..., provider: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ..., status: _Optional[_Union[_booking_pb2.BookingStatus, str]] = ..., total_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., cancellation_fee: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., category_display_name: _Optional[str] = ..., customer_email: _Optional[str] = ..., customer_display_name: _Optional[str] = ..., provider_display_name: _Optional[str] = ...) -> None: ...
