"""Webhook delivery task: attempt every due delivery; beat runs it every few seconds."""

from __future__ import annotations

from celery import shared_task

from config.task_sender import DELIVER_WEBHOOKS
from worker import wiring
from worker.notifications import webhooks
from worker.tasks.retry import RETRY_OPTIONS


@shared_task(name=DELIVER_WEBHOOKS, **RETRY_OPTIONS)
def deliver_webhooks() -> int:
    worker = wiring.current()
    return webhooks.deliver_due(worker.store, settings=worker.settings)
