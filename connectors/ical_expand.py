"""Turn one iCalendar resource into the busy intervals it causes, over a window.

Shared by the CalDAV and ICS-feed providers (and usable by anything else that holds raw
iCalendar text). One CalDAV resource is one VCALENDAR with one UID: a master VEVENT and
possibly RECURRENCE-ID overrides; an ICS feed is one VCALENDAR with many UIDs. Either may
also be a stream of several VCALENDAR objects (RFC 5545 3.4), which ``parse_calendar`` reads
whole into one calendar. Both go through ``expand_calendar``. The rules are written down in
docs/sync.md#expansion; in short:

* Recurrence (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides, VTIMEZONE) is delegated to
  ``recurring-ical-events``; we decide what counts as busy, place floating times and convert
  to UTC, and correct the library where it departs from RFC 5545:

  - a ``DURATION`` is exact in its hours, minutes and seconds and nominal in its days and
    weeks (3.3.6); the library adds all of it in wall-clock time, which is an hour off when
    the event spans a DST change. We recompute those ends (``add_duration``) for masters,
    overrides and every occurrence;
  - ``X-WR-TIMEZONE`` places floating times only; the library (through ``x-wr-timezone``)
    also moves UTC times into it, so a UTC series would recur in local time. We hide the
    property from the library and apply it to floating times ourselves;
  - an override whose end lies before its start: the library swaps the two, which turns a
    moved instance into a block of a day or two. The override takes its series' own duration
    from its own start instead (or, with no series to take it from, is skipped), with a
    warning. Other events with an end before their start keep the library's reading.

* Not busy: ``TRANSP:TRANSPARENT``, ``STATUS:CANCELLED`` (checked per occurrence, so a
  cancelled override of one instance frees just that instance), events the account owner
  declined (``PARTSTAT=DECLINED`` on the ATTENDEE whose address is one of the account's,
  again per occurrence) and the events calbook wrote itself (``is_calbook_event``) - those
  are already bookings, counting them twice would make a booking conflict with itself.
* Tentative / needs-action invitations stay busy: a careful expert would not want to be
  double-booked over an invitation they have not answered yet.
* Floating times are read in the calendar's ``X-WR-TIMEZONE`` when it names a known zone,
  else in the expert's timezone (``default_tz``); all-day events block the whole local day in
  the expert's timezone, from local midnight to the next local midnight, so a DST day is 23
  or 25 hours long.
* Intervals are returned whole (not clipped to the window) when they overlap the window;
  zero-length events (DTSTART == DTEND) block nothing and are dropped
  (docs/domain.md#busy-times).
* Anything that makes parsing or expansion fail raises ``MalformedCalendarObject`` naming the
  object, so a caller can log a warning and import the rest of the calendar.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from icalendar.parser import Contentlines

from connectors.base import BusyInterval
from connectors.ical_outline import outline

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
#: Private properties calbook puts on its in-memory copies of events (never written anywhere):
#: the event's own DURATION, which the library drops from occurrences, and the X-WR-TIMEZONE of
#: the VCALENDAR an event came from when a stream of several disagrees with the first one.
_DURATION_NOTE = "X-CALBOOK-OWN-DURATION"
_FLOATING_TZ_NOTE = "X-CALBOOK-FLOATING-TZ"
_PRIVATE_NOTES = (_DURATION_NOTE, _FLOATING_TZ_NOTE)
X_WR_TIMEZONE = "X-WR-TIMEZONE"


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
    """The busy intervals of one resource, whether they depend on the window, what was skipped.

    ``window_dependent`` (a recurring event, or one starting near or beyond the window's end)
    tells a caller that when its horizon slides, the object must be expanded again even if it
    did not change; for any other object the intervals are final.
    """

    intervals: list[BusyInterval] = field(default_factory=list)
    window_dependent: bool = False
    #: Events skipped or repaired (an end before its start, an unknown X-WR-TIMEZONE): the rest
    #: of the object imported; a caller may pass these on as its pull's warnings.
    warnings: list[str] = field(default_factory=list)


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


def parse_calendars(data: str | bytes, object_id: str = "") -> list[icalendar.Calendar]:
    """Every VCALENDAR object of an iCalendar stream (RFC 5545 3.4 allows several), in order.

    Every parser failure becomes ``MalformedCalendarObject``; so does a stream with no
    VCALENDAR or with anything else at its top level.
    """
    try:
        parsed = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # noqa: BLE001 - untrusted input, any failure means "malformed"
        raise MalformedCalendarObject(object_id, f"cannot parse: {exc}") from exc
    if not parsed or not all(isinstance(c, icalendar.Calendar) for c in parsed):
        raise MalformedCalendarObject(object_id, "not a VCALENDAR")
    events = [c for calendar in parsed for c in calendar.subcomponents if c.name == "VEVENT"]
    for event in events:
        for note in _PRIVATE_NOTES:
            event.pop(note, None)  # ours alone: a feed cannot set them
    _note_written_durations(data, events)
    return parsed


#: Longer written durations are not read from the text (``timedelta`` stops at 999,999,999 days).
MAX_DURATION_DAYS = 3_660_000
_DURATION_VALUE = re.compile(r"^([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.I)


def _note_written_durations(data: str | bytes, events: list[icalendar.cal.Component]) -> None:
    """Note on each event its DURATION as written, split into nominal days and exact seconds.

    The parser turns ``PT24H`` and ``P1D`` into the same ``timedelta(days=1)``, but RFC 5545
    3.3.6 makes the first 24 elapsed hours and the second the same wall time a day later: the
    difference is only in the text. ``events`` are the top-level VEVENTs in document order; if
    the scan does not find as many (a line the parser tolerated in another way), nothing is
    noted and the parsed value is used (see ``_prepared_event``).
    """
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if "DURATION" not in text.upper():
        return
    written: list[str | None] = []
    depth: list[str] = []
    try:
        for line in Contentlines.from_ical(text):
            head = line[:9].upper()
            if head.startswith(("BEGIN:", "END:")):
                keyword, _, name = line.partition(":")
                if keyword.upper() == "BEGIN":
                    depth.append(name.strip().upper())
                    if depth == ["VCALENDAR", "VEVENT"]:
                        written.append(None)
                elif depth:
                    depth.pop()
            elif head[:8] == "DURATION" and head[8:9] in (":", ";") and depth == ["VCALENDAR", "VEVENT"]:
                written[-1] = line.parts()[2]
    except Exception:  # noqa: BLE001 - the parser already accepted the text; keep its reading
        return
    if len(written) != len(events):
        return
    for event, value in zip(events, written, strict=True):
        parts = _parse_duration_text(value) if value is not None else None
        if parts is not None and _duration_of(event) == timedelta(days=parts[0], seconds=parts[1]):
            event[_DURATION_NOTE] = f"{parts[0]} {parts[1]}"


def _parse_duration_text(value: str) -> tuple[int, int] | None:
    """``(nominal days, exact seconds)`` of an RFC 5545 dur-value, signed; ``None`` if it is not one."""
    match = _DURATION_VALUE.match(value.strip())
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups()[1:])
    nominal, exact = sign * (weeks * 7 + days), sign * (hours * 3600 + minutes * 60 + seconds)
    if max(abs(nominal), abs(exact) // 86400) > MAX_DURATION_DAYS:
        return None  # no event lasts millennia; the parser's value (if any) decides
    return nominal, exact


def parse_calendar(data: str | bytes, object_id: str = "") -> icalendar.Calendar:
    """Parse iCalendar text into one calendar: several VCALENDAR objects are merged.

    Failures raise ``MalformedCalendarObject`` (see ``parse_calendars``).
    """
    return merge_calendars(parse_calendars(data, object_id))


def merge_calendars(calendars: list[icalendar.Calendar]) -> icalendar.Calendar:
    """One calendar holding the components of all, read as if they had been one object.

    The first object's properties stand for the whole; VTIMEZONEs are kept once per TZID (the
    first definition wins). An object whose ``X-WR-TIMEZONE`` differs from the first one's
    keeps its own for its floating times: its events carry it in a private note.
    """
    if len(calendars) == 1:
        return calendars[0]
    merged = icalendar.Calendar()
    for key, value in calendars[0].items():
        merged[key] = value
    first_tz = str(calendars[0].get(X_WR_TIMEZONE, ""))
    tzids: set[str] = set()
    for calendar in calendars:
        own_tz = str(calendar.get(X_WR_TIMEZONE, ""))
        for component in calendar.subcomponents:
            if component.name == "VTIMEZONE":
                tzid = str(component.get("TZID", ""))
                if tzid in tzids:
                    continue
                tzids.add(tzid)
            elif component.name == "VEVENT" and own_tz != first_tz:
                component = _copy_event(component)
                component[_FLOATING_TZ_NOTE] = own_tz  # "" = no X-WR-TIMEZONE: the expert's zone
            merged.add_component(component)
    return merged


def _copy_event(event: icalendar.cal.Component) -> icalendar.cal.Component:
    """A copy of ``event`` whose properties can change without touching the original."""
    copied = event.copy()
    for sub in event.subcomponents:
        copied.add_component(sub)
    return copied


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
    start_utc, end_utc = window_start.astimezone(UTC), window_end.astimezone(UTC)
    if not isinstance(data, icalendar.Calendar):
        outside = _outside_window(data, start_utc, end_utc)
        if outside is not None:
            return outside
    addresses = {normalise_address(a) for a in account_addresses if a}
    calendar = data if isinstance(data, icalendar.Calendar) else parse_calendar(data, object_id)
    warnings: list[str] = []
    try:
        events = calendar.walk("VEVENT")
        window_dependent = any(
            "RRULE" in ev or "RDATE" in ev or _sort_key(ev) >= end_utc - _WINDOW_PAD for ev in events
        )
        floating_tz = local_tz
        if any(_is_floating(ev.get("DTSTART")) for ev in events):
            floating_tz = _floating_timezone(calendar.get(X_WR_TIMEZONE), local_tz, object_id, warnings)
        view = _library_view(calendar, object_id, warnings)
        occurrences = _occurrences(view, view.walk("VEVENT"), start_utc - _WINDOW_PAD, end_utc + _WINDOW_PAD)
        intervals: set[BusyInterval] = set()
        for occurrence in occurrences:
            if not _is_busy(occurrence, addresses):
                continue
            interval = _interval(occurrence, local_tz, floating_tz)
            if interval is not None and interval.start < end_utc and start_utc < interval.end:
                intervals.add(interval)
    except MalformedCalendarObject:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted input, any failure means "malformed"
        raise MalformedCalendarObject(object_id, f"cannot expand: {type(exc).__name__}: {exc}") from exc
    for warning in warnings:
        log.warning("calendar object partly imported: %s", warning)
    return Expansion(sorted(intervals, key=lambda i: (i.start, i.end)), window_dependent, warnings)


#: How far an event's wall-clock values may lie from its UTC instants, and more: RFC 5545 UTC
#: offsets stay under a day, whatever zone a TZID, a floating time or an all-day date is read in.
_OUTLINE_SLACK = timedelta(days=2)


def _outside_window(data: str | bytes, start_utc: datetime, end_utc: datetime) -> Expansion | None:
    """The expansion of an object whose events (and series) all end before the window or start after it.

    No parsing, no recurrence library: ``ical_outline`` reads the events' wall-clock spans from
    the text, and with ``_OUTLINE_SLACK`` on both sides none can touch the window - so the object
    blocks nothing, and it is window-dependent exactly when an event lies ahead or it is a
    series (as ``expand_calendar`` would say). ``None`` for anything else, which is then parsed and expanded.
    An object skipped here is not checked for malformed parts elsewhere in its text: it blocks
    nothing either way, and no warning names it.
    """
    found = outline(data)
    if found is None:
        return None
    earliest = start_utc.replace(tzinfo=None) - _OUTLINE_SLACK
    latest = end_utc.replace(tzinfo=None) + _OUTLINE_SLACK
    ahead = False
    for start, end in found.spans:
        if start >= latest:
            ahead = True
        elif end > earliest:
            return None
    return Expansion([], window_dependent=ahead or found.recurring)


# --- what the library is given ---------------------------------------------------------------


def _floating_timezone(name: object, local_tz: tzinfo, object_id: str, warnings: list[str]) -> tzinfo:
    """The zone of floating times: the calendar's ``X-WR-TIMEZONE`` if known, else the expert's."""
    if name is None or not str(name).strip():
        return local_tz
    try:
        return resolve_timezone(str(name).strip())
    except ValueError:
        warnings.append(
            f"{object_id or '<unnamed>'}: unknown X-WR-TIMEZONE {str(name)[:64]!r}, "
            "floating times read in the expert's timezone"
        )
        return local_tz


def _is_floating(prop: object) -> bool:
    value = getattr(prop, "dt", None)
    return isinstance(value, datetime) and value.tzinfo is None


def _library_view(calendar: icalendar.Calendar, object_id: str, warnings: list[str]) -> icalendar.Calendar:
    """The calendar as ``recurring-ical-events`` is to see it (docs/sync.md#expansion).

    Without ``X-WR-TIMEZONE`` (we place floating times ourselves: the library would move UTC
    times into that zone too), with each event's own ``DURATION`` noted on it (the library
    drops it from the occurrences it makes, and adds it in wall-clock time), and with invalid
    overrides repaired. The input calendar is not changed: events that need a change are copies.
    """
    view = icalendar.Calendar()
    for key, value in calendar.items():
        if key.upper() != X_WR_TIMEZONE:
            view[key] = value
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    masters = {str(ev.get("UID", "")): ev for ev in events if "RECURRENCE-ID" not in ev}
    for component in calendar.subcomponents:
        if component.name == "VEVENT":
            component = _prepared_event(component, masters, object_id, warnings)
        view.add_component(component)
    return view


def _prepared_event(
    event: icalendar.cal.Component,
    masters: dict[str, icalendar.cal.Component],
    object_id: str,
    warnings: list[str],
) -> icalendar.cal.Component:
    """``event`` ready for the library: its own duration noted, an invalid period repaired.

    An override whose end lies before its start takes its series' own duration from its own
    start (the library would swap the two: a moved instance that kept its old DTEND would block
    from that old end to the new start, a day or two); with no series of valid duration in the
    object it is skipped (it still replaces its instance, and blocks nothing). Any other event
    whose end lies before its start is read from its end to its start, as the library does:
    some producers write the two swapped.
    """
    if "DTSTART" not in event or not _ends_before_start(event):
        return _with_duration_note(event)
    uid = str(event.get("UID", ""))
    where = f"{object_id or '<unnamed>'}: event {uid[:200]!r} ends before it starts"
    if "RECURRENCE-ID" not in event:
        warnings.append(f"{where}; read from its end to its start")
        return event
    master = masters.get(uid)
    length = _own_length(master) if master is not None else None
    repaired = _copy_event(event)
    for name in ("DTEND", "DURATION", _DURATION_NOTE):
        repaired.pop(name, None)
    if length is None:
        warnings.append(f"{where}; the override is skipped (no series duration to use)")
        repaired["DURATION"] = icalendar.vDuration(timedelta(0))
    elif isinstance(length, timedelta):  # the series has DTEND: its end is a wall-clock time too
        warnings.append(f"{where}; the override takes the series' duration")
        repaired["DTEND"] = icalendar.vDDDTypes(event["DTSTART"].dt + length)
    else:  # the master's DURATION property, and how it was written
        warnings.append(f"{where}; the override takes the series' duration")
        repaired["DURATION"] = length
        if master is not None and _DURATION_NOTE in master:
            repaired[_DURATION_NOTE] = master[_DURATION_NOTE]
    return _with_duration_note(repaired)


def _with_duration_note(event: icalendar.cal.Component) -> icalendar.cal.Component:
    """``event``, or a copy noting its DURATION, which the library drops from occurrences."""
    duration = _duration_of(event)
    if "DTEND" in event or duration is None or _DURATION_NOTE in event:
        return event
    noted = _copy_event(event)  # a calendar not read by ``parse_calendars``: the parsed value
    noted[_DURATION_NOTE] = f"{duration.days} {duration.seconds}"
    return noted


def _ends_before_start(event: icalendar.cal.Component) -> bool:
    """An invalid period: DTEND before DTSTART, or a negative DURATION (RFC 5545 3.8.2.2)."""
    start = event["DTSTART"].dt
    if "DTEND" in event:
        end = event["DTEND"].dt
        return _same_kind(start, end) and end < start
    duration = _duration_of(event)
    return duration is not None and duration < timedelta(0)


def _duration_of(event: icalendar.cal.Component) -> timedelta | None:
    """The parsed DURATION of ``event``; ``None`` when it has none or an unreadable one."""
    prop = event.get("DURATION")
    if prop is None:
        return None
    try:
        value = prop.dt
    except Exception:  # noqa: BLE001 - a broken property; the library reports the object as malformed
        return None
    return value if isinstance(value, timedelta) else None


def _same_kind(a: date | datetime, b: date | datetime) -> bool:
    """Directly comparable: both dates, both floating or both zoned datetimes."""
    if isinstance(a, datetime) != isinstance(b, datetime):
        return False
    return not isinstance(a, datetime) or (a.tzinfo is None) == (b.tzinfo is None)


def _own_length(master: icalendar.cal.Component) -> timedelta | icalendar.vDDDTypes | None:
    """The master's length as an override should take it: its DURATION property (so that it is
    added as RFC 5545 says), or its DTEND - DTSTART; ``None`` when it has no valid one."""
    if "DTSTART" not in master or _ends_before_start(master):
        return None
    if "DTEND" in master:
        start, end = master["DTSTART"].dt, master["DTEND"].dt
        return end - start if _same_kind(start, end) else None
    if _duration_of(master) is not None:
        return master["DURATION"]
    # Neither: a day for an all-day event, nothing for a timed one (RFC 5545 3.6.1).
    return timedelta(days=1) if not isinstance(master["DTSTART"].dt, datetime) else timedelta(0)


def add_duration(start: datetime, nominal_days: int, exact_seconds: int) -> datetime:
    """The end, in UTC, of a DURATION from ``start`` as RFC 5545 3.3.6 reads it: the days (and
    weeks) nominal, to the same wall time that many days later in ``start``'s zone, the hours,
    minutes and seconds exact (elapsed), added after the days.

    ``start`` is an aware datetime in the event's zone; a wall time the days land in a gap is
    read with the offset before the gap, an ambiguous one is its first occurrence (3.3.5).
    """
    if nominal_days < 0 or exact_seconds < 0:
        raise ValueError("a negative duration is an invalid period")
    wall_end = (start + timedelta(days=nominal_days)).replace(fold=0)
    return wall_end.astimezone(UTC) + timedelta(seconds=exact_seconds)


def _noted_duration(occurrence: icalendar.cal.Component) -> tuple[int, int] | None:
    """``(nominal days, exact seconds)`` of the event an occurrence came from, if it had a DURATION."""
    note = occurrence.get(_DURATION_NOTE)
    if note is None:
        return None
    days, _, seconds = str(note).partition(" ")
    try:
        parts = int(days), int(seconds)
    except ValueError:
        return None
    return parts if parts[0] >= 0 and parts[1] >= 0 else None


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


def _interval(occurrence: icalendar.cal.Component, local_tz: tzinfo, floating_tz: tzinfo) -> BusyInterval | None:
    start_value = occurrence.get("DTSTART").dt
    end_prop = occurrence.get("DTEND")
    end_value = end_prop.dt if end_prop is not None else None
    if not isinstance(start_value, datetime):
        # All-day: the local days [start, end) in the expert's timezone; no DTEND = one day.
        last = end_value if isinstance(end_value, date) and not isinstance(end_value, datetime) else None
        end_day = last if last is not None and last > start_value else start_value + timedelta(days=1)
        return BusyInterval(_local_midnight(start_value, local_tz), _local_midnight(end_day, local_tz))
    zone_of_floating = _noted_floating_timezone(occurrence, local_tz, floating_tz)
    start_local = start_value if start_value.tzinfo is not None else start_value.replace(tzinfo=zone_of_floating)
    start = start_local.astimezone(UTC)
    own = _noted_duration(occurrence)
    if own is not None and end_value == start_value + timedelta(days=own[0], seconds=own[1]):
        # The library's end is ``start + DURATION`` in wall-clock time; replace it with the
        # exact one. (An RDATE period with an end of its own is left as it is.)
        end = add_duration(start_local, *own)
    elif isinstance(end_value, datetime):
        end = _to_utc(end_value, zone_of_floating)
    else:
        end = start
    if end <= start:
        return None
    return BusyInterval(start, end)


def _noted_floating_timezone(occurrence: icalendar.cal.Component, local_tz: tzinfo, floating_tz: tzinfo) -> tzinfo:
    """The floating zone of an event from a merged stream whose VCALENDAR named another one."""
    noted = occurrence.get(_FLOATING_TZ_NOTE)
    if noted is None:
        return floating_tz
    try:
        return resolve_timezone(str(noted)) if str(noted) else local_tz
    except ValueError:
        return local_tz


def _local_midnight(day: date, local_tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=local_tz).astimezone(UTC)


def _to_utc(value: datetime, local_tz: tzinfo) -> datetime:
    """Floating (naive) times are wall-clock times of ``local_tz`` (see ``_floating_timezone``)."""
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
