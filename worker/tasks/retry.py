"""Which errors are worth a Celery retry (transient ones only), and the task options for a policy.

A lost database connection, a locked SQLite file, a broker hiccup or a network timeout
may pass; a bug or a validation error will not, and is logged instead of retried forever.
The delays are ``config.retry``'s policies.
"""

from __future__ import annotations

import smtplib
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError, OperationalError

from config.retry import CALENDAR_TASK, TASK, RetryPolicy
from connectors.base import TransientError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DBAPIError,
    ConnectionError,
    TimeoutError,
    smtplib.SMTPServerDisconnected,
    httpx.TransportError,
)


def retry_options(policy: RetryPolicy, errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS) -> dict[str, Any]:
    """Celery options: retry ``errors`` under ``policy``, the message acknowledged after the run."""
    return {"autoretry_for": errors, **policy.celery_options(), "acks_late": True, "reject_on_worker_lost": True}


RETRY_OPTIONS = retry_options(TASK)
"""Every task that does not talk to a calendar provider."""

CALENDAR_RETRY_OPTIONS = retry_options(CALENDAR_TASK, (TransientError, *TRANSIENT_ERRORS))
"""The tasks that talk to a calendar provider: its ``TransientError`` too, after its own retries."""
