"""A fast ICS feed server for thousands of feeds, answering conditional GETs.

``/ics/<account>.ics``: the account's generated events as one VCALENDAR, with a strong ETag
that changes with every change; ``If-None-Match`` with the current ETag is a ``304``. The body
is built once per change.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

from bench.fakes.events import FakeEvent, generated, one, vcalendar
from bench.fakes.http import LoopServer, Reply, Request


class FakeFeeds:
    def __init__(self, events_per_feed: int = 20) -> None:
        self.events_per_feed = events_per_feed
        self.feeds: dict[str, tuple[str, bytes, list[FakeEvent]]] = {}
        self.lock = threading.Lock()
        self.counts: Counter[int] = Counter()
        self.server = LoopServer(self.handle)
        self.base = ""
        self._serial = 0

    def start(self) -> str:
        self.base = self.server.start()
        return self.base

    def stop(self) -> None:
        self.server.stop()

    def add_feed(self, account: str) -> str:
        self._set(account, generated(account, self.events_per_feed))
        return f"{self.base}/ics/{account}.ics"

    def change(self, account: str, rng: random.Random) -> None:
        with self.lock:
            events = self.feeds[f"/ics/{account}.ics"][2]
        self._set(account, [*events, one(account, rng, f"c{rng.random():.12f}")])

    def _set(self, account: str, events: list[FakeEvent]) -> None:
        with self.lock:
            self._serial += 1
            self.feeds[f"/ics/{account}.ics"] = (f'"f{self._serial}"', vcalendar(events), events)

    def handle(self, request: Request) -> Reply:
        with self.lock:
            feed = self.feeds.get(request.path.split("?", 1)[0])
        if feed is None or request.method != "GET":
            self.counts[404] += 1
            return 404, {}, b""
        etag, body, _ = feed
        if request.headers.get("if-none-match") == etag:
            self.counts[304] += 1
            return 304, {"ETag": etag}, b""
        self.counts[200] += 1
        return 200, {"ETag": etag, "Content-Type": "text/calendar; charset=utf-8"}, body
