"""Times and money in the reader's terms: their time zone and locale (CLDR data through Babel)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Concatenate, ParamSpec
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_currency, format_percent, get_currency_precision

from foothills_rpc.domain.cancellation import CancellationPolicy
from foothills_rpc.domain.users import locale_of

P = ParamSpec("P")


def _said_once(say: Callable[Concatenate[Wording, P], str]) -> Callable[Concatenate[Wording, P], str]:
    """Keeps what a Wording said, by method and arguments: a notice says each time, price and term in
    its text and again in its HTML, and Babel's formatting is most of rendering them."""
    @functools.wraps(say)
    def once(self: Wording, *args: P.args, **kwargs: P.kwargs) -> str:
        key = (say.__name__, *args, *kwargs.items())
        if (said := self._said.get(key)) is None:
            said = self._said[key] = say(self, *args, **kwargs)
        return said
    return once


@dataclass(frozen=True)
class Wording:
    """How one reader is told about one service: `zone` is theirs (the service's when they set none)."""

    zone: ZoneInfo
    locale: Locale
    service_zone: ZoneInfo
    _said: dict[tuple[object, ...], str] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def of(cls, *, reader_zone: str, locale: str, service_zone: str) -> Wording:
        service = ZoneInfo(service_zone)
        return cls(ZoneInfo(reader_zone) if reader_zone else service, locale_of(locale), service)

    @_said_once
    def when(self, at: datetime) -> str:
        """`Sunday, March 8, 2026, 10:00 AM (America/New_York)`, and the service's own time beside it
        when the reader is elsewhere."""
        said = self._moment(at, self.zone)
        if self.service_zone.key != self.zone.key:
            there = at.astimezone(self.service_zone)
            said += f"; {format_time(there, 'short', tzinfo=self.service_zone, locale=self.locale)}"
            if there.date() != at.astimezone(self.zone).date():
                said += f" on {format_date(there, 'medium', locale=self.locale)}"
            said += f" where the service is ({self.service_zone.key})"
        return said

    @_said_once
    def day(self, at: datetime) -> str:
        """The short form for subjects, in the reader's zone: `Mar 30, 2026, 10:00 AM`."""
        local = at.astimezone(self.zone)
        return f"{format_date(local, 'medium', locale=self.locale)}, {self.time(at)}"

    @_said_once
    def time(self, at: datetime) -> str:
        """The time of day alone, in the reader's zone: `10:00 AM`."""
        return format_time(at, "short", tzinfo=self.zone, locale=self.locale)

    @_said_once
    def money(self, minor: int, currency: str) -> str:
        """Minor units with the currency's own digits and symbol: 123456 KWD is `KWD123.456` in `en`."""
        return format_currency(Decimal(minor).scaleb(-get_currency_precision(currency)), currency, locale=self.locale)

    @_said_once
    def duration(self, span: timedelta) -> str:
        """`24 hours`, `36 hours`, `2 days`: in the reader's language, never rounded up to a larger unit
        (terms must be exact)."""
        return format_timedelta(span, threshold=2, locale=self.locale)

    @_said_once
    def roughly(self, span: timedelta) -> str:
        """`1 hour`, `1 day`, `45 minutes`: how long until something, rounded as a person says it."""
        return format_timedelta(span, locale=self.locale)

    @_said_once
    def terms(self, policy: CancellationPolicy) -> str:
        """A cancellation policy in plain words: `Free until 1 day before the start; 50% of the price
        from 1 day before; not possible in the last 2 hours.`"""
        if not policy.tiers:
            return "Free cancellation until the start."
        said = [f"Free until {self.duration(policy.tiers[0].before_start)} before the start"]
        for tier in policy.tiers:
            if not tier.allowed:
                said.append(f"not possible in the last {self.duration(tier.before_start)}")
                break
            fee = format_percent(tier.fee_bps / 10_000, locale=self.locale)
            said.append(f"{fee} of the price from {self.duration(tier.before_start)} before")
        return "; ".join(said) + "."

    def _moment(self, at: datetime, zone: ZoneInfo) -> str:
        local = at.astimezone(zone)
        return (f"{format_date(local, 'full', locale=self.locale)}, "
                f"{format_time(local, 'short', tzinfo=zone, locale=self.locale)} ({zone.key})")
