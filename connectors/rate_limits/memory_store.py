"""The limiter's store inside one process: the fallback when the shared store fails, and
``CALBOOK_RATE_LIMIT_STORE=memory`` (one process, or tests of the limiter's waiting).

The same GCRA and slot arithmetic as the Redis script and the database form, under a lock, so a
process that lost its shared store still keeps its own share of every limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from connectors.rate_limits.limits import MICROS, Bucket, Slots


def _now_us() -> int:
    return time.time_ns() // 1000


def gcra(states: Sequence[tuple[int, int]], buckets: Sequence[Bucket], now: int) -> tuple[int, list[int]]:
    """The GCRA step shared by the in-process and database stores (the Redis script is its twin).

    ``states`` holds each bucket's ``(tat, paused_until)`` in microseconds (0: none). Answers the
    microseconds to wait (0: granted) and, when granted, each bucket's new ``tat``.
    """
    wait = 0
    new_tats: list[int] = []
    for (tat, paused_until), bucket in zip(states, buckets, strict=True):
        interval = bucket.rate.interval_us
        if paused_until > now:
            wait = max(wait, paused_until - now)
        new_tat = max(tat, now) + interval
        allow_at = new_tat - bucket.rate.burst * interval
        if allow_at > now:
            wait = max(wait, allow_at - now)
        new_tats.append(new_tat)
    return wait, new_tats


class MemoryStore:
    """Buckets and slots in this process only."""

    shared = False

    def __init__(self, clock_us: Callable[[], int] = _now_us) -> None:
        self._clock = clock_us
        self._lock = threading.Lock()
        self._states: dict[str, tuple[int, int]] = {}
        self._leases: dict[str, dict[str, int]] = {}

    def take(self, buckets: Sequence[Bucket]) -> float:
        with self._lock:
            now = self._clock()
            states = [self._states.get(b.key, (0, 0)) for b in buckets]
            wait, tats = gcra(states, buckets, now)
            if wait:
                return wait / MICROS
            for bucket, (_, paused), tat in zip(buckets, states, tats, strict=True):
                self._states[bucket.key] = (tat, paused)
            if len(self._states) > 10_000:
                self._prune(now)
            return 0.0

    def pause(self, key: str, seconds: float) -> None:
        with self._lock:
            tat, paused = self._states.get(key, (0, 0))
            self._states[key] = (tat, max(paused, self._clock() + round(seconds * MICROS)))

    def claim(self, slots: Slots, holder: str) -> bool:
        with self._lock:
            now = self._clock()
            leases = {h: until for h, until in self._leases.get(slots.key, {}).items() if until > now}
            if len(leases) >= slots.limit:
                self._leases[slots.key] = leases
                return False
            leases[holder] = now + round(slots.lease_seconds * MICROS)
            self._leases[slots.key] = leases
            return True

    def release(self, slots: Slots, holder: str) -> None:
        with self._lock:
            leases = self._leases.get(slots.key)
            if leases is not None:
                leases.pop(holder, None)
                if not leases:
                    del self._leases[slots.key]

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def close(self) -> None:
        pass

    def _prune(self, now: int) -> None:
        """A full bucket is the same as no bucket: forget those (memory stays bounded)."""
        self._states = {k: (tat, p) for k, (tat, p) in self._states.items() if tat > now or p > now}
