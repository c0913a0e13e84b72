"""The RFC 5545 corrections of docs/sync.md#expansion, end to end through a real CalDAV server.

Each object is stored on the server by the expert's "own client" (``direct``) and pulled by
the provider as a sync would; the expected instants are computed here with ``zoneinfo``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.caldav import CalDAVProvider
from tests.support.caldav import Direct, store_as_written
from tests.support.caldav_servers import FaultProxy

BERLIN = ZoneInfo("Europe/Berlin")
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def wall(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def resource(*events: str, extra: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    text = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{extra}{body}END:VCALENDAR\r\n"
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def pulled(provider: CalDAVProvider, calendar_id: str, path: str, tz: str = "Europe/Berlin") -> list[tuple]:
    result = provider.pull(calendar_id, None, START, END, tz)
    return [(i.start, i.end) for i in result.upserts[path]]


def test_exact_duration_of_a_series_across_the_fall_back_night(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    # PT12H, not PT24H: Radicale (vobject) stores PT24H as P1D, which changes its meaning.
    direct.put(
        calendar_path + "night.ics",
        resource("UID:night\nDTSTART;TZID=Europe/Berlin:20261023T220000\nDURATION:PT12H\nRRULE:FREQ=DAILY;COUNT=4"),
    )
    starts = [wall(BERLIN, 2026, 10, day, 22) for day in range(23, 27)]
    busy = pulled(provider, calendar_id, calendar_path + "night.ics")
    assert busy == [(s, s + timedelta(hours=12)) for s in starts]
    assert busy[1] == (utc(2026, 10, 24, 20), utc(2026, 10, 25, 8))  # the night of the change


def test_override_ending_before_it_starts_takes_the_series_duration(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    store_as_written(
        direct, proxy, calendar_path + "moved.ics",
        resource(
            "UID:moved\nDTSTART:20260301T100000Z\nDTEND:20260301T110000Z\nRRULE:FREQ=DAILY;COUNT=3",
            "UID:moved\nRECURRENCE-ID:20260302T100000Z\nDTSTART:20260304T100000Z\nDTEND:20260302T110000Z",
        ),
    )
    result = provider.pull(calendar_id, None, START, END, "UTC")
    assert [(i.start, i.end) for i in result.upserts[calendar_path + "moved.ics"]] == [
        (utc(2026, 3, 1, 10), utc(2026, 3, 1, 11)),
        (utc(2026, 3, 3, 10), utc(2026, 3, 3, 11)),
        (utc(2026, 3, 4, 10), utc(2026, 3, 4, 11)),  # not 2 March 11:00 to 4 March 10:00
    ]
    assert any("takes the series' duration" in w for w in result.warnings)  # the repair is reported


def test_utc_series_in_a_calendar_with_x_wr_timezone_recurs_in_utc(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    direct.put(
        calendar_path + "utc.ics",
        resource(
            "UID:utc\nDTSTART:20260901T100000Z\nDTEND:20260901T110000Z\nRRULE:FREQ=MONTHLY;COUNT=4",
            extra="X-WR-TIMEZONE:Europe/Berlin\r\n",
        ),
    )
    direct.put(
        calendar_path + "floating.ics",
        resource(
            "UID:floating\nDTSTART:20261020T090000\nDTEND:20261020T100000\nRRULE:FREQ=WEEKLY;COUNT=2",
            extra="X-WR-TIMEZONE:Europe/Berlin\r\n",
        ),
    )
    assert pulled(provider, calendar_id, calendar_path + "utc.ics", tz="America/New_York") == [
        (utc(2026, month, 1, 10), utc(2026, month, 1, 11)) for month in (9, 10, 11, 12)
    ]
    # Floating times: X-WR-TIMEZONE wins over the expert's timezone (New York here).
    assert pulled(provider, calendar_id, calendar_path + "floating.ics", tz="America/New_York") == [
        (wall(BERLIN, 2026, 10, 20, 9), wall(BERLIN, 2026, 10, 20, 10)),
        (wall(BERLIN, 2026, 10, 27, 9), wall(BERLIN, 2026, 10, 27, 10)),
    ]


def test_an_object_body_of_several_vcalendars_is_read_whole(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    # Radicale refuses such a body on PUT; a laxer server serves it, so it is spliced on the way out.
    direct.put(
        calendar_path + "split.ics",
        resource("UID:split\nDTSTART:20260601T100000Z\nDTEND:20260601T110000Z\nRRULE:FREQ=DAILY;COUNT=3\nX-SPLIT:HERE"),
    )
    second = resource(
        "UID:split\nRECURRENCE-ID:20260602T100000Z\nDTSTART;TZID=Europe/Berlin:20260602T150000\n"
        "DTEND;TZID=Europe/Berlin:20260602T160000",
        extra="X-WR-TIMEZONE:Europe/Berlin\r\n",
    )

    def splice(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        closing = rb"X-SPLIT:HERE(\r?\n)END:VEVENT\r?\nEND:VCALENDAR\r?\n"
        return re.sub(closing, lambda m: b"END:VEVENT\r\nEND:VCALENDAR\r\n" + second.encode(), body)

    proxy.response_hook = splice
    result = provider.pull(calendar_id, None, START, END, "UTC")
    assert not result.warnings
    assert [(i.start, i.end) for i in result.upserts[calendar_path + "split.ics"]] == [
        (utc(2026, 6, 1, 10), utc(2026, 6, 1, 11)),
        (wall(BERLIN, 2026, 6, 2, 15), wall(BERLIN, 2026, 6, 2, 16)),
        (utc(2026, 6, 3, 10), utc(2026, 6, 3, 11)),
    ]


def test_zero_length_events_import_as_nothing(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    store_as_written(direct, proxy, calendar_path + "zero.ics",
                     resource("UID:zero\nDTSTART:20260301T100000Z\nDTEND:20260301T100000Z"))
    direct.put(calendar_path + "one.ics", resource("UID:one\nDTSTART:20260301T110000Z\nDTEND:20260301T120000Z"))
    result = provider.pull(calendar_id, None, START, END, "UTC")
    assert result.upserts[calendar_path + "zero.ics"] == []
    assert [(i.start, i.end) for i in result.upserts[calendar_path + "one.ics"]] == [
        (utc(2026, 3, 1, 11), utc(2026, 3, 1, 12))
    ]
