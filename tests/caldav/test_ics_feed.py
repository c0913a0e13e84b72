"""The ICS feed provider against a tiny local HTTP server: conditional GET, limits, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.base import AuthError, BookingEvent, PermanentError, TransientError
from connectors.ics import ICSFeedProvider
from connectors.url_policy import UnsafeURL, check_public_url
from tests.support.caldav import WINDOW_END, WINDOW_START, vevent
from tests.support.feed_server import FeedState, feed


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


ONE = vevent("one", "20250301T100000Z", "20250301T110000Z")
TWO = vevent("two", "20250302T100000Z", "20250302T110000Z", "RRULE:FREQ=DAILY;COUNT=2")


def test_first_pull_is_full_then_304_is_an_empty_non_full_result(feed_server: tuple[str, FeedState]) -> None:
    url, state = feed_server
    state.body = feed(ONE, TWO)
    with ICSFeedProvider(url, "Europe/Berlin") as provider:
        first = provider.pull(url, None, WINDOW_START, WINDOW_END)
        assert first.full and sorted(first.upserts) == ["one", "two"]
        assert len(first.upserts["two"]) == 2
        assert first.cursor["etag"] == '"v1"'

        second = provider.pull(url, first.cursor, WINDOW_START, WINDOW_END)
        assert not second.full and not second.upserts and not second.deleted
        assert state.requests[-1]["If-None-Match"] == '"v1"'
        assert state.requests[-1]["If-Modified-Since"] == state.last_modified

        state.body, state.etag = feed(TWO), '"v2"'
        third = provider.pull(url, second.cursor, WINDOW_START, WINDOW_END)
        assert third.full and sorted(third.upserts) == ["two"]  # "one" disappears with the full result


def test_last_modified_alone_is_enough_and_unchanged_body_is_no_change(
    feed_server: tuple[str, FeedState],
) -> None:
    url, state = feed_server
    state.body, state.etag = feed(ONE), None
    with ICSFeedProvider(url, "UTC") as provider:
        first = provider.pull(url, None, WINDOW_START, WINDOW_END)
        assert not provider.pull(url, first.cursor, WINDOW_START, WINDOW_END).full
        state.last_modified = None  # a server with no validators at all: the body hash decides
        assert not provider.pull(url, first.cursor, WINDOW_START, WINDOW_END).upserts


def test_horizon_slide_refetches_unconditionally(feed_server: tuple[str, FeedState]) -> None:
    url, state = feed_server
    state.body = feed(vevent("d", "20250101T080000Z", "20250101T090000Z", "RRULE:FREQ=DAILY"))
    with ICSFeedProvider(url, "UTC") as provider:
        first = provider.pull(url, None, utc(2025, 1, 1), utc(2025, 1, 11))
        later = provider.pull(url, first.cursor, utc(2025, 1, 5), utc(2025, 1, 15))
    assert "If-None-Match" not in state.requests[-1]
    assert later.full and [i.start.day for i in later.upserts["d"]] == list(range(5, 15))


def test_malformed_event_is_a_warning_the_rest_imports(feed_server: tuple[str, FeedState]) -> None:
    url, state = feed_server
    bad = vevent("bad", "20250303T100000Z", "20250303T110000Z", "RRULE:FREQ=NONSENSE")
    state.body = feed(ONE, bad, TWO)
    with ICSFeedProvider(url, "UTC") as provider:
        result = provider.pull(url, None, WINDOW_START, WINDOW_END)
    assert sorted(result.upserts) == ["one", "two"]
    assert len(result.warnings) == 1 and "#bad" in result.warnings[0]


def test_not_a_calendar_is_permanent(feed_server: tuple[str, FeedState]) -> None:
    url, state = feed_server
    state.body = b"<html>login</html>"
    with ICSFeedProvider(url, "UTC") as provider, pytest.raises(PermanentError):
        provider.pull(url, None, WINDOW_START, WINDOW_END)


def test_size_limit(feed_server: tuple[str, FeedState]) -> None:
    url, state = feed_server
    state.body = feed(*[vevent(f"e{n}", "20250301T100000Z", "20250301T110000Z") for n in range(200)])
    with (
        ICSFeedProvider(url, "UTC", max_bytes=4096) as provider,
        pytest.raises(PermanentError, match="larger"),
    ):
        provider.pull(url, None, WINDOW_START, WINDOW_END)


def test_timeout_is_transient(feed_server: tuple[str, FeedState]) -> None:
    url, state = feed_server
    state.body, state.delay = feed(ONE), 1.5
    with ICSFeedProvider(url, "UTC", timeout=0.2) as provider, pytest.raises(TransientError):
        provider.pull(url, None, WINDOW_START, WINDOW_END)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, PermanentError),
        (410, PermanentError),
        (429, TransientError),
        (500, TransientError),
        (503, TransientError),
    ],
)
def test_http_errors_are_classified(feed_server: tuple[str, FeedState], status: int, expected: type) -> None:
    url, state = feed_server
    state.status = status
    with ICSFeedProvider(url, "UTC") as provider, pytest.raises(expected):
        provider.pull(url, None, WINDOW_START, WINDOW_END)


def test_webcal_is_https_and_other_schemes_are_refused() -> None:
    assert ICSFeedProvider("webcal://example.org/a.ics", "UTC").url == "https://example.org/a.ics"
    with pytest.raises(PermanentError):
        ICSFeedProvider("file:///etc/passwd", "UTC")


def test_feed_is_read_only() -> None:
    provider = ICSFeedProvider("https://example.org/a.ics", "UTC")
    booking = BookingEvent("b1", utc(2025, 3, 1, 10), utc(2025, 3, 1, 11), "x", "", 0)
    with pytest.raises(PermanentError):
        provider.put_event(provider.url, booking, None)
    with pytest.raises(PermanentError):
        provider.delete_event(provider.url, "b1", None)
    assert provider.list_calendars()[0].writable is False


def test_every_redirect_passes_the_url_guard(feed_server: tuple[str, FeedState]) -> None:
    """A public feed must not be able to bounce the fetch to a private address (SSRF)."""
    url, state = feed_server
    state.body = feed(ONE)
    # Loopback stands in for any private target: should the guard ever be bypassed, the request
    # still stays on this machine.
    state.redirect = url.replace("127.0.0.1", "localhost").replace("team.ics", "internal.ics")
    seen: list[str] = []

    def guard(target: str) -> None:
        seen.append(target)
        if target != url:  # the first URL stands for a public feed; the policy judges the rest
            check_public_url(target, allow_private=False)

    with ICSFeedProvider(url, "UTC", url_guard=guard) as provider, pytest.raises(UnsafeURL):
        provider.pull(url, None, utc(2025, 3, 1), utc(2025, 4, 1))
    assert seen == [url, state.redirect]  # refused before any request to the private address
    assert len(state.requests) == 1

    # A redirect the policy allows is followed as before.
    state.redirect = url.replace("team.ics", "moved.ics")
    with ICSFeedProvider(url, "UTC", url_guard=lambda t: check_public_url(t, allow_private=True)) as provider:
        result = provider.pull(url, None, utc(2025, 3, 1), utc(2025, 4, 1))
    assert result.full and result.upserts


def test_a_feed_of_several_vcalendars_is_read_whole_with_the_rfc_5545_corrections(
    feed_server: tuple[str, FeedState],
) -> None:
    """RFC 5545 3.4 (several objects), 3.3.6 (exact DURATION), X-WR-TIMEZONE for floating
    times only, an override ending before it starts (docs/sync.md#expansion); the expected
    instants are computed with zoneinfo, not by the code under test."""
    berlin = ZoneInfo("Europe/Berlin")
    team = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//team//EN\r\nX-WR-TIMEZONE:Europe/Berlin\r\n"
        "BEGIN:VEVENT\r\nUID:night\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20261024T220000\r\n"
        "DURATION:PT24H\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:monthly\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20261001T100000Z\r\n"
        "DTEND:20261001T110000Z\r\nRRULE:FREQ=MONTHLY;COUNT=2\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    personal = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//personal//EN\r\n"
        "BEGIN:VEVENT\r\nUID:daily\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20261101T100000Z\r\n"
        "DTEND:20261101T110000Z\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:daily\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:20261102T100000Z\r\n"
        "DTSTART:20261104T100000Z\r\nDTEND:20261102T110000Z\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    url, state = feed_server
    state.body = (team + personal).encode()
    with ICSFeedProvider(url, "America/New_York") as provider:
        result = provider.pull(url, None, utc(2026, 9, 1), utc(2027, 1, 1))
    assert sorted(result.upserts) == ["daily", "monthly", "night"]
    night = datetime(2026, 10, 24, 22, tzinfo=berlin).astimezone(UTC)
    assert [(i.start, i.end) for i in result.upserts["night"]] == [(night, night + timedelta(hours=24))]
    assert [(i.start, i.end) for i in result.upserts["monthly"]] == [
        (utc(2026, 10, 1, 10), utc(2026, 10, 1, 11)),
        (utc(2026, 11, 1, 10), utc(2026, 11, 1, 11)),  # UTC series: not moved by X-WR-TIMEZONE
    ]
    assert [(i.start, i.end) for i in result.upserts["daily"]] == [
        (utc(2026, 11, 1, 10), utc(2026, 11, 1, 11)),
        (utc(2026, 11, 3, 10), utc(2026, 11, 3, 11)),
        (utc(2026, 11, 4, 10), utc(2026, 11, 4, 11)),  # the moved override: one hour, not 47
    ]
    assert len(result.warnings) == 1 and "#daily" in result.warnings[0]
