"""Graph events <-> calbook: what blocks time, the interval of one occurrence, the booking's body.

Pure functions over the JSON of ``calendarView/delta`` (asked for in UTC, so every
``dateTime`` is UTC wall time, parsed as UTC explicitly); the provider does the I/O.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import BookingEvent, BusyInterval

BOOKING_PROPERTY_ID = "String {6c3b7f0e-2f51-4c7e-9a53-0b6a7e2f6d11} Name calbookBookingId"
"""The single-value extended property on every event calbook writes: it holds the booking id."""
TRANSACTION_PREFIX = "calbook-"
FREE_SHOW_AS = frozenset({"free", "workingElsewhere"})


def transaction_id(booking_id: str, sequence: int) -> str:
    """Graph drops a retried create with the same ``transactionId``: one per booking version
    (a booking confirmed again after a reschedule is a new event, so the sequence is in it)."""
    return f"{TRANSACTION_PREFIX}{uuid.UUID(str(booking_id)).hex}-{sequence}"


def booking_id_of(event: dict[str, Any]) -> str | None:
    for prop in event.get("singleValueExtendedProperties") or []:
        if isinstance(prop, dict) and str(prop.get("id", "")).lower() == BOOKING_PROPERTY_ID.lower():
            return str(prop.get("value") or "") or None
    return None


def is_calbook_event(event: dict[str, Any]) -> bool:
    return booking_id_of(event) is not None or str(event.get("transactionId") or "").startswith(TRANSACTION_PREFIX)


def is_removed(event: dict[str, Any]) -> bool:
    return "@removed" in event


def declined(event: dict[str, Any]) -> bool:
    return ((event.get("responseStatus") or {}).get("response") or "").lower() == "declined"


def blocks_time(event: dict[str, Any]) -> bool:
    """Busy unless free/workingElsewhere, cancelled, declined by the expert, or calbook's own."""
    return not (
        is_removed(event)
        or event.get("showAs") in FREE_SHOW_AS
        or bool(event.get("isCancelled"))
        or declined(event)
        or is_calbook_event(event)
    )


def parse_utc(value: str) -> datetime:
    """A Graph ``dateTime`` asked for in UTC: ``2026-12-03T09:00:00.0000000``, no offset, 7 decimals."""
    text = value.strip().rstrip("Z")
    if "+" in text[10:]:
        text = text[: 10 + text[10:].index("+")]
    if "." in text:
        head, fraction = text.split(".", 1)
        text = f"{head}.{fraction[:6]}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _day(value: dict[str, Any]) -> date | None:
    raw = value.get("dateTime")
    return date.fromisoformat(str(raw)[:10]) if raw else None


def event_interval(event: dict[str, Any], mailbox_tz: str) -> BusyInterval | None:
    """The UTC interval of one occurrence. An all-day event blocks whole days in the mailbox's
    zone (its dates are local dates whatever zone the answer is in)."""
    start, end = event.get("start") or {}, event.get("end") or {}
    if not start.get("dateTime") or not end.get("dateTime"):
        return None
    if event.get("isAllDay"):
        first, last = _day(start), _day(end)
        if first is None or last is None:
            return None
        zone = ZoneInfo(mailbox_tz)
        begin = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
        finish = datetime.combine(last, time(0), tzinfo=zone).astimezone(UTC)
    else:
        begin, finish = parse_utc(str(start["dateTime"])), parse_utc(str(end["dateTime"]))
    if finish <= begin:
        return None
    return BusyInterval(start=begin, end=finish)


def _graph_time(moment: datetime) -> dict[str, str]:
    if moment.tzinfo is None:
        raise ValueError("booking times must be timezone-aware")
    return {"dateTime": moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "UTC"}


def booking_event_body(event: BookingEvent, *, create: bool) -> dict[str, Any]:
    """The fields calbook owns; on create also the transaction id and the booking-id property."""
    body: dict[str, Any] = {
        "subject": event.summary,
        "body": {"contentType": "text", "content": event.description},
        "start": _graph_time(event.start),
        "end": _graph_time(event.end),
        "showAs": "busy",
        "isReminderOn": False,
    }
    if event.location:
        body["location"] = {"displayName": event.location}
    if create:
        body["transactionId"] = transaction_id(event.booking_id, event.sequence)
        body["singleValueExtendedProperties"] = [{"id": BOOKING_PROPERTY_ID, "value": str(event.booking_id)}]
    return body
