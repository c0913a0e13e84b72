"""Per-handler outbox state, lease holders, worker heartbeats.

- ``outbox_handler_runs`` grows from "this handler finished" into each handler's own state
  for an event: ``status`` (``pending``, ``done``, ``failed``), ``attempts``,
  ``next_attempt_at``, ``last_error``; existing rows are finished runs (``done``).
- ``outbox.claimed_by`` and ``webhook_deliveries.claimed_by``: which worker holds a lease, so a
  restarted worker can take back at once what its dead predecessor held.
- ``worker_heartbeats``: one row per running worker, refreshed every few seconds; readiness
  and the restart recovery read it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import booking_engine.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_handler_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), server_default=sa.text("'done'"),
                                      nullable=False))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("next_attempt_at", booking_engine.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.alter_column("done_at", existing_type=booking_engine.store.types.UTCDateTime(), nullable=True)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name="pk_worker_heartbeats"),
    )
    op.create_index("ix_worker_heartbeats_node", "worker_heartbeats", ["node"])


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeats_node", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    # Runs that were not finished have no place in the old shape: drop them (they run again).
    op.execute("DELETE FROM outbox_handler_runs WHERE done_at IS NULL")
    with op.batch_alter_table("outbox_handler_runs", schema=None) as batch_op:
        batch_op.alter_column("done_at", existing_type=booking_engine.store.types.UTCDateTime(), nullable=False)
        batch_op.drop_column("last_error")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("status")
