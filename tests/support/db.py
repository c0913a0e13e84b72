"""The test databases: PostgreSQL and SQLite URLs, throwaway databases, and emptying them between tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from booking_engine.store.db import Store
from booking_engine.store.schema import metadata

PG_ADMIN_URL = os.environ.get("CALBOOK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


REDIS_URL = os.environ.get("CALBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
