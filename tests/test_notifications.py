"""What people are told, through a real server and a real SMTP server: who receives each notice (and
who does not), times in the reader's zone, money in the currency's own digits, calendar files that
update in place, reminders sent once across processes, and the readers' preferences."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from google.protobuf import field_mask_pb2
from icalendar import Calendar

from foothills.admin.v1 import admin_pb2
from foothills.auth.v1 import auth_pb2, user_pb2
from foothills.booking.v1 import booking_pb2
from foothills.catalog.v1 import catalog_pb2
from foothills.type.v1 import types_pb2
from foothills_rpc import cli
from foothills_rpc.clock import ManualClock
from foothills_rpc.config import SmtpSettings
from foothills_rpc.db.database import Database
from foothills_rpc.domain.users import Role
from foothills_rpc.mail.mailer import SmtpMailer
from foothills_rpc.mail.outbox import Dispatcher
from foothills_rpc.notifications import booking_news
from foothills_rpc.notifications.notices import every_notice
from foothills_rpc.notifications.preview import with_samples
from foothills_rpc.notifications.render import kinds
from tests.booking_support import TUESDAY_10, Desk, error_of
from tests.catalog_support import at, duration, ts, weekly
from tests.conftest import PASSWORD, Caller, Running, running_server
from tests.support import Mailbox, free_port, html_of, text_of, violations

DOCS = Path(__file__).parents[1] / "docs" / "notifications.md"
SETTINGS = catalog_pb2.BookingSettings(minimum_notice=duration(hours=1), maximum_days_ahead=90)
DAILY = weekly([1, 2, 3, 4, 5, 6, 7], "09:00", "17:00")


async def _deliver(running: Running) -> None:
    """This server's dispatcher until nothing waits: every event composed, every due mail sent. (On
    PostgreSQL an event is read once no older transaction runs, and another process's may delay it.)"""
    await _drain(running.server.components.dispatcher)


async def _drain(*dispatchers: Dispatcher) -> None:
    async with asyncio.timeout(60):
        await asyncio.gather(*(dispatcher.deliver_due() for dispatcher in dispatchers))
        while (await dispatchers[0].backlog())[0]:
            await asyncio.sleep(0.05)
            await asyncio.gather(*(dispatcher.deliver_due() for dispatcher in dispatchers))


def _subjects(mailbox: Mailbox) -> Counter[tuple[str, str]]:
    """(recipient, the subject's first word) of every mail received."""
    return Counter((str(m["To"]), str(m["Subject"]).strip().split(":")[0]) for m in mailbox.messages)


async def _set_profile(running: Running, who: Caller, **fields: object) -> None:
    await running.auth.UpdateProfile(auth_pb2.UpdateProfileRequest(
        user=user_pb2.User(**fields), update_mask=field_mask_pb2.FieldMask(paths=list(fields))),  # type: ignore[arg-type]
        metadata=who.metadata)


def _addressed_to(address: str) -> Callable[[EmailMessage], bool]:
    return lambda message: message["To"] == address


def _calendar(mail: EmailMessage) -> Calendar:
    parts = [part for part in mail.iter_attachments() if part.get_content_type() == "text/calendar"]
    assert len(parts) == 1, [part.get_content_type() for part in mail.iter_attachments()]
    return Calendar.from_ical(parts[0].get_content())


def _mail(mailbox: Mailbox, to: str, first_word: str) -> EmailMessage:
    found = [m for m in mailbox.to(to) if str(m["Subject"]).strip().startswith(f"{first_word}:")]
    assert len(found) == 1, [m["Subject"] for m in mailbox.to(to)]
    return found[0]


# --- who is told ---------------------------------------------------------------------------------


async def test_a_booking_tells_its_customer_and_provider_and_nobody_else(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running, capacity=3)
        ann = await desk.customer("ann@example.com")
        booked = await desk.book(ann, seats=2)
        await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
            name=booked.name, new_start_time=ts(at("2030-01-09T11:00")), request_id="move-1"), metadata=ann.metadata)
        await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booked.name, reason="ill"),
                                            metadata=ann.metadata)
        await _deliver(running)
        assert _subjects(mailbox) == {("ann@example.com", "Booked"): 1, ("ann@example.com", "Moved"): 1,
                                      ("ann@example.com", "Cancelled"): 1, ("provider@example.com", "New booking"): 1,
                                      ("provider@example.com", "Moved"): 1, ("provider@example.com", "Cancelled"): 1}
        moved = text_of(_mail(mailbox, "ann@example.com", "Moved"))
        assert "Was: Tuesday, January 8, 2030, 10:00\u202fAM (Europe/London)" in moved
        assert "Now: Wednesday, January 9, 2030, 11:00\u202fAM (Europe/London)" in moved
        assert "was moved by you." in moved and "Reason:" not in moved
        told = text_of(_mail(mailbox, "provider@example.com", "Cancelled"))
        assert "was cancelled by Test User" in told and "Reason: ill" in told and "Seats: 2" in told
        # The provider cancelling a booking tells the customer who did it, and the provider nothing.
        mailbox.clear()
        bob = await desk.customer("bob@example.com")
        other = await desk.book(bob)
        await _deliver(running)
        mailbox.clear()
        await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=other.name, reason="closed"),
                                            metadata=desk.world.provider.metadata)
        await _deliver(running)
        assert _subjects(mailbox) == {("bob@example.com", "Cancelled"): 1}
        assert "was cancelled by Test User, the provider." in text_of(mailbox.messages[0])


async def test_approvals_tell_the_provider_what_to_do_and_the_customer_how_it_ended(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running, capacity=2, booking_settings=catalog_pb2.BookingSettings(
            minimum_notice=duration(hours=1), maximum_days_ahead=60, requires_approval=True))
        ann, bob = await desk.customer("ann@example.com"), await desk.customer("bob@example.com")
        approved, lapsing = await desk.book(ann), await desk.book(bob)
        await _deliver(running)
        assert _subjects(mailbox) == {("ann@example.com", "Request received"): 1,
                                      ("bob@example.com", "Request received"): 1,
                                      ("provider@example.com", "Action needed"): 2}
        action = text_of(mailbox.to("provider@example.com")[0])
        assert "Approve by: Tuesday, January 8, 2030, 9:00\u202fAM (Europe/London)" in action  # start - notice
        mailbox.clear()
        await running.booking.ConfirmBooking(booking_pb2.ConfirmBookingRequest(name=approved.name),
                                             metadata=desk.world.provider.metadata)
        running.clock.advance(timedelta(hours=24))  # past the deadline of Bob's request
        assert await running.server.components.bookings.expire_approvals() == 1
        await _deliver(running)
        # Ann's day-ahead reminder is past its time and dropped; the hour-ahead one is due now.
        assert _subjects(mailbox) == {("ann@example.com", "Approved"): 1, ("ann@example.com", "Reminder"): 1,
                                      ("bob@example.com", "Not approved in time"): 1,
                                      ("provider@example.com", "Lapsed unapproved"): 1}
        assert _calendar(_mail(mailbox, "ann@example.com", "Approved"))["METHOD"] == "REQUEST"
        lapsed = text_of(mailbox.to("bob@example.com")[0])
        assert "Nothing is charged." in lapsed and lapsing.name in lapsed and "APPROVAL_EXPIRED" not in lapsed


async def test_support_requests_reach_the_admins_then_the_assignee_and_replies_the_requester(
        running: Running) -> None:
    ann = await running.signed_in("ann@example.com")
    first = await running.signed_in("admin1@example.com", role=Role.ADMIN)
    second = await running.signed_in("admin2@example.com", role=Role.ADMIN)
    asked = (await running.admin.CreateSupportRequest(admin_pb2.CreateSupportRequestRequest(
        subject="Parking", body="Where do I park?", request_id="ask-1"), metadata=ann.metadata)).support_request
    for admin in ("admin1@example.com", "admin2@example.com"):
        mail = await running.mailbox.wait_for(_addressed_to(admin))
        assert mail["Subject"] == "New support request: Parking" and "Message: Where do I park?" in text_of(mail)
    await running.admin.AssignSupportRequest(admin_pb2.AssignSupportRequestRequest(
        name=asked.name, assignee=second.name), metadata=first.metadata)
    await running.mailbox.wait_for(lambda m: m["To"] == "admin2@example.com" and "Assigned to you" in m["Subject"])
    await running.admin.AddSupportMessage(admin_pb2.AddSupportMessageRequest(
        name=asked.name, body="It is urgent."), metadata=ann.metadata)
    await running.mailbox.wait_for(lambda m: m["To"] == "admin2@example.com" and "New message" in m["Subject"])
    await running.admin.AddSupportMessage(admin_pb2.AddSupportMessageRequest(
        name=asked.name, body="Behind the building <b>B</b>."), metadata=second.metadata)
    reply = await running.mailbox.wait_for(lambda m: m["To"] == "ann@example.com")
    assert "Reply: Behind the building <b>B</b>." in text_of(reply)
    assert "Behind the building &lt;b&gt;B&lt;/b&gt;." in html_of(reply)  # the HTML part escapes what people wrote
    await _settle(running)
    assert _subjects(running.mailbox) == {
        ("admin1@example.com", "New support request"): 1, ("admin2@example.com", "New support request"): 1,
        ("admin2@example.com", "Assigned to you"): 1, ("admin2@example.com", "New message on support request"): 1,
        ("ann@example.com", "Reply to your support request"): 1}


async def test_a_password_change_is_confirmed_to_the_accounts_address(running: Running) -> None:
    ann = await running.signed_in("ann@example.com")
    await running.auth.ChangePassword(auth_pb2.ChangePasswordRequest(
        current_password=PASSWORD, new_password="another long passphrase"), metadata=ann.metadata)
    mail = await running.mailbox.wait_for(lambda m: m["To"] == "ann@example.com")
    assert mail["Subject"] == "Your Foothills password was changed"
    assert "If this was not you, reset your password now" in text_of(mail)


async def test_role_changes_and_disabling_are_told_to_the_account(running: Running) -> None:
    ann = await running.signed_in("ann@example.com")
    admin = await running.signed_in("admin@example.com", role=Role.ADMIN)
    await running.admin.SetUserRole(admin_pb2.SetUserRoleRequest(name=ann.name, role=user_pb2.ROLE_PROVIDER),
                                    metadata=admin.metadata)
    await running.admin.DisableUser(admin_pb2.DisableUserRequest(name=ann.name, reason="unpaid invoices"),
                                    metadata=admin.metadata)
    await running.admin.EnableUser(admin_pb2.EnableUserRequest(name=ann.name), metadata=admin.metadata)
    await running.mailbox.wait_for(lambda m: m["To"] == "ann@example.com" and "enabled again" in m["Subject"])
    await _settle(running)
    mails = {str(m["Subject"]).strip(): text_of(m) for m in running.mailbox.to("ann@example.com")}
    assert set(mails) == {"Your Foothills role is now provider", "Your Foothills account was disabled",
                          "Your Foothills account is enabled again"}
    assert "Reason: unpaid invoices" in mails["Your Foothills account was disabled"]
    assert "it was customer and is now provider" in " ".join(mails["Your Foothills role is now provider"].split())


async def test_a_change_by_someone_else_that_strands_bookings_tells_the_provider(running: Running) -> None:
    desk = await Desk.open(running)
    booked = await desk.book(await desk.customer())
    service = desk.service.name
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{service}/availability", weekly_windows=weekly([1], "09:00", "10:00"))),
        metadata=desk.world.admin.metadata)
    mail = await running.mailbox.wait_for(lambda m: m["To"] == "provider@example.com" and "no longer" in m["Subject"])
    assert mail["Subject"] == f"1 booking no longer fits: {desk.service.display_name}"
    assert f"Tuesday, January 8, 2030, 10:00\u202fAM (Europe/London): {booked.name}" in text_of(mail)
    # The provider's own change strands nothing new to tell them of.
    await running.catalog.SetAvailability(catalog_pb2.SetAvailabilityRequest(availability=catalog_pb2.Availability(
        name=f"{service}/availability", weekly_windows=weekly([3], "09:00", "10:00"))),
        metadata=desk.world.provider.metadata)
    await _settle(running)
    assert len([m for m in running.mailbox.to("provider@example.com") if "no longer" in m["Subject"]]) == 1


# --- in the reader's terms -----------------------------------------------------------------------


async def test_a_new_york_customer_of_a_berlin_service_reads_new_york_time_across_the_dst_change(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running, time_zone="Europe/Berlin", booking_settings=SETTINGS, availability=DAILY)
        ann = await desk.customer("ann@example.com")
        await _set_profile(running, ann, time_zone="America/New_York")
        # 10:00 in Berlin: 4 AM in New York in January, 5 AM on 20 March 2030, when New York has
        # moved its clocks (10 March) and Berlin not yet (31 March).
        await desk.book(ann, at("2030-01-09T09:00"))
        await desk.book(ann, at("2030-03-20T09:00"))
        await _deliver(running)
        january, march = sorted(mailbox.to("ann@example.com"), key=lambda m: "Mar" in str(m["Subject"]))
        assert january["Subject"] == "Booked: Deep tissue massage, Jan 9, 2030, 4:00 AM"
        assert ("When: Wednesday, January 9, 2030, 4:00\u202fAM (America/New_York); 10:00\u202fAM where the service "
                "is (Europe/Berlin)") in text_of(january)
        assert ("When: Wednesday, March 20, 2030, 5:00\u202fAM (America/New_York); 10:00\u202fAM where the service "
                "is (Europe/Berlin)") in text_of(march)
        # The provider set no zone: they read the service's own time.
        told = [text_of(m) for m in mailbox.to("provider@example.com")]
        assert any("When: Wednesday, March 20, 2030, 10:00\u202fAM (Europe/Berlin)\n" in text for text in told)


async def test_money_has_the_currencys_own_digits_and_the_readers_locale(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        yen = await Desk.open(running, base_price=types_pb2.Money(amount_minor=1500, currency_code="JPY"))
        dinar = await yen.world.service(display_name="Kuwait city tour",
                                        base_price=types_pb2.Money(amount_minor=12345, currency_code="KWD"))
        ann = await yen.customer("ann@example.com")
        await yen.book(ann)
        await yen.book(ann, at("2030-01-08T12:00"), service=dinar.name)
        await _deliver(running)
        prices = sorted(line for m in mailbox.to("ann@example.com") for line in text_of(m).splitlines()
                        if line.startswith("Price:"))
        assert prices == ["Price: KWD12.345", "Price: ¥1,500"]
        # In German: the comma is the decimal mark, the code follows the amount, and so do the dates.
        mailbox.clear()
        await _set_profile(running, ann, locale="de-DE")
        await yen.book(ann, at("2030-01-09T10:00"), service=dinar.name)
        await _deliver(running)
        text = text_of(mailbox.to("ann@example.com")[0])
        assert "Price: 12,345\u00a0KWD" in text and "When: Mittwoch, 9. Januar 2030, 10:00 (Europe/London)" in text


# --- calendar files ------------------------------------------------------------------------------


async def test_the_calendar_file_keeps_one_uid_and_raises_its_sequence_until_it_is_cancelled(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running)
        ann = await desk.customer("ann@example.com")
        booked = await desk.book(ann)
        await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
            name=booked.name, new_start_time=ts(at("2030-01-09T11:00")), request_id="move-1"), metadata=ann.metadata)
        await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booked.name), metadata=ann.metadata)
        await _deliver(running)
        files = [_calendar(_mail(mailbox, "ann@example.com", word)) for word in ("Booked", "Moved", "Cancelled")]
    events = [calendar.walk("VEVENT")[0] for calendar in files]
    assert [str(c["METHOD"]) for c in files] == ["REQUEST", "REQUEST", "CANCEL"]
    assert {str(e["UID"]) for e in events} == {f"{booked.name.removeprefix('bookings/')}@foothills"}
    assert [e.decoded("SEQUENCE") for e in events] == [0, 1, 2]
    starts = [e.decoded("DTSTART") for e in events]
    assert starts == [TUESDAY_10, at("2030-01-09T11:00"), at("2030-01-09T11:00")]
    assert all(start.tzinfo is not None and start.utcoffset() == timedelta(0) for start in starts)
    assert events[0].decoded("DTEND") == TUESDAY_10 + timedelta(hours=1)
    assert str(events[0]["SUMMARY"]) == "Deep tissue massage"
    assert [str(e["STATUS"]) for e in events] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    assert "Cancellation fee: free" in text_of(_mail(mailbox, "ann@example.com", "Cancelled"))


# --- reminders -----------------------------------------------------------------------------------


async def test_reminders_go_once_each_across_processes_follow_a_reschedule_and_stop_on_cancel(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running, capacity=3, availability=DAILY)
        ann, bob = await desk.customer("ann@example.com"), await desk.customer("bob@example.com")
        late = await desk.customer("late@example.com")
        # Monday 09:00: three bookings of Tuesday 10:00, reminded 24 h and 1 h before.
        staying, moving = await desk.book(ann), await desk.book(bob)
        cancelled = await desk.book(await desk.customer("carl@example.com"))
        smtp = running.server.components.settings.smtp
        assert smtp is not None
        databases = [Database(database_url, pool_size=2) for _ in range(2)]  # as two processes would
        dispatchers = [Dispatcher(db, SmtpMailer(smtp), clock, sender="foothills@example.com",
                                  composers=booking_news.composers((timedelta(hours=24), timedelta(hours=1))))
                       for db in databases]

        async def both_deliver() -> None:
            await asyncio.gather(*(d.deliver_due() for d in dispatchers for _ in range(2)))
            await _drain(*dispatchers)  # whatever a pass skipped while the other held the cursor

        try:
            await both_deliver()
            clock.advance(timedelta(minutes=30))
            await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=cancelled.name),
                                                metadata=(await running.again(desk.world.admin)).metadata)
            await both_deliver()
            clock.advance(timedelta(hours=1))  # Monday 10:30: the day-ahead reminders are due
            await both_deliver()
            # Booked 23.5 hours ahead: no day-ahead reminder for this one.
            await desk.book(await running.again(late), at("2030-01-08T10:00"))
            await running.booking.RescheduleBooking(booking_pb2.RescheduleBookingRequest(
                name=moving.name, new_start_time=ts(at("2030-01-09T10:00")), request_id="move-1"),
                metadata=(await running.again(bob)).metadata)
            await both_deliver()
            clock.advance(timedelta(hours=22, minutes=45))  # Tuesday 09:15: the hour-ahead ones of 10:00
            await both_deliver()
            clock.advance(timedelta(hours=1))  # Tuesday 10:15: Bob's day-ahead one for Wednesday
            await both_deliver()
            clock.advance(timedelta(hours=23))  # Wednesday 09:15: and his hour-ahead one
            await both_deliver()
            await both_deliver()
        finally:
            for db in databases:
                await db.dispose()
    reminders = [m for m in mailbox.messages if str(m["Subject"]).strip().startswith("Reminder:")]
    days = Counter((str(m["To"]), str(m["Subject"]).split(", ")[1]) for m in reminders)
    assert days == {("ann@example.com", "Jan 8"): 2,
                    ("bob@example.com", "Jan 8"): 1,  # the day-ahead one, sent before the move
                    ("bob@example.com", "Jan 9"): 2,  # re-planned for Wednesday; none left for Tuesday
                    ("late@example.com", "Jan 8"): 1}
    last = [text_of(m) for m in reminders if m["To"] == "ann@example.com"][-1]
    assert "in 45 minutes." in " ".join(last.split()) and staying.name in last


async def test_a_service_sets_its_own_reminders_or_none(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        two_hours = catalog_pb2.BookingSettings(minimum_notice=duration(hours=1), maximum_days_ahead=60,
                                                reminders=catalog_pb2.Reminders(before_start=[duration(hours=2)]))
        desk = await Desk.open(running, booking_settings=two_hours)
        assert list(desk.service.booking_settings.reminders.before_start) == [duration(hours=2)]
        silent = await desk.world.service(display_name="Quiet room", booking_settings=catalog_pb2.BookingSettings(
            reminders=catalog_pb2.Reminders()))
        assert silent.booking_settings.HasField("reminders") and not silent.booking_settings.reminders.before_start
        ann = await desk.customer("ann@example.com")
        await desk.book(ann)
        await desk.book(ann, at("2030-01-08T14:00"), service=silent.name)
        await _deliver(running)
        for hours in (1, 22, 2, 4):  # Monday 10:00, Tuesday 08:00 (two hours before), 10:00, 14:00
            clock.advance(timedelta(hours=hours))
            await _deliver(running)
        reminders = [m for m in mailbox.to("ann@example.com") if str(m["Subject"]).strip().startswith("Reminder:")]
        subjects = [str(m["Subject"]).strip() for m in reminders]
        assert subjects == ["Reminder: Deep tissue massage, Jan 8, 2030, 10:00 AM"]
        assert "in 2 hours." in " ".join(text_of(reminders[0]).split())


async def test_reminders_out_of_bounds_are_refused_with_every_problem(running: Running) -> None:
    desk = await Desk.open(running)
    for reminders, expected in (([duration(hours=1)] * 6, "TOO_MANY"), ([duration(seconds=30)], "INVALID_VALUE"),
                                ([duration(days=31)], "INVALID_VALUE"), ([duration(hours=1)] * 2, "INVALID_VALUE")):
        error = await error_of(running.catalog.UpdateService(catalog_pb2.UpdateServiceRequest(
            service=catalog_pb2.Service(name=desk.service.name, etag=desk.service.etag, booking_settings=(
                catalog_pb2.BookingSettings(reminders=catalog_pb2.Reminders(before_start=reminders)))),
            update_mask=field_mask_pb2.FieldMask(paths=["booking_settings"])), metadata=desk.world.provider.metadata))
        assert violations(error) == {"service.booking_settings.reminders.before_start": expected}


# --- preferences ---------------------------------------------------------------------------------


async def test_preferences_silence_reminders_and_notices_but_never_receipts(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running, capacity=2)
        ann = await desk.customer("ann@example.com")
        await _set_profile(running, ann, reminders_enabled=False)
        await _set_profile(running, desk.world.provider, notices_enabled=False)
        booked = await desk.book(ann)
        clock.advance(timedelta(hours=2))  # past the 24-hour reminder's time
        await _deliver(running)
        ann = await running.again(ann)
        await running.booking.CancelBooking(booking_pb2.CancelBookingRequest(name=booked.name), metadata=ann.metadata)
        await _deliver(running)
        assert _subjects(mailbox) == {("ann@example.com", "Booked"): 1, ("ann@example.com", "Cancelled"): 1}
        assert "turn them off there" not in text_of(mailbox.messages[0])  # a receipt: not optional
        # A provider with notices on is told, with how to turn them off.
        await _set_profile(running, await running.again(desk.world.provider), notices_enabled=True)
        await _set_profile(running, ann, reminders_enabled=True)
        mailbox.clear()
        await desk.book(ann, at("2030-01-09T10:00"))
        clock.advance(timedelta(hours=23))  # Tuesday 11:00: the booking's day-ahead reminder is due
        await _deliver(running)
        assert _subjects(mailbox) == {("ann@example.com", "Booked"): 1, ("provider@example.com", "New booking"): 1,
                                      ("ann@example.com", "Reminder"): 1}
        assert "notices are on in your profile (notices_enabled)" in text_of(mailbox.to("provider@example.com")[0])


# --- faults --------------------------------------------------------------------------------------


async def test_no_notice_is_lost_or_doubled_when_smtp_is_down_and_comes_back(
        database_url: str, clock: ManualClock, mailbox: Mailbox) -> None:
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        desk = await Desk.open(running, capacity=5)
        customers = [await desk.customer(f"c{i}@example.com") for i in range(5)]
        for who in customers:
            await desk.book(who)
        down = Dispatcher(running.server.components.db, SmtpMailer(SmtpSettings(
            host="127.0.0.1", port=free_port(), starttls=False, timeout_seconds=2)), clock,
            sender="foothills@example.com", composers=booking_news.composers(()))
        failed = 0
        async with asyncio.timeout(60):
            while failed < 10:  # five receipts and five provider notices, each tried once and failed
                failed += await down.deliver_due()
        assert failed == 10
        assert await down.deliver_due() == 0  # composing again queues nothing new; nothing is due yet
        assert mailbox.messages == []
        clock.advance(timedelta(minutes=5))  # past the retry backoff
        await _deliver(running)
        await _deliver(running)
    assert _subjects(mailbox) == {**{(f"c{i}@example.com", "Booked"): 1 for i in range(5)},
                                  ("provider@example.com", "New booking"): 5}


# --- the table, the templates, the previews ---------------------------------------------------------


def test_every_template_is_a_row_of_the_table_and_every_row_has_a_template() -> None:
    assert sorted({told.kind for told in every_notice()}) == kinds()


def test_docs_show_every_kind_as_currently_rendered() -> None:
    document = DOCS.read_text()
    assert document == with_samples(document), (
        "docs/notifications.md is stale: run `scripts/foothills-rpc preview-mail --doc docs/notifications.md`")
    assert all(f"### `{told.kind}`" in document for told in every_notice())


def test_preview_mail_writes_a_sample_of_each_kind_named(tmp_path: Path) -> None:
    assert cli.main(["preview-mail", "booking_cancelled", "waitlist_offer", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "booking_cancelled.html", "booking_cancelled.ics", "booking_cancelled.txt", "waitlist_offer.html",
        "waitlist_offer.txt"]
    assert "METHOD:CANCEL" in (tmp_path / "booking_cancelled.ics").read_text()
    assert cli.main(["preview-mail", "no_such_kind", "--out", str(tmp_path)]) == 2


# --- helpers -------------------------------------------------------------------------------------


async def _settle(running: Running) -> None:
    """Lets this server's own dispatcher finish what it has (it runs in the background here)."""
    for _ in range(3):
        await _deliver(running)
        await asyncio.sleep(0.3)

