"""The expert-version read of the conditional views, on the event loop.

Every slots, month and busy request starts with one read: the expert's version, which makes the
``ETag`` (api/conditional.py). Answered with a 304 or from the answer cache (api/answer_cache.py),
that read is all the request does, so on PostgreSQL it runs on the event loop over psycopg's own
async connections, a prepared statement in autocommit: no thread-pool hop, no SQLAlchemy
execution layer (docs/performance.md has the profile that asked for it). The connections are a
few per process, opened on first use by the loop that uses them. On SQLite, and whenever an
async connection fails (its error is logged, the connection dropped), the read goes through the
store in a worker thread as every other read, so errors map to problems the usual way.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from starlette.concurrency import run_in_threadpool

from api import conditional
from booking_engine.store.db import Store

log = logging.getLogger(__name__)

_QUERY = "SELECT version FROM expert_versions WHERE expert_id = %s"


class VersionReads:
    """Expert versions for the read views: ``await version(expert_id)``."""

    def __init__(self, store: Store, connections: int = 4) -> None:
        self._store = store
        self._size = connections
        self._dsn: str | None = None
        if store.dialect == "postgresql":
            self._dsn = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[psycopg.AsyncConnection[tuple[int]]] = []
        self._slots: asyncio.Semaphore | None = None

    async def version(self, expert_id: str) -> int | None:
        if self._dsn is not None:
            try:
                return await self._read_async(expert_id)
            except psycopg.Error as exc:
                log.warning("async version read failed; reading through the store",
                            extra={"expert_id": expert_id, "error": type(exc).__name__})
        return await run_in_threadpool(conditional.read_version, self._store, expert_id)

    async def _read_async(self, expert_id: str) -> int | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a test's second client): the old connections belong to the old one
            self._loop, self._idle, self._slots = loop, [], asyncio.Semaphore(self._size)
        assert self._slots is not None
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                cursor = await conn.execute(_QUERY, (expert_id,), prepare=True)
                row = await cursor.fetchone()
            except BaseException:
                await conn.close()
                raise
            self._idle.append(conn)
        return None if row is None else int(row[0])

    async def _connect(self) -> psycopg.AsyncConnection[tuple[int]]:
        assert self._dsn is not None
        return await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, connect_timeout=5)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
