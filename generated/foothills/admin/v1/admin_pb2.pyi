import datetime

from foothills.admin.v1 import audit_pb2 as _audit_pb2
from foothills.admin.v1 import conflicts_pb2 as _conflicts_pb2
from foothills.admin.v1 import reports_pb2 as _reports_pb2
from foothills.admin.v1 import support_pb2 as _support_pb2
from foothills.auth.v1 import user_pb2 as _user_pb2
from foothills.booking.v1 import booking_pb2 as _booking_pb2
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

class ConflictOutcomeResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFLICT_OUTCOME_RESULT_UNSPECIFIED: _ClassVar[ConflictOutcomeResult]
    CONFLICT_OUTCOME_RESULT_CANCELLED: _ClassVar[ConflictOutcomeResult]
    CONFLICT_OUTCOME_RESULT_MOVED: _ClassVar[ConflictOutcomeResult]
    CONFLICT_OUTCOME_RESULT_UNRESOLVED: _ClassVar[ConflictOutcomeResult]

class ConflictResolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFLICT_RESOLUTION_UNSPECIFIED: _ClassVar[ConflictResolution]
    CONFLICT_RESOLUTION_CANCEL: _ClassVar[ConflictResolution]
    CONFLICT_RESOLUTION_RESCHEDULE: _ClassVar[ConflictResolution]
    CONFLICT_RESOLUTION_MOVE_TO_NEAREST: _ClassVar[ConflictResolution]
CONFLICT_OUTCOME_RESULT_UNSPECIFIED: ConflictOutcomeResult
CONFLICT_OUTCOME_RESULT_CANCELLED: ConflictOutcomeResult
CONFLICT_OUTCOME_RESULT_MOVED: ConflictOutcomeResult
CONFLICT_OUTCOME_RESULT_UNRESOLVED: ConflictOutcomeResult
CONFLICT_RESOLUTION_UNSPECIFIED: ConflictResolution
CONFLICT_RESOLUTION_CANCEL: ConflictResolution
CONFLICT_RESOLUTION_RESCHEDULE: ConflictResolution
CONFLICT_RESOLUTION_MOVE_TO_NEAREST: ConflictResolution

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "query", "role", "disabled")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    query: str
    role: _user_pb2.Role
    disabled: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., query: _Optional[str] = ..., role: _Optional[_Union[_user_pb2.Role, str]] = ..., disabled: _Optional[bool] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[_user_pb2.User]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[_user_pb2.User, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _user_pb2.User
    def __init__(self, user: _Optional[_Union[_user_pb2.User, _Mapping]] = ...) -> None: ...

class SetUserRoleRequest(_message.Message):
    __slots__ = ("name", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: _user_pb2.Role
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[_user_pb2.Role, str]] = ...) -> None: ...

class SetUserRoleResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _user_pb2.User
    def __init__(self, user: _Optional[_Union[_user_pb2.User, _Mapping]] = ...) -> None: ...

class DisableUserRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DisableUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _user_pb2.User
    def __init__(self, user: _Optional[_Union[_user_pb2.User, _Mapping]] = ...) -> None: ...

class EnableUserRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class EnableUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _user_pb2.User
    def __init__(self, user: _Optional[_Union[_user_pb2.User, _Mapping]] = ...) -> None: ...

class CreateSupportRequestRequest(_message.Message):
    __slots__ = ("subject", "body", "booking", "request_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    subject: str
    body: str
    booking: str
    request_id: str
    def __init__(self, subject: _Optional[str] = ..., body: _Optional[str] = ..., booking: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSupportRequestResponse(_message.Message):
    __slots__ = ("support_request",)
    SUPPORT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    support_request: _support_pb2.SupportRequest
    def __init__(self, support_request: _Optional[_Union[_support_pb2.SupportRequest, _Mapping]] = ...) -> None: ...

class GetSupportRequestRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetSupportRequestResponse(_message.Message):
    __slots__ = ("support_request",)
    SUPPORT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    support_request: _support_pb2.SupportRequest
    def __init__(self, support_request: _Optional[_Union[_support_pb2.SupportRequest, _Mapping]] = ...) -> None: ...

class ListSupportRequestsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "statuses", "requester", "created_before", "assignee")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[_support_pb2.SupportRequestStatus]
    requester: str
    created_before: _timestamp_pb2.Timestamp
    assignee: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_support_pb2.SupportRequestStatus, str]]] = ..., requester: _Optional[str] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., assignee: _Optional[str] = ...) -> None: ...

class ListSupportRequestsResponse(_message.Message):
    __slots__ = ("support_requests", "next_page_token")
    SUPPORT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    support_requests: _containers.RepeatedCompositeFieldContainer[_support_pb2.SupportRequest]
    next_page_token: str
    def __init__(self, support_requests: _Optional[_Iterable[_Union[_support_pb2.SupportRequest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AddSupportMessageRequest(_message.Message):
    __slots__ = ("name", "body")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    name: str
    body: str
    def __init__(self, name: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class AddSupportMessageResponse(_message.Message):
    __slots__ = ("support_request",)
    SUPPORT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    support_request: _support_pb2.SupportRequest
    def __init__(self, support_request: _Optional[_Union[_support_pb2.SupportRequest, _Mapping]] = ...) -> None: ...

class AssignSupportRequestRequest(_message.Message):
    __slots__ = ("name", "assignee")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    name: str
    assignee: str
    def __init__(self, name: _Optional[str] = ..., assignee: _Optional[str] = ...) -> None: ...

class AssignSupportRequestResponse(_message.Message):
    __slots__ = ("support_request",)
    SUPPORT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    support_request: _support_pb2.SupportRequest
    def __init__(self, support_request: _Optional[_Union[_support_pb2.SupportRequest, _Mapping]] = ...) -> None: ...

class SetSupportRequestStatusRequest(_message.Message):
    __slots__ = ("name", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: _support_pb2.SupportRequestStatus
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[_support_pb2.SupportRequestStatus, str]] = ...) -> None: ...

class SetSupportRequestStatusResponse(_message.Message):
    __slots__ = ("support_request",)
    SUPPORT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    support_request: _support_pb2.SupportRequest
    def __init__(self, support_request: _Optional[_Union[_support_pb2.SupportRequest, _Mapping]] = ...) -> None: ...

class ListConflictsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "service")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    service: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., service: _Optional[str] = ...) -> None: ...

class ListConflictsResponse(_message.Message):
    __slots__ = ("conflicts", "next_page_token")
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conflicts: _containers.RepeatedCompositeFieldContainer[_conflicts_pb2.Conflict]
    next_page_token: str
    def __init__(self, conflicts: _Optional[_Iterable[_Union[_conflicts_pb2.Conflict, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ResolveConflictRequest(_message.Message):
    __slots__ = ("booking", "resolution", "new_start_time", "reason")
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    NEW_START_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    booking: str
    resolution: ConflictResolution
    new_start_time: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, booking: _Optional[str] = ..., resolution: _Optional[_Union[ConflictResolution, str]] = ..., new_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ResolveConflictsRequest(_message.Message):
    __slots__ = ("service", "reasons", "resolution", "reason", "request_id")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    service: str
    reasons: _containers.RepeatedScalarFieldContainer[_conflicts_pb2.ConflictReason]
    resolution: ConflictResolution
    reason: str
    request_id: str
    def __init__(self, service: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[_conflicts_pb2.ConflictReason, str]]] = ..., resolution: _Optional[_Union[ConflictResolution, str]] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ResolveConflictsResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[ConflictOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[ConflictOutcome, _Mapping]]] = ...) -> None: ...

class ConflictOutcome(_message.Message):
    __slots__ = ("booking", "result", "new_start_time", "failure_reason")
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    NEW_START_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    booking: str
    result: ConflictOutcomeResult
    new_start_time: _timestamp_pb2.Timestamp
    failure_reason: str
    def __init__(self, booking: _Optional[str] = ..., result: _Optional[_Union[ConflictOutcomeResult, str]] = ..., new_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ...) -> None: ...

class ResolveConflictResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: _booking_pb2.Booking
    def __init__(self, booking: _Optional[_Union[_booking_pb2.Booking, _Mapping]] = ...) -> None: ...

class GetBookingStatsRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "group_by", "top_services")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    TOP_SERVICES_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    group_by: _reports_pb2.StatsGrouping
    top_services: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Union[_reports_pb2.StatsGrouping, str]] = ..., top_services: _Optional[int] = ...) -> None: ...

class GetBookingStatsResponse(_message.Message):
    __slots__ = ("total", "groups", "top_services")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TOP_SERVICES_FIELD_NUMBER: _ClassVar[int]
    total: _reports_pb2.BookingStats
    groups: _containers.RepeatedCompositeFieldContainer[_reports_pb2.BookingStats]
    top_services: _containers.RepeatedCompositeFieldContainer[_reports_pb2.TopService]
    def __init__(self, total: _Optional[_Union[_reports_pb2.BookingStats, _Mapping]] = ..., groups: _Optional[_Iterable[_Union[_reports_pb2.BookingStats, _Mapping]]] = ..., top_services: _Optional[_Iterable[_Union[_reports_pb2.TopService, _Mapping]]] = ...) -> None: ...

class ExportBookingsRequest(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportBookingsResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[_reports_pb2.BookingRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[_reports_pb2.BookingRow, _Mapping]]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "actor", "target", "start_time", "end_time")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    actor: str
    target: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., actor: _Optional[str] = ..., target: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("audit_events", "next_page_token")
    AUDIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audit_events: _containers.RepeatedCompositeFieldContainer[_audit_pb2.AuditEvent]
    next_page_token: str
    def __init__(self, audit_events: _Optional[_Iterable[_Union[_audit_pb2.AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
