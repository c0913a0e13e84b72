"""``RateLimiter``: a request waits for its slots and tokens in the shared store, a short while at most.

A request that would wait longer than its bound (``CALBOOK_RATE_LIMIT_MAX_WAIT_SECONDS`` in the
worker, a shorter one while a person waits) is not held: it fails with the connectors'
``RateLimited``, a ``TransientError`` carrying a ``retry_after``, and the retry that already
handles a provider's 429 takes over (the provider's own short retries, then the task's; decision
0022). A provider's own 429 or 503 with ``Retry-After`` pauses the key in the shared store, so
every worker backs off, not only the one that was told.

When the shared store does not answer (Redis or the database down, a database not migrated yet),
the limiter keeps limiting inside its own process (``MemoryStore``) and tries the shared store
again after a while: a limiter outage neither stops the syncs nor lifts every limit.

Waits are logged with the connection and the hashed key, never a mailbox, host or token, and
counted by provider (``calbook_rate_limit_waits_total``: ``waited``, or ``refused`` when the wait
would have been too long; ``calbook_rate_limit_wait_seconds_total``): a limit that binds shows
on the metrics before it shows as staleness (docs/operations.md#metrics).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from prometheus_client import Counter

from connectors.base import RateLimited
from connectors.rate_limits.limits import Bucket, RequestPlan, Slots, StoreDown
from connectors.rate_limits.memory_store import MemoryStore

log = logging.getLogger(__name__)

WAITS = Counter("calbook_rate_limit_waits", "Requests calbook's own rate limit held back, by provider and outcome "
                "(waited, refused)", ["provider", "outcome"])
WAITED_SECONDS = Counter("calbook_rate_limit_wait_seconds", "Seconds requests waited for calbook's own rate "
                         "limit, by provider", ["provider"])

SLOT_POLL_SECONDS = (0.01, 0.25)
"""A request waiting for a concurrency slot looks again after 10 ms, doubling up to 250 ms."""
STORE_RETRY_SECONDS = 30.0
"""After the shared store failed, the process limits alone this long before trying it again."""


class Store(Protocol):
    """Where buckets and slots live: ``RedisStore``, ``DatabaseStore`` or ``MemoryStore``."""

    shared: bool

    def take(self, buckets: Sequence[Bucket]) -> float:
        """One token from every bucket, or from none: 0 when granted, else the seconds to wait."""
        ...

    def pause(self, key: str, seconds: float) -> None: ...

    def claim(self, slots: Slots, holder: str) -> bool: ...

    def release(self, slots: Slots, holder: str) -> None: ...

    def after_fork(self) -> None: ...

    def close(self) -> None: ...


class RateLimiter:
    """The limits of every process that shares ``store``."""

    def __init__(
        self,
        store: Store,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_grant: Callable[[RequestPlan], None] | None = None,
    ) -> None:
        self.store = store
        self.fallback = MemoryStore()
        self._sleep = sleep
        self._clock = clock
        self._down_until = 0.0
        self._down_lock = threading.Lock()
        self.on_grant = on_grant
        """Called after every grant (tests and the bench count with it)."""

    # -- the store, or this process's own when it is down ---------------------------------------

    def _current(self) -> Store:
        return self.fallback if self._clock() < self._down_until else self.store

    def _failed(self, exc: StoreDown) -> Store:
        with self._down_lock:
            if self._clock() >= self._down_until:
                log.warning("rate limits: the shared store failed (%s); limiting within this process for %.0fs",
                            exc, STORE_RETRY_SECONDS)
            self._down_until = self._clock() + STORE_RETRY_SECONDS
        return self.fallback

    def _take(self, buckets: Sequence[Bucket]) -> float:
        store = self._current()
        try:
            return store.take(buckets)
        except StoreDown as exc:
            return self._failed(exc).take(buckets)

    def _claim(self, slots: Slots, holder: str) -> Store | None:
        store = self._current()
        try:
            return store if store.claim(slots, holder) else None
        except StoreDown as exc:
            fallback = self._failed(exc)
            return fallback if fallback.claim(slots, holder) else None

    def _release(self, store: Store, slots: Slots, holder: str) -> None:
        try:
            store.release(slots, holder)
        except StoreDown as exc:
            self._failed(exc)  # the lease expires by itself

    # -- what the gates call --------------------------------------------------------------------

    @contextmanager
    def acquire(self, plan: RequestPlan, *, max_wait: float, connection_id: str | None = None) -> Iterator[None]:
        """Hold a slot (if the plan has slots) and one token of each bucket for one request.

        Waits at most ``max_wait`` seconds in all; raises ``RateLimited`` (a ``TransientError``) with ``retry_after``
        when the wait would be longer.
        """
        deadline = self._clock() + max_wait
        began = self._clock()
        holder = uuid.uuid4().hex
        poll = SLOT_POLL_SECONDS[0]
        held_back = False
        while True:
            held: Store | None = None
            if plan.slots is not None:
                held = self._claim(plan.slots, holder)
                if held is None:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        self._give_up(plan, connection_id, 1.0, f"{plan.slots.limit} requests already in flight")
                    self._sleep(min(poll, remaining))
                    held_back = True
                    poll = min(poll * 2, SLOT_POLL_SECONDS[1])
                    continue
            wait = self._take(plan.buckets)
            if wait <= 0:
                break
            if held is not None and plan.slots is not None:
                self._release(held, plan.slots, holder)  # do not keep a slot while waiting for a token
            if wait > deadline - self._clock():
                self._give_up(plan, connection_id, wait, "request rate at its limit")
            self._sleep(wait * (1 + 0.1 * random.random()))  # a little jitter: waiters do not wake as one
            held_back = True
        waited = self._clock() - began
        if held_back:
            WAITS.labels(plan.provider, "waited").inc()
            WAITED_SECONDS.labels(plan.provider).inc(waited)
        if waited > 0.05:
            log.info("rate limit: waited %.2fs", waited,
                     extra={"connection_id": connection_id, "rate_limit_key": plan.label})
        if self.on_grant is not None:
            self.on_grant(plan)
        try:
            yield
        finally:
            if held is not None and plan.slots is not None:
                self._release(held, plan.slots, holder)

    def _give_up(self, plan: RequestPlan, connection_id: str | None, retry_after: float, why: str) -> None:
        WAITS.labels(plan.provider, "refused").inc()
        log.info("rate limit: %s, retry in %.1fs", why, retry_after,
                 extra={"connection_id": connection_id, "rate_limit_key": plan.label})
        raise RateLimited(f"calbook's rate limit towards the provider: {why}", retry_after=round(retry_after, 3))

    def pause(self, plan: RequestPlan, seconds: float, connection_id: str | None = None) -> None:
        """The provider asked every client to wait ``seconds`` before asking about this key again."""
        log.info("rate limit: provider asked to pause %.1fs", seconds,
                 extra={"connection_id": connection_id, "rate_limit_key": plan.pause_key})
        store = self._current()
        try:
            store.pause(plan.pause_key, seconds)
        except StoreDown as exc:
            self._failed(exc).pause(plan.pause_key, seconds)

    def after_fork(self) -> None:
        self.store.after_fork()
        self.fallback.after_fork()
        self._down_lock = threading.Lock()

    def close(self) -> None:
        self.store.close()
