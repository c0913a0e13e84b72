"""Queue a connection's sync from outside the worker (the API's ``POST .../{id}/sync``).

Sent by task name, so the caller needs no task module; to the broker the caller names
(the API's own settings), so a test or a second deployment never publishes to another's
broker. Like ``worker.kick`` it is an optimisation only: when the broker is down the
request has still been noted (``connections.request_sync``) and the periodic
``calbook.sync.due_connections`` picks it up within five minutes, so a failure here is
logged and swallowed, never passed on to the caller.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

SYNC_TASK = "calbook.sync.connection"
#: Seconds to wait for the broker: the API answers a person, the periodic sync is the backstop.
CONNECT_TIMEOUT = 3.0


def queue_sync(connection_id: str, broker_url: str | None = None, countdown: float = 0) -> bool:
    """Publish ``calbook.sync.connection(connection_id)``; False (logged) when the broker refused."""
    try:
        from kombu import Connection

        from worker.app import celery_app

        if broker_url is None or broker_url == celery_app.conf.broker_url:
            connection = celery_app.connection_for_write(connect_timeout=CONNECT_TIMEOUT)
        else:  # the app's transport options belong to its own broker, not to this one
            connection = Connection(broker_url, connect_timeout=CONNECT_TIMEOUT)
        with connection as conn:
            celery_app.send_task(SYNC_TASK, args=[connection_id], countdown=countdown or None,
                                 connection=conn, retry=False)
    except Exception as exc:  # noqa: BLE001 - queueing must never fail the caller
        log.warning("could not queue calendar sync; the periodic sync will pick it up",
                    extra={"connection_id": connection_id, "error": type(exc).__name__})
        return False
    log.info("calendar sync queued", extra={"connection_id": connection_id})
    return True
