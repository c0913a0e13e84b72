"""Calendar-sync test helpers: connecting, days, busy blocks, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.services import connections
from booking_engine.store.db import Store
from booking_engine.store.tables import busy_blocks, outbox
from config.settings import Settings
from connectors.secrets import encrypt_json
from tests.support.caldav import vevent
from tests.support.caldav_servers import PASSWORD, USERNAME

EXPERT = "expert-1"


USER = "user-1"


def day(offset: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    base = utcnow().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return base + timedelta(days=offset, hours=hour, minutes=minute)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_text(uid: str, start: datetime, end: datetime, extra: str = "") -> str:
    return vevent(uid, stamp(start), stamp(end), extra)


def connect(store: Store, calendar_url: str, server_url: str | None = None, expert_id: str = EXPERT) -> str:
    """A CalDAV connection as the API stores it: credentials encrypted, one busy calendar."""
    created = connections.create_connection(
        store, expert_id, expert_id, "caldav", account=USERNAME,
        credentials=encrypt_json({"username": USERNAME, "password": PASSWORD},
                                 Settings().resolved_encryption_key()),
        busy_calendars=[calendar_url], destination_calendar=calendar_url,
        extra_config={"url": server_url or calendar_url},
    )
    return created.id


def blocks(store: Store, connection_id: str | None = None) -> list[tuple[str, datetime, datetime]]:
    with store.read() as conn:
        stmt = select(busy_blocks.c.external_id, busy_blocks.c.start_time, busy_blocks.c.end_time)
        if connection_id:
            stmt = stmt.where(busy_blocks.c.connection_id == connection_id)
        rows = conn.execute(stmt.order_by(busy_blocks.c.start_time)).all()
    return [(r[0], r[1].astimezone(UTC), r[2].astimezone(UTC)) for r in rows]


def spans(store: Store, connection_id: str | None = None) -> list[tuple[datetime, datetime]]:
    return [(s, e) for _, s, e in blocks(store, connection_id)]


def outbox_types(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.event_type).order_by(outbox.c.id))]
