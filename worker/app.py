"""The Celery app, configured from the settings ``worker.wiring`` reads: ``celery -A worker.app:celery_app``.

Broker: the settings' URL, which is kombu's SQLAlchemy transport on a SQLite file next to
the database by default (nothing to install) or Redis when ``CALBOOK_BROKER_URL`` says so.
Delivery is at-least-once: ``acks_late`` with ``task_reject_on_worker_lost`` puts a task
back when its worker dies, prefetch 1 keeps a busy worker from hoarding messages, and
every task is idempotent because its state lives in the database (outbox rows, leases,
notification log), never in the message.

Logging is calbook's, not Celery's (``_calbook_logging``): with a ``setup_logging`` receiver
connected Celery leaves logging alone, so the worker, its pool processes and beat log in the
same format, at ``CALBOOK_LOG_LEVEL``, as the API, and the periodic ticks stay at DEBUG.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from celery import Celery, signals

from config.logging import setup_logging
from config.settings import Settings
from config.task_sender import QUEUE, broker_transport_options, task_queues, task_routes
from worker import wiring
from worker.broker import TRANSPORT_PATH


def make_app(settings: Settings) -> Celery:
    knobs = settings.worker
    broker_url = settings.resolved_broker_url()
    if broker_url.startswith("sqla+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("calbook")
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options=broker_transport_options(broker_url),
        # kombu's Redis transport with the outage fix of ``worker.broker``; None: from the URL.
        broker_transport=TRANSPORT_PATH if broker_url.startswith(("redis://", "rediss://")) else None,
        broker_connection_retry_on_startup=True,
        result_backend=settings.result_backend,
        task_ignore_result=settings.result_backend is None,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=knobs.task_soft_time_limit,
        task_time_limit=knobs.task_time_limit,
        task_default_queue=QUEUE,
        # One queue per kind of work (docs/worker.md#queues); a worker serves any subset (``-Q``),
        # all of them when it names none.
        task_queues=task_queues(),
        task_routes=task_routes(),
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


celery_app = make_app(wiring.settings())
celery_app.conf.beat_schedule = wiring.beat_schedule(wiring.settings())

# Celery's tasks and signal receivers: the task modules, the heartbeat, the task counters and metrics port.
from worker import heartbeat, metrics, tasks  # noqa: E402,F401


def _process_kind() -> str:
    words = sys.argv[1:]
    return "beat" if "beat" in words and "worker" not in words else "worker"


@signals.setup_logging.connect
def _calbook_logging(**_: Any) -> None:
    settings = wiring.settings()
    ticks = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    setup_logging(settings.log_level, settings.log_format, process=_process_kind(), quiet_tasks=ticks)


@signals.beat_init.connect
def _beat_stops_between_ticks(sender: Any = None, **_: Any) -> None:
    """SIGTERM/SIGINT ask beat to stop after its current tick (docs/operations.md#supervising-the-processes).

    Celery's own handler saves and closes the schedule file from inside the signal handler, which
    can land in the middle of a tick that is reading that file: beat then dies with "invalid
    operation on closed shelf" and exit status 1 instead of stopping. Setting the stop flag lets the
    loop finish the tick, and its ``finally`` saves the schedule as before.
    """
    if sender is None:
        return

    def stop(_signum: int, _frame: Any) -> None:
        sender.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
