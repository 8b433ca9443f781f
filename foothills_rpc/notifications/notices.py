"""Who is told what: the notice table, and queuing one notice for one reader.

BOOKING_NOTICES: a booking event's "what" (booked, requested, approved, rescheduled, cancelled,
lapsed, completed) names which audience gets which template, whether the notice is optional (the
reader may turn notices off in their profile) and whether it carries the booking's calendar file.
A staff member is not told of a change they made themselves; customers get receipts of their own.
SUPPORT_NOTICES: the same for support requests. The rest (password reset and change, waitlist
offers, reminders, conflicts on a provider's service) are single rows. Receipts of a customer's
own bookings, security notices and waitlist offers are never optional.

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

Audience = Literal["customer", "provider", "requester", "staff", "assignee", "account"]


@dataclass(frozen=True)
class Told:
    audience: Audience
    kind: str  # its template: templates/<kind>.j2
    optional: bool = False  # not sent when the reader turned notices off
    calendar: bool = False  # carries the booking's calendar file
    reminder: bool = False  # not sent when the reader turned reminders off


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

# Support requests: "staff" is the request's assignee once it has one, else every enabled admin.
SUPPORT_NOTICES: dict[str, Told] = {
    "opened": Told("staff", "support_new_request", optional=True),
    "requester_wrote": Told("staff", "support_message", optional=True),
    "staff_replied": Told("requester", "support_reply"),
    "status_changed": Told("requester", "support_status"),
    "assigned": Told("assignee", "support_assigned", optional=True),
}

# One reader's own account, offers and bookings' schedule; never optional.
PASSWORD_RESET = Told("account", "password_reset")
PASSWORD_CHANGED = Told("account", "password_changed")  # ASVS V2.2.3: notify after a credential change
ROLE_CHANGED = Told("account", "account_role_changed")
ACCOUNT_DISABLED = Told("account", "account_disabled")
ACCOUNT_ENABLED = Told("account", "account_enabled")
WAITLIST_OFFER = Told("customer", "waitlist_offer")
REMINDER = Told("customer", "booking_reminder", reminder=True)
CONFLICTS = Told("provider", "provider_conflicts")  # a change they did not make stranded their bookings


def every_notice() -> list[Told]:
    """Every row of the table, for the previews and the tests."""
    booking = [told for row in BOOKING_NOTICES.values() for told in row]
    return [*booking, *SUPPORT_NOTICES.values(), PASSWORD_RESET, PASSWORD_CHANGED, ROLE_CHANGED, ACCOUNT_DISABLED,
            ACCOUNT_ENABLED, WAITLIST_OFFER, REMINDER, CONFLICTS]


async def notify(session: AsyncSession, reader: User, told: Told, context: dict[str, Any], *, key: str,
                 now: datetime, service_zone: str = "UTC", calendar: str = "") -> bool:
    """Queues notice `told` for `reader` (`notice`); False when not queued."""
    if (mail := notice(reader, told, context, key=key, service_zone=service_zone, calendar=calendar)) is None:
        return False
    await outbox.enqueue(session, [mail], now)
    return True


def notice(reader: User, told: Told, context: dict[str, Any], *, key: str, service_zone: str = "UTC",
           calendar: str = "") -> outbox.Mail | None:
    """Notice `told` for `reader` in their terms, unless it is optional and they turned notices off (or a
    reminder and they turned reminders off). `key` names what it reports: with the kind and the reader
    it makes the notice's outbox key."""
    if (told.optional and not reader.notices_enabled) or (told.reminder and not reader.reminders_enabled):
        return None
    wording = Wording.of(reader_zone=reader.time_zone, locale=reader.locale, service_zone=service_zone)
    rendered = render(told.kind, {**context, "w": wording, "reader_name": reader.display_name,
                                  "html_lang": reader.locale or "en", "optional": told.optional,
                                  "reminder": told.reminder, "calendar": bool(calendar)})
    return outbox.Mail(recipient=reader.email, subject=rendered.subject[:200], body=rendered.text,
                       html=rendered.html, calendar=calendar, key=f"{key}:{told.kind}:{reader.id.hex}")
