"""RFC 5545 calendar files for bookings: one stable UID per booking and an increasing SEQUENCE, so a
calendar app updates (or, with METHOD:CANCEL, removes) the event it already has."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

PRODUCT = "-//Foothills//Bookings//EN"


def booking_calendar(*, booking_id: str, sequence: int, summary: str, description: str, start: datetime,
                     end: datetime, stamp: datetime, organizer: str, cancelled: bool) -> str:
    """The booking as one event: METHOD:REQUEST while it stands, METHOD:CANCEL once cancelled."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", f"{booking_id}@foothills")
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("description", description)
    event.add("organizer", f"mailto:{organizer}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()
