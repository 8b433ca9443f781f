"""Notices and reminders of bookings, composed from the booking events after they commit.

A booking change writes only its event (what the booking was then, who made the change, the reason
given); the mail dispatcher, wherever it runs (a server, or the `send-mail` process), turns the
events past the `mail` cursor into notices (notices.BOOKING_NOTICES) in one transaction that also
moves the cursor, so each event is told once and the booking's own transaction neither reads
addresses nor renders text. The same pass plans the booking's reminders; `send_reminders` sends the
due ones.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db import bookings as repo
from foothills_rpc.db import reminders
from foothills_rpc.db.catalog import cancellation_of, reminders_of
from foothills_rpc.db.models import Booking, BookingEvent, Service, User
from foothills_rpc.mail.outbox import Composer, Mail, enqueue
from foothills_rpc.notifications.calendar import booking_calendar
from foothills_rpc.notifications.notices import BOOKING_NOTICES, REMINDER, notice

CONSUMER = "mail"  # its row in event_cursors
BATCH = 200
REMINDER_BATCH = 50
LAPSED = "APPROVAL_EXPIRED"  # the reason the approval sweep gives


def what_happened(event: BookingEvent) -> str:
    """The row of BOOKING_NOTICES an event falls under."""
    details = event.details
    if event.type == "created":
        return "requested" if details["status"] == "pending" else "booked"
    if event.type == "confirmed":
        return "approved"
    if event.type == "cancelled" and details.get("reason") == LAPSED:
        return "lapsed"
    return event.type


async def compose(session: AsyncSession, now: datetime, *, reminder_offsets: tuple[timedelta, ...]) -> int:
    """Queues the notices of up to BATCH new booking events and plans their reminders; returns how
    many events were taken. Each in one statement for the whole batch."""
    news = await repo.claim_news(session, CONSUMER, BATCH)
    mails: list[Mail] = []
    plans: list[reminders.Plan] = []
    for item in news:
        if not item.event.details:  # the demo's seeded history has none, and is not told
            continue
        what = what_happened(item.event)
        for told in BOOKING_NOTICES[what]:
            reader = item.customer if told.audience == "customer" else item.provider
            if told.audience != "customer" and item.event.details["by"] == reader.id.hex:
                continue  # nobody is told of what they did themselves, but customers get their receipts
            context = _context(item.event, item.booking, item.customer, item.provider, item.service, reader)
            calendar = _calendar(item.event, item.booking, item.service, item.provider) if told.calendar else ""
            if mail := notice(reader, told, context, key=f"event-{item.event.id}",
                              service_zone=item.service.time_zone, calendar=calendar):
                mails.append(mail)
        if what in ("booked", "approved", "rescheduled"):
            offsets = reminders_of(item.service)
            plans.append(reminders.Plan(item.booking.id, datetime.fromisoformat(item.event.details["start_at"]),
                                        reminder_offsets if offsets is None else offsets, after=item.event.created_at))
    await enqueue(session, mails, now)
    await reminders.plan(session, plans)
    return len(news)


async def send_reminders(session: AsyncSession, now: datetime) -> int:
    """Sends up to REMINDER_BATCH due reminders, each once. Drops those whose booking was cancelled or
    moved since they were planned, and those late by more than half their lead (after an outage, a
    "tomorrow" reminder an hour before the start says the wrong thing; a nearer one follows).
    Returns how many were taken. A statement each for the batch's sent, dropped and mail."""
    due = await reminders.claim_due(session, now, REMINDER_BATCH)
    sent: list[uuid.UUID] = []
    dropped: list[uuid.UUID] = []
    mails: list[Mail] = []
    for item in due:
        booking, lead = item.booking, item.booking.start_at - now
        if (booking.status != "confirmed" or booking.start_at != item.reminder.start_at
                or lead.total_seconds() < item.reminder.offset_seconds / 2):
            dropped.append(item.reminder.id)
            continue
        sent.append(item.reminder.id)  # sent, even to a reader who turned reminders off: it is done
        context = {**_booking_facts(booking, item.customer, item.provider, item.service), "lead": lead}
        if mail := notice(item.customer, REMINDER, context, key=f"reminder-{item.reminder.id.hex}",
                          service_zone=item.service.time_zone):
            mails.append(mail)
    await reminders.drop(session, dropped)
    await reminders.mark_sent(session, sent, now)
    await enqueue(session, mails, now)
    return len(due)


def _booking_facts(booking: Booking, customer: User, provider: User, service: Service) -> dict[str, Any]:
    return {"service": service.display_name, "about": service.description.split("\n", 1)[0][:200],
            "provider_name": provider.display_name, "customer_name": customer.display_name,
            "booking": f"bookings/{booking.id.hex}", "start": booking.start_at, "end": booking.end_at,
            "seats": booking.seats, "total_minor": booking.total_price_minor, "currency": booking.currency,
            "policy": cancellation_of(booking.cancellation_policy)}


def _context(event: BookingEvent, booking: Booking, customer: User, provider: User, service: Service,
             reader: User) -> dict[str, Any]:
    """What the templates say: the booking as the event recorded it, not as it is now."""
    details = event.details
    facts = _booking_facts(booking, customer, provider, service)
    facts.update(start=datetime.fromisoformat(details["start_at"]),
                 end=datetime.fromisoformat(details["end_at"]), seats=details["seats"],
                 total_minor=details["total_minor"], currency=details["currency"], fee_minor=details["fee_minor"],
                 reason="" if details.get("reason") == LAPSED else details.get("reason", ""),
                 by=_by(details["by"], reader, customer, provider),
                 previous_start=_moment(details.get("previous_start_at")),
                 approval_deadline=_moment(details.get("approval_deadline")))
    return facts


def _moment(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def _by(actor: str, reader: User, customer: User, provider: User) -> str:
    """Who made the change, as the reader is told it."""
    if actor == reader.id.hex:
        return "by you"
    if actor == customer.id.hex:
        return f"by {customer.display_name}"
    if actor == provider.id.hex:
        return f"by {provider.display_name}, the provider"
    return "by Foothills' staff" if actor else "by Foothills"


def _calendar(event: BookingEvent, booking: Booking, service: Service, provider: User) -> str:
    details = event.details
    return booking_calendar(booking_id=booking.id.hex, sequence=details["sequence"], summary=service.display_name,
                            description=f"{service.display_name} with {provider.display_name}. "
                                        f"Reference: bookings/{booking.id.hex}",
                            start=datetime.fromisoformat(details["start_at"]),
                            end=datetime.fromisoformat(details["end_at"]), stamp=event.created_at,
                            organizer=provider.email, cancelled=details["status"] == "cancelled")


class BookingNotices:
    """The booking events' notices (and reminder plans), for the mail dispatcher."""

    def __init__(self, reminder_offsets: tuple[timedelta, ...]) -> None:
        self._reminder_offsets = reminder_offsets

    async def compose(self, session: AsyncSession, now: datetime) -> bool:
        return await compose(session, now, reminder_offsets=self._reminder_offsets) == BATCH

    async def waiting(self, session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
        return await repo.untold_events(session, CONSUMER)


class DueReminders:
    """The reminders whose time has come, for the mail dispatcher."""

    async def compose(self, session: AsyncSession, now: datetime) -> bool:
        return await send_reminders(session, now) == REMINDER_BATCH

    async def waiting(self, session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
        return await reminders.due(session, now)


def composers(reminder_offsets: tuple[timedelta, ...]) -> tuple[Composer, ...]:
    """What the mail dispatcher runs before each delivery: the booking notices, then the due reminders."""
    return BookingNotices(reminder_offsets), DueReminders()
