"""``PATCH /v1/calendar-connections/{id}`` against a real Radicale holding two calendars.

The expert picks the busy calendars and the destination after connecting: a calendar taken
off the busy list loses its busy time at once, one added is imported by the next sync, and
a new destination gets the upcoming confirmed bookings' events on the next sync (moved, not
copied). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import icalendar
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from booking_engine.services import bookings, calendar_sync
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections
from config.settings import Settings
from tests.support.api import assert_problem, auth, make_settings
from tests.support.caldav import Direct
from tests.support.caldav_servers import PASSWORD, USERNAME, FaultProxy
from tests.support.sync import EXPERT, USER, blocks, day, event_text
from tests.support.worker import ENCRYPTION_KEY
from worker import wiring
from worker.calendar.push import push_booking

BASE = "/v1/calendar-connections"
STRANGER = "stranger-1"


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    settings: Settings = make_settings(tmp_path, encryption_key=ENCRYPTION_KEY)
    app: FastAPI = create_app(store, settings)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def two(direct: Direct, proxy: FaultProxy) -> dict[str, str]:
    """Two calendars of the account, each with one event tomorrow: paths and URLs."""
    work = direct.make_calendar(f"work-{uuid.uuid4().hex[:8]}")
    home = direct.make_calendar(f"home-{uuid.uuid4().hex[:8]}")
    direct.put(work + "w.ics", event_text("w", day(1, 9), day(1, 10)))
    direct.put(home + "h.ics", event_text("h", day(1, 11), day(1, 12)))
    base = proxy.url.rstrip("/")
    return {"work": work, "home": home, "work_url": base + work, "home_url": base + home}


def _connect(client: TestClient, proxy: FaultProxy, **choice: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/caldav", headers=auth(EXPERT),
                           json={"url": proxy.url, "username": USERNAME, "password": PASSWORD, **choice})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def z(moment: Any) -> str:
    return str(moment.isoformat()).replace("+00:00", "Z")


def _patch(client: TestClient, connection_id: str, body: dict[str, Any], user: str | None = EXPERT) -> Any:
    return client.patch(f"{BASE}/{connection_id}", json=body, headers=auth(user) if user else {})


def _busy(client: TestClient) -> list[dict[str, str]]:
    response = client.get(f"/v1/experts/{EXPERT}/busy", headers=auth(USER),
                          params={"from": day(1).isoformat(), "to": day(2).isoformat()})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def _events(direct: Direct, calendar_path: str) -> dict[str, icalendar.Event]:
    status, text = direct.get(calendar_path)
    assert status == 200
    return {str(c["UID"]): c for c in icalendar.Calendar.from_ical(text).walk("VEVENT")}


def _sync_requested(store: Store, connection_id: str) -> bool:
    with store.read() as conn:
        return conn.execute(
            calendar_connections.select().where(calendar_connections.c.id == connection_id)
        ).mappings().one()["sync_requested_at"] is not None


def test_connect_stores_the_calendar_list(client: TestClient, store: Store, expert: object, proxy: FaultProxy,
                                          two: dict[str, str]) -> None:
    created = _connect(client, proxy, busyCalendars=[two["work_url"]])
    with store.read() as conn:
        config = conn.execute(calendar_connections.select().where(
            calendar_connections.c.id == created["id"])).mappings().one()["config"]
    listed = {c["id"]: c for c in config["calendars"]}
    assert {two["work_url"], two["home_url"]} <= set(listed)
    assert listed[two["home_url"]]["writable"] is True and listed[two["home_url"]]["name"].startswith("home-")
    assert "calendars" not in created  # the API shape is unchanged


def test_authorization(client: TestClient, expert: object, proxy: FaultProxy, two: dict[str, str]) -> None:
    created = _connect(client, proxy, busyCalendars=[two["work_url"]])
    body = {"busyCalendars": [two["home_url"]]}
    assert_problem(_patch(client, created["id"], body, user=None), 401, "unauthenticated")
    assert_problem(_patch(client, created["id"], body, user=STRANGER), 404, "not_found")
    assert_problem(_patch(client, created["id"], body, user=USER), 404, "not_found")
    assert_problem(_patch(client, "no-such-connection", body), 404, "not_found")
    assert client.get(f"{BASE}/{created['id']}", headers=auth(EXPERT)).json() == created  # untouched
    answer = _patch(client, created["id"], body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == client.get(f"{BASE}/{created['id']}", headers=auth(EXPERT)).json()
    assert answer.json()["busyCalendars"] == [two["home_url"]]


def test_unknown_or_read_only_calendars_change_nothing(
    client: TestClient, store: Store, expert: object, proxy: FaultProxy, two: dict[str, str]
) -> None:
    created = _connect(client, proxy, busyCalendars=[two["work_url"]], destinationCalendar=two["work_url"])
    wiring.sync_connection(store, created["id"], Settings())
    for body, field in (
        ({"busyCalendars": [two["work_url"], proxy.url.rstrip("/") + f"/{USERNAME}/nothing/"]}, "busyCalendars"),
        ({"destinationCalendar": proxy.url.rstrip("/") + f"/{USERNAME}/nothing/"}, "destinationCalendar"),
        ({"busyCalendars": []}, "busyCalendars"),
        ({"busyCalendars": "x"}, "busyCalendars"),
        ({"destinationCalendar": 1}, "destinationCalendar"),
        ({"extra": True}, "extra"),
    ):
        problem = assert_problem(_patch(client, created["id"], body), 422, "validation_error")
        assert any(e["field"].endswith(field) for e in problem["errors"]), problem
    # A read-only destination: the stored list says so (Radicale calendars are all writable).
    with store.write() as conn:
        row = conn.execute(calendar_connections.select().where(
            calendar_connections.c.id == created["id"])).mappings().one()
        config = dict(row["config"])
        config["calendars"] = [{**c, "writable": c["id"] != two["home_url"]} for c in config["calendars"]]
        conn.execute(update(calendar_connections).where(calendar_connections.c.id == created["id"])
                     .values(config=config))
    problem = assert_problem(_patch(client, created["id"], {"destinationCalendar": two["home_url"]}),
                             422, "validation_error")
    assert problem["errors"][0]["field"] == "destinationCalendar" and "read-only" in problem["detail"]
    after = client.get(f"{BASE}/{created['id']}", headers=auth(EXPERT)).json()
    assert after == created | {"lastSyncedAt": after["lastSyncedAt"]}
    assert after["busyCalendars"] == [two["work_url"]] and after["destinationCalendar"] == two["work_url"]
    assert len(blocks(store, created["id"])) == 1
    assert not _sync_requested(store, created["id"])


def test_busy_calendars_follow_the_choice(
    client: TestClient, store: Store, expert: object, proxy: FaultProxy, two: dict[str, str]
) -> None:
    created = _connect(client, proxy, busyCalendars=[two["work_url"], two["home_url"]])
    wiring.sync_connection(store, created["id"], Settings())
    both = [{"start": z(day(1, 9)), "end": z(day(1, 10))}, {"start": z(day(1, 11)), "end": z(day(1, 12))}]
    assert _busy(client) == both

    # Home no longer counts: its busy time goes at once, and the next sync does not bring it back.
    answer = _patch(client, created["id"], {"busyCalendars": [two["work_url"]]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["busyCalendars"] == [two["work_url"]]
    assert _busy(client) == both[:1]
    assert calendar_sync.get_cursor(store, created["id"], two["home_url"]) is None
    assert _sync_requested(store, created["id"])
    assert wiring.sync_connection(store, created["id"], Settings()).status == "active"
    assert _busy(client) == both[:1]
    assert not _sync_requested(store, created["id"])

    # Home only: work's time goes, home's comes back with the next sync.
    assert _patch(client, created["id"], {"busyCalendars": [two["home_url"]]}).status_code == 200
    assert _busy(client) == []
    wiring.sync_connection(store, created["id"], Settings())
    assert _busy(client) == both[1:]

    # The same choice again changes nothing and asks for no sync.
    assert _patch(client, created["id"], {"busyCalendars": [two["home_url"]]}).status_code == 200
    assert not _sync_requested(store, created["id"])


def test_old_connection_without_a_stored_list_asks_the_server(
    client: TestClient, store: Store, expert: object, proxy: FaultProxy, two: dict[str, str]
) -> None:
    created = _connect(client, proxy, busyCalendars=[two["work_url"]])
    with store.write() as conn:
        row = conn.execute(calendar_connections.select().where(
            calendar_connections.c.id == created["id"])).mappings().one()
        config = {k: v for k, v in row["config"].items() if k != "calendars"}
        conn.execute(update(calendar_connections).where(calendar_connections.c.id == created["id"])
                     .values(config=config))
    answer = _patch(client, created["id"], {"busyCalendars": [two["home_url"]], "destinationCalendar": two["home_url"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["destinationCalendar"] == two["home_url"]
    assert_problem(_patch(client, created["id"], {"busyCalendars": [two["home_url"] + "x/"]}), 422, "validation_error")


def test_a_new_destination_gets_the_upcoming_bookings(
    client: TestClient, store: Store, expert: object, direct: Direct, proxy: FaultProxy, two: dict[str, str]
) -> None:
    created = _connect(client, proxy, busyCalendars=[two["work_url"]], destinationCalendar=two["work_url"])
    wiring.sync_connection(store, created["id"], Settings())
    booking = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(2, 10), 60, "video_call").id)
    assert push_booking(store, booking.id, settings=Settings()) == 1
    uid = f"{booking.id}@calbook"
    assert uid in _events(direct, two["work"])

    answer = _patch(client, created["id"], {"destinationCalendar": two["home_url"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["destinationCalendar"] == two["home_url"]
    assert answer.json()["busyCalendars"] == [two["work_url"]]  # left out: unchanged
    outcome = wiring.sync_connection(store, created["id"], Settings())
    assert outcome.status == "active" and outcome.backfilled == 1
    assert uid not in _events(direct, two["work"])
    assert list(_events(direct, two["home"])).count(uid) == 1
    ref = calendar_sync.get_event_ref(store, booking.id, created["id"])
    assert ref is not None and ref.calendar_id == two["home_url"]
    assert wiring.sync_connection(store, created["id"], Settings()).backfilled == 0  # moved once
    assert uid not in [external for external, _, _ in blocks(store, created["id"])]

    # No destination: nothing new is written, what was written stays, a cancellation still removes it.
    assert _patch(client, created["id"], {"destinationCalendar": None}).json()["destinationCalendar"] is None
    other = bookings.confirm_booking(
        store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(3, 10), 60, "video_call").id)
    assert push_booking(store, other.id, settings=Settings()) == 0
    assert wiring.sync_connection(store, created["id"], Settings()).backfilled == 0
    assert set(_events(direct, two["home"])) == {uid, "h"}
    bookings.cancel_booking(store, USER, booking.id, "plans changed")
    assert push_booking(store, booking.id, settings=Settings()) == 1
    assert set(_events(direct, two["home"])) == {"h"}


def test_ics_connections_have_nothing_to_choose(client: TestClient, store: Store, expert: object) -> None:
    from booking_engine.services import connections
    from connectors.secrets import encrypt_json

    feed = "https://feeds.example/cal.ics"
    created = connections.create_connection(
        store, EXPERT, EXPERT, "ics", account=None, credentials=encrypt_json({"url": feed}, ENCRYPTION_KEY),
        busy_calendars=[feed], destination_calendar=None, extra_config={"url": feed},
    )
    assert_problem(_patch(client, created.id, {"busyCalendars": [feed]}), 422, "validation_error")
    assert_problem(_patch(client, created.id, {"busyCalendars": [feed]}, user=STRANGER), 404, "not_found")
