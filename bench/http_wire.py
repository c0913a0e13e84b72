"""The load generators' HTTP/1.1 over keep-alive connections, in a few lines of asyncio.

A real client (httpx) costs more CPU per request than calbook's server spends answering a
cached slot list, and the load generator shares the 2-core machine with the server it measures;
this writes the request bytes and reads the status, headers and a ``Content-Length`` body, no
more. Used by ``bench/api_load.py`` and ``bench/scale/load.py``.
"""

from __future__ import annotations

import asyncio


def http_request(method: str, path: str, token: str, body: bytes | None = None,
                 headers: tuple[str, ...] = ()) -> bytes:
    """The bytes of one request; a body (or a method that may carry one) gets its length."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}", *headers]
    if body is not None or method not in ("GET", "HEAD"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body or b'')}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of the next response on the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


class Connection:
    """One keep-alive connection to 127.0.0.1:``port``, opened on first use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        return await read_response(self.reader)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
