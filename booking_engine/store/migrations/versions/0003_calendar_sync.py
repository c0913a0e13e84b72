"""Calendar sync: per-connection sync lease and timestamps, Google watch channels, OAuth states.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import booking_engine.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_lock_until", booking_engine.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("sync_requested_at", booking_engine.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_reconciled_at", booking_engine.store.types.UTCDateTime(), nullable=True))
    op.create_table(
        "watch_channels",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("calendar_id", sa.String(length=1000), nullable=False),
        sa.Column("resource_id", sa.String(length=500), nullable=False),
        sa.Column("token_hash", sa.String(length=200), nullable=False),
        sa.Column("expiration", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", booking_engine.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["connection_id"], ["calendar_connections.id"],
                                name=op.f("fk_watch_channels_connection_id_calendar_connections"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_channels")),
    )
    with op.batch_alter_table("watch_channels", schema=None) as batch_op:
        batch_op.create_index("ix_watch_channels_connection", ["connection_id"], unique=False)
        batch_op.create_index("ix_watch_channels_expiration", ["expiration"], unique=False)
    op.create_table(
        "oauth_states",
        sa.Column("state", sa.String(length=200), nullable=False),
        sa.Column("expert_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["expert_id"], ["users.id"], name=op.f("fk_oauth_states_expert_id_users")),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_oauth_states")),
    )


def downgrade() -> None:
    op.drop_table("oauth_states")
    with op.batch_alter_table("watch_channels", schema=None) as batch_op:
        batch_op.drop_index("ix_watch_channels_expiration")
        batch_op.drop_index("ix_watch_channels_connection")
    op.drop_table("watch_channels")
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.drop_column("last_reconciled_at")
        batch_op.drop_column("sync_requested_at")
        batch_op.drop_column("sync_lock_until")
