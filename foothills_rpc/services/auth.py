"""AuthService: converts requests, calls the account use cases, converts answers."""

from __future__ import annotations

from typing import Any

from foothills.auth.v1 import auth_pb2, auth_pb2_grpc
from foothills_rpc.interceptors.auth import principal
from foothills_rpc.interceptors.peer import client_address
from foothills_rpc.services.converters import timestamp, update_mask_paths, user_to_proto
from foothills_rpc.usecases.accounts import Accounts, Credentials, ProfileChanges

EDITABLE_PROFILE_FIELDS = ("display_name", "phone", "time_zone", "locale", "reminders_enabled", "notices_enabled")


def _credentials(credentials: Credentials) -> auth_pb2.Credentials:
    return auth_pb2.Credentials(
        access_token=credentials.access_token,
        access_token_expire_time=timestamp(credentials.access_expires_at),
        refresh_token=credentials.refresh_token,
        refresh_token_expire_time=timestamp(credentials.refresh_expires_at),
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, accounts: Accounts, *, trusted_proxies: frozenset[str] = frozenset()) -> None:
        self._accounts = accounts
        self._trusted_proxies = trusted_proxies

    async def Register(self, request: auth_pb2.RegisterRequest, context: Any) -> auth_pb2.RegisterResponse:
        user = await self._accounts.register(email=request.email, password=request.password,
                                             display_name=request.display_name,
                                             client_address=self._client_address(context))
        return auth_pb2.RegisterResponse(user=user_to_proto(user))

    def _client_address(self, context: Any) -> str:
        forwarded = [value for key, value in context.invocation_metadata() or ()
                     if key == "x-forwarded-for" and isinstance(value, str)]
        return client_address(context.peer(), forwarded, self._trusted_proxies)

    async def Login(self, request: auth_pb2.LoginRequest, context: Any) -> auth_pb2.LoginResponse:
        credentials, user = await self._accounts.login(email=request.email, password=request.password)
        return auth_pb2.LoginResponse(credentials=_credentials(credentials), user=user_to_proto(user))

    async def RefreshToken(self, request: auth_pb2.RefreshTokenRequest,
                           context: Any) -> auth_pb2.RefreshTokenResponse:
        credentials = await self._accounts.refresh(refresh_token=request.refresh_token)
        return auth_pb2.RefreshTokenResponse(credentials=_credentials(credentials))

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Any) -> auth_pb2.LogoutResponse:
        await self._accounts.logout(principal())
        return auth_pb2.LogoutResponse()

    async def RequestPasswordReset(self, request: auth_pb2.RequestPasswordResetRequest,
                                   context: Any) -> auth_pb2.RequestPasswordResetResponse:
        await self._accounts.request_password_reset(email=request.email)
        return auth_pb2.RequestPasswordResetResponse()

    async def ResetPassword(self, request: auth_pb2.ResetPasswordRequest,
                            context: Any) -> auth_pb2.ResetPasswordResponse:
        await self._accounts.reset_password(token=request.token, new_password=request.new_password)
        return auth_pb2.ResetPasswordResponse()

    async def GetProfile(self, request: auth_pb2.GetProfileRequest, context: Any) -> auth_pb2.GetProfileResponse:
        return auth_pb2.GetProfileResponse(user=user_to_proto(await self._accounts.profile(principal())))

    async def UpdateProfile(self, request: auth_pb2.UpdateProfileRequest,
                            context: Any) -> auth_pb2.UpdateProfileResponse:
        paths = update_mask_paths(list(request.update_mask.paths), EDITABLE_PROFILE_FIELDS)
        changes = ProfileChanges(**{path: getattr(request.user, path) for path in paths})
        user = await self._accounts.update_profile(principal(), changes)
        return auth_pb2.UpdateProfileResponse(user=user_to_proto(user))

    async def ChangePassword(self, request: auth_pb2.ChangePasswordRequest,
                             context: Any) -> auth_pb2.ChangePasswordResponse:
        await self._accounts.change_password(principal(), current_password=request.current_password,
                                             new_password=request.new_password)
        return auth_pb2.ChangePasswordResponse()
