"""Microsoft Graph subscriptions of a connection: create, renew at about half-life, re-create, delete.

* :func:`ensure_subscriptions` - every busy calendar of a syncable Microsoft connection gets a
  live subscription: none yet (or Graph removed it) -> create; past half its lifetime -> renew
  in place (PATCH), and a 404 on renewal -> create anew; a calendar no longer busy -> delete.
  The first watch after connecting, the hourly renewal, ``reauthorizationRequired`` and
  ``subscriptionRemoved`` are all this one function.
* :func:`stop_subscriptions` - on disconnect (at Graph, then in the store) and on
  ``reauth_required`` (only in the store: Graph refuses our credentials; they lapse by themselves).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from booking_engine.clock import utcnow
from booking_engine.connections import CalendarConnection, ConnectionStatus, Provider
from booking_engine.services import connections as connection_service
from booking_engine.services import google_channels, microsoft_subscriptions
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.base import AuthError, CalendarProvider, ConnectorError
from connectors.microsoft.graph import GraphRejected
from worker.calendar.providers import provider_for

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/v1/webhooks/microsoft"


def webhook_address(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + WEBHOOK_PATH


def lifetime(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.microsoft_subscription_minutes)


def renew_before(now: datetime, settings: Settings) -> datetime:
    """A subscription is renewed once less than half its lifetime is left."""
    return now + lifetime(settings) / 2


def is_microsoft(store: Store, connection_id: str) -> bool:
    connection = connection_service.load_for_sync(store, connection_id)
    return connection is not None and connection.provider == Provider.MICROSOFT


def _watched(connection: CalendarConnection | None) -> bool:
    return connection is not None and connection.provider == Provider.MICROSOFT and connection.syncable


@dataclass(slots=True)
class SubscriptionOutcome:
    status: str
    created: int = 0
    renewed: int = 0
    deleted: int = 0


def ensure_subscriptions(
    store: Store, connection_id: str, *, settings: Settings, now: datetime | None = None,
) -> SubscriptionOutcome:
    moment = now or utcnow()
    connection = connection_service.load_for_sync(store, connection_id)
    if connection is None or not _watched(connection):
        return SubscriptionOutcome("skipped")
    busy = connection.busy_calendars
    live = google_channels.live_channels(store, connection_id)
    outcome = SubscriptionOutcome("active")
    provider = provider_for(store, connection, settings=settings)
    channels = provider.renewable_channels()
    if channels is None:  # renewal in place is Graph's own (decision 0021)
        provider.close()
        raise ConnectorError("the provider does not renew its channels in place")
    try:
        covered: set[str] = set()
        for sub in live:
            if sub.calendar_id not in busy or sub.calendar_id in covered:
                channels.stop_channel(sub.id, sub.resource_id)
                google_channels.mark_stopped(store, sub.id, now=moment)
                outcome.deleted += 1
                continue
            if sub.expiration > renew_before(moment, settings):
                covered.add(sub.calendar_id)
                continue
            try:
                expiration = channels.renew(sub.id, lifetime(settings))
            except GraphRejected as exc:
                if exc.status != 404:
                    raise
                log.info("microsoft subscription gone at renewal, re-creating",
                         extra={"connection_id": connection_id, "subscription_id": sub.id})
                google_channels.mark_stopped(store, sub.id, now=moment)
                continue
            microsoft_subscriptions.set_expiration(store, sub.id, expiration or moment + lifetime(settings))
            covered.add(sub.calendar_id)
            outcome.renewed += 1
        for calendar_id in busy:
            if calendar_id in covered:
                continue
            channel = channels.watch(calendar_id, webhook_address(settings), lifetime(settings))
            google_channels.record_channel(
                store, connection_id, channel.id, calendar_id, channel.resource_id,
                microsoft_subscriptions.hash_client_state(channel.token),
                channel.expiration or moment + lifetime(settings), now=moment,
            )
            outcome.created += 1
            log.info("microsoft subscription created", extra={"connection_id": connection_id,
                                                             "subscription_id": channel.id})
    except AuthError as exc:
        mark_reauth_required(store, connection_id, str(exc), settings)
        return SubscriptionOutcome("reauth_required", outcome.created, outcome.renewed, outcome.deleted)
    finally:
        provider.close()
    return outcome


def stop_subscriptions(store: Store, connection_id: str, *, settings: Settings, call_graph: bool = True) -> int:
    live = google_channels.live_channels(store, connection_id)
    if not live:
        return 0
    provider: CalendarProvider | None = None
    if call_graph:
        connection = connection_service.load_for_sync(store, connection_id)
        if connection is not None and connection.credentials:
            provider = provider_for(store, connection, settings=settings)
    channels = provider.watch_channels() if provider is not None else None
    try:
        for sub in live:
            if provider is not None and channels is not None:
                try:
                    channels.stop_channel(sub.id, sub.resource_id)
                except AuthError:
                    provider.close()
                    provider = channels = None
                except ConnectorError as exc:
                    if not isinstance(exc, GraphRejected):
                        raise
                    log.info("microsoft subscription delete refused, left to lapse",
                             extra={"connection_id": connection_id, "status": exc.status})
            google_channels.mark_stopped(store, sub.id)
    finally:
        if provider is not None:
            provider.close()
    log.info("microsoft subscriptions stopped", extra={"connection_id": connection_id, "count": len(live)})
    return len(live)


def mark_reauth_required(store: Store, connection_id: str, error: str, settings: Settings) -> None:
    connection_service.set_status(store, connection_id, ConnectionStatus.REAUTH_REQUIRED, error)
    stop_subscriptions(store, connection_id, settings=settings, call_graph=False)
    log.warning("microsoft connection needs re-authorisation", extra={"connection_id": connection_id})
