"""Migrations: ``calbook migrate`` reaches head on both databases, down and up again, with no drift."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from booking_engine.store.migrate import downgrade, upgrade
from booking_engine.store.schema import metadata
from tests.conftest import PG_ADMIN_URL


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
    from tests.factories import publish

    store = Store.from_url("sqlite://")
    with store.engine.begin() as conn:
        metadata.create_all(conn)
    publish(store)
    assert av.get_availability(store, "expert-1").version == 1
    store.dispose()
