"""Signed outbound webhooks: fan-out from the outbox, then durable delivery with retries.

Two steps, both idempotent:

1. ``fan_out`` (an outbox handler) writes one ``webhook_deliveries`` row per interested
   subscription of the event's owners (the booking's or request's user and expert). The
   row's unique ``(event_id, subscription_id)`` key means a re-dispatched event adds nothing.
   The body is serialised once, here, so every retry sends the same bytes.
2. ``deliver_due`` (a Celery task, kicked after a fan-out and run by beat every few seconds)
   leases due rows, POSTs them, and records the outcome. A 2xx ends the delivery
   (``succeeded``: it is never sent again); anything else schedules the next attempt with
   exponential backoff and jitter, until the retry window (24 h) from the event is over
   (``failed``). Every attempt is logged in ``webhook_delivery_attempts``.

Before each POST the URL is checked again (``connectors.url_policy``; the API checked it when
the subscription was made, but DNS can change since): unless ``CALBOOK_ALLOW_PRIVATE_URLS`` is
set, a URL that now resolves to a private or local address is not sent, and the delivery ends
``failed`` at once, its attempt recorded with the reason (no retries: the same check would
refuse every one). A host that does not resolve is a network error like any other and is
retried with backoff within the window. The subscription itself stays active.

A worker killed mid-POST leaves its lease to expire, and the delivery is sent again with
the same ``X-Calbook-Event-Id``: receivers deduplicate on it (at-least-once).

Signature: ``X-Calbook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import literal_column, or_, select, update

from booking_engine.clock import utcnow
from booking_engine.services.webhook_subscriptions import subscriptions_for_event
from booking_engine.store.db import Store
from booking_engine.store.tables import webhook_subscriptions
from booking_engine.store.worker_tables import webhook_deliveries, webhook_delivery_attempts
from config.retry import RetryPolicy
from config.settings import Settings
from connectors.secrets import CredentialsUnreadable, decrypt_json
from connectors.url_policy import UnresolvableURL, UnsafeURL, check_public_url
from worker.db import insert_ignore, skip_locked
from worker.identity import current_worker_id
from worker.metrics import count_webhook_attempt
from worker.outbox import OutboxEvent, stale_worker_ids

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Calbook-Signature"
EVENT_ID_HEADER = "X-Calbook-Event-Id"
_PENDING = webhook_deliveries.c.status == literal_column("'pending'")


# --- signing ---------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Calbook-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute the HMAC over ``"<t>.<body>"``, compare in constant
    time, and refuse a timestamp older (or newer) than the tolerance (replay protection)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


# --- fan-out ---------------------------------------------------------------------------


def owners_of(event: OutboxEvent) -> list[str]:
    """The parties whose subscriptions hear of an event: the booking's or request's user and expert."""
    subject = event.payload.get("booking") or event.payload.get("request") or {}
    owners = [subject.get("userId"), subject.get("expertId"), event.payload.get("expertId")]
    connection = event.payload.get("connection")
    if isinstance(connection, dict):
        owners.append(connection.get("expertId"))
    return sorted({o for o in owners if isinstance(o, str) and o})


def body_for(event: OutboxEvent) -> str:
    created = event.created_at.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"id": event.event_id, "type": event.event_type, "createdAt": created, "data": event.payload},
        separators=(",", ":"), sort_keys=True,
    )


def fan_out(store: Store, event: OutboxEvent) -> int:
    """Outbox handler: one delivery row per interested subscription; returns rows added."""
    owners = owners_of(event)
    if not owners:
        return 0
    subs = subscriptions_for_event(store, owners, event.event_type)
    if not subs:
        return 0
    now = utcnow()
    body = body_for(event)
    rows = [
        {
            "event_id": event.event_id, "event_type": event.event_type, "subscription_id": s["id"], "url": s["url"],
            "body": body, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
        }
        for s in subs
    ]
    with store.write() as conn:
        added = insert_ignore(conn, webhook_deliveries, rows)
    log.info("webhook deliveries queued", extra={"event_id": event.event_id, "event_type": event.event_type,
                                                 "deliveries": added})
    return added


# --- delivery --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    event_id: str
    event_type: str
    subscription_id: str
    url: str
    body: str
    attempts: int
    created_at: datetime


def claim_due(
    store: Store, limit: int, lease: timedelta, *, settings: Settings, now: datetime | None = None,
) -> list[Delivery]:
    moment = now or utcnow()
    with store.write() as conn:
        stmt = (
            select(webhook_deliveries)
            .where(
                _PENDING,
                webhook_deliveries.c.next_attempt_at <= moment,
                or_(webhook_deliveries.c.claimed_until.is_(None), webhook_deliveries.c.claimed_until <= moment,
                    webhook_deliveries.c.claimed_by.in_(stale_worker_ids(moment, settings))),
            )
            .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
            .limit(limit)
        )
        rows = conn.execute(skip_locked(conn, stmt, webhook_deliveries)).mappings().all()
        if not rows:
            return []
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id.in_([r["id"] for r in rows]))
            .values(claimed_until=moment + lease, claimed_by=current_worker_id(),
                    attempts=webhook_deliveries.c.attempts + 1)
        )
    return [
        Delivery(r["id"], r["event_id"], r["event_type"], r["subscription_id"], r["url"], r["body"],
                 r["attempts"] + 1, r["created_at"])
        for r in rows
    ]


def _secret(store: Store, subscription_id: str, key: str) -> str | None:
    """The decrypted signing secret, or None when the subscription is gone or inactive."""
    with store.read() as conn:
        row = conn.execute(
            select(webhook_subscriptions.c.secret, webhook_subscriptions.c.active)
            .where(webhook_subscriptions.c.id == subscription_id)
        ).first()
    if row is None or not row[1]:
        return None
    return str(decrypt_json(row[0], key)["secret"])


def retry_delay(attempts: int, policy: RetryPolicy) -> float:
    """After ``attempts`` failed attempts: the policy's delay (``WorkerSection.webhook_retry``)."""
    return policy.delay(attempts - 1)


def _finish(store: Store, d: Delivery, values: dict[str, Any], code: int | None, error: str | None,
            started: datetime, elapsed_ms: int) -> None:
    with store.write() as conn:
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == d.id).values(**values))
        conn.execute(webhook_delivery_attempts.insert().values(
            delivery_id=d.id, attempt=d.attempts, attempted_at=started, status_code=code, error=error,
            duration_ms=elapsed_ms,
        ))


def attempt(
    store: Store, d: Delivery, client: httpx.Client, *, settings: Settings,
    secrets: dict[str, str | None] | None = None,
) -> str:
    """POST one delivery and record the outcome; returns the delivery's new status.

    ``secrets`` caches decrypted secrets for the length of one ``deliver_due`` run only.
    """
    knobs = settings.worker
    fields = {"event_id": d.event_id, "event_type": d.event_type, "subscription_id": d.subscription_id,
              "delivery_id": d.id, "attempt": d.attempts}
    started = utcnow()
    cache = secrets if secrets is not None else {}
    if d.subscription_id not in cache:
        try:
            cache[d.subscription_id] = _secret(store, d.subscription_id, settings.resolved_encryption_key())
        except CredentialsUnreadable:
            cache[d.subscription_id] = None
    secret = cache[d.subscription_id]
    if secret is None:
        _finish(store, d, {"status": "cancelled", "claimed_until": None, "claimed_by": None,
                           "last_error": "subscription gone"},
                None, "subscription gone", started, 0)
        log.info("webhook delivery cancelled: subscription gone", extra=fields)
        return "cancelled"
    body = d.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "calbook-webhooks/1",
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        EVENT_ID_HEADER: d.event_id,
    }
    clock = time.monotonic()
    code: int | None = None
    error: str | None = None
    try:
        check_public_url(d.url, settings.allow_private_urls)
        response = client.post(d.url, content=body, headers=headers)
        code = response.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except UnresolvableURL as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    except UnsafeURL as exc:
        error = f"refused: {exc}"[:500]
        _finish(store, d, {"status": "failed", "claimed_until": None, "claimed_by": None, "last_status_code": None,
                           "last_error": error},
                None, error, started, 0)
        log.warning("webhook delivery refused: url is not public",
                    extra={**fields, "host": exc.host, "address": exc.address})
        return "failed"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    elapsed_ms = int((time.monotonic() - clock) * 1000)
    now = utcnow()
    if error is None:
        _finish(store, d, {"status": "succeeded", "claimed_until": None, "claimed_by": None, "delivered_at": now,
                           "last_status_code": code, "last_error": None}, code, None, started, elapsed_ms)
        log.info("webhook delivered", extra={**fields, "status_code": code})
        return "succeeded"
    next_at = now + timedelta(seconds=retry_delay(d.attempts, knobs.webhook_retry()))
    if next_at > d.created_at + timedelta(hours=knobs.webhook_retry_window_hours):
        _finish(store, d, {"status": "failed", "claimed_until": None, "claimed_by": None, "last_status_code": code,
                           "last_error": error}, code, error, started, elapsed_ms)
        log.warning("webhook delivery abandoned after retry window", extra={**fields, "error": error})
        return "failed"
    _finish(store, d, {"next_attempt_at": next_at, "claimed_until": None, "claimed_by": None, "last_status_code": code,
                       "last_error": error}, code, error, started, elapsed_ms)
    log.info("webhook delivery failed, will retry", extra={**fields, "error": error, "next_attempt_at": next_at})
    return "pending"


def deliver_due(
    store: Store, *, settings: Settings, budget_seconds: float = 20.0, client: httpx.Client | None = None,
) -> int:
    """Deliver due rows until none is due or the budget is spent; returns attempts made."""
    knobs = settings.worker
    lease = timedelta(seconds=knobs.webhook_lease_seconds)
    stop = time.monotonic() + budget_seconds
    own = client is None
    http = client or httpx.Client(timeout=knobs.webhook_timeout_seconds, follow_redirects=False)
    made = 0
    secrets: dict[str, str | None] = {}
    try:
        while time.monotonic() < stop:
            batch = claim_due(store, knobs.webhook_batch, lease, settings=settings)
            if not batch:
                break
            for d in batch:
                count_webhook_attempt(attempt(store, d, http, settings=settings, secrets=secrets))
                made += 1
    finally:
        if own:
            http.close()
    return made


def next_due_in(store: Store) -> float | None:
    """Seconds until the earliest pending delivery is due (None: nothing pending)."""
    with store.read() as conn:
        row = conn.execute(
            select(webhook_deliveries.c.next_attempt_at).where(_PENDING)
            .order_by(webhook_deliveries.c.next_attempt_at).limit(1)
        ).first()
    if row is None:
        return None
    return max(0.0, (row[0] - utcnow()).total_seconds())


__all__ = ["sign", "verify", "fan_out", "deliver_due", "claim_due", "attempt", "owners_of", "body_for"]


def resend_deliveries(store: Store, event_id: str, delivered: bool = False, now: datetime | None = None) -> int:
    """An operator's re-send (``calbook admin resend``): the event's failed deliveries (and, with
    ``delivered``, the ones a receiver acknowledged but lost) go out again, soon, with a fresh
    retry window and backoff. Cancelled ones (the subscription is gone) stay as they are. The same
    ``X-Calbook-Event-Id`` goes with them, so a receiver that has one already can drop it.
    """
    moment = now or utcnow()
    statuses = ["failed", "succeeded"] if delivered else ["failed"]
    with store.write() as conn:
        count = conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.event_id == event_id, webhook_deliveries.c.status.in_(statuses))
            .values(status="pending", attempts=0, next_attempt_at=moment, created_at=moment, claimed_until=None,
                    claimed_by=None, delivered_at=None)
        ).rowcount
    if count:
        log.info("webhook deliveries due again", extra={"event_id": event_id, "deliveries": count})
    return int(count or 0)
