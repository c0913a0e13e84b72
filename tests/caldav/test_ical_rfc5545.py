"""Where calbook's expansion corrects recurring-ical-events to RFC 5545 (docs/sync.md#expansion).

Exact DURATIONs across DST (3.3.6), streams of several VCALENDAR objects (3.4), overrides whose
end lies before their start, UTC series in a calendar with X-WR-TIMEZONE, zero-length events.
Expected instants are computed here by hand with ``zoneinfo`` (wall time -> UTC, then elapsed
hours added in UTC), never through the code under test.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from connectors.base import BusyInterval
from connectors.ical_expand import (
    MalformedCalendarObject,
    expand_busy,
    expand_calendar,
    parse_calendar,
    split_by_uid,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def wall(zone: ZoneInfo, *args: int) -> datetime:
    """A wall time of ``zone`` as a UTC instant (first occurrence when ambiguous)."""
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def vcal(*events: str, extra: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{extra}{body}END:VCALENDAR\r\n"


def spans(text: str | icalendar.Calendar, tz: str = "UTC") -> list[tuple[datetime, datetime]]:
    return [(i.start, i.end) for i in expand_busy(text, *WINDOW, tz, (), "test.ics")]


# --- 3. DURATION: hours, minutes and seconds exact; days and weeks nominal ----------------------------


def test_the_issue_example_pt12h_over_the_fall_back_night() -> None:
    text = vcal("UID:d\nDTSTART;TZID=Europe/Berlin:20261024T220000\nDURATION:PT12H")
    start = wall(BERLIN, 2026, 10, 24, 22)
    assert spans(text) == [(start, start + timedelta(hours=12))]
    assert spans(text) == [(utc(2026, 10, 24, 20), utc(2026, 10, 25, 8))]  # not 09:00Z


@pytest.mark.parametrize(
    ("duration", "elapsed_hours", "nominal_days"),
    [
        ("PT24H", 24, 0),
        ("PT1440M", 24, 0),
        ("PT86400S", 24, 0),
        ("PT36H", 36, 0),
        ("P1D", 0, 1),
        ("P1DT12H", 12, 1),
        ("P1W", 0, 7),
        ("P2DT3H30M", 3.5, 2),
    ],
)
@pytest.mark.parametrize(
    ("zone", "tzid", "start"),
    [
        (BERLIN, "Europe/Berlin", (2026, 10, 24, 12)),  # fall back on 25 October: a 25-hour day
        (BERLIN, "Europe/Berlin", (2026, 3, 28, 12)),  # spring forward on 29 March: a 23-hour day
        (NEW_YORK, "America/New_York", (2026, 3, 7, 12)),  # spring forward on 8 March
    ],
)
def test_duration_parts_across_dst(
    duration: str, elapsed_hours: float, nominal_days: int, zone: ZoneInfo, tzid: str, start: tuple[int, ...]
) -> None:
    local = datetime(*start, tzinfo=zone)
    stamp = local.strftime("%Y%m%dT%H%M%S")
    text = vcal(f"UID:d\nDTSTART;TZID={tzid}:{stamp}\nDURATION:{duration}")
    # By hand: the days move the wall clock, then the hours elapse.
    end = (local + timedelta(days=nominal_days)).astimezone(UTC) + timedelta(hours=elapsed_hours)
    assert spans(text) == [(local.astimezone(UTC), end)]


def test_every_occurrence_of_a_series_gets_the_exact_duration() -> None:
    text = vcal("UID:s\nDTSTART;TZID=Europe/Berlin:20261022T220000\nDURATION:PT12H\nRRULE:FREQ=DAILY;COUNT=6")
    starts = [wall(BERLIN, 2026, 10, day, 22) for day in range(22, 28)]
    assert spans(text) == [(s, s + timedelta(hours=12)) for s in starts]
    # The night of the change is the one the library got wrong: 08:00Z, not 09:00Z.
    assert (utc(2026, 10, 24, 20), utc(2026, 10, 25, 8)) in spans(text)


def test_an_override_with_its_own_duration_is_exact_from_its_own_start() -> None:
    text = vcal(
        "UID:s\nDTSTART;TZID=Europe/Berlin:20261023T090000\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=3",
        "UID:s\nRECURRENCE-ID;TZID=Europe/Berlin:20261024T090000\nDTSTART;TZID=Europe/Berlin:20261024T210000\n"
        "DURATION:PT13H",
    )
    moved = wall(BERLIN, 2026, 10, 24, 21)
    assert spans(text) == [
        (wall(BERLIN, 2026, 10, 23, 9), wall(BERLIN, 2026, 10, 23, 10)),
        (moved, moved + timedelta(hours=13)),  # 09:00 CET on the 25th, not 10:00
        (wall(BERLIN, 2026, 10, 25, 9), wall(BERLIN, 2026, 10, 25, 10)),
    ]


def test_floating_start_with_a_duration_is_exact_in_the_timezone_that_places_it() -> None:
    text = vcal("UID:f\nDTSTART:20261024T220000\nDURATION:PT12H")
    start = wall(BERLIN, 2026, 10, 24, 22)
    assert spans(text, tz="Europe/Berlin") == [(start, start + timedelta(hours=12))]
    in_feed_zone = vcal("UID:f\nDTSTART:20261031T220000\nDURATION:PT12H", extra="X-WR-TIMEZONE:America/New_York\r\n")
    start = wall(NEW_YORK, 2026, 10, 31, 22)  # New York falls back on 1 November
    assert spans(in_feed_zone, tz="Europe/Berlin") == [(start, start + timedelta(hours=12))]


def test_all_day_event_with_a_duration_is_whole_local_days() -> None:
    text = vcal("UID:a\nDTSTART;VALUE=DATE:20261024\nDURATION:P2D")
    assert spans(text, tz="Europe/Berlin") == [(wall(BERLIN, 2026, 10, 24), wall(BERLIN, 2026, 10, 26))]


def test_an_rdate_period_keeps_its_own_end() -> None:
    text = vcal(
        "UID:r\nDTSTART:20261001T100000Z\nDURATION:PT1H\n"
        "RDATE;VALUE=PERIOD:20261024T200000Z/20261024T213000Z"
    )
    assert spans(text) == [
        (utc(2026, 10, 1, 10), utc(2026, 10, 1, 11)),
        (utc(2026, 10, 24, 20), utc(2026, 10, 24, 21, 30)),
    ]


def test_calendar_objects_not_parsed_by_calbook_are_corrected_too() -> None:
    """A caller may hand over an ``icalendar.Calendar`` (a feed's per-UID part, say)."""
    text = vcal("UID:d\nDTSTART;TZID=Europe/Berlin:20261024T220000\nDURATION:PT12H")
    assert spans(icalendar.Calendar.from_ical(text)) == [(utc(2026, 10, 24, 20), utc(2026, 10, 25, 8))]
    part = split_by_uid(parse_calendar(vcal("UID:x\nDTSTART;TZID=Europe/Berlin:20261024T120000\nDURATION:PT24H")))
    assert spans(part["x"]) == [(utc(2026, 10, 24, 10), utc(2026, 10, 25, 10))]  # PT24H, not P1D


def test_a_dtend_series_keeps_its_wall_clock_end_on_the_dst_night() -> None:
    """Decision (docs/sync.md#expansion): a series given with DTEND ends each instance at the
    same wall time, as calendar clients show it; only DURATION carries exact hours."""
    text = vcal(
        "UID:e\nDTSTART;TZID=Europe/Berlin:20261023T220000\nDTEND;TZID=Europe/Berlin:20261024T100000\n"
        "RRULE:FREQ=DAILY;COUNT=2"
    )
    assert spans(text) == [
        (wall(BERLIN, 2026, 10, 23, 22), wall(BERLIN, 2026, 10, 24, 10)),
        (wall(BERLIN, 2026, 10, 24, 22), wall(BERLIN, 2026, 10, 25, 10)),
    ]


def test_private_notes_in_the_input_are_ignored() -> None:
    text = vcal("UID:d\nDTSTART:20261024T200000Z\nDURATION:PT1H\nX-CALBOOK-OWN-DURATION:5 0")
    assert spans(text) == [(utc(2026, 10, 24, 20), utc(2026, 10, 24, 21))]


# --- 4. several VCALENDAR objects in one stream ----------------------------------------------------


BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
END:DAYLIGHT\r
END:VTIMEZONE\r
"""


def test_a_stream_of_several_vcalendars_is_read_whole() -> None:
    first = vcal("UID:a\nDTSTART;TZID=Europe/Berlin:20260601T100000\nDTEND;TZID=Europe/Berlin:20260601T110000",
                 extra=BERLIN_VTIMEZONE)
    second = vcal("UID:b\nDTSTART;TZID=Europe/Berlin:20260602T100000\nDURATION:PT1H", extra=BERLIN_VTIMEZONE)
    third = vcal("UID:c\nDTSTART:20260603T100000Z\nDTEND:20260603T110000Z")
    assert spans(first + second + third) == [
        (utc(2026, 6, 1, 8), utc(2026, 6, 1, 9)),
        (utc(2026, 6, 2, 8), utc(2026, 6, 2, 9)),
        (utc(2026, 6, 3, 10), utc(2026, 6, 3, 11)),
    ]
    assert sorted(split_by_uid(parse_calendar(first + second + third))) == ["a", "b", "c"]


def test_a_series_and_its_override_in_different_vcalendars_stay_one_series() -> None:
    master = vcal("UID:s\nDTSTART:20260601T100000Z\nDTEND:20260601T110000Z\nRRULE:FREQ=DAILY;COUNT=3")
    override = vcal("UID:s\nRECURRENCE-ID:20260602T100000Z\nDTSTART:20260602T150000Z\nDTEND:20260602T160000Z")
    expected = [
        (utc(2026, 6, 1, 10), utc(2026, 6, 1, 11)),
        (utc(2026, 6, 2, 15), utc(2026, 6, 2, 16)),
        (utc(2026, 6, 3, 10), utc(2026, 6, 3, 11)),
    ]
    assert spans(master + override) == expected
    assert spans(split_by_uid(parse_calendar(master + override))["s"]) == expected


def test_each_vcalendar_places_its_floating_times_in_its_own_x_wr_timezone() -> None:
    berlin = vcal("UID:a\nDTSTART:20260601T100000\nDTEND:20260601T110000", extra="X-WR-TIMEZONE:Europe/Berlin\r\n")
    new_york = vcal("UID:b\nDTSTART:20260601T100000\nDTEND:20260601T110000",
                    extra="X-WR-TIMEZONE:America/New_York\r\n")
    plain = vcal("UID:c\nDTSTART:20260601T100000\nDTEND:20260601T110000")
    assert spans(berlin + new_york + plain, tz="Asia/Tokyo") == [
        (wall(ZoneInfo("Asia/Tokyo"), 2026, 6, 1, 10), wall(ZoneInfo("Asia/Tokyo"), 2026, 6, 1, 11)),
        (wall(BERLIN, 2026, 6, 1, 10), wall(BERLIN, 2026, 6, 1, 11)),
        (wall(NEW_YORK, 2026, 6, 1, 10), wall(NEW_YORK, 2026, 6, 1, 11)),
    ]
    parts = split_by_uid(parse_calendar(berlin + new_york))
    assert spans(parts["b"], tz="Asia/Tokyo") == [(wall(NEW_YORK, 2026, 6, 1, 10), wall(NEW_YORK, 2026, 6, 1, 11))]


def test_a_stream_with_something_else_at_its_top_level_is_malformed() -> None:
    stray = "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260601T100000Z\r\nEND:VEVENT\r\n"
    with pytest.raises(MalformedCalendarObject):
        spans(vcal("UID:a\nDTSTART:20260601T100000Z\nDURATION:PT1H") + stray)


# --- 5. an override whose end lies before its start -------------------------------------------------


def test_a_moved_override_that_kept_its_old_end_takes_the_series_duration() -> None:
    # Moved from 2 March to 4 March, DTEND left on 2 March: the library made it 47 hours.
    text = vcal(
        "UID:s\nDTSTART:20260301T100000Z\nDTEND:20260301T110000Z\nRRULE:FREQ=DAILY;COUNT=3",
        "UID:s\nRECURRENCE-ID:20260302T100000Z\nDTSTART:20260304T100000Z\nDTEND:20260302T110000Z",
    )
    expansion = expand_calendar(text, *WINDOW, "UTC", (), "moved.ics")
    assert [(i.start, i.end) for i in expansion.intervals] == [
        (utc(2026, 3, 1, 10), utc(2026, 3, 1, 11)),
        (utc(2026, 3, 3, 10), utc(2026, 3, 3, 11)),
        (utc(2026, 3, 4, 10), utc(2026, 3, 4, 11)),
    ]
    assert max(i.end - i.start for i in expansion.intervals) == timedelta(hours=1)
    assert len(expansion.warnings) == 1 and "moved.ics" in expansion.warnings[0]


def test_an_invalid_override_of_a_duration_series_gets_the_exact_duration() -> None:
    text = vcal(
        "UID:s\nDTSTART;TZID=Europe/Berlin:20261023T220000\nDURATION:PT12H\nRRULE:FREQ=DAILY;COUNT=3",
        "UID:s\nRECURRENCE-ID;TZID=Europe/Berlin:20261024T220000\nDTSTART;TZID=Europe/Berlin:20261024T230000\n"
        "DURATION:-PT1H",
    )
    moved = wall(BERLIN, 2026, 10, 24, 23)
    assert (moved, moved + timedelta(hours=12)) in spans(text)
    assert all(end - start == timedelta(hours=12) for start, end in spans(text))


def test_an_invalid_override_with_no_series_in_the_object_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    text = vcal(
        "UID:o\nRECURRENCE-ID:20260302T100000Z\nDTSTART:20260304T100000Z\nDTEND:20260302T110000Z",
        "UID:k\nDTSTART:20260305T100000Z\nDTEND:20260305T110000Z",
    )
    with caplog.at_level(logging.WARNING, logger="connectors.ical_expand"):
        expansion = expand_calendar(text, *WINDOW, "UTC", (), "orphan.ics")
    assert expansion.intervals == [BusyInterval(utc(2026, 3, 5, 10), utc(2026, 3, 5, 11))]
    assert len(expansion.warnings) == 1 and "skipped" in expansion.warnings[0]
    assert "orphan.ics" in caplog.text


def test_a_single_event_with_start_and_end_swapped_is_read_from_end_to_start() -> None:
    """Decision: producers are seen writing the two swapped (a SabreDAV file in the library's
    corpus); the span between them is what the event blocks, never more."""
    text = vcal("UID:w\nDTSTART;TZID=Europe/Berlin:20260304T083000\nDTEND;TZID=Europe/Berlin:20260304T080000")
    expansion = expand_calendar(text, *WINDOW, "UTC", (), "swapped.ics")
    assert [(i.start, i.end) for i in expansion.intervals] == [(utc(2026, 3, 4, 7), utc(2026, 3, 4, 7, 30))]
    assert len(expansion.warnings) == 1


# --- 6. X-WR-TIMEZONE places floating times only --------------------------------------------------


def test_a_utc_series_in_a_calendar_with_x_wr_timezone_recurs_in_utc() -> None:
    text = vcal(
        "UID:u\nDTSTART:20260701T100000Z\nDTEND:20260701T110000Z\nRRULE:FREQ=MONTHLY;COUNT=6\n"
        "EXDATE:20260901T100000Z",
        "UID:u\nRECURRENCE-ID:20261001T100000Z\nDTSTART:20261002T100000Z\nDTEND:20261002T110000Z",
        extra="X-WR-TIMEZONE:Europe/Berlin\r\n",
    )
    assert spans(text, tz="Europe/Berlin") == [
        (utc(2026, 7, 1, 10), utc(2026, 7, 1, 11)),
        (utc(2026, 8, 1, 10), utc(2026, 8, 1, 11)),
        (utc(2026, 10, 2, 10), utc(2026, 10, 2, 11)),
        (utc(2026, 11, 1, 10), utc(2026, 11, 1, 11)),  # winter: still 10:00Z, not 11:00Z
        (utc(2026, 12, 1, 10), utc(2026, 12, 1, 11)),
    ]


def test_a_floating_series_recurs_on_the_wall_clock_of_x_wr_timezone() -> None:
    text = vcal(
        "UID:f\nDTSTART:20261020T090000\nDTEND:20261020T100000\nRRULE:FREQ=WEEKLY;COUNT=2",
        extra="X-WR-TIMEZONE:Europe/Berlin\r\n",
    )
    # X-WR-TIMEZONE wins over the expert's timezone (here New York) for floating times.
    assert spans(text, tz="America/New_York") == [
        (wall(BERLIN, 2026, 10, 20, 9), wall(BERLIN, 2026, 10, 20, 10)),  # CEST
        (wall(BERLIN, 2026, 10, 27, 9), wall(BERLIN, 2026, 10, 27, 10)),  # CET
    ]


def test_a_tzid_series_ignores_x_wr_timezone() -> None:
    text = vcal(
        "UID:t\nDTSTART;TZID=America/New_York:20261025T090000\nDTEND;TZID=America/New_York:20261025T100000\n"
        "RRULE:FREQ=WEEKLY;COUNT=2",
        extra="X-WR-TIMEZONE:Europe/Berlin\r\n",
    )
    assert spans(text) == [
        (wall(NEW_YORK, 2026, 10, 25, 9), wall(NEW_YORK, 2026, 10, 25, 10)),
        (wall(NEW_YORK, 2026, 11, 1, 9), wall(NEW_YORK, 2026, 11, 1, 10)),
    ]


def test_an_unknown_x_wr_timezone_falls_back_to_the_expert_timezone_with_a_warning() -> None:
    text = vcal("UID:x\nDTSTART:20260601T100000\nDTEND:20260601T110000", extra="X-WR-TIMEZONE:Mars/Olympus\r\n")
    expansion = expand_calendar(text, *WINDOW, "Europe/Berlin", (), "mars.ics")
    assert [(i.start, i.end) for i in expansion.intervals] == [(utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))]
    assert len(expansion.warnings) == 1 and "Mars/Olympus" in expansion.warnings[0]


# --- 9. zero-length events block nothing (docs/domain.md#busy-times) --------------------------------


@pytest.mark.parametrize(
    "event",
    [
        "UID:z\nDTSTART:20260301T100000Z\nDTEND:20260301T100000Z",
        "UID:z\nDTSTART:20260301T100000Z\nDURATION:PT0S",
        "UID:z\nDTSTART:20260301T100000Z",
        "UID:z\nDTSTART:20260301T100000Z\nDTEND:20260301T100000Z\nRRULE:FREQ=DAILY;COUNT=5",
    ],
    ids=["dtend-equal", "duration-zero", "dtstart-only", "zero-length-series"],
)
def test_zero_length_events_are_dropped(event: str) -> None:
    assert spans(vcal(event, "UID:k\nDTSTART:20260302T100000Z\nDTEND:20260302T110000Z")) == [
        (utc(2026, 3, 2, 10), utc(2026, 3, 2, 11))
    ]
