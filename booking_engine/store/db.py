"""Engines and transactions for the two supported databases.

SQLite: WAL, a busy timeout, and every write transaction opened with ``BEGIN IMMEDIATE``,
so that write transactions run one at a time and the read-check-write of a booking cannot
interleave with another (docs/lifecycle.md#no-double-booking). Read-only transactions open with a plain ``BEGIN`` and
never wait for a writer.

PostgreSQL: READ COMMITTED plus row locks (``FOR UPDATE``) on the rows a use case changes,
and the exclusion constraint on bookings as the last word on double booking. Reads run in
autocommit: under READ COMMITTED every statement takes its own snapshot whether or not a
transaction is open, so ``BEGIN`` and ``COMMIT`` around a read would buy nothing and cost two
round trips (docs/performance.md). A pooled connection is pinged before use only when it sat
idle for ``IDLE_PING_SECONDS`` or more: a connection used a moment ago is alive, and pinging
every checkout would add a round trip to every request. Two transactions
that check the exclusion constraint at once (a confirm racing an overlapping create) can
deadlock inside the index check; PostgreSQL then aborts one of them. That is a lost race, not
an outage: ``Store.transact`` runs such a transaction again, a bounded number of times, and
the repeat either succeeds or meets the constraint (409 ``slot_unavailable``), never a 503.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import StaticPool

_READONLY = "calbook_readonly"
#: A pooled PostgreSQL connection idle this long is pinged at checkout (and replaced if dead).
IDLE_PING_SECONDS = 10.0
#: SQLSTATEs of a transaction PostgreSQL aborted to resolve a conflict: run it again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
TRANSACTION_ATTEMPTS = 4

T = TypeVar("T")
log = logging.getLogger(__name__)


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction lost a race and may simply run again."""
    if not isinstance(exc, DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # One in-memory database shared by every thread of this process (tests, tools).
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool, **kwargs)
        _setup_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=kwargs.pop("pool_size", 8),
            max_overflow=kwargs.pop("max_overflow", 16),
            **kwargs,
        )
        _setup_sqlite(engine)
        return engine
    idle_ping = kwargs.pop("idle_ping_seconds", IDLE_PING_SECONDS)
    engine = create_engine(
        url,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 30),
        **kwargs,
    )
    _ping_idle_connections(engine, idle_ping)
    return engine


def _ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that sat idle (a restarted server, a
    firewall that dropped them): the pool replaces one that fails the ping (``DisconnectionError``)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not dbapi_conn.autocommit:
                dbapi_conn.rollback()
        except Exception as exc:  # noqa: BLE001 - any failure means the connection is gone
            raise DisconnectionError("idle connection failed its ping") from exc


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """The booking store: an engine and the two kinds of transaction the services use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        return cls(make_engine(url, **kwargs))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    def transact(self, work: Callable[[Connection], T], attempts: int = TRANSACTION_ATTEMPTS) -> T:
        """Run ``work(conn)`` in one write transaction; run it again (up to ``attempts`` times,
        with a short jittered pause) when the database aborted it as a deadlock or serialization
        failure. ``work`` must be safe to repeat: everything it did was rolled back."""
        for attempt in range(1, attempts + 1):
            try:
                with self.write() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if not is_retryable(exc) or attempt == attempts:
                    raise
                log.info("transaction aborted by the database, running it again",
                         extra={"attempt": attempt, "sqlstate": getattr(exc.orig, "sqlstate", None)})
                time.sleep(random.uniform(0.005, 0.03) * attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read: ``BEGIN`` on SQLite (one snapshot, never waiting for a writer), autocommit on
        PostgreSQL (each statement its own READ COMMITTED snapshot, as inside a transaction)."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
                return
            conn = conn.execution_options(**{_READONLY: True})
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()
