"""The worker's composition root: its tables and the resources of one worker process.

Everything the worker runs is in one of these tables, nothing registers itself by being imported:

* ``outbox_handlers(settings)`` - what each outbox event runs (e-mail, webhooks, calendar
  push, disconnect cleanup, per-provider reauth cleanup), by handler name;
* ``periodic_tasks(settings)`` - beat's table: every periodic task and how often (docs/worker.md#schedule);
* ``PROVIDERS`` - per calendar provider, what the worker does around a sync, a disconnect,
  ``reauth_required`` and the watch of its change notifications; a provider with nothing to do
  needs no entry, a new one needs one line;
* ``after_sync``/``cleanup_connection`` read the provider table.

``current()`` builds the process's resources (``Worker``: settings, store, task sender) on first
use, after the pool has forked: an engine must not cross a ``fork``, so nothing is opened at
import time and each pool process starts afresh. The Celery tasks (``worker.tasks``) take their
arguments from the message and everything else from ``current()``, and hand it down explicitly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery.schedules import crontab
from celery.signals import worker_process_init

from booking_engine.connections import CalendarConnection, Provider
from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from config.settings import Settings
from config.task_sender import DELIVER_WEBHOOKS, DISPATCH_OUTBOX, DISPATCH_SYNCS, DRAIN_PUSH, CeleryTaskQueue
from worker import outbox
from worker.calendar import google as google_channels
from worker.calendar import microsoft as microsoft_subscriptions
from worker.calendar import push
from worker.calendar import sync as calendar_sync
from worker.calendar.sync import SyncOutcome
from worker.notifications import email, webhooks
from worker.outbox import DispatchResult, HandlerTable, OutboxEvent, OutboxHandler

# --- providers ---------------------------------------------------------------------------

ConnectionHook = Callable[[Store, str, Settings], object]


@dataclass(frozen=True, slots=True)
class ProviderWiring:
    """What the worker does for one provider beyond pull and push (``connectors.factory`` opens it)."""

    after_sync: ConnectionHook | None = None
    """After a successful sync (Google: open and stop channels when the busy calendars changed)."""
    on_disconnect: ConnectionHook | None = None
    """Undo at the provider before the credentials are wiped (Google: stop the channels)."""
    on_reauth_required: ConnectionHook | None = None
    """When the grant turned out revoked, whichever path found it (Google: mark channels stopped)."""
    watch: Callable[[Store, str, Settings], str] | None = None
    """Open, renew or stop the change notifications of a connection; answers its status."""


def _google_stop_channels(store: Store, connection_id: str, settings: Settings) -> object:
    return google_channels.stop_channels(store, connection_id, settings=settings)


def _google_forget_channels(store: Store, connection_id: str, settings: Settings) -> object:
    return google_channels.stop_channels(store, connection_id, settings=settings, call_google=False)


def _google_reconcile(store: Store, connection_id: str, settings: Settings) -> object:
    return google_channels.reconcile_watches(store, connection_id, settings=settings)


def _google_watch(store: Store, connection_id: str, settings: Settings) -> str:
    return google_channels.ensure_watches(store, connection_id, settings=settings).status


def _microsoft_stop_subscriptions(store: Store, connection_id: str, settings: Settings) -> object:
    return microsoft_subscriptions.stop_subscriptions(store, connection_id, settings=settings)


def _microsoft_forget_subscriptions(store: Store, connection_id: str, settings: Settings) -> object:
    return microsoft_subscriptions.stop_subscriptions(store, connection_id, settings=settings, call_graph=False)


def _microsoft_watch(store: Store, connection_id: str, settings: Settings) -> str:
    return microsoft_subscriptions.ensure_subscriptions(store, connection_id, settings=settings).status


PROVIDERS: dict[str, ProviderWiring] = {
    Provider.GOOGLE: ProviderWiring(after_sync=_google_reconcile, on_disconnect=_google_stop_channels,
                                    on_reauth_required=_google_forget_channels, watch=_google_watch),
    Provider.MICROSOFT: ProviderWiring(on_disconnect=_microsoft_stop_subscriptions,
                                       on_reauth_required=_microsoft_forget_subscriptions, watch=_microsoft_watch),
}


def after_sync(store: Store, connection: CalendarConnection, settings: Settings) -> None:
    """``worker.calendar.sync``'s hook: the provider's own step after a sync, if it has one."""
    hook = PROVIDERS.get(str(connection.provider), ProviderWiring()).after_sync
    if hook is not None:
        hook(store, connection.id, settings)


def watch_connection(store: Store, connection_id: str, settings: Settings) -> str:
    """The connection's change notifications brought up to date by its provider's ``watch`` step."""
    connection = connection_service.load_for_sync(store, connection_id)
    if connection is None:
        return "skipped"
    hook = PROVIDERS.get(str(connection.provider), ProviderWiring()).watch
    return hook(store, connection_id, settings) if hook is not None else "skipped"


def reauth_cleanup(store: Store, connection_id: str, provider: str, settings: Settings) -> None:
    hook = PROVIDERS.get(provider, ProviderWiring()).on_reauth_required
    if hook is not None:
        hook(store, connection_id, settings)


def cleanup_connection(store: Store, event: OutboxEvent, settings: Settings) -> None:
    """After a disconnect: the provider's own cleanup first (it needs the credentials), then the
    credentials are wiped. A transient failure propagates and the outbox retries the whole cleanup."""
    connection_id = event.payload["connectionId"]
    hook = PROVIDERS.get(str(event.payload.get("provider")), ProviderWiring()).on_disconnect
    if hook is not None:
        hook(store, connection_id, settings)
    connection_service.forget_credentials(store, connection_id)


# --- outbox handlers -----------------------------------------------------------------------

BOOKING_CHANGES = ("booking.confirmed", "booking.rescheduled", "booking.cancelled")

CALENDAR_PUSH = "calendar-push"
SEPARATE_DRAINS: tuple[str, ...] = (CALENDAR_PUSH,)
"""Handlers the outbox dispatch (``calbook.notify``) hands off to a drain of their own: the calendar
push runs on ``calbook.push`` (``calbook.outbox.push``), so a slow calendar server never delays the
e-mails and webhooks of the same batch (docs/worker.md#outbox). In-process callers of
``drain_outbox`` (the demo, tests) run every handler inline."""


def outbox_handlers(settings: Settings) -> HandlerTable:
    """Handler name (recorded per event in ``outbox_handler_runs``) -> event types and function."""

    def send_email(store: Store, event: OutboxEvent) -> None:
        email.send_event_emails(store, event, settings=settings)

    def push_to_calendars(store: Store, event: OutboxEvent) -> None:
        push.handle_push_event(store, event.payload, event.aggregate_id, settings=settings)

    def disconnect_cleanup(store: Store, event: OutboxEvent) -> None:
        cleanup_connection(store, event, settings)

    def reauth_hooks(store: Store, event: OutboxEvent) -> None:
        reauth_cleanup(store, event.payload["connectionId"], str(event.payload.get("provider")), settings)

    def fan_out_webhooks(store: Store, event: OutboxEvent) -> None:
        webhooks.fan_out(store, event)

    return {
        "email": OutboxHandler(email.EMAIL_EVENTS, send_email),
        "webhooks": OutboxHandler(("*",), fan_out_webhooks),
        CALENDAR_PUSH: OutboxHandler(BOOKING_CHANGES, push_to_calendars),
        "connection-cleanup": OutboxHandler(("connection.disconnected",), disconnect_cleanup),
        "reauth-cleanup": OutboxHandler(("connection.reauth_required",), reauth_hooks),
    }


def sync_connection(
    store: Store, connection_id: str, settings: Settings, *, force_reconcile: bool = False,
    lease_token: datetime | None = None,
) -> SyncOutcome:
    """One connection's sync with the provider's after-sync step (the tasks, ``calbook demo``, tests)."""
    return calendar_sync.sync_connection(store, connection_id, settings=settings, after_sync=after_sync,
                                         force_reconcile=force_reconcile, lease_token=lease_token)


def drain_outbox(store: Store, settings: Settings, budget_seconds: float | None = None) -> DispatchResult:
    """Dispatch the outbox with the worker's handler table (the task, ``calbook demo``, tests)."""
    return outbox.drain(store, outbox_handlers(settings), settings=settings, budget_seconds=budget_seconds)


# --- periodic tasks --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Periodic:
    """A beat entry; it expires after its own interval (15 min for a crontab): when workers are
    busy, stale triggers are dropped instead of piling up, the next one comes anyway."""

    task: str
    every: float | crontab
    options: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        expires = self.every if isinstance(self.every, int | float) else 15 * 60
        return {"task": self.task, "schedule": self.every, "options": {"expires": expires, **self.options}}


def periodic_tasks(settings: Settings) -> dict[str, Periodic]:
    knobs = settings.worker
    return {
        # Continuous outbox dispatch: a drain every few seconds, plus the kick after each write.
        "outbox-dispatch": Periodic(DISPATCH_OUTBOX, knobs.outbox_interval_seconds),
        "webhook-delivery": Periodic(DELIVER_WEBHOOKS, knobs.webhook_interval_seconds),
        # The calendar-push drain's tick (its retries come due); the dispatch kicks it after a hand-off.
        "calendar-push": Periodic(DRAIN_PUSH, knobs.outbox_interval_seconds * 5),
        "reminders": Periodic("calbook.bookings.send_reminders", 15 * 60),
        "booking-starting": Periodic("calbook.bookings.announce_starting", knobs.starting_interval_seconds),
        "auto-complete": Periodic("calbook.bookings.complete_due", 30 * 60),
        "expire-unconfirmed-bookings": Periodic("calbook.bookings.expire_unconfirmed", 15 * 60),
        "expire-payment-holds": Periodic("calbook.bookings.expire_payment_holds",
                                         knobs.payment_expiry_interval_seconds),
        "expire-requests": Periodic("calbook.requests.expire", 15 * 60),
        "integrity-audit": Periodic("calbook.audit.conflicts", crontab(hour=3, minute=17)),
        "retention": Periodic("calbook.maintenance.prune", crontab(hour=4, minute=37)),
        # The sync dispatcher's tick; each connection's own due time says when it syncs.
        "calendar-sync": Periodic(DISPATCH_SYNCS, knobs.sync_dispatch_interval_seconds),
        "watch-renewal": Periodic("calbook.google.renew_channels", crontab(minute=7)),
        "microsoft-subscription-renewal": Periodic("calbook.microsoft.renew_subscriptions", crontab(minute=17)),
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {name: p.entry() for name, p in periodic_tasks(settings).items()}


# --- the resources of one worker process -------------------------------------------------------

POOL_ENV = "CALBOOK_WORKER_POOL"
"""Set by ``calbook worker`` to the Celery pool it runs (``prefork`` or ``threads``)."""


@dataclass(slots=True)
class Worker:
    """What a worker process's tasks are handed: its settings, store, task sender, handler table."""

    settings: Settings
    store: Store
    tasks: CeleryTaskQueue
    handlers: HandlerTable


_settings: Settings | None = None
_current: Worker | None = None
_sending = True
_building = threading.Lock()


def settings() -> Settings:
    """This process's settings, read from the environment once (the Celery app, beat, signals)."""
    global _settings
    if _settings is None:
        with _building:
            if _settings is None:
                _settings = Settings()
    return _settings


def _pool_size(config: Settings) -> tuple[int, int]:
    """Database connections per process: a prefork child runs one task at a time; a thread pool
    (the sync and push workers, docs/worker.md#pools) runs ``io_concurrency`` at once."""
    threads = config.worker.io_concurrency if os.environ.get(POOL_ENV) == "threads" else 1
    return max(2, threads), 4


def current() -> Worker:
    """This process's resources, built once on first use (after the fork). Thread-safe: under a
    thread pool every thread shares the one ``Worker`` (an SQLAlchemy engine and its pool, the
    Celery app's producer pool and the settings are made for that; nothing else is kept)."""
    global _current
    if _current is None:
        with _building:
            if _current is None:
                from worker.app import celery_app

                config = settings()
                size, overflow = _pool_size(config)
                store = Store.from_url(config.resolved_database_url(), pool_size=size, max_overflow=overflow)
                tasks = CeleryTaskQueue(celery_app.conf.broker_url, app=celery_app)
                _current = Worker(config, store, tasks, outbox_handlers(config))
    _current.tasks.enabled = _sending
    return _current


def use(worker: Worker | None) -> None:
    """Put given resources in place (an in-process test with its own store), or drop them (None:
    the next ``current()`` builds them afresh, from the environment as it is then)."""
    global _current, _settings
    if _current is not None and worker is None:
        _current.store.engine.dispose(close=False)
    _current = worker
    if worker is None:
        _settings = None


def set_sending_enabled(enabled: bool) -> None:
    """In-process tests, benches and the demo that drive the jobs themselves switch sending off."""
    global _sending
    _sending = enabled


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    global _current
    if _current is not None:
        _current.store.engine.dispose(close=False)
    _current = None
