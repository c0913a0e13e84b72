"""Per-process resources of a worker: the store and the task sender, built lazily after the pool has forked.

An engine must not cross a ``fork``: its pooled connections would be shared by parent and
children. So nothing is opened at import time, and each pool process starts afresh.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from booking_engine.store.db import Store
from config.settings import get_settings
from config.task_sender import CeleryTaskQueue

_store: Store | None = None
_tasks: CeleryTaskQueue | None = None
_sending = True


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


def get_tasks() -> CeleryTaskQueue:
    """The worker's task sender: the worker app's own broker and transport."""
    global _tasks
    if _tasks is None:
        from worker.app import celery_app

        _tasks = CeleryTaskQueue(celery_app.conf.broker_url, app=celery_app)
    _tasks.enabled = _sending
    return _tasks


def set_sending_enabled(enabled: bool) -> None:
    """In-process tests, benches and the demo that drive the jobs themselves switch sending off."""
    global _sending
    _sending = enabled


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    reset_store()
