"""Webhook delivery task: attempt every due delivery; beat runs it every few seconds."""

from __future__ import annotations

from celery import shared_task

from worker.notifications import webhooks
from worker.runtime import get_store
from worker.tasks.retry import RETRY_OPTIONS


@shared_task(name="calbook.webhooks.deliver", **RETRY_OPTIONS)
def deliver_webhooks() -> int:
    return webhooks.deliver_due(get_store())
