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


def _event(booking: Booking, stamp: datetime, sequence: int) -> Event:
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("created", booking.created_at)
    event.add("dtstart", booking.start)
    event.add("dtend", booking.end)
    event.add("summary", booking.topic or "Consultation")
    if booking.notes:
        event.add("description", booking.notes)
    event.add("status", _STATUS.get(booking.status, "CONFIRMED"))
    event.add("transp", "TRANSPARENT" if booking.status == BookingStatus.CANCELLED else "OPAQUE")
    return event


def _calendar(method: str | None = "PUBLISH") -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    return calendar


def booking_to_ics(booking: Booking, now: datetime) -> bytes:
    calendar = _calendar()
    calendar.add_component(_event(booking, now, booking.sequence))
    return calendar.to_ical()


def last_change(booking: Booking) -> datetime:
    """The latest instant calbook stamps on a booking: the feed's DTSTAMP, so that an unchanged feed
    is byte for byte the same (and keeps its ETag)."""
    return max(t for t in (booking.created_at, booking.confirmed_at, booking.paid_at, booking.cancelled_at) if t)


def feed_to_ics(bookings: list[Booking]) -> bytes:
    """A subscribable feed of bookings (docs/api.md#calendar-feed): the UIDs of the single-booking files,
    SEQUENCE raised once more on cancellation as in the e-mailed invites, cancelled ones CANCELLED."""
    calendar = _calendar(method=None)
    calendar.add("x-wr-calname", "calbook bookings")
    for booking in bookings:
        cancelled = booking.status == BookingStatus.CANCELLED
        calendar.add_component(_event(booking, last_change(booking), booking.sequence + (1 if cancelled else 0)))
    return calendar.to_ical()
