"""How the store reads on PostgreSQL (booking_engine/store/db.py): in autocommit, and with idle
connections pinged before use so a dead one is replaced instead of failing a request."""

from __future__ import annotations

import time

from sqlalchemy import text

from booking_engine.store.db import Store


def test_a_read_runs_each_statement_in_its_own_transaction(pg_url: str) -> None:
    """No BEGIN/COMMIT around a read: each statement is its own transaction (now() is per statement)."""
    store = Store.from_url(pg_url)
    try:
        with store.read() as conn:
            conn.execute(text("SELECT pg_sleep(0.02)"))
            assert conn.execute(text("SELECT now() = statement_timestamp()")).scalar_one() is True
            assert conn.execute(text("SELECT txid_current_if_assigned() IS NULL")).scalar_one() is True
        with store.write() as conn:  # a write is one transaction, as before
            conn.execute(text("SELECT pg_sleep(0.02)"))
            assert conn.execute(text("SELECT now() = statement_timestamp()")).scalar_one() is False
    finally:
        store.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_at_checkout(pg_url: str) -> None:
    store = Store.from_url(pg_url, pool_size=1, max_overflow=0, idle_ping_seconds=0.05)
    try:
        with store.read() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with Store.from_url(pg_url).engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        time.sleep(0.1)  # idle past the ping threshold
        with store.read() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        store.dispose()


def _last_statement(pg_url: str, pid: int) -> str:
    admin = Store.from_url(pg_url)
    try:
        with admin.read() as conn:
            query = text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
            return str(conn.execute(query, {"pid": pid}).scalar_one())
    finally:
        admin.dispose()


def test_only_a_connection_idle_past_the_threshold_is_pinged(pg_url: str) -> None:
    """A connection used a moment ago goes out as it is (no extra round trip); an idle one is pinged."""
    for idle_ping, pinged in ((3600.0, False), (0.0, True)):
        store = Store.from_url(pg_url, pool_size=1, max_overflow=0, idle_ping_seconds=idle_ping)
        try:
            with store.read() as conn:
                pid = conn.execute(text("SELECT pg_backend_pid() /* marker */")).scalar_one()
            with store.engine.connect():  # checked out, nothing run on it yet
                last = _last_statement(pg_url, pid)
            assert ("marker" not in last) is pinged, last  # pinged: SELECT 1 (and its ROLLBACK) came after
        finally:
            store.dispose()
