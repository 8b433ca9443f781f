"""The customers' mail about their bookings, composed from the booking events after they commit.

A booking change writes only its event (what the booking was then, and the reason given); the mail
dispatcher, wherever it runs (a server, or the `send-mail` process), turns the events past the `mail`
cursor into outbox rows in one transaction that also moves the cursor, so each event is mailed once
and the booking's own transaction neither reads the address nor formats text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from foothills_rpc.db import bookings as repo
from foothills_rpc.mail import outbox

CONSUMER = "mail"  # its row in event_cursors
BATCH = 200


async def compose(session: AsyncSession, now: datetime) -> int:
    """Queues the mail of up to BATCH new booking events; returns how many events were taken."""
    news = await repo.claim_news(session, CONSUMER, BATCH)
    for item in news:
        if item.event.details:  # the demo's seeded history has none, and is not mailed
            await outbox.enqueue(session, recipient=item.email, now=now, **_message(item))
    return len(news)


def _message(item: repo.News) -> dict[str, str]:
    details, kind = item.event.details, item.event.type
    start = datetime.fromisoformat(details["start_at"]).strftime("%Y-%m-%d %H:%M UTC")
    reason = details.get("reason", "")
    return {"subject": f"Booking {kind}: {item.service_name}, {start}",
            "body": (f"Hello {item.display_name},\n\nYour booking of {item.service_name} on {start} "
                     f"({details['seats']} seat(s), {details['total_minor']} {details['currency']} in minor "
                     f"units) is now {details['status']}.\n"
                     + (f"\nReason: {reason}\n" if reason else "")
                     + f"\nReference: bookings/{item.event.booking_id.hex}\n")}
