"""Who is told what: the notice table, and queuing one notice for one reader.

A booking event's "what" (booked, requested, approved, rescheduled, cancelled, lapsed, completed)
names a row of BOOKING_NOTICES: which audience gets which template, whether the notice is optional
(the reader may turn notices off in their profile) and whether it carries the booking's calendar
file. Receipts of a customer's own bookings, security notices and waitlist offers are never
optional. A staff member is not told of a change they made themselves.

Every notice is queued in the outbox under a key (what it reports, its kind, its reader): queuing
the same notice again is a no-op, so composing an event twice never mails it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db.models import User
from foothills_rpc.mail import outbox
from foothills_rpc.notifications.render import render
from foothills_rpc.notifications.wording import Wording

Audience = Literal["customer", "provider"]


@dataclass(frozen=True)
class Told:
    audience: Audience
    kind: str  # its template: templates/<kind>.j2
    optional: bool = False
    calendar: bool = False


BOOKING_NOTICES: dict[str, tuple[Told, ...]] = {
    "booked": (Told("customer", "booking_confirmed", calendar=True),
               Told("provider", "provider_new_booking", optional=True)),
    "requested": (Told("customer", "booking_requested"), Told("provider", "provider_approval_needed")),
    "approved": (Told("customer", "booking_approved", calendar=True),),
    "rescheduled": (Told("customer", "booking_rescheduled", calendar=True),
                    Told("provider", "provider_booking_rescheduled", optional=True)),
    "cancelled": (Told("customer", "booking_cancelled", calendar=True),
                  Told("provider", "provider_booking_cancelled", optional=True)),
    "lapsed": (Told("customer", "booking_lapsed"), Told("provider", "provider_booking_lapsed", optional=True)),
    "completed": (),
}


async def notify(session: AsyncSession, reader: User, kind: str, context: dict[str, Any], *, key: str,
                 now: datetime, service_zone: str = "UTC", optional: bool = False, reminder: bool = False,
                 calendar: str = "") -> bool:
    """Queues notice `kind` for `reader` in their terms, unless it is optional and they turned notices
    off (or it is a reminder and they turned reminders off); False when not queued."""
    if (optional and not reader.notices_enabled) or (reminder and not reader.reminders_enabled):
        return False
    wording = Wording.of(reader_zone=reader.time_zone, locale=reader.locale, service_zone=service_zone)
    rendered = render(kind, {**context, "w": wording, "reader_name": reader.display_name,
                             "html_lang": reader.locale or "en", "optional": optional, "reminder": reminder,
                             "calendar": bool(calendar)})
    await outbox.enqueue(session, recipient=reader.email, subject=rendered.subject[:200], body=rendered.text,
                         html=rendered.html, calendar=calendar, key=f"{key}:{kind}:{reader.id.hex}", now=now)
    return True
