"""Core schema: users, availability, bookings, requests, busy blocks, connections, outbox.

On PostgreSQL the exclusion constraint over (expert, [start, end + buffer)) of pending and
confirmed bookings is the database's own guarantee against double booking (docs/lifecycle.md#no-double-booking).

Revision ID: 0001
Revises:
Create Date: 2026-11-25 01:26:09.028986
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import booking_engine.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "busy_blocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("expert_id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=64), nullable=True),
        sa.Column("calendar_id", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("external_id", sa.String(length=1000), nullable=False),
        sa.Column("start_time", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("end_time", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_busy_blocks")),
    )
    with op.batch_alter_table("busy_blocks", schema=None) as batch_op:
        batch_op.create_index("ix_busy_blocks_expert_end", ["expert_id", "end_time"], unique=False)
        batch_op.create_index("ix_busy_blocks_source", ["connection_id", "calendar_id", "external_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("dispatched_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending",
            ["id"],
            unique=False,
            postgresql_where=sa.text("dispatched_at IS NULL"),
            sqlite_where=sa.text("dispatched_at IS NULL"),
        )

    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "availability_exceptions",
        sa.Column("expert_id", sa.String(length=64), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column(
            "windows", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["expert_id"], ["users.id"], name=op.f("fk_availability_exceptions_expert_id_users")),
        sa.PrimaryKeyConstraint("expert_id", "local_date", name=op.f("pk_availability_exceptions")),
    )
    op.create_table(
        "availability_settings",
        sa.Column("expert_id", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "weekly_schedule",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("min_duration_minutes", sa.Integer(), nullable=False),
        sa.Column("max_duration_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("advance_days", sa.Integer(), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("slot_increment_minutes", sa.Integer(), nullable=False),
        sa.Column("hourly_rate_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("auto_confirm", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["expert_id"], ["users.id"], name=op.f("fk_availability_settings_expert_id_users")),
        sa.PrimaryKeyConstraint("expert_id", name=op.f("pk_availability_settings")),
    )
    op.create_table(
        "booking_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expert_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column(
            "proposed_starts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("responded_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("response_message", sa.Text(), nullable=True),
        sa.Column("booking_id", sa.String(length=64), nullable=True),
        sa.Column("accepted_index", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["expert_id"], ["users.id"], name=op.f("fk_booking_requests_expert_id_users")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_booking_requests_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_requests")),
    )
    with op.batch_alter_table("booking_requests", schema=None) as batch_op:
        batch_op.create_index("ix_booking_requests_expert_created", ["expert_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_booking_requests_pending_expiry",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index("ix_booking_requests_user_created", ["user_id", "created_at"], unique=False)

    op.create_table(
        "bookings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expert_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("start_time", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("end_time", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_id", sa.String(length=200), nullable=True),
        sa.Column("refund_cents", sa.BigInteger(), nullable=True),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("cancellation_reason", sa.Text(), nullable=True),
        sa.Column("cancelled_by", sa.String(length=10), nullable=True),
        sa.Column("has_conflict", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("user_reminded_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("expert_reminded_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("starting_notified_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["expert_id"], ["users.id"], name=op.f("fk_bookings_expert_id_users")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_bookings_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index("ix_bookings_expert_start", ["expert_id", "start_time"], unique=False)
        batch_op.create_index(
            "ix_bookings_open_end",
            ["end_time"],
            unique=False,
            postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
            sqlite_where=sa.text("status IN ('pending', 'confirmed')"),
        )
        batch_op.create_index(
            "ix_bookings_reminder_due",
            ["start_time"],
            unique=False,
            postgresql_where=sa.text(
                "status = 'confirmed' AND (user_reminded_at IS NULL OR expert_reminded_at IS NULL)"
            ),
            sqlite_where=sa.text("status = 'confirmed' AND (user_reminded_at IS NULL OR expert_reminded_at IS NULL)"),
        )
        batch_op.create_index(
            "ix_bookings_starting_due",
            ["start_time"],
            unique=False,
            postgresql_where=sa.text("status = 'confirmed' AND starting_notified_at IS NULL"),
            sqlite_where=sa.text("status = 'confirmed' AND starting_notified_at IS NULL"),
        )
        batch_op.create_index("ix_bookings_user_start", ["user_id", "start_time"], unique=False)

    op.create_table(
        "calendar_connections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expert_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=True),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("last_synced_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(["expert_id"], ["users.id"], name=op.f("fk_calendar_connections_expert_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_connections")),
    )
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.create_index("ix_calendar_connections_expert", ["expert_id"], unique=False)

    op.create_table(
        "booking_calendar_events",
        sa.Column("booking_id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("calendar_id", sa.String(length=1000), nullable=False),
        sa.Column("ref", sa.String(length=1000), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("updated_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_booking_calendar_events_booking_id_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["calendar_connections.id"],
            name=op.f("fk_booking_calendar_events_connection_id_calendar_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("booking_id", "connection_id", name=op.f("pk_booking_calendar_events")),
    )
    op.create_table(
        "calendar_sync_state",
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("calendar_id", sa.String(length=1000), nullable=False),
        sa.Column(
            "cursor", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["calendar_connections.id"],
            name=op.f("fk_calendar_sync_state_connection_id_calendar_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "calendar_id", name=op.f("pk_calendar_sync_state")),
    )

    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("event_types", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_webhook_subscriptions_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_subscriptions_owner", ["owner_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
            "(expert_id WITH =, tstzrange(start_time, blocked_until, '[)') WITH &&) "
            "WHERE (status IN ('pending', 'confirmed'))"
        )


def downgrade() -> None:
    op.drop_table("webhook_subscriptions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS ex_bookings_no_overlap")
    op.drop_table("calendar_sync_state")
    op.drop_table("booking_calendar_events")
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_connections_expert")

    op.drop_table("calendar_connections")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_user_start")
        batch_op.drop_index(
            "ix_bookings_starting_due",
            postgresql_where=sa.text("status = 'confirmed' AND starting_notified_at IS NULL"),
            sqlite_where=sa.text("status = 'confirmed' AND starting_notified_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_bookings_reminder_due",
            postgresql_where=sa.text(
                "status = 'confirmed' AND (user_reminded_at IS NULL OR expert_reminded_at IS NULL)"
            ),
            sqlite_where=sa.text("status = 'confirmed' AND (user_reminded_at IS NULL OR expert_reminded_at IS NULL)"),
        )
        batch_op.drop_index(
            "ix_bookings_open_end",
            postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
            sqlite_where=sa.text("status IN ('pending', 'confirmed')"),
        )
        batch_op.drop_index("ix_bookings_expert_start")

    op.drop_table("bookings")
    with op.batch_alter_table("booking_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_booking_requests_user_created")
        batch_op.drop_index(
            "ix_booking_requests_pending_expiry",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index("ix_booking_requests_expert_created")

    op.drop_table("booking_requests")
    op.drop_table("availability_settings")
    op.drop_table("availability_exceptions")
    op.drop_table("users")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_pending",
            postgresql_where=sa.text("dispatched_at IS NULL"),
            sqlite_where=sa.text("dispatched_at IS NULL"),
        )

    op.drop_table("outbox")
    with op.batch_alter_table("busy_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_busy_blocks_source")
        batch_op.drop_index("ix_busy_blocks_expert_end")

    op.drop_table("busy_blocks")
