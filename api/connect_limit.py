"""A per-user cap on calendar connects under way at once (docs/security.md#outbound-requests).

Connecting a CalDAV account or an ICS feed dials out from a request thread to a server the
user names, and such a server can take its time (the CalDAV client bounds a verification at
about 15 s). Without a cap, one token firing many connects at once could hold every request
thread. With it, a user has at most ``CALBOOK_CONNECT_MAX_CONCURRENT_PER_USER`` (2) connects
in flight per API process; one more is answered at once, from the event loop, with 429
``too_many_requests`` and ``Retry-After``, without taking a thread at all.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from api.auth import CurrentUser
from booking_engine.errors import TooManyRequests


class ConnectLimiter:
    """Counts each user's connects in flight; thread-safe (the count drops when a route ends)."""

    def __init__(self, per_user: int, retry_after_seconds: int) -> None:
        self.per_user = per_user
        self.retry_after_seconds = retry_after_seconds
        self._lock = threading.Lock()
        self._active: dict[str, int] = {}

    def acquire(self, user_id: str) -> None:
        with self._lock:
            if self._active.get(user_id, 0) >= self.per_user:
                raise TooManyRequests(
                    f"at most {self.per_user} calendar connects at once; retry when one has finished",
                    retry_after=self.retry_after_seconds,
                )
            self._active[user_id] = self._active.get(user_id, 0) + 1

    def release(self, user_id: str) -> None:
        with self._lock:
            left = self._active.get(user_id, 0) - 1
            if left > 0:
                self._active[user_id] = left
            else:
                self._active.pop(user_id, None)

    def in_flight(self, user_id: str) -> int:
        with self._lock:
            return self._active.get(user_id, 0)


async def connect_slot(request: Request, user: CurrentUser) -> AsyncIterator[None]:
    """FastAPI dependency: hold one of the caller's connect slots while the route runs."""
    limiter: ConnectLimiter = request.app.state.connect_limiter
    limiter.acquire(user.user_id)
    try:
        yield
    finally:
        limiter.release(user.user_id)


ConnectSlot = Annotated[None, Depends(connect_slot)]
