"""Pulling busy blocks from every real server: discovery, expansion rules, incremental sync, resync.

Each test runs against each server of ``tests.support.caldav_servers.SERVERS``; where servers differ in
what they support (SabreDAV 1.8 has no sync-collection), the expected requests follow the
server's ``features``, and ``test_calbook_finds_out_what_the_server_supports`` checks that calbook
draws the same conclusion by itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from connectors.base import BusyInterval, PullResult
from connectors.caldav import CalDAVProvider
from connectors.ical_expand import CALBOOK_MARKER_PROPERTY
from tests.support.caldav import LOCAL, OWNER, WINDOW_END, WINDOW_START, Direct, vevent
from tests.support.caldav_servers import Account, CalDAVServer, Fault, FaultProxy


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
        with CalDAVProvider(url, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
            calendars = provider.list_calendars()
        assert calendar_id in [c.id for c in calendars]
        assert all(c.writable for c in calendars)
    with CalDAVProvider(calendar_id, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
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


def changed_pull(server: CalDAVServer) -> list[str]:
    """The requests of an incremental pull that finds one change: ctag, the changes, one multiget."""
    return ["PROPFIND", "REPORT" if server.features.sync_collection else "PROPFIND", "REPORT"]


def test_calbook_finds_out_what_the_server_supports(
    provider: CalDAVProvider, caldav_server: CalDAVServer, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    direct.put(calendar_path + "a.ics", vevent("a", "20250301T100000Z", "20250301T110000Z"))
    cursor = provider.pull(calendar_id, None, WINDOW_START, WINDOW_END).cursor
    assert cursor["mode"] == ("sync" if caldav_server.features.sync_collection else "etag")
    assert cursor["ctag"]  # every server of the suite has one: it saves the REPORT when nothing changed
    assert "fake-" not in str(cursor)


def test_incremental_sync_fetches_only_the_change_and_sees_deletes(
    provider: CalDAVProvider, caldav_server: CalDAVServer, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_id: str,
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
    assert [s.method for s in proxy.seen] == changed_pull(caldav_server)
    assert b"e5.ics" in proxy.seen[-1].body and b"e6.ics" not in proxy.seen[-1].body

    proxy.seen.clear()
    result = pull(provider, calendar_id, store)
    assert not result.upserts and not result.deleted and [s.method for s in proxy.seen] == ["PROPFIND"]

    direct.delete(calendar_path + "e7.ics")
    result = pull(provider, calendar_id, store)
    assert result.deleted == {calendar_path + "e7.ics"} and not result.upserts
    assert calendar_path + "e7.ics" not in store.blocks and len(store.blocks) == 29


def unknown_token(real: str) -> str:
    """A token this server never issued, shaped like its own (Cyrus and DAViCal count, Radicale hashes)."""
    return re.sub(r"\d+$", "9999999", real) if real[-1:].isdigit() else real[:-8] + "00000000"


@pytest.mark.parametrize(
    "fault",
    [
        None,  # a token the server does not know: refused (Radicale, Cyrus) or answered in full (DAViCal)
        Fault("REPORT", 412, match="sync-collection", times=1),
        Fault("REPORT", 507, match="sync-collection", times=1),
        Fault("REPORT", 500, match="sync-collection", times=1),
        Fault("REPORT", 207, match="sync-collection", times=1, body=b"<not xml"),
    ],
    ids=["unknown-token", "412", "507", "500", "garbage"],
)
def test_unusable_sync_token_means_relisting_with_same_end_state(
    provider: CalDAVProvider,
    caldav_server: CalDAVServer,
    direct: Direct,
    proxy: FaultProxy,
    calendar_path: str,
    calendar_id: str,
    fault: Fault | None,
) -> None:
    direct.put(calendar_path + "a.ics", vevent("a", "20250301T100000Z", "20250301T110000Z"))
    direct.put(calendar_path + "b.ics", BERLIN_SERIES)
    direct.put(calendar_path + "d.ics", vevent("d", "20250302T100000Z", "20250302T110000Z"))
    store = BlockStore()
    pull(provider, calendar_id, store)
    direct.put(calendar_path + "c.ics", vevent("c", "20250305T100000Z", "20250305T110000Z"))
    direct.delete(calendar_path + "a.ics")
    reference = BlockStore()
    pull(provider, calendar_id, reference)

    assert store.cursor is not None and reference.cursor is not None
    if fault is None and store.cursor["sync_token"]:
        store.cursor = {**store.cursor, "sync_token": unknown_token(store.cursor["sync_token"])}
    elif fault is not None:
        proxy.faults.append(fault)
    proxy.seen.clear()
    result = pull(provider, calendar_id, store)

    if fault is None and caldav_server.features.sync_collection:
        # The server's own answer to a token it never issued: refused, or (DAViCal) a 207 listing
        # everything, which calbook has to see through by itself.
        answered = next(s.status for s in proxy.seen if s.method == "REPORT")
        assert (answered == 207) == (not caldav_server.features.honours_bad_tokens), answered
    # Relisted against the ETags calbook knows: the deletion seen, only the new object fetched.
    assert not result.full
    assert result.deleted == {calendar_path + "a.ics"} and set(result.upserts) == {calendar_path + "c.ics"}
    assert store.busy() == reference.busy() and set(store.blocks) == set(reference.blocks)
    assert store.cursor is not None and store.cursor["mode"] == reference.cursor["mode"]
    assert store.cursor["sync_token"] == reference.cursor["sync_token"]  # a real, fresh token (or none)
    multigets = [s for s in proxy.seen if b"calendar-multiget" in s.body]
    assert len(multigets) == 1 and b"c.ics" in multigets[0].body and b"d.ics" not in multigets[0].body
    # and the next pull is incremental again
    proxy.seen.clear()
    assert not pull(provider, calendar_id, store).full and [s.method for s in proxy.seen] == ["PROPFIND"]


def test_an_unknown_token_answered_with_a_full_listing_is_caught(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    """DAViCal's way with a token it does not know: 207, everything listed, no deletions. Every
    server is made to answer so here (the proxy empties the token of an incremental REPORT)."""
    for name in ("a", "b", "c"):
        direct.put(calendar_path + f"{name}.ics", vevent(name, "20250301T100000Z", "20250301T110000Z"))
    store = BlockStore()
    pull(provider, calendar_id, store)
    direct.delete(calendar_path + "b.ics")

    def forget_the_token(method: str, path: str, body: bytes) -> bytes:
        return re.sub(rb"<d:sync-token>[^<]+</d:sync-token>", b"<d:sync-token></d:sync-token>", body)

    proxy.request_hook = forget_the_token
    result = pull(provider, calendar_id, store)
    proxy.request_hook = None

    assert result.deleted == {calendar_path + "b.ics"} and not result.upserts  # nothing re-downloaded
    assert set(store.blocks) == {calendar_path + "a.ics", calendar_path + "c.ics"}


def test_a_token_echoed_with_no_changes_while_the_ctag_moved_is_caught(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    """SabreDAV's way with a token "from the future" (after a server restore): 207, no changes,
    the same token back. The proxy makes every server answer so to the incremental REPORT."""
    for name in ("a", "b"):
        direct.put(calendar_path + f"{name}.ics", vevent(name, "20250301T100000Z", "20250301T110000Z"))
    store = BlockStore()
    pull(provider, calendar_id, store)
    assert store.cursor is not None
    token = store.cursor["sync_token"] or ""
    direct.delete(calendar_path + "a.ics")
    direct.put(calendar_path + "n.ics", vevent("n", "20250304T100000Z", "20250304T110000Z"))

    incremental = {"now": False}

    def watch(method: str, path: str, body: bytes) -> bytes:
        incremental["now"] = b"sync-collection" in body and b"<d:sync-token></d:sync-token>" not in body
        return body

    def nothing_changed(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if not incremental["now"]:
            return body
        return (b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:sync-token>'
                + token.encode() + b"</d:sync-token></d:multistatus>")

    proxy.request_hook = watch
    proxy.response_hook = nothing_changed
    result = pull(provider, calendar_id, store)

    assert result.deleted == {calendar_path + "a.ics"} and set(result.upserts) == {calendar_path + "n.ics"}
    assert set(store.blocks) == {calendar_path + "b.ics", calendar_path + "n.ics"}


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
    assert not pull(provider, calendar_id, store).upserts  # incremental continues from a fresh token


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
    assert [s.method for s in proxy.seen] == ["PROPFIND", "REPORT"]  # ctag unchanged, one multiget


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


# ------------------------------------------------------------- names and errors

#: Resource names that need percent-encoding: a space, non-ASCII, "%", and Outlook's {GUID}.ics.
AWKWARD_NAMES = ["my event.ics", "réunion-été.ics", "100%.ics", "{6F9619FF-8B86-D011-B42D-00C04FC964FF}.ics"]


def test_names_that_need_percent_encoding_sync_like_any_other(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    """Sent back exactly as the server spelt them (Cyrus refuses any other spelling with a 403 per
    href), compared in one normal form (SabreDAV spells ``%7b``, the others ``%7B``)."""
    for n, name in enumerate(AWKWARD_NAMES):
        direct.put(calendar_path + quote(name), vevent(f"awk{n}", f"2025030{n + 1}T100000Z", f"2025030{n + 1}T110000Z"))
    keys = {calendar_path + name for name in AWKWARD_NAMES}
    store = BlockStore()
    first = pull(provider, calendar_id, store)
    assert set(first.upserts) == keys and not first.kept and not first.warnings
    assert len(store.busy()) == 4

    spelt = {h for h in direct.members(calendar_path)}
    multiget = next(s for s in proxy.seen if b"calendar-multiget" in s.body)
    sent = {h.decode() for h in re.findall(rb"<d:href>([^<]+)</d:href>", multiget.body)}
    assert sent == {h.replace("&", "&amp;") for h in spelt}  # the server's own spelling, byte for byte

    direct.put(calendar_path + quote(AWKWARD_NAMES[3]), vevent("awk3", "20250320T100000Z", "20250320T120000Z"))
    direct.delete(calendar_path + quote(AWKWARD_NAMES[0]))
    changed = pull(provider, calendar_id, store)
    assert set(changed.upserts) == {calendar_path + AWKWARD_NAMES[3]}
    assert changed.deleted == {calendar_path + AWKWARD_NAMES[0]} and not changed.kept
    assert (utc(2025, 3, 20, 10), utc(2025, 3, 20, 12)) in store.busy() and len(store.busy()) == 3

    # The daily reconcile agrees: nothing it would add or remove.
    again = provider.reconcile(calendar_id, store.cursor, WINDOW_START, WINDOW_END)
    assert not again.upserts and not again.deleted


def test_a_per_href_error_in_a_multiget_is_never_a_deletion(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    """One object answered with its own 403 (as Cyrus does for an href it cannot match) keeps its
    blocks, is not forgotten, and is fetched again by the next pull and by the reconcile."""
    direct.put(calendar_path + "ok.ics", vevent("ok", "20250301T100000Z", "20250301T110000Z"))
    direct.put(calendar_path + "odd.ics", vevent("odd", "20250302T100000Z", "20250302T110000Z"))
    store = BlockStore()
    pull(provider, calendar_id, store)
    assert len(store.busy()) == 2

    direct.put(calendar_path + "odd.ics", vevent("odd", "20250303T100000Z", "20250303T110000Z"))
    refused = re.compile(rb"<(\w+:)?response[ >](?:(?!</(\w+:)?response>).)*odd\.ics.*?</(\w+:)?response>", re.S)

    def refuse_odd(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if b"calendar-data" not in body and b"getetag" not in body:
            return body
        forbidden = (b'<response xmlns="DAV:"><href>' + calendar_path.encode() + b"odd.ics</href>"
                     b"<status>HTTP/1.1 403 Forbidden</status></response>")
        return refused.sub(forbidden, body) if b"BEGIN:VCALENDAR" in body else body

    proxy.response_hook = refuse_odd
    result = pull(provider, calendar_id, store)
    assert calendar_path + "odd.ics" not in result.deleted and calendar_path + "odd.ics" in result.kept
    assert store.busy() == [(utc(2025, 3, 1, 10), utc(2025, 3, 1, 11)), (utc(2025, 3, 2, 10), utc(2025, 3, 2, 11))]
    assert result.warnings and "odd.ics" in result.warnings[0]

    # Still refused by the reconcile: still not a deletion.
    kept = provider.reconcile(calendar_id, store.cursor, WINDOW_START, WINDOW_END)
    store.apply(kept)
    assert calendar_path + "odd.ics" not in kept.deleted and len(store.busy()) == 2

    proxy.response_hook = None
    fixed = pull(provider, calendar_id, store)  # nothing new on the server: the retry alone fetches it
    assert set(fixed.upserts) == {calendar_path + "odd.ics"} and not fixed.kept
    assert store.busy() == [(utc(2025, 3, 1, 10), utc(2025, 3, 1, 11)), (utc(2025, 3, 3, 10), utc(2025, 3, 3, 11))]


def test_an_unreadable_object_in_a_first_pull_is_kept_not_wiped(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    """A full result still names what it could not read (``kept``): the store keeps those blocks."""
    direct.put(calendar_path + "ok.ics", vevent("ok", "20250301T100000Z", "20250301T110000Z"))
    direct.put(calendar_path + "odd.ics", vevent("odd", "20250302T100000Z", "20250302T110000Z"))

    def drop_odd(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if b"BEGIN:VCALENDAR" not in body:
            return body
        return re.sub(rb"<(\w+:)?response[ >](?:(?!</(\w+:)?response>).)*odd\.ics.*?</(\w+:)?response>", b"", body,
                      flags=re.S)

    proxy.response_hook = drop_odd  # DAViCal's way: an href it cannot serve is left out of the answer
    result = provider.pull(calendar_id, None, WINDOW_START, WINDOW_END)
    assert result.full and set(result.upserts) == {calendar_path + "ok.ics"}
    assert result.kept == {calendar_path + "odd.ics"} and not result.deleted
