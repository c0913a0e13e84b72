"""Push: idempotent writes of booking events, etag conflicts, deletes, and transient retries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import BookingEvent, EventRef, PermanentError, TransientError
from connectors.google.provider import GoogleCalendarProvider
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google import CALENDAR

BOOKING_ID = str(uuid.UUID("6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"))
EVENT_ID = "cb" + uuid.UUID(BOOKING_ID).hex
START = datetime(2030, 3, 4, 10, tzinfo=UTC)


def booking(start: datetime = START, summary: str = "Consultation") -> BookingEvent:
    return BookingEvent(
        booking_id=BOOKING_ID,
        start=start,
        end=start + timedelta(hours=1),
        summary=summary,
        description="Booked with calbook",
        sequence=0,
    )


def test_put_event_writes_deterministic_id_and_marker(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    ref = provider.put_event(CALENDAR, booking(), None)

    stored = fake.event(CALENDAR, EVENT_ID)
    assert ref == EventRef(calendar_id=CALENDAR, ref=EVENT_ID, etag=stored["etag"])
    assert stored["extendedProperties"]["private"]["calbookBookingId"] == BOOKING_ID
    assert stored["start"]["dateTime"] == "2030-03-04T10:00:00Z"
    assert stored["end"]["dateTime"] == "2030-03-04T11:00:00Z"
    assert stored["status"] == "confirmed"


def test_duplicate_put_event_leaves_one_event_with_the_wanted_times(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    provider.put_event(CALENDAR, booking(), None)
    moved = START + timedelta(hours=3)

    ref = provider.put_event(CALENDAR, booking(moved), None)  # a retried outbox entry, no stored ref

    assert [e for e in fake.calendars[CALENDAR].events] == [EVENT_ID]
    assert fake.event(CALENDAR, EVENT_ID)["start"]["dateTime"] == "2030-03-04T13:00:00Z"
    assert ref.etag == fake.event(CALENDAR, EVENT_ID)["etag"]
    methods = [c.method for c in fake.calls()]
    assert methods == ["POST", "POST", "GET", "PATCH"]


def test_put_event_revives_an_event_the_expert_deleted(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    provider.put_event(CALENDAR, booking(), None)
    fake.delete_event_externally(CALENDAR, EVENT_ID)

    provider.put_event(CALENDAR, booking(START + timedelta(days=1)), None)

    stored = fake.event(CALENDAR, EVENT_ID)
    assert stored["status"] == "confirmed"
    assert stored["start"]["dateTime"] == "2030-03-05T10:00:00Z"


def test_patch_with_stale_etag_rereads_and_reapplies(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    first = provider.put_event(CALENDAR, booking(), None)
    touched = fake.update_event(CALENDAR, EVENT_ID, {"colorId": "5"})  # the expert edited it: new etag

    ref = provider.put_event(CALENDAR, booking(START + timedelta(hours=2), "Moved"), first)

    stored = fake.event(CALENDAR, EVENT_ID)
    assert stored["start"]["dateTime"] == "2030-03-04T12:00:00Z"
    assert stored["summary"] == "Moved"
    assert stored["colorId"] == "5"
    assert ref.etag == stored["etag"]
    assert [c.method for c in fake.calls()] == ["POST", "PATCH", "GET", "PATCH"]
    assert [p.headers["if-match"] for p in fake.calls("PATCH")] == [first.etag, touched["etag"]]


def test_patch_with_current_etag_is_one_call(provider: GoogleCalendarProvider, fake: FakeGoogleCalendar) -> None:
    first = provider.put_event(CALENDAR, booking(), None)
    provider.put_event(CALENDAR, booking(START + timedelta(hours=1)), first)
    assert [c.method for c in fake.calls()] == ["POST", "PATCH"]
    assert fake.calls("PATCH")[0].headers["if-match"] == first.etag


def test_delete_event_is_done_when_missing_or_already_deleted(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar
) -> None:
    provider.delete_event(CALENDAR, BOOKING_ID, None)  # never written: 404
    ref = provider.put_event(CALENDAR, booking(), None)
    provider.delete_event(CALENDAR, BOOKING_ID, ref)
    assert fake.event(CALENDAR, EVENT_ID)["status"] == "cancelled"
    provider.delete_event(CALENDAR, BOOKING_ID, ref)  # already deleted: 410
    assert [c.method for c in fake.calls("DELETE")] == ["DELETE"] * 3


def test_rate_limit_is_retried_with_backoff(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar, sleeps: list[float]
) -> None:
    fake.fail_next(2, 403, "rateLimitExceeded")
    fake.fail_next(1, 429, "rateLimitExceeded", retry_after="3")

    ref = provider.put_event(CALENDAR, booking(), None)

    assert ref.ref == EVENT_ID
    assert len(fake.calls("POST")) == 4
    assert sleeps[:2] == [0.5, 1.0]  # base * 2**n with jitter fixed at 1.0
    assert sleeps[2] == 3.0  # Retry-After is honoured


def test_persistent_server_errors_surface_as_transient(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar, sleeps: list[float]
) -> None:
    fake.fail_next(10, 500, "backendError")
    with pytest.raises(TransientError):
        provider.list_calendars()
    assert len(fake.calls()) == 4  # bounded attempts
    assert len(sleeps) == 3


def test_long_retry_after_is_not_slept_inside_the_call(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar, sleeps: list[float]
) -> None:
    fake.fail_next(1, 429, "rateLimitExceeded", retry_after="600")
    with pytest.raises(TransientError) as caught:
        provider.list_calendars()
    assert caught.value.retry_after == 600
    assert sleeps == []


def test_forbidden_is_permanent_and_not_retried(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar, sleeps: list[float]
) -> None:
    fake.fail_next(1, 403, "forbidden")
    with pytest.raises(PermanentError):
        provider.put_event(CALENDAR, booking(), None)
    assert len(fake.calls()) == 1 and sleeps == []


def test_changed_destination_moves_the_event(provider: GoogleCalendarProvider, fake: FakeGoogleCalendar) -> None:
    fake.add_calendar("new@example.com")
    old = provider.put_event(CALENDAR, booking(), None)

    new = provider.put_event("new@example.com", booking(), old)

    assert new.calendar_id == "new@example.com" and new.ref == EVENT_ID
    assert fake.event(CALENDAR, EVENT_ID)["status"] == "cancelled"
    assert fake.event("new@example.com", EVENT_ID)["status"] == "confirmed"
