"""One shape for every retry in calbook: exponential backoff with a cap, jitter, and a bound.

A ``RetryPolicy`` is a value: the outbox's handlers and the webhook deliveries build theirs from
``Settings.worker`` (``WorkerSection.outbox_retry``/``webhook_retry``), the Google provider retries
one call with ``GOOGLE_CALL`` (or ``PERSON_WAITS`` while a person waits), and the Celery tasks
retry with ``TASK`` or ``CALENDAR_TASK`` through ``celery_options``. The numbers and why they
differ are in docs/worker.md#retries (decision 0022).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before retry ``n`` (0-based): ``min(cap, base * factor**n)``, times a random factor
    in ``[jitter, 1]`` (``jitter=0``: full jitter, ``1``: none). ``max_attempts`` counts every
    attempt, the first included (``None``: bounded by something else, a retry window)."""

    base: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.0
    max_attempts: int | None = None

    def ceiling(self, retry: int) -> float:
        return float(min(self.cap, self.base * self.factor ** max(retry, 0)))

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        return self.ceiling(retry) * (self.jitter + (1.0 - self.jitter) * rand())

    def gives_up_after(self, attempts: int) -> bool:
        """Whether ``attempts`` made so far are all this policy allows."""
        return self.max_attempts is not None and attempts >= self.max_attempts

    def celery_options(self) -> dict[str, Any]:
        """The same policy as Celery task options: Celery doubles from ``retry_backoff`` up to
        ``retry_backoff_max`` with full jitter, and counts retries, not attempts."""
        if self.factor != 2.0 or self.jitter not in (0.0, 1.0) or self.max_attempts is None:
            raise ValueError("Celery retries double, with full jitter or none, a bounded number of times")
        return {
            "retry_backoff": int(self.base),
            "retry_backoff_max": int(self.cap),
            "retry_jitter": self.jitter == 0.0,
            "max_retries": self.max_attempts - 1,
        }


TASK = RetryPolicy(base=2, cap=300, max_attempts=6)
"""A Celery task that fails on a transient error (database, broker, network): a few quick retries."""

CALENDAR_TASK = RetryPolicy(base=2, cap=600, max_attempts=9)
"""A task talking to a calendar provider (sync, push-triggered sync, watch), after the provider's
own short retries: longer and more patient, a provider's outage lasts minutes."""

GOOGLE_CALL = RetryPolicy(base=0.5, cap=20, max_attempts=5)
"""One Google API call inside the worker: rate limits and 5xx usually clear within seconds."""

PERSON_WAITS = RetryPolicy(base=0.2, cap=1.0, max_attempts=2)
"""A person waits for the answer (the API listing an account, the free/busy check while booking):
one retry after at most 0.2 s."""

NO_RETRY = RetryPolicy(base=0, cap=0, max_attempts=1)
