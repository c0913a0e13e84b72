"""Google push-notification channels (``events.watch``) as the store keeps them.

One row per channel Google has open towards ``POST /v1/webhooks/google``: which connection
and calendar it watches, Google's ``resourceId``, when it expires, and a SHA-256 hash of its
random token (never the token itself: a leaked row cannot forge notifications). A channel
that calbook stopped (renewal, disconnect, reauth) keeps its row with ``stopped_at`` set,
so late notifications on it are recognised and ignored, and the history stays readable.

The worker opens and stops channels at Google (``worker.calendar.google``); this module
records what it did, and decides about a notification (``notification_received``): which live
channel is it, does the provider's check accept it, and is its connection still one to sync?
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from booking_engine.connections import SYNCABLE, Provider, is_syncable
from booking_engine.errors import NotFound
from booking_engine.ports import TaskQueue
from booking_engine.services import connections as connection_service
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import watch_channels as channel_rows

log = logging.getLogger(__name__)

ChannelCheck = Callable[["StoredChannel"], str]
"""The provider's verdict on a notification for this stored channel: ``reject`` (not from a channel we
opened: wrong token or resource), ``queue_sync`` (its calendar changed) or ``ignore``."""


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


def _channel(row: Mapping[Any, Any]) -> StoredChannel:
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
        return channel_rows.connections_to_watch(conn, str(Provider.GOOGLE), [str(s) for s in SYNCABLE],
                                                 renew_before, limit)


def notification_received(store: Store, tasks: TaskQueue, channel_id: str, check: ChannelCheck) -> str:
    """Decide about one push notification; returns what was done (for logs and tests).

    ``queued``: an incremental sync was queued; ``coalesced``: one is already pending;
    ``ignored``: a handshake, an unknown channel, or a connection not to sync;
    ``rejected``: wrong or missing token or resource id (logged, otherwise like ignored).
    """
    channel = find_live_channel(store, channel_id)
    if channel is None:
        log.info("notification for an unknown channel ignored", extra={"channel_id": channel_id[:200]})
        return "ignored"
    verdict = check(channel)
    if verdict == "reject":
        log.warning("notification rejected: bad token or resource id",
                    extra={"channel_id": channel.id, "connection_id": channel.connection_id})
        return "rejected"
    if verdict != "queue_sync" or not is_syncable(channel.connection_status or ""):
        return "ignored"
    try:
        wanted = connection_service.request_sync(store, None, channel.connection_id)
    except NotFound:
        return "ignored"
    if not wanted:
        return "coalesced"
    tasks.sync_changed(channel.connection_id)
    log.info("notification: sync queued", extra={"connection_id": channel.connection_id})
    return "queued"
