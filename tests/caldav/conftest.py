"""Fixtures: one real Radicale per session, a fault proxy in front of it, a fresh calendar per test."""

from __future__ import annotations

import base64
import http.client
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from connectors.caldav import CalDAVProvider
from tests.caldav.servers import PASSWORD, USERNAME, FaultProxy, RadicaleServer

OWNER = "alice@example.org"
WINDOW_START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW_END = datetime(2025, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _proxy_server(radicale: RadicaleServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(radicale.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(_proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    _proxy_server.reset()
    yield _proxy_server
    _proxy_server.reset()


@dataclass
class Direct:
    """Writes straight to Radicale (not through the proxy), standing in for the expert's own client."""

    port: int

    def request(
        self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:  # noqa: E501
        token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body.encode() if body else None,
                     headers={"Authorization": f"Basic {token}", **(headers or {})})  # fmt: skip
        reply = conn.getresponse()
        data = reply.read()
        conn.close()
        return reply.status, dict(reply.getheaders()), data

    def make_calendar(self, name: str | None = None) -> str:
        path = f"/{USERNAME}/{name or uuid.uuid4().hex}/"
        body = (
            '<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            f"<d:set><d:prop><d:displayname>{name or 'Test'}</d:displayname></d:prop></d:set></c:mkcalendar>"
        )
        status, _, _ = self.request("MKCALENDAR", path, body, {"Content-Type": "application/xml"})
        assert status == 201, status
        return path

    def put(self, path: str, text: str) -> str:
        status, headers, _ = self.request("PUT", path, text, {"Content-Type": "text/calendar"})
        assert status in (201, 204), status
        return headers.get("ETag", "")

    def delete(self, path: str) -> None:
        status, _, _ = self.request("DELETE", path)
        assert status in (200, 204), status

    def get(self, path: str) -> tuple[int, str]:
        status, _, data = self.request("GET", path)
        return status, data.decode()


@pytest.fixture
def direct(radicale: RadicaleServer) -> Direct:
    return Direct(radicale.port)


@pytest.fixture
def calendar_path(direct: Direct) -> str:
    return direct.make_calendar()


@pytest.fixture
def calendar_id(proxy: FaultProxy, calendar_path: str) -> str:
    return proxy.url.rstrip("/") + calendar_path


@pytest.fixture
def provider(proxy: FaultProxy) -> Iterator[CalDAVProvider]:
    with CalDAVProvider(proxy.url, USERNAME, PASSWORD, "Europe/Berlin", [OWNER], timeout=10) as made:
        yield made


def vevent(uid: str, start: str, end: str = "", extra: str = "") -> str:
    """One VCALENDAR resource with one VEVENT; ``start``/``end`` are iCalendar UTC stamps."""
    lines = [f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"DTSTART:{start}"]
    if end:
        lines.append(f"DTEND:{end}")
    if extra:
        lines.extend(extra.strip().splitlines())
    body = "\r\n".join(lines)
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    return f"{head}{body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
