"""The outbox dispatcher batches: mail committed while it lingers shares one claim and one record."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.policy import compat32
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from foothills.auth.v1 import auth_pb2
from foothills_rpc.clock import ManualClock
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import OutboxMessage
from foothills_rpc.mail import outbox
from tests.conftest import running_server
from tests.support import Mailbox, stop_process

CLAIM = "UPDATE outbox SET available_at="  # leases the batch
RECORD = "UPDATE outbox SET body="  # and sent_at: records the batch as sent


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, messages: Sequence[Message]) -> list[Exception | None]:
        self.sent += [str(message["To"]) for message in messages]
        return [None] * len(messages)


async def test_mail_committed_while_the_dispatcher_lingers_shares_one_claim_and_one_record(
        database_url: str, clock: ManualClock) -> None:
    """Five bookings' worth of mail, each in its own transaction and each waking the dispatcher, go
    out in one batch: one claiming UPDATE and one recording UPDATE for all five (before batching, a
    busy server paid two transactions per mail). Each mail is delivered once and recorded as sent."""
    db = Database(database_url, pool_size=4)
    mailer = _Recorder()
    dispatcher = outbox.Dispatcher(db, mailer, clock, sender="foothills@example.com", poll_seconds=60,
                                   linger_seconds=2.0)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    recipients = [f"r{i}@example.com" for i in range(5)]
    try:
        dispatcher.start()
        for recipient in recipients:
            async def write(session: AsyncSession, recipient: str = recipient) -> None:
                await outbox.enqueue(session, [outbox.Mail(recipient=recipient, subject="s", body="b")], clock.now())

            await db.run(write)
            dispatcher.notify()
        deadline = time.monotonic() + 30
        while len(mailer.sent) < len(recipients) or not any(s.startswith(RECORD) for s in statements):
            assert time.monotonic() < deadline, mailer.sent
            await asyncio.sleep(0.02)
        await dispatcher.stop()
        rows = await db.run(_rows)
    finally:
        await db.dispose()
    assert sorted(mailer.sent) == recipients
    assert len([s for s in statements if s.startswith(CLAIM)]) == 1
    assert len([s for s in statements if s.startswith(RECORD)]) == 1
    assert all(row.sent_at == clock.now() and row.body == "" and row.attempts == 1 for row in rows)



def _send_mail(database_url: str, mailbox: Mailbox, clock_start: datetime, log: Path) -> subprocess.Popen[bytes]:
    """`foothills-rpc send-mail` on the database, mailing `mailbox`, its clock starting at `clock_start`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTHILLS_")}
    env.update(FOOTHILLS_DATABASE_URL=database_url, FOOTHILLS_SMTP_HOST="127.0.0.1",
               FOOTHILLS_SMTP_PORT=str(mailbox.port), FOOTHILLS_SMTP_STARTTLS="false", FOOTHILLS_TEST_MODE="1",
               FOOTHILLS_TEST_CLOCK_START=clock_start.isoformat())
    with log.open("wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "foothills_rpc.cli", "send-mail"], cwd=log.parent, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)


async def _rows(session: AsyncSession) -> list[OutboxMessage]:
    return list((await session.execute(select(OutboxMessage))).scalars())


async def test_a_server_run_without_mail_leaves_it_to_a_send_mail_process(
        database_url: str, clock: ManualClock, mailbox: Mailbox, tmp_path: Path) -> None:
    """FOOTHILLS_SEND_MAIL=false: the API server commits the mail but sends none of it, and a separate
    `foothills-rpc send-mail` process on the same database sends each message once, then stops on SIGTERM.
    (API servers so spend their CPU on calls; the mail goes out within a second of its commit.)"""
    recipients = ["first@example.com", "second@example.com"]
    async with running_server(database_url, clock, mailbox, send_mail=False) as running:
        for recipient in recipients:
            await running.register(recipient)
            await running.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=recipient))
        await asyncio.sleep(1.5)  # past a dispatcher's linger and poll, had one been started
        assert mailbox.messages == []
    db = Database(database_url, pool_size=1)
    try:
        assert {row.recipient for row in await db.run(_rows) if row.sent_at is None} == set(recipients)
        log = tmp_path / "send-mail.log"
        # The mail is due at the test clock's instant, later than the real one.
        process = _send_mail(database_url, mailbox, clock.now() + timedelta(minutes=1), log)
        try:
            for recipient in recipients:
                await mailbox.wait_for(lambda m, to=recipient: m["To"] == to and "Reset" in m["Subject"], within=60)
        finally:
            code = stop_process(process)
        assert code == 0, log.read_text()
        rows = await db.run(_rows)
    finally:
        await db.dispose()
    assert sorted(str(m["To"]) for m in mailbox.messages) == recipients
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)


def test_a_message_is_written_exactly_as_compat32_writes_it() -> None:
    """The outbox's policy writes a header that fits on its line as it is, skipping compat32's folding;
    every message must still come out byte for byte as compat32 writes it (long, non-ASCII and
    multi-line headers go through compat32 itself)."""
    subjects = ["Booked: Yoga, Mar 30, 2026, 10:00 AM", "Réservé : Yoga à 10 h",
                "Booked: " + "a very long service name " * 6, "two\nlines", ""]
    for subject in subjects:
        for html, calendar in (("", ""), ("<p>Hi</p>", ""), ("<p>Hi</p>", "BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\n")):
            row = SimpleNamespace(id=uuid.uuid4(), recipient="Ann Example <ann@example.com>", subject=subject,
                                  body="Hello Ann,\nyour booking is confirmed.\n", html=html, calendar=calendar,
                                  created_at=datetime(2026, 3, 30, 10, 0, tzinfo=UTC))
            message = outbox.mime_message(row, sender="Foothills Bookings <no-reply@foothills.example>")  # type: ignore[arg-type]
            assert bytes(message) == message.as_bytes(policy=compat32), subject
            assert message.as_string() == message.as_string(policy=compat32), subject
