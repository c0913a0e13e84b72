"""Connecting a Microsoft account through the API: authorize, consent, callback, first sync and subscriptions."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, oauth_states
from tests.support.api import assert_problem, auth
from tests.support.fakes.microsoft_graph import FakeGraph
from tests.support.microsoft import (
    ACCOUNT,
    EXPERT,
    PUBLIC_BASE,
    WORK,
    RecordingQueue,
    busy,
    connect,
    event,
    query_of,
    stored_credentials,
    subscriptions,
)


def test_connect_end_to_end(client: TestClient, fake: FakeGraph, queue: RecordingQueue, store: Store) -> None:
    fake.put_event(WORK, event(1, 12))
    response = client.post("/v1/calendar-connections/microsoft/authorize", headers=auth(EXPERT))
    assert response.status_code == 200, response.text
    url = response.json()["authorizationUrl"]
    query = query_of(url)
    assert url.startswith(fake.base + "/common/oauth2/v2.0/authorize")
    assert query["redirect_uri"] == f"{PUBLIC_BASE}/v1/oauth/microsoft/callback"
    assert query["code_challenge_method"] == "S256" and "code_verifier" not in url

    code = fake.approve(url, ACCOUNT)
    callback = client.get("/v1/oauth/microsoft/callback", params={"code": code, "state": query["state"]})
    assert callback.status_code == 201, callback.text
    body = callback.json()
    assert body["provider"] == "microsoft" and body["status"] == "active" and body["account"] == ACCOUNT
    # The default calendar is busy and (canEdit) the destination; the shared read-only one is listed only.
    assert body["busyCalendars"] == [WORK] and body["destinationCalendar"] == WORK
    refresh_token = next(iter(fake.refresh_tokens))
    assert refresh_token not in callback.text
    with store.read() as conn:
        raw = conn.execute(select(calendar_connections.c.credentials)).scalar_one()
        config = conn.execute(select(calendar_connections.c.config)).scalar_one()
        assert conn.execute(select(oauth_states)).first() is None  # single use
    assert refresh_token not in raw and stored_credentials(store, body["id"])["refresh_token"] == refresh_token
    assert {c["id"]: c["writable"] for c in config["calendars"]} == {WORK: True, "AAMkTeam==": False}
    assert queue.queued == [("sync", body["id"]), ("watch", body["id"])]

    assert [status for _, _, status in queue.run()] == ["active", "active"]
    assert len(busy(client)) == 1
    live = subscriptions(store, body["id"], live=True)
    assert [s["calendar_id"] for s in live] == [WORK]
    assert len(fake.subscriptions) == 1
    sub = next(iter(fake.subscriptions.values()))
    assert sub["notificationUrl"] == sub["lifecycleNotificationUrl"] == f"{PUBLIC_BASE}/v1/webhooks/microsoft"
    assert sub["changeType"] == "created,updated,deleted" and sub["resource"] == f"me/calendars/{WORK}/events"
    assert sub["clientState"] not in str(live) and live[0]["token_hash"] != sub["clientState"]


def test_the_destination_must_be_writable(connected: dict[str, Any], client: TestClient) -> None:
    response = client.patch(f"/v1/calendar-connections/{connected['id']}", headers=auth(EXPERT),
                            json={"destinationCalendar": "AAMkTeam=="})
    assert_problem(response, 422, "validation_error")


def test_state_is_bound_to_the_expert_and_single_use(client: TestClient, fake: FakeGraph) -> None:
    url = client.post("/v1/calendar-connections/microsoft/authorize", headers=auth(EXPERT)).json()["authorizationUrl"]
    code = fake.approve(url, ACCOUNT)
    forged = client.get("/v1/oauth/microsoft/callback", params={"code": code, "state": "not-ours"})
    assert forged.status_code == 400
    state = query_of(url)["state"]
    assert client.get("/v1/oauth/microsoft/callback", params={"code": code, "state": state}).status_code == 201
    again = client.get("/v1/oauth/microsoft/callback", params={"code": code, "state": state})
    assert again.status_code == 400


def test_reconnect_refreshes_the_same_connection(connected: dict[str, Any], client: TestClient, fake: FakeGraph,
                                                 store: Store) -> None:
    again = connect(client, fake)
    assert again["id"] == connected["id"]
    listed = client.get("/v1/calendar-connections", headers=auth(EXPERT)).json()
    assert len(listed["items"]) == 1


def test_without_an_entra_app_the_feature_is_absent(client: TestClient, monkeypatch: Any) -> None:
    client.app.state.settings.microsoft_client_id = None  # type: ignore[attr-defined]
    response = client.post("/v1/calendar-connections/microsoft/authorize", headers=auth(EXPERT))
    assert response.status_code == 404
