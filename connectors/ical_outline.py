"""When the events of one iCalendar object can lie, read from its text alone, without parsing it.

Parsing an object with ``icalendar`` costs about a millisecond (docs/performance.md#caldav-first-sync),
and a large calendar is mostly history: of 10,000 objects, most are single events that ended
months or years before the sync window begins. ``outline`` reads just enough of the text to
say so - the start and end of each event, as naive wall-clock values - so that
``ical_expand.expand_calendar`` can answer "blocks nothing" for such an object without the
parser and the recurrence library.

It also reads a series whose end the text gives away: an RRULE with an UNTIL, or a COUNT of a
plain daily or weekly rule, with EXDATEs (they only take instances away) and overrides
(RECURRENCE-ID, each with its own start and end); such an object spans from its first start
to its last possible end.

It only answers for what it fully understands, and says ``None`` (parse it properly) for
anything else: more than one VCALENDAR, a component other than VEVENT, VTIMEZONE and VALARM,
an open-ended or otherwise unbounded series, RDATE, EXRULE, a RECURRENCE-ID with a RANGE, an
``X-WR-TIMEZONE``, a line that is not ``NAME[;params]:value``, a DTSTART/DTEND/DURATION in any
but the plain RFC 5545 forms, a start and an end of different kinds or zones, or an end before
the start. The values are naive on purpose: whatever a TZID means (an IANA zone, an object's
own VTIMEZONE, nothing known), the true UTC instant lies within a day of the wall-clock value
(RFC 5545 UTC offsets have two-digit hours), and the caller keeps a margin of two days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Properties that can add instances anywhere: objects with them go to the recurrence library.
_UNBOUNDED = frozenset({"RDATE", "EXRULE"})
_FREQUENCIES = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_WEEKDAYS = frozenset({"MO", "TU", "WE", "TH", "FR", "SA", "SU"})
#: The numeric BY-parts of RFC 5545 3.3.10 and the magnitudes they allow (signed where a sign may be given).
_NUMERIC_PARTS = {"BYSECOND": (60, False), "BYMINUTE": (59, False), "BYHOUR": (23, False),
                  "BYMONTHDAY": (31, True), "BYYEARDAY": (366, True), "BYWEEKNO": (53, True),
                  "BYMONTH": (12, False), "BYSETPOS": (366, True)}
_RULE_PARTS = frozenset({"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "WKST", *_NUMERIC_PARTS})
_NUMBER = re.compile(r"([+-]?)(\d{1,3})")
_BYDAY = re.compile(r"(?:[+-]?(\d{1,2}))?(MO|TU|WE|TH|FR|SA|SU)")
_COMPONENTS = {
    (): {"VCALENDAR"},
    ("VCALENDAR",): {"VEVENT", "VTIMEZONE"},
    ("VCALENDAR", "VEVENT"): {"VALARM"},
    ("VCALENDAR", "VTIMEZONE"): {"STANDARD", "DAYLIGHT"},
}
_LINE = re.compile(r"([A-Za-z0-9-]+)([;:])")
_UNFOLD = re.compile(r"\r?\n[ \t]")
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?")
_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
#: Longer durations are left to the parser (and the limits of ``ical_expand``).
_MAX_DURATION_DAYS = 36_600

Span = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Outline:
    """Where an object's events can lie: one span per VEVENT (a series: first start to last end)."""

    spans: list[Span]
    #: An RRULE was read: ``expand_calendar`` calls such an object window-dependent.
    recurring: bool


class _Unknown(Exception):
    """Something ``outline`` does not read: the object goes to the parser."""


def outline(text: str | bytes) -> Outline | None:
    """``(start, end)`` of every VEVENT as naive wall-clock values, or ``None`` (see the module docstring).

    An all-day event's values are its dates at midnight; an event without DTEND and DURATION
    ends when it starts (timed) or a day later (all-day), as RFC 5545 3.6.1 says.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        found = _read(text)
    except (_Unknown, ValueError, OverflowError):
        return None
    return found if found.spans else None


def _read(text: str) -> Outline:
    stack: list[str] = []
    spans: list[Span] = []
    calendars = 0
    event: dict[str, tuple[str, str]] = {}
    recurring = False
    for line in _UNFOLD.sub("", text).split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        match = _LINE.match(line)
        if match is None or ":" not in line:
            raise _Unknown
        name = match.group(1).upper()
        if name in ("BEGIN", "END"):
            if match.group(2) != ":":
                raise _Unknown
            value = line[match.end() :].strip().upper()
            if name == "BEGIN":
                if value not in _COMPONENTS.get(tuple(stack), ()):
                    raise _Unknown
                calendars += value == "VCALENDAR"
                stack.append(value)
                if stack == ["VCALENDAR", "VEVENT"]:
                    event = {}
            else:
                if not stack or stack[-1] != value:
                    raise _Unknown
                if stack == ["VCALENDAR", "VEVENT"]:
                    spans.append(_span(event))
                    recurring = recurring or "RRULE" in event
                stack.pop()
            continue
        if not stack:
            raise _Unknown
        if stack == ["VCALENDAR"] and name == "X-WR-TIMEZONE":
            raise _Unknown
        if stack == ["VCALENDAR", "VEVENT"]:
            if name in _UNBOUNDED:
                raise _Unknown
            if name == "EXDATE":  # takes instances away; read only to be sure the parser would too
                params, _, value = line[match.start(2) :].partition(":")
                for moment in value.strip().split(","):
                    _moment(params, moment.strip())
            elif name in ("DTSTART", "DTEND", "DURATION", "RRULE", "RECURRENCE-ID"):
                if name in event:
                    raise _Unknown
                params, _, value = line[match.start(2) :].partition(":")
                event[name] = (params, value.strip())
    if stack or calendars != 1:
        raise _Unknown
    return Outline(spans, recurring)


def _span(event: dict[str, tuple[str, str]]) -> Span:
    if "DTSTART" not in event:
        raise _Unknown
    start, start_kind = _moment(*event["DTSTART"])
    if "DTEND" in event:
        if "DURATION" in event:
            raise _Unknown
        end, end_kind = _moment(*event["DTEND"])
        if end_kind != start_kind:
            raise _Unknown
    elif "DURATION" in event:
        params, value = event["DURATION"]
        if params:
            raise _Unknown
        end = start + _duration(value)
    else:
        end = start + timedelta(days=1) if start_kind == "date" else start
    if end < start:
        raise _Unknown
    if "RECURRENCE-ID" in event:
        params, value = event["RECURRENCE-ID"]
        if "RRULE" in event or ("DTEND" not in event and "DURATION" not in event):
            raise _Unknown  # an override's end would come from its series
        _moment(params, value)  # TZID and VALUE only: no RANGE=THISANDFUTURE
    if "RRULE" in event:
        params, value = event["RRULE"]
        if params:
            raise _Unknown
        last = _last_start(value, start, start_kind)
        return start, max(end, last + (end - start))
    return start, end


def _last_start(rule: str, start: datetime, kind: str) -> datetime:
    """No instance of ``rule`` from ``start`` starts later than this (wall-clock, as ``start``)."""
    parts: dict[str, str] = {}
    for part in rule.split(";"):
        key, equals, value = part.partition("=")
        key = key.upper()
        if not equals or key not in _RULE_PARTS or key in parts:
            raise _Unknown
        parts[key] = value.upper()
        _check_part(key, parts[key])
    frequency = parts.get("FREQ")
    if frequency not in _FREQUENCIES or ("UNTIL" in parts) == ("COUNT" in parts):
        raise _Unknown  # no rule, or an open-ended (or contradictory) one
    interval = int(parts.get("INTERVAL", "1"))
    if interval < 1:
        raise _Unknown
    if "UNTIL" in parts:
        until, until_kind = _moment("", parts["UNTIL"])
        if (until_kind == "date") != (kind == "date"):
            raise _Unknown
        return until + timedelta(days=1) if until_kind == "date" else until
    count = int(parts["COUNT"])
    if count < 1 or count > 100_000:
        raise _Unknown
    plain = set(parts) <= {"FREQ", "COUNT", "INTERVAL", "WKST", "BYDAY"}
    if frequency == "DAILY" and plain and "BYDAY" not in parts:
        return start + timedelta(days=count * interval)
    days = parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []
    if frequency == "WEEKLY" and plain and all(day in _WEEKDAYS for day in days):
        return start + timedelta(weeks=count * interval + 1)
    raise _Unknown  # a COUNT of a rule that may skip periods: leave it to the library


def _check_part(key: str, value: str) -> None:
    """A rule part exactly as RFC 5545 3.3.10 writes it (the recurrence library refuses others)."""
    if key in ("COUNT", "INTERVAL"):
        valid = value.isdigit() and len(value) <= 6
    elif key == "WKST":
        valid = value in _WEEKDAYS
    elif key == "BYDAY":
        days = [_BYDAY.fullmatch(day) for day in value.split(",")]
        valid = all(day is not None and 1 <= int(day.group(1) or 1) <= 53 for day in days)
    elif key in _NUMERIC_PARTS:
        limit, signed = _NUMERIC_PARTS[key]
        numbers = [_NUMBER.fullmatch(number) for number in value.split(",")]
        valid = all(
            n is not None and (signed or not n.group(1)) and (0 if key in ("BYSECOND", "BYMINUTE", "BYHOUR") else 1)
            <= int(n.group(2)) <= limit
            for n in numbers
        )
    else:
        valid = True  # FREQ and UNTIL are checked where they are read
    if not valid:
        raise _Unknown


def _moment(params: str, value: str) -> tuple[datetime, str]:
    """A DTSTART/DTEND value and its kind: ``date``, ``utc``, ``floating`` or ``tz:<TZID>``."""
    tzid, value_type = None, None
    for param in params.split(";")[1:]:
        key, _, given = param.partition("=")
        key = key.upper()
        if key == "TZID" and tzid is None:
            tzid = given.strip('"')
        elif key == "VALUE" and value_type is None:
            value_type = given.upper()
        else:
            raise _Unknown
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise _Unknown
    year, month, day, hour, minute, second, zulu = match.groups()
    if hour is None:
        if value_type not in (None, "DATE") or tzid is not None:
            raise _Unknown
        return datetime(int(year), int(month), int(day)), "date"
    if value_type not in (None, "DATE-TIME") or (zulu and tzid is not None):
        raise _Unknown
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    return moment, "utc" if zulu else f"tz:{tzid}" if tzid is not None else "floating"


def _duration(value: str) -> timedelta:
    match = _DURATION.fullmatch(value.upper())
    if match is None or value.upper() in ("P", "PT") or value.upper().endswith("T"):
        raise _Unknown
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if weeks * 7 + days + (hours * 3600 + minutes * 60 + seconds) // 86400 > _MAX_DURATION_DAYS:
        raise _Unknown
    return timedelta(days=weeks * 7 + days, hours=hours, minutes=minutes, seconds=seconds)
