"""``/metrics`` through the app on both databases: the Prometheus parser reads it, counters move
with the requests, the state gauges come from the database, and a token can guard it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from tests.support.api import USER, auth, booking_body, make_settings


def _scrape(client, **headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_bookings_requests_and_the_outbox_show_in_metrics(client, expert):
    before = _scrape(client)
    assert client.post("/v1/bookings", json=booking_body(), headers=auth(USER)).status_code == 201
    assert client.post("/v1/bookings", json=booking_body(hour=20), headers=auth(USER)).status_code == 422
    after = _scrape(client)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("calbook_bookings_total", outcome="pending") == 1
    assert moved("calbook_bookings_total", outcome="outside_availability") == 1
    assert moved("calbook_http_requests_total", method="POST", route="/v1/bookings", status="201") == 1
    assert moved("calbook_http_requests_total", method="POST", route="/v1/bookings", status="422") == 1
    assert moved("calbook_http_request_duration_seconds_count", method="POST", route="/v1/bookings") == 2
    # No worker runs here: the booking's events wait in the outbox, and no worker is seen.
    assert after[("calbook_outbox_backlog", ())] >= 1 and after[("calbook_outbox_oldest_age_seconds", ())] >= 0
    assert after[("calbook_database_up", ())] == 1 and after[("calbook_workers_seen", ())] == 0
    unknown = client.get("/v1/no/such/path", headers=auth(USER))
    assert unknown.status_code == 404
    assert ("calbook_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404"))) \
        in _scrape(client)


def test_openmetrics_when_the_scraper_prefers_it(client, expert):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    names = {family.name for family in openmetrics_families(response.text)}
    assert {"calbook_http_requests", "calbook_outbox_backlog", "calbook_database_up"} <= names


def test_a_metrics_token_guards_the_scrape(store, tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(store, make_settings(tmp_path, metrics_token="scrape-me-0123456789"))
    with TestClient(app) as guarded:
        refused = guarded.get("/metrics")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
        assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert _scrape(guarded, Authorization="Bearer scrape-me-0123456789")
