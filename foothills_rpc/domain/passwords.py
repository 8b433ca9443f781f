"""Password policy: 12 to 128 characters, not a common password, not the email."""

from __future__ import annotations

from functools import cache
from importlib import resources

from foothills_rpc.domain.errors import FieldViolation

MIN_LENGTH = 12
MAX_LENGTH = 128


@cache
def _common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def password_violation(password: str, *, email: str, field: str) -> FieldViolation | None:
    """The first rule `password` breaks, as a violation of `field`, or None when it passes."""
    if len(password) < MIN_LENGTH:
        return FieldViolation(field, f"must be at least {MIN_LENGTH} characters", "PASSWORD_TOO_SHORT")
    if len(password) > MAX_LENGTH:
        return FieldViolation(field, f"must be at most {MAX_LENGTH} characters", "PASSWORD_TOO_LONG")
    if password.lower() in _common_passwords():
        return FieldViolation(field, "is too common; choose another", "PASSWORD_TOO_COMMON")
    if email and password.strip().lower() == email.strip().lower():
        return FieldViolation(field, "must not be the email address", "PASSWORD_EQUALS_EMAIL")
    return None
