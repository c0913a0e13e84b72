"""CalDAV test helpers: direct access to a server's calendars, iCalendar bodies, the sync window."""

from __future__ import annotations

import base64
import http.client
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from connectors.url_policy import URLPolicy
from tests.support.caldav_servers import SERVERS, Account, CalDAVServer, FaultProxy, ServerUnavailable
from tests.support.db import IN_CI

OWNER = "alice@example.org"


#: The servers run on 127.0.0.1; the URL policy lets exactly that address through, so that
#: 127.0.0.2 stands for "an internal address" in the SSRF tests.
LOCAL = URLPolicy.of(["127.0.0.1/32"])


WINDOW_START = datetime(2025, 1, 1, tzinfo=UTC)


WINDOW_END = datetime(2025, 7, 1, tzinfo=UTC)


_WANTED = [n.strip() for n in os.environ.get("CALBOOK_TEST_CALDAV_SERVERS", "").split(",") if n.strip()]


SERVER_NAMES = [n for n in SERVERS if not _WANTED or n in _WANTED]


class ServerPool:
    """Servers started on first use and stopped at the end of the session."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.started: dict[str, CalDAVServer] = {}
        self.unavailable: dict[str, str] = {}

    def get(self, name: str) -> CalDAVServer:
        if name in self.unavailable:
            self._unavailable(name, self.unavailable[name])
        if name not in self.started:
            server = SERVERS[name](self.factory.mktemp(name))
            try:
                server.start()
            except ServerUnavailable as exc:
                server.stop()
                self.unavailable[name] = str(exc)
                self._unavailable(name, str(exc))
            except BaseException:
                server.stop()
                raise
            self.started[name] = server
        return self.started[name]

    @staticmethod
    def _unavailable(name: str, reason: str) -> None:
        if IN_CI:
            pytest.fail(f"CalDAV server {name} is required in CI but cannot run: {reason}", pytrace=False)
        pytest.skip(f"CalDAV server {name} cannot run here: {reason}")

    def stop_all(self) -> None:
        for server in self.started.values():
            server.stop()
        self.started.clear()


@dataclass
class Direct:
    """Writes straight to the server (not through the proxy), standing in for the expert's own client."""

    port: int
    account: Account

    def request(
        self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
    ) -> tuple[int, Message, bytes]:
        """Status, headers (case-insensitive: DAViCal says ``Etag``) and body."""
        token = base64.b64encode(f"{self.account.username}:{self.account.password}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body.encode() if body else None,
                     headers={"Authorization": f"Basic {token}", **(headers or {})})  # fmt: skip
        reply = conn.getresponse()
        data = reply.read()
        conn.close()
        return reply.status, reply.msg, data

    def make_calendar(self, name: str | None = None) -> str:
        path = f"{self.account.home}{name or uuid.uuid4().hex}/"
        body = (
            '<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            f"<d:set><d:prop><d:displayname>{name or 'Test'}</d:displayname></d:prop></d:set></c:mkcalendar>"
        )
        status, _, _ = self.request("MKCALENDAR", path, body, {"Content-Type": "application/xml"})
        assert status == 201, status
        return path

    def put(self, path: str, text: str) -> str:
        status, headers, _ = self.request("PUT", path, text, {"Content-Type": "text/calendar; charset=utf-8"})
        assert status in (201, 204), status
        return headers.get("ETag", "")

    def delete(self, path: str) -> None:
        status, _, _ = self.request("DELETE", path)
        assert status in (200, 204), status

    def get(self, path: str) -> tuple[int, str]:
        status, _, data = self.request("GET", path)
        return status, data.decode()

    def members(self, collection: str) -> list[str]:
        """The hrefs of the objects in a collection, as the server spells them."""
        body = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>'
        status, _, data = self.request("PROPFIND", collection, body, {"Depth": "1", "Content-Type": "application/xml"})
        assert status == 207, status
        hrefs = [h.text or "" for h in etree.fromstring(data).iter("{DAV:}href")]
        return [h for h in hrefs if h.rstrip("/") != collection.rstrip("/") and not h.endswith("/")]


def store_as_written(direct: Direct, proxy: FaultProxy, path: str, text: str) -> None:
    """Store ``text`` at ``path``, or make the server seem to have.

    Servers that validate what they store (Cyrus refuses an event that ends before it starts,
    or a zero-length one, with a 403) get a valid stand-in instead, and the proxy hands the
    provider ``text`` in its place - as a laxer server, or an old import, would serve it.
    """
    status, _, _ = direct.request("PUT", path, text, {"Content-Type": "text/calendar; charset=utf-8"})
    if status in (201, 204):
        return
    assert status == 403, status
    marker = f"STAND-IN-{uuid.uuid4().hex}"
    direct.put(path, vevent(marker, "20200101T000000Z", "20200101T010000Z", f"SUMMARY:{marker}"))
    pattern = re.compile(rf"BEGIN:VCALENDAR(?:(?!END:VCALENDAR).)*?{marker}.*?END:VCALENDAR(&#13;|\r)?\n?".encode(),
                         re.S)
    replacement = escape(text).encode()
    earlier = proxy.response_hook

    def serve_as_written(method: str, where: str, headers: dict[str, str], body: bytes) -> bytes:
        body = earlier(method, where, headers, body) if earlier is not None else body
        return pattern.sub(lambda _: replacement, body)

    proxy.response_hook = serve_as_written


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
