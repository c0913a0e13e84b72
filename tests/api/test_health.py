"""``/healthz`` and ``/readyz`` (database and broker)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from booking_engine.store.db import Store
from tests.api.conftest import assert_problem, make_settings


def test_liveness_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_unreachable_broker_is_503(store, tmp_path):
    settings = make_settings(tmp_path, broker_url="redis://:hunter2@127.0.0.1:1/0")
    with TestClient(create_app(store, settings)) as client:
        response = client.get("/readyz")
    body = assert_problem(response, 503, "service_unavailable")
    assert "broker" in body["detail"] and "database" not in body["detail"] and "hunter2" not in response.text


def test_unreachable_database_is_503(tmp_path):
    broken = Store.from_url(f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}")
    with TestClient(create_app(broken, make_settings(tmp_path))) as client:
        body = assert_problem(client.get("/readyz"), 503, "service_unavailable")
    assert "database" in body["detail"]
    broken.dispose()


def test_openapi_and_docs(client):
    document = client.get("/openapi.json").json()
    assert "/v1/bookings/{booking_id}.ics" in document["paths"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    create = document["paths"]["/v1/bookings"]["post"]["responses"]
    assert "application/problem+json" in create["409"]["content"]
    assert client.get("/docs").status_code == 200
