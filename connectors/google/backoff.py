"""Retry of transient Google failures inside one provider call: exponential backoff, full jitter.

Rate limits (403 ``rateLimitExceeded``, 429) and 5xx usually clear within seconds, so a call
retries a few times before the ``TransientError`` reaches the worker, whose Celery retry then
takes over with longer delays. A ``Retry-After`` longer than the policy's cap is not slept on here:
the error goes up at once so a worker thread is not held for minutes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from config.retry import GOOGLE_CALL, RetryPolicy
from config.retry import NO_RETRY as NO_RETRY_POLICY
from config.retry import PERSON_WAITS as PERSON_WAITS_POLICY
from connectors.base import TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How one call retries: ``policy`` (``config.retry``: attempts in all, delays doubling up to a
    cap, full jitter). ``sleep`` and ``random`` are injectable so tests run without waiting."""

    policy: RetryPolicy = GOOGLE_CALL
    sleep: Callable[[float], None] = field(default=time.sleep)
    random: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Delay before retry number ``attempt`` (0-based); never below Google's ``Retry-After``."""
        return max(self.policy.delay(attempt, self.random), retry_after or 0.0)

    def run(self, call: Callable[[], T], what: str) -> T:
        """Run ``call``; retry it on ``TransientError`` up to the policy's attempts in all."""
        attempts = self.policy.max_attempts or 1
        for attempt in range(attempts):
            try:
                return call()
            except TransientError as exc:
                last_try = attempt + 1 >= attempts
                if last_try or (exc.retry_after is not None and exc.retry_after > self.policy.cap):
                    raise
                wait = self.delay(attempt, exc.retry_after)
                log.info("google %s: transient error (%s), retry %d in %.2fs", what, exc, attempt + 1, wait)
                self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")


NO_RETRY = Backoff(NO_RETRY_POLICY)
PERSON_WAITS = Backoff(PERSON_WAITS_POLICY)
"""A person waits for the answer: one retry after at most 0.2 s, not the worker's five tries over
several seconds. (Each attempt is still bounded by the provider's HTTP timeout.)"""
