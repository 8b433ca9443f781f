"""Domain errors: what went wrong, in the product's words.

They know nothing of gRPC; `interceptors/errors.py` maps each class to a status code in one table.
`reason` is a stable UPPER_SNAKE_CASE string that clients branch on (sent as `ErrorInfo.reason`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (`user.phone`), what is wrong, and a stable reason."""

    field: str
    description: str
    reason: str = "INVALID_VALUE"


class DomainError(Exception):
    """Base of every error a caller is meant to see. `message` is safe to show."""

    default_reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = metadata or {}


class InvalidArgument(DomainError):
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str | None = None):
        fields = ", ".join(v.field for v in violations)
        super().__init__(message or f"invalid request: {fields}")
        self.violations = violations

    @classmethod
    def single(cls, field: str, description: str, reason: str = "INVALID_VALUE") -> InvalidArgument:
        return cls([FieldViolation(field, description, reason)])


class NotFound(DomainError):
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    default_reason = "UNAUTHENTICATED"


class Aborted(DomainError):
    """A concurrent change won; retrying the whole call may succeed."""

    default_reason = "CONCURRENT_MODIFICATION"


class ResourceExhausted(DomainError):
    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, reason: str | None = None, retry_after: timedelta | None = None):
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (the database, mostly) cannot be reached; retry later."""

    default_reason = "DATABASE_UNAVAILABLE"


class Collector:
    """Gathers field violations so a caller learns every bad field at once, not one per call."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str, reason: str = "INVALID_VALUE") -> None:
        self.violations.append(FieldViolation(field, description, reason))

    @property
    def fields(self) -> set[str]:
        return {v.field for v in self.violations}

    def check(self) -> None:
        """Raises with every violation, less those inside a field already reported: a missing
        `base_price` is reported once, not again as a missing `base_price.currency_code`."""
        if not self.violations:
            return
        reported = self.fields
        raise InvalidArgument([v for v in self.violations
                               if not any(v.field.startswith((f"{f}.", f"{f}[")) for f in reported)])
