"""Microsoft Graph change-notification subscriptions, kept in the ``watch_channels`` rows.

A subscription is a channel row: its id is Graph's subscription id, ``resource_id`` the
subscribed resource (``me/calendars/{id}/events``), ``token_hash`` the SHA-256 of its random
``clientState`` (never the value itself), ``expiration`` Graph's ``expirationDateTime``.

:func:`notifications_received` decides about one POST to ``/v1/webhooks/microsoft``: an item
counts only when its subscription is live and its ``clientState`` hashes to the stored hash
(compared in constant time); change notifications request one coalesced incremental sync per
connection; lifecycle events renew or re-create the subscription (``tasks.watch``), and
``missed`` syncs. Anything else changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from booking_engine.connections import SYNCABLE, Provider, is_syncable
from booking_engine.errors import NotFound
from booking_engine.ports import TaskQueue
from booking_engine.services import connections as connection_service
from booking_engine.services import google_channels
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import watch_channels as channel_rows

log = logging.getLogger(__name__)

MAX_ITEMS = 200


def hash_client_state(client_state: str) -> str:
    return hashlib.sha256(client_state.encode()).hexdigest()


def client_state_matches(client_state: Any, stored_hash: str) -> bool:
    if not isinstance(client_state, str) or not client_state:
        return False
    return hmac.compare_digest(hash_client_state(client_state).encode(), stored_hash.encode())


def set_expiration(store: Store, subscription_id: str, expiration: datetime) -> None:
    with store.write() as conn:
        channel_rows.set_expiration(conn, subscription_id, expiration)


def connections_to_renew(store: Store, renew_before: datetime, limit: int = 500) -> list[str]:
    """Microsoft connections with a subscription expiring before ``renew_before``, none, or ones
    on other calendars than the busy ones."""
    with store.read() as conn:
        return channel_rows.connections_to_watch(conn, str(Provider.MICROSOFT), [str(s) for s in SYNCABLE],
                                                 renew_before, limit)


def notifications_received(store: Store, tasks: TaskQueue, items: Iterable[Mapping[str, Any]],
                           now: datetime | None = None) -> list[str]:
    """What was done per item: ``queued``, ``coalesced``, ``renew``, ``recreate``, ``ignored``, ``rejected``."""
    done: list[str] = []
    watched: set[str] = set()
    for item in list(items)[:MAX_ITEMS]:
        subscription_id = str(item.get("subscriptionId") or "")
        channel = google_channels.find_live_channel(store, subscription_id)
        if channel is None:
            log.info("microsoft notification for an unknown subscription ignored",
                     extra={"subscription_id": subscription_id[:200]})
            done.append("ignored")
            continue
        if not client_state_matches(item.get("clientState"), channel.token_hash):
            log.warning("microsoft notification rejected: wrong clientState",
                        extra={"subscription_id": channel.id, "connection_id": channel.connection_id})
            done.append("rejected")
            continue
        if not is_syncable(channel.connection_status or ""):
            done.append("ignored")
            continue
        lifecycle = item.get("lifecycleEvent")
        if lifecycle in ("reauthorizationRequired", "subscriptionRemoved"):
            if lifecycle == "subscriptionRemoved":
                google_channels.mark_stopped(store, channel.id, now=now_or(now))
            else:  # renewed by the next watch: due at once
                set_expiration(store, channel.id, now_or(now))
            if channel.connection_id not in watched:
                watched.add(channel.connection_id)
                tasks.watch(channel.connection_id)
            log.info("microsoft lifecycle event", extra={"connection_id": channel.connection_id,
                                                        "event": lifecycle})
            done.append("recreate" if lifecycle == "subscriptionRemoved" else "renew")
            if lifecycle == "reauthorizationRequired":
                continue
        elif lifecycle not in (None, "missed"):
            done.append("ignored")
            continue
        try:
            wanted = connection_service.request_sync(store, None, channel.connection_id)
        except NotFound:
            done.append("ignored")
            continue
        if wanted:
            tasks.sync_changed(channel.connection_id)
        if lifecycle != "subscriptionRemoved":
            done.append("queued" if wanted else "coalesced")
    return done
