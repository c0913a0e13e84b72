"""What a request draws from: token buckets (``Rate``, ``Bucket``), concurrency slots (``Slots``).

A ``Rate`` is a GCRA (generic cell rate algorithm) bucket, which is a token bucket stored as one
number per key: the *theoretical arrival time* of the next request. It lets ``burst`` requests
through at once and then one every ``interval`` seconds, so in any window of ``W`` seconds it
grants at most ``burst + W / interval`` requests. A provider quota of "N requests per P
seconds" is met in every window of P seconds, sliding or fixed, by ``Rate.within(N, P, burst)``,
which keeps the burst inside the quota instead of on top of it (docs/rate-limits.md).

Keys are hashed here (``key_for``): a mailbox address or a host name is never stored in Redis or
the database, nor logged, in the clear.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``burst`` requests at once, then one every ``interval`` seconds."""

    interval: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.burst < 1:
            raise ValueError("a rate needs a positive interval and a burst of at least 1")

    @classmethod
    def per_second(cls, requests: float, burst: int = 1) -> Rate:
        """A sustained ``requests`` a second, ``burst`` at once (a polite default for a host)."""
        return cls(1.0 / requests, max(1, burst))

    @classmethod
    def within(cls, quota: int, period: float, burst: int) -> Rate:
        """At most ``quota`` requests in any ``period`` seconds, ``burst`` of them at once."""
        burst = max(1, min(burst, quota - 1)) if quota > 1 else 1
        return cls(period / max(1, quota - burst), burst)

    @property
    def interval_us(self) -> int:
        return max(1, round(self.interval * MICROS))

    def most_in(self, seconds: float) -> float:
        """The most requests this rate grants in any window of ``seconds`` (tests, docs)."""
        return self.burst + seconds / self.interval


@dataclass(frozen=True, slots=True)
class Bucket:
    """One key's bucket, and the rate it refills at."""

    key: str
    rate: Rate


@dataclass(frozen=True, slots=True)
class Slots:
    """At most ``limit`` requests in flight for ``key``; a lease not released expires after
    ``lease_seconds`` (a worker killed mid-request does not hold a slot for ever)."""

    key: str
    limit: int
    lease_seconds: float = 120.0


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Everything one outbound request draws from: its buckets and, where the provider has a
    concurrency limit, its slots. A 429 pauses ``pause_key`` (the narrowest bucket)."""

    buckets: tuple[Bucket, ...]
    slots: Slots | None = None
    provider: str = "other"  # the metrics' label (calbook_rate_limit_waits_total)

    @property
    def pause_key(self) -> str:
        return self.buckets[0].key

    @property
    def label(self) -> str:
        """The key logged with a wait (already hashed)."""
        return self.slots.key if self.slots is not None else self.pause_key


def key_for(prefix: str, kind: str, *parts: str) -> str:
    """``<prefix><kind>:<hash>``: the key of one mailbox, user, project or host, not reversible."""
    digest = hashlib.sha256("\x1f".join(p.strip().lower() for p in parts).encode()).hexdigest()[:20]
    return f"{prefix}{kind}:{digest}"


class StoreDown(Exception):
    """The shared store (Redis, the database) did not answer: the limiter falls back to its process's."""
