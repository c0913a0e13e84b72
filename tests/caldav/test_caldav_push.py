"""Writing booking events to every real server: idempotent create, update, delete, preconditions,
and an event the expert moved to another calendar of the account."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import icalendar
import pytest

from connectors.base import BookingEvent, EventRef, PermanentError
from connectors.caldav import CalDAVProvider
from tests.support.caldav import WINDOW_END, WINDOW_START, Direct, vevent
from tests.support.caldav_servers import CalDAVServer, Fault, FaultProxy

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


def events_with_uid(direct: Direct, *calendars: str) -> list[tuple[str, icalendar.cal.Component]]:
    """``(href, VEVENT)`` of every object carrying the booking's UID in these calendars."""
    found = []
    for calendar in calendars:
        for href in direct.members(calendar):
            code, body = direct.get(href)
            for event in icalendar.Calendar.from_ical(body).walk("VEVENT") if code == 200 else []:
                if str(event["UID"]) == BOOKING.booking_id + "@calbook":
                    found.append((href, event))
    return found


def move_in_the_experts_client(direct: Direct, from_path: str, to_calendar: str, name: str = "moved.ics") -> str:
    """What a calendar client does to move an event: the same data under a new name elsewhere,
    the old one deleted (first: Cyrus keeps a UID unique across the account)."""
    _, body = direct.get(from_path)
    direct.delete(from_path)
    direct.put(to_calendar + name, body)
    return to_calendar + name


def resource_count(direct: Direct, calendar_path: str) -> int:
    return len(direct.members(calendar_path))


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
    """As the worker moves it: delete where it was, then create in the new destination (a server
    that keeps UIDs unique across the account, like Cyrus, allows no copy before that)."""
    old_ref = provider.put_event(calendar_id, BOOKING, None)
    other_path = direct.make_calendar()
    other_id = proxy.url.rstrip("/") + other_path
    provider.delete_event(calendar_id, BOOKING.booking_id, old_ref)
    new_ref = provider.put_event(other_id, replace(BOOKING, sequence=1), old_ref)
    assert new_ref.calendar_id == other_id and new_ref.ref == other_path + BOOKING.booking_id + ".ics"
    assert direct.get(calendar_path + BOOKING.booking_id + ".ics")[0] == 404
    assert direct.get(other_path + BOOKING.booking_id + ".ics")[0] == 200


# ------------------------------------------------- the event exists once, where the expert keeps it

RESCHEDULED = replace(
    BOOKING, start=datetime(2025, 3, 14, 15, tzinfo=UTC), end=datetime(2025, 3, 14, 16, tzinfo=UTC), sequence=1
)


def test_an_event_the_expert_moved_is_updated_where_it_is_and_not_copied(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    """Book, confirm, move the event to another calendar in the expert's client, reschedule:
    the moved event gets the new time (same UID, higher SEQUENCE), and no second copy appears."""
    ref = provider.put_event(calendar_id, BOOKING, None)
    other = direct.make_calendar()
    moved = move_in_the_experts_client(direct, ref.ref, other)

    new_ref = provider.put_event(calendar_id, RESCHEDULED, ref)

    assert new_ref.calendar_id == calendar_id and new_ref.ref == moved  # written for A, living in B
    ((href, event),) = events_with_uid(direct, calendar_path, other)
    assert href.endswith("moved.ics")
    assert event["DTSTART"].dt == RESCHEDULED.start and int(event["SEQUENCE"]) >= 1
    # the next change goes straight there (If-Match on the href it lives at)
    again = provider.put_event(calendar_id, replace(RESCHEDULED, sequence=2, summary="Renamed"), new_ref)
    assert again.ref == moved and len(events_with_uid(direct, calendar_path, other)) == 1
    # and the cancellation removes it there
    provider.delete_event(calendar_id, BOOKING.booking_id, again)
    assert events_with_uid(direct, calendar_path, other) == []


def test_a_cancellation_finds_the_moved_event_by_its_uid(
    provider: CalDAVProvider, direct: Direct, calendar_path: str, calendar_id: str
) -> None:
    ref = provider.put_event(calendar_id, BOOKING, None)
    other = direct.make_calendar()
    move_in_the_experts_client(direct, ref.ref, other)
    provider.delete_event(calendar_id, BOOKING.booking_id, ref)  # the stored ref still says A
    assert events_with_uid(direct, calendar_path, other) == []


def test_a_uid_conflict_precondition_names_where_the_event_is(
    provider: CalDAVProvider, caldav_server: CalDAVServer, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_id: str,
) -> None:
    """A create refused because the UID lives elsewhere (the ref was lost): updated there, not an
    ``AuthError``. Cyrus says so itself (403 ``unique-scheduling-object-resource``); the other
    servers allow a copy, so the proxy answers as RFC 4791 servers do (403 ``no-uid-conflict``)."""
    ref = provider.put_event(calendar_id, BOOKING, None)
    other = direct.make_calendar()
    moved = move_in_the_experts_client(direct, ref.ref, other)
    if not caldav_server.features.unique_uid:
        clash = ('<?xml version="1.0"?><D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                 f"<C:no-uid-conflict><D:href>{moved}</D:href></C:no-uid-conflict></D:error>").encode()
        proxy.faults.append(Fault("PUT", 403, match=calendar_path + BOOKING.booking_id, times=1, body=clash))

    new_ref = provider.put_event(calendar_id, RESCHEDULED, None)

    assert new_ref.ref == moved
    ((href, event),) = events_with_uid(direct, calendar_path, other)
    assert event["DTSTART"].dt == RESCHEDULED.start and int(event["SEQUENCE"]) >= 1


def test_updating_twice_where_it_was_found_is_idempotent(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str
) -> None:
    """A retried update over an event whose SEQUENCE was raised (ours, or the client's) writes nothing."""
    ref = provider.put_event(calendar_id, BOOKING, None)
    _, body = direct.get(ref.ref)
    direct.put(ref.ref, body.replace("SEQUENCE:0", "SEQUENCE:5"))  # the expert's client bumped it
    first = provider.put_event(calendar_id, RESCHEDULED, None)  # the ref was lost: 412, read, re-apply
    (event,) = stored_events(direct, calendar_path)
    assert int(event["SEQUENCE"]) == 6 and event["DTSTART"].dt == RESCHEDULED.start
    proxy.seen.clear()
    second = provider.put_event(calendar_id, RESCHEDULED, None)
    assert second.ref == first.ref and [s.method for s in proxy.seen] == ["PUT", "GET"]  # 412, read: same
    (event,) = stored_events(direct, calendar_path)
    assert int(event["SEQUENCE"]) == 6
