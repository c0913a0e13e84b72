"""Repository of ``rate_limit_buckets`` and ``rate_limit_leases`` (the rate limiter without Redis).

Every function runs inside the caller's write transaction and does its check-and-change in one
statement where it can: a take is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <room>
RETURNING`` per bucket (the same SQL on both databases but for the clock and ``greatest``), so a
row is locked only from that statement to the commit: workers contend on a busy bucket's row,
and the shorter the lock, the more of them it serves. Several buckets are taken in sorted key
order, so two takes cannot deadlock.

"Now" is the database's clock on PostgreSQL (``statement_timestamp()``: every worker machine
agrees on it, and a statement that waited for a lock sees an earlier now, which only ever grants
less) and this machine's on SQLite, which only one machine can share.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, delete, func, literal_column, select, text
from sqlalchemy.sql.elements import ColumnElement, TextClause

from booking_engine.store.rate_limit_tables import rate_limit_buckets as buckets
from booking_engine.store.rate_limit_tables import rate_limit_leases as leases

_PG_NOW = "(extract(epoch FROM statement_timestamp()) * 1000000)::bigint"


def now_us(conn: Connection) -> int:
    """Microseconds since the epoch, by the clock of ``now_expression``."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT " + _PG_NOW)).scalar_one())
    return time.time_ns() // 1000


def now_expression(conn: Connection) -> ColumnElement[Any]:
    """"Now" inside a statement: the database's clock on PostgreSQL, this machine's on SQLite."""
    if conn.dialect.name == "postgresql":
        return literal_column(_PG_NOW, BigInteger)
    # A bound value, not a literal: the statement stays the same and SQLAlchemy compiles it once.
    return bindparam("now_us", time.time_ns() // 1000, type_=BigInteger)


def _insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _later(conn: Connection) -> Any:
    return func.max if conn.dialect.name == "sqlite" else func.greatest  # SQLite's two-argument max()


def _statements(now: str, later: str) -> dict[str, TextClause]:
    """The two statements of every outbound request, as SQL text: built once, not per call (building
    an upsert expression costs more than running it)."""
    table = "rate_limit_buckets"
    new_tat = f"{later}({table}.tat, {now}) + :interval"
    return {
        "take": text(
            f'INSERT INTO {table} ("key", tat, paused_until, expires_at) '
            f"VALUES (:key, {now} + :interval, 0, {now} + :interval) "
            f'ON CONFLICT ("key") DO UPDATE SET tat = {new_tat}, expires_at = {new_tat} '
            f"WHERE {table}.paused_until <= {now} AND {new_tat} - :window <= {now} "
            'RETURNING "key"'
        ),
        "lock": text(
            f'INSERT INTO {table} ("key", tat, paused_until, expires_at) VALUES (:key, 0, 0, {now} + :lease) '
            f'ON CONFLICT ("key") DO UPDATE SET expires_at = {now} + :lease'
        ),
        "running": text(f'SELECT count(*) FROM rate_limit_leases WHERE "key" = :key AND expires_at > {now}'),
        "lease": text(
            f'INSERT INTO rate_limit_leases ("key", holder, expires_at) VALUES (:key, :holder, {now} + :lease)'
        ),
    }


_SQL = {
    "postgresql": _statements(_PG_NOW, "greatest"),
    "sqlite": _statements(":now", "max"),  # SQLite's two-argument max()
}


def _params(conn: Connection, **values: Any) -> dict[str, Any]:
    return values if conn.dialect.name == "postgresql" else {**values, "now": time.time_ns() // 1000}


def take(conn: Connection, grants: Sequence[tuple[str, int, int]]) -> bool:
    """One token from each ``(key, interval_us, burst)`` bucket (GCRA: the new arrival time must not
    run more than ``burst`` intervals ahead of now), or ``False`` as soon as one has no room; the
    caller then rolls back, so a refused take changes no bucket."""
    statement = _SQL[conn.dialect.name]["take"]
    for key, interval, burst in sorted(grants):
        params = _params(conn, key=key, interval=interval, window=burst * interval)
        if conn.execute(statement, params).first() is None:
            return False
    return True


def states(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each key's ``(tat, paused_until)``; ``(0, 0)`` for a key with no row (a full bucket)."""
    rows = conn.execute(select(buckets.c.key, buckets.c.tat, buckets.c.paused_until).where(buckets.c.key.in_(keys)))
    found = {row.key: (int(row.tat), int(row.paused_until)) for row in rows}
    return {key: found.get(key, (0, 0)) for key in keys}


def pause(conn: Connection, key: str, seconds_us: int) -> None:
    """Nothing is granted for ``key`` for ``seconds_us`` from now (a provider's ``Retry-After``)."""
    now = now_expression(conn)
    stmt = _insert(conn, buckets).values(key=key, tat=0, paused_until=now + seconds_us, expires_at=0)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"paused_until": _later(conn)(buckets.c.paused_until, now + seconds_us)},
    ))


def claim(conn: Connection, key: str, holder: str, limit: int, lease_us: int) -> bool:
    """A lease for ``holder`` if fewer than ``limit`` leases of ``key`` are running.

    The bucket row of ``key`` is the mutex (taken by an upsert, held to the commit), so two
    claims of one key never both count three and both insert the fourth."""
    sql = _SQL[conn.dialect.name]
    params = _params(conn, key=key, holder=holder, lease=lease_us)
    conn.execute(sql["lock"], params)
    if int(conn.execute(sql["running"], params).scalar_one()) >= limit:
        return False
    conn.execute(sql["lease"], params)
    return True


def release(conn: Connection, key: str, holder: str) -> None:
    conn.execute(delete(leases).where(leases.c.key == key, leases.c.holder == holder))


def prune(conn: Connection, now: int) -> int:
    """Forget buckets that are full again and leases that ran out: they weigh nothing."""
    gone = conn.execute(delete(buckets).where(buckets.c.expires_at < now, buckets.c.paused_until < now)).rowcount
    gone += conn.execute(delete(leases).where(leases.c.expires_at < now)).rowcount
    return int(gone or 0)

