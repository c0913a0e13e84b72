"""Tables the worker owns (revisions 0002 and 0004), registered on the shared ``metadata``.

They live apart from ``tables.py`` because they describe delivery bookkeeping, not the
booking domain: which outbox handler already ran for an event, which e-mail went out, and
the outbound webhook deliveries with their retry state.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from booking_engine.store.tables import ID, metadata
from booking_engine.store.types import UTCDateTime

# Each handler's own state for an event (0004): ``pending`` (failed, retried at
# ``next_attempt_at``), ``done``, or ``failed`` (given up). No row: not tried yet.
outbox_handler_runs = Table(
    "outbox_handler_runs",
    metadata,
    Column("event_id", String(36), nullable=False),
    Column("handler", String(200), nullable=False),
    Column("status", String(20), nullable=False, server_default=text("'done'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime()),
    Column("last_error", Text),
    Column("done_at", UTCDateTime()),
    PrimaryKeyConstraint("event_id", "handler", name="pk_outbox_handler_runs"),
    # The calendar-push drain claims its due runs by handler and due time (0014; docs/worker.md#outbox).
    Index("ix_outbox_handler_runs_due", "handler", "status", "next_attempt_at"),
)

# One row per running worker (0004), refreshed every few seconds by its main process.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(200), nullable=False),  # "<node>/<boot id>": one per process start
    Column("node", String(200), nullable=False),  # Celery's node name, stable across restarts
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("worker_id", name="pk_worker_heartbeats"),
    Index("ix_worker_heartbeats_node", "node"),
)

notification_log = Table(
    "notification_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # "<channel>:<event id>:<recipient>": a second send of the same notification is refused here.
    Column("idempotency_key", String(300), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("idempotency_key", name="uq_notification_log_idempotency_key"),
    Index("ix_notification_log_event", "event_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("subscription_id", ID, nullable=False),
    Column("url", String(2000), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("claimed_until", UTCDateTime()),
    Column("claimed_by", String(200)),  # the worker holding the lease (0004)
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    UniqueConstraint("event_id", "subscription_id", name="uq_webhook_deliveries_event_id_subscription_id"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at"),
)

webhook_delivery_attempts = Table(
    "webhook_delivery_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_delivery_attempts_delivery", "delivery_id"),
)
