"""Mail transports: SMTP when configured, else a folder of .eml files (the embedded default)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import Message
from pathlib import Path
from typing import Protocol

from foothills_rpc.config import Settings, SmtpSettings

log = logging.getLogger(__name__)


class UndeliverableMail(Exception):
    """The receiving server refused the recipient for good (a 5xx reply to RCPT): retrying cannot help."""


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Delivers `message` or raises: UndeliverableMail when retrying cannot help; any other
        exception is taken as temporary and retried."""
        ...


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: Message) -> None:
        s = self._settings
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, s.password)
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                # Only a recipient refused with 5xx is permanent. A 5xx elsewhere (sender, DATA, auth)
                # usually means our relay is misconfigured, which would refuse every mail alike:
                # those are retried (until the mail is too old) rather than dropped.
                codes = [code for code, _ in exc.recipients.values()]
                if codes and all(500 <= code < 600 for code in codes):
                    raise UndeliverableMail(f"recipient refused: {exc.recipients}") from exc
                raise


class FileMailer:
    """Writes each message to `<folder>/<Message-ID>.eml`; nothing is sent anywhere."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: Message) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").replace("@", "_").replace("/", "_")
        path = self._folder / f"{name}.eml"
        path.write_bytes(bytes(message))
        log.info("mail written to outbox file path=%s", path)


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when configured, else the folder of .eml files."""
    return SmtpMailer(settings.smtp) if settings.smtp else FileMailer(settings.outbox_dir)
