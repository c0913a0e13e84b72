"""Who this worker process is: the id its leases and heartbeat carry.

The main process of ``celery worker`` sets it when the worker starts (``worker.heartbeat``),
before the pool forks, so the pool processes inherit it: every lease a pool process takes
names the worker that owns it. Processes that are not a worker (the API, tests, tools) have
none, and their leases are plain time-outs.
"""

from __future__ import annotations

_worker_id: str | None = None


def set_worker_id(worker_id: str | None) -> None:
    global _worker_id
    _worker_id = worker_id


def current_worker_id() -> str | None:
    return _worker_id
