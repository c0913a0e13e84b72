"""Calendar push errors: the last refusal of a booking's event by a connection's server.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import booking_engine.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_push_errors",
        sa.Column("booking_id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", booking_engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_calendar_push_errors_booking_id_bookings")),
        sa.ForeignKeyConstraint(["connection_id"], ["calendar_connections.id"],
                                name=op.f("fk_calendar_push_errors_connection_id_calendar_connections"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("booking_id", "connection_id", name=op.f("pk_calendar_push_errors")),
    )


def downgrade() -> None:
    op.drop_table("calendar_push_errors")
