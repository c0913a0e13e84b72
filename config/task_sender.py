"""The one task sender: calbook's Celery tasks sent by name to a broker (the ``TaskQueue`` port).

Both process kinds use it: the API (a connect, ``POST .../sync``, a Google notification) and the
worker (the periodic sync, kicks after a job wrote events). Tasks go by name, so the sender
needs no task module and the API imports nothing from ``worker/``; to the broker of the
settings it was built with, so a test or a second deployment never publishes to another's.

Sending is an optimisation only, never a failure of the caller: what is asked for is noted in
the database first (``sync_requested_at``, outbox rows, due webhook deliveries), and the
periodic jobs pick it up within minutes when a message is lost. So a short connect timeout, no
publish retries, and an error is logged and swallowed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

QUEUE = "calbook"
"""The one queue every calbook worker consumes (the worker app's ``task_default_queue``)."""

SYNC = "calbook.sync.connection"
SYNC_CHANGED = "calbook.google.sync"
WATCH = "calbook.google.watch"
DISPATCH_OUTBOX = "calbook.outbox.dispatch"
DELIVER_WEBHOOKS = "calbook.webhooks.deliver"

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
                                  broker_transport_options=broker_transport_options(self.broker_url))
        return self._app

    def send(self, task: str, *args: Any, countdown: float = 0, expires: float | None = None,
             connection_id: str | None = None) -> bool:
        """Publish ``task(*args)``; False (logged) when the broker refused or sending is off."""
        if not self.enabled:
            return False
        context = {"task": task, "connection_id": connection_id}
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
                              connection=conn, retry=False)
        except Exception as exc:  # noqa: BLE001 - sending must never fail the caller
            log.warning("could not queue task; the periodic jobs will pick the work up",
                        extra={**context, "error": type(exc).__name__})
            return False
        log.debug("task queued", extra=context)
        return True

    # -- the TaskQueue port ---------------------------------------------------------------------

    def sync(self, connection_id: str, countdown: float = 0) -> None:
        if self.send(SYNC, connection_id, countdown=countdown, connection_id=connection_id):
            log.info("calendar sync queued", extra={"connection_id": connection_id})

    def sync_changed(self, connection_id: str) -> None:
        self.send(SYNC_CHANGED, connection_id, connection_id=connection_id)

    def watch(self, connection_id: str) -> None:
        self.send(WATCH, connection_id, connection_id=connection_id)

    def drain_outbox(self) -> None:
        self.send(DISPATCH_OUTBOX, expires=KICK_EXPIRES)

    def deliver_webhooks(self) -> None:
        self.send(DELIVER_WEBHOOKS, expires=KICK_EXPIRES)
