"""The worker's heartbeat and its start-up recovery, wired to Celery's worker signals.

- ``worker_init`` (main process, before the pool forks): the worker takes its id,
  ``<node name>/<boot id>``, which every lease of its pool processes carries.
- ``worker_ready``: it registers (``booking_engine.services.heartbeats``), frees at once the
  leases that an earlier process of the same node held (that process is dead: Celery runs a
  node name once at a time), so a worker restarted after ``kill -9`` resumes within seconds
  instead of waiting for the leases to run out, and starts a thread that beats every
  ``CALBOOK_WORKER_HEARTBEAT_INTERVAL_SECONDS``.
- ``worker_shutdown``: the thread stops and the row goes.

The thread uses its own small engine, so it never waits for a pool process's connection.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

from booking_engine.services import heartbeats
from booking_engine.store.db import Store
from worker import outbox, wiring
from worker.identity import current_worker_id, set_worker_id

log = logging.getLogger(__name__)


class Heartbeat:
    """Registers one worker and keeps its row fresh from a daemon thread."""

    def __init__(self, store: Store, worker_id: str, node: str, interval: float) -> None:
        self.store = store
        self.worker_id = worker_id
        self.node = node
        self.pid = os.getpid()
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        previous = heartbeats.register(self.store, self.worker_id, self.node, self.pid)
        freed = outbox.release_leases_of(self.store, previous)
        if previous:
            log.info("worker restarted: took back the leases of its previous process",
                     extra={"worker_id": self.worker_id, "previous": ",".join(previous), "leases": freed})
        self._thread = threading.Thread(target=self._run, name="calbook-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                heartbeats.beat(self.store, self.worker_id, self.node, self.pid)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next tick
                log.warning("heartbeat not written", extra={"worker_id": self.worker_id, "error": type(exc).__name__})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
        try:
            heartbeats.unregister(self.store, self.worker_id)
        except Exception as exc:  # noqa: BLE001 - the row then ages out
            log.warning("heartbeat row not removed", extra={"worker_id": self.worker_id, "error": type(exc).__name__})
        self.store.dispose()


_heartbeat: Heartbeat | None = None
_node: str | None = None


@worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    global _node
    _node = str(getattr(sender, "hostname", None) or f"celery@{os.uname().nodename}")
    set_worker_id(f"{_node}/{uuid.uuid4().hex[:12]}")


@worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    global _heartbeat
    worker_id = current_worker_id()
    if worker_id is None or _node is None:
        return
    settings = wiring.settings()
    store = Store.from_url(settings.resolved_database_url(), pool_size=1, max_overflow=1)
    _heartbeat = Heartbeat(store, worker_id, _node, settings.worker.heartbeat_interval_seconds)
    try:
        _heartbeat.start()
    except Exception:  # noqa: BLE001 - the worker works without; readiness will say so
        log.exception("heartbeat could not start", extra={"worker_id": worker_id})


@worker_process_init.connect
def _in_pool_process(**_: Any) -> None:
    # A pool process forked after the heartbeat started must not touch its engine's connections.
    if _heartbeat is not None:
        _heartbeat.store.engine.dispose(close=False)


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
