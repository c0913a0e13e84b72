"""``FaultProxy``: a counting, fault-injecting reverse proxy in front of a real CalDAV server.

It forwards every request and can answer chosen ones itself (412, 403, 507, 429, 5xx, 401)
or edit what the server answered - and it records everything that passes, so tests count
requests.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {
    "accept-encoding",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
}


@dataclass
class Fault:
    """Answer requests matching ``method`` (and ``match`` in path or body) with ``status``.

    ``times`` limits how often (None: always). ``headers`` go on the fake answer.
    """

    method: str
    status: int
    match: str = ""
    times: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def applies(self, method: str, path: str, body: bytes) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if method != self.method:
            return False
        return not self.match or self.match in path or self.match.encode() in body


@dataclass
class Seen:
    method: str
    path: str
    status: int
    authorized: bool
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FaultProxy:
    """A small reverse proxy in front of one CalDAV server.

    ``faults`` answer matching requests instead of the server; ``request_hook`` may rewrite the
    body of a request before it is forwarded (``seen`` keeps what the client sent);
    ``response_hook`` may edit the headers (in place) and body (returned) of what the server
    answered; ``seen`` records all.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.response_hook: Callable[[str, str, dict[str, str], bytes], bytes] | None = None
        self.request_hook: Callable[[str, str, bytes], bytes] | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy._handle(self, body)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = _any  # noqa: N815
            do_MKCALENDAR = do_PROPPATCH = do_HEAD = do_POST = do_MKCOL = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.seen.clear()
            self.response_hook = None
            self.request_hook = None

    def count(self, method: str | None = None) -> int:
        return sum(1 for s in self.seen if method is None or s.method == method)

    def _pick_fault(self, method: str, path: str, body: bytes) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.applies(method, path, body):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        method, path = handler.command, handler.path
        authorized = "Authorization" in handler.headers
        fault = self._pick_fault(method, path, body)
        if fault is not None:
            self._record(Seen(method, path, fault.status, authorized, body, dict(handler.headers.items())))
            handler.send_response(fault.status)
            for key, value in fault.headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(fault.body)))
            handler.end_headers()
            handler.wfile.write(fault.body)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
        headers["Host"] = f"127.0.0.1:{self.port}"
        forwarded = self.request_hook(method, path, body) if self.request_hook is not None else body
        if forwarded or method in ("PUT", "POST", "PROPFIND", "REPORT", "PROPPATCH", "MKCALENDAR"):
            headers["Content-Length"] = str(len(forwarded))
        upstream.request(method, path, body=forwarded or None, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        reply_headers = {
            k: v for k, v in reply.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}
        }
        if self.response_hook is not None:
            data = self.response_hook(method, path, reply_headers, data)
        upstream.close()
        self._record(Seen(method, path, reply.status, authorized, body, dict(handler.headers.items())))
        handler.send_response(reply.status)
        for key, value in reply_headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)
