"""SSRF through CalDAV at the API and in the worker (``docs/security.md#url-policy``), on both databases.

``CALBOOK_ALLOW_PRIVATE_URLS=127.0.0.1`` lets the tests' Radicale (through its proxy) in and
keeps every other local address out; ``InternalService`` on 127.0.0.2 records whatever an SSRF
would have reached. The API must answer 422 with nothing of the internal hop in it, store
nothing, and stop verifying after its deadline; the worker must check again, at every sync and
push, where the stored URLs lead now.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from booking_engine.model import AvailabilitySettings
from booking_engine.services import bookings, connections
from booking_engine.store.db import Store
from booking_engine.store.tables import calendar_connections
from config.settings import Settings
from tests.support.api import assert_problem, auth, make_settings
from tests.support.caldav_servers import PASSWORD, USERNAME, Fault, FaultProxy
from tests.support.caldav_servers.internal import InternalService, Tarpit, assert_no_echo
from tests.support.sync import EXPERT, USER, connect, day
from tests.support.worker import ENCRYPTION_KEY
from worker import wiring
from worker.calendar.push import push_booking

CALDAV = "/v1/calendar-connections/caldav"


@pytest.fixture
def internal() -> Iterator[InternalService]:
    service = InternalService()
    yield service
    service.stop()


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, encryption_key=ENCRYPTION_KEY, allow_private_urls=("127.0.0.1",))
    with TestClient(create_app(store, settings)) as test_client:
        yield test_client


def stored(store: Store) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(calendar_connections)).scalar_one()


def clean(text: str) -> None:
    assert_no_echo(text)


def connect_body(url: str) -> dict[str, str]:
    return {"url": url, "username": USERNAME, "password": PASSWORD}


def test_connect_refuses_a_redirect_to_an_internal_address(
    client: TestClient, store: Store, expert: AvailabilitySettings, proxy: FaultProxy, internal: InternalService
) -> None:
    proxy.faults.append(Fault("PROPFIND", 307, headers={"Location": internal.url}))
    problem = assert_problem(client.post(CALDAV, json=connect_body(proxy.url), headers=auth(EXPERT)), 422,
                             "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["url"]
    assert internal.hits == [] and stored(store) == 0
    clean(str(problem))


def test_connect_refuses_a_principal_on_another_host(
    client: TestClient, store: Store, expert: AvailabilitySettings, proxy: FaultProxy, internal: InternalService
) -> None:
    def elsewhere(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        return body.replace(f"<href>/{USERNAME}/</href>".encode(), f"<href>{internal.url}</href>".encode())

    proxy.response_hook = elsewhere
    problem = assert_problem(client.post(CALDAV, json=connect_body(proxy.url), headers=auth(EXPERT)), 422,
                             "validation_error")
    assert "another host" in str(problem["detail"]) and internal.hits == [] and stored(store) == 0
    clean(str(problem))


def test_connect_follows_at_most_three_redirects(
    client: TestClient, store: Store, expert: AvailabilitySettings, proxy: FaultProxy, calendar_url: str
) -> None:
    base = proxy.url.rstrip("/")
    for n in range(1, 5):
        proxy.faults.append(Fault("PROPFIND", 302, match=f"/r{n}/",
                                  headers={"Location": f"{base}/r{n + 1}/" if n < 4 else proxy.url}))
    problem = assert_problem(client.post(CALDAV, json=connect_body(f"{base}/r1/"), headers=auth(EXPERT)), 422,
                             "validation_error")
    assert "more than 3 redirects" in str(problem["detail"]) and stored(store) == 0
    created = client.post(CALDAV, json=connect_body(f"{base}/r2/"), headers=auth(EXPERT))
    assert created.status_code == 201, created.text


def test_connect_gives_up_at_the_verification_deadline(
    client: TestClient, store: Store, expert: AvailabilitySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that answers one byte at a time holds the request no longer than the deadline
    (15 s in production; 2 s here), whatever its per-read timeout."""
    import connectors.factory as factory

    assert factory.PERSON_DEADLINE <= 15 and factory.PERSON_TIMEOUT <= factory.PERSON_DEADLINE
    monkeypatch.setattr(factory, "PERSON_DEADLINE", 2)
    tarpit = Tarpit(pause=0.4)
    try:
        began = time.monotonic()
        response = client.post(CALDAV, json=connect_body(tarpit.url), headers=auth(EXPERT))
        assert time.monotonic() - began < 4
        assert_problem(response, 502, "calendar_unreachable")
        assert stored(store) == 0
    finally:
        tarpit.stop()


@pytest.fixture
def strict_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The worker's settings: only 127.0.0.1 may be called."""
    monkeypatch.setenv("CALBOOK_ALLOW_PRIVATE_URLS", "127.0.0.1")
    yield


def moved_inside(monkeypatch: pytest.MonkeyPatch, name: str, address: str) -> None:
    """DNS now answers ``name`` with an internal address (it passed the API's check earlier)."""
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_the_worker_checks_the_stored_urls_again_at_every_sync_and_push(
    store: Store, expert: AvailabilitySettings, proxy: FaultProxy, calendar_url: str, strict_worker: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trap = InternalService(port=proxy.port)
    moved_inside(monkeypatch, "dav.moved.test", "127.0.0.2")
    calendar = calendar_url.replace("127.0.0.1", "dav.moved.test")
    connection_id = connect(store, calendar)
    try:
        assert wiring.sync_connection(store, connection_id, Settings()).status == "error"
        connection = connections.get_connection(store, EXPERT, connection_id)
        assert "private or local network" in (connection.last_error or "")
        clean(connection.last_error or "")

        booking = bookings.confirm_booking(
            store, EXPERT, bookings.create_booking(store, USER, EXPERT, day(1, 10), 60, "video_call").id)
        push_booking(store, booking.id, settings=Settings())  # the booking's iCalendar body goes nowhere
        assert trap.hits == [] and proxy.seen == []
        clean(connections.get_connection(store, EXPERT, connection_id).last_error or "")
    finally:
        trap.stop()


def test_the_worker_refuses_a_redirect_to_an_internal_address(
    store: Store, expert: AvailabilitySettings, proxy: FaultProxy, calendar_url: str, internal: InternalService,
    strict_worker: None,
) -> None:
    connection_id = connect(store, calendar_url)
    assert wiring.sync_connection(store, connection_id, Settings()).status == "active"
    proxy.faults.append(Fault("PROPFIND", 307, headers={"Location": internal.url}))
    assert wiring.sync_connection(store, connection_id, Settings(), force_reconcile=True).status == "error"
    last_error = connections.get_connection(store, EXPERT, connection_id).last_error or ""
    assert "another host" in last_error and internal.hits == []
    clean(last_error)
