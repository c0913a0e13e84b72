"""Which errors are worth a Celery retry: transient ones only.

A lost database connection, a locked SQLite file, a broker hiccup or a network timeout
may pass; a bug or a validation error will not, and is logged instead of retried forever.
"""

from __future__ import annotations

import smtplib
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError, OperationalError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DBAPIError,
    ConnectionError,
    TimeoutError,
    smtplib.SMTPServerDisconnected,
    httpx.TransportError,
)

RETRY_OPTIONS: dict[str, Any] = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
    "reject_on_worker_lost": True,
}
