import datetime

from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SupportRequestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUPPORT_REQUEST_STATUS_UNSPECIFIED: _ClassVar[SupportRequestStatus]
    SUPPORT_REQUEST_STATUS_OPEN: _ClassVar[SupportRequestStatus]
    SUPPORT_REQUEST_STATUS_IN_PROGRESS: _ClassVar[SupportRequestStatus]
    SUPPORT_REQUEST_STATUS_RESOLVED: _ClassVar[SupportRequestStatus]
    SUPPORT_REQUEST_STATUS_CLOSED: _ClassVar[SupportRequestStatus]
SUPPORT_REQUEST_STATUS_UNSPECIFIED: SupportRequestStatus
SUPPORT_REQUEST_STATUS_OPEN: SupportRequestStatus
SUPPORT_REQUEST_STATUS_IN_PROGRESS: SupportRequestStatus
SUPPORT_REQUEST_STATUS_RESOLVED: SupportRequestStatus
SUPPORT_REQUEST_STATUS_CLOSED: SupportRequestStatus

class SupportRequest(_message.Message):
    __slots__ = ("name", "requester", "subject", "booking", "status", "assignee", "messages", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    requester: str
    subject: str
    booking: str
    status: SupportRequestStatus
    assignee: str
    messages: _containers.RepeatedCompositeFieldContainer[SupportMessage]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., requester: _Optional[str] = ..., subject: _Optional[str] = ..., booking: _Optional[str] = ..., status: _Optional[_Union[SupportRequestStatus, str]] = ..., assignee: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[SupportMessage, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SupportMessage(_message.Message):
    __slots__ = ("author", "from_staff", "body", "create_time")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    FROM_STAFF_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    author: str
    from_staff: bool
    body: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, author: _Optional[str] = ..., from_staff: _Optional[bool] = ..., body: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
