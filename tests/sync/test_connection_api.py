"""``/v1/calendar-connections`` over HTTP, against a real Radicale, on SQLite and PostgreSQL.

Connecting verifies with the server (credentials, reachability) and never answers 500;
only the expert sees or touches their connections; no response ever carries a secret.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from booking_engine.services import connections
from booking_engine.store.db import Store
from config.settings import Settings
from tests.support.api import assert_problem, auth, make_settings
from tests.support.caldav import Direct
from tests.support.caldav_servers import PASSWORD, USERNAME, Fault, FaultProxy, free_port
from tests.support.feed_server import FeedState, feed
from tests.support.sync import EXPERT, blocks, day, event_text
from tests.support.worker import ENCRYPTION_KEY
from worker import wiring

STRANGER = "stranger-1"
BASE = "/v1/calendar-connections"


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, encryption_key=ENCRYPTION_KEY)


@pytest.fixture
def client(store: Store, api_settings: Settings) -> Iterator[TestClient]:
    app: FastAPI = create_app(store, api_settings)
    with TestClient(app) as test_client:
        yield test_client


class Seen:
    """Every response body of a test, to check that no secret ever leaves."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.bodies: list[str] = []

    def __call__(self, method: str, path: str, user: str | None = EXPERT, **kwargs: Any) -> Any:
        headers = auth(user) if user else {}
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.bodies.append(response.text + json.dumps(dict(response.headers)))
        return response

    def assert_no_secret(self, *secrets: str) -> None:
        for body in self.bodies:
            for secret in secrets:
                assert secret not in body


@pytest.fixture
def call(client: TestClient) -> Seen:
    return Seen(client)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def caldav_body(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "username": USERNAME, "password": PASSWORD, **extra}


def queued_tasks(settings: Settings) -> list[dict[str, Any]]:
    """Messages waiting in the embedded broker (kombu's SQLAlchemy transport on SQLite)."""
    path = settings.resolved_broker_url().split("sqlite:///", 1)[1]
    if not Path(path).exists():
        return []
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT payload FROM kombu_message").fetchall()
    return [json.loads(r[0]) for r in rows]


def test_connect_sync_list_disconnect(
    call: Seen, store: Store, api_settings: Settings, expert: object, direct: Direct, proxy: FaultProxy,
    calendar_path: str, calendar_url: str,
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    other_path = direct.make_calendar()
    other_url = proxy.url.rstrip("/") + other_path

    # The server's root: discovery finds every calendar; all busy, the first writable is the destination.
    response = call("POST", f"{BASE}/caldav", json=caldav_body(proxy.url))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["provider"] == "caldav" and created["status"] == "active"
    assert {calendar_url, other_url} <= set(created["busyCalendars"])
    assert created["destinationCalendar"] in created["busyCalendars"]
    assert response.headers["Location"] == f"{BASE}/{created['id']}"
    queued = queued_tasks(api_settings)
    # The dispatcher claims it, then queues its sync.
    assert [m["headers"]["task"] for m in queued] == ["calbook.sync.dispatch"]
    assert created["id"] in json.dumps(queued)

    # A calendar URL with a chosen busy set and destination.
    response = call("POST", f"{BASE}/caldav", json=caldav_body(
        proxy.url, busyCalendars=[calendar_url], destinationCalendar=other_url))
    assert response.status_code == 201, response.text
    chosen = response.json()
    assert chosen["busyCalendars"] == [calendar_url] and chosen["destinationCalendar"] == other_url

    listed = call("GET", BASE).json()["items"]
    assert [c["id"] for c in listed] == [created["id"], chosen["id"]]
    assert call("GET", f"{BASE}/{chosen['id']}").json()["id"] == chosen["id"]

    # POST .../sync: 202, and the worker's task (run here in process) imports the busy time.
    response = call("POST", f"{BASE}/{chosen['id']}/sync")
    assert response.status_code == 202
    assert wiring.sync_connection(store, chosen["id"], Settings()).status == "active"
    assert [(s, e) for _, s, e in blocks(store, chosen["id"])] == [(day(1, 13), day(1, 14))]
    busy = call("GET", f"/v1/experts/{EXPERT}/busy", params={
        "from": day(1).isoformat(), "to": day(2).isoformat()}).json()
    assert busy == {"items": [{"start": z(day(1, 13)), "end": z(day(1, 14))}]}
    assert call("GET", f"{BASE}/{chosen['id']}").json()["lastSyncedAt"]
    response = call("POST", f"{BASE}/{chosen['id']}/sync")
    assert response.status_code == 202
    assert chosen["id"] in json.dumps(queued_tasks(api_settings)[-1])

    # Delete: 204 and the busy time is gone at once.
    assert call("DELETE", f"{BASE}/{chosen['id']}").status_code == 204
    assert blocks(store, chosen["id"]) == []
    assert [c["id"] for c in call("GET", BASE).json()["items"]] == [created["id"]]
    assert_problem(call("DELETE", f"{BASE}/{chosen['id']}"), 404, "not_found")
    assert_problem(call("POST", f"{BASE}/{chosen['id']}/sync"), 404, "not_found")
    call.assert_no_secret(PASSWORD)


def test_busy_shows_imported_time(
    call: Seen, store: Store, expert: object, direct: Direct, calendar_path: str, calendar_url: str
) -> None:
    direct.put(calendar_path + "a.ics", event_text("a", day(1, 13), day(1, 14)))
    created = call("POST", f"{BASE}/caldav", json=caldav_body(calendar_url)).json()
    assert created["busyCalendars"] == [calendar_url] and created["destinationCalendar"] == calendar_url
    wiring.sync_connection(store, created["id"], Settings())
    busy = call("GET", f"/v1/experts/{EXPERT}/busy", params={"from": day(1).isoformat(), "to": day(2).isoformat()})
    assert busy.status_code == 200, busy.text
    assert busy.json() == {"items": [{"start": z(day(1, 13)), "end": z(day(1, 14))}]}


def test_authorization(call: Seen, expert: object, calendar_url: str) -> None:
    created = call("POST", f"{BASE}/caldav", json=caldav_body(calendar_url)).json()
    path = f"{BASE}/{created['id']}"
    for method, target in (("GET", BASE), ("POST", f"{BASE}/caldav"), ("POST", f"{BASE}/ics"), ("GET", path),
                           ("DELETE", path), ("POST", f"{path}/sync")):
        assert_problem(call(method, target, user=None, json={}), 401, "unauthenticated")
    assert call("GET", BASE, user=STRANGER).json() == {"items": []}
    assert_problem(call("GET", path, user=STRANGER), 404, "not_found")
    assert_problem(call("DELETE", path, user=STRANGER), 404, "not_found")
    assert_problem(call("POST", f"{path}/sync", user=STRANGER), 404, "not_found")
    assert call("GET", path).status_code == 200  # still there, untouched
    call.assert_no_secret(PASSWORD)


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.org/cal"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "http://alice:pw@127.0.0.1/"}, "url"),
    ({"username": ""}, "username"),
    ({"password": None}, "password"),
    ({"extra": 1}, "extra"),
    ({"busyCalendars": "x"}, "busyCalendars"),
])
def test_bad_input_is_a_validation_problem(
    call: Seen, expert: object, calendar_url: str, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(call("POST", f"{BASE}/caldav", json={**caldav_body(calendar_url), **body}),
                             422, "validation_error")
    assert field in json.dumps(problem)


def test_verification_failures(
    call: Seen, expert: object, proxy: FaultProxy, calendar_url: str, calendar_path: str
) -> None:
    refused = call("POST", f"{BASE}/caldav", json={**caldav_body(calendar_url), "password": "wrong-pw"})
    assert "credentials refused" in assert_problem(refused, 422, "validation_error")["detail"]
    dead = f"http://127.0.0.1:{free_port()}/"
    assert_problem(call("POST", f"{BASE}/caldav", json=caldav_body(dead)), 502, "calendar_unreachable")
    proxy.faults.append(Fault("PROPFIND", 503))
    assert_problem(call("POST", f"{BASE}/caldav", json=caldav_body(calendar_url)), 502, "calendar_unreachable")
    proxy.faults.clear()
    missing = proxy.url.rstrip("/") + "/nobody/nothing/"
    assert_problem(call("POST", f"{BASE}/caldav", json=caldav_body(missing)), 422, "validation_error")
    assert_problem(call("POST", f"{BASE}/caldav", json=caldav_body(
        calendar_url, busyCalendars=[calendar_url + "x/"])), 422, "validation_error")
    assert_problem(call("POST", f"{BASE}/caldav", json=caldav_body(
        calendar_url, destinationCalendar="http://elsewhere.example/cal/")), 422, "validation_error")
    assert call("GET", BASE).json() == {"items": []}  # nothing stored by a failed connect
    call.assert_no_secret(PASSWORD, "wrong-pw")


def test_broker_down_does_not_fail_the_request(
    store: Store, tmp_path: Path, expert: object, calendar_url: str
) -> None:
    settings = make_settings(tmp_path, encryption_key=ENCRYPTION_KEY,
                             broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(store, settings)) as client:
        response = client.post(f"{BASE}/caldav", json=caldav_body(calendar_url), headers=auth(EXPERT))
        assert response.status_code == 201, response.text
        connection_id = response.json()["id"]
        assert client.post(f"{BASE}/{connection_id}/sync", headers=auth(EXPERT)).status_code == 202
    assert connection_id in connections.due_connections(store)  # the dispatcher's tick claims it


def test_ics_feed(
    call: Seen, store: Store, expert: object, feed_server: tuple[str, FeedState],  # noqa: F811
) -> None:
    url, state = feed_server
    state.body = feed(event_text("f1", day(1, 9), day(1, 10)))
    secret_url = url + "?token=private-abc123"
    response = call("POST", f"{BASE}/ics", json={"url": secret_url.replace("http://", "webcal://")})
    # webcal means https, which the plain-HTTP test server cannot speak: unreachable, not a 500.
    assert response.status_code in (422, 502), response.text
    response = call("POST", f"{BASE}/ics", json={"url": secret_url})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["provider"] == "ics" and created["destinationCalendar"] is None
    assert wiring.sync_connection(store, created["id"], Settings()).status == "active"
    assert [(s, e) for _, s, e in blocks(store, created["id"])] == [(day(1, 9), day(1, 10))]
    call("GET", BASE)
    call.assert_no_secret("private-abc123")

    assert_problem(call("POST", f"{BASE}/ics", json={"url": "file:///etc/passwd"}), 422, "validation_error")
    state.status = 404
    assert_problem(call("POST", f"{BASE}/ics", json={"url": url}), 422, "validation_error")
    state.status, state.body = 200, b"<html>not a calendar</html>"
    assert_problem(call("POST", f"{BASE}/ics", json={"url": url}), 422, "validation_error")
    assert_problem(call("POST", f"{BASE}/ics", json={"url": f"http://127.0.0.1:{free_port()}/x.ics"}),
                   502, "calendar_unreachable")
