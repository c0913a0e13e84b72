"""Per-process resources of a worker: the store, built lazily after the pool has forked.

An engine must not cross a ``fork``: its pooled connections would be shared by parent and
children. So nothing is opened at import time, and each pool process starts afresh.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from booking_engine.store.db import Store
from config.settings import get_settings

_store: Store | None = None


def get_store() -> Store:
    global _store
    if _store is None:
        _store = Store.from_url(get_settings().resolved_database_url(), pool_size=2, max_overflow=4)
    return _store


def reset_store() -> None:
    global _store
    if _store is not None:
        _store.engine.dispose(close=False)
    _store = None


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    reset_store()
