"""Writing booking events to a real Radicale: idempotent create, update, delete, preconditions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import icalendar
import pytest

from connectors.base import BookingEvent, EventRef, PermanentError
from connectors.caldav import CalDAVProvider
from tests.caldav.conftest import WINDOW_END, WINDOW_START, Direct, vevent
from tests.caldav.servers import FaultProxy

BOOKING = BookingEvent(
    booking_id="7f1c2d3e-0000-4000-8000-00000000abcd",
    start=datetime(2025, 3, 10, 9, 0, tzinfo=UTC),
    end=datetime(2025, 3, 10, 10, 0, tzinfo=UTC),
    summary="Consultation with Bob",
    description="Topic: taxes; notes, with commas",
    sequence=0,
    location="https://meet.example.org/x",
)


def stored_events(direct: Direct, calendar_path: str) -> list[icalendar.cal.Component]:
    """The VEVENTs stored under the booking's resource name."""
    code, body = direct.get(calendar_path + BOOKING.booking_id + ".ics")
    return icalendar.Calendar.from_ical(body).walk("VEVENT") if code == 200 else []


def resource_count(direct: Direct, calendar_path: str) -> int:
    _, _, body = direct.request("PROPFIND", calendar_path, "", {"Depth": "1"})
    return body.count(b"<D:response>") + body.count(b"<d:response>") + body.count(b"<response>") - 1


def test_create_writes_a_plain_utc_event_with_the_booking_uid(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    ref = provider.put_event(calendar_id, BOOKING, None)

    assert ref.ref == calendar_path + BOOKING.booking_id + ".ics" and ref.etag
    (event,) = stored_events(direct, calendar_path)
    assert str(event["UID"]) == BOOKING.booking_id + "@calbook"
    assert event["DTSTART"].dt == BOOKING.start and event["DTSTART"].dt.tzinfo is not None
    assert event["DTSTART"].to_ical() == b"20250310T090000Z"
    assert int(event["SEQUENCE"]) == 0  # not bumped by the library on create
    assert "ORGANIZER" not in event and "ATTENDEE" not in event
    assert str(event["X-CALBOOK-BOOKING-ID"]) == BOOKING.booking_id
    assert str(event["DESCRIPTION"]) == BOOKING.description


def test_put_twice_retry_or_duplicate_gives_one_event(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    first = provider.put_event(calendar_id, BOOKING, None)
    second = provider.put_event(calendar_id, BOOKING, None)  # the worker died before saving `first`

    assert second.ref == first.ref and second.etag == first.etag
    assert resource_count(direct, calendar_path) == 1
    # the duplicate was answered 412 and only read back, not written again
    assert [s.status for s in proxy.seen if s.method == "PUT"] == [201, 412]
    assert all(s.headers.get("If-None-Match") == "*" for s in proxy.seen if s.method == "PUT")


def test_create_over_an_older_version_updates_it(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    provider.put_event(calendar_id, BOOKING, None)
    moved = replace(
        BOOKING,
        start=datetime(2025, 3, 11, 9, tzinfo=UTC),
        end=datetime(2025, 3, 11, 10, tzinfo=UTC),
        sequence=1,
    )
    provider.put_event(calendar_id, moved, None)  # the stored ref was lost
    (event,) = stored_events(direct, calendar_path)
    assert event["DTSTART"].dt == moved.start and int(event["SEQUENCE"]) == 1


def test_update_moves_the_same_uid_with_higher_sequence_using_if_match(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    ref = provider.put_event(calendar_id, BOOKING, None)
    moved = replace(
        BOOKING,
        start=datetime(2025, 3, 12, 14, tzinfo=UTC),
        end=datetime(2025, 3, 12, 15, tzinfo=UTC),
        sequence=1,
    )
    proxy.seen.clear()
    new_ref = provider.put_event(calendar_id, moved, ref)

    assert new_ref.ref == ref.ref and new_ref.etag and new_ref.etag != ref.etag
    (event,) = stored_events(direct, calendar_path)
    assert str(event["UID"]) == BOOKING.booking_id + "@calbook"
    assert event["DTSTART"].dt == moved.start and int(event["SEQUENCE"]) == 1
    assert resource_count(direct, calendar_path) == 1
    (put,) = [s for s in proxy.seen if s.method == "PUT"]
    assert put.status in (200, 201, 204)
    assert put.headers.get("If-Match") == ref.etag and "If-None-Match" not in put.headers


def test_update_with_a_stale_etag_rereads_and_reapplies(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    ref = provider.put_event(calendar_id, BOOKING, None)
    # the expert edits the event in their own client: our ETag is now stale
    status, body = direct.get(calendar_path + BOOKING.booking_id + ".ics")
    direct.put(calendar_path + BOOKING.booking_id + ".ics", body.replace("Consultation with Bob", "Edited"))

    moved = replace(
        BOOKING,
        sequence=2,
        start=datetime(2025, 3, 13, 9, tzinfo=UTC),
        end=datetime(2025, 3, 13, 10, tzinfo=UTC),
    )
    new_ref = provider.put_event(calendar_id, moved, ref)
    (event,) = stored_events(direct, calendar_path)
    assert event["DTSTART"].dt == moved.start and str(event["SUMMARY"]) == BOOKING.summary
    assert new_ref.etag and new_ref.etag != ref.etag


def test_update_of_an_event_deleted_on_the_server_recreates_it(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    ref = provider.put_event(calendar_id, BOOKING, None)
    direct.delete(calendar_path + BOOKING.booking_id + ".ics")
    provider.put_event(calendar_id, replace(BOOKING, sequence=1), ref)
    (event,) = stored_events(direct, calendar_path)
    assert int(event["SEQUENCE"]) == 1


def test_missing_etag_on_put_is_fetched_schedule_tag_servers(
    provider: CalDAVProvider, proxy: FaultProxy, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    def like_a_scheduling_server(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if method == "PUT":
            headers.pop("ETag", None)
            headers["Schedule-Tag"] = '"st-1"'
        return body

    proxy.response_hook = like_a_scheduling_server
    ref = provider.put_event(calendar_id, BOOKING, None)
    proxy.response_hook = None
    status, headers, _ = direct.request("GET", calendar_path + BOOKING.booking_id + ".ics")
    assert ref.etag == headers["ETag"]
    # and the next update can use it as its precondition
    provider.put_event(calendar_id, replace(BOOKING, sequence=1), ref)
    assert [s.status for s in proxy.seen if s.method == "PUT"][-1] in (200, 201, 204)


def test_delete_removes_and_deleting_again_is_fine(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    ref = provider.put_event(calendar_id, BOOKING, None)
    provider.delete_event(calendar_id, BOOKING.booking_id, ref)
    assert direct.get(calendar_path + BOOKING.booking_id + ".ics")[0] == 404
    provider.delete_event(calendar_id, BOOKING.booking_id, ref)
    provider.delete_event(calendar_id, "never-written", None)


def test_calbook_own_events_never_come_back_as_busy(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    direct.put(calendar_path + "other.ics", vevent("o", "20250310T120000Z", "20250310T130000Z"))
    provider.put_event(calendar_id, BOOKING, None)
    result = provider.pull(calendar_id, None, WINDOW_START, WINDOW_END)
    assert result.upserts[calendar_path + BOOKING.booking_id + ".ics"] == []
    assert len(result.upserts[calendar_path + "other.ics"]) == 1
    # and an incremental pull after an update does not report it as busy either
    after = provider.put_event(calendar_id, replace(BOOKING, sequence=1), None)
    again = provider.pull(calendar_id, result.cursor, WINDOW_START, WINDOW_END)
    assert again.upserts == {after.ref: []}


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "x" * 300])
def test_booking_ids_that_could_escape_the_collection_are_refused(
    provider: CalDAVProvider, calendar_id: str, bad_id: str
) -> None:
    with pytest.raises(PermanentError):
        provider.put_event(calendar_id, replace(BOOKING, booking_id=bad_id), None)


def test_existing_ref_addresses_the_event(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    # an event written by an older version under another name is still addressed by its href
    direct.put(
        calendar_path + "legacy-name.ics",
        vevent(BOOKING.booking_id + "@calbook", "20250310T090000Z", "20250310T100000Z"),
    )
    status, headers, _ = direct.request("GET", calendar_path + "legacy-name.ics")
    ref = EventRef(calendar_id, calendar_path + "legacy-name.ics", headers["ETag"])
    new_ref = provider.put_event(calendar_id, replace(BOOKING, sequence=3), ref)
    assert new_ref.ref == calendar_path + "legacy-name.ics"
    provider.delete_event(calendar_id, BOOKING.booking_id, new_ref)
    assert direct.get(calendar_path + "legacy-name.ics")[0] == 404


def test_moving_to_another_destination_calendar(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    old_ref = provider.put_event(calendar_id, BOOKING, None)
    other_path = direct.make_calendar()
    other_id = proxy.url.rstrip("/") + other_path
    new_ref = provider.put_event(other_id, replace(BOOKING, sequence=1), old_ref)
    assert new_ref.calendar_id == other_id and new_ref.ref == other_path + BOOKING.booking_id + ".ics"
    provider.delete_event(calendar_id, BOOKING.booking_id, old_ref)
    assert direct.get(calendar_path + BOOKING.booking_id + ".ics")[0] == 404
    assert direct.get(other_path + BOOKING.booking_id + ".ics")[0] == 200
