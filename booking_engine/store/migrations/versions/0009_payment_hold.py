"""The payment hold: an expert may ask for payment before a booking is confirmed.

``availability_settings`` gains ``payment_required`` (false) and ``payment_hold_minutes`` (15);
``bookings`` gains ``payment_status`` (``not_required`` for every booking so far),
``payment_due_at`` and ``paid_at``, with a partial index on the due time of the bookings
awaiting payment, which the worker's expiry reads (docs/lifecycle.md#payment-hold).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from booking_engine.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

AWAITING = sa.text("payment_status = 'awaiting_payment'")


def upgrade() -> None:
    with op.batch_alter_table("availability_settings") as batch:
        batch.add_column(sa.Column("payment_required", sa.Boolean(), nullable=False, server_default=sa.text("false")))
        batch.add_column(sa.Column("payment_hold_minutes", sa.Integer(), nullable=False, server_default=sa.text("15")))
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("payment_status", sa.String(20), nullable=False,
                                   server_default=sa.text("'not_required'")))
        batch.add_column(sa.Column("payment_due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("paid_at", UTCDateTime(), nullable=True))
    op.create_index("ix_bookings_payment_due", "bookings", ["payment_due_at"], postgresql_where=AWAITING,
                    sqlite_where=AWAITING)


def downgrade() -> None:
    op.drop_index("ix_bookings_payment_due", table_name="bookings")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("paid_at")
        batch.drop_column("payment_due_at")
        batch.drop_column("payment_status")
    with op.batch_alter_table("availability_settings") as batch:
        batch.drop_column("payment_hold_minutes")
        batch.drop_column("payment_required")
