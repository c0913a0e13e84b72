"""A minimal asyncio HTTP/1.1 server in a thread of its own, for the benchmark's fakes.

Only what calbook's clients send: a request line, headers, a ``Content-Length`` body (no
chunked uploads), keep-alive. The handler is a plain function from a ``Request`` to
``(status, headers, body)``; it runs on the loop, so it must not block.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

REASONS = {200: "OK", 201: "Created", 204: "No Content", 207: "Multi-Status", 304: "Not Modified",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed"}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[[Request], Reply]


class LoopServer:
    """Serve ``handler`` on 127.0.0.1 (a free port) until :meth:`stop`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.requests = 0
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-fake-http")

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                self.requests += 1
                try:
                    status, extra, payload = self.handler(Request(method, path, headers, body))
                except Exception as exc:  # a bug in the fake: answer 500 and say so
                    status, extra, payload = 500, {"Content-Type": "text/plain"}, repr(exc).encode()
                out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                if status != 304:
                    out.append(f"Content-Length: {len(payload)}")
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (b"" if status == 304 else payload))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        finally:
            writer.close()
