import datetime

from foothills.type.v1 import types_pb2 as _types_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServiceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_STATE_UNSPECIFIED: _ClassVar[ServiceState]
    SERVICE_STATE_ACTIVE: _ClassVar[ServiceState]
    SERVICE_STATE_ARCHIVED: _ClassVar[ServiceState]
    SERVICE_STATE_SUSPENDED: _ClassVar[ServiceState]

class OverrideKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERRIDE_KIND_UNSPECIFIED: _ClassVar[OverrideKind]
    OVERRIDE_KIND_CLOSED: _ClassVar[OverrideKind]
    OVERRIDE_KIND_HOURS: _ClassVar[OverrideKind]
    OVERRIDE_KIND_EXTRA: _ClassVar[OverrideKind]

class ServiceOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_ORDER_UNSPECIFIED: _ClassVar[ServiceOrder]
    SERVICE_ORDER_NAME: _ClassVar[ServiceOrder]
    SERVICE_ORDER_PRICE: _ClassVar[ServiceOrder]
    SERVICE_ORDER_SOONEST_AVAILABLE: _ClassVar[ServiceOrder]
SERVICE_STATE_UNSPECIFIED: ServiceState
SERVICE_STATE_ACTIVE: ServiceState
SERVICE_STATE_ARCHIVED: ServiceState
SERVICE_STATE_SUSPENDED: ServiceState
OVERRIDE_KIND_UNSPECIFIED: OverrideKind
OVERRIDE_KIND_CLOSED: OverrideKind
OVERRIDE_KIND_HOURS: OverrideKind
OVERRIDE_KIND_EXTRA: OverrideKind
SERVICE_ORDER_UNSPECIFIED: ServiceOrder
SERVICE_ORDER_NAME: ServiceOrder
SERVICE_ORDER_PRICE: ServiceOrder
SERVICE_ORDER_SOONEST_AVAILABLE: ServiceOrder

class Category(_message.Message):
    __slots__ = ("name", "display_name", "description", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("name", "display_name", "description", "category", "provider", "duration", "capacity", "base_price", "time_zone", "booking_settings", "cancellation_policy", "pricing", "runs_without_provider", "state", "etag", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    BASE_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    BOOKING_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    PRICING_FIELD_NUMBER: _ClassVar[int]
    RUNS_WITHOUT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    category: str
    provider: str
    duration: _duration_pb2.Duration
    capacity: int
    base_price: _types_pb2.Money
    time_zone: str
    booking_settings: BookingSettings
    cancellation_policy: CancellationPolicy
    pricing: PricingPolicy
    runs_without_provider: bool
    state: ServiceState
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., category: _Optional[str] = ..., provider: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., capacity: _Optional[int] = ..., base_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., time_zone: _Optional[str] = ..., booking_settings: _Optional[_Union[BookingSettings, _Mapping]] = ..., cancellation_policy: _Optional[_Union[CancellationPolicy, _Mapping]] = ..., pricing: _Optional[_Union[PricingPolicy, _Mapping]] = ..., runs_without_provider: _Optional[bool] = ..., state: _Optional[_Union[ServiceState, str]] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BookingSettings(_message.Message):
    __slots__ = ("minimum_notice", "maximum_days_ahead", "buffer_before", "buffer_after", "requires_approval", "hold_duration", "max_bookings_per_day", "max_bookings_per_week", "max_bookings_per_month", "max_reschedules", "max_reschedule_distance", "waitlist_offer_duration", "reminders")
    MINIMUM_NOTICE_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_DAYS_AHEAD_FIELD_NUMBER: _ClassVar[int]
    BUFFER_BEFORE_FIELD_NUMBER: _ClassVar[int]
    BUFFER_AFTER_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    HOLD_DURATION_FIELD_NUMBER: _ClassVar[int]
    MAX_BOOKINGS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    MAX_BOOKINGS_PER_WEEK_FIELD_NUMBER: _ClassVar[int]
    MAX_BOOKINGS_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    MAX_RESCHEDULES_FIELD_NUMBER: _ClassVar[int]
    MAX_RESCHEDULE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    WAITLIST_OFFER_DURATION_FIELD_NUMBER: _ClassVar[int]
    REMINDERS_FIELD_NUMBER: _ClassVar[int]
    minimum_notice: _duration_pb2.Duration
    maximum_days_ahead: int
    buffer_before: _duration_pb2.Duration
    buffer_after: _duration_pb2.Duration
    requires_approval: bool
    hold_duration: _duration_pb2.Duration
    max_bookings_per_day: int
    max_bookings_per_week: int
    max_bookings_per_month: int
    max_reschedules: int
    max_reschedule_distance: _duration_pb2.Duration
    waitlist_offer_duration: _duration_pb2.Duration
    reminders: Reminders
    def __init__(self, minimum_notice: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., maximum_days_ahead: _Optional[int] = ..., buffer_before: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., buffer_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., requires_approval: _Optional[bool] = ..., hold_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_bookings_per_day: _Optional[int] = ..., max_bookings_per_week: _Optional[int] = ..., max_bookings_per_month: _Optional[int] = ..., max_reschedules: _Optional[int] = ..., max_reschedule_distance: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., waitlist_offer_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reminders: _Optional[_Union[Reminders, _Mapping]] = ...) -> None: ...

class Reminders(_message.Message):
    __slots__ = ("before_start",)
    BEFORE_START_FIELD_NUMBER: _ClassVar[int]
    before_start: _containers.RepeatedCompositeFieldContainer[_duration_pb2.Duration]
    def __init__(self, before_start: _Optional[_Iterable[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]]] = ...) -> None: ...

class CancellationPolicy(_message.Message):
    __slots__ = ("tiers",)
    TIERS_FIELD_NUMBER: _ClassVar[int]
    tiers: _containers.RepeatedCompositeFieldContainer[CancellationTier]
    def __init__(self, tiers: _Optional[_Iterable[_Union[CancellationTier, _Mapping]]] = ...) -> None: ...

class CancellationTier(_message.Message):
    __slots__ = ("before_start", "fee_bps", "refused")
    BEFORE_START_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    before_start: _duration_pb2.Duration
    fee_bps: int
    refused: bool
    def __init__(self, before_start: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., fee_bps: _Optional[int] = ..., refused: _Optional[bool] = ...) -> None: ...

class PricingPolicy(_message.Message):
    __slots__ = ("rules", "floor_minor", "ceiling_minor")
    RULES_FIELD_NUMBER: _ClassVar[int]
    FLOOR_MINOR_FIELD_NUMBER: _ClassVar[int]
    CEILING_MINOR_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[PricingRule]
    floor_minor: int
    ceiling_minor: int
    def __init__(self, rules: _Optional[_Iterable[_Union[PricingRule, _Mapping]]] = ..., floor_minor: _Optional[int] = ..., ceiling_minor: _Optional[int] = ...) -> None: ...

class PricingRule(_message.Message):
    __slots__ = ("adjustment_bps", "label", "occupancy", "lead_time", "days_of_week", "hours_of_day")
    ADJUSTMENT_BPS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    OCCUPANCY_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_FIELD_NUMBER: _ClassVar[int]
    DAYS_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    HOURS_OF_DAY_FIELD_NUMBER: _ClassVar[int]
    adjustment_bps: int
    label: str
    occupancy: OccupancyCondition
    lead_time: LeadTimeCondition
    days_of_week: DaysOfWeekCondition
    hours_of_day: HoursOfDayCondition
    def __init__(self, adjustment_bps: _Optional[int] = ..., label: _Optional[str] = ..., occupancy: _Optional[_Union[OccupancyCondition, _Mapping]] = ..., lead_time: _Optional[_Union[LeadTimeCondition, _Mapping]] = ..., days_of_week: _Optional[_Union[DaysOfWeekCondition, _Mapping]] = ..., hours_of_day: _Optional[_Union[HoursOfDayCondition, _Mapping]] = ...) -> None: ...

class OccupancyCondition(_message.Message):
    __slots__ = ("min_occupancy_bps",)
    MIN_OCCUPANCY_BPS_FIELD_NUMBER: _ClassVar[int]
    min_occupancy_bps: int
    def __init__(self, min_occupancy_bps: _Optional[int] = ...) -> None: ...

class LeadTimeCondition(_message.Message):
    __slots__ = ("max_lead", "min_lead")
    MAX_LEAD_FIELD_NUMBER: _ClassVar[int]
    MIN_LEAD_FIELD_NUMBER: _ClassVar[int]
    max_lead: _duration_pb2.Duration
    min_lead: _duration_pb2.Duration
    def __init__(self, max_lead: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_lead: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class DaysOfWeekCondition(_message.Message):
    __slots__ = ("days",)
    DAYS_FIELD_NUMBER: _ClassVar[int]
    days: _containers.RepeatedScalarFieldContainer[_types_pb2.DayOfWeek]
    def __init__(self, days: _Optional[_Iterable[_Union[_types_pb2.DayOfWeek, str]]] = ...) -> None: ...

class HoursOfDayCondition(_message.Message):
    __slots__ = ("start_hour", "end_hour")
    START_HOUR_FIELD_NUMBER: _ClassVar[int]
    END_HOUR_FIELD_NUMBER: _ClassVar[int]
    start_hour: int
    end_hour: int
    def __init__(self, start_hour: _Optional[int] = ..., end_hour: _Optional[int] = ...) -> None: ...

class Availability(_message.Message):
    __slots__ = ("name", "weekly_windows", "overrides")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEEKLY_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    name: str
    weekly_windows: _containers.RepeatedCompositeFieldContainer[WeeklyWindow]
    overrides: _containers.RepeatedCompositeFieldContainer[DateOverride]
    def __init__(self, name: _Optional[str] = ..., weekly_windows: _Optional[_Iterable[_Union[WeeklyWindow, _Mapping]]] = ..., overrides: _Optional[_Iterable[_Union[DateOverride, _Mapping]]] = ...) -> None: ...

class WeeklyWindow(_message.Message):
    __slots__ = ("day_of_week", "hours")
    DAY_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    day_of_week: _types_pb2.DayOfWeek
    hours: _types_pb2.TimeRange
    def __init__(self, day_of_week: _Optional[_Union[_types_pb2.DayOfWeek, str]] = ..., hours: _Optional[_Union[_types_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class DateOverride(_message.Message):
    __slots__ = ("date", "kind", "hours")
    DATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    date: _types_pb2.Date
    kind: OverrideKind
    hours: _containers.RepeatedCompositeFieldContainer[_types_pb2.TimeRange]
    def __init__(self, date: _Optional[_Union[_types_pb2.Date, _Mapping]] = ..., kind: _Optional[_Union[OverrideKind, str]] = ..., hours: _Optional[_Iterable[_Union[_types_pb2.TimeRange, _Mapping]]] = ...) -> None: ...

class Slot(_message.Message):
    __slots__ = ("start_time", "end_time", "capacity", "remaining_seats", "price")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_SEATS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    capacity: int
    remaining_seats: int
    price: PriceQuote
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., capacity: _Optional[int] = ..., remaining_seats: _Optional[int] = ..., price: _Optional[_Union[PriceQuote, _Mapping]] = ...) -> None: ...

class PriceQuote(_message.Message):
    __slots__ = ("base_unit_price", "adjustments", "unit_price", "seats", "total_price")
    BASE_UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENTS_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    base_unit_price: _types_pb2.Money
    adjustments: _containers.RepeatedCompositeFieldContainer[PriceAdjustment]
    unit_price: _types_pb2.Money
    seats: int
    total_price: _types_pb2.Money
    def __init__(self, base_unit_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., adjustments: _Optional[_Iterable[_Union[PriceAdjustment, _Mapping]]] = ..., unit_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ..., seats: _Optional[int] = ..., total_price: _Optional[_Union[_types_pb2.Money, _Mapping]] = ...) -> None: ...

class PriceAdjustment(_message.Message):
    __slots__ = ("label", "amount")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    label: str
    amount: _types_pb2.Money
    def __init__(self, label: _Optional[str] = ..., amount: _Optional[_Union[_types_pb2.Money, _Mapping]] = ...) -> None: ...

class CreateCategoryRequest(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: Category
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ...) -> None: ...

class CreateCategoryResponse(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: Category
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ...) -> None: ...

class GetCategoryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCategoryResponse(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: Category
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ...) -> None: ...

class ListCategoriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCategoriesResponse(_message.Message):
    __slots__ = ("categories", "next_page_token")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedCompositeFieldContainer[Category]
    next_page_token: str
    def __init__(self, categories: _Optional[_Iterable[_Union[Category, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCategoryRequest(_message.Message):
    __slots__ = ("category", "update_mask")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    category: Category
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateCategoryResponse(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: Category
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ...) -> None: ...

class DeleteCategoryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCategoryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateServiceRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: Service
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ...) -> None: ...

class CreateServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: Service
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ...) -> None: ...

class GetServiceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: Service
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "query", "category", "provider", "min_price_minor", "max_price_minor", "currency_code", "available_after", "available_before", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    query: str
    category: str
    provider: str
    min_price_minor: int
    max_price_minor: int
    currency_code: str
    available_after: _timestamp_pb2.Timestamp
    available_before: _timestamp_pb2.Timestamp
    order_by: ServiceOrder
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., query: _Optional[str] = ..., category: _Optional[str] = ..., provider: _Optional[str] = ..., min_price_minor: _Optional[int] = ..., max_price_minor: _Optional[int] = ..., currency_code: _Optional[str] = ..., available_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., available_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., order_by: _Optional[_Union[ServiceOrder, str]] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services", "next_page_token")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[Service]
    next_page_token: str
    def __init__(self, services: _Optional[_Iterable[_Union[Service, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateServiceRequest(_message.Message):
    __slots__ = ("service", "update_mask", "validate_only")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    service: Service
    update_mask: _field_mask_pb2.FieldMask
    validate_only: bool
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class UpdateServiceResponse(_message.Message):
    __slots__ = ("service", "stranded_bookings", "stranded_booking_count")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STRANDED_BOOKINGS_FIELD_NUMBER: _ClassVar[int]
    STRANDED_BOOKING_COUNT_FIELD_NUMBER: _ClassVar[int]
    service: Service
    stranded_bookings: _containers.RepeatedCompositeFieldContainer[StrandedBooking]
    stranded_booking_count: int
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ..., stranded_bookings: _Optional[_Iterable[_Union[StrandedBooking, _Mapping]]] = ..., stranded_booking_count: _Optional[int] = ...) -> None: ...

class StrandedBooking(_message.Message):
    __slots__ = ("booking", "start_time", "seats", "customer")
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    booking: str
    start_time: _timestamp_pb2.Timestamp
    seats: int
    customer: str
    def __init__(self, booking: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ..., customer: _Optional[str] = ...) -> None: ...

class DeleteServiceRequest(_message.Message):
    __slots__ = ("name", "etag", "validate_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    validate_only: bool
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class DeleteServiceResponse(_message.Message):
    __slots__ = ("service", "stranded_bookings", "stranded_booking_count")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STRANDED_BOOKINGS_FIELD_NUMBER: _ClassVar[int]
    STRANDED_BOOKING_COUNT_FIELD_NUMBER: _ClassVar[int]
    service: Service
    stranded_bookings: _containers.RepeatedCompositeFieldContainer[StrandedBooking]
    stranded_booking_count: int
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ..., stranded_bookings: _Optional[_Iterable[_Union[StrandedBooking, _Mapping]]] = ..., stranded_booking_count: _Optional[int] = ...) -> None: ...

class SetAvailabilityRequest(_message.Message):
    __slots__ = ("availability", "validate_only")
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    availability: Availability
    validate_only: bool
    def __init__(self, availability: _Optional[_Union[Availability, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class SetAvailabilityResponse(_message.Message):
    __slots__ = ("availability", "stranded_bookings", "stranded_booking_count")
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    STRANDED_BOOKINGS_FIELD_NUMBER: _ClassVar[int]
    STRANDED_BOOKING_COUNT_FIELD_NUMBER: _ClassVar[int]
    availability: Availability
    stranded_bookings: _containers.RepeatedCompositeFieldContainer[StrandedBooking]
    stranded_booking_count: int
    def __init__(self, availability: _Optional[_Union[Availability, _Mapping]] = ..., stranded_bookings: _Optional[_Iterable[_Union[StrandedBooking, _Mapping]]] = ..., stranded_booking_count: _Optional[int] = ...) -> None: ...

class GetAvailabilityRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetAvailabilityResponse(_message.Message):
    __slots__ = ("availability",)
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    availability: Availability
    def __init__(self, availability: _Optional[_Union[Availability, _Mapping]] = ...) -> None: ...

class ListSlotsRequest(_message.Message):
    __slots__ = ("service", "start_time", "end_time", "seats")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    service: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    seats: int
    def __init__(self, service: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ...) -> None: ...

class ListSlotsResponse(_message.Message):
    __slots__ = ("slots", "bookable_start_time", "bookable_end_time")
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    BOOKABLE_START_TIME_FIELD_NUMBER: _ClassVar[int]
    BOOKABLE_END_TIME_FIELD_NUMBER: _ClassVar[int]
    slots: _containers.RepeatedCompositeFieldContainer[Slot]
    bookable_start_time: _timestamp_pb2.Timestamp
    bookable_end_time: _timestamp_pb2.Timestamp
    def __init__(self, slots: _Optional[_Iterable[_Union[Slot, _Mapping]]] = ..., bookable_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bookable_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QuotePriceRequest(_message.Message):
    __slots__ = ("service", "start_time", "seats")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    service: str
    start_time: _timestamp_pb2.Timestamp
    seats: int
    def __init__(self, service: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seats: _Optional[int] = ...) -> None: ...

class QuotePriceResponse(_message.Message):
    __slots__ = ("quote",)
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    quote: PriceQuote
    def __init__(self, quote: _Optional[_Union[PriceQuote, _Mapping]] = ...) -> None: ...
