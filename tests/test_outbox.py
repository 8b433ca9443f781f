"""The outbox dispatcher batches: mail committed while it lingers shares one claim and one record."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.clock import ManualClock
from foothills_rpc.db.database import Database
from foothills_rpc.db.models import OutboxMessage
from foothills_rpc.mail import outbox

CLAIM = "UPDATE outbox SET available_at="  # leases the batch
RECORD = "UPDATE outbox SET body="  # and sent_at: records the batch as sent


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(str(message["To"]))


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
                await outbox.enqueue(session, recipient=recipient, subject="s", body="b", now=clock.now())

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



async def _rows(session: AsyncSession) -> list[OutboxMessage]:
    return list((await session.execute(select(OutboxMessage))).scalars())
