"""Retry of transient Google failures inside one provider call: exponential backoff, full jitter.

Rate limits (403 ``rateLimitExceeded``, 429) and 5xx usually clear within seconds, so a call
retries a few times before the ``TransientError`` reaches the worker, whose Celery retry then
takes over with longer delays. A ``Retry-After`` longer than ``max_delay`` is not slept on here:
the error goes up at once so a worker thread is not held for minutes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from connectors.base import TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How one call retries: ``attempts`` tries in all, delays ``base * 2**n`` capped, full jitter.

    ``sleep`` and ``random`` are injectable so tests run without waiting.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    random: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Delay before retry number ``attempt`` (0-based); never below Google's ``Retry-After``."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        jittered = ceiling * self.random()
        return max(jittered, retry_after or 0.0)

    def run(self, call: Callable[[], T], what: str) -> T:
        """Run ``call``; retry it on ``TransientError`` up to ``attempts`` times in all."""
        for attempt in range(self.attempts):
            try:
                return call()
            except TransientError as exc:
                last_try = attempt + 1 >= self.attempts
                if last_try or (exc.retry_after is not None and exc.retry_after > self.max_delay):
                    raise
                wait = self.delay(attempt, exc.retry_after)
                log.info("google %s: transient error (%s), retry %d in %.2fs", what, exc, attempt + 1, wait)
                self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")


NO_RETRY = Backoff(attempts=1)
PERSON_WAITS = Backoff(attempts=2, base_delay=0.2, max_delay=1.0)
"""A person waits for the answer (the API listing an account, the free/busy check while booking): one
retry after at most 0.2 s, not the worker's five tries over several seconds. (Each attempt is still
bounded by the provider's HTTP timeout.)"""
