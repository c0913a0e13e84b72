"""The default outbox handlers: e-mail for the events people are told about, webhooks for all.

Importing this module registers them (``worker.tasks`` does, so every worker has them).
The calendar handlers (push, disconnect cleanup, channels on reauth) register the same way from
``worker.tasks.sync`` and ``worker.tasks.google``.
"""

from __future__ import annotations

from booking_engine.store.db import Store
from worker.notifications import email, webhooks
from worker.outbox import OutboxEvent, add_handler


def send_email(store: Store, event: OutboxEvent) -> None:
    email.send_event_emails(store, event)


def queue_webhooks(store: Store, event: OutboxEvent) -> None:
    # The dispatch task kicks the delivery task once per drain, not once per event.
    webhooks.fan_out(store, event)


add_handler(email.EMAIL_EVENTS, send_email, name="email")
add_handler(["*"], queue_webhooks, name="webhooks")
