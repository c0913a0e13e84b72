"""User-given URLs the server would call (webhooks, CalDAV, ICS) must be public by default (SSRF).

With ``allow_private_urls`` off (the default of a real deployment) the three endpoints refuse a
URL on a loopback, private or link-local address, or a host that does not resolve, with 422
``validation_error`` on ``url``, before anything is dialled or stored. With it on (self-hosters,
and every other test here) they go ahead: a webhook subscription is created, and a CalDAV or
ICS connect dials the URL, which on a dead local port is the usual 502 ``calendar_unreachable``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections, outbox, users, webhook_subscriptions
from tests.support.api import EXPERT, assert_problem, auth, make_settings
from tests.support.caldav_servers import free_port

HOOKS = "/v1/webhook-subscriptions"
CALDAV = "/v1/calendar-connections/caldav"
ICS = "/v1/calendar-connections/ics"


def _client(store: Store, tmp_path: Path, allow: bool) -> Iterator[TestClient]:
    with TestClient(create_app(store, make_settings(tmp_path, allow_private_urls=allow))) as client:
        yield client


@pytest.fixture
def strict(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    """The secure default: private URLs refused."""
    yield from _client(store, tmp_path, allow=False)


@pytest.fixture
def lenient(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    """``CALBOOK_ALLOW_PRIVATE_URLS=true``."""
    yield from _client(store, tmp_path, allow=True)


def _bodies(url: str) -> list[tuple[str, dict[str, str]]]:
    return [
        (HOOKS, {"url": url}),
        (CALDAV, {"url": url, "username": "alice", "password": "s3cret-pw"}),
        (ICS, {"url": url}),
    ]


def _stored(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (webhook_subscriptions, calendar_connections, outbox, users)}


def _refused(client: TestClient, path: str, body: dict[str, str]) -> dict[str, object]:
    problem = assert_problem(client.post(path, json=body, headers=auth(EXPERT)), 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["url"], problem  # type: ignore[union-attr]
    return problem


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/dav/",
    "http://10.0.0.5/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
])
def test_private_urls_are_refused_and_nothing_is_written(strict: TestClient, store: Store, url: str) -> None:
    before = _stored(store)
    target = url.format(port=free_port())
    for path, body in _bodies(target):
        problem = _refused(strict, path, body)
        assert problem["detail"] == (
            "url points at a private or local network address; set CALBOOK_ALLOW_PRIVATE_URLS=true to allow"
        )
        assert target not in str(problem)
    assert _stored(store) == before


def test_a_webcal_feed_is_checked_as_https(strict: TestClient, store: Store) -> None:
    before = _stored(store)
    problem = _refused(strict, ICS, {"url": f"webcal://127.0.0.1:{free_port()}/x.ics"})
    assert "private or local network" in str(problem["detail"])
    assert _stored(store) == before


def test_a_host_that_does_not_resolve_is_refused(strict: TestClient, store: Store) -> None:
    before = _stored(store)
    for path, body in _bodies("https://calbook-test.invalid/x?token=private-abc"):
        problem = _refused(strict, path, body)
        assert "does not resolve" in str(problem["detail"]) and "private-abc" not in str(problem)
    assert _stored(store) == before


def test_the_existing_checks_still_answer_first(strict: TestClient) -> None:
    """A URL with credentials or a wrong scheme keeps its own message."""
    caldav = _refused(strict, CALDAV, {"url": "http://alice:pw@127.0.0.1/", "username": "a", "password": "b"})
    assert "username and password" in str(caldav["detail"])
    assert "webcal" in str(_refused(strict, ICS, {"url": "file:///etc/passwd"})["detail"])


def test_allowed_private_urls_proceed(lenient: TestClient, store: Store) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    hook = lenient.post(HOOKS, json={"url": dead + "hook"}, headers=auth(EXPERT))
    assert hook.status_code == 201, hook.text
    assert_problem(lenient.post(CALDAV, json=_bodies(dead)[1][1], headers=auth(EXPERT)), 502,
                   "calendar_unreachable")
    assert_problem(lenient.post(ICS, json={"url": dead + "x.ics"}, headers=auth(EXPERT)), 502,
                   "calendar_unreachable")
    assert _stored(store)["calendar_connections"] == 0
