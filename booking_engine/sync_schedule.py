"""When a calendar connection syncs next: the rules of the sync schedule (docs/sync.md#scheduling).

Every connection carries its own due time (``next_sync_at``). After a good sync it is due again
after its provider's interval: the poll interval for CalDAV and ICS feeds, which cannot tell us
about changes, the backstop interval for Google and Microsoft, which push them. Each interval
is shortened by a random part (``jitter``), so connections that synced together (a restart, a
bulk import, a migration) drift apart instead of staying due together forever.

After failed syncs in a row the connection backs off on its own: ``min(max, base * 2^(n-1))``
times a factor in ``[0.5, 1]``; one good sync resets the count. So a server that is down for
a day costs one attempt an hour per connection, not one per poll, and a push-fed connection
that failed is retried within minutes instead of at its next backstop.

Plain values and arithmetic, no store: the worker hands a ``SyncSchedule`` built from its
settings (``WorkerSection.sync_schedule``) to the connection service.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from booking_engine.connections import POLLED

Rand = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SyncSchedule:
    poll_seconds: float = 300.0
    backstop_seconds: float = 6 * 3600.0
    jitter: float = 0.2
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0

    def interval(self, provider: str) -> float:
        """The normal interval of a provider: polled ones often, push-fed ones as a backstop."""
        return self.poll_seconds if provider in {str(p) for p in POLLED} else self.backstop_seconds

    def after_success(self, provider: str, now: datetime, rand: Rand = random.random) -> datetime:
        """Due again after the provider's interval, shortened by up to ``jitter`` of it."""
        return now + timedelta(seconds=self.interval(provider) * (1.0 - self.jitter * rand()))

    def backoff_seconds(self, failures: int, rand: Rand = random.random) -> float:
        """The wait after ``failures`` failed syncs in a row (1: the first failure)."""
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2.0 ** max(failures - 1, 0))
        return ceiling * (0.5 + 0.5 * rand())

    def after_failure(self, failures: int, now: datetime, rand: Rand = random.random) -> datetime:
        """Due again after the backoff, whatever the provider's interval."""
        return now + timedelta(seconds=self.backoff_seconds(failures, rand))
