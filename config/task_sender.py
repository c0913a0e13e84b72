"""The one task sender: calbook's Celery tasks sent by name to a broker (the ``TaskQueue`` port).

Both process kinds use it: the API (a connect, ``POST .../sync``, a Google notification) and the
worker (the periodic sync, kicks after a job wrote events). Tasks go by name, so the sender
needs no task module and the API imports nothing from ``worker/``; to the broker of the
settings it was built with, so a test or a second deployment never publishes to another's.

Sending is an optimisation only, never a failure of the caller: what is asked for is noted in
the database first (a connection's ``next_sync_at``, outbox rows, due webhook deliveries), and
the periodic jobs pick it up within seconds or minutes when a message is lost.

Each task goes to its queue (``ROUTES``: calendar sync, calendar push, notifications, and the
default for the rest; docs/worker.md#queues), so a worker serving only ``calbook.notify``
delivers e-mail whatever backlog the sync queue has. So a short connect timeout, no
publish retries, and an error is logged and swallowed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)

QUEUE = "calbook"
"""The default queue: periodic jobs, the sync dispatcher, everything not routed elsewhere."""
SYNC_QUEUE = "calbook.sync"
"""Calendar syncs and change-notification upkeep (I/O-bound: a thread pool, docs/worker.md#queues)."""
PUSH_QUEUE = "calbook.push"
"""Bookings written to the experts' calendars (the outbox's calendar-push drain)."""
NOTIFY_QUEUE = "calbook.notify"
"""E-mail, webhooks and the outbox dispatch that sends them: never behind a sync backlog."""

QUEUES: dict[str, str] = {"sync": SYNC_QUEUE, "push": PUSH_QUEUE, "notify": NOTIFY_QUEUE, "default": QUEUE}
"""The short names ``calbook worker --queues`` (``CALBOOK_WORKER_QUEUES``) takes, and their queues."""

SYNC = "calbook.sync.connection"
DISPATCH_SYNCS = "calbook.sync.dispatch"
SYNC_CHANGED = "calbook.google.sync"
WATCH = "calbook.google.watch"
DISPATCH_OUTBOX = "calbook.outbox.dispatch"
DRAIN_PUSH = "calbook.outbox.push"
DELIVER_WEBHOOKS = "calbook.webhooks.deliver"

ROUTES: dict[str, str] = {
    SYNC: SYNC_QUEUE,
    SYNC_CHANGED: SYNC_QUEUE,
    WATCH: SYNC_QUEUE,
    DRAIN_PUSH: PUSH_QUEUE,
    DISPATCH_OUTBOX: NOTIFY_QUEUE,
    DELIVER_WEBHOOKS: NOTIFY_QUEUE,
}
"""Task name -> queue; every other task goes to the default queue (``QUEUE``)."""


def queue_for(task: str) -> str:
    return ROUTES.get(task, QUEUE)


def task_routes() -> dict[str, dict[str, str]]:
    """``ROUTES`` as Celery's ``task_routes`` (the worker app, beat and the sender use the same)."""
    return {task: {"queue": queue} for task, queue in ROUTES.items()}


def task_queues() -> list[Any]:
    """Every queue, on the default exchange (routed by name: a message sent before any worker
    declared its queue still lands in it); the worker app and the sender declare the same."""
    from kombu import Queue

    return [Queue(name, routing_key=name) for name in QUEUES.values()]


def resolve_queues(spec: str | None) -> list[str]:
    """``"sync,push"`` -> ``["calbook.sync", "calbook.push"]``; empty or ``all``: every queue.
    Full queue names are accepted too; anything else is a ``ValueError`` naming the choices."""
    names = [n.strip() for n in (spec or "").split(",") if n.strip()]
    if not names or names == ["all"]:
        return list(QUEUES.values())
    resolved: list[str] = []
    for name in names:
        queue = QUEUES.get(name, name if name in QUEUES.values() else None)
        if queue is None:
            raise ValueError(f"unknown queue {name!r}: choose from {', '.join(QUEUES)} or all")
        if queue not in resolved:
            resolved.append(queue)
    return resolved

#: Seconds to wait for the broker: the caller answers a person (or Google); the periodic jobs are the backstop.
CONNECT_TIMEOUT = 3.0
#: A kick older than this is dropped: beat's next tick does the same work anyway.
KICK_EXPIRES = 60


def broker_transport_options(broker_url: str) -> dict[str, Any]:
    """Transport options for a broker URL, shared by the worker app and the sender."""
    if broker_url.startswith("sqla+"):
        # The SQLAlchemy transport hands these to ``create_engine`` (so no ``polling_interval``
        # here: it polls once a second). Wait for SQLite's write lock rather than failing.
        return {"connect_args": {"timeout": 30}}
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        # No task uses an ETA or a long countdown (webhook retries are rows in the
        # database), so the visibility timeout only bounds how long a dead worker's
        # unacknowledged task waits before Redis hands it out again.
        return {"visibility_timeout": 3600}
    return {}


class CeleryTaskQueue:
    """``booking_engine.ports.TaskQueue`` over a broker. ``enabled=False`` sends nothing (in-process
    tests, benches and the demo that drive the jobs themselves)."""

    def __init__(self, broker_url: str, *, app: Any = None, enabled: bool = True) -> None:
        self.broker_url = broker_url
        self.enabled = enabled
        self._app = app

    def _celery(self) -> Any:
        if self._app is None:
            if self.broker_url.startswith("sqla+sqlite:///"):
                # The embedded broker is a SQLite file in the data directory, which need not exist yet.
                Path(self.broker_url.removeprefix("sqla+sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            from celery import Celery

            self._app = Celery("calbook-sender", broker=self.broker_url, set_as_current=False)
            self._app.conf.update(task_serializer="json", accept_content=["json"], task_default_queue=QUEUE,
                                  task_routes=task_routes(), task_queues=task_queues(),
                                  broker_transport_options=broker_transport_options(self.broker_url))
        return self._app

    def send(self, task: str, *args: Any, countdown: float = 0, expires: float | None = None,
             connection_id: str | None = None) -> bool:
        """Publish ``task(*args)`` to its queue (``ROUTES``); False (logged) when the broker refused or
        sending is off."""
        if not self.enabled:
            return False
        context = {"task": task, "connection_id": connection_id, "queue": queue_for(task)}
        try:
            from kombu import Connection

            app = self._celery()
            if app.conf.broker_url == self.broker_url:
                connection = app.connection_for_write(connect_timeout=CONNECT_TIMEOUT)
            else:  # the app's transport options belong to its own broker, not to this one
                connection = Connection(self.broker_url, connect_timeout=CONNECT_TIMEOUT,
                                        transport_options=broker_transport_options(self.broker_url))
            with connection as conn:
                app.send_task(task, args=list(args), countdown=countdown or None, expires=expires,
                              connection=conn, retry=False, queue=queue_for(task))
        except Exception as exc:  # noqa: BLE001 - sending must never fail the caller
            log.warning("could not queue task; the periodic jobs will pick the work up",
                        extra={**context, "error": type(exc).__name__})
            return False
        log.debug("task queued", extra=context)
        return True

    # -- the TaskQueue port ---------------------------------------------------------------------

    def sync(self, connection_id: str, countdown: float = 0) -> bool:
        """The connection is due (the caller made it so): the dispatcher claims it first and queues
        its sync, so a sync is never queued twice (docs/sync.md#scheduling). False: not sent."""
        sent = self.send(DISPATCH_SYNCS, connection_id, countdown=countdown, expires=KICK_EXPIRES,
                         connection_id=connection_id)
        if sent:
            log.info("calendar sync asked for", extra={"connection_id": connection_id})
        return sent

    def sync_changed(self, connection_id: str) -> None:
        """A change notification: the same path; a sync running now makes it due again when it ends."""
        self.send(DISPATCH_SYNCS, connection_id, expires=KICK_EXPIRES, connection_id=connection_id)

    def sync_claimed(self, claim: Any) -> bool:
        """The sync of a dispatcher's claim (``connections.SyncClaim``), carrying the claim's token; it
        expires with the claim, after which the connection is claimable again anyway."""
        expires = max(1.0, (claim.lease_until - _now()).total_seconds())
        return self.send(SYNC, claim.connection_id, False, claim.lease_until.isoformat(), expires=expires,
                         connection_id=claim.connection_id)

    def dispatch_syncs(self) -> None:
        self.send(DISPATCH_SYNCS, expires=KICK_EXPIRES)

    def drain_push(self) -> None:
        """Run the calendar-push drain now (``calbook.push``) rather than at the next tick."""
        self.send(DRAIN_PUSH, expires=KICK_EXPIRES)

    def watch(self, connection_id: str) -> None:
        self.send(WATCH, connection_id, connection_id=connection_id)

    def drain_outbox(self) -> None:
        self.send(DISPATCH_OUTBOX, expires=KICK_EXPIRES)

    def deliver_webhooks(self) -> None:
        self.send(DELIVER_WEBHOOKS, expires=KICK_EXPIRES)
