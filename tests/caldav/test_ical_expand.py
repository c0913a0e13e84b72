"""iCalendar expansion to busy intervals: the rules of docs/sync.md#expansion, checked to the minute."""

from __future__ import annotations

import importlib.resources
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import BusyInterval
from connectors.ical_expand import (
    CALBOOK_MARKER_PROPERTY,
    MalformedCalendarObject,
    booking_uid,
    expand_busy,
    expand_calendar,
    split_by_uid,
)

WINDOW = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
OWNER = "expert@example.org"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def vcal(*events: str, extra: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\n{e.strip()}\nEND:VEVENT\n" for e in events)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{extra}{body}END:VCALENDAR\n"


def busy(
    text: str, tz: str = "Europe/Berlin", window: tuple[datetime, datetime] = WINDOW
) -> list[BusyInterval]:
    return expand_busy(text, window[0], window[1], tz, [f"mailto:{OWNER.upper()}"], "test.ics")


def spans(intervals: list[BusyInterval]) -> list[tuple[datetime, datetime]]:
    return [(i.start, i.end) for i in intervals]


BERLIN_WEEKLY = vcal(
    """UID:weekly-1
DTSTAMP:20250101T000000Z
DTSTART;TZID=Europe/Berlin:20250317T100000
DTEND;TZID=Europe/Berlin:20250317T110000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Europe/Berlin:20250324T100000
SUMMARY:Weekly""",
    """UID:weekly-1
DTSTAMP:20250101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20250407T100000
DTSTART;TZID=Europe/Berlin:20250408T140000
DTEND;TZID=Europe/Berlin:20250408T153000
SUMMARY:Weekly (moved)""",
)


def test_weekly_berlin_across_dst_with_exdate_and_moved_instance() -> None:
    assert spans(busy(BERLIN_WEEKLY)) == [
        (utc(2025, 3, 17, 9), utc(2025, 3, 17, 10)),  # CET, UTC+1
        # 24 March excluded; DST starts 30 March
        (utc(2025, 3, 31, 8), utc(2025, 3, 31, 9)),  # CEST, UTC+2
        (utc(2025, 4, 8, 12), utc(2025, 4, 8, 13, 30)),  # 7 April moved to 8 April 14:00
        (utc(2025, 4, 14, 8), utc(2025, 4, 14, 9)),
    ]


def test_result_says_whether_it_depends_on_the_window() -> None:
    assert expand_calendar(BERLIN_WEEKLY, *WINDOW, "UTC").window_dependent
    single = vcal("UID:s\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z")
    assert not expand_calendar(single, *WINDOW, "UTC").window_dependent
    beyond = vcal("UID:s\nDTSTART:20260301T100000Z\nDTEND:20260301T110000Z")
    assert expand_calendar(beyond, *WINDOW, "UTC").window_dependent


def test_window_keeps_only_overlapping_occurrences() -> None:
    window = (utc(2025, 3, 31, 8, 30), utc(2025, 4, 8, 12))
    assert spans(busy(BERLIN_WEEKLY, window=window)) == [(utc(2025, 3, 31, 8), utc(2025, 3, 31, 9))]


def test_rdate_adds_an_instance() -> None:
    text = vcal("UID:r\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nRDATE:20250305T150000Z")
    assert spans(busy(text)) == [
        (utc(2025, 3, 1, 10), utc(2025, 3, 1, 11)),
        (utc(2025, 3, 5, 15), utc(2025, 3, 5, 16)),
    ]


def test_vtimezone_definition_is_used() -> None:
    vtimezone = """BEGIN:VTIMEZONE
TZID:Custom/Plus3
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
END:STANDARD
END:VTIMEZONE
"""
    text = vcal(
        "UID:v\nDTSTART;TZID=Custom/Plus3:20250601T100000\nDTEND;TZID=Custom/Plus3:20250601T110000",
        extra=vtimezone,
    )
    assert spans(busy(text)) == [(utc(2025, 6, 1, 7), utc(2025, 6, 1, 8))]


def test_x_wr_timezone_places_floating_times() -> None:
    text = vcal(
        "UID:x\nDTSTART:20250601T100000\nDTEND:20250601T110000", extra="X-WR-TIMEZONE:America/New_York\n"
    )
    assert spans(busy(text, tz="Europe/Berlin")) == [(utc(2025, 6, 1, 14), utc(2025, 6, 1, 15))]


def test_floating_time_is_read_in_the_default_timezone() -> None:
    text = vcal("UID:f\nDTSTART:20250115T090000\nDTEND:20250115T100000")
    assert spans(busy(text, tz="America/Los_Angeles")) == [(utc(2025, 1, 15, 17), utc(2025, 1, 15, 18))]
    assert spans(busy(text, tz="Asia/Tokyo")) == [(utc(2025, 1, 15, 0), utc(2025, 1, 15, 1))]


def test_duration_instead_of_dtend() -> None:
    text = vcal("UID:d\nDTSTART:20250301T100000Z\nDURATION:PT1H30M\nRRULE:FREQ=DAILY;COUNT=2")
    assert spans(busy(text)) == [
        (utc(2025, 3, 1, 10), utc(2025, 3, 1, 11, 30)),
        (utc(2025, 3, 2, 10), utc(2025, 3, 2, 11, 30)),
    ]


def test_all_day_event_blocks_the_local_day_dst_correct() -> None:
    # 30 March 2025 is the spring-forward day in Berlin: 23 hours long.
    text = vcal("UID:a\nDTSTART;VALUE=DATE:20250330\nDTEND;VALUE=DATE:20250331")
    assert spans(busy(text)) == [(utc(2025, 3, 29, 23), utc(2025, 3, 30, 22))]
    # Without DTEND an all-day event is one day; a multi-day one spans all its days.
    assert spans(busy(vcal("UID:b\nDTSTART;VALUE=DATE:20251026"))) == [
        (utc(2025, 10, 25, 22), utc(2025, 10, 26, 23))
    ]
    text = vcal("UID:c\nDTSTART;VALUE=DATE:20250701\nDTEND;VALUE=DATE:20250703")
    assert spans(busy(text, tz="America/New_York")) == [(utc(2025, 7, 1, 4), utc(2025, 7, 3, 4))]


def test_transparent_and_cancelled_events_are_free() -> None:
    assert busy(vcal("UID:t\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nTRANSP:TRANSPARENT")) == []
    assert busy(vcal("UID:c\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nSTATUS:CANCELLED")) == []
    opaque = vcal("UID:o\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nTRANSP:OPAQUE\nSTATUS:CONFIRMED")
    assert len(busy(opaque)) == 1


def test_cancelled_instance_frees_only_that_instance() -> None:
    text = vcal(
        "UID:s\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nRRULE:FREQ=DAILY;COUNT=3",
        "UID:s\nRECURRENCE-ID:20250302T100000Z\nDTSTART:20250302T100000Z\nDTEND:20250302T110000Z\nSTATUS:CANCELLED",
    )
    assert [i.start.day for i in busy(text)] == [1, 3]


def test_declined_by_the_owner_is_free_other_answers_stay_busy() -> None:
    def invite(partstat: str, who: str = OWNER) -> str:
        return vcal(
            "UID:i\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nORGANIZER:mailto:boss@example.org\n"
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:boss@example.org\nATTENDEE;PARTSTAT={partstat}:mailto:{who}"
        )

    assert busy(invite("DECLINED")) == []
    assert len(busy(invite("ACCEPTED"))) == 1
    assert len(busy(invite("TENTATIVE"))) == 1
    assert len(busy(invite("NEEDS-ACTION"))) == 1
    assert len(busy(invite("DECLINED", who="someone.else@example.org"))) == 1


def test_declined_single_instance_of_a_series() -> None:
    text = vcal(
        f"UID:s\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nRRULE:FREQ=DAILY;COUNT=2\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{OWNER}",
        f"UID:s\nRECURRENCE-ID:20250302T100000Z\nDTSTART:20250302T100000Z\nDTEND:20250302T110000Z\n"
        f"ATTENDEE;PARTSTAT=DECLINED:mailto:{OWNER}",
    )
    assert [i.start.day for i in busy(text)] == [1]


def test_calbook_own_events_are_skipped() -> None:
    by_uid = vcal(f"UID:{booking_uid('b1')}\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z")
    by_marker = vcal(
        f"UID:edited\n{CALBOOK_MARKER_PROPERTY}:b1\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z"
    )
    assert busy(by_uid) == [] and busy(by_marker) == []


def test_zero_length_event_blocks_nothing() -> None:
    assert busy(vcal("UID:z\nDTSTART:20250301T100000Z")) == []


@pytest.mark.parametrize(
    "text",
    [
        "not a calendar at all",
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2025XX01T100000Z\nEND:VEVENT\nEND:VCALENDAR\n",
        vcal("UID:r\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nRRULE:FREQ=SOMETIMES"),
        vcal("UID:n\nSUMMARY:no start"),
    ],
)
def test_malformed_objects_raise_the_specific_exception(text: str) -> None:
    with pytest.raises(MalformedCalendarObject) as info:
        busy(text)
    assert info.value.object_id == "test.ics" and "test.ics" in str(info.value)


def test_high_frequency_rule_is_capped() -> None:
    text = vcal("UID:m\nDTSTART:20250301T000000Z\nDURATION:PT30S\nRRULE:FREQ=MINUTELY")
    result = busy(text, window=(utc(2025, 3, 1), utc(2025, 9, 1)))
    assert 0 < len(result) <= 5000


def test_split_by_uid_keeps_overrides_and_timezones_together() -> None:
    text = BERLIN_WEEKLY.replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\nUID:other\nDTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nEND:VEVENT\nEND:VCALENDAR",
    )
    from connectors.ical_expand import parse_calendar

    parts = split_by_uid(parse_calendar(text))
    assert sorted(parts) == ["other", "weekly-1"]
    assert len(busy(parts["weekly-1"].to_ical())) == 4


def _package_ics_files() -> list[Path]:
    found: list[Path] = []
    for package in ("icalendar", "recurring_ical_events"):
        stack = [importlib.resources.files(package)]
        while stack:
            node = stack.pop()
            for child in node.iterdir():
                if child.is_dir():
                    stack.append(child)
                elif child.name.endswith(".ics"):
                    found.append(Path(str(child)))
    return sorted(found)


PACKAGE_FILES = _package_ics_files()


def test_package_corpus_is_found() -> None:
    assert len(PACKAGE_FILES) > 100


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_world_file_expands_or_is_reported_malformed(path: Path) -> None:
    data = path.read_bytes()
    try:
        result = expand_busy(data, utc(1990, 1, 1), utc(2040, 1, 1), "Europe/Berlin", [OWNER], str(path))
    except MalformedCalendarObject as exc:
        assert exc.object_id == str(path)
        return
    for interval in result:
        assert interval.start.tzinfo is not None and interval.start.utcoffset() == timedelta(0)
        assert interval.start < interval.end
