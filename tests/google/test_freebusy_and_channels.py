"""freebusy.query chunking and error handling; watch channels open and stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import BusyInterval
from connectors.google.provider import GoogleCalendarProvider
from connectors.google.webhook import hash_channel_token
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google import CALENDAR

START = datetime(2030, 1, 1, tzinfo=UTC)


def test_freebusy_splits_calendars_and_range_and_counts_errors_as_busy(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    end = START + timedelta(days=100)
    meeting = (START + timedelta(days=95, hours=9), START + timedelta(days=95, hours=10))
    fake.add_event(
        CALENDAR,
        {"start": {"dateTime": meeting[0].isoformat()}, "end": {"dateTime": meeting[1].isoformat()}},
    )
    fake.add_calendar("blocked@example.com")
    fake.freebusy_errors.add("blocked@example.com")
    unknown = [f"cal{n}@example.com" for n in range(110)]
    calendar_ids = [CALENDAR, "blocked@example.com", *unknown]

    busy = provider.freebusy(calendar_ids, START, end)

    queries = fake.calls("POST", "/freeBusy")
    assert len(queries) == 6  # 112 calendars in 3 groups, 100 days in 2 ranges
    assert all(len(q.body["items"]) <= 50 for q in queries)
    assert {q.body["timeMin"] for q in queries} == {"2030-01-01T00:00:00Z", "2030-04-01T00:00:00Z"}
    assert busy[CALENDAR] == [BusyInterval(*meeting)]
    assert busy["blocked@example.com"] == [BusyInterval(START, end)]
    assert busy["cal7@example.com"] == [BusyInterval(START, end)]


def test_freebusy_of_a_free_calendar_is_empty(provider: GoogleCalendarProvider, fake: FakeGoogleCalendar) -> None:
    assert provider.freebusy([CALENDAR], START, START + timedelta(days=7)) == {CALENDAR: []}


def test_watch_opens_a_channel_with_a_random_token_and_stop_closes_it(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    channel = provider.watch(CALENDAR, "https://calbook.example/v1/webhooks/google", timedelta(days=7))

    stored = fake.channels[channel.id]
    assert stored["token"] == channel.token and len(channel.token) >= 32
    assert stored["address"] == "https://calbook.example/v1/webhooks/google"
    assert stored["calendarId"] == CALENDAR
    assert channel.resource_id == stored["resourceId"]
    assert channel.expiration is not None
    assert timedelta(days=6) < channel.expiration - datetime.now(UTC) <= timedelta(days=7)
    assert fake.calls("POST", "/watch")[0].body["params"] == {"ttl": str(7 * 24 * 3600)}
    other = provider.watch(CALENDAR, "https://calbook.example/v1/webhooks/google", timedelta(days=7))
    assert other.id != channel.id and other.token != channel.token
    assert hash_channel_token(channel.token) != hash_channel_token(other.token)

    provider.stop_channel(channel.id, channel.resource_id)
    assert channel.id not in fake.channels
    provider.stop_channel(channel.id, channel.resource_id)  # already stopped: 404 is fine
    assert other.id in fake.channels
