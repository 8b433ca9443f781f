import datetime

from foothills.catalog.v1 import catalog_pb2 as _catalog_pb2
from foothills.type.v1 import types_pb2 as _types_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BookingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOKING_STATUS_UNSPECIFIED: _ClassVar[BookingStatus]
    BOOKING_STATUS_PENDING: _ClassVar[BookingStatus]
    BOOKING_STATUS_CONFIRMED: _ClassVar[BookingStatus]
    BOOKING_STATUS_CANCELLED: _ClassVar[BookingStatus]
    BOOKING_STATUS_COMPLETED: _ClassVar[BookingStatus]

class BookingOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOKING_ORDER_UNSPECIFIED: _ClassVar[BookingOrder]
    BOOKING_ORDER_NEWEST_FIRST: _ClassVar[BookingOrder]
    BOOKING_ORDER_SOONEST_FIRST: _ClassVar[BookingOrder]

class BookingEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOKING_EVENT_TYPE_UNSPECIFIED: _ClassVar[BookingEventType]
    BOOKING_EVENT_TYPE_CREATED: _ClassVar[BookingEventType]
    BOOKING_EVENT_TYPE_CONFIRMED: _ClassVar[BookingEventType]
    BOOKING_EVENT_TYPE_CANCELLED: _ClassVar[BookingEventType]
    BOOKING_EVENT_TYPE_RESCHEDULED: _ClassVar[BookingEventType]
    BOOKING_EVENT_TYPE_COMPLETED: _ClassVar[BookingEventType]

class HoldState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_STATE_UNSPECIFIED: _ClassVar[HoldState]
    HOLD_STATE_ACTIVE: _ClassVar[HoldState]
    HOLD_STATE_USED: _ClassVar[HoldState]
    HOLD_STATE_RELEASED: _ClassVar[HoldState]
    HOLD_STATE_EXPIRED: _ClassVar[HoldState]

class WaitlistEntryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WAITLIST_ENTRY_STATE_UNSPECIFIED: _ClassVar[WaitlistEntryState]
    WAITLIST_ENTRY_STATE_WAITING: _ClassVar[WaitlistEntryState]
    WAITLIST_ENTRY_STATE_OFFERED: _ClassVar[WaitlistEntryState]
    WAITLIST_ENTRY_STATE_BOOKED: _ClassVar[WaitlistEntryState]
    WAITLIST_ENTRY_STATE_LEFT: _ClassVar[WaitlistEntryState]
    WAITLIST_ENTRY_STATE_OFFER_EXPIRED: _ClassVar[WaitlistEntryState]
    WAITLIST_ENTRY_STATE_CLOSED: _ClassVar[WaitlistEntryState]
BOOKING_STATUS_UNSPECIFIED: BookingStatus
BOOKING_STATUS_PENDING: BookingStatus
BOOKING_STATUS_CONFIRMED: BookingStatus
BOOKING_STATUS_CANCELLED: BookingStatus
BOOKING_STATUS_COMPLETED: BookingStatus
BOOKING_ORDER_UNSPECIFIED: BookingOrder
BOOKING_ORDER_NEWEST_FIRST: BookingOrder
BOOKING_ORDER_SOONEST_FIRST: BookingOrder
BOOKING_EVENT_TYPE_UNSPECIFIED: BookingEventType
BOOKING_EVENT_TYPE_CREATED: BookingEventType
BOOKING_EVENT_TYPE_CONFIRMED: BookingEventType
BOOKING_EVENT_TYPE_CANCELLED: BookingEventType
BOOKING_EVENT_TYPE_RESCHEDULED: BookingEventType
BOOKING_EVENT_TYPE_COMPLETED: BookingEventType
HOLD_STATE_UNSPECIFIED: HoldState
HOLD_STATE_ACTIVE: HoldState
HOLD_STATE_USED: HoldState
HOLD_STATE_RELEASED: HoldState
HOLD_STATE_EXPIRED: HoldState
WAITLIST_ENTRY_STATE_UNSPECIFIED: WaitlistEntryState
WAITLIST_ENTRY_STATE_WAITING: WaitlistEntryState
WAITLIST_ENTRY_STATE_OFFERED: WaitlistEntryState
WAITLIST_ENTRY_STATE_BOOKED: WaitlistEntryState
WAITLIST_ENTRY_STATE_LEFT: WaitlistEntryState
WAITLIST_ENTRY_STATE_OFFER_EXPIRED: WaitlistEntryState
WAITLIST_ENTRY_STATE_CLOSED: WaitlistEntryState

class Booking(_message.Message):
    __slots__ = ("name", "service", "customer", "provider", "start_time", "end_time", "seats", "status", "price", "cancellation_policy", "cancellation_fee", "cancel_reason", "notes", "reschedule_count", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_FEE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    RESCHEDULE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    service: str
    customer: str
    provider: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    seats: int
    status: BookingStatus
    price: _catalog_pb2.PriceQuote
    cancellation_policy: _catalog_pb2.CancellationPolicy
    cancellation_fee: _types_pb2.Money
    cancel_reason: str
    notes: str
    reschedule_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., service: _Optional[str] = ..., customer: _Optional[str] = ..., provider: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ..., status: _Optional[_Union[BookingStatus, str]] = ..., price: _Optional[_Union[_catalog_pb2.PriceQuote, _Mapping]] = ..., cancellation_policy: _Optional[_Union[_catalog_pb2.CancellationPolicy, _Mapping]] = ..., cancellation_fee: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., cancel_reason: _Optional[str] = ..., notes: _Optional[str] = ..., reschedule_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateBookingRequest(_message.Message):
    __slots__ = ("service", "start_time", "seats", "notes", "request_id", "expected_total_price", "hold", "customer")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_TOTAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    service: str
    start_time: _timestamp_pb2.Timestamp
    seats: int
    notes: str
    request_id: str
    expected_total_price: _types_pb2.Money
    hold: str
    customer: str
    def __init__(self, service: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ..., notes: _Optional[str] = ..., request_id: _Optional[str] = ..., expected_total_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., hold: _Optional[str] = ..., customer: _Optional[str] = ...) -> None: ...

class CreateBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: Booking
    def __init__(self, booking: _Optional[_Union[Booking, _Mapping]] = ...) -> None: ...

class GetBookingRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: Booking
    def __init__(self, booking: _Optional[_Union[Booking, _Mapping]] = ...) -> None: ...

class ListBookingsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "statuses", "start_after", "start_before", "service", "customer", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    START_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[BookingStatus]
    start_after: _timestamp_pb2.Timestamp
    start_before: _timestamp_pb2.Timestamp
    service: str
    customer: str
    order_by: BookingOrder
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[BookingStatus, str]]] = ..., start_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., service: _Optional[str] = ..., customer: _Optional[str] = ..., order_by: _Optional[_Union[BookingOrder, str]] = ...) -> None: ...

class ListBookingsResponse(_message.Message):
    __slots__ = ("bookings", "next_page_token")
    BOOKINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    bookings: _containers.RepeatedCompositeFieldContainer[Booking]
    next_page_token: str
    def __init__(self, bookings: _Optional[_Iterable[_Union[Booking, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelBookingRequest(_message.Message):
    __slots__ = ("name", "reason", "override_policy", "request_id", "validate_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_POLICY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    override_policy: bool
    request_id: str
    validate_only: bool
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ..., override_policy: _Optional[bool] = ..., request_id: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CancelBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: Booking
    def __init__(self, booking: _Optional[_Union[Booking, _Mapping]] = ...) -> None: ...

class RescheduleBookingRequest(_message.Message):
    __slots__ = ("name", "new_start_time", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEW_START_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    new_start_time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, name: _Optional[str] = ..., new_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RescheduleBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: Booking
    def __init__(self, booking: _Optional[_Union[Booking, _Mapping]] = ...) -> None: ...

class ConfirmBookingRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ConfirmBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: Booking
    def __init__(self, booking: _Optional[_Union[Booking, _Mapping]] = ...) -> None: ...

class CompleteBookingRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CompleteBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: Booking
    def __init__(self, booking: _Optional[_Union[Booking, _Mapping]] = ...) -> None: ...

class WatchBookingsRequest(_message.Message):
    __slots__ = ("after_event_id",)
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    after_event_id: str
    def __init__(self, after_event_id: _Optional[str] = ...) -> None: ...

class WatchBookingsResponse(_message.Message):
    __slots__ = ("event_id", "type", "booking", "event_time")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: BookingEventType
    booking: Booking
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[_Union[BookingEventType, str]] = ..., booking: _Optional[_Union[Booking, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("name", "service", "customer", "start_time", "end_time", "seats", "state", "price", "expire_time", "booking", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    service: str
    customer: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    seats: int
    state: HoldState
    price: _catalog_pb2.PriceQuote
    expire_time: _timestamp_pb2.Timestamp
    booking: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., service: _Optional[str] = ..., customer: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ..., state: _Optional[_Union[HoldState, str]] = ..., price: _Optional[_Union[_catalog_pb2.PriceQuote, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., booking: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HoldSlotRequest(_message.Message):
    __slots__ = ("service", "start_time", "seats", "request_id")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    service: str
    start_time: _timestamp_pb2.Timestamp
    seats: int
    request_id: str
    def __init__(self, service: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class HoldSlotResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ...) -> None: ...

class GetHoldRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetHoldResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ...) -> None: ...

class ReleaseHoldRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ReleaseHoldResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ...) -> None: ...

class WaitlistEntry(_message.Message):
    __slots__ = ("name", "service", "customer", "start_time", "seats", "state", "hold", "offer_expire_time", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    service: str
    customer: str
    start_time: _timestamp_pb2.Timestamp
    seats: int
    state: WaitlistEntryState
    hold: str
    offer_expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., service: _Optional[str] = ..., customer: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ..., state: _Optional[_Union[WaitlistEntryState, str]] = ..., hold: _Optional[str] = ..., offer_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JoinWaitlistRequest(_message.Message):
    __slots__ = ("service", "start_time", "seats")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    service: str
    start_time: _timestamp_pb2.Timestamp
    seats: int
    def __init__(self, service: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ...) -> None: ...

class JoinWaitlistResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: WaitlistEntry
    def __init__(self, entry: _Optional[_Union[WaitlistEntry, _Mapping]] = ...) -> None: ...

class ListWaitlistEntriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "service")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    service: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., service: _Optional[str] = ...) -> None: ...

class ListWaitlistEntriesResponse(_message.Message):
    __slots__ = ("waitlist_entries", "next_page_token")
    WAITLIST_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    waitlist_entries: _containers.RepeatedCompositeFieldContainer[WaitlistEntry]
    next_page_token: str
    def __init__(self, waitlist_entries: _Optional[_Iterable[_Union[WaitlistEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class LeaveWaitlistRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LeaveWaitlistResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: WaitlistEntry
    def __init__(self, entry: _Optional[_Union[WaitlistEntry, _Mapping]] = ...) -> None: ...
