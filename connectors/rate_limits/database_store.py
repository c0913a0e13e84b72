"""The limiter's store in calbook's own database, for the embedded default (SQLite, no Redis) and
any deployment without Redis (``booking_engine.store.repositories.rate_limits``, revision 0015).

Each take, pause, claim or release is one short write transaction of its own on a small engine
of its own: never a part of the caller's transaction, committed before the request goes out. A
granted take is one upsert per bucket and the commit; a refused one is rolled back and the wait
read afterwards. On SQLite that is one more ``BEGIN IMMEDIATE`` per outbound request, which is
why Redis is the store of a deployment that has it (bench/rate_limiter.py measures both).
Concurrency slots are rows too (``rate_limit_leases``), so Microsoft's 4 per mailbox hold across
the worker processes of ``calbook serve`` as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import SQLAlchemyError

from booking_engine.store.db import make_engine
from booking_engine.store.repositories import rate_limits as repo
from connectors.rate_limits.limits import MICROS, Bucket, Slots, StoreDown
from connectors.rate_limits.memory_store import gcra

PRUNE_EVERY = 1000
"""Operations between two prunes of full buckets and expired leases, per process."""
REFUSED_AT_LEAST = 0.001
"""A refused take waits at least this long, even if the bucket filled up meanwhile."""


def _asynchronous_commit(dbapi_connection: Any, _record: Any) -> None:
    """The limiter's own connections commit without waiting for the WAL flush: a busy bucket's
    row is locked until the commit, and a flush per take would bound every worker together to one
    take per disk flush. A crash may lose the last few takes, which only ever grants a few more."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    dbapi_connection.autocommit = autocommit


class DatabaseStore:
    """Buckets and slots shared by every process that uses the same database."""

    shared = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._operations = 0
        # PostgreSQL runs a lone statement in autocommit (SQLite's writes all open BEGIN IMMEDIATE).
        self._autocommit: Engine | None = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else None
        )

    @classmethod
    def from_url(cls, url: str) -> DatabaseStore:
        engine = make_engine(url, pool_size=2, max_overflow=8)
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", _asynchronous_commit)
        return cls(engine)

    def take(self, buckets: Sequence[Bucket]) -> float:
        grants = [(b.key, b.rate.interval_us, b.rate.burst) for b in buckets]
        if len(grants) == 1 and self._autocommit is not None:
            # One bucket is one statement, atomic on its own: no BEGIN and COMMIT round trips.
            with self._connection(self._autocommit) as conn:
                return 0.0 if repo.take(conn, grants) else self._wait(conn, buckets)
        with self._connection(self.engine) as conn:
            with conn.begin() as transaction:
                if repo.take(conn, grants):
                    self._maybe_prune(conn)
                    return 0.0
                transaction.rollback()
            with conn.begin():
                return self._wait(conn, buckets)

    def _wait(self, conn: Connection, buckets: Sequence[Bucket]) -> float:
        now = repo.now_us(conn)
        found = repo.states(conn, [b.key for b in buckets])
        wait, _ = gcra([found[b.key] for b in buckets], buckets, now)
        return max(wait / MICROS, REFUSED_AT_LEAST)

    def pause(self, key: str, seconds: float) -> None:
        with self._connection(self.engine) as conn, conn.begin():
            repo.pause(conn, key, round(seconds * MICROS))

    def claim(self, slots: Slots, holder: str) -> bool:
        with self._connection(self.engine) as conn, conn.begin():
            self._maybe_prune(conn)
            return repo.claim(conn, slots.key, holder, slots.limit, round(slots.lease_seconds * MICROS))

    def release(self, slots: Slots, holder: str) -> None:
        if self._autocommit is not None:
            with self._connection(self._autocommit) as conn:
                repo.release(conn, slots.key, holder)
            return
        with self._connection(self.engine) as conn, conn.begin():
            repo.release(conn, slots.key, holder)

    def _maybe_prune(self, conn: Connection) -> None:
        self._operations += 1
        if self._operations % PRUNE_EVERY == 0:
            repo.prune(conn, repo.now_us(conn))

    @contextmanager
    def _connection(self, engine: Engine) -> Iterator[Connection]:
        try:
            with engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreDown(f"database: {type(exc).__name__}") from exc

    def after_fork(self) -> None:
        """A forked child must not use (nor close) the parent's connections."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        self.engine.dispose()
