"""Turn one iCalendar resource into the busy intervals it causes, over a window.

Shared by the CalDAV and ICS-feed providers (and usable by anything else that holds raw
iCalendar text). One CalDAV resource is one VCALENDAR with one UID: a master VEVENT and
possibly RECURRENCE-ID overrides; an ICS feed is one VCALENDAR with many UIDs. Both go through
``expand_calendar``.

Decisions (docs/sync.md#expansion):

* Recurrence (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides, VTIMEZONE, ``X-WR-TIMEZONE``,
  DURATION instead of DTEND) is delegated to ``recurring-ical-events``; we only decide what
  counts as busy and convert to UTC.
* Not busy: ``TRANSP:TRANSPARENT``, ``STATUS:CANCELLED`` (checked per occurrence, so a
  cancelled override of one instance frees just that instance), events the account owner
  declined (``PARTSTAT=DECLINED`` on the ATTENDEE whose address is one of the account's,
  again per occurrence) and the events calbook wrote itself (``is_calbook_event``) - those
  are already bookings, counting them twice would make a booking conflict with itself.
* Tentative / needs-action invitations stay busy: a careful expert would not want to be
  double-booked over an invitation they have not answered yet.
* Floating times are read in the expert's timezone (``default_tz``); all-day events block the
  whole local day in that timezone, from local midnight to the next local midnight, so a DST
  day is 23 or 25 hours long.
* Intervals are returned whole (not clipped to the window) when they overlap the window;
  zero-length events (DTSTART == DTEND) block nothing and are dropped.
* Anything that makes parsing or expansion fail raises ``MalformedCalendarObject`` naming the
  object, so a caller can log a warning and import the rest of the calendar.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from connectors.base import BusyInterval

log = logging.getLogger(__name__)

#: The property calbook writes on every event it pushes; its value is the booking id.
CALBOOK_MARKER_PROPERTY = "X-CALBOOK-BOOKING-ID"
#: Every UID calbook writes ends with this; together with the property above it lets a pull
#: recognise calbook's own events even when a client dropped the X- property on edit.
CALBOOK_UID_SUFFIX = "@calbook"

#: A series with more occurrences than this inside the window is cut off there (with a log
#: line): a FREQ=SECONDLY rule must not exhaust a worker's memory.
MAX_OCCURRENCES_PER_OBJECT = 5000
_HIGH_FREQUENCIES = {"SECONDLY", "MINUTELY", "HOURLY"}
#: Query the library with a padded window, because floating and all-day occurrences are only
#: placed in time after we localise them; real overlap is checked afterwards.
_WINDOW_PAD = timedelta(days=2)


class MalformedCalendarObject(ValueError):
    """One calendar object cannot be parsed or expanded; the rest of the calendar still can.

    ``object_id`` names it (a CalDAV href, a feed URL plus UID, ...) so the warning a caller
    logs points at the culprit.
    """

    def __init__(self, object_id: str, reason: str) -> None:
        super().__init__(f"malformed calendar object {object_id or '<unnamed>'}: {reason}")
        self.object_id = object_id
        self.reason = reason


@dataclass(slots=True)
class Expansion:
    """The busy intervals of one resource, and whether they depend on the window.

    ``window_dependent`` (a recurring event, or one starting near or beyond the window's end)
    tells a caller that when its horizon slides, the object must be expanded again even if it
    did not change; for any other object the intervals are final.
    """

    intervals: list[BusyInterval] = field(default_factory=list)
    window_dependent: bool = False


def booking_uid(booking_id: str) -> str:
    """The UID calbook gives the event of a booking (deterministic, so retries are idempotent)."""
    return f"{booking_id}{CALBOOK_UID_SUFFIX}"


def is_calbook_event(component: icalendar.cal.Component) -> bool:
    """True for an event calbook itself wrote (by UID suffix or marker property)."""
    uid = str(component.get("UID", ""))
    return uid.endswith(CALBOOK_UID_SUFFIX) or CALBOOK_MARKER_PROPERTY in component


def normalise_address(address: str) -> str:
    """``MAILTO:Ann@Example.org`` and ``ann@example.org`` compare equal."""
    value = address.strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :]
    return value.lower()


def resolve_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def parse_calendar(data: str | bytes, object_id: str = "") -> icalendar.Calendar:
    """Parse iCalendar text, turning every parser failure into ``MalformedCalendarObject``."""
    try:
        parsed = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # noqa: BLE001 - untrusted input, any failure means "malformed"
        raise MalformedCalendarObject(object_id, f"cannot parse: {exc}") from exc
    if not isinstance(parsed, icalendar.Calendar):
        raise MalformedCalendarObject(object_id, "not a VCALENDAR")
    return parsed


def expand_busy(
    data: str | bytes | icalendar.Calendar,
    window_start: datetime,
    window_end: datetime,
    default_tz: str | tzinfo,
    account_addresses: Iterable[str] = (),
    object_id: str = "",
) -> list[BusyInterval]:
    """Busy intervals of ``data`` overlapping ``[window_start, window_end)``, UTC, sorted."""
    return expand_calendar(data, window_start, window_end, default_tz, account_addresses, object_id).intervals


def expand_calendar(
    data: str | bytes | icalendar.Calendar,
    window_start: datetime,
    window_end: datetime,
    default_tz: str | tzinfo,
    account_addresses: Iterable[str] = (),
    object_id: str = "",
) -> Expansion:
    """Like ``expand_busy`` but also says whether the result depends on the window.

    Raises ``MalformedCalendarObject`` (and nothing else) for bad input data; a naive window
    or an unknown ``default_tz`` is a programming error and raises ``ValueError``.
    """
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    local_tz = resolve_timezone(default_tz) if isinstance(default_tz, str) else default_tz
    addresses = {normalise_address(a) for a in account_addresses if a}
    calendar = data if isinstance(data, icalendar.Calendar) else parse_calendar(data, object_id)
    start_utc, end_utc = window_start.astimezone(UTC), window_end.astimezone(UTC)
    try:
        events = calendar.walk("VEVENT")
        window_dependent = any(
            "RRULE" in ev or "RDATE" in ev or _sort_key(ev) >= end_utc - _WINDOW_PAD for ev in events
        )
        occurrences = _occurrences(calendar, events, start_utc - _WINDOW_PAD, end_utc + _WINDOW_PAD)
        intervals: set[BusyInterval] = set()
        for occurrence in occurrences:
            if not _is_busy(occurrence, addresses):
                continue
            interval = _interval(occurrence, local_tz)
            if interval is not None and interval.start < end_utc and start_utc < interval.end:
                intervals.add(interval)
    except MalformedCalendarObject:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted input, any failure means "malformed"
        raise MalformedCalendarObject(object_id, f"cannot expand: {type(exc).__name__}: {exc}") from exc
    return Expansion(sorted(intervals, key=lambda i: (i.start, i.end)), window_dependent)


def _occurrences(
    calendar: icalendar.Calendar, events: list[icalendar.Event], start: datetime, end: datetime
) -> list[icalendar.cal.Component]:
    """All occurrences in ``[start, end]``, capped at ``MAX_OCCURRENCES_PER_OBJECT``."""
    query = recurring_ical_events.of(calendar)
    if not any(_frequency(ev) in _HIGH_FREQUENCIES for ev in events):
        found = query.between(start, end)
        if len(found) <= MAX_OCCURRENCES_PER_OBJECT:
            return found
        log.warning(
            "calendar object has %d occurrences in the window, keeping the first %d",
            len(found),
            MAX_OCCURRENCES_PER_OBJECT,
        )
        return sorted(found, key=lambda c: _sort_key(c))[:MAX_OCCURRENCES_PER_OBJECT]
    # High-frequency rule: walk lazily in start order and stop at the end or the cap.
    result: list[icalendar.cal.Component] = []
    for occurrence in query.after(start):
        if _as_utc_guess(occurrence.get("DTSTART").dt) >= end:
            break
        result.append(occurrence)
        if len(result) >= MAX_OCCURRENCES_PER_OBJECT:
            log.warning("high-frequency series cut off after %d occurrences", len(result))
            break
    return result


def _frequency(event: icalendar.cal.Component) -> str:
    rules = event.get("RRULE")
    if rules is None:
        return ""
    rule = rules[0] if isinstance(rules, list) else rules
    freq = rule.get("FREQ") or [""]
    return str(freq[0]).upper()


def _as_utc_guess(value: date | datetime) -> datetime:
    """Rough UTC position of a start, good enough for ordering and the padded window."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sort_key(component: icalendar.cal.Component) -> datetime:
    return _as_utc_guess(component.get("DTSTART").dt)


def _is_busy(occurrence: icalendar.cal.Component, addresses: set[str]) -> bool:
    if is_calbook_event(occurrence):
        return False
    if str(occurrence.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
        return False
    return not (addresses and _declined_by_owner(occurrence, addresses))


def _declined_by_owner(occurrence: icalendar.cal.Component, addresses: set[str]) -> bool:
    attendees = occurrence.get("ATTENDEE")
    if attendees is None:
        return False
    if not isinstance(attendees, list):
        attendees = [attendees]
    for attendee in attendees:
        if normalise_address(str(attendee)) in addresses:
            partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "NEEDS-ACTION")).upper()
            return partstat == "DECLINED"
    return False


def _interval(occurrence: icalendar.cal.Component, local_tz: tzinfo) -> BusyInterval | None:
    start_value = occurrence.get("DTSTART").dt
    end_prop = occurrence.get("DTEND")
    end_value = end_prop.dt if end_prop is not None else None
    if not isinstance(start_value, datetime):
        # All-day: the local days [start, end) in the expert's timezone; no DTEND = one day.
        last = end_value if isinstance(end_value, date) and not isinstance(end_value, datetime) else None
        end_day = last if last is not None and last > start_value else start_value + timedelta(days=1)
        return BusyInterval(_local_midnight(start_value, local_tz), _local_midnight(end_day, local_tz))
    start = _to_utc(start_value, local_tz)
    end = _to_utc(end_value, local_tz) if isinstance(end_value, datetime) else start
    if end <= start:
        return None
    return BusyInterval(start, end)


def _local_midnight(day: date, local_tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=local_tz).astimezone(UTC)


def _to_utc(value: datetime, local_tz: tzinfo) -> datetime:
    """Floating (naive) times are wall-clock times of the expert's timezone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_tz)
    return value.astimezone(UTC)


def split_by_uid(calendar: icalendar.Calendar) -> dict[str, icalendar.Calendar]:
    """One VCALENDAR per event UID (master + overrides), each with the shared VTIMEZONEs.

    A feed holds many events in one VCALENDAR; splitting lets one malformed event be reported
    and skipped while the others import, and gives each event a stable key. Calendar-level
    properties (``X-WR-TIMEZONE`` in particular) are copied to every part.
    """
    timezones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
    parts: dict[str, icalendar.Calendar] = {}
    for index, component in enumerate(calendar.subcomponents):
        if component.name != "VEVENT":
            continue
        uid = str(component.get("UID", "")) or f"no-uid-{index}"
        part = parts.get(uid)
        if part is None:
            part = icalendar.Calendar()
            for key, value in calendar.items():
                part[key] = value
            for tz in timezones:
                part.add_component(tz)
            parts[uid] = part
        part.add_component(component)
    return parts
