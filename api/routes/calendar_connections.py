"""``/v1/calendar-connections``: an expert's CalDAV and ICS connections (docs/sync.md#connections).

Connecting verifies before it stores: a CalDAV account must list its calendars with the
given credentials, a feed must be fetched and parsed once. That check runs here, in the
request, against a server we do not control, so it has a short timeout and every way it can
fail maps to a problem document (422 for what the expert can fix, 502 when the server is
unreachable or failing), never a 500. Credentials are encrypted before they reach the
service; responses never carry them (an ICS feed URL often holds a private token, so it is
stored encrypted too and shown redacted). Before dialling, the URL must point at a public
address (``connectors.url_policy``, 422 on ``url`` otherwise) unless ``CALBOOK_ALLOW_PRIVATE_URLS``
is set: the server must not be made to call its own network.

``PATCH .../{id}`` lets the expert pick the busy calendars and the destination afterwards.
The route only gathers the account's calendars (the list stored at connect time; the
provider's current list, with the same short timeout, for connections stored before calbook
kept one or when an id is not in it); ``connections.choose_calendars`` validates and changes.

The sync itself runs in the worker: a connect, a ``PATCH`` that changed something or
``POST .../sync`` notes the request in the database and queues ``calbook.sync.connection``;
if the broker is down the periodic sync picks the request up (``worker.calendar.queue``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.auth import CurrentUser
from api.connect_limit import ConnectSlot
from api.deps import SettingsDep, StoreDep
from api.openapi import problem_responses
from api.routes.params import ResourceId
from api.schemas.calendar_connections import (
    CalDAVConnect,
    CalendarChoice,
    CalendarConnectionList,
    CalendarConnectionOut,
    ICSConnect,
)
from booking_engine.clock import utcnow
from booking_engine.errors import BookingError, ValidationError
from booking_engine.services import connections
from booking_engine.services.availability import get_availability
from booking_engine.services.connections import CalendarConnection
from booking_engine.store.db import Store
from config.logging import redact_url
from config.settings import Settings
from connectors.base import AuthError, CalendarInfo, ConnectorError, PermanentError, TransientError
from connectors.secrets import CredentialsUnreadable, decrypt_json, encrypt_json
from connectors.url_policy import UnsafeURL, check_public_url

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/v1/calendar-connections", tags=["calendar connections"], responses=problem_responses(401, 422)
)

#: Seconds the API waits for one answer of a calendar server while verifying a connection...
VERIFY_TIMEOUT = 10
#: ...and for the whole verification of a CalDAV account, redirects and discovery included.
VERIFY_DEADLINE = 15


class CalendarUnreachable(BookingError):
    """The calendar server did not answer, or failed (5xx, 429): try again later."""

    code = "calendar_unreachable"
    status = 502
    title = "The calendar server could not be reached"


def _problem_for(exc: ConnectorError, what: str) -> BookingError:
    """Connector errors as problems; the connectors keep credentials out of their messages."""
    if isinstance(exc, AuthError):
        return ValidationError(f"{what}: credentials refused", field="password")
    if isinstance(exc, TransientError):
        return CalendarUnreachable(f"{what}: {exc}")
    return ValidationError(f"{what}: {exc}", field="url")


def _http_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError("url must be an http or https URL", field="url")
    if parts.username or parts.password:
        raise ValidationError("put the credentials in username and password, not in the URL", field="url")
    return url.strip()


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _pick(wanted: str, calendars: list[CalendarInfo], field: str) -> CalendarInfo:
    for calendar in calendars:
        if _same_url(calendar.id, wanted):
            return calendar
    raise ValidationError(f"{wanted} is not one of the account's calendars", field=field)


def _calendar_list(calendars: list[CalendarInfo]) -> list[dict[str, Any]]:
    """What a connection's config keeps of the account's calendars (``config["calendars"]``)."""
    return [{"id": c.id, "name": c.name, "writable": c.writable} for c in calendars]


def _out(connection: CalendarConnection) -> dict[str, Any]:
    return connection.as_dict()


def _queue(connection_id: str, settings: Settings) -> None:
    from worker.calendar.queue import queue_sync

    queue_sync(connection_id, settings.resolved_broker_url())


@router.get("", response_model=CalendarConnectionList)
def list_connections(user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return {"items": [_out(c) for c in connections.list_connections(store, user.user_id)]}


@router.post("/caldav", status_code=201, response_model=CalendarConnectionOut,
             responses=problem_responses(429, 502))
def connect_caldav(
    body: CalDAVConnect, user: CurrentUser, store: StoreDep, settings: SettingsDep, _: ConnectSlot,
) -> JSONResponse:
    """Discover the account's calendars with the given credentials, then store the connection."""
    from connectors.caldav import CalDAVProvider

    url = _http_url(body.url)
    check_public_url(url, settings.allow_private_urls)
    timezone = get_availability(store, user.user_id).timezone
    addresses = [body.username] if "@" in body.username else []
    try:
        with CalDAVProvider(url, body.username, body.password, timezone, addresses, timeout=VERIFY_TIMEOUT,
                            deadline=VERIFY_DEADLINE, url_policy=settings.allow_private_urls) as dav:
            calendars = dav.list_calendars()
    except UnsafeURL:
        raise  # a redirect or discovered href to a private address: the 422 of the URL policy
    except ConnectorError as exc:
        log.info("caldav connect refused", extra={"user_id": user.user_id, "error": type(exc).__name__})
        raise _problem_for(exc, "could not verify the CalDAV account") from exc
    except ValueError as exc:  # a URL the HTTP layer cannot take apart
        raise ValidationError("url is not a usable CalDAV URL", field="url") from exc
    if not calendars:
        raise ValidationError("no calendar with events found at this URL", field="url")
    busy = [_pick(c, calendars, "busyCalendars").id for c in body.busy_calendars] if body.busy_calendars else [
        c.id for c in calendars
    ]
    if body.destination_calendar:
        destination: CalendarInfo | None = _pick(body.destination_calendar, calendars, "destinationCalendar")
        if destination is not None and not destination.writable:
            raise ValidationError("the destination calendar is read-only", field="destinationCalendar")
    else:
        destination = next((c for c in calendars if c.writable), None)
    secret = encrypt_json({"username": body.username, "password": body.password},
                          settings.resolved_encryption_key())
    created = connections.create_connection(
        store, user.user_id, user.user_id, "caldav", account=body.username, credentials=secret,
        busy_calendars=list(dict.fromkeys(busy)), destination_calendar=destination.id if destination else None,
        extra_config={"url": url, "calendars": _calendar_list(calendars)},
    )
    log.info("caldav connection created", extra={"connection_id": created.id, "calendars": len(calendars)})
    _queue(created.id, settings)
    return JSONResponse(_out(created), status_code=201,
                        headers={"Location": f"/v1/calendar-connections/{created.id}"})


def _redacted_feed(url: str) -> str:
    """The feed as the connection shows it (``account``): host and path, tokens masked, no query."""
    return redact_url(url)


@router.post("/ics", status_code=201, response_model=CalendarConnectionOut, responses=problem_responses(429, 502))
def connect_ics(
    body: ICSConnect, user: CurrentUser, store: StoreDep, settings: SettingsDep, _: ConnectSlot,
) -> JSONResponse:
    """Fetch and parse the feed once, then store it; the feed URL is kept encrypted."""
    from connectors.ics import ICSFeedProvider
    from connectors.ics.provider import FEED_CALENDAR_ID, feed_url

    try:
        url = feed_url(body.url)
    except PermanentError as exc:
        raise ValidationError("url must be an http, https or webcal URL", field="url") from exc
    check_public_url(url, settings.allow_private_urls)  # webcal is mapped to https by now
    timezone = get_availability(store, user.user_id).timezone
    now = utcnow()
    try:
        guard = partial(check_public_url, allow_private=settings.allow_private_urls)
        with ICSFeedProvider(url, timezone, timeout=VERIFY_TIMEOUT, url_guard=guard) as feed:
            feed.pull(FEED_CALENDAR_ID, None, now - timedelta(days=1), now + timedelta(days=settings.sync_horizon_days))
    except UnsafeURL:
        raise  # a redirect to a private address: the 422 of the URL policy
    except ConnectorError as exc:
        log.info("ics connect refused", extra={"user_id": user.user_id, "error": type(exc).__name__})
        raise _problem_for(exc, "could not read the feed") from exc
    shown = _redacted_feed(url)
    created = connections.create_connection(
        store, user.user_id, user.user_id, "ics", account=shown,
        credentials=encrypt_json({"url": url}, settings.resolved_encryption_key()),
        busy_calendars=[], destination_calendar=None, extra_config={"url": shown},
    )
    log.info("ics connection created", extra={"connection_id": created.id})
    _queue(created.id, settings)
    return JSONResponse(_out(created), status_code=201,
                        headers={"Location": f"/v1/calendar-connections/{created.id}"})


@router.get("/{connection_id}", response_model=CalendarConnectionOut, responses=problem_responses(404))
def get_connection(connection_id: ResourceId, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return _out(connections.get_connection(store, user.user_id, connection_id))


@router.patch("/{connection_id}", response_model=CalendarConnectionOut,
              responses=problem_responses(404, 429, 502))
def choose_calendars(
    connection_id: ResourceId, body: CalendarChoice, user: CurrentUser, store: StoreDep, settings: SettingsDep,
    _: ConnectSlot,
) -> dict[str, Any]:
    """Pick the busy calendars and the destination; a change is applied by the sync it queues."""
    connection = connections.get_connection(store, user.user_id, connection_id)
    wanted = [*(body.busy_calendars or []), *([body.destination_calendar] if body.destination_calendar else [])]
    known = connection.known_calendars
    if connection.provider != "ics" and (known is None or not all(_listed(w, known) for w in wanted)):
        known = _list_calendars(store, settings, connection, fallback=known)
    given = "destination_calendar" in body.model_fields_set
    destination = body.destination_calendar if given else connections.UNCHANGED
    changed, queue = connections.choose_calendars(
        store, user.user_id, connection_id, body.busy_calendars, destination, known or []
    )
    if queue:
        _queue(connection_id, settings)
    return _out(changed)


def _listed(wanted: str, known: list[dict[str, Any]]) -> bool:
    return any(_same_url(str(c["id"]), wanted) for c in known)


def _list_calendars(
    store: Store, settings: Settings, connection: CalendarConnection, fallback: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The account's calendars now, through the provider (short timeout, few retries: a person
    waits); the stored list if the provider cannot answer."""
    key = settings.resolved_encryption_key()
    loaded = connections.load_for_sync(store, connection.id)
    try:
        if loaded is None:
            raise PermanentError("connection gone")
        secrets = decrypt_json(loaded.credentials or "", key)
        if loaded.provider == "caldav":
            from connectors.caldav import CalDAVProvider

            timezone = get_availability(store, loaded.expert_id).timezone
            with CalDAVProvider(loaded.config["url"], secrets.get("username", ""), secrets.get("password", ""),
                                timezone, timeout=VERIFY_TIMEOUT, deadline=VERIFY_DEADLINE,
                                url_policy=settings.allow_private_urls) as dav:
                return _calendar_list(dav.list_calendars())
        from connectors.google.backoff import Backoff
        from connectors.google.provider import GoogleCalendarProvider

        def save(refreshed: dict[str, Any]) -> None:
            connections.save_credentials(store, loaded.id, encrypt_json(refreshed, key))

        google = GoogleCalendarProvider(secrets, settings=settings, connection_id=loaded.id,
                                        on_credentials_refreshed=save, backoff=Backoff(attempts=2, max_delay=2.0))
        try:
            return _calendar_list(google.list_calendars())
        finally:
            google.close()
    except (ConnectorError, CredentialsUnreadable, ValueError) as exc:
        log.info("calendar listing failed", extra={"connection_id": connection.id, "error": type(exc).__name__})
        if fallback is not None:
            return fallback
        if isinstance(exc, TransientError):
            raise CalendarUnreachable(f"could not list the account's calendars: {exc}") from exc
        raise ValidationError("could not list the account's calendars; reconnect the account", field="id") from exc


@router.delete("/{connection_id}", status_code=204, response_class=Response, responses=problem_responses(404))
def delete_connection(connection_id: ResourceId, user: CurrentUser, store: StoreDep) -> Response:
    """Disconnect: the busy blocks go in the same transaction; the worker wipes the credentials."""
    connections.disconnect(store, user.user_id, connection_id)
    log.info("calendar connection removed", extra={"connection_id": connection_id})
    return Response(status_code=204)


@router.post("/{connection_id}/sync", status_code=202, responses=problem_responses(404))
def sync_connection(
    connection_id: ResourceId, user: CurrentUser, store: StoreDep, settings: SettingsDep
) -> JSONResponse:
    """Note the request and queue the sync; a request already waiting is not queued twice."""
    if connections.request_sync(store, user.user_id, connection_id):
        _queue(connection_id, settings)
    return JSONResponse({"id": connection_id, "syncRequested": True}, status_code=202)
