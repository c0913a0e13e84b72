"""A tiny ICS feed on 127.0.0.1 for tests that sync through the real ICS provider."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_feed(body: bytes, hold: threading.Event | None = None) -> Iterator[str]:
    """Serve ``body`` as ``text/calendar`` at the yielded URL; with ``hold``, each answer waits for it."""

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if hold is not None:
                hold.wait(30)
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/team.ics"
    finally:
        if hold is not None:
            hold.set()
        server.shutdown()
        server.server_close()


def feed(*events: str) -> bytes:
    inner = "".join(
        e.split("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n", 1)[1].rsplit("END:VCALENDAR", 1)[
            0
        ]
        for e in events
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//feed//EN\r\n{inner}END:VCALENDAR\r\n".encode()


@dataclass
class FeedState:
    body: bytes = b""
    etag: str | None = '"v1"'
    last_modified: str | None = "Mon, 03 Mar 2025 10:00:00 GMT"
    status: int = 200
    delay: float = 0.0
    redirect: str | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
