"""Repository of ``rate_limit_buckets`` and ``rate_limit_leases`` (the rate limiter without Redis).

Every function runs inside the caller's write transaction. The rows a check reads are locked
first (``lock_buckets``: ``SELECT ... FOR UPDATE`` on PostgreSQL, the write lock ``BEGIN
IMMEDIATE`` already holds on SQLite), so two workers taking from one bucket run one after the
other; several keys are locked in sorted order, so they cannot deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import Connection, delete, func, select, text, update

from booking_engine.store.rate_limit_tables import rate_limit_buckets as buckets
from booking_engine.store.rate_limit_tables import rate_limit_leases as leases


def now_us(conn: Connection) -> int:
    """Microseconds since the epoch by the database's clock on PostgreSQL (every worker machine
    agrees on it), by this machine's on SQLite (which only one machine can share)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")).scalar_one())
    return time.time_ns() // 1000


def _insert_missing(conn: Connection, keys: list[str]) -> None:
    rows = [{"key": key} for key in keys]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(buckets).values(rows).on_conflict_do_nothing(index_elements=["key"]))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(buckets).values(rows).on_conflict_do_nothing(index_elements=["key"]))


def lock_buckets(conn: Connection, keys: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Each key's ``(tat, paused_until)``, its row created if need be and locked until commit."""
    ordered = sorted(set(keys))
    _insert_missing(conn, ordered)
    stmt = select(buckets.c.key, buckets.c.tat, buckets.c.paused_until).where(buckets.c.key.in_(ordered))
    if conn.dialect.name == "postgresql":
        stmt = stmt.order_by(buckets.c.key).with_for_update()
    return {row.key: (int(row.tat), int(row.paused_until)) for row in conn.execute(stmt)}


def store_tats(conn: Connection, tats: dict[str, int]) -> None:
    """The buckets' new arrival times; once a ``tat`` has passed, its bucket is full again (prunable)."""
    for key, tat in tats.items():
        conn.execute(update(buckets).where(buckets.c.key == key).values(tat=tat, expires_at=tat))


def pause(conn: Connection, key: str, until: int) -> None:
    """Nothing is granted for ``key`` before ``until`` (a provider's ``Retry-After``)."""
    lock_buckets(conn, [key])
    later = func.max if conn.dialect.name == "sqlite" else func.greatest  # SQLite's two-argument max()
    conn.execute(update(buckets).where(buckets.c.key == key).values(paused_until=later(buckets.c.paused_until, until)))


def prune(conn: Connection, now: int) -> int:
    """Forget buckets that are full again and leases that ran out: they weigh nothing."""
    gone = conn.execute(delete(buckets).where(buckets.c.expires_at < now, buckets.c.paused_until < now)).rowcount
    gone += conn.execute(delete(leases).where(leases.c.expires_at < now)).rowcount
    return int(gone or 0)


def live_leases(conn: Connection, key: str, now: int) -> int:
    """Leases of ``key`` still running (the expired ones are dropped first)."""
    conn.execute(delete(leases).where(leases.c.key == key, leases.c.expires_at <= now))
    return int(conn.execute(select(func.count()).select_from(leases).where(leases.c.key == key)).scalar_one())


def add_lease(conn: Connection, key: str, holder: str, expires_at: int) -> None:
    conn.execute(leases.insert().values(key=key, holder=holder, expires_at=expires_at))


def drop_lease(conn: Connection, key: str, holder: str) -> None:
    conn.execute(delete(leases).where(leases.c.key == key, leases.c.holder == holder))
