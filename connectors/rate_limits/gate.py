"""``RequestGate``: what a connector's HTTP choke point holds, one per provider instance.

A gate knows which limits a request to a URL draws from (its ``plan_for``: the Google user and
project, the Microsoft mailbox, the CalDAV or ICS host of that URL) and how long a request may
wait. The connectors call ``admit(url)`` around each request they send and ``answered(url,
status, retry_after)`` with each answer; they know nothing of Redis, the database or settings.
``UNLIMITED`` is the gate of a provider built without limits (unit tests of a connector).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.rate_limits.limiter import RateLimiter
from connectors.rate_limits.limits import RequestPlan

THROTTLED = 429


@dataclass(frozen=True, slots=True)
class RequestGate:
    """The limits of one connection's requests (see the module docstring)."""

    limiter: RateLimiter | None
    plan_for: Callable[[str], RequestPlan | None]
    connection_id: str | None = None
    max_wait: float = 0.0
    default_pause: float = 1.0
    """The pause after a 429 that named no ``Retry-After``."""
    max_pause: float = 300.0
    """A ``Retry-After`` longer than this pauses the key this long only (a server's mistake must
    not silence a provider for a day); the request's own retry still waits the whole time."""

    @contextmanager
    def admit(self, url: str) -> Iterator[None]:
        """Wait for the request's slots and tokens (``TransientError`` when they are too far off)."""
        plan = self.plan_for(url) if self.limiter is not None else None
        if plan is None or self.limiter is None:
            yield
            return
        with self.limiter.acquire(plan, max_wait=self.max_wait, connection_id=self.connection_id):
            yield

    def answered(self, url: str, status: int, retry_after: float | None) -> None:
        """A 429 (or a 503 with ``Retry-After``) pauses the request's key for every worker."""
        if self.limiter is None or not (status == THROTTLED or (status == 503 and retry_after is not None)):
            return
        plan = self.plan_for(url)
        if plan is None:
            return
        seconds = self.default_pause if retry_after is None else retry_after
        if seconds > 0:
            self.limiter.pause(plan, min(seconds, self.max_pause), self.connection_id)


UNLIMITED = RequestGate(None, lambda url: None)
