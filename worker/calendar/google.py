"""Google watch channels of a connection: open, renew, reconcile and stop them.

* :func:`ensure_watches` - open a channel per busy calendar that has none (or whose channel
  expires within :data:`RENEW_WITHIN`), then stop the channels it replaces: new first, old
  after, so no change falls between two channels. First watch, hourly renewal, and a change
  of busy calendars are all this one function; :func:`reconcile_watches` runs it after a sync
  when the channels no longer match the busy calendars.
* :func:`stop_channels` - on disconnect and on ``reauth_required``.

Connecting (the OAuth callback) is ``booking_engine.services.connections.connect_google``;
the webhook receiver's decision is ``booking_engine.services.google_channels.notification_received``.
A provider offers channels through its ``watch_channels()`` capability (``connectors.base``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from booking_engine.clock import utcnow
from booking_engine.connections import CalendarConnection, ConnectionStatus, Provider
from booking_engine.services import connections as connection_service
from booking_engine.services import google_channels
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.base import AuthError, CalendarProvider, ConnectorError, WatchChannels
from connectors.google.webhook import hash_channel_token, webhook_address
from worker.calendar.providers import provider_for

log = logging.getLogger(__name__)

CHANNEL_TTL = timedelta(days=7)
"""Google caps events channels at about a week whatever is asked; ask for that much."""
RENEW_WITHIN = timedelta(days=1)
"""The hourly renewal replaces channels that expire within a day: 24 chances before a gap."""


def _watched(connection: CalendarConnection | None) -> bool:
    return connection is not None and connection.provider == Provider.GOOGLE and connection.syncable


def _channels(provider: CalendarProvider) -> WatchChannels:
    channels = provider.watch_channels()
    if channels is None:
        raise ConnectorError("this provider offers no watch channels")
    return channels


@dataclass(slots=True)
class WatchOutcome:
    status: str
    opened: int = 0
    stopped: int = 0


def ensure_watches(
    store: Store, connection_id: str, *, settings: Settings, now: datetime | None = None,
) -> WatchOutcome:
    """Every busy calendar of an active connection gets a live channel lasting beyond a day.

    New channels are opened before the old ones are stopped (a change in between is then
    announced twice, and syncs are idempotent). Channels of calendars no longer busy stop.
    ``AuthError`` marks the connection ``reauth_required``; ``TransientError`` propagates so
    the task retries (channels already opened are recorded, so a retry does not duplicate them).
    """
    moment = now or utcnow()
    connection = connection_service.load_for_sync(store, connection_id)
    if connection is None or not _watched(connection):
        return WatchOutcome("skipped")
    calendars = connection.busy_calendars
    live = google_channels.live_channels(store, connection_id)
    fresh = {c.calendar_id for c in live if c.expiration > moment + RENEW_WITHIN}
    outcome = WatchOutcome("active")
    provider = provider_for(store, connection, settings=settings)
    channels = _channels(provider)
    try:
        for calendar_id in calendars:
            if calendar_id in fresh:
                continue
            channel = channels.watch(calendar_id, webhook_address(settings), CHANNEL_TTL)
            google_channels.record_channel(
                store, connection_id, channel.id, calendar_id, channel.resource_id,
                hash_channel_token(channel.token), channel.expiration or moment + CHANNEL_TTL, now=moment,
            )
            fresh.add(calendar_id)
            outcome.opened += 1
            log.info("google channel opened", extra={"connection_id": connection_id, "channel_id": channel.id})
        for old in live:
            keep = old.calendar_id in calendars and old.expiration > moment + RENEW_WITHIN
            if not keep:
                channels.stop_channel(old.id, old.resource_id)
                google_channels.mark_stopped(store, old.id, now=moment)
                outcome.stopped += 1
                log.info("google channel stopped", extra={"connection_id": connection_id, "channel_id": old.id})
    except AuthError as exc:
        mark_reauth_required(store, connection_id, str(exc), settings=settings)
        return WatchOutcome("reauth_required", outcome.opened, outcome.stopped)
    finally:
        provider.close()
    return outcome


def watches_out_of_step(store: Store, connection: CalendarConnection) -> bool:
    """Whether the live channels watch other calendars than the busy ones (the expert chose anew).

    A connection without any channel is not "out of step": its first watch is queued with
    the connection, and the hourly renewal finds it otherwise.
    """
    watched = {c.calendar_id for c in google_channels.live_channels(store, connection.id)}
    return bool(watched) and watched != set(connection.busy_calendars)


def reconcile_watches(store: Store, connection_id: str, *, settings: Settings) -> WatchOutcome | None:
    """After a sync: when the busy calendars changed, open and stop channels to match now.

    Failures are logged, never raised: the sync itself succeeded, and the hourly renewal
    (``google_channels.connections_to_watch``) tries again.
    """
    connection = connection_service.load_for_sync(store, connection_id)
    if connection is None or not _watched(connection):
        return None
    if not watches_out_of_step(store, connection):
        return None
    try:
        return ensure_watches(store, connection_id, settings=settings)
    except ConnectorError as exc:
        log.warning("google channels not reconciled; the renewal retries",
                    extra={"connection_id": connection_id, "error": type(exc).__name__})
        return None


def stop_channels(store: Store, connection_id: str, *, settings: Settings, call_google: bool = True) -> int:
    """Stop every live channel of the connection; returns how many were stopped.

    At Google first (404: already gone), then in the store. When Google refuses our
    credentials (the reason we are stopping, after ``invalid_grant``), the channels are only
    marked stopped: they expire within a week, and the receiver ignores stopped channels.
    """
    live = google_channels.live_channels(store, connection_id)
    if not live:
        return 0
    provider: CalendarProvider | None = None
    if call_google:
        connection = connection_service.load_for_sync(store, connection_id)
        if connection is not None and connection.credentials:
            provider = provider_for(store, connection, settings=settings)
    try:
        for channel in live:
            if provider is not None:
                try:
                    _channels(provider).stop_channel(channel.id, channel.resource_id)
                except AuthError:
                    log.info("google channel left to expire (credentials refused)",
                             extra={"connection_id": connection_id, "channel_id": channel.id})
                    provider.close()
                    provider = None
            google_channels.mark_stopped(store, channel.id)
    finally:
        if provider is not None:
            provider.close()
    log.info("google channels stopped", extra={"connection_id": connection_id, "count": len(live)})
    return len(live)


def mark_reauth_required(store: Store, connection_id: str, error: str, *, settings: Settings) -> None:
    """``invalid_grant``: the expert must reconnect. ``set_status`` emits
    ``connection.reauth_required``; the channels are stopped (locally: Google refuses us)."""
    connection_service.set_status(store, connection_id, ConnectionStatus.REAUTH_REQUIRED, error)
    stop_channels(store, connection_id, settings=settings, call_google=False)
    log.warning("google connection needs re-authorisation", extra={"connection_id": connection_id})
