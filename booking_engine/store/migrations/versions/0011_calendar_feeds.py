"""Calendar feeds: a person's bookings as a subscribable iCalendar feed behind a secret URL.

``calendar_feeds`` keeps, per user, the SHA-256 of the feed's token (the token itself is
shown once, in the URL ``POST /v1/me/calendar-feed`` answers); a new token replaces the row,
so the old URL stops working at once (docs/api.md#calendar-feed).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:00:02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from booking_engine.store.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_calendar_feeds_user_id_users"),
        sa.PrimaryKeyConstraint("user_id", name="pk_calendar_feeds"),
        sa.UniqueConstraint("token_hash", name="uq_calendar_feeds_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds")
