"""An httpcore network backend that connects only where the URL policy allows, within a deadline.

Checking a URL and then letting the HTTP client resolve its host again leaves a gap: DNS can
answer the check with a public address and the connect with a private one (rebinding). Here
the check *is* the resolution: ``connect_tcp`` resolves the host through
``URLPolicy.resolve`` (which refuses the host if any of its addresses is private, unless
allowed) and connects to one of exactly those addresses, by number. So every connection of a
client built on it - first request, redirect, discovered href, worker request - goes to an
address that was checked at that moment. TLS still verifies the certificate against the host
name (httpcore passes it as ``server_hostname``).

``Deadline`` bounds a whole exchange, not one read: every connect, read, write and TLS
handshake waits at most the time left, so a server that trickles bytes cannot hold a caller
past it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpcore

from connectors.url_policy import URLPolicy


class Deadline:
    """A point in time (monotonic clock) by which an exchange must be over; ``None``: no limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def clamp(self, timeout: float | None, timeout_error: type[Exception] = httpcore.ReadTimeout) -> float | None:
        """``timeout`` shortened to what is left; raises ``timeout_error`` when nothing is."""
        left = self.remaining()
        if left is None:
            return timeout
        if left <= 0:
            raise timeout_error(f"deadline of {self.seconds:g} s passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        limit = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, limit)
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Resolve with the policy, connect by address, and keep every socket operation inside ``deadline``."""

    def __init__(self, policy: URLPolicy, deadline: Deadline | None = None) -> None:
        self.policy = policy
        self.deadline = deadline or Deadline(None)
        self._tcp = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.policy.resolve(host, port)  # raises UnsafeURL / UnresolvableURL
        error: Exception | None = None
        for address in addresses:
            try:
                stream = self._tcp.connect_tcp(
                    str(address), port, self.deadline.clamp(timeout, httpcore.ConnectTimeout), local_address,
                    socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self.deadline)
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable through the URL policy")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
