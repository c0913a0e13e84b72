"""``/healthz`` and ``/readyz`` (database, broker, a recent worker heartbeat)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from api.app import create_app
from booking_engine.clock import utcnow
from booking_engine.services import heartbeats
from booking_engine.store.db import Store
from tests.support.api import assert_problem, make_settings


def test_liveness_and_readiness(client, store):
    heartbeats.register(store, "celery@a/1", "celery@a", 1)
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "worker": "ok"}}


def test_no_recent_worker_is_503_naming_it(client, store):
    body = assert_problem(client.get("/readyz"), 503, "service_unavailable")
    assert "worker" in body["detail"] and "database" not in body["detail"] and "broker" not in body["detail"]
    # A heartbeat older than CALBOOK_WORKER_HEARTBEAT_MAX_AGE_SECONDS (60) is a dead worker.
    heartbeats.register(store, "celery@a/1", "celery@a", 1, now=utcnow() - timedelta(seconds=61))
    assert_problem(client.get("/readyz"), 503, "service_unavailable")
    heartbeats.beat(store, "celery@a/1", "celery@a", 1)
    assert client.get("/readyz").status_code == 200


def test_restarted_node_replaces_its_dead_process(store):
    heartbeats.register(store, "celery@a/old", "celery@a", 1)
    heartbeats.register(store, "celery@b/1", "celery@b", 2)
    assert heartbeats.register(store, "celery@a/new", "celery@a", 3) == ["celery@a/old"]
    seen = heartbeats.recent_workers(store, timedelta(minutes=1))
    assert sorted(w.worker_id for w in seen) == ["celery@a/new", "celery@b/1"]
    heartbeats.unregister(store, "celery@a/new")
    assert [w.worker_id for w in heartbeats.recent_workers(store, timedelta(minutes=1))] == ["celery@b/1"]


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
