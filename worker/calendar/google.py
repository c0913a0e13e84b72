"""Google-specific work around a connection: finishing the connect flow, watch channels, webhooks.

Three entry points, each a thin use of the connector and the services:

* :func:`complete_connection` - the OAuth callback's continuation: exchange the code, list
  the calendars, store (or refresh) the connection, then queue its first sync and its watch.
  The API runs it, because the expert's browser waits for the answer.
* :func:`ensure_watches` - open a channel per busy calendar that has none (or whose channel
  expires within :data:`RENEW_WITHIN`), then stop the channels it replaces: new first, old
  after, so no change falls between two channels. First watch, hourly renewal, and a change
  of busy calendars are all this one function; :func:`reconcile_watches` runs it after a sync
  when the channels no longer match the busy calendars.
* :func:`handle_notification` - the webhook receiver's decision: find the channel, check its
  token in constant time, and queue one coalesced sync per connection.

Tasks are queued through a :class:`TaskQueue` so the API can send them to the broker and
tests can record them; ids only, never objects.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from booking_engine.clock import utcnow
from booking_engine.errors import NotFound
from booking_engine.services import connections as connection_service
from booking_engine.services import google_channels
from booking_engine.store.db import Store
from config.settings import Settings, get_settings
from connectors.base import AuthError, CalendarInfo, ConnectorError
from connectors.google.oauth import exchange_code
from connectors.google.provider import GoogleCalendarProvider
from connectors.google.webhook import WebhookAction, decide_action, hash_channel_token, parse_notification
from connectors.secrets import encrypt_json

log = logging.getLogger(__name__)

CHANNEL_TTL = timedelta(days=7)
"""Google caps events channels at about a week whatever is asked; ask for that much."""
RENEW_WITHIN = timedelta(days=1)
"""The hourly renewal replaces channels that expire within a day: 24 chances before a gap."""
CALLBACK_PATH = "/v1/oauth/google/callback"
WEBHOOK_PATH = "/v1/webhooks/google"

SYNC_TASK = "calbook.google.sync"
WATCH_TASK = "calbook.google.watch"


class TaskQueue(Protocol):
    """Where Google work goes: the broker in production, a list in tests."""

    def sync(self, connection_id: str) -> None: ...

    def watch(self, connection_id: str) -> None: ...


class CeleryTaskQueue:
    """Send the Google tasks by name to a broker: the worker app's own, or the one named.

    The API passes its settings' broker URL, so an app built for a test or a second
    deployment never publishes to another's broker. A short connect timeout and no publish
    retries: the caller is answering a person (or Google), and nothing is lost when the
    broker is down (see :func:`_queue_quietly`).
    """

    CONNECT_TIMEOUT = 3.0

    def __init__(self, broker_url: str | None = None) -> None:
        self._broker_url = broker_url

    def _send(self, name: str, connection_id: str) -> None:
        from kombu import Connection

        from worker.app import celery_app

        if self._broker_url is None or self._broker_url == celery_app.conf.broker_url:
            connection = celery_app.connection_for_write(connect_timeout=self.CONNECT_TIMEOUT)
        else:  # the app's transport options belong to its own broker, not to this one
            connection = Connection(self._broker_url, connect_timeout=self.CONNECT_TIMEOUT)
        with connection as conn:
            celery_app.send_task(name, args=[connection_id], connection=conn, retry=False)

    def sync(self, connection_id: str) -> None:
        self._send(SYNC_TASK, connection_id)

    def watch(self, connection_id: str) -> None:
        self._send(WATCH_TASK, connection_id)


def callback_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def webhook_address(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + WEBHOOK_PATH


# -- connecting -----------------------------------------------------------------------------


def default_calendars(account: str, calendars: list[CalendarInfo]) -> tuple[list[str], str | None]:
    """Busy calendars and destination for a fresh connection: the primary calendar for both.

    Google names a primary calendar by the account's address; when the list has no such
    entry (a Workspace alias), the first calendar the expert can write to stands in.
    """
    primary = next((c for c in calendars if c.id.lower() == account.lower()), None)
    if primary is None:
        primary = next((c for c in calendars if c.writable), calendars[0] if calendars else None)
    if primary is None:
        return [], None
    return [primary.id], primary.id if primary.writable else None


def calendar_list(calendars: list[CalendarInfo]) -> list[dict[str, object]]:
    """The account's calendars as a connection's config keeps them (``config["calendars"]``)."""
    return [{"id": c.id, "name": c.name, "writable": c.writable} for c in calendars]


def complete_connection(
    store: Store,
    settings: Settings,
    expert_id: str,
    *,
    code: str,
    state: str,
    code_verifier: str,
    queue: TaskQueue,
) -> connection_service.CalendarConnection:
    """Exchange the code, list calendars, store the connection encrypted, queue sync and watch.

    Reconnecting the same Google account (after ``reauth_required``) refreshes the existing
    connection instead of adding a second one with the same calendars. Raises the connector's
    ``GoogleOAuthError`` family, ``TransientError``, and the services' errors.
    """
    grant = exchange_code(
        code=code, returned_state=state, expected_state=state, code_verifier=code_verifier,
        redirect_uri=callback_uri(settings), settings=settings,
    )
    key = settings.resolved_encryption_key()
    provider = GoogleCalendarProvider(grant.credentials, settings=settings)
    try:
        calendars = provider.list_calendars()
        credentials = provider.updated_credentials() or grant.credentials
    finally:
        provider.close()
    encrypted = encrypt_json(credentials, key)
    existing = next(
        (
            c for c in connection_service.list_connections(store, expert_id)
            if c.provider == "google" and (c.account or "").lower() == grant.account_email.lower()
        ),
        None,
    )
    known = calendar_list(calendars)
    if existing is not None:
        connection_service.save_credentials(store, existing.id, encrypted)
        connection_service.update_config(store, existing.id, {"calendars": known})
        connection_service.set_status(store, existing.id, "active")
        connection_service.request_sync(store, None, existing.id)
        connection = connection_service.get_connection(store, expert_id, existing.id)
        log.info("google connection re-authorised", extra={"connection_id": connection.id})
    else:
        busy, destination = default_calendars(grant.account_email, calendars)
        connection = connection_service.create_connection(
            store, expert_id, expert_id, "google", account=grant.account_email, credentials=encrypted,
            busy_calendars=busy, destination_calendar=destination, extra_config={"calendars": known},
        )
        log.info("google connection created", extra={"connection_id": connection.id, "calendars": len(busy)})
    _queue_quietly(queue.sync, connection.id)
    _queue_quietly(queue.watch, connection.id)
    return connection


def _queue_quietly(send: Any, connection_id: str) -> None:
    """A lost queue message is not fatal: the backstop poll and the hourly renewal find the
    connection again (``sync_requested_at`` set, no live channel)."""
    try:
        send(connection_id)
    except Exception as exc:  # noqa: BLE001 - the broker being down must not fail the caller
        log.warning("could not queue google task", extra={"connection_id": connection_id,
                                                           "error": type(exc).__name__})


# -- channels -------------------------------------------------------------------------------


def _provider(store: Store, connection: connection_service.CalendarConnection) -> GoogleCalendarProvider:
    from worker.calendar.providers import build_provider

    provider = build_provider(store, connection)
    assert isinstance(provider, GoogleCalendarProvider)
    return provider


@dataclass(slots=True)
class WatchOutcome:
    status: str
    opened: int = 0
    stopped: int = 0


def ensure_watches(store: Store, connection_id: str, now: datetime | None = None) -> WatchOutcome:
    """Every busy calendar of an active connection gets a live channel lasting beyond a day.

    New channels are opened before the old ones are stopped (a change in between is then
    announced twice, and syncs are idempotent). Channels of calendars no longer busy stop.
    ``AuthError`` marks the connection ``reauth_required``; ``TransientError`` propagates so
    the task retries (channels already opened are recorded, so a retry does not duplicate them).
    """
    moment = now or utcnow()
    connection = connection_service.load_for_sync(store, connection_id)
    if connection is None or connection.provider != "google" or connection.status not in google_channels.SYNCABLE:
        return WatchOutcome("skipped")
    settings = get_settings()
    calendars = connection.busy_calendars
    live = google_channels.live_channels(store, connection_id)
    fresh = {c.calendar_id for c in live if c.expiration > moment + RENEW_WITHIN}
    outcome = WatchOutcome("active")
    provider = _provider(store, connection)
    try:
        for calendar_id in calendars:
            if calendar_id in fresh:
                continue
            channel = provider.watch(calendar_id, webhook_address(settings), CHANNEL_TTL)
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
                provider.stop_channel(old.id, old.resource_id)
                google_channels.mark_stopped(store, old.id, now=moment)
                outcome.stopped += 1
                log.info("google channel stopped", extra={"connection_id": connection_id, "channel_id": old.id})
    except AuthError as exc:
        mark_reauth_required(store, connection_id, str(exc))
        return WatchOutcome("reauth_required", outcome.opened, outcome.stopped)
    finally:
        provider.close()
    return outcome


def watches_out_of_step(store: Store, connection: connection_service.CalendarConnection) -> bool:
    """Whether the live channels watch other calendars than the busy ones (the expert chose anew).

    A connection without any channel is not "out of step": its first watch is queued with
    the connection, and the hourly renewal finds it otherwise.
    """
    watched = {c.calendar_id for c in google_channels.live_channels(store, connection.id)}
    return bool(watched) and watched != set(connection.busy_calendars)


def reconcile_watches(store: Store, connection_id: str) -> WatchOutcome | None:
    """After a sync: when the busy calendars changed, open and stop channels to match now.

    Failures are logged, never raised: the sync itself succeeded, and the hourly renewal
    (``google_channels.connections_to_watch``) tries again.
    """
    connection = connection_service.load_for_sync(store, connection_id)
    if connection is None or connection.provider != "google" or connection.status not in google_channels.SYNCABLE:
        return None
    if not watches_out_of_step(store, connection):
        return None
    try:
        return ensure_watches(store, connection_id)
    except ConnectorError as exc:
        log.warning("google channels not reconciled; the renewal retries",
                    extra={"connection_id": connection_id, "error": type(exc).__name__})
        return None


def stop_channels(store: Store, connection_id: str, *, call_google: bool = True) -> int:
    """Stop every live channel of the connection; returns how many were stopped.

    At Google first (404: already gone), then in the store. When Google refuses our
    credentials (the reason we are stopping, after ``invalid_grant``), the channels are only
    marked stopped: they expire within a week, and the receiver ignores stopped channels.
    """
    live = google_channels.live_channels(store, connection_id)
    if not live:
        return 0
    provider = None
    if call_google:
        connection = connection_service.load_for_sync(store, connection_id)
        if connection is not None and connection.credentials:
            provider = _provider(store, connection)
    try:
        for channel in live:
            if provider is not None:
                try:
                    provider.stop_channel(channel.id, channel.resource_id)
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


def mark_reauth_required(store: Store, connection_id: str, error: str) -> None:
    """``invalid_grant``: the expert must reconnect. ``set_status`` emits
    ``connection.reauth_required``; the channels are stopped (locally: Google refuses us)."""
    connection_service.set_status(store, connection_id, "reauth_required", error)
    stop_channels(store, connection_id, call_google=False)
    log.warning("google connection needs re-authorisation", extra={"connection_id": connection_id})


# -- webhooks -------------------------------------------------------------------------------


def handle_notification(store: Store, headers: Mapping[str, str], queue: TaskQueue) -> str:
    """Decide about one push notification; returns what was done (for logs and tests).

    ``queued``: an incremental sync was queued; ``coalesced``: one is already pending;
    ``ignored``: ``sync`` handshake, unknown channel, or a connection not to sync;
    ``rejected``: wrong or missing token or resource id (logged, otherwise like ignored).
    """
    notification = parse_notification(headers)
    if notification is None:
        return "ignored"
    channel = google_channels.find_live_channel(store, notification.channel_id)
    if channel is None:
        log.info("google notification for an unknown channel ignored", extra={"channel_id": notification.channel_id})
        return "ignored"
    action = decide_action(notification, channel.token_hash, channel.resource_id)
    if action is WebhookAction.REJECT:
        log.warning("google notification rejected: bad token or resource id",
                    extra={"channel_id": channel.id, "connection_id": channel.connection_id})
        return "rejected"
    if action is WebhookAction.IGNORE or channel.connection_status not in google_channels.SYNCABLE:
        return "ignored"
    try:
        wanted = connection_service.request_sync(store, None, channel.connection_id)
    except NotFound:
        return "ignored"
    if not wanted:
        return "coalesced"
    _queue_quietly(queue.sync, channel.connection_id)
    log.info("google notification: sync queued", extra={"connection_id": channel.connection_id})
    return "queued"
