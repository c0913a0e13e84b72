"""Pull: full then incremental sync against the fake Calendar API, through the real client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import BusyInterval, PullResult
from connectors.google.provider import GoogleCalendarProvider
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google import CALENDAR

WINDOW_START = datetime(2030, 1, 1, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=180)


def at(day: int, hour: int, month: int = 1) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=UTC)


def timed(start: datetime, end: datetime, **extra: object) -> dict[str, object]:
    return {
        "summary": "meeting",
        "start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
        "end": {"dateTime": end.isoformat().replace("+00:00", "Z")},
        **extra,
    }


def pull(provider: GoogleCalendarProvider, cursor: dict | None, calendar: str = CALENDAR) -> PullResult:
    return provider.pull(calendar, cursor, WINDOW_START, WINDOW_END, "UTC")


def test_full_sync_keeps_only_busy_events_then_incremental_reports_changes(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    busy = fake.add_event(CALENDAR, timed(at(7, 9), at(7, 10)))
    free = fake.add_event(CALENDAR, timed(at(7, 11), at(7, 12), transparency="transparent"))
    fake.add_event(
        CALENDAR,
        timed(at(8, 9), at(8, 10), attendees=[{"email": "me@example.com", "self": True, "responseStatus": "declined"}]),
    )
    fake.add_event(CALENDAR, timed(at(9, 9), at(9, 10), extendedProperties={"private": {"calbookBookingId": "b-1"}}))
    gone = fake.add_event(CALENDAR, timed(at(10, 9), at(10, 10)))
    fake.delete_event_externally(CALENDAR, gone["id"])
    accepted = fake.add_event(
        CALENDAR,
        timed(
            at(11, 9), at(11, 10), attendees=[{"email": "me@example.com", "self": True, "responseStatus": "accepted"}]
        ),
    )

    first = pull(provider, None)

    assert first.full is True
    assert first.upserts == {
        busy["id"]: [BusyInterval(at(7, 9), at(7, 10))],
        accepted["id"]: [BusyInterval(at(11, 9), at(11, 10))],
    }
    assert first.cursor["sync_token"]
    full_call = fake.calls("GET", "/events")[-1]
    assert full_call.query["singleEvents"] == ["true"]
    assert full_call.query["timeMin"] == ["2030-01-01T00:00:00Z"]

    added = fake.add_event(CALENDAR, timed(at(14, 15), at(14, 16)))
    fake.update_event(CALENDAR, busy["id"], timed(at(7, 13), at(7, 14)))
    fake.delete_event_externally(CALENDAR, accepted["id"])
    fake.update_event(CALENDAR, free["id"], {"transparency": "opaque"})

    second = pull(provider, first.cursor)

    assert second.full is False
    assert second.upserts == {
        added["id"]: [BusyInterval(at(14, 15), at(14, 16))],
        busy["id"]: [BusyInterval(at(7, 13), at(7, 14))],
        free["id"]: [BusyInterval(at(7, 11), at(7, 12))],
    }
    assert second.deleted == {accepted["id"]}
    incremental_call = fake.calls("GET", "/events")[-1]
    assert incremental_call.query["syncToken"] == [first.cursor["sync_token"]]
    assert "timeMin" not in incremental_call.query and "timeMax" not in incremental_call.query

    # An event that stops blocking (declined now) is reported with no intervals, replacing its block.
    fake.update_event(
        CALENDAR, added["id"], {"attendees": [{"email": "me@example.com", "self": True, "responseStatus": "declined"}]}
    )
    third = pull(provider, second.cursor)
    assert third.upserts == {added["id"]: []}
    assert third.deleted == set()


def test_all_pages_are_read_and_the_sync_token_comes_from_the_last_page(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    fake.page_size = 2
    created = [fake.add_event(CALENDAR, timed(at(d, 9), at(d, 10))) for d in range(2, 9)]

    first = pull(provider, None)

    assert set(first.upserts) == {event["id"] for event in created}
    assert len(fake.calls("GET", "/events")) == 4  # 7 events, 2 per page
    later = [fake.add_event(CALENDAR, timed(at(d, 12), at(d, 13))) for d in range(2, 7)]
    second = pull(provider, first.cursor)
    assert second.full is False
    assert set(second.upserts) == {event["id"] for event in later}
    assert len(fake.calls("GET", "/events")) == 7


def test_invalidated_sync_token_falls_back_to_a_full_sync(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    kept = fake.add_event(CALENDAR, timed(at(3, 9), at(3, 10)))
    first = pull(provider, None)
    fake.invalidate_sync_tokens(CALENDAR)
    added = fake.add_event(CALENDAR, timed(at(4, 9), at(4, 10)))

    recovered = pull(provider, first.cursor)

    assert recovered.full is True
    assert set(recovered.upserts) == {kept["id"], added["id"]}
    assert recovered.cursor["sync_token"] != first.cursor["sync_token"]
    statuses = [c.query.get("syncToken") is not None for c in fake.calls("GET", "/events")]
    assert statuses == [False, True, False]
    after = pull(provider, recovered.cursor)
    assert after.full is False and after.upserts == {}


def test_window_beyond_what_the_last_full_sync_covered_forces_a_full_sync(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    first = pull(provider, None)
    far = fake.add_event(CALENDAR, timed(WINDOW_END + timedelta(days=20), WINDOW_END + timedelta(days=20, hours=1)))
    later = provider.pull(CALENDAR, first.cursor, WINDOW_START, WINDOW_END + timedelta(days=30), "UTC")
    assert later.full is True
    assert far["id"] in later.upserts


def test_recurring_series_with_one_cancelled_instance(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    series = fake.add_event(
        CALENDAR,
        timed(at(7, 9), at(7, 10), recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"]),
    )
    first = pull(provider, None)
    weeks = [at(7, 9) + timedelta(weeks=n) for n in range(4)]
    expected_ids = [f"{series['id']}_{w:%Y%m%dT%H%M%SZ}" for w in weeks]
    assert first.upserts == {
        i: [BusyInterval(w, w + timedelta(hours=1))] for i, w in zip(expected_ids, weeks, strict=True)
    }

    cancelled = fake.cancel_instance(CALENDAR, series["id"], weeks[1])
    second = pull(provider, first.cursor)

    assert cancelled == expected_ids[1]
    assert second.full is False
    assert second.deleted == {expected_ids[1]}
    assert second.upserts == {}
    fresh = pull(provider, None)
    assert set(fresh.upserts) == set(expected_ids) - {expected_ids[1]}


def test_all_day_event_blocks_the_local_day_of_the_calendar_timezone(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    fake.add_calendar("berlin@example.com", "Berlin", "Europe/Berlin")
    one_day = fake.add_event("berlin@example.com", {"start": {"date": "2030-07-10"}, "end": {"date": "2030-07-11"}})
    two_days = fake.add_event("berlin@example.com", {"start": {"date": "2030-01-10"}, "end": {"date": "2030-01-12"}})

    result = pull(provider, None, "berlin@example.com")

    assert result.upserts[one_day["id"]] == [
        BusyInterval(datetime(2030, 7, 9, 22, tzinfo=UTC), datetime(2030, 7, 10, 22, tzinfo=UTC))
    ]
    assert result.upserts[two_days["id"]] == [
        BusyInterval(datetime(2030, 1, 9, 23, tzinfo=UTC), datetime(2030, 1, 11, 23, tzinfo=UTC))
    ]
    assert result.cursor["time_zone"] == "Europe/Berlin"


def test_list_calendars_reports_access_and_timezone(provider: GoogleCalendarProvider, fake: FakeGoogleCalendar) -> None:
    fake.add_calendar("holidays@example.com", "Holidays", "Europe/Paris", access_role="reader")
    fake.page_size = 1
    calendars = {c.id: c for c in provider.list_calendars()}
    assert calendars[CALENDAR].writable is True and calendars[CALENDAR].name == "Work"
    assert calendars["holidays@example.com"].writable is False
    assert calendars["holidays@example.com"].timezone == "Europe/Paris"
