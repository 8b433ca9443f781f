"""Booking notices are composed from the booking events after they commit: as things were, once each."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from foothills.booking.v1 import booking_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.database import Database
from foothills_rpc.mail import outbox
from foothills_rpc.mail.mailer import SmtpMailer
from foothills_rpc.notifications import booking_news
from tests.booking_support import Desk
from tests.conftest import running_server
from tests.support import Mailbox, text_of


async def test_each_mail_tells_what_its_event_was_even_when_composed_after_later_changes(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    # No dispatcher runs (mail is left to a `send-mail` process): the booking is made and cancelled
    # before any mail is composed, and the confirmation still says confirmed.
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running)
        ann = await desk.customer("ann.news@example.com")
        booked = await desk.book(ann, seats=1)
        await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booked.name, reason="plans changed"),
                                            metadata=ann.metadata)
        assert mailbox.messages == []
        # Not yet mail, but counted as waiting mail: with send-mail down the alert on its age still fires.
        clock.advance(timedelta(minutes=3))
        assert await running.server.components.dispatcher.backlog() == (2, 180.0)
        dispatcher = running.server.components.dispatcher
        async with asyncio.timeout(60):  # on PostgreSQL an older transaction elsewhere may hold the events back
            while (await dispatcher.backlog())[0]:
                await dispatcher.deliver_due()
        mails = [m for m in mailbox.messages if m["To"] == "ann.news@example.com"]
    day = "Jan 8, 2030, 10:00 AM"  # the service's zone (Europe/London): Ann set none
    assert [m["Subject"] for m in mails] == [f"Booked: {desk.service.display_name}, {day}",
                                             f"Cancelled: {desk.service.display_name}, {day}"]
    created, cancelled = (text_of(m) for m in mails)
    assert "is confirmed." in created and "Reason:" not in created and f"Reference: {booked.name}" in created
    assert "was cancelled by you." in cancelled and "Reason: plans changed" in cancelled
    assert "Cancellation fee: free" in cancelled


async def test_dispatchers_of_several_processes_compose_each_bookings_mail_once(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running, capacity=12)
        customers = [await desk.customer(f"c{i}.news@example.com") for i in range(12)]
        await asyncio.gather(*(desk.book(who) for who in customers))
        smtp = running.server.components.settings.smtp
        assert smtp is not None
        databases = [Database(database_url, pool_size=2) for _ in range(3)]  # as three processes would
        try:
            dispatchers = [outbox.Dispatcher(db, SmtpMailer(smtp), clock, sender="foothills@example.com",
                                             composers=booking_news.composers(())) for db in databases]
            await asyncio.gather(*(d.deliver_due() for d in dispatchers for _ in range(3)))
            async with asyncio.timeout(60):  # whatever a pass skipped while another held the cursor
                while (await dispatchers[0].backlog())[0]:
                    for dispatcher in dispatchers:
                        await dispatcher.deliver_due()
        finally:
            for db in databases:
                await db.dispose()
        received = Counter(str(m["To"]) for m in mailbox.messages if m["Subject"].startswith("Booked:"))
    assert received == {f"c{i}.news@example.com": 1 for i in range(12)}
