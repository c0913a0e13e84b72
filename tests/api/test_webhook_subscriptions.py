"""``/v1/webhook-subscriptions``: owner-scoped; the secret is shown once and stored encrypted."""

from __future__ import annotations

from sqlalchemy import select

from booking_engine.store.tables import webhook_subscriptions
from connectors.secrets import decrypt_json
from tests.support.api import STRANGER, USER, assert_problem, auth


def test_create_list_delete(client, store, api_settings):
    created = client.post("/v1/webhook-subscriptions", headers=auth(USER),
                          json={"url": "https://hooks.example.com/calbook", "events": ["booking.created"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["booking.created"] and body["active"]
    assert created.headers["location"] == f"/v1/webhook-subscriptions/{body['id']}"
    with store.read() as conn:
        stored = conn.execute(select(webhook_subscriptions.c.secret)).scalar_one()
    assert body["secret"] not in stored
    assert decrypt_json(stored, api_settings.resolved_encryption_key())["secret"] == body["secret"]

    listed = client.get("/v1/webhook-subscriptions", headers=auth(USER)).json()["items"]
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]
    assert client.get("/v1/webhook-subscriptions", headers=auth(STRANGER)).json() == {"items": []}
    assert_problem(client.delete(f"/v1/webhook-subscriptions/{body['id']}", headers=auth(STRANGER)), 404,
                   "not_found")
    assert client.delete(f"/v1/webhook-subscriptions/{body['id']}", headers=auth(USER)).status_code == 204
    assert_problem(client.delete(f"/v1/webhook-subscriptions/{body['id']}", headers=auth(USER)), 404, "not_found")


def test_subscription_validation(client):
    for body in ({"url": "ftp://example.com"}, {"url": "https://x.example", "events": ["booking.exploded"]},
                 {"url": "https://x.example", "events": []}, {"url": 42}, {"url": "https://x.example", "x": 1}):
        assert_problem(client.post("/v1/webhook-subscriptions", json=body, headers=auth(USER)), 422,
                       "validation_error")
    every = client.post("/v1/webhook-subscriptions", json={"url": "https://x.example/h"}, headers=auth(USER))
    assert every.status_code == 201 and "booking.confirmed" in every.json()["events"]
