"""``GatedTransport``: a ``RequestGate`` as an httpx transport, the one choke point of an httpx client.

Every request the client sends passes here, redirects included (httpx follows them through the
transport, so each hop waits for its own host's turn). The gate's slot is held until the answer's
body is closed, not just until its headers arrived: a concurrency limit counts requests the
server is still answering. A 429/503 pauses the key for every worker before the client sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

import httpx

from connectors.rate_limits.gate import RequestGate
from connectors.retry_after import parse_retry_after


class _HeldStream(httpx.SyncByteStream):
    """The answer's body; closing it ends the request's turn (releases its slot)."""

    def __init__(self, stream: httpx.SyncByteStream, turn: AbstractContextManager[None]) -> None:
        self._stream = stream
        self._turn: AbstractContextManager[None] | None = turn

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            turn, self._turn = self._turn, None
            if turn is not None:
                turn.__exit__(None, None, None)


class GatedTransport(httpx.BaseTransport):
    """``inner`` (by default httpx's own ``HTTPTransport``) behind ``gate``."""

    def __init__(self, gate: RequestGate, inner: httpx.BaseTransport | None = None) -> None:
        self.gate = gate
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        turn = self.gate.admit(url)
        turn.__enter__()
        try:
            response = self.inner.handle_request(request)
        except BaseException:
            turn.__exit__(None, None, None)
            raise
        try:
            self.gate.answered(url, response.status_code, parse_retry_after(response.headers.get("Retry-After")))
        except BaseException:
            response.close()
            turn.__exit__(None, None, None)
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code, headers=response.headers, stream=_HeldStream(response.stream, turn),
            extensions=response.extensions, request=request,
        )

    def close(self) -> None:
        self.inner.close()
