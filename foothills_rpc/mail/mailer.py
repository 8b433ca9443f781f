"""Mail transports: SMTP when configured, else a folder of .eml files (the embedded default)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from typing import Protocol

from foothills_rpc.config import Settings, SmtpSettings

log = logging.getLogger(__name__)


class UndeliverableMail(Exception):
    """The receiving server refused the recipient for good (a 5xx reply to RCPT): retrying cannot help."""


class Mailer(Protocol):
    async def send(self, messages: Sequence[Message]) -> list[Exception | None]:
        """Delivers `messages`, in order, as one batch; each one's outcome: None if it went, else why
        not. UndeliverableMail when retrying cannot help; any other exception is taken as temporary
        and retried."""
        ...


class SmtpMailer:
    """One connection (TLS and login included) per batch, not per message: a relay counts and limits
    connections, and each costs a handshake."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, messages: Sequence[Message]) -> list[Exception | None]:
        return await asyncio.to_thread(self._send_blocking, messages)

    def _send_blocking(self, messages: Sequence[Message]) -> list[Exception | None]:
        s = self._settings
        outcomes: list[Exception | None] = []
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password)
                for message in messages:
                    try:
                        smtp.send_message(message)
                    except smtplib.SMTPServerDisconnected:
                        raise  # the connection is gone: this message and the rest wait for the next attempt
                    except smtplib.SMTPException as exc:  # this message's transaction failed; the connection stands
                        outcomes.append(_permanent_or_not(exc))
                    else:
                        outcomes.append(None)
        except Exception as exc:  # no connection, or it failed: what was not sent yet was not sent
            outcomes += [exc] * (len(messages) - len(outcomes))
        return outcomes


def _permanent_or_not(exc: smtplib.SMTPException) -> Exception:
    """Only a recipient refused with 5xx is permanent. A 5xx elsewhere (sender, DATA, auth) usually means
    our relay is misconfigured, which would refuse every mail alike: those are retried (until the mail
    is too old) rather than dropped."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(500 <= code < 600 for code in codes):
            refused = UndeliverableMail(f"recipient refused: {exc.recipients}")
            refused.__cause__ = exc
            return refused
    return exc


class FileMailer:
    """Writes each message to `<folder>/<Message-ID>.eml`; nothing is sent anywhere."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def send(self, messages: Sequence[Message]) -> list[Exception | None]:
        return await asyncio.to_thread(self._write_all, messages)

    def _write_all(self, messages: Sequence[Message]) -> list[Exception | None]:
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return [exc] * len(messages)
        outcomes: list[Exception | None] = []
        for message in messages:
            try:
                self._write(message)
            except OSError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    def _write(self, message: Message) -> None:
        name = str(message["Message-ID"]).strip("<>").replace("@", "_").replace("/", "_")
        path = self._folder / f"{name}.eml"
        path.write_bytes(bytes(message))
        log.debug("mail written to outbox file path=%s", path)  # the dispatcher logs each mail sent


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when configured, else the folder of .eml files."""
    return SmtpMailer(settings.smtp) if settings.smtp else FileMailer(settings.outbox_dir)


def destination(settings: Settings) -> str:
    """Where mailer_for's mail goes, for the start-up log line."""
    if settings.smtp:
        return f"smtp={settings.smtp.host}:{settings.smtp.port}"
    return f"outbox={settings.outbox_dir.resolve()}"
