"""Users: roles and the rules for their fields."""

from __future__ import annotations

import enum
import re
import zoneinfo
from functools import cache

from babel import Locale, UnknownLocaleError

MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 100
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is proven by mail.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")

DEFAULT_LOCALE = "en"
MAX_LOCALE_LENGTH = 35


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    PROVIDER = "provider"
    ADMIN = "admin"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why a normalised email is unacceptable, or None."""
    if not email:
        return "is required"
    if len(email) > MAX_EMAIL_LENGTH:
        return f"must be at most {MAX_EMAIL_LENGTH} characters"
    if not _EMAIL.match(email):
        return "is not an email address"
    return None


def display_name_problem(name: str) -> str | None:
    stripped = name.strip()
    if not stripped:
        return "is required"
    if len(stripped) > MAX_DISPLAY_NAME_LENGTH:
        return f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters"
    if any(not ch.isprintable() for ch in stripped):
        return "must not contain control characters"
    return None


def phone_problem(phone: str) -> str | None:
    if phone and not _E164.match(phone):
        return "must be in E.164 form, for example +442071838750"
    return None


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zone_problem(zone: str) -> str | None:
    if zone and zone not in _zones():
        return "must be an IANA time zone name, for example Europe/London"
    return None


def locale_problem(tag: str) -> str | None:
    """Why `tag` is not a BCP 47 locale with formatting data (CLDR, through Babel); empty means the default."""
    if len(tag) > MAX_LOCALE_LENGTH:
        return f"must be at most {MAX_LOCALE_LENGTH} characters"
    if tag:
        try:
            locale_of(tag)
        except (ValueError, UnknownLocaleError):
            return "must be a BCP 47 language tag such as en, en-GB or de-CH"
    return None


@cache
def locale_of(tag: str) -> Locale:
    return Locale.parse(tag or DEFAULT_LOCALE, sep="-")
