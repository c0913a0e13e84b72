"""The beat schedule (docs/worker.md#schedule): every periodic task and how often it runs.

Every entry is in the one table below (``_register_core``); ``register_periodic`` adds or
replaces one (a test's).

Every entry expires after its own interval (or 15 min for crontabs): when workers are busy,
stale triggers are dropped instead of piling up, because the next one will come anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery.schedules import crontab

from worker.settings import get_worker_settings


@dataclass(frozen=True, slots=True)
class Periodic:
    task: str
    schedule: float | crontab
    options: dict[str, Any] = field(default_factory=dict)


PERIODIC: dict[str, Periodic] = {}

CALENDAR_SYNC_SECONDS = 5 * 60
"""How often CalDAV and ICS connections are polled (the due-sync tick)."""


def register_periodic(name: str, task: str, every: float | crontab, **options: Any) -> None:
    """Add (or replace) a beat entry; ``every`` is seconds or a ``crontab``."""
    expires = options.pop("expires", every if isinstance(every, int | float) else 15 * 60)
    PERIODIC[name] = Periodic(task, every, {"expires": expires, **options})


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {name: {"task": p.task, "schedule": p.schedule, "options": dict(p.options)} for name, p in PERIODIC.items()}


def _register_core() -> None:
    knobs = get_worker_settings()
    # Continuous outbox dispatch: a drain every few seconds, plus the kick after each write.
    register_periodic("outbox-dispatch", "calbook.outbox.dispatch", knobs.outbox_interval_seconds)
    register_periodic("webhook-delivery", "calbook.webhooks.deliver", knobs.webhook_interval_seconds)
    register_periodic("reminders", "calbook.bookings.send_reminders", 15 * 60)
    register_periodic("booking-starting", "calbook.bookings.announce_starting", knobs.starting_interval_seconds)
    register_periodic("auto-complete", "calbook.bookings.complete_due", 30 * 60)
    register_periodic("expire-unconfirmed-bookings", "calbook.bookings.expire_unconfirmed", 15 * 60)
    register_periodic("expire-payment-holds", "calbook.bookings.expire_payment_holds",
                      knobs.payment_expiry_interval_seconds)
    register_periodic("expire-requests", "calbook.requests.expire", 15 * 60)
    register_periodic("integrity-audit", "calbook.audit.conflicts", crontab(hour=3, minute=17))
    register_periodic("retention", "calbook.maintenance.prune", crontab(hour=4, minute=37))
    register_periodic("calendar-sync", "calbook.sync.due_connections", CALENDAR_SYNC_SECONDS)
    register_periodic("watch-renewal", "calbook.google.renew_channels", crontab(minute=7))
    register_periodic("microsoft-subscription-renewal", "calbook.microsoft.renew_subscriptions", crontab(minute=17))


_register_core()
