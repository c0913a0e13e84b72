"""The central booking store's schema (SQLAlchemy Core), mirrored by the Alembic migrations.

Core tables rather than ORM classes: the domain has its own entities, and the repository
maps rows to them explicitly, so nothing here leaks into ``booking_engine.model``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from booking_engine.store.types import JSONType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", String(320)),
    Column("display_name", String(200)),
    Column("timezone", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("headline", String(200)),  # public profile (docs/api.md#experts), migration 0013
    Column("bio", String(4000)),
)

availability_settings = Table(
    "availability_settings",
    metadata,
    Column("expert_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("timezone", String(64), nullable=False),
    Column("weekly_schedule", JSONType, nullable=False),
    Column("min_duration_minutes", Integer, nullable=False),
    Column("max_duration_minutes", Integer, nullable=False),
    Column("buffer_minutes", Integer, nullable=False),
    Column("advance_days", Integer, nullable=False),
    Column("min_notice_minutes", Integer, nullable=False),
    Column("slot_increment_minutes", Integer, nullable=False),
    Column("hourly_rate_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("auto_confirm", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The payment hold (migration 0009; docs/lifecycle.md#payment-hold).
    Column("payment_required", Boolean, nullable=False, server_default=text("false")),
    Column("payment_hold_minutes", Integer, nullable=False, server_default=text("15")),
    # The change cut-off, the reschedule limit, daily and weekly limits (0010; NULL: none).
    Column("change_cutoff_minutes", Integer, nullable=False, server_default=text("0")),
    Column("max_reschedules", Integer),
    Column("max_bookings_per_day", Integer),
    Column("max_bookings_per_week", Integer),
)

availability_exceptions = Table(
    "availability_exceptions",
    metadata,
    Column("expert_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("local_date", Date, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("windows", JSONType, nullable=False),
    Column("reason", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", ID, primary_key=True),
    Column("expert_id", ID, ForeignKey("users.id"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("start_time", UTCDateTime(), nullable=False),
    Column("end_time", UTCDateTime(), nullable=False),
    Column("blocked_until", UTCDateTime(), nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("buffer_minutes", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("type", String(20), nullable=False),
    Column("topic", Text),
    Column("notes", Text),
    Column("price_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_id", String(200)),
    Column("refund_cents", BigInteger),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("confirmed_at", UTCDateTime()),
    Column("cancelled_at", UTCDateTime()),
    Column("cancellation_reason", Text),
    Column("cancelled_by", String(10)),
    Column("has_conflict", Boolean, nullable=False, server_default=text("false")),
    Column("version", Integer, nullable=False),
    Column("sequence", Integer, nullable=False, server_default=text("0")),
    Column("request_id", ID),
    Column("user_reminded_at", UTCDateTime()),
    Column("expert_reminded_at", UTCDateTime()),
    Column("starting_notified_at", UTCDateTime()),
    # The payment hold (migration 0009): not_required, awaiting_payment, paid or unpaid.
    Column("payment_status", String(20), nullable=False, server_default=text("'not_required'")),
    Column("payment_due_at", UTCDateTime()),
    Column("paid_at", UTCDateTime()),
    # Every reschedule of the booking (0010; docs/lifecycle.md#reschedule-limit).
    Column("reschedule_count", Integer, nullable=False, server_default=text("0")),
    Index("ix_bookings_expert_start", "expert_id", "start_time"),
    Index("ix_bookings_user_start", "user_id", "start_time"),
    Index(
        "ix_bookings_reminder_due",
        "start_time",
        postgresql_where=text("status = 'confirmed' AND (user_reminded_at IS NULL OR expert_reminded_at IS NULL)"),
        sqlite_where=text("status = 'confirmed' AND (user_reminded_at IS NULL OR expert_reminded_at IS NULL)"),
    ),
    Index(
        "ix_bookings_starting_due",
        "start_time",
        postgresql_where=text("status = 'confirmed' AND starting_notified_at IS NULL"),
        sqlite_where=text("status = 'confirmed' AND starting_notified_at IS NULL"),
    ),
    Index(
        "ix_bookings_payment_due",
        "payment_due_at",
        postgresql_where=text("payment_status = 'awaiting_payment'"),
        sqlite_where=text("payment_status = 'awaiting_payment'"),
    ),
    Index(
        "ix_bookings_open_end",
        "end_time",
        postgresql_where=text("status IN ('pending', 'confirmed')"),
        sqlite_where=text("status IN ('pending', 'confirmed')"),
    ),
)

booking_requests = Table(
    "booking_requests",
    metadata,
    Column("id", ID, primary_key=True),
    Column("expert_id", ID, ForeignKey("users.id"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("type", String(20), nullable=False),
    Column("proposed_starts", JSONType, nullable=False),
    Column("status", String(20), nullable=False),
    Column("message", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("responded_at", UTCDateTime()),
    Column("response_message", Text),
    Column("booking_id", ID),
    Column("accepted_index", Integer),
    Column("version", Integer, nullable=False),
    Index("ix_booking_requests_expert_created", "expert_id", "created_at"),
    Index("ix_booking_requests_user_created", "user_id", "created_at"),
    Index(
        "ix_booking_requests_pending_expiry",
        "expires_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)

calendar_connections = Table(
    "calendar_connections",
    metadata,
    Column("id", ID, primary_key=True),
    Column("expert_id", ID, ForeignKey("users.id"), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("account", String(320)),
    Column("credentials", Text),
    Column("config", JSONType, nullable=False),
    Column("last_synced_at", UTCDateTime()),
    Column("last_error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("sync_lock_until", UTCDateTime()),
    Column("sync_requested_at", UTCDateTime()),
    Column("last_reconciled_at", UTCDateTime()),
    # What a running sync is doing (migration 0007; docs/sync.md#sync-progress): valid while the lease holds.
    Column("sync_phase", String(20)),
    Column("sync_calendars_done", Integer),
    Column("sync_calendars_total", Integer),
    Column("sync_items", Integer),
    Column("sync_started_at", UTCDateTime()),
    Column("sync_progress_at", UTCDateTime()),
    # When the connection is due for its next sync (migration 0014; docs/sync.md#scheduling): NULL
    # while it waits for the expert (reauth_required) or is disconnected. ``sync_failures`` counts
    # the failed syncs in a row (the backoff); ``sync_resume_from`` is the calendar a sync stopped
    # by its time budget continues at.
    Column("next_sync_at", UTCDateTime()),
    Column("sync_failures", Integer, nullable=False, server_default=text("0")),
    Column("sync_resume_from", Integer),
    Index("ix_calendar_connections_expert", "expert_id"),
    Index("ix_calendar_connections_due", "next_sync_at"),
    # The dispatcher counts syncs in flight before every claim: only leased rows are in this index.
    Index("ix_calendar_connections_leased", "sync_lock_until",
          postgresql_where=text("sync_lock_until IS NOT NULL"), sqlite_where=text("sync_lock_until IS NOT NULL")),
)

calendar_sync_state = Table(
    "calendar_sync_state",
    metadata,
    Column("connection_id", ID, ForeignKey("calendar_connections.id", ondelete="CASCADE"), primary_key=True),
    Column("calendar_id", String(1000), primary_key=True),
    Column("cursor", JSONType, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

busy_blocks = Table(
    "busy_blocks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("expert_id", ID, nullable=False),
    Column("connection_id", ID, nullable=True),
    Column("calendar_id", String(1000), nullable=False, server_default=""),
    Column("external_id", String(1000), nullable=False),
    Column("start_time", UTCDateTime(), nullable=False),
    Column("end_time", UTCDateTime(), nullable=False),
    Index("ix_busy_blocks_expert_end", "expert_id", "end_time"),
    Index("ix_busy_blocks_source", "connection_id", "calendar_id", "external_id"),
)

booking_calendar_events = Table(
    "booking_calendar_events",
    metadata,
    Column("booking_id", ID, ForeignKey("bookings.id"), primary_key=True),
    Column("connection_id", ID, ForeignKey("calendar_connections.id", ondelete="CASCADE"), primary_key=True),
    Column("calendar_id", String(1000), nullable=False),
    Column("ref", String(1000), nullable=False),
    Column("etag", String(500)),
    Column("sequence", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

#: The last refusal of a booking's event by a connection's calendar server (a failed precondition:
#: the connection itself is fine). Removed when a later push of that booking succeeds.
calendar_push_errors = Table(
    "calendar_push_errors",
    metadata,
    Column("booking_id", ID, ForeignKey("bookings.id"), primary_key=True),
    Column("connection_id", ID, ForeignKey("calendar_connections.id", ondelete="CASCADE"), primary_key=True),
    Column("error", Text, nullable=False),
    Column("failed_at", UTCDateTime(), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("aggregate_id", ID, nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("dispatched_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    # The lease on a claimed row (migration 0002): a worker that dies mid-dispatch stops
    # renewing it, and once it has passed the row is claimable again (at-least-once).
    Column("claimed_until", UTCDateTime()),
    # Which worker holds the lease (0004): a restarted worker releases its predecessor's at once.
    Column("claimed_by", String(200)),
    Index(
        "ix_outbox_pending",
        "id",
        postgresql_where=text("dispatched_at IS NULL"),
        sqlite_where=text("dispatched_at IS NULL"),
    ),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner_id", ID, ForeignKey("users.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret", Text, nullable=False),
    Column("event_types", JSONType, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_webhook_subscriptions_owner", "owner_id"),
)

watch_channels = Table(
    "watch_channels",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("connection_id", ID, ForeignKey("calendar_connections.id", ondelete="CASCADE"), nullable=False),
    Column("calendar_id", String(1000), nullable=False),
    Column("resource_id", String(500), nullable=False),
    Column("token_hash", String(200), nullable=False),
    Column("expiration", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("stopped_at", UTCDateTime()),
    Index("ix_watch_channels_connection", "connection_id"),
    Index("ix_watch_channels_expiration", "expiration"),
)

oauth_states = Table(
    "oauth_states",
    metadata,
    Column("state", String(200), primary_key=True),
    Column("expert_id", ID, ForeignKey("users.id"), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

#: Keys of the host app's back ends (payments, calling, chat): never a user (docs/security.md#service-keys).
#: Only the SHA-256 of a key is kept; ``prefix`` (its first characters) lets an operator tell keys apart.
#: A name is unique among the keys not revoked (migration 0008).
service_keys = Table(
    "service_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Index(
        "ix_service_keys_active_name",
        "name",
        unique=True,
        postgresql_where=text("revoked_at IS NULL"),
        sqlite_where=text("revoked_at IS NULL"),
    ),
)

#: A person's subscribable calendar feed (migration 0011; docs/api.md#calendar-feed): the SHA-256 of its
#: secret token, one per user; a new token replaces the old one.
calendar_feeds = Table(
    "calendar_feeds",
    metadata,
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# One number per expert that every write to what their slots depend on bumps, in the same
# transaction, by database triggers (migration 0012, booking_engine/store/expert_version_ddl.py;
# docs/decisions/0019-expert-version-by-trigger.md). It is what the ETags of the read views
# are made of; it decides nothing about bookings (the exclusion constraint does).
expert_versions = Table(
    "expert_versions",
    metadata,
    Column("expert_id", ID, primary_key=True),
    Column("version", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
)
