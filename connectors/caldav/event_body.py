"""The iCalendar resource calbook writes for a booking, and how to compare it with what is stored.

Decisions: UID ``<booking id>@calbook`` and resource name ``<booking id>.ics`` (deterministic,
so a retried or duplicated write lands on the same resource); times in UTC; SEQUENCE exactly
``BookingEvent.sequence`` (never bumped by a library); no ORGANIZER/ATTENDEE, so no CalDAV
server starts scheduling (sending invitations) on our behalf; the ``X-CALBOOK-BOOKING-ID``
marker lets a pull recognise and skip calbook's own events.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import icalendar

from connectors.base import BookingEvent, PermanentError
from connectors.ical_expand import CALBOOK_MARKER_PROPERTY, booking_uid, parse_calendar

PRODID = "-//calbook//calbook booking sync//EN"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,200}$")
#: What makes two versions of a booking's event "the same" for an idempotent retry (DTSTAMP,
#: which changes on every build, is deliberately not in here; SEQUENCE is compared apart).
_COMPARED = (
    "UID",
    "DTSTART",
    "DTEND",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "STATUS",
    CALBOOK_MARKER_PROPERTY,
)


def resource_name(booking_id: str) -> str:
    """``<booking id>.ics``; ids that could escape the collection (``/``, ``..``) are refused."""
    if not _SAFE_ID.match(booking_id) or ".." in booking_id:
        raise PermanentError(f"booking id {booking_id!r} cannot be used as a CalDAV resource name")
    return f"{booking_id}.ics"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise PermanentError("booking times must be timezone-aware")
    return value.astimezone(UTC)


def build_event_ics(event: BookingEvent, now: datetime | None = None) -> str:
    resource_name(event.booking_id)
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    vevent = icalendar.Event()
    vevent.add("UID", booking_uid(event.booking_id))
    vevent.add("DTSTAMP", (now or datetime.now(UTC)).replace(microsecond=0))
    vevent.add("DTSTART", _utc(event.start))
    vevent.add("DTEND", _utc(event.end))
    vevent.add("SEQUENCE", event.sequence)
    vevent.add("SUMMARY", event.summary)
    if event.description:
        vevent.add("DESCRIPTION", event.description)
    if event.location:
        vevent.add("LOCATION", event.location)
    vevent.add("STATUS", "CONFIRMED")
    vevent.add("TRANSP", "OPAQUE")
    vevent.add(CALBOOK_MARKER_PROPERTY, event.booking_id)
    cal.add_component(vevent)
    return cal.to_ical().decode("utf-8")


def _fingerprint(text: str | bytes) -> tuple[str, ...] | None:
    try:
        events = parse_calendar(text).walk("VEVENT")
    except ValueError:
        return None
    if len(events) != 1:
        return None
    return tuple(
        events[0].get(name, "").to_ical().decode()
        if hasattr(events[0].get(name), "to_ical")
        else str(events[0].get(name, ""))
        for name in _COMPARED
    )


def same_event(stored: str | bytes, wanted: str | bytes) -> bool:
    """True when the stored resource already says what we want to write (retry/duplicate).

    A stored SEQUENCE at or above ours counts as the same: we may have written it higher
    than the booking's (``sequence_over``), or the expert's client bumped it.
    """
    mine = _fingerprint(wanted)
    if mine is None or _fingerprint(stored) != mine:
        return False
    return (stored_sequence(stored) or 0) >= (stored_sequence(wanted) or 0)


def sequence_over(stored: str | bytes, wanted: int) -> int:
    """The SEQUENCE to write over ``stored``: ours, or one above the stored one if that is not lower.

    RFC 5545 3.8.7.4: a change a client should take as newer has a higher SEQUENCE than what it has.
    """
    current = stored_sequence(stored)
    return wanted if current is None or current < wanted else current + 1


def stored_sequence(text: str | bytes) -> int | None:
    try:
        events = parse_calendar(text).walk("VEVENT")
        return int(events[0].get("SEQUENCE", 0)) if events else None
    except (ValueError, TypeError):
        return None
