"""Ask a worker to run the outbox or webhook queue now rather than at the next beat tick.

The API (after a service call that wrote events) and the worker's own jobs call these. A
kick is an optimisation only: if the broker is unreachable it is logged and dropped, and
beat's next tick does the same work, because the state lives in the database.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

DISPATCH_OUTBOX = "calbook.outbox.dispatch"
DELIVER_WEBHOOKS = "calbook.webhooks.deliver"

_enabled = True


def set_kicks_enabled(enabled: bool) -> None:
    """In-process tests and benches that drive the functions directly switch kicks off."""
    global _enabled
    _enabled = enabled


def _send(task_name: str) -> None:
    if not _enabled:
        return
    try:
        from worker.app import celery_app

        celery_app.send_task(task_name, expires=60)
    except Exception as exc:  # noqa: BLE001 - a kick must never fail its caller
        log.warning("could not kick task", extra={"task": task_name, "error": type(exc).__name__})


def kick_outbox() -> None:
    _send(DISPATCH_OUTBOX)


def kick_webhooks() -> None:
    _send(DELIVER_WEBHOOKS)
