"""A booking as an iCalendar document (``GET /v1/bookings/{id}.ics``).

The UID is ``<booking id>@calbook`` and never changes, and SEQUENCE is the booking's
``sequence`` (raised by each reschedule), so a calendar that imported the file once
updates the same event when it imports it again. Times are UTC. A pending booking is
TENTATIVE; cancelled is CANCELLED; everything else (confirmed, completed, no-show) is
CONFIRMED, because the meeting was, or is, agreed.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

from booking_engine.model import Booking, BookingStatus

PRODID = "-//calbook//calbook booking//EN"
_STATUS = {
    BookingStatus.PENDING: "TENTATIVE",
    BookingStatus.CANCELLED: "CANCELLED",
}


def booking_uid(booking: Booking) -> str:
    return f"{booking.id}@calbook"


def booking_to_ics(booking: Booking, now: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("sequence", booking.sequence)
    event.add("dtstamp", now)
    event.add("created", booking.created_at)
    event.add("dtstart", booking.start)
    event.add("dtend", booking.end)
    event.add("summary", booking.topic or "Consultation")
    if booking.notes:
        event.add("description", booking.notes)
    event.add("status", _STATUS.get(booking.status, "CONFIRMED"))
    event.add("transp", "TRANSPARENT" if booking.status == BookingStatus.CANCELLED else "OPAQUE")
    calendar.add_component(event)
    return calendar.to_ical()
