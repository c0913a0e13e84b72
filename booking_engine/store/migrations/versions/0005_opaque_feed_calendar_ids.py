"""ICS feeds: the calendar id of busy blocks and sync state becomes the opaque ``feed``.

Until now a feed's calendar id was its URL, private token included, stored in clear in
``busy_blocks.calendar_id`` and ``calendar_sync_state.calendar_id`` (and in the connection's
``busyCalendars`` when a client chose it). The URL stays where it belongs, encrypted in the
connection's credentials; these rows get the id the provider now reports
(``connectors.ics.provider.FEED_CALENDAR_ID``). A feed has one calendar, so nothing is merged
but duplicates of the sync state (the newest is kept). The downgrade cannot restore the URLs
(they are only in the encrypted credentials): it leaves the ids as they are, and the old
code then simply syncs the feed afresh.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FEED = "feed"

connections = sa.table("calendar_connections", sa.column("id", sa.String), sa.column("provider", sa.String),
                       sa.column("config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))
blocks = sa.table("busy_blocks", sa.column("connection_id", sa.String), sa.column("calendar_id", sa.String))
state = sa.table("calendar_sync_state", sa.column("connection_id", sa.String), sa.column("calendar_id", sa.String),
                 sa.column("updated_at", sa.DateTime))


def upgrade() -> None:
    bind = op.get_bind()
    feeds = bind.execute(sa.select(connections.c.id, connections.c.config)
                         .where(connections.c.provider == "ics")).all()
    for connection_id, raw_config in feeds:
        bind.execute(sa.update(blocks).where(blocks.c.connection_id == connection_id).values(calendar_id=FEED))
        rows = bind.execute(sa.select(state.c.calendar_id).where(state.c.connection_id == connection_id)
                            .order_by(state.c.updated_at.desc())).all()
        if rows:
            keep = rows[0][0]
            bind.execute(sa.delete(state).where(state.c.connection_id == connection_id,
                                                state.c.calendar_id != keep))
            bind.execute(sa.update(state).where(state.c.connection_id == connection_id).values(calendar_id=FEED))
        config = json.loads(raw_config) if isinstance(raw_config, str) else dict(raw_config or {})
        if config.get("busyCalendars"):
            config["busyCalendars"] = [FEED]
            bind.execute(sa.update(connections).where(connections.c.id == connection_id).values(config=config))


def downgrade() -> None:
    pass
