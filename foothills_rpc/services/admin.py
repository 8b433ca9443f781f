"""AdminService: user management (admins only, per the policy table)."""

from __future__ import annotations

from typing import Any

from foothills.admin.v1 import admin_pb2, admin_pb2_grpc
from foothills.auth.v1 import user_pb2
from foothills_rpc.db.accounts import UserFilter
from foothills_rpc.services.converters import resource_id, role_from_proto, user_to_proto
from foothills_rpc.usecases.users import UserAdmin


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, users: UserAdmin) -> None:
        self._users = users

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
        user = await self._users.set_role(user_id, role_from_proto(request.role))
        return admin_pb2.SetUserRoleResponse(user=user_to_proto(user))

    async def DisableUser(self, request: admin_pb2.DisableUserRequest,
                          context: Any) -> admin_pb2.DisableUserResponse:
        user = await self._users.set_disabled(resource_id(request.name, "users"), True, request.reason)
        return admin_pb2.DisableUserResponse(user=user_to_proto(user))

    async def EnableUser(self, request: admin_pb2.EnableUserRequest,
                         context: Any) -> admin_pb2.EnableUserResponse:
        user = await self._users.set_disabled(resource_id(request.name, "users"), False)
        return admin_pb2.EnableUserResponse(user=user_to_proto(user))
