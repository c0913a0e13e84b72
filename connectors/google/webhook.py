"""Pure helpers for the Google push-notification receiver (``POST /v1/webhooks/google``).

The receiver looks the channel up by ``X-Goog-Channel-ID``, checks the channel token against
the stored hash in constant time, and queues an incremental sync for that calendar. Only a
hash of the token is stored: a leaked database row cannot be replayed as a notification.
Google sends ``sync`` once when the channel opens (nothing changed yet), then ``exists`` or
``not_exists`` when the watched events change.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from config.settings import Settings


class WebhookAction(StrEnum):
    IGNORE = "ignore"
    """Acknowledge and do nothing (``sync`` handshake, unknown resource state)."""
    QUEUE_SYNC = "queue_sync"
    """Acknowledge and enqueue an incremental sync of the channel's calendar."""
    REJECT = "reject"
    """Not a notification from a channel we opened: wrong or missing token, unknown channel."""


@dataclass(frozen=True, slots=True)
class ChannelNotification:
    channel_id: str
    resource_id: str | None
    resource_state: str | None
    token: str | None
    message_number: int | None
    expiration: datetime | None
    resource_uri: str | None


WEBHOOK_PATH = "/v1/webhooks/google"


def webhook_address(settings: Settings) -> str:
    """Where Google sends the notifications of the channels this server opens."""
    return settings.public_base_url.rstrip("/") + WEBHOOK_PATH


def hash_channel_token(token: str) -> str:
    """SHA-256 hex of a channel token, for storage; the token is 256 random bits, so no salt."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(stored_hash: str | None, presented_token: str | None) -> bool:
    """Constant-time check of a presented channel token against the stored hash."""
    if not stored_hash or not presented_token:
        return False
    return hmac.compare_digest(hash_channel_token(presented_token).encode(), stored_hash.encode())


def parse_notification(headers: Mapping[str, str]) -> ChannelNotification | None:
    """The ``X-Goog-*`` headers as a dataclass; ``None`` when there is no channel id at all."""
    lowered = {key.lower(): value for key, value in headers.items()}
    channel_id = lowered.get("x-goog-channel-id")
    if not channel_id:
        return None
    return ChannelNotification(
        channel_id=channel_id,
        resource_id=lowered.get("x-goog-resource-id"),
        resource_state=(lowered.get("x-goog-resource-state") or "").lower() or None,
        token=lowered.get("x-goog-channel-token"),
        message_number=_int_or_none(lowered.get("x-goog-message-number")),
        expiration=_http_date_or_none(lowered.get("x-goog-channel-expiration")),
        resource_uri=lowered.get("x-goog-resource-uri"),
    )


def decide_action(
    notification: ChannelNotification | None,
    stored_token_hash: str | None,
    stored_resource_id: str | None = None,
) -> WebhookAction:
    """What the receiver does with one notification, given the stored channel (``None`` fields
    when the channel id is unknown)."""
    if notification is None or not token_matches(stored_token_hash, notification.token):
        return WebhookAction.REJECT
    if stored_resource_id is not None and notification.resource_id != stored_resource_id:
        return WebhookAction.REJECT
    if notification.resource_state in ("exists", "not_exists"):
        return WebhookAction.QUEUE_SYNC
    return WebhookAction.IGNORE


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _http_date_or_none(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
