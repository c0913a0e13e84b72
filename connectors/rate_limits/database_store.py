"""The limiter's store in calbook's own database, for the embedded default (SQLite, no Redis) and
any deployment without Redis (``booking_engine.store.repositories.rate_limits``, revision 0015).

Each take, pause, claim or release is one short write transaction of its own on a small engine
of its own: never a part of the caller's transaction, committed before the request goes out. On
SQLite that is one more ``BEGIN IMMEDIATE`` per outbound request, which is why Redis is the
store of a deployment that has it. Concurrency slots are rows too (``rate_limit_leases``), so
Microsoft's 4 per mailbox hold across the worker processes of ``calbook serve`` as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from booking_engine.store.db import make_engine
from booking_engine.store.repositories import rate_limits as repo
from connectors.rate_limits.limits import MICROS, Bucket, Slots, StoreDown
from connectors.rate_limits.memory_store import gcra

PRUNE_EVERY = 1000
"""Takes between two prunes of full buckets and expired leases, per process."""


class DatabaseStore:
    """Buckets and slots shared by every process that uses the same database."""

    shared = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._takes = 0

    @classmethod
    def from_url(cls, url: str) -> DatabaseStore:
        return cls(make_engine(url, pool_size=2, max_overflow=4))

    def take(self, buckets: Sequence[Bucket]) -> float:
        with self._transaction() as conn:
            now = repo.now_us(conn)
            locked = repo.lock_buckets(conn, [b.key for b in buckets])
            wait, tats = gcra([locked[b.key] for b in buckets], buckets, now)
            if wait:
                return wait / MICROS
            repo.store_tats(conn, {b.key: t for b, t in zip(buckets, tats, strict=True)})
            self._takes += 1
            if self._takes % PRUNE_EVERY == 0:
                repo.prune(conn, now)
        return 0.0

    def pause(self, key: str, seconds: float) -> None:
        with self._transaction() as conn:
            repo.pause(conn, key, repo.now_us(conn) + round(seconds * MICROS))

    def claim(self, slots: Slots, holder: str) -> bool:
        with self._transaction() as conn:
            repo.lock_buckets(conn, [slots.key])  # the slots' mutex: one claim of a key at a time
            now = repo.now_us(conn)
            if repo.live_leases(conn, slots.key, now) >= slots.limit:
                return False
            repo.add_lease(conn, slots.key, holder, now + round(slots.lease_seconds * MICROS))
        return True

    def release(self, slots: Slots, holder: str) -> None:
        with self._transaction() as conn:
            repo.drop_lease(conn, slots.key, holder)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreDown(f"database: {type(exc).__name__}") from exc

    def after_fork(self) -> None:
        """A forked child must not use (nor close) the parent's connections."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        self.engine.dispose()
