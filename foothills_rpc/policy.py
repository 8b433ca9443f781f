"""Who may call what: one entry per RPC of every service this server exposes. Default deny.

`tests/test_policy.py` walks every method of every service descriptor and fails when one has no
entry here, so a new RPC cannot ship without a decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from foothills_rpc.domain.users import Role


@dataclass(frozen=True)
class Access:
    """`public`: anyone, token or not (a token that is sent must be valid, unless `reads_token` is
    False). Otherwise a valid token, and one of `roles` if any are named."""

    public: bool = False
    roles: frozenset[Role] = frozenset()
    reads_token: bool = True


PUBLIC = Access(public=True)
# Health and reflection never look at a token: grpcurl sends an RPC's headers to reflection as well, and
# a load balancer's probe has none; an expired token must not hide the API's description.
INFRASTRUCTURE = Access(public=True, reads_token=False)
SIGNED_IN = Access()
ADMIN_ONLY = Access(roles=frozenset({Role.ADMIN}))
PROVIDER_OR_ADMIN = Access(roles=frozenset({Role.PROVIDER, Role.ADMIN}))


def _methods(service: str, access: Access, *names: str) -> dict[str, Access]:
    return {f"/{service}/{name}": access for name in names}


POLICY: dict[str, Access] = {
    **_methods("grpc.health.v1.Health", INFRASTRUCTURE, "Check", "Watch", "List"),
    **_methods("grpc.reflection.v1alpha.ServerReflection", INFRASTRUCTURE, "ServerReflectionInfo"),
    **_methods("foothills.auth.v1.AuthService", PUBLIC,
               "Register", "Login", "RefreshToken", "RequestPasswordReset", "ResetPassword"),
    **_methods("foothills.auth.v1.AuthService", SIGNED_IN,
               "Logout", "GetProfile", "UpdateProfile", "ChangePassword"),
    **_methods("foothills.catalog.v1.CatalogService", PUBLIC,
               "GetCategory", "ListCategories", "GetService", "ListServices", "GetAvailability", "ListSlots",
               "QuotePrice"),
    **_methods("foothills.catalog.v1.CatalogService", ADMIN_ONLY,
               "CreateCategory", "UpdateCategory", "DeleteCategory"),
    # Ownership (a provider changes only their own services) is checked by the use cases.
    **_methods("foothills.catalog.v1.CatalogService", PROVIDER_OR_ADMIN,
               "CreateService", "UpdateService", "DeleteService", "SetAvailability"),
    # Who may touch which booking (own, own service's, any) is decided by the use cases.
    **_methods("foothills.booking.v1.BookingService", SIGNED_IN,
               "CreateBooking", "GetBooking", "ListBookings", "CancelBooking", "RescheduleBooking",
               "WatchBookings", "HoldSlot", "GetHold", "ReleaseHold", "JoinWaitlist", "ListWaitlistEntries",
               "LeaveWaitlist"),
    **_methods("foothills.booking.v1.BookingService", PROVIDER_OR_ADMIN, "ConfirmBooking", "CompleteBooking"),
    **_methods("foothills.admin.v1.AdminService", ADMIN_ONLY,
               "ListUsers", "GetUser", "SetUserRole", "DisableUser", "EnableUser", "AssignSupportRequest",
               "SetSupportRequestStatus", "GetBookingStats", "ExportBookings", "ListAuditEvents"),
    # A provider sees and resolves the conflicts of their own services (the use case narrows it).
    **_methods("foothills.admin.v1.AdminService", PROVIDER_OR_ADMIN,
               "ListConflicts", "ResolveConflict", "ResolveConflicts"),
    # Anyone signed in asks for help; the use case shows each user only their own requests.
    **_methods("foothills.admin.v1.AdminService", SIGNED_IN,
               "CreateSupportRequest", "GetSupportRequest", "ListSupportRequests", "AddSupportMessage"),
}


def access_for(method: str) -> Access | None:
    return POLICY.get(method)
