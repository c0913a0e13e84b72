"""Service keys on the wire (docs/security.md#service-keys): never a user, only what its scopes allow."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from booking_engine.errors import InvalidState, NotFound, ValidationError
from booking_engine.services import service_keys
from booking_engine.store.db import Store
from booking_engine.store.tables import service_keys as keys_table
from tests.support.api import EXPERT, USER, assert_problem, auth, booking_body


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_key(store: Store, name: str, *scopes: str) -> str:
    return service_keys.create_key(store, name, list(scopes))[1]


def test_a_read_key_reads_any_booking_by_id_and_every_use_is_logged_with_its_name(
    client: TestClient, store: Store, booking: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    secret = make_key(store, "calls", "bookings:read")
    with caplog.at_level(logging.INFO, logger="api.auth"):
        got = client.get(f"/v1/bookings/{booking['id']}", headers=bearer(secret))
    assert got.status_code == 200, got.text
    assert got.json()["id"] == booking["id"] and got.json()["userId"] == USER
    used = [r for r in caplog.records if r.getMessage() == "service key used"]
    assert len(used) == 1 and used[0].service_key == "calls" and used[0].path == f"/v1/bookings/{booking['id']}"
    assert secret not in caplog.text
    missing = client.get("/v1/bookings/no-such-booking", headers=bearer(secret))
    assert_problem(missing, 404, "not_found")


def test_a_key_without_the_scope_is_forbidden(client: TestClient, store: Store, booking: dict[str, Any]) -> None:
    secret = make_key(store, "payments", "payments")
    body = assert_problem(client.get(f"/v1/bookings/{booking['id']}", headers=bearer(secret)), 403, "forbidden")
    assert "bookings:read" in body["detail"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/bookings"),
    ("GET", "/v1/bookings"),
    ("GET", f"/v1/experts/{EXPERT}/availability"),
    ("GET", f"/v1/experts/{EXPERT}/slots?date=2030-01-01&duration=60"),
    ("GET", "/v1/me"),
])
def test_a_key_is_never_a_user(client: TestClient, store: Store, expert: Any, method: str, path: str) -> None:
    secret = make_key(store, "everything", "payments", "bookings:read")
    response = client.request(method, path, headers=bearer(secret), json=booking_body() if method == "POST" else None)
    assert_problem(response, 403, "forbidden")


def test_unknown_malformed_and_revoked_keys_are_unauthenticated(
    client: TestClient, store: Store, booking: dict[str, Any]
) -> None:
    secret = make_key(store, "calls", "bookings:read")
    path = f"/v1/bookings/{booking['id']}"
    assert client.get(path, headers=bearer(secret)).status_code == 200
    for wrong in ("cbk_" + "A" * 43, "cbk_short", secret[:-1] + ("A" if secret[-1] != "A" else "B")):
        response = assert_problem(client.get(path, headers=bearer(wrong)), 401, "unauthenticated")
        assert response  # the same answer for each
    service_keys.revoke_key(store, "calls")
    assert_problem(client.get(path, headers=bearer(secret)), 401, "unauthenticated")
    # A user's token still works on the same route.
    assert client.get(path, headers=auth(USER)).status_code == 200


def test_only_the_hash_is_stored_and_names_are_unique_among_active_keys(store: Store) -> None:
    key, secret = service_keys.create_key(store, "payments", ["payments"])
    with store.read() as conn:
        rows = conn.execute(select(keys_table)).mappings().all()
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(dict(rows[0])) and rows[0]["prefix"] == secret[:12] == key.prefix
    with pytest.raises(InvalidState):
        service_keys.create_key(store, "payments", ["payments"])
    service_keys.revoke_key(store, key.id)
    with pytest.raises(NotFound):
        service_keys.revoke_key(store, "payments")
    again, _ = service_keys.create_key(store, "payments", ["payments", "bookings:read"])
    listed = service_keys.list_keys(store)
    assert [(k.name, k.active) for k in listed] == [("payments", False), ("payments", True)]
    assert listed[1].id == again.id and {str(s) for s in listed[1].scopes} == {"payments", "bookings:read"}


@pytest.mark.parametrize(("name", "scopes"), [
    ("", ["payments"]), ("has space", ["payments"]), ("x" * 65, ["payments"]), ("ok", []), ("ok", ["admin"]),
])
def test_bad_names_and_scopes_are_refused(store: Store, name: str, scopes: list[str]) -> None:
    with pytest.raises(ValidationError):
        service_keys.create_key(store, name, scopes)
