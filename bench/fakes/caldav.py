"""A fast CalDAV server for thousands of accounts: PROPFIND, sync-collection, calendar-multiget, PUT.

One calendar per account at ``/dav/<account>/cal/``, its objects generated
(``bench.fakes.events``). What calbook's incremental path needs is modelled exactly: a ctag and
an RFC 6578 sync token that move with every change, a sync-collection that lists what changed
since a token (deletions as 404), a multiget that answers the hrefs asked for. Each object's
multiget fragment is built once per change, so an answer is a join of prepared bytes.

Booking pushes (``PUT`` with ``If-None-Match: *``) are stored like any object and counted by
UID (``pushes``), so the benchmark can check there is exactly one event per booking.
"""

from __future__ import annotations

import random
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from bench.fakes.events import FakeEvent, generated, one, vcalendar
from bench.fakes.http import LoopServer, Reply, Request

NS = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"'
HREF = re.compile(rb"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>")
TOKEN = re.compile(rb"<(?:\w+:)?sync-token>([^<]*)</(?:\w+:)?sync-token>")
UID = re.compile(rb"^UID:(.+?)\r?$", re.M)
XML = {"Content-Type": "application/xml; charset=utf-8"}
TOKEN_PREFIX = "http://bench.invalid/sync/"


@dataclass
class DavCalendar:
    path: str
    seq: int = 1
    objects: dict[str, tuple[str, bytes, bytes]] = field(default_factory=dict)
    """href -> (etag, data, multiget fragment)"""
    changed: dict[str, int] = field(default_factory=dict)
    """href -> the seq of its last change (deletions included)"""

    def put(self, href: str, data: bytes) -> str:
        self.seq += 1
        etag = f'"{self.seq}"'
        fragment = (f"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>{escape(etag)}</d:getetag>"
                    f"<c:calendar-data>{escape(data.decode())}</c:calendar-data></d:prop>"
                    "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>").encode()
        self.objects[href] = (etag, data, fragment)
        self.changed[href] = self.seq
        return etag

    def delete(self, href: str) -> bool:
        if self.objects.pop(href, None) is None:
            return False
        self.seq += 1
        self.changed[href] = self.seq
        return True


class FakeCalDAV:
    def __init__(self, events_per_calendar: int = 20) -> None:
        self.events_per_calendar = events_per_calendar
        self.calendars: dict[str, DavCalendar] = {}
        self.lock = threading.Lock()
        self.pushes: dict[str, set[str]] = defaultdict(set)
        """UID of a booking's event -> hrefs holding it"""
        self.counts: dict[str, int] = defaultdict(int)
        self.server = LoopServer(self.handle)
        self.base = ""

    def start(self) -> str:
        self.base = self.server.start()
        return self.base

    def stop(self) -> None:
        self.server.stop()

    def add_account(self, account: str, calendars: int = 1) -> list[str]:
        """The account's calendar URLs, each with its generated events."""
        urls = []
        for k in range(calendars):
            path = f"/dav/{account}/cal{k or ''}/"
            calendar = DavCalendar(path)
            for n, event in enumerate(generated(path, self.events_per_calendar)):
                calendar.put(f"{path}e{n}.ics", vcalendar([event]))
            with self.lock:
                self.calendars[path] = calendar
            urls.append(self.base + path)
        return urls

    def change(self, calendar_url: str, rng: random.Random) -> None:
        """An external change: a new event in the calendar (ctag and token move)."""
        path = calendar_url.removeprefix(self.base)
        event: FakeEvent = one(path, rng, f"c{rng.random():.12f}")
        with self.lock:
            calendar = self.calendars[path]
            calendar.put(f"{calendar.path}x{calendar.seq}.ics", vcalendar([event]))

    # -- HTTP ---------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        self.counts[request.method] += 1
        path = request.path.split("?", 1)[0]
        directory = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"
        with self.lock:
            calendar = self.calendars.get(directory)
            if calendar is None:
                return 404, {}, b""
            if request.method == "PROPFIND":
                return self._propfind(calendar, path)
            if request.method == "REPORT":
                return self._report(calendar, request.body)
            if request.method == "PUT":
                return self._put(calendar, path, request)
            if request.method == "GET":
                found = calendar.objects.get(path)
                return (200, {"ETag": found[0], "Content-Type": "text/calendar"}, found[1]) if found else (404, {}, b"")
            if request.method == "DELETE":
                return (204, {}, b"") if calendar.delete(path) else (404, {}, b"")
        return 400, {}, b""

    def _propfind(self, calendar: DavCalendar, path: str) -> Reply:
        if path == calendar.path:
            props = (f"<cs:getctag>{calendar.seq}</cs:getctag><d:sync-token>{TOKEN_PREFIX}{calendar.seq}</d:sync-token>"
                     "<d:resourcetype><d:collection/><c:calendar/></d:resourcetype>")
        elif path in calendar.objects:
            props = f"<d:getetag>{escape(calendar.objects[path][0])}</d:getetag>"
        else:
            return 404, {}, b""
        body = (f'<?xml version="1.0" encoding="utf-8"?><d:multistatus {NS}><d:response><d:href>{path}</d:href>'
                f"<d:propstat><d:prop>{props}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
                "</d:response></d:multistatus>")
        return 207, XML, body.encode()

    def _report(self, calendar: DavCalendar, body: bytes) -> Reply:
        head = f'<?xml version="1.0" encoding="utf-8"?><d:multistatus {NS}>'.encode()
        if b"sync-collection" in body:
            match = TOKEN.search(body)
            token = match.group(1).decode() if match else ""
            if token and not token.startswith(TOKEN_PREFIX):
                return 403, XML, b'<?xml version="1.0"?><d:error xmlns:d="DAV:"><d:valid-sync-token/></d:error>'
            since = int(token[len(TOKEN_PREFIX):]) if token else 0
            parts = [head]
            for href, seq in calendar.changed.items():
                if seq <= since:
                    continue
                found = calendar.objects.get(href)
                if found is None:
                    parts.append(f"<d:response><d:href>{href}</d:href><d:status>HTTP/1.1 404 Not Found</d:status>"
                                 "</d:response>".encode())
                else:
                    parts.append(f"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>"
                                 f"{escape(found[0])}</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status>"
                                 "</d:propstat></d:response>".encode())
            parts.append(f"<d:sync-token>{TOKEN_PREFIX}{calendar.seq}</d:sync-token></d:multistatus>".encode())
            return 207, XML, b"".join(parts)
        if b"calendar-multiget" in body:
            parts = [head]
            for raw in HREF.findall(body):
                href = raw.decode()
                found = calendar.objects.get(href)
                parts.append(found[2] if found else f"<d:response><d:href>{href}</d:href>"
                             "<d:status>HTTP/1.1 404 Not Found</d:status></d:response>".encode())
            parts.append(b"</d:multistatus>")
            return 207, XML, b"".join(parts)
        # calendar-query (a UID search): the booking events are where calbook put them.
        return 207, XML, head + b"</d:multistatus>"

    def _put(self, calendar: DavCalendar, path: str, request: Request) -> Reply:
        exists = path in calendar.objects
        if request.headers.get("if-none-match") == "*" and exists:
            return 412, {}, b""
        match = request.headers.get("if-match")
        if match is not None and (not exists or calendar.objects[path][0] != match):
            return 412, {}, b""
        etag = calendar.put(path, request.body)
        uid = UID.search(request.body)
        if uid:
            self.pushes[uid.group(1).decode().strip()].add(path)
        return (204 if exists else 201), {"ETag": etag}, b""
