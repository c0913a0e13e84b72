"""Pull: calendarView/delta through the worker's sync, against the fake Graph."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import update

from booking_engine.clock import utcnow
from booking_engine.services import calendar_sync
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections
from connectors.microsoft.events import BOOKING_PROPERTY_ID
from connectors.secrets import encrypt_json
from tests.support.api import auth
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.microsoft import (
    ENCRYPTION_KEY,
    EXPERT,
    WEBHOOK,
    WORK,
    RecordingQueue,
    busy,
    connect,
    connection_row,
    event,
    outbox_types,
    stored_credentials,
    subscriptions,
)


def _sync(queue: RecordingQueue, connection_id: str) -> str:
    queue.queued.append(("sync", connection_id))
    return queue.run()[-1][2]


def _delta_requests(fake: FakeGraph) -> list[str]:
    return [path for method, path in fake.log if "calendarView/delta" in path]


def test_full_then_incremental_with_removed(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                            queue: RecordingQueue, store: Store) -> None:
    first = fake.put_event(WORK, event(1, 9))
    second = fake.put_event(WORK, event(2, 9))
    assert _sync(queue, connected["id"]) == "active"
    # the connection's first sync ran before these existed: this one was incremental from its delta link
    assert len(busy(client)) == 2
    cursor = calendar_sync.get_cursor(store, connected["id"], WORK)
    assert cursor is not None and "deltatoken" in cursor["delta_link"]

    fake.remove_event(WORK, first["id"])
    fake.put_event(WORK, {**second, **event(3, 14)})
    fake.log.clear()
    assert _sync(queue, connected["id"]) == "active"
    items = busy(client)
    assert len(items) == 1 and items[0]["start"].endswith("T14:00:00Z")
    assert len(_delta_requests(fake)) == 1  # incremental: one page of two changes


def test_paging_keeps_the_delta_link_for_after_the_last_page(connected: dict[str, Any], client: TestClient,
                                                           fake: FakeGraph, queue: RecordingQueue,
                                                           store: Store) -> None:
    for index in range(450):
        fake.put_event(WORK, event(1 + index % 28, index % 20, hours=0, subject=f"e{index}"))
    fake.log.clear()
    with store.write() as conn:  # forget the cursor: a full sync of 450 events, pages of 200
        conn.execute(update(calendar_connections).values(last_reconciled_at=None))
    calendar_sync.apply_pull(store, connected["id"], WORK, full=True, upserts={}, deleted=set(), cursor={},
                             kept=set())
    fake.fail_next("skiptoken", 500)  # a page fails (then succeeds on the in-call retry)
    assert _sync(queue, connected["id"]) == "active"
    assert len(_delta_requests(fake)) == 4  # 3 pages + the retried one
    cursor = calendar_sync.get_cursor(store, connected["id"], WORK)
    assert cursor is not None and "deltatoken" in cursor["delta_link"]


def test_a_failed_page_saves_nothing(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                     queue: RecordingQueue, store: Store) -> None:
    before = calendar_sync.get_cursor(store, connected["id"], WORK)
    for index in range(250):
        fake.put_event(WORK, event(1 + index % 28, index % 20, hours=0))
    fake.put_event(WORK, event(5, 10))
    for _ in range(5):
        fake.fail_next("skiptoken", 400, body={"error": {"code": "BadRequest"}})
    assert _sync(queue, connected["id"]) == "error"
    assert calendar_sync.get_cursor(store, connected["id"], WORK) == before
    assert busy(client) == []


def test_what_does_not_block(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                             queue: RecordingQueue) -> None:
    fake.put_event(WORK, event(1, 9, showAs="free"))
    fake.put_event(WORK, event(2, 9, showAs="workingElsewhere"))
    fake.put_event(WORK, event(3, 9, isCancelled=True))
    fake.put_event(WORK, event(4, 9, responseStatus={"response": "declined"}))
    fake.put_event(WORK, event(5, 9, singleValueExtendedProperties=[
        {"id": BOOKING_PROPERTY_ID, "value": "c0ffee00-0000-0000-0000-000000000000"}]))
    fake.put_event(WORK, event(6, 9, showAs="tentative"))
    fake.put_event(WORK, event(7, 9, showAs="oof"))
    assert _sync(queue, connected["id"]) == "active"
    days = sorted(item["start"][:10] for item in busy(client))
    today = utcnow().date()
    assert days == [str(today + timedelta(days=6)), str(today + timedelta(days=7))]


def test_recurring_series_with_a_cancelled_and_a_moved_occurrence(
    connected: dict[str, Any], client: TestClient, fake: FakeGraph, queue: RecordingQueue,
) -> None:
    occurrences = [fake.put_event(WORK, {**event(day, 8), "id": f"occ-{day}", "type": "occurrence",
                                         "seriesMasterId": "series-1"}) for day in (1, 8, 15)]
    assert _sync(queue, connected["id"]) == "active"
    assert len(busy(client)) == 3
    fake.remove_event(WORK, occurrences[1]["id"])  # one occurrence cancelled: delta says @removed
    fake.put_event(WORK, {**occurrences[2], **event(16, 17), "type": "exception"})  # one moved
    assert _sync(queue, connected["id"]) == "active"
    starts = sorted(item["start"] for item in busy(client))
    assert len(starts) == 2 and starts[1].endswith("T17:00:00Z")
    assert starts[1][:10] == str(utcnow().date() + timedelta(days=16))


def test_all_day_in_a_windows_zone_mailbox(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                           queue: RecordingQueue, store: Store) -> None:
    fake.mailbox_timezone = "W. Europe Standard Time"  # Europe/Berlin
    calendar_sync.apply_pull(store, connected["id"], WORK, full=True, upserts={}, deleted=set(), cursor={},
                             kept=set())  # re-seed: the zone is read on a full sync
    day = (utcnow() + timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0)
    fmt = "%Y-%m-%dT00:00:00.0000000"
    # Graph answers an all-day event at midnight of the zone it was asked for (UTC here); the dates count.
    fake.put_event(WORK, {"isAllDay": True, "subject": "Holiday",
                          "start": {"dateTime": day.strftime(fmt), "timeZone": "UTC"},
                          "end": {"dateTime": (day + timedelta(days=1)).strftime(fmt), "timeZone": "UTC"}})
    assert _sync(queue, connected["id"]) == "active"
    items = busy(client, days=60)
    assert len(items) == 1
    # The local day in Berlin (UTC+1 or +2), not the UTC day.
    berlin = ZoneInfo("Europe/Berlin")
    local_start = datetime.combine(day.date(), time(0), tzinfo=berlin).astimezone(UTC)
    local_end = datetime.combine(day.date() + timedelta(days=1), time(0), tzinfo=berlin).astimezone(UTC)
    assert items[0]["start"] == local_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert items[0]["end"] == local_end.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_invalid_delta_token_drops_blocks_and_full_syncs(connected: dict[str, Any], client: TestClient,
                                                         fake: FakeGraph, queue: RecordingQueue,
                                                         store: Store) -> None:
    gone = fake.put_event(WORK, event(1, 9))
    fake.put_event(WORK, event(2, 9))
    assert _sync(queue, connected["id"]) == "active"
    assert len(busy(client)) == 2
    fake.invalidate_delta()
    with fake.lock:  # gone without Graph keeping a trace of it: only a full sync notices
        fake.calendars[WORK].events.pop(gone["id"])
        fake.calendars[WORK].changed.pop(gone["id"])
    fake.log.clear()
    assert _sync(queue, connected["id"]) == "active"
    assert len(busy(client)) == 1
    paths = _delta_requests(fake)
    assert len(paths) == 2  # the refused delta link, then the full sync
    assert fake.requests["GET me/calendars"] >= 2


def test_a_short_horizon_reseeds(connected: dict[str, Any], fake: FakeGraph, queue: RecordingQueue,
                                 store: Store) -> None:
    cursor = calendar_sync.get_cursor(store, connected["id"], WORK)
    assert cursor is not None
    short = {**cursor, "covered_until": (utcnow() + timedelta(days=30)).isoformat()}
    calendar_sync.apply_pull(store, connected["id"], WORK, full=False, upserts={}, deleted=set(), cursor=short,
                             kept=set())
    fake.log.clear()
    assert _sync(queue, connected["id"]) == "active"
    (request,) = _delta_requests(fake)
    assert "startDateTime=" in request and "deltatoken" not in request  # a new window, not the old link
    renewed = calendar_sync.get_cursor(store, connected["id"], WORK)
    assert renewed is not None and renewed["covered_until"] > short["covered_until"]


def test_refreshed_tokens_are_saved_back(connected: dict[str, Any], fake: FakeGraph, queue: RecordingQueue,
                                         store: Store) -> None:
    credentials = stored_credentials(store, connected["id"])
    with store.write() as conn:
        conn.execute(update(calendar_connections).values(credentials=encrypt_json(
            {**credentials, "expires_at": 0}, ENCRYPTION_KEY)))
    assert _sync(queue, connected["id"]) == "active"
    saved = stored_credentials(store, connected["id"])
    assert saved["refresh_token"] != credentials["refresh_token"]  # rotated, and kept
    assert saved["refresh_token"] in fake.refresh_tokens and credentials["refresh_token"] in fake.revoked


def test_429_honours_retry_after(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                 queue: RecordingQueue, sleeps: list[float]) -> None:
    fake.put_event(WORK, event(1, 9))
    fake.fail_next("calendarView/delta", 429, {"Retry-After": "3"}, {"error": {"code": "TooManyRequests"}})
    fake.fail_next("calendarView/delta", 503)
    assert _sync(queue, connected["id"]) == "active"
    assert sleeps[0] == 3.0 and 0 <= sleeps[1] <= 1.0  # then backoff with jitter (base 0.5 * 2)
    assert len(busy(client)) == 1


def test_invalid_grant_needs_reauth_end_to_end(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                               queue: RecordingQueue, store: Store) -> None:
    assert subscriptions(store, connected["id"], live=True)
    fake.revoke()  # AADSTS700082: the refresh token expired after 90 days of inactivity
    fake.log.clear()
    assert _sync(queue, connected["id"]) == "reauth_required"
    assert connection_row(store, connected["id"])["status"] == "reauth_required"
    assert "AADSTS700082" in (connection_row(store, connected["id"])["last_error"] or "")
    assert outbox_types(store).count("connection.reauth_required") == 1
    assert subscriptions(store, connected["id"], live=True) == []
    token_calls = fake.requests["token"]
    assert _sync(queue, connected["id"]) == "skipped"  # never retried: it waits for the expert
    assert fake.requests["token"] == token_calls
    shown = client.get(f"/v1/calendar-connections/{connected['id']}", headers=auth(EXPERT)).json()
    assert shown["status"] == "reauth_required"
    # A notification for its old subscription now changes nothing.
    item = {"subscriptionId": "whatever", "clientState": "x"}
    assert client.post(WEBHOOK, json={"value": [item]}).status_code == 202
    assert queue.queued == []
    # Connecting again restores the same connection, syncing and subscribed.
    again = connect(client, fake)
    assert again["id"] == connected["id"] and again["status"] == "active"
    assert [status for _, _, status in queue.run()] == ["active", "active"]
    assert len(subscriptions(store, connected["id"], live=True)) == 1


def test_consent_revoked_or_mailbox_gone_needs_reauth(connected: dict[str, Any], fake: FakeGraph,
                                                      queue: RecordingQueue, store: Store) -> None:
    fake.fail_next("calendarView/delta", 404, body={"error": {"code": "MailboxNotEnabledForRESTAPI"}})
    assert _sync(queue, connected["id"]) == "reauth_required"
    assert outbox_types(store).count("connection.reauth_required") == 1
    assert subscriptions(store, connected["id"], live=True) == []


def test_a_calendar_not_found_is_an_error_not_reauth(connected: dict[str, Any], fake: FakeGraph,
                                                     queue: RecordingQueue, store: Store) -> None:
    fake.fail_next("calendarView/delta", 404, body={"error": {"code": "ErrorItemNotFound"}})
    assert _sync(queue, connected["id"]) == "error"
    assert connection_row(store, connected["id"])["status"] == "error"
