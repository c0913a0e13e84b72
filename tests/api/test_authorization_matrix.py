"""Every route against every kind of caller: the booking's user, its expert, a stranger, no token,
an expired token, and a token signed with another key.

Callers run in a fixed order (the three without a valid token, then the stranger, then the
parties in the order each row lists them) so a denied call that wrongly changed state would
show up in the next caller's answer. Nothing may answer 500, and nothing a stranger sees
may mention the booking, the request or the subscription.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from booking_engine.clock import utcnow
from booking_engine.services import availability, connections, heartbeats
from booking_engine.store.db import Store
from connectors.secrets import encrypt_json
from tests.support.api import (
    EXPERT,
    OTHER_SECRET,
    STRANGER,
    USER,
    assert_problem,
    at,
    auth,
    booking_body,
    day_ahead,
)
from tests.support.factories import publish, settings_body

# A CalDAV server or feed nobody listens on: connecting dials it and must answer 502, never 500.
DEAD_URL = "http://127.0.0.1:9/dav/"
NO_TOKEN = "no-token"
EXPIRED = "expired"
OTHER_KEY = "other-key"
UNAUTHENTICATED = (NO_TOKEN, EXPIRED, OTHER_KEY)


def headers_for(actor: str) -> dict[str, str]:
    if actor == NO_TOKEN:
        return {}
    if actor == EXPIRED:
        return auth(USER, ttl=-3600)
    if actor == OTHER_KEY:
        return auth(USER, secret=OTHER_SECRET)
    return auth(actor)


@dataclass(frozen=True)
class Row:
    method: str
    path: Callable[[dict[str, str]], str]
    expected: dict[str, int]
    body: Callable[[dict[str, str]], Any] | None = None
    headers: dict[str, str] | None = None
    public: bool = False


def _day(n: int) -> str:
    return day_ahead(n).isoformat()


def _request_body(_: dict[str, str]) -> dict[str, Any]:
    return {"expertId": EXPERT, "requestedDurationMinutes": 60, "type": "in_person",
            "proposedSlots": [{"startTime": at(day_ahead(4), 15)}]}


ROWS: dict[str, Row] = {
    "healthz": Row("GET", lambda w: "/healthz", {STRANGER: 200, USER: 200}, public=True),
    "readyz": Row("GET", lambda w: "/readyz", {STRANGER: 200, USER: 200}, public=True),
    "openapi": Row("GET", lambda w: "/openapi.json", {STRANGER: 200, USER: 200}, public=True),
    "get-me": Row("GET", lambda w: "/v1/me", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "put-me": Row("PUT", lambda w: "/v1/me", {STRANGER: 200, USER: 200, EXPERT: 200},
                  body=lambda w: {"displayName": "Someone"}),
    "list-experts": Row("GET", lambda w: "/v1/experts", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "get-expert": Row("GET", lambda w: f"/v1/experts/{EXPERT}", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "get-availability": Row("GET", lambda w: f"/v1/experts/{EXPERT}/availability",
                            {STRANGER: 200, USER: 200, EXPERT: 200}),
    "put-availability": Row("PUT", lambda w: f"/v1/experts/{EXPERT}/availability",
                            {STRANGER: 403, USER: 403, EXPERT: 200},
                            body=lambda w: settings_body(), headers={"If-Match": '"1"'}),
    "list-exceptions": Row("GET", lambda w: f"/v1/experts/{EXPERT}/exceptions",
                           {STRANGER: 200, USER: 200, EXPERT: 200}),
    "put-exception": Row("PUT", lambda w: f"/v1/experts/{EXPERT}/exceptions/{_day(6)}",
                         {STRANGER: 403, USER: 403, EXPERT: 200}, body=lambda w: {"type": "unavailable"}),
    "delete-exception": Row("DELETE", lambda w: f"/v1/experts/{EXPERT}/exceptions/{_day(5)}",
                            {STRANGER: 403, USER: 403, EXPERT: 204}),
    "slots": Row("GET", lambda w: f"/v1/experts/{EXPERT}/slots?date={_day(1)}&duration=60",
                 {STRANGER: 200, USER: 200, EXPERT: 200}),
    "calendar": Row("GET", lambda w: f"/v1/experts/{EXPERT}/calendar?month={_day(1)[:7]}",
                    {STRANGER: 200, USER: 200, EXPERT: 200}),
    "busy": Row("GET", lambda w: f"/v1/experts/{EXPERT}/busy?from={_day(0)}T00:00:00Z&to={_day(9)}T00:00:00Z",
                {STRANGER: 200, USER: 200, EXPERT: 200}),
    "create-booking": Row("POST", lambda w: "/v1/bookings", {STRANGER: 201, USER: 409, EXPERT: 422},
                          body=lambda w: booking_body(day_ahead(3), hour=14)),
    "list-bookings": Row("GET", lambda w: "/v1/bookings", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "list-bookings-as-expert": Row("GET", lambda w: "/v1/bookings?as=expert", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "get-booking": Row("GET", lambda w: f"/v1/bookings/{w['booking']}", {STRANGER: 404, USER: 200, EXPERT: 200}),
    "get-booking-ics": Row("GET", lambda w: f"/v1/bookings/{w['booking']}.ics",
                           {STRANGER: 404, USER: 200, EXPERT: 200}),
    "confirm": Row("POST", lambda w: f"/v1/bookings/{w['booking']}/confirm", {STRANGER: 404, USER: 403, EXPERT: 200}),
    "decline": Row("POST", lambda w: f"/v1/bookings/{w['booking']}/decline", {STRANGER: 404, USER: 403, EXPERT: 200},
                   body=lambda w: {"reason": "no"}),
    "cancel": Row("POST", lambda w: f"/v1/bookings/{w['booking']}/cancel", {STRANGER: 404, USER: 200, EXPERT: 409},
                  body=lambda w: {"reason": "no"}),
    "reschedule": Row("POST", lambda w: f"/v1/bookings/{w['booking']}/reschedule",
                      {STRANGER: 404, USER: 200, EXPERT: 200}, body=lambda w: {"newStartTime": at(day_ahead(2), 10)}),
    # Payments are recorded by a service key, never a user: 403 to every user, before the booking is looked up.
    "payment": Row("POST", lambda w: f"/v1/bookings/{w['booking']}/payment", {STRANGER: 403, USER: 403, EXPERT: 403},
                   body=lambda w: {"paymentId": "pi_1", "amountCents": 6000, "currency": "USD"}),
    "rotate-feed": Row("POST", lambda w: "/v1/me/calendar-feed", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "delete-feed": Row("DELETE", lambda w: "/v1/me/calendar-feed", {STRANGER: 404, USER: 404, EXPERT: 404}),
    # The feed's URL is its credential: no token needed, and an unknown one is 404 to everyone.
    "calendar-feed": Row("GET", lambda w: "/v1/calendar-feeds/" + "A" * 43 + ".ics",
                         {NO_TOKEN: 404, EXPIRED: 404, OTHER_KEY: 404, STRANGER: 404, USER: 404}, public=True),
    "no-show": Row("POST", lambda w: f"/v1/bookings/{w['booking']}/no-show", {STRANGER: 404, USER: 403, EXPERT: 409}),
    "create-request": Row("POST", lambda w: "/v1/booking-requests", {STRANGER: 201, USER: 201, EXPERT: 422},
                          body=_request_body),
    "list-requests": Row("GET", lambda w: "/v1/booking-requests", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "get-request": Row("GET", lambda w: f"/v1/booking-requests/{w['request']}",
                       {STRANGER: 404, USER: 200, EXPERT: 200}),
    "respond": Row("POST", lambda w: f"/v1/booking-requests/{w['request']}/respond",
                   {STRANGER: 404, USER: 403, EXPERT: 200}, body=lambda w: {"accept": True, "slotIndex": 0}),
    "withdraw": Row("POST", lambda w: f"/v1/booking-requests/{w['request']}/withdraw",
                    {STRANGER: 404, EXPERT: 403, USER: 200}),
    "list-connections": Row("GET", lambda w: "/v1/calendar-connections", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "get-connection": Row("GET", lambda w: f"/v1/calendar-connections/{w['connection']}",
                          {STRANGER: 404, USER: 404, EXPERT: 200}),
    # The world's connection is an ICS feed: one calendar, nothing to choose (422 for its expert).
    "choose-calendars": Row("PATCH", lambda w: f"/v1/calendar-connections/{w['connection']}",
                            {STRANGER: 404, USER: 404, EXPERT: 422},
                            body=lambda w: {"busyCalendars": ["https://feeds.example/other.ics"]}),
    "sync-connection": Row("POST", lambda w: f"/v1/calendar-connections/{w['connection']}/sync",
                           {STRANGER: 404, USER: 404, EXPERT: 202}),
    "connect-caldav": Row("POST", lambda w: "/v1/calendar-connections/caldav", {STRANGER: 502, EXPERT: 502},
                          body=lambda w: {"url": DEAD_URL, "username": "u", "password": "p"}),
    "connect-ics": Row("POST", lambda w: "/v1/calendar-connections/ics", {STRANGER: 502, EXPERT: 502},
                       body=lambda w: {"url": DEAD_URL + "feed.ics"}),
    "google-authorize": Row("POST", lambda w: "/v1/calendar-connections/google/authorize",
                            {STRANGER: 404, EXPERT: 404}),
    "google-callback": Row("GET", lambda w: "/v1/oauth/google/callback?code=c&state=unknown",
                           {NO_TOKEN: 400, EXPIRED: 400, OTHER_KEY: 400, STRANGER: 400, USER: 400}, public=True),
    "google-webhook": Row("POST", lambda w: "/v1/webhooks/google", {STRANGER: 200, USER: 200}, public=True,
                          headers={"X-Goog-Channel-ID": "nope", "X-Goog-Resource-State": "exists"}),
    "microsoft-authorize": Row("POST", lambda w: "/v1/calendar-connections/microsoft/authorize",
                               {STRANGER: 404, EXPERT: 404}),
    "microsoft-callback": Row("GET", lambda w: "/v1/oauth/microsoft/callback?code=c&state=unknown",
                              {NO_TOKEN: 400, EXPIRED: 400, OTHER_KEY: 400, STRANGER: 400, USER: 400}, public=True),
    "microsoft-webhook": Row("POST", lambda w: "/v1/webhooks/microsoft",
                             {NO_TOKEN: 202, EXPIRED: 202, OTHER_KEY: 202, STRANGER: 202, USER: 202}, public=True),
    "delete-connection": Row("DELETE", lambda w: f"/v1/calendar-connections/{w['connection']}",
                             {STRANGER: 404, USER: 404, EXPERT: 204}),
    "list-subscriptions": Row("GET", lambda w: "/v1/webhook-subscriptions", {STRANGER: 200, USER: 200, EXPERT: 200}),
    "create-subscription": Row("POST", lambda w: "/v1/webhook-subscriptions", {STRANGER: 201, USER: 201, EXPERT: 201},
                               body=lambda w: {"url": "https://hooks.example.com/x"}),
    "delete-subscription": Row("DELETE", lambda w: f"/v1/webhook-subscriptions/{w['subscription']}",
                               {STRANGER: 404, EXPERT: 404, USER: 204}),
}


@pytest.fixture
def world(client: TestClient, store: Store) -> dict[str, str]:
    """A pending booking, a pending request and a webhook subscription of USER with EXPERT."""
    publish(store, EXPERT, now=utcnow())
    heartbeats.register(store, "celery@matrix/1", "celery@matrix", 1)  # a worker runs: /readyz is 200
    availability.set_exception(store, EXPERT, EXPERT, day_ahead(5), {"type": "unavailable"})
    booking = client.post("/v1/bookings", json=booking_body(topic="private-topic-xyz"), headers=auth(USER)).json()
    request = client.post("/v1/booking-requests", json=_request_body({}), headers=auth(USER)).json()
    subscription = client.post("/v1/webhook-subscriptions", json={"url": "https://user.example/hook-xyz"},
                               headers=auth(USER)).json()
    key = client.app.state.settings.resolved_encryption_key()  # type: ignore[attr-defined]
    feed = "https://feeds.example/private-feed-xyz.ics"
    connection = connections.create_connection(
        store, EXPERT, EXPERT, "ics", account=None, credentials=encrypt_json({"url": feed}, key),
        busy_calendars=[feed], destination_calendar=None, extra_config={"url": feed},
    )
    return {"booking": booking["id"], "request": request["id"], "subscription": subscription["id"],
            "connection": connection.id}


def test_every_route_is_in_the_matrix(app, world):
    covered = {(row.method, row.path(world).split("?")[0]) for row in ROWS.values()}
    for template, item in app.openapi()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(template)) + "$")
        for method in item:
            assert any(m == method.upper() and pattern.match(p) for m, p in covered), (method, template)


@pytest.mark.parametrize("name", list(ROWS))
def test_route_against_every_caller(name: str, client: TestClient, world: dict[str, str]) -> None:
    row = ROWS[name]
    secrets = [world["booking"], world["request"], world["subscription"], world["connection"],
               "private-topic-xyz", "hook-xyz", "private-feed-xyz"]
    for actor in (*UNAUTHENTICATED, *row.expected):
        body = row.body(world) if row.body else None
        response = client.request(row.method, row.path(world), json=body,
                                  headers={**headers_for(actor), **(row.headers or {})})
        # Only an upstream failure the row names (502: the calendar server is unreachable) may be 5xx.
        assert response.status_code < 500 or response.status_code == row.expected.get(actor), (actor, response.text)
        if actor in UNAUTHENTICATED and not row.public:
            assert_problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"].startswith("Bearer")
            continue
        expected = row.expected.get(actor, 200)
        assert response.status_code == expected, (actor, response.status_code, response.text)
        if expected >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
        content_type = response.headers.get("content-type", "")
        if actor == STRANGER and name not in ("openapi",):
            # ``instance`` echoes the URL the stranger sent; everything else must be silent.
            text = response.text
            if content_type.startswith("application/problem+json"):
                text = str({k: v for k, v in response.json().items() if k != "instance"})
            leaked = [s for s in secrets if s in text]
            assert not leaked, (actor, leaked, response.text)


#: The routes a service key may call: the rest treat it as what it is not, a user (docs/security.md#service-keys).
KEY_ROUTES = {"get-booking": 200, "payment": 409}


def test_a_service_key_with_every_scope_is_refused_wherever_a_user_is_needed(
    client: TestClient, store: Store, world: dict[str, str]
) -> None:
    """One world for every route: a refused call changes nothing, so the rows cannot disturb each other."""
    from booking_engine.services import service_keys

    secret = service_keys.create_key(store, "all-scopes", ["payments", "bookings:read"])[1]
    for name, row in ROWS.items():
        if row.public:
            continue
        response = client.request(row.method, row.path(world), json=row.body(world) if row.body else None,
                                  headers={"Authorization": f"Bearer {secret}", **(row.headers or {})})
        if name in KEY_ROUTES:
            # The world's booking is not on hold, so its payment is refused for its state, not for the caller.
            assert response.status_code == KEY_ROUTES[name], (name, response.text)
        else:
            assert response.status_code == 403, (name, response.text)
            assert_problem(response, 403, "forbidden")
