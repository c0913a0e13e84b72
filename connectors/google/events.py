"""Google event resources <-> calbook: what blocks time, and the body of a booking's event.

Pure functions over the JSON that ``events.list`` returns (with ``singleEvents=true``, so
every item is one instance); the provider does the I/O.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import BookingEvent, BusyInterval

BOOKING_ID_PROPERTY = "calbookBookingId"
"""Private extended property on every event calbook writes; pull skips those events."""


def event_id_for_booking(booking_id: str) -> str:
    """Deterministic Google event id: ``cb`` + the booking UUID in hex (base32hex-safe, 34 chars).

    Using the booking's id makes inserts idempotent: a retried insert answers 409.
    """
    return "cb" + uuid.UUID(str(booking_id)).hex


def is_cancelled(event: dict[str, Any]) -> bool:
    return event.get("status") == "cancelled"


def is_calbook_event(event: dict[str, Any]) -> bool:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    return BOOKING_ID_PROPERTY in private


def is_transparent(event: dict[str, Any]) -> bool:
    return event.get("transparency") == "transparent"


def declined_by_self(event: dict[str, Any]) -> bool:
    """The calendar's owner (the ``self`` attendee) declined: the time is not taken."""
    return any(
        attendee.get("self") and attendee.get("responseStatus") == "declined"
        for attendee in event.get("attendees") or []
    )


def blocks_time(event: dict[str, Any]) -> bool:
    """Whether an instance counts as busy (docs/sync.md#expansion: skip free, cancelled, declined, our own)."""
    return not (is_cancelled(event) or is_transparent(event) or declined_by_self(event) or is_calbook_event(event))


def event_interval(event: dict[str, Any], calendar_tz: str) -> BusyInterval | None:
    """UTC interval of one instance, or ``None`` when it has no usable times.

    All-day dates are read in the calendar's timezone (local midnight to local midnight, end
    date exclusive): an all-day event blocks the expert's whole local day.
    """
    start = _instant(event.get("start") or {}, calendar_tz)
    end = _instant(event.get("end") or {}, calendar_tz)
    if start is None:
        return None
    if end is None or end <= start:
        # Google allows an end equal to the start; such an event blocks nothing.
        return None
    return BusyInterval(start=start, end=end)


def booking_event_body(event: BookingEvent) -> dict[str, Any]:
    """The fields calbook owns on its event; sent whole on insert and on patch.

    ``status: confirmed`` is included so that a patch brings back an event the expert deleted
    in Google (a deleted event stays as ``cancelled`` and its id stays taken).
    ``sequence`` is not sent: Google manages it and rejects a lower value than its own.
    """
    body: dict[str, Any] = {
        "summary": event.summary,
        "description": event.description,
        "start": {"dateTime": _rfc3339(event.start), "timeZone": "UTC"},
        "end": {"dateTime": _rfc3339(event.end), "timeZone": "UTC"},
        "status": "confirmed",
        "transparency": "opaque",
        "extendedProperties": {"private": {BOOKING_ID_PROPERTY: str(event.booking_id)}},
    }
    if event.location:
        body["location"] = event.location
    return body


def zone(name: str | None, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def _instant(value: dict[str, Any], calendar_tz: str) -> datetime | None:
    if value.get("dateTime"):
        parsed = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone(value.get("timeZone"), calendar_tz))
        return parsed.astimezone(UTC)
    if value.get("date"):
        day = date.fromisoformat(str(value["date"]))
        return datetime.combine(day, time(0), tzinfo=zone(calendar_tz, "UTC")).astimezone(UTC)
    return None


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("booking times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def expiration_from_millis(value: Any) -> datetime | None:
    """Channel ``expiration`` is milliseconds since the epoch, as a string."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
