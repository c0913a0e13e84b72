"""``ical_outline``: the spans read from the text, and ``expand_calendar``'s answer without parsing.

The outline must never change what an object blocks: for every object here, the answer
``expand_calendar`` gives from the text (outline first) equals the one it gives from the
parsed calendar (no outline), over windows before, around and after the events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.ical_expand import expand_calendar, parse_calendar
from connectors.ical_outline import outline

BERLIN = (
    "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nEND:STANDARD\n"
    "BEGIN:DAYLIGHT\nDTSTART:19700329T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\n"
    "TZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nEND:DAYLIGHT\nEND:VTIMEZONE\n"
)


def vcal(*events: str, head: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\nUID:u\nDTSTAMP:20250101T000000Z\n{e.strip()}\nEND:VEVENT\n" for e in events)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n{head}{body}END:VCALENDAR\n"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_plain_events_are_read_as_wall_clock_spans() -> None:
    text = vcal(
        "DTSTART;TZID=Europe/Berlin:20230301T100000\nDTEND;TZID=Europe/Berlin:20230301T110000",
        "DTSTART;VALUE=DATE:20230302",
        "DTSTART:20230303T100000Z\nDURATION:P1DT2H",
        "DTSTART:20230304T100000",
        head=BERLIN,
    )
    found = outline(text)
    assert found is not None and not found.recurring
    assert found.spans == [
        (datetime(2023, 3, 1, 10), datetime(2023, 3, 1, 11)),
        (datetime(2023, 3, 2), datetime(2023, 3, 3)),
        (datetime(2023, 3, 3, 10), datetime(2023, 3, 4, 12)),
        (datetime(2023, 3, 4, 10), datetime(2023, 3, 4, 10)),
    ]


def test_folded_lines_and_crlf_are_read() -> None:
    text = vcal("DTSTART:20230303T1\r\n 00000Z\r\nDTEND:20230303T110000Z\r\nDESCRIPTION:long\r\n\ttext").replace(
        "\n", "\r\n"
    ).replace("\r\r\n", "\r\n")
    found = outline(text)
    assert found is not None and found.spans == [(datetime(2023, 3, 3, 10), datetime(2023, 3, 3, 11))]


def test_a_bounded_series_spans_to_its_last_possible_end() -> None:
    until = outline(vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=WEEKLY;UNTIL=20230601T000000Z"))
    assert until is not None and until.recurring
    assert until.spans == [(datetime(2023, 3, 1, 10), datetime(2023, 6, 1, 1))]
    daily = outline(vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=DAILY;COUNT=10;INTERVAL=2"))
    assert daily is not None and daily.spans == [(datetime(2023, 3, 1, 10), datetime(2023, 3, 21, 11))]
    override = outline(vcal(
        "DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=WEEKLY;COUNT=3;BYDAY=WE,FR\n"
        "EXDATE:20230308T100000Z",
        "RECURRENCE-ID:20230303T100000Z\nDTSTART:20240101T100000Z\nDTEND:20240101T110000Z",
    ))
    assert override is not None and override.spans[1] == (datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 11))


@pytest.mark.parametrize(
    "text",
    [
        vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=WEEKLY"),  # open-ended
        vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=MONTHLY;COUNT=3"),  # may skip months
        vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=DAILY;UNTIL=20230601;BYDAY=MO, TU"),
        vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=SOMETIMES;COUNT=2"),
        vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRDATE:20260101T100000Z"),
        vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nEXDATE:soon"),
        vcal("RECURRENCE-ID;RANGE=THISANDFUTURE:20230301T100000Z\nDTSTART:20230301T100000Z\nDTEND:20230301T110000Z"),
        vcal("RECURRENCE-ID:20230301T100000Z\nDTSTART:20230301T100000Z"),  # its end would come from the series
        vcal("DTSTART:20230301T100000Z\nDTEND:20230301T090000Z"),  # ends before it starts
        vcal("DTSTART;VALUE=DATE:20230301\nDTEND:20230302T000000Z"),  # a date and a time
        vcal("DTSTART;TZID=Europe/Berlin:20230301T100000\nDTEND:20230301T110000Z"),  # two zones
        vcal("DTSTART:2023XX01T100000Z"),
        vcal("DTSTART:20231301T100000Z"),
        vcal("SUMMARY:no start"),
        vcal("DTSTART:20230301T100000Z\nDURATION:-PT1H"),
        vcal("DTSTART:20230301T100000Z\nDTSTART:20230302T100000Z"),
        vcal("DTSTART:20230301T100000Z", head="X-WR-TIMEZONE:America/New_York\n"),
        vcal("DTSTART:20230301T100000Z").replace("END:VCALENDAR", "BEGIN:VTODO\nUID:t\nEND:VTODO\nEND:VCALENDAR"),
        vcal("DTSTART:20230301T100000Z") * 2,  # a stream of two VCALENDARs
        vcal("DTSTART:20230301T100000Z\nthis is not a content line"),
        vcal("DTSTART:20230301T100000Z").replace("END:VEVENT\n", ""),
        vcal(),
        "not a calendar at all",
        b"\xff\xfe not utf-8",
    ],
)
def test_anything_not_fully_understood_is_left_to_the_parser(text: str | bytes) -> None:
    assert outline(text) is None


OBJECTS = [
    vcal("DTSTART;TZID=Europe/Berlin:20250301T100000\nDTEND;TZID=Europe/Berlin:20250301T110000", head=BERLIN),
    vcal("DTSTART;VALUE=DATE:20250301\nDTEND;VALUE=DATE:20250303"),
    vcal("DTSTART:20250301T100000\nDURATION:PT45M"),
    vcal("DTSTART:20250301T233000Z\nDTEND:20250302T003000Z\nSTATUS:CANCELLED"),
    vcal("DTSTART;TZID=Pacific/Kiritimati:20250301T230000\nDTEND;TZID=Pacific/Kiritimati:20250301T235900"),
    vcal("DTSTART;TZID=Pacific/Pago_Pago:20250301T000100\nDTEND;TZID=Pacific/Pago_Pago:20250301T010000"),
    vcal("DTSTART;TZID=Europe/Berlin:20250301T100000\nDTEND;TZID=Europe/Berlin:20250301T110000\n"
         "RRULE:FREQ=WEEKLY;UNTIL=20250329T090000Z\nEXDATE;TZID=Europe/Berlin:20250308T100000",
         "RECURRENCE-ID;TZID=Europe/Berlin:20250315T100000\nDTSTART;TZID=Europe/Berlin:20250401T100000\n"
         "DTEND;TZID=Europe/Berlin:20250401T110000", head=BERLIN),
    vcal("DTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nRRULE:FREQ=DAILY;COUNT=5;INTERVAL=3"),
    vcal("DTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nRRULE:FREQ=WEEKLY;COUNT=4;BYDAY=MO,SA"),
    vcal("DTSTART;VALUE=DATE:20250301\nRRULE:FREQ=YEARLY;UNTIL=20270301"),
    vcal("DTSTART:20250301T100000Z\nDTEND:20250301T110000Z\nRRULE:FREQ=HOURLY;UNTIL=20250303T000000Z"),
    vcal("DTSTART:20250301T100000Z\nDTEND:20250301T110000Z", "DTSTART:20260301T100000Z\nDTEND:20260301T110000Z"),
]
#: Windows far before, just before, over, just after and far after the objects above.
WINDOWS = [utc(2024, 1, 1), utc(2025, 2, 26), utc(2025, 2, 28, 12), utc(2025, 3, 1), utc(2025, 3, 2, 6),
           utc(2025, 3, 4), utc(2025, 3, 20), utc(2025, 4, 3), utc(2025, 6, 1), utc(2027, 3, 3)]


@pytest.mark.parametrize("index", range(len(OBJECTS)))
@pytest.mark.parametrize("days", [1, 3, 180])
def test_the_answer_from_the_text_is_the_answer_from_the_parsed_calendar(index: int, days: int) -> None:
    text = OBJECTS[index]
    for start in WINDOWS:
        end = start + timedelta(days=days)
        from_text = expand_calendar(text, start, end, "Europe/Berlin", [], "x.ics")
        from_parsed = expand_calendar(parse_calendar(text), start, end, "Europe/Berlin", [], "x.ics")
        assert (from_text.intervals, from_text.window_dependent, from_text.warnings) == (
            from_parsed.intervals, from_parsed.window_dependent, from_parsed.warnings
        ), (start, end)


def test_an_object_far_from_the_window_is_answered_from_its_outline() -> None:
    """The bench's case: history. A past event and a finished series block nothing; what lies
    ahead of the window depends on it; a recurring object stays window-dependent."""
    window = (utc(2025, 3, 1), utc(2025, 9, 1))
    past = vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z")
    finished = vcal("DTSTART:20230301T100000Z\nDTEND:20230301T110000Z\nRRULE:FREQ=DAILY;COUNT=10")
    ahead = vcal("DTSTART:20260301T100000Z\nDTEND:20260301T110000Z")
    assert [outline(t) is not None for t in (past, finished, ahead)] == [True, True, True]
    answers = [expand_calendar(t, *window, "Europe/Berlin") for t in (past, finished, ahead)]
    assert [(a.intervals, a.window_dependent) for a in answers] == [([], False), ([], True), ([], True)]
