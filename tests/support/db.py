"""The test databases: PostgreSQL and SQLite URLs, throwaway databases, and emptying them between tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from booking_engine.store.db import Store
from booking_engine.store.schema import metadata

PG_ADMIN_URL = os.environ.get("CALBOOK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _redis_url() -> str:
    """The run's Redis database; under pytest-xdist each worker takes its own, so that one worker's
    flush or queue never reaches another's (gw0 gets the base number plus one, gw1 plus two)."""
    base = os.environ.get("CALBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return base
    prefix, _, number = base.rpartition("/")
    first = int(number) if number.isdigit() else 0
    return f"{prefix}/{first + 1 + int(worker[2:])}"


REDIS_URL = _redis_url()


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unreachable(what: str, exc: BaseException) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but unreachable: {exc}", pytrace=False)
    pytest.skip(f"{what} unreachable: {exc}")


def truncate_all(store: Store) -> None:
    names = [t.name for t in reversed(metadata.sorted_tables)]
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(names) + " RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
