"""Connecting a Google account through the API: authorize, consent, callback, first sync and watch."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from booking_engine.clock import utcnow
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, oauth_states
from connectors.google.webhook import hash_channel_token
from tests.support.api import assert_problem, auth
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google_integration import (
    ACCOUNT,
    EXPERT,
    PUBLIC_BASE,
    RecordingQueue,
    _query,
    busy_times,
    channels,
    connect,
    fake_channel,
    google_event,
    stored_credentials,
)
from tests.support.google_oauth import FakeGoogleOAuth


def test_connect_end_to_end(
    client: TestClient, oauth: FakeGoogleOAuth, fake: FakeGoogleCalendar, queue: RecordingQueue, store: Store
) -> None:
    fake.add_event(ACCOUNT, google_event(1, 12))

    response = client.post("/v1/calendar-connections/google/authorize", headers=auth(EXPERT))
    assert response.status_code == 200, response.text
    url = response.json()["authorizationUrl"]
    query = _query(url)
    assert query["redirect_uri"] == f"{PUBLIC_BASE}/v1/oauth/google/callback"
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert "code_verifier" not in url

    code = oauth.approve(url, ACCOUNT)
    callback = client.get("/v1/oauth/google/callback", params={"code": code, "state": query["state"]})

    assert callback.status_code == 201, callback.text
    body = callback.json()
    assert body["provider"] == "google" and body["status"] == "active" and body["account"] == ACCOUNT
    assert body["busyCalendars"] == [ACCOUNT] and body["destinationCalendar"] == ACCOUNT
    refresh_token = next(iter(oauth.refresh_tokens))
    assert refresh_token not in callback.text and "access-" not in callback.text and "refresh" not in callback.text
    # Encrypted at rest: the raw column holds neither token; decrypted, it holds both.
    with store.read() as conn:
        raw = conn.execute(select(calendar_connections.c.credentials)).scalar_one()
    assert refresh_token not in raw
    assert stored_credentials(store, body["id"])["refresh_token"] == refresh_token
    with store.read() as conn:
        assert conn.execute(select(oauth_states)).first() is None  # single use: spent

    listed = client.get("/v1/calendar-connections", headers=auth(EXPERT))
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == [body["id"]]
    assert refresh_token not in listed.text

    assert sorted(queue.queued) == [("sync", body["id"]), ("watch", body["id"])]
    assert sorted(queue.run()) == [("sync", body["id"], "active"), ("watch", body["id"], "active")]
    assert len(busy_times(client)) == 1
    (channel,) = channels(store, body["id"], live=True)
    google_side = fake_channel(fake, channel["id"])
    assert google_side["address"] == f"{PUBLIC_BASE}/v1/webhooks/google"
    assert google_side["calendarId"] == ACCOUNT
    assert channel["token_hash"] == hash_channel_token(google_side["token"])
    assert google_side["token"] not in channel["token_hash"]


def test_reconnecting_the_same_account_reuses_the_connection(
    client: TestClient, oauth: FakeGoogleOAuth, queue: RecordingQueue
) -> None:
    first = connect(client, oauth)
    queue.run()
    second = connect(client, oauth)
    assert second["id"] == first["id"]
    assert len(client.get("/v1/calendar-connections", headers=auth(EXPERT)).json()["items"]) == 1


def _authorize(client: TestClient) -> str:
    return client.post("/v1/calendar-connections/google/authorize", headers=auth(EXPERT)).json()["authorizationUrl"]


def test_unknown_missing_and_reused_states_are_problems(client: TestClient, oauth: FakeGoogleOAuth) -> None:
    assert_problem(client.get("/v1/oauth/google/callback", params={"code": "x", "state": "nope"}), 400,
                   "validation_error")
    assert_problem(client.get("/v1/oauth/google/callback", params={"code": "x"}), 400, "validation_error")
    assert_problem(client.get("/v1/oauth/google/callback", params={"state": "s" * 5000}), 422, "validation_error")

    url = _authorize(client)
    code = oauth.approve(url, ACCOUNT)
    state = _query(url)["state"]
    assert client.get("/v1/oauth/google/callback", params={"code": code, "state": state}).status_code == 201
    assert_problem(client.get("/v1/oauth/google/callback", params={"code": code, "state": state}), 400,
                   "validation_error")


def test_expired_state_is_a_problem(client: TestClient, oauth: FakeGoogleOAuth, store: Store) -> None:
    url = _authorize(client)
    with store.write() as conn:
        conn.execute(update(oauth_states).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = client.get("/v1/oauth/google/callback", params={"code": oauth.approve(url, ACCOUNT),
                                                               "state": _query(url)["state"]})
    assert "expired" in assert_problem(response, 400, "validation_error")["detail"]


def test_declined_consent_and_missing_scopes_are_problems(
    client: TestClient, oauth: FakeGoogleOAuth, queue: RecordingQueue
) -> None:
    url = _authorize(client)
    declined = client.get("/v1/oauth/google/callback", params={"error": "access_denied", "state": _query(url)["state"]})
    assert_problem(declined, 400, "validation_error")

    url = _authorize(client)
    code = oauth.approve(url, ACCOUNT, scope="openid https://www.googleapis.com/auth/userinfo.email")
    response = client.get("/v1/oauth/google/callback", params={"code": code, "state": _query(url)["state"]})
    body = assert_problem(response, 400, "validation_error")
    assert "calendar.events" in body["detail"]
    assert queue.queued == []
    assert client.get("/v1/calendar-connections", headers=auth(EXPERT)).json()["items"] == []


def test_a_code_for_another_verifier_is_refused(client: TestClient, oauth: FakeGoogleOAuth) -> None:
    """The verifier of one authorization cannot complete another: PKCE binds code and state."""
    first, second = _authorize(client), _authorize(client)
    code = oauth.approve(first, ACCOUNT)
    response = client.get("/v1/oauth/google/callback", params={"code": code, "state": _query(second)["state"]})
    assert_problem(response, 400, "validation_error")


def test_authorize_needs_a_signed_in_expert(client: TestClient) -> None:
    assert_problem(client.post("/v1/calendar-connections/google/authorize"), 401, "unauthenticated")


def test_authorize_without_a_google_client_is_not_found(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A server with no Google OAuth client has no Google connections: a 404 problem, never a 5xx."""
    from api.app import create_app
    from tests.support.api import make_settings

    settings = make_settings(tmp_path, google_client_id=None, google_client_secret=None)
    with TestClient(create_app(store, settings)) as plain:
        response = plain.post("/v1/calendar-connections/google/authorize", headers=auth(EXPERT))
    assert_problem(response, 404, "not_found")
    assert "CALBOOK_GOOGLE_CLIENT_ID" in response.json()["detail"]


def test_a_flow_started_from_the_schedule_page_comes_back_to_it(
    client: TestClient, oauth: FakeGoogleOAuth, queue: RecordingQueue,
) -> None:
    """The pages (docs/web.md) start the consent with a form post; the callback redirects back with the outcome."""
    import re

    from tests.support.api import token

    # The public base URL is HTTPS, so the session cookie is Secure: the browser is on HTTPS too.
    client = TestClient(client.app, base_url=PUBLIC_BASE)
    assert client.get(f"/login?token={token(EXPERT, ttl=300)}", follow_redirects=False).status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/schedule").text)
    assert csrf
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    started = client.post("/schedule/connections/google", content=f"csrf={csrf.group(1)}", headers=form,
                          follow_redirects=False)
    assert started.status_code == 303 and "calbook_oauth_return=schedule" in started.headers["set-cookie"]
    url = started.headers["location"]
    back = client.get("/v1/oauth/google/callback", params={"code": oauth.approve(url, ACCOUNT),
                                                           "state": _query(url)["state"]}, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/schedule?done=google", back.text
    page = client.get(back.headers["location"]).text
    assert "Google Calendar is connected" in page and ACCOUNT in page
    # A declined consent comes back in words too, and the cookie is spent: an API client gets JSON again.
    again = client.post("/schedule/connections/google", content=f"csrf={csrf.group(1)}", headers=form,
                        follow_redirects=False).headers["location"]
    declined = client.get("/v1/oauth/google/callback", follow_redirects=False,
                          params={"error": "access_denied", "state": _query(again)["state"]})
    assert declined.status_code == 303 and "google_error=" in declined.headers["location"]
    assert "was not connected" in client.get(declined.headers["location"]).text
    assert_problem(client.get("/v1/oauth/google/callback", params={"code": "x", "state": "nope"}), 400,
                   "validation_error")
