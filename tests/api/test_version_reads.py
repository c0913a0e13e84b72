"""The version read of the conditional views on the event loop (api/versions.py): the same
answer as the store's read, and a dropped connection costs nothing but a fallback."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from api.conditional import read_version
from api.versions import VersionReads
from booking_engine.store.db import Store
from tests.support.factories import publish


def test_the_async_read_gives_the_stores_version_and_none_for_nobody(store: Store) -> None:
    publish(store, "expert-v")
    reads = VersionReads(store)

    async def both() -> tuple[int | None, int | None]:
        try:
            return await reads.version("expert-v"), await reads.version("nobody-at-all")
        finally:
            await reads.close()

    assert asyncio.run(both()) == (read_version(store, "expert-v"), None)


def test_a_connection_the_server_killed_falls_back_and_is_replaced(pg_store: Store) -> None:
    publish(pg_store, "expert-k")
    reads = VersionReads(pg_store, connections=1)
    expected = read_version(pg_store, "expert-k")

    async def scenario() -> list[int | None]:
        try:
            first = await reads.version("expert-k")
            with pg_store.write() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                  "AND query LIKE 'SELECT version FROM expert_versions%'"))
            second = await reads.version("expert-k")  # the dead connection: the store answers
            third = await reads.version("expert-k")  # a new connection
            return [first, second, third]
        finally:
            await reads.close()

    assert asyncio.run(scenario()) == [expected] * 3
