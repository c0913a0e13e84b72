"""Outbound webhook subscriptions (``/v1/webhook-subscriptions``), owner-scoped.

The signing secret is generated here, returned once at creation, and stored encrypted (it
must be readable again to sign deliveries, so it cannot be hashed). The store receives an
already-encrypted value from the caller's ``encrypt`` function, which keeps the domain
free of key handling.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from booking_engine.errors import NotFound, ValidationError
from booking_engine.model import new_id
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import users as user_rows
from booking_engine.store.repositories import webhook_subscriptions as subscription_rows
from booking_engine.timeutil import iso_z

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "booking.created",
        "booking.confirmed",
        "booking.cancelled",
        "booking.rescheduled",
        "booking.completed",
        "booking.no_show",
        "booking.reminder",
        "booking.starting",
        "booking.conflict",
        "booking.paid",
        "booking.payment_expired",
        "booking.refund_due",
        "booking_request.created",
        "booking_request.accepted",
        "booking_request.rejected",
        "booking_request.withdrawn",
        "booking_request.expired",
        "connection.reauth_required",
    }
)
MAX_SUBSCRIPTIONS = 20


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2000:
        raise ValidationError("url must be an http(s) URL of at most 2000 characters", field="url")
    try:
        parts = urlsplit(url)
        has_userinfo = "@" in parts.netloc or parts.username is not None
    except ValueError as exc:
        raise ValidationError("url must be an absolute http(s) URL", field="url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("url must be an absolute http(s) URL", field="url")
    if has_userinfo:
        # Credentials in a URL end up in logs and proxies; receivers verify the signature instead.
        raise ValidationError("url must not contain a user name or password", field="url")
    return url


def _check_events(events: Any) -> list[str]:
    if events is None:
        return sorted(EVENT_TYPES)
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationError("events must be a non-empty list of event types", field="events")
    unknown = set(events) - EVENT_TYPES - {"*"}
    if unknown:
        raise ValidationError(f"unknown event types: {', '.join(sorted(unknown))}", field="events")
    return sorted(EVENT_TYPES) if "*" in events else sorted(set(events))


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": list(row["event_types"]),
        "active": row["active"],
        "createdAt": iso_z(row["created_at"]),
    }


def create_subscription(
    store: Store, owner_id: str, url: Any, events: Any, encrypt: Callable[[str], str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Create a subscription; the answer holds ``secret`` this once and never again."""
    url = _check_url(url)
    types = _check_events(events)
    secret = "whsec_" + secrets.token_urlsafe(32)
    moment = now_or(now)
    sub_id = new_id()
    with store.write() as conn:
        user_rows.ensure_user(conn, owner_id, moment)
        if subscription_rows.count_of_owner(conn, owner_id) >= MAX_SUBSCRIPTIONS:
            raise ValidationError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per owner")
        subscription_rows.insert_subscription(
            conn, id=sub_id, owner_id=owner_id, url=url, secret=encrypt(secret), event_types=types,
            active=True, created_at=moment,
        )
        row = subscription_rows.get(conn, sub_id)
    return {**_public(row), "secret": secret}


def list_subscriptions(store: Store, owner_id: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [_public(r) for r in subscription_rows.list_of_owner(conn, owner_id)]


def delete_subscription(store: Store, owner_id: str, subscription_id: str) -> None:
    with store.write() as conn:
        if not subscription_rows.delete_of_owner(conn, owner_id, subscription_id):
            raise NotFound("webhook subscription not found")


def subscriptions_for_event(store: Store, owner_ids: list[str], event_type: str) -> list[dict[str, Any]]:
    """Active subscriptions of the given owners that want ``event_type`` (secret still encrypted)."""
    with store.read() as conn:
        rows = subscription_rows.active_of_owners(conn, owner_ids)
    return [dict(r) for r in rows if event_type in r["event_types"]]
