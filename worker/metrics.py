"""The worker's Prometheus counters and where they are served (docs/operations.md#metrics).

What only the worker sees is counted here: outbox events by result, webhook attempts and
e-mails by result, calendar syncs by provider and result with their durations, tasks by
result. The pool processes count in ``prometheus_client``'s multiprocess mode (the directory
``calbook worker`` and ``calbook serve`` set up), and:

- ``calbook worker`` serves them on ``CALBOOK_WORKER_METRICS_PORT`` (9101) from its main process;
- under ``calbook serve`` the worker shares the API's directory, so the API's ``/metrics``
  shows them beside its own, with no second port.

The state of the work (outbox backlog, connections by status, heartbeat age) is not here: the
API reads it from the database at each scrape, so it is right whichever process answers.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import task_postrun, worker_ready
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, start_http_server

log = logging.getLogger(__name__)

OUTBOX_EVENTS = Counter("calbook_outbox_events", "Outbox events handled, by result (dispatched, failed)",
                        ["result"])
WEBHOOK_ATTEMPTS = Counter(
    "calbook_webhook_attempts", "Webhook POSTs, by result (succeeded, retry, failed, cancelled)", ["result"],
)
EMAILS = Counter("calbook_emails", "E-mails, by result (sent, refused)", ["result"])
SYNCS = Counter("calbook_calendar_syncs", "Calendar syncs, by provider and result", ["provider", "result"])
SYNC_DURATION = Histogram(
    "calbook_calendar_sync_duration_seconds", "Time one calendar sync took, by provider", ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
TASKS = Counter("calbook_worker_tasks", "Celery tasks run, by task and state", ["task", "state"])


def count_outbox(dispatched: int, failed: int) -> None:
    if dispatched:
        OUTBOX_EVENTS.labels("dispatched").inc(dispatched)
    if failed:
        OUTBOX_EVENTS.labels("failed").inc(failed)


def count_webhook_attempt(new_status: str) -> None:
    WEBHOOK_ATTEMPTS.labels("retry" if new_status == "pending" else new_status).inc()


def count_email(result: str) -> None:
    EMAILS.labels(result).inc()


def observe_sync(provider: str, result: str, seconds: float) -> None:
    SYNCS.labels(provider, result).inc()
    SYNC_DURATION.labels(provider).observe(seconds)


@task_postrun.connect
def _count_task(task: Any = None, state: str | None = None, **_: Any) -> None:
    TASKS.labels(getattr(task, "name", "unknown"), state or "unknown").inc()


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    """``calbook worker`` only: it sets the port and the multiprocess directory."""
    from worker import wiring  # the composition root; it imports the senders that import this module

    port = wiring.settings().worker.metrics_port
    if not port or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        log.warning("worker metrics not served: port unavailable", extra={"port": port, "error": str(exc)})
        return
    log.info("worker metrics served", extra={"port": port})
