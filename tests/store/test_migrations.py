"""Migrations: ``calbook migrate`` reaches head on both databases, down and up again, with no drift."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from booking_engine.store.migrate import downgrade, upgrade
from booking_engine.store.schema import metadata
from tests.support.db import PG_ADMIN_URL


def _fresh_pg() -> tuple[str, str]:
    name = f"calbook_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _check_round_trip(url: str) -> None:
    env = {**os.environ, "CALBOOK_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-m", "config.cli", "migrate"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    engine = create_engine(url)
    try:
        assert "bookings" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], f"tables.py and the migrations disagree: {diff}"
        downgrade(url, "base")
        assert "bookings" not in inspect(engine).get_table_names()
        upgrade(url)
        assert "bookings" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_migrate_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _check_round_trip(f"sqlite:///{tmp_path / 'm.sqlite'}")


def test_migrate_postgresql(pg_url: str) -> None:
    del pg_url  # requires the server (fails in CI when it is unreachable)
    name, url = _fresh_pg()
    try:
        _check_round_trip(url)
    finally:
        _drop_pg(name)


def test_in_memory_sqlite_store_works() -> None:
    """``sqlite://`` gives one shared in-memory database (handy for tools and quick experiments)."""
    from booking_engine.services import availability as av
    from booking_engine.store.db import Store
    from tests.support.factories import publish

    store = Store.from_url("sqlite://")
    with store.engine.begin() as conn:
        metadata.create_all(conn)
    publish(store)
    assert av.get_availability(store, "expert-1").version == 1
    store.dispose()


def _feed_rows_rewritten(url: str) -> None:
    """0005: a feed's URL (its private token) leaves busy blocks, sync state and busyCalendars."""
    feed = "https://feeds.example/private-0123456789abcdef/basic.ics?token=s3cr3t-feed-token"
    upgrade(url, "0004")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, created_at, updated_at) VALUES ('e1', :t, :t)"),
                         {"t": "2030-01-01 00:00:00+00:00"})
            for cid, provider in (("c-ics", "ics"), ("c-dav", "caldav")):
                conn.execute(text(
                    "INSERT INTO calendar_connections (id, expert_id, provider, status, config, created_at, updated_at)"
                    " VALUES (:id, 'e1', :p, 'active', :config, :t, :t)"),
                    {"id": cid, "p": provider, "t": "2030-01-01 00:00:00+00:00",
                     "config": '{"busyCalendars": ["%s"], "url": "https://feeds.example/.../basic.ics"}' % (
                         feed if provider == "ics" else "https://dav.example/cal/")})
                calendar = feed if provider == "ics" else "https://dav.example/cal/"
                conn.execute(text("INSERT INTO busy_blocks (expert_id, connection_id, calendar_id, external_id, "
                                  "start_time, end_time) VALUES ('e1', :c, :cal, 'x', :t, :t)"),
                             {"c": cid, "cal": calendar, "t": "2030-01-01 00:00:00+00:00"})
                conn.execute(text("INSERT INTO calendar_sync_state (connection_id, calendar_id, cursor, updated_at) "
                                  "VALUES (:c, :cal, '{}', :t)"),
                             {"c": cid, "cal": calendar, "t": "2030-01-01 00:00:00+00:00"})
        upgrade(url)
        with engine.connect() as conn:
            dump = [str(row) for table in ("busy_blocks", "calendar_sync_state", "calendar_connections")
                    for row in conn.execute(text(f"SELECT * FROM {table}"))]
            feeds = conn.execute(text("SELECT calendar_id FROM busy_blocks WHERE connection_id = 'c-ics' UNION ALL "
                                      "SELECT calendar_id FROM calendar_sync_state WHERE connection_id = 'c-ics'"))
            assert [r[0] for r in feeds] == ["feed", "feed"]
            dav = conn.execute(text("SELECT calendar_id FROM busy_blocks WHERE connection_id = 'c-dav'")).scalar()
        assert dav == "https://dav.example/cal/"  # other providers keep their calendar URLs
        assert not any("s3cr3t" in line or "0123456789abcdef" in line for line in dump), dump
    finally:
        engine.dispose()


def test_feed_calendar_ids_rewritten_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _feed_rows_rewritten(f"sqlite:///{tmp_path / 'f.sqlite'}")


def test_feed_calendar_ids_rewritten_postgresql(pg_url: str) -> None:
    del pg_url
    name, url = _fresh_pg()
    try:
        _feed_rows_rewritten(url)
    finally:
        _drop_pg(name)


def _check_0014(url: str) -> None:
    """0014 gives existing connections a spread due time (none to those waiting for the expert), and
    its downgrade takes the columns away again."""
    from datetime import UTC, datetime, timedelta

    from booking_engine.store.tables import calendar_connections as cc

    upgrade(url, "0013")
    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        from booking_engine.store.db import Store
        from booking_engine.store.tables import users

        store = Store.from_url(url)
        with store.write() as conn:
            conn.execute(users.insert().values(id="e", created_at=now, updated_at=now))
        rows = [("new", "caldav", "active", None), ("fresh", "caldav", "active", now - timedelta(seconds=10)),
                ("stale", "ics", "error", now - timedelta(days=1)), ("google", "google", "active", now),
                ("waiting", "caldav", "reauth_required", now)]
        with store.write() as conn:
            for cid, provider, status, synced in rows:
                conn.execute(cc.insert().values(id=cid, expert_id="e", provider=provider, status=status,
                                                config={}, created_at=now, updated_at=now, last_synced_at=synced))
        store.dispose()
        upgrade(url, "0014")
        store = Store.from_url(url)
        with store.read() as conn:
            due = {r.id: r.next_sync_at for r in conn.execute(select(cc.c.id, cc.c.next_sync_at))}
        store.dispose()
        assert due["new"] is not None and due["new"] <= datetime.now(UTC)
        assert now + timedelta(seconds=200) < due["fresh"] <= now + timedelta(seconds=300)
        assert now < due["stale"] <= datetime.now(UTC) + timedelta(seconds=300)  # overdue: spread ahead
        assert due["google"] > now + timedelta(hours=4)
        assert due["waiting"] is None
        downgrade(url, "0013")
        columns = {c["name"] for c in inspect(engine).get_columns("calendar_connections")}
        assert "next_sync_at" not in columns and "sync_failures" not in columns
        upgrade(url)
    finally:
        engine.dispose()


def test_0014_sync_schedule_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _check_0014(f"sqlite:///{tmp_path / 'm14.sqlite'}")


def test_0014_sync_schedule_postgresql(pg_url: str) -> None:
    del pg_url
    name, url = _fresh_pg()
    try:
        _check_0014(url)
    finally:
        _drop_pg(name)
