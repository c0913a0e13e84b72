"""Google push-notification channels (``events.watch``) as the store keeps them.

One row per channel Google has open towards ``POST /v1/webhooks/google``: which connection
and calendar it watches, Google's ``resourceId``, when it expires, and a SHA-256 hash of its
random token (never the token itself: a leaked row cannot forge notifications). A channel
that calbook stopped (renewal, disconnect, reauth) keeps its row with ``stopped_at`` set,
so late notifications on it are recognised and ignored, and the history stays readable.

The worker opens and stops channels at Google (``worker.calendar.google``); this module only
records what it did, and answers the webhook receiver's one question: which live channel
is this, and is its connection still one to sync?
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import watch_channels as channel_rows

SYNCABLE = ("active", "error")
"""Connection statuses whose notifications lead to a sync (``reauth_required`` waits for the expert)."""


@dataclass(frozen=True, slots=True)
class StoredChannel:
    id: str
    connection_id: str
    calendar_id: str
    resource_id: str
    token_hash: str
    expiration: datetime
    created_at: datetime
    stopped_at: datetime | None
    connection_status: str | None = None


def _channel(row: Mapping[str, Any]) -> StoredChannel:
    return StoredChannel(
        id=row["id"], connection_id=row["connection_id"], calendar_id=row["calendar_id"],
        resource_id=row["resource_id"], token_hash=row["token_hash"], expiration=row["expiration"],
        created_at=row["created_at"], stopped_at=row["stopped_at"], connection_status=row.get("status"),
    )


def record_channel(
    store: Store,
    connection_id: str,
    channel_id: str,
    calendar_id: str,
    resource_id: str,
    token_hash: str,
    expiration: datetime,
    now: datetime | None = None,
) -> None:
    """Remember a channel the worker just opened (``token_hash``: ``webhook.hash_channel_token``)."""
    with store.write() as conn:
        channel_rows.insert_channel(
            conn, id=channel_id, connection_id=connection_id, calendar_id=calendar_id, resource_id=resource_id,
            token_hash=token_hash, expiration=expiration, created_at=now_or(now),
        )


def find_live_channel(store: Store, channel_id: str) -> StoredChannel | None:
    """The not-stopped channel with this id, with its connection's status; ``None`` if unknown."""
    if not channel_id or len(channel_id) > 200:
        return None
    with store.read() as conn:
        row = channel_rows.find_live(conn, channel_id)
    return _channel(row) if row is not None else None


def live_channels(store: Store, connection_id: str) -> list[StoredChannel]:
    with store.read() as conn:
        return [_channel(r) for r in channel_rows.live_of_connection(conn, connection_id)]


def mark_stopped(store: Store, channel_id: str, now: datetime | None = None) -> None:
    with store.write() as conn:
        channel_rows.mark_stopped(conn, channel_id, now_or(now))


def connections_to_watch(store: Store, renew_before: datetime, limit: int = 500) -> list[str]:
    """Active Google connections with a live channel expiring before ``renew_before``, with
    none, or whose live channels watch other calendars than the busy ones.

    A connection without any channel is one whose first watch failed (or was never queued):
    watching it again here is what makes a lost watch task harmless. One whose busy
    calendars changed (``connections.choose_calendars``) and whose sync did not get to its
    channels is set right here too.
    """
    with store.read() as conn:
        return channel_rows.connections_to_watch(conn, "google", SYNCABLE, renew_before, limit)
