"""The iCalendar attachment of booking e-mails (RFC 5546 iTIP).

One UID per booking (``<booking id>@calbook``), so a calendar client files every update
under the same event: ``METHOD:REQUEST`` on confirmation and on reschedule with the
booking's ``sequence`` (which the domain raises on each reschedule), and ``METHOD:CANCEL``
with ``sequence + 1`` on cancellation, so the cancel always supersedes the last invite.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr

from icalendar import Calendar, Event, vCalAddress, vText

from booking_engine.model import Booking

PRODID = "-//calbook//worker//EN"


def uid_for(booking_id: str) -> str:
    return f"{booking_id}@calbook"


def _address(email: str, name: str | None, role: str | None = None) -> vCalAddress:
    addr = vCalAddress(f"mailto:{email}")
    if name:
        addr.params["CN"] = vText(name)
    if role:
        addr.params["ROLE"] = vText(role)
        addr.params["PARTSTAT"] = vText("ACCEPTED")
    return addr


def booking_invite(
    booking: Booking,
    method: str,
    *,
    organizer: str,
    attendees: list[tuple[str, str | None]],
    summary: str,
    description: str,
    now: datetime,
) -> bytes:
    """``method`` is ``REQUEST`` or ``CANCEL``; ``organizer`` an RFC 5322 address (the sender)."""
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported iTIP method {method!r}")
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", uid_for(booking.id))
    event.add("dtstamp", now)
    event.add("dtstart", booking.start)
    event.add("dtend", booking.end)
    event.add("sequence", booking.sequence + 1 if method == "CANCEL" else booking.sequence)
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    name, email = parseaddr(organizer)
    event["organizer"] = _address(email or organizer, name or None)
    for attendee_email, attendee_name in attendees:
        event.add("attendee", _address(attendee_email, attendee_name, "REQ-PARTICIPANT"), encode=0)
    cal.add_component(event)
    return cal.to_ical()
