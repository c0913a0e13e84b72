"""Pulling busy blocks from a real Radicale: discovery, expansion rules, incremental sync, resync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import BusyInterval, PullResult
from connectors.caldav import CalDAVProvider
from connectors.ical_expand import CALBOOK_MARKER_PROPERTY
from tests.caldav.conftest import OWNER, WINDOW_END, WINDOW_START, Direct, vevent
from tests.caldav.servers import Account, CalDAVServer, Fault, FaultProxy


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class BlockStore:
    """What the worker does with a PullResult, reduced to a dict: the end state we compare."""

    def __init__(self) -> None:
        self.blocks: dict[str, list[BusyInterval]] = {}
        self.cursor: dict | None = None

    def apply(self, result: PullResult) -> PullResult:
        if result.full:
            self.blocks = {}
        for href in result.deleted:
            self.blocks.pop(href, None)
        self.blocks.update(result.upserts)
        self.cursor = result.cursor
        return result

    def busy(self) -> list[tuple[datetime, datetime]]:
        return sorted((i.start, i.end) for items in self.blocks.values() for i in items)


def pull(provider: CalDAVProvider, calendar_id: str, store: BlockStore, **window: datetime) -> PullResult:
    start, end = window.get("start", WINDOW_START), window.get("end", WINDOW_END)
    return store.apply(provider.pull(calendar_id, store.cursor, start, end, "Europe/Berlin"))


BERLIN_SERIES = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:series-1\r
DTSTAMP:20250101T000000Z\r
DTSTART;TZID=Europe/Berlin:20250317T100000\r
DTEND;TZID=Europe/Berlin:20250317T110000\r
RRULE:FREQ=WEEKLY;COUNT=5\r
EXDATE;TZID=Europe/Berlin:20250324T100000\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:series-1\r
DTSTAMP:20250101T000000Z\r
RECURRENCE-ID;TZID=Europe/Berlin:20250407T100000\r
DTSTART;TZID=Europe/Berlin:20250408T140000\r
DTEND;TZID=Europe/Berlin:20250408T153000\r
END:VEVENT\r
END:VCALENDAR\r
"""


# ------------------------------------------------------------------ discovery


def test_list_calendars_from_server_principal_or_calendar_url(
    proxy: FaultProxy, server_url: str, account: Account, calendar_path: str, calendar_id: str
) -> None:
    for url in (server_url, proxy.url.rstrip("/") + account.principal):
        with CalDAVProvider(url, account.username, account.password, "UTC") as provider:
            calendars = provider.list_calendars()
        assert calendar_id in [c.id for c in calendars]
        assert all(c.writable for c in calendars)
    with CalDAVProvider(calendar_id, account.username, account.password, "UTC") as provider:
        assert [c.id for c in provider.list_calendars()] == [calendar_id]


def test_basic_auth_is_sent_up_front_no_401_round_trip(
    provider: CalDAVProvider, proxy: FaultProxy, calendar_id: str
) -> None:
    provider.list_calendars()
    provider.pull(calendar_id, None, WINDOW_START, WINDOW_END)
    assert proxy.seen and all(s.authorized for s in proxy.seen)
    assert not [s for s in proxy.seen if s.status == 401]


# ---------------------------------------------------------- what counts as busy


def test_full_pull_applies_the_busy_rules(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    direct.put(calendar_path + "series.ics", BERLIN_SERIES)
    direct.put(
        calendar_path + "free.ics",
        vevent("free", "20250301T100000Z", "20250301T110000Z", "TRANSP:TRANSPARENT"),
    )
    direct.put(
        calendar_path + "cancelled.ics",
        vevent("c", "20250302T100000Z", "20250302T110000Z", "STATUS:CANCELLED"),
    )
    declined = f"ORGANIZER:mailto:boss@example.org\nATTENDEE;PARTSTAT=DECLINED:mailto:{OWNER}"
    direct.put(calendar_path + "declined.ics", vevent("d", "20250303T100000Z", "20250303T110000Z", declined))
    direct.put(
        calendar_path + "allday.ics",
        vevent("a", "20250330", extra="").replace("DTSTART:", "DTSTART;VALUE=DATE:"),
    )
    direct.put(calendar_path + "floating.ics", vevent("f", "20250115T090000", "20250115T100000"))
    direct.put(calendar_path + "duration.ics", vevent("u", "20250116T090000Z", extra="DURATION:PT45M"))
    direct.put(
        calendar_path + "own.ics",
        vevent("bk1@calbook", "20250117T090000Z", "20250117T100000Z", f"{CALBOOK_MARKER_PROPERTY}:bk1"),
    )

    store = BlockStore()
    result = pull(provider, calendar_id, store)

    assert result.full and not result.warnings
    assert len(result.upserts) == 8
    assert store.busy() == [
        (utc(2025, 1, 15, 8), utc(2025, 1, 15, 9)),  # floating 09:00 Berlin
        (utc(2025, 1, 16, 9), utc(2025, 1, 16, 9, 45)),  # DURATION
        (utc(2025, 3, 17, 9), utc(2025, 3, 17, 10)),
        (utc(2025, 3, 29, 23), utc(2025, 3, 30, 22)),  # all-day on the 23-hour DST day
        (utc(2025, 3, 31, 8), utc(2025, 3, 31, 9)),
        (utc(2025, 4, 8, 12), utc(2025, 4, 8, 13, 30)),
        (utc(2025, 4, 14, 8), utc(2025, 4, 14, 9)),
    ]


def test_malformed_object_is_reported_and_the_rest_imports(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    # Radicale refuses malformed data on PUT (and hides unreadable files), so the object is
    # broken on its way out, as a laxer server would serve it.
    def break_it(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        return body.replace(b"RRULE:FREQ=DAILY;COUNT=1", b"RRULE:FREQ=NONSENSE")

    proxy.response_hook = break_it
    direct.put(calendar_path + "good.ics", vevent("g", "20250301T100000Z", "20250301T110000Z"))
    bad = vevent("b", "20250302T100000Z", "20250302T110000Z", "RRULE:FREQ=DAILY;COUNT=1")
    direct.put(calendar_path + "bad.ics", bad)
    direct.put(calendar_path + "good2.ics", vevent("h", "20250303T100000Z", "20250303T110000Z"))

    store = BlockStore()
    result = pull(provider, calendar_id, store)

    assert store.busy() == [
        (utc(2025, 3, 1, 10), utc(2025, 3, 1, 11)),
        (utc(2025, 3, 3, 10), utc(2025, 3, 3, 11)),
    ]
    assert len(result.warnings) == 1 and calendar_path + "bad.ics" in result.warnings[0]


# ----------------------------------------------------------------- incremental


def test_incremental_sync_fetches_only_the_change_and_sees_deletes(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    for n in range(30):
        direct.put(
            calendar_path + f"e{n}.ics",
            vevent(f"e{n}", f"202503{n % 28 + 1:02d}T100000Z", f"202503{n % 28 + 1:02d}T110000Z"),
        )
    store = BlockStore()
    assert len(pull(provider, calendar_id, store).upserts) == 30

    proxy.seen.clear()
    direct.put(calendar_path + "e5.ics", vevent("e5", "20250610T100000Z", "20250610T120000Z"))
    result = pull(provider, calendar_id, store)

    assert not result.full
    assert list(result.upserts) == [calendar_path + "e5.ics"]
    assert result.upserts[calendar_path + "e5.ics"] == [
        BusyInterval(utc(2025, 6, 10, 10), utc(2025, 6, 10, 12))
    ]
    assert [s.method for s in proxy.seen] == ["REPORT", "REPORT"]  # sync-collection + one multiget
    assert b"e5.ics" in proxy.seen[1].body and b"e6.ics" not in proxy.seen[1].body

    proxy.seen.clear()
    result = pull(provider, calendar_id, store)
    assert not result.upserts and not result.deleted and proxy.count() == 1

    direct.delete(calendar_path + "e7.ics")
    result = pull(provider, calendar_id, store)
    assert result.deleted == {calendar_path + "e7.ics"} and not result.upserts
    assert calendar_path + "e7.ics" not in store.blocks and len(store.blocks) == 29


@pytest.mark.parametrize(
    "fault",
    [
        None,  # a token the server does not know: Radicale answers 403 valid-sync-token
        Fault("REPORT", 412, match="sync-collection", times=1),
        Fault("REPORT", 507, match="sync-collection", times=1),
        Fault("REPORT", 500, match="sync-collection", times=1),
        Fault("REPORT", 207, match="sync-collection", times=1, body=b"<not xml"),
    ],
    ids=["unknown-token", "412", "507", "500", "garbage"],
)
def test_unusable_sync_token_means_full_resync_with_same_end_state(
    provider: CalDAVProvider,
    direct: Direct,
    proxy: FaultProxy,
    calendar_path: str,
    calendar_id: str,
    fault: Fault | None,
) -> None:
    direct.put(calendar_path + "a.ics", vevent("a", "20250301T100000Z", "20250301T110000Z"))
    direct.put(calendar_path + "b.ics", BERLIN_SERIES)
    store = BlockStore()
    pull(provider, calendar_id, store)
    direct.put(calendar_path + "c.ics", vevent("c", "20250305T100000Z", "20250305T110000Z"))
    direct.delete(calendar_path + "a.ics")
    reference = BlockStore()
    pull(provider, calendar_id, reference)

    if fault is None:
        assert store.cursor is not None
        store.cursor = {**store.cursor, "sync_token": "http://radicale.org/ns/sync/" + "0" * 64}
    else:
        proxy.faults.append(fault)
    result = pull(provider, calendar_id, store)

    assert result.full
    assert store.busy() == reference.busy() and set(store.blocks) == set(reference.blocks)
    assert store.cursor is not None and store.cursor["mode"] == "sync"
    assert store.cursor["sync_token"] == reference.cursor["sync_token"]  # a real, fresh token
    # and the next pull is incremental again
    assert not pull(provider, calendar_id, store).full


def test_server_without_sync_support_uses_ctag_and_etags_never_a_fake_token(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    refusal = b'<?xml version="1.0"?><d:error xmlns:d="DAV:"><d:supported-report/></d:error>'
    proxy.faults.append(Fault("REPORT", 403, match="sync-collection", body=refusal))
    for n in range(5):
        direct.put(
            calendar_path + f"e{n}.ics", vevent(f"e{n}", f"2025030{n + 1}T100000Z", f"2025030{n + 1}T110000Z")
        )
    store = BlockStore()
    first = pull(provider, calendar_id, store)
    assert first.full and len(first.upserts) == 5
    assert store.cursor is not None and store.cursor["mode"] == "etag" and not store.cursor["sync_token"]
    assert "fake-" not in str(store.cursor)

    proxy.seen.clear()
    nothing = pull(provider, calendar_id, store)
    assert not nothing.full and not nothing.upserts and not nothing.deleted
    assert [s.method for s in proxy.seen] == ["PROPFIND"]  # the ctag, nothing else

    direct.put(calendar_path + "e2.ics", vevent("e2", "20250320T100000Z", "20250320T110000Z"))
    direct.delete(calendar_path + "e4.ics")
    proxy.seen.clear()
    changed = pull(provider, calendar_id, store)
    assert list(changed.upserts) == [calendar_path + "e2.ics"] and changed.deleted == {
        calendar_path + "e4.ics"
    }
    assert [s.method for s in proxy.seen] == ["PROPFIND", "PROPFIND", "REPORT"]  # ctag, etags, multiget
    assert b"e2.ics" in proxy.seen[2].body and b"e1.ics" not in proxy.seen[2].body


def test_reconcile_fixes_what_sync_missed(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    for name in ("a", "b", "c"):
        direct.put(calendar_path + f"{name}.ics", vevent(name, "20250301T100000Z", "20250301T110000Z"))
    store = BlockStore()
    pull(provider, calendar_id, store)
    assert store.cursor is not None
    etags = dict(store.cursor["etags"])
    etags.pop(calendar_path + "a.ics")  # a change sync never reported
    etags[calendar_path + "b.ics"] = '"stale"'  # an edit sync never reported
    etags[calendar_path + "ghost.ics"] = '"gone"'  # a delete sync never reported
    store.blocks[calendar_path + "ghost.ics"] = [BusyInterval(utc(2025, 2, 1), utc(2025, 2, 2))]
    store.cursor = {**store.cursor, "etags": etags}

    result = provider.reconcile(calendar_id, store.cursor, WINDOW_START, WINDOW_END)
    store.apply(result)

    assert not result.full
    assert set(result.upserts) == {calendar_path + "a.ics", calendar_path + "b.ics"}
    assert result.deleted == {calendar_path + "ghost.ics"}
    assert set(store.blocks) == {calendar_path + f"{n}.ics" for n in "abc"}
    assert not pull(provider, calendar_id, store).upserts  # token kept: incremental continues


def test_recurring_objects_are_expanded_again_when_the_horizon_slides(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    daily = vevent("daily", "20250101T080000Z", "20250101T090000Z", "RRULE:FREQ=DAILY")
    direct.put(calendar_path + "daily.ics", daily)
    direct.put(calendar_path + "single.ics", vevent("s", "20250102T080000Z", "20250102T090000Z"))
    store = BlockStore()
    pull(provider, calendar_id, store, start=utc(2025, 1, 1), end=utc(2025, 1, 11))
    assert len(store.blocks[calendar_path + "daily.ics"]) == 10

    same_day = pull(provider, calendar_id, store, start=utc(2025, 1, 1, 6), end=utc(2025, 1, 11, 6))
    assert not same_day.upserts  # moved less than a day: nothing to do

    proxy.seen.clear()
    result = pull(provider, calendar_id, store, start=utc(2025, 1, 3), end=utc(2025, 1, 13))
    assert list(result.upserts) == [calendar_path + "daily.ics"]
    days = [i.start.day for i in store.blocks[calendar_path + "daily.ics"]]
    assert days == list(range(3, 13))
    assert [s.method for s in proxy.seen] == ["REPORT", "REPORT"]


def test_horizon_slide_also_picks_up_a_single_event_that_was_beyond_it(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    direct.put(calendar_path + "later.ics", vevent("l", "20250120T080000Z", "20250120T090000Z"))
    store = BlockStore()
    pull(provider, calendar_id, store, start=utc(2025, 1, 1), end=utc(2025, 1, 11))
    assert store.blocks[calendar_path + "later.ics"] == []
    pull(provider, calendar_id, store, start=utc(2025, 1, 15), end=utc(2025, 1, 25))
    assert store.busy() == [(utc(2025, 1, 20, 8), utc(2025, 1, 20, 9))]


def test_default_timezone_of_the_pull_wins(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    direct.put(calendar_path + "f.ics", vevent("f", "20250115T090000", "20250115T100000"))
    result = provider.pull(calendar_id, None, WINDOW_START, WINDOW_END, "America/New_York")
    assert list(result.upserts.values()) == [[BusyInterval(utc(2025, 1, 15, 14), utc(2025, 1, 15, 15))]]
    assert timedelta(0) == result.upserts[calendar_path + "f.ics"][0].start.utcoffset()
