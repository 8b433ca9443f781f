"""Samples of every notice kind, rendered as a reader would get them: for `foothills-rpc preview-mail`
and for docs/notifications.md (kept current by a test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from foothills_rpc.domain.cancellation import CancellationPolicy, CancellationTier
from foothills_rpc.notifications.calendar import booking_calendar
from foothills_rpc.notifications.notices import Told, every_notice
from foothills_rpc.notifications.render import Rendered, render
from foothills_rpc.notifications.wording import Wording

# A New York customer of a Berlin studio, the sample every kind is rendered with.
START = datetime(2030, 3, 20, 9, 0, tzinfo=UTC)
NOW = datetime(2030, 3, 12, 15, 30, tzinfo=UTC)
SAMPLE: dict[str, Any] = {
    "service": "Deep tissue massage", "about": "Studio 4, Kastanienallee 12, Berlin", "provider_name": "Bea Weber",
    "customer_name": "Ann Lee", "booking": "bookings/6f1c0e7d2b9a4c5e8f7a6b5c4d3e2f10", "start": START,
    "end": START + timedelta(hours=1), "seats": 2, "total_minor": 13000, "currency": "EUR", "fee_minor": 6500,
    "reason": "feeling unwell", "by": "by you", "previous_start": START - timedelta(days=1),
    "approval_deadline": START - timedelta(hours=1), "lead": timedelta(hours=24),
    "policy": CancellationPolicy((CancellationTier(timedelta(hours=24), 5000),
                                  CancellationTier(timedelta(hours=2), 10000, allowed=False))),
    "expires": NOW + timedelta(minutes=15), "hold": "holds/0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4",
    "entry": "waitlistEntries/1a2b3c4d5e6f70819a2b3c4d5e6f7081", "code": "Xq3v-example-reset-code-9Lm2",
    "how": "changed by someone who knew the old one", "changed": NOW, "account": "ann@example.com",
    "topic": "Parking near the studio", "request": "supportRequests/5e4d3c2b1a0918f7e6d5c4b3a2910f8e",
    "role": "provider", "previous_role": "customer",
    "requester": "Ann Lee", "actor": "Carla Admin", "author": "Foothills support", "assigned": True,
    "message": "Is there parking nearby?\nI come by car.", "status": "resolved",
    "bookings": [{"name": "bookings/6f1c0e7d2b9a4c5e8f7a6b5c4d3e2f10", "start": START},
                 {"name": "bookings/7a2d1f8e3c0b5d6e9f8a7b6c5d4e3f21", "start": START + timedelta(days=1)}],
}


def sample(told: Told) -> tuple[Rendered, str]:
    """`told` rendered for the sample reader, and its calendar file ("" when it has none)."""
    provider_side = told.audience in ("provider", "staff", "assignee")
    wording = Wording.of(reader_zone="" if provider_side else "America/New_York", locale="en",
                         service_zone="Europe/Berlin")
    reader = "Bea Weber" if provider_side else "Ann Lee"
    calendar = ""
    if told.calendar:
        calendar = booking_calendar(booking_id=SAMPLE["booking"].removeprefix("bookings/"), sequence=0,
                                    summary=SAMPLE["service"], description="Deep tissue massage with Bea Weber.",
                                    start=START, end=START + timedelta(hours=1), stamp=NOW,
                                    organizer="bea@example.com", cancelled=told.kind == "booking_cancelled")
    rendered = render(told.kind, {**SAMPLE, "w": wording, "reader_name": reader, "html_lang": "en",
                                  "optional": told.optional, "reminder": told.reminder, "calendar": bool(calendar)})
    return rendered, calendar


def write_samples(folder: Path, kinds: list[str] | None = None) -> list[Path]:
    """Writes `<kind>.txt`, `<kind>.html` (and `<kind>.ics`) for each kind (all when None)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for told in every_notice():
        if kinds and told.kind not in kinds:
            continue
        rendered, calendar = sample(told)
        files = {"txt": f"Subject: {rendered.subject}\n\n{rendered.text}", "html": rendered.html, "ics": calendar}
        for suffix, content in files.items():
            if content:
                path = folder / f"{told.kind}.{suffix}"
                path.write_text(content)
                written.append(path)
    return written


def markdown() -> str:
    """Every kind as rendered (subject and text part), for docs/notifications.md."""
    sections = []
    for told in every_notice():
        rendered, calendar = sample(told)
        extras = [f"to the {told.audience}"]
        if told.optional:
            extras.append("optional: off with `notices_enabled`")
        if told.reminder:
            extras.append("off with `reminders_enabled`")
        if calendar:
            method = "CANCEL" if "METHOD:CANCEL" in calendar else "REQUEST"
            extras.append(f"with a calendar file (METHOD:{method})")
        sections.append(f"### `{told.kind}`\n\n{'; '.join(extras)}.\n\n```text\nSubject: {rendered.subject}\n\n"
                        f"{rendered.text.rstrip()}\n```\n")
    return "\n".join(sections)


HEADING = "## Every kind, as rendered\n"


def with_samples(document: str) -> str:
    """`document` with everything after HEADING replaced by the current renderings."""
    head, found, _ = document.partition(HEADING)
    if not found:
        raise ValueError(f"the document has no {HEADING.strip()!r} heading")
    return f"{head}{HEADING}\n{markdown()}"
