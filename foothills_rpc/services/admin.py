"""AdminService: users, support requests, conflicts, audit log (who may call what: the policy table;
which support request a user may see: the use case)."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import struct_pb2

from foothills.admin.v1 import admin_pb2, admin_pb2_grpc, audit_pb2, conflicts_pb2, support_pb2
from foothills.auth.v1 import user_pb2
from foothills_rpc.db.accounts import UserFilter
from foothills_rpc.db.audit import AuditFilter
from foothills_rpc.db.models import AuditEvent
from foothills_rpc.domain.errors import Collector, InvalidArgument
from foothills_rpc.domain.support import SupportStatus
from foothills_rpc.interceptors.auth import principal
from foothills_rpc.services import catalog_convert as convert
from foothills_rpc.services.booking import booking_to_proto
from foothills_rpc.services.converters import optional_id, resource_id, role_from_proto, timestamp, user_to_proto
from foothills_rpc.services.reports import ReportRpcs
from foothills_rpc.usecases.audit import AuditLog
from foothills_rpc.usecases.conflicts import Conflict, ConflictReason, Conflicts, Outcome, Resolution
from foothills_rpc.usecases.reports import Reports
from foothills_rpc.usecases.support import Support, SupportFilter, Thread
from foothills_rpc.usecases.users import UserAdmin

STATUS_TO_PROTO = {
    SupportStatus.OPEN: support_pb2.SUPPORT_REQUEST_STATUS_OPEN,
    SupportStatus.IN_PROGRESS: support_pb2.SUPPORT_REQUEST_STATUS_IN_PROGRESS,
    SupportStatus.RESOLVED: support_pb2.SUPPORT_REQUEST_STATUS_RESOLVED,
    SupportStatus.CLOSED: support_pb2.SUPPORT_REQUEST_STATUS_CLOSED,
}
STATUS_FROM_PROTO = {value: status for status, value in STATUS_TO_PROTO.items()}
REASON_TO_PROTO = {
    ConflictReason.OUTSIDE_AVAILABILITY: conflicts_pb2.CONFLICT_REASON_OUTSIDE_AVAILABILITY,
    ConflictReason.OVER_CAPACITY: conflicts_pb2.CONFLICT_REASON_OVER_CAPACITY,
    ConflictReason.SERVICE_ARCHIVED: conflicts_pb2.CONFLICT_REASON_SERVICE_ARCHIVED,
    ConflictReason.PROVIDER_DISABLED: conflicts_pb2.CONFLICT_REASON_PROVIDER_DISABLED,
    ConflictReason.CUSTOMER_DISABLED: conflicts_pb2.CONFLICT_REASON_CUSTOMER_DISABLED,
}
REASON_FROM_PROTO = {value: reason for reason, value in REASON_TO_PROTO.items()}
RESOLUTIONS = {admin_pb2.CONFLICT_RESOLUTION_CANCEL: Resolution.CANCEL,
               admin_pb2.CONFLICT_RESOLUTION_RESCHEDULE: Resolution.RESCHEDULE,
               admin_pb2.CONFLICT_RESOLUTION_MOVE_TO_NEAREST: Resolution.MOVE_TO_NEAREST}
OUTCOMES = {"cancelled": admin_pb2.CONFLICT_OUTCOME_RESULT_CANCELLED, "moved": admin_pb2.CONFLICT_OUTCOME_RESULT_MOVED,
            "unresolved": admin_pb2.CONFLICT_OUTCOME_RESULT_UNRESOLVED}


def _user_ref(user_id: uuid.UUID | None) -> str:
    return "" if user_id is None else f"users/{user_id.hex}"


def _optional_ref(name: str, collection: str, field: str) -> uuid.UUID | None:
    return resource_id(name, collection, field=field) if name else None


def thread_to_proto(thread: Thread, *, with_messages: bool = True) -> support_pb2.SupportRequest:
    request = thread.request
    return support_pb2.SupportRequest(
        name=f"supportRequests/{request.id.hex}", requester=_user_ref(request.requester_id),
        subject=request.subject, booking="" if request.booking_id is None else f"bookings/{request.booking_id.hex}",
        status=STATUS_TO_PROTO[SupportStatus(request.status)], assignee=_user_ref(request.assignee_id),
        messages=[support_pb2.SupportMessage(author=_user_ref(m.author_id), from_staff=m.from_staff, body=m.body,
                                             create_time=timestamp(m.created_at))
                  for m in thread.messages] if with_messages else [],
        create_time=timestamp(request.created_at), update_time=timestamp(request.updated_at))


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def audit_to_proto(event: AuditEvent) -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(
        name=f"auditEvents/{event.id}", actor=_user_ref(event.actor_id), action=event.action,
        target=event.target, before=_struct(event.before), after=_struct(event.after), reason=event.reason,
        create_time=timestamp(event.created_at))


def outcome_to_proto(outcome: Outcome) -> admin_pb2.ConflictOutcome:
    message = admin_pb2.ConflictOutcome(booking=outcome.booking, result=OUTCOMES[outcome.result],
                                        failure_reason=outcome.failure)
    if outcome.new_start is not None:
        message.new_start_time.CopyFrom(timestamp(outcome.new_start))
    return message


def conflict_to_proto(conflict: Conflict) -> conflicts_pb2.Conflict:
    return conflicts_pb2.Conflict(booking=booking_to_proto(conflict.booking),
                                  reasons=[REASON_TO_PROTO[r] for r in conflict.reasons])


class AdminServicer(ReportRpcs, admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, users: UserAdmin, support: Support, conflicts: Conflicts, audit_log: AuditLog,
                 reports: Reports) -> None:
        self._users = users
        self._reports = reports
        self._support = support
        self._conflicts = conflicts
        self._audit_log = audit_log

    async def ListUsers(self, request: admin_pb2.ListUsersRequest, context: Any) -> admin_pb2.ListUsersResponse:
        role = None if request.role == user_pb2.ROLE_UNSPECIFIED else role_from_proto(request.role)
        filters = UserFilter(query=request.query.strip(), role=role,
                             disabled=request.disabled if request.HasField("disabled") else None)
        users, next_token = await self._users.list(filters, requested_size=request.page_size,
                                                   token=request.page_token)
        return admin_pb2.ListUsersResponse(users=[user_to_proto(u) for u in users], next_page_token=next_token)

    async def GetUser(self, request: admin_pb2.GetUserRequest, context: Any) -> admin_pb2.GetUserResponse:
        user = await self._users.get(resource_id(request.name, "users"))
        return admin_pb2.GetUserResponse(user=user_to_proto(user))

    async def SetUserRole(self, request: admin_pb2.SetUserRoleRequest,
                          context: Any) -> admin_pb2.SetUserRoleResponse:
        user_id = resource_id(request.name, "users")
        user = await self._users.set_role(principal(), user_id, role_from_proto(request.role))
        return admin_pb2.SetUserRoleResponse(user=user_to_proto(user))

    async def DisableUser(self, request: admin_pb2.DisableUserRequest,
                          context: Any) -> admin_pb2.DisableUserResponse:
        user = await self._users.set_disabled(principal(), resource_id(request.name, "users"), True, request.reason)
        return admin_pb2.DisableUserResponse(user=user_to_proto(user))

    async def EnableUser(self, request: admin_pb2.EnableUserRequest,
                         context: Any) -> admin_pb2.EnableUserResponse:
        user = await self._users.set_disabled(principal(), resource_id(request.name, "users"), False)
        return admin_pb2.EnableUserResponse(user=user_to_proto(user))

    # --- support -------------------------------------------------------------------------

    async def CreateSupportRequest(self, request: admin_pb2.CreateSupportRequestRequest,
                                   context: Any) -> admin_pb2.CreateSupportRequestResponse:
        booking_id = _optional_ref(request.booking, "bookings", "booking")
        thread = await self._support.create(principal(), subject=request.subject, body=request.body,
                                            booking_id=booking_id, request_id=request.request_id)
        return admin_pb2.CreateSupportRequestResponse(support_request=thread_to_proto(thread))

    async def GetSupportRequest(self, request: admin_pb2.GetSupportRequestRequest,
                                context: Any) -> admin_pb2.GetSupportRequestResponse:
        thread = await self._support.get(principal(), resource_id(request.name, "supportRequests"))
        return admin_pb2.GetSupportRequestResponse(support_request=thread_to_proto(thread))

    async def ListSupportRequests(self, request: admin_pb2.ListSupportRequestsRequest,
                                  context: Any) -> admin_pb2.ListSupportRequestsResponse:
        errors = Collector()
        statuses = []
        for value in request.statuses:
            if value not in STATUS_FROM_PROTO:
                errors.add("statuses", "holds an unknown or unspecified status")
            else:
                statuses.append(STATUS_FROM_PROTO[value].value)
        created_before = (convert.instant(request.created_before, "created_before", errors)
                          if request.HasField("created_before") else None)
        errors.check()
        filters = SupportFilter(statuses=tuple(sorted(set(statuses))),
                                requester_id=_optional_ref(request.requester, "users", "requester"),
                                assignee_id=_optional_ref(request.assignee, "users", "assignee"),
                                created_before=created_before)
        rows, next_token = await self._support.list(principal(), filters, requested_size=request.page_size,
                                                    token=request.page_token)
        return admin_pb2.ListSupportRequestsResponse(
            support_requests=[thread_to_proto(Thread(request=row, messages=[]), with_messages=False) for row in rows],
            next_page_token=next_token)

    async def AddSupportMessage(self, request: admin_pb2.AddSupportMessageRequest,
                                context: Any) -> admin_pb2.AddSupportMessageResponse:
        thread = await self._support.add_message(principal(), resource_id(request.name, "supportRequests"),
                                                 request.body)
        return admin_pb2.AddSupportMessageResponse(support_request=thread_to_proto(thread))

    async def AssignSupportRequest(self, request: admin_pb2.AssignSupportRequestRequest,
                                   context: Any) -> admin_pb2.AssignSupportRequestResponse:
        support_id = resource_id(request.name, "supportRequests")
        thread = await self._support.assign(principal(), support_id,
                                            _optional_ref(request.assignee, "users", "assignee"))
        return admin_pb2.AssignSupportRequestResponse(support_request=thread_to_proto(thread))

    async def SetSupportRequestStatus(self, request: admin_pb2.SetSupportRequestStatusRequest,
                                      context: Any) -> admin_pb2.SetSupportRequestStatusResponse:
        support_id = resource_id(request.name, "supportRequests")
        status = STATUS_FROM_PROTO.get(request.status)
        if status is None:
            raise InvalidArgument.single("status", "must be a known status, not SUPPORT_REQUEST_STATUS_UNSPECIFIED")
        thread = await self._support.set_status(principal(), support_id, status)
        return admin_pb2.SetSupportRequestStatusResponse(support_request=thread_to_proto(thread))

    # --- conflicts -----------------------------------------------------------------------

    async def ListConflicts(self, request: admin_pb2.ListConflictsRequest,
                            context: Any) -> admin_pb2.ListConflictsResponse:
        service_id = _optional_ref(request.service, "services", "service")
        rows, next_token = await self._conflicts.list_conflicts(principal(), service_id,
                                                                requested_size=request.page_size,
                                                      token=request.page_token)
        return admin_pb2.ListConflictsResponse(conflicts=[conflict_to_proto(c) for c in rows],
                                               next_page_token=next_token)

    async def ResolveConflict(self, request: admin_pb2.ResolveConflictRequest,
                              context: Any) -> admin_pb2.ResolveConflictResponse:
        errors = Collector()
        resolution = RESOLUTIONS.get(request.resolution)
        if resolution is None:
            errors.add("resolution", "must be CONFLICT_RESOLUTION_CANCEL, _RESCHEDULE or _MOVE_TO_NEAREST")
        new_start = (convert.instant(request.new_start_time, "new_start_time", errors)
                     if request.HasField("new_start_time") else None)
        errors.check()
        assert resolution is not None
        booking = await self._conflicts.resolve_conflict(
            principal(), resource_id(request.booking, "bookings", field="booking"), resolution,
            new_start=new_start, reason=request.reason)
        return admin_pb2.ResolveConflictResponse(booking=booking_to_proto(booking))

    async def ResolveConflicts(self, request: admin_pb2.ResolveConflictsRequest,
                               context: Any) -> admin_pb2.ResolveConflictsResponse:
        errors = Collector()
        service_id = optional_id(request.service, "services", "service", errors)
        reasons = {REASON_FROM_PROTO.get(r) for r in request.reasons}
        if None in reasons:
            errors.add("reasons", "must be known conflict reasons")
        # The use case adds its own violations (resolution, reason, request_id): all are reported at once.
        outcomes = await self._conflicts.resolve_conflicts(
            principal(), service_id=service_id, reasons={r for r in reasons if r is not None},
            resolution=RESOLUTIONS.get(request.resolution), reason=request.reason, request_id=request.request_id,
            errors=errors)
        return admin_pb2.ResolveConflictsResponse(outcomes=[outcome_to_proto(o) for o in outcomes])

    # --- audit ---------------------------------------------------------------------------

    async def ListAuditEvents(self, request: admin_pb2.ListAuditEventsRequest,
                              context: Any) -> admin_pb2.ListAuditEventsResponse:
        errors = Collector()
        start = convert.instant(request.start_time, "start_time", errors) if request.HasField("start_time") else None
        end = convert.instant(request.end_time, "end_time", errors) if request.HasField("end_time") else None
        if len(request.target) > 100:
            errors.add("target", "must be at most 100 characters")
        errors.check()
        filters = AuditFilter(actor_id=_optional_ref(request.actor, "users", "actor"), target=request.target,
                              start=start, end=end)
        rows, next_token = await self._audit_log.list(filters, requested_size=request.page_size,
                                                      token=request.page_token)
        return admin_pb2.ListAuditEventsResponse(audit_events=[audit_to_proto(e) for e in rows],
                                                 next_page_token=next_token)
