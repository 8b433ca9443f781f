"""The mail outbox: messages are rows written with the change they report, then delivered.

`enqueue` adds a row inside the caller's transaction, so a mail exists if and only if its change
committed; composers (mail/booking_news.py) enqueue the mail of changes recorded as events, in
the transaction that moves their cursor. `Dispatcher` claims due rows with a conditional update
(one claimer per row, even with several server processes), sends them, and records the outcomes; a
failure is retried with backoff until the mail is GIVE_UP_AFTER old, and a recipient refused for
good is not retried at all (the row is marked abandoned). Delivery is at least once; each message
has a stable Message-ID so a receiver can drop duplicates.

A batch costs two transactions whatever its size (the claim, then every outcome), so the dispatcher
waits LINGER_SECONDS after being woken: on a busy server the commits of that moment share one batch
instead of paying two transactions per mail (which cost as much CPU as the booking that wrote it).
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any, Protocol

from opentelemetry import trace
from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.background import Periodic
from foothills_rpc.clock import Clock
from foothills_rpc.db.database import Database, insert_on_conflict
from foothills_rpc.db.models import OutboxMessage, table_of
from foothills_rpc.mail.mailer import Mailer, UndeliverableMail
from foothills_rpc.observability.tracing import NO_TRACING

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)  # a claimer that dies mid-send leaves the row due again after this
MAX_BACKOFF = timedelta(minutes=30)
# Past this a mail is stale (reset tokens and booking news lose their point long before): give up.
GIVE_UP_AFTER = timedelta(days=2)
BATCH = 20
LINGER_SECONDS = 0.2  # a mail may wait this long for others to share its batch


@dataclass(frozen=True)
class Mail:
    """A mail to queue: `body` is its text, `html` an alternative of it, `calendar` an iCalendar
    attachment. A mail with a `key` is held once: queuing the same key again adds nothing."""

    recipient: str
    subject: str
    body: str
    html: str = ""
    calendar: str = ""
    key: str | None = None


async def enqueue(session: AsyncSession, mails: Sequence[Mail], now: datetime) -> None:
    """Adds `mails` to the outbox in one statement (a composer queues a whole batch's notices at once)."""
    if not mails:
        return
    rows = [{"id": uuid.uuid4(), "recipient": mail.recipient, "subject": mail.subject, "body": mail.body,
             "html": mail.html, "calendar": mail.calendar, "notice_key": mail.key, "created_at": now,
             "available_at": now, "attempts": 0, "last_error": ""} for mail in mails]
    # A keyed mail already queued is skipped; a key-less one never conflicts (NULLs are distinct).
    await session.execute(insert_on_conflict(session, _OUTBOX).on_conflict_do_nothing(
        index_elements=[_OUTBOX.c.notice_key]), rows)


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2 ** min(attempts, 12)), MAX_BACKOFF)


class Composer(Protocol):
    """Turns changes recorded elsewhere (booking events, due reminders) into mail."""

    async def compose(self, session: AsyncSession, now: datetime) -> bool:
        """Queues the mail of a batch of changes; True if the batch was full, so more may wait (asking
        again only then spares every pass a transaction that finds nothing)."""
        ...

    async def waiting(self, session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
        """How many changes wait to be composed, and since when the oldest has."""
        ...


class Dispatcher:
    """Each pass runs the composers (each until it finds nothing new), then sends what is due."""

    def __init__(self, db: Database, mailer: Mailer, clock: Clock, *, sender: str,
                 poll_seconds: float = 1.0, linger_seconds: float = LINGER_SECONDS,
                 tracer_provider: trace.TracerProvider = NO_TRACING, composers: Sequence[Composer] = ()) -> None:
        self._db = db
        self._composers = composers
        self._mailer = mailer
        self._clock = clock
        self._sender = sender
        self._linger = linger_seconds
        self._metrics = db.metrics
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._periodic = Periodic("outbox-dispatcher", self._deliver_all_due, poll_seconds, db.metrics)
        self._watched = False

    def notify(self) -> None:
        """Something was enqueued here: look now rather than at the next poll."""
        self._periodic.wake()

    def start(self) -> None:
        if not self._watched:  # one collector per dispatcher, however often it is started
            self._metrics.watch_outbox(self.backlog, asyncio.get_running_loop())
            self._watched = True
        self._periodic.start()

    async def backlog(self) -> tuple[int, float]:
        """How many mails wait to be sent, counting the changes not yet composed into mail (with
        `send-mail` down they pile up there, not in the outbox), and the age in seconds of the oldest
        (0 when none)."""
        now = self._clock.now()

        async def read(session: AsyncSession) -> list[tuple[int, datetime | None]]:
            row = (await session.execute(_BACKLOG)).one()
            return [(int(row.pending), row.oldest),
                    *[await composer.waiting(session, now) for composer in self._composers]]

        counts = await self._db.read(read)
        oldest = min((since for _, since in counts if since is not None), default=None)
        age = (now - oldest).total_seconds() if oldest else 0.0
        return sum(count for count, _ in counts), max(age, 0.0)

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _deliver_all_due(self) -> None:
        await asyncio.sleep(self._linger)
        while await self.deliver_due() == BATCH:
            pass

    async def deliver_due(self) -> int:
        """One pass: claims up to BATCH due messages, sends them, records the outcomes in one
        transaction; returns how many were claimed."""
        for composer in self._composers:
            while await self._db.run(functools.partial(self._compose, composer)):
                pass
        claimed = await self._db.run(self._claim)
        if claimed:
            failures = await self._deliver(claimed)
            sent = [message.id for message in claimed if message.id not in failures]
            await self._db.run(lambda s: self._record(s, sent, failures))
        return len(claimed)

    async def _compose(self, composer: Composer, session: AsyncSession) -> bool:
        return await composer.compose(session, self._clock.now())

    async def _claim(self, session: AsyncSession) -> Sequence[Row[Any]]:
        now = self._clock.now()
        ids = list((await session.execute(_DUE, {"now": now})).scalars())
        if not ids:
            return []
        # The guard re-checks due-ness, so a row claimed meanwhile by another process is skipped.
        return (await session.execute(_LEASE, {"ids": ids, "now": now, "until": now + CLAIM_LEASE})).all()

    async def _deliver(self, claimed: Sequence[Row[Any]]) -> dict[uuid.UUID, dict[str, object]]:
        """Sends the claimed messages as one batch; the columns that record each failure, by message."""
        mails = [mime_message(message, sender=self._sender) for message in claimed]
        with self._tracer.start_as_current_span("mail send", kind=trace.SpanKind.CLIENT,
                                                 attributes={"messaging.batch.message_count": len(mails)}):
            outcomes = await self._mailer.send(mails)
        failures: dict[uuid.UUID, dict[str, object]] = {}
        for message, outcome in zip(claimed, outcomes, strict=True):
            if outcome is None:
                self._metrics.mail_sent.inc()
                log.info("mail sent message_id=%s", message.id)
            else:
                failures[message.id] = self._failure(message, outcome)
        return failures

    def _failure(self, message: Row[Any], exc: Exception) -> dict[str, object]:
        """The columns that record why `message` was not sent: retried after a backoff, or abandoned."""
        error = f"{type(exc).__name__}: {exc}"[:500]
        now = self._clock.now()
        if isinstance(exc, UndeliverableMail) or now - message.created_at >= GIVE_UP_AFTER:
            self._metrics.mail_abandoned.inc()
            log.warning("mail abandoned message_id=%s attempts=%d error=%s",
                        message.id, message.attempts, type(exc).__name__)
            return {"abandoned_at": now, "body": "", "html": "", "last_error": error}
        retry_at = now + backoff(message.attempts)
        self._metrics.mail_failed.inc()
        log.warning("mail delivery failed message_id=%s attempts=%d retry_at=%s error=%s",
                    message.id, message.attempts, retry_at.isoformat(), type(exc).__name__)
        return {"available_at": retry_at, "last_error": error}

    async def _record(self, session: AsyncSession, sent: list[uuid.UUID],
                      failures: dict[uuid.UUID, dict[str, object]]) -> None:
        """The batch's outcomes: every mail sent in one statement, each failure in its own."""
        if sent:
            await session.execute(_SENT, {"ids": sent, "sent_at": self._clock.now()})
        for message_id, values in failures.items():
            await session.execute(update(_OUTBOX).where(_OUTBOX.c.id == message_id).values(**values))


def mime_message(message: Row[Any], *, sender: str) -> Message:
    """An outbox row as a MIME message: text, HTML as its alternative, the calendar file attached.

    The email package's MIME classes (its compat32 policy), not EmailMessage: the modern API parses and
    refolds every header through its header registry, 2.9 ms a message here against 0.8, and send-mail
    builds one per notice. Headers are encoded here instead (RFC 2047 for non-ASCII). Boundaries come
    from secrets: the package would draw them from the process-wide `random`, guessable and shared."""
    mail = MIMEMultipart("mixed", boundary=_boundary(), policy=_HEADERS)  # the parts are written with it too
    mail["From"] = _from_header(sender)
    mail["To"] = message.recipient
    mail["Subject"] = message.subject if message.subject.isascii() else Header(
        message.subject, "utf-8", header_name="Subject").encode()
    mail["Date"] = format_datetime(message.created_at)
    mail["Message-ID"] = f"<{message.id}@foothills>"
    text = _text_part(message.body, "plain")
    if message.html:
        alternatives = MIMEMultipart("alternative", boundary=_boundary())
        alternatives.attach(text)
        alternatives.attach(_text_part(message.html, "html"))
        mail.attach(alternatives)
    else:
        mail.attach(text)
    if message.calendar:
        calendar = _text_part(message.calendar, "calendar")
        calendar.set_param("method", "CANCEL" if "\r\nMETHOD:CANCEL\r\n" in message.calendar else "REQUEST")
        calendar.add_header("Content-Disposition", "attachment", filename="booking.ics")
        mail.attach(calendar)
    return mail


@functools.cache
def _from_header(sender: str) -> str:
    """The From header of `sender`: one per deployment, so parsed once."""
    return formataddr(parseaddr(sender), charset="utf-8")


class _Compat32Headers(Compat32):
    """compat32, but a header that already fits on its line (ASCII, one line) is written as it is:
    compat32 folds every header through a Header object, which leaves such a header unchanged and
    cost 60 % of serialising a notice (the parts' headers included)."""

    def fold(self, name: str, value: str) -> str:
        return self._as_it_is(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        return self._as_it_is(name, value).encode("ascii") or super().fold_binary(name, value)

    def _as_it_is(self, name: str, value: object) -> str:
        """The header's line, if it fits unfolded; else empty."""
        if (isinstance(value, str) and value.isascii() and "\n" not in value and "\r" not in value
                and self.max_line_length is not None and len(name) + 2 + len(value) <= self.max_line_length):
            return f"{name}: {value}{self.linesep}"
        return ""


_HEADERS = _Compat32Headers()


def _text_part(content: str, subtype: str) -> Message:
    """A UTF-8 text part, quoted-printable: readable in the raw message, unlike base64 (the package's
    default for UTF-8). Encoded by binascii (C), not the package's own encoder, a Python loop over
    every character that cost a fifth of building a notice."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(content.encode(), istext=True).decode("ascii"))
    return part


def _boundary() -> str:
    return f"=_{secrets.token_hex(16)}"


# The dispatcher's statements, built once (on Core, so the ORM has nothing to track).
_OUTBOX = table_of(OutboxMessage)
_DUE = (select(_OUTBOX.c.id)
        .where(_OUTBOX.c.sent_at.is_(None), _OUTBOX.c.abandoned_at.is_(None),
               _OUTBOX.c.available_at <= bindparam("now"))
        .order_by(_OUTBOX.c.available_at).limit(BATCH).with_for_update(skip_locked=True))
_BACKLOG = select(func.count().label("pending"), func.min(_OUTBOX.c.created_at).label("oldest")).where(
    _OUTBOX.c.sent_at.is_(None), _OUTBOX.c.abandoned_at.is_(None))
_LEASE = (update(_OUTBOX)
          .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)), _OUTBOX.c.sent_at.is_(None),
                 _OUTBOX.c.available_at <= bindparam("now"))
          .values(available_at=bindparam("until"), attempts=_OUTBOX.c.attempts + 1)
          .returning(*_OUTBOX.c))
# Sent: the body (which may hold a password-reset token) is no longer needed, so it is not kept.
_SENT = update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True))).values(
    sent_at=bindparam("sent_at"), body="", html="")
