"""The one place a provider is built for a connection: ``open_provider``.

Credentials are decrypted here (with the key of the settings handed in) and nowhere else;
tokens a provider refreshes are encrypted and handed to ``on_credentials_refreshed`` the moment
the provider reports them. ``PROVIDERS`` is the explicit table of provider kinds; a new one (say
Microsoft 365) is one builder function and one row, which also says
which optional capabilities (``connectors.base``) its providers offer.

``person_waits`` is for calls a person waits on (the API verifying or listing an account, the
free/busy check while booking): short timeouts and one quick retry instead of the worker's
patient ones. One provider per task or request: httplib2 (Google) is not thread-safe.

Every provider is built with the gate of its shared rate limits (``connectors.rate_limits``,
docs/rate-limits.md): the ``limits`` handed in, or by default those the settings name, on this
process's limiter (Redis, the database, or none: ``CALBOOK_RATE_LIMIT_STORE``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from booking_engine.connections import CalendarConnection, Provider
from config.settings import Settings
from connectors.base import CalendarProvider, PermanentError
from connectors.rate_limits import ProviderLimits, provider_limits
from connectors.secrets import CredentialsUnreadable, decrypt_json, encrypt_json
from connectors.url_policy import check_public_url

#: Seconds one answer of a calendar server may take while a person waits...
PERSON_TIMEOUT = 10
#: ...and the whole of a CalDAV verification, redirects and discovery included.
PERSON_DEADLINE = 15

SaveCredentials = Callable[[str], None]
"""Receives refreshed credentials, already encrypted."""


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """What a builder gets: the stored connection's parts, its secrets decrypted, the expert's zone."""

    connection_id: str | None
    account: str | None
    config: Mapping[str, Any]
    secrets: dict[str, Any]
    timezone: str
    settings: Settings
    person_waits: bool
    save: SaveCredentials | None
    limits: ProviderLimits


def _addresses(request: ProviderRequest) -> tuple[str, ...]:
    found = {a for a in (request.account, request.secrets.get("username")) if a and "@" in a}
    return tuple(sorted(found))


def _caldav(request: ProviderRequest) -> CalendarProvider:
    from connectors.caldav import CalDAVProvider

    # The URL policy is applied again at every connection the worker makes (sync and push), to
    # the stored URL and every calendar and event URL derived from it: DNS may have changed.
    limits: dict[str, Any] = {"timeout": PERSON_TIMEOUT, "deadline": PERSON_DEADLINE} if request.person_waits else {}
    return CalDAVProvider(
        request.config["url"], request.secrets.get("username", ""), request.secrets.get("password", ""),
        request.timezone, account_addresses=_addresses(request), url_policy=request.settings.allow_private_urls,
        gate=request.limits.caldav(connection_id=request.connection_id, person_waits=request.person_waits), **limits,
    )


def _ics(request: ProviderRequest) -> CalendarProvider:
    from connectors.ics import ICSFeedProvider
    from connectors.ics.provider import DEFAULT_TIMEOUT

    # The API keeps the feed URL encrypted (it often holds a private token) and shows only a
    # redacted one in ``config``; connections stored before that have only ``config["url"]``.
    url = request.secrets.get("url") or request.config["url"]
    allow_private = request.settings.allow_private_urls
    return ICSFeedProvider(
        url, request.timezone, account_addresses=_addresses(request),
        timeout=PERSON_TIMEOUT if request.person_waits else DEFAULT_TIMEOUT,
        url_guard=lambda target: check_public_url(target, allow_private),
        gate=request.limits.ics(connection_id=request.connection_id, person_waits=request.person_waits),
    )


def _google(request: ProviderRequest) -> CalendarProvider:
    from connectors.google.backoff import PERSON_WAITS
    from connectors.google.provider import GoogleCalendarProvider

    key = request.settings.resolved_encryption_key()
    save = request.save

    def refreshed(credentials: dict[str, Any]) -> None:
        if save is not None:
            save(encrypt_json(credentials, key))

    gate = request.limits.google(
        user=request.account or request.connection_id or "connecting", project=request.settings.google_client_id or "",
        connection_id=request.connection_id, person_waits=request.person_waits,
    )
    return GoogleCalendarProvider(
        request.secrets, settings=request.settings, connection_id=request.connection_id,
        on_credentials_refreshed=refreshed, backoff=PERSON_WAITS if request.person_waits else None, gate=gate,
    )


def _microsoft(request: ProviderRequest) -> CalendarProvider:
    from connectors.microsoft.graph import PERSON_WAITS
    from connectors.microsoft.provider import MicrosoftCalendarProvider

    key = request.settings.resolved_encryption_key()
    save = request.save

    def refreshed(credentials: dict[str, Any]) -> None:
        if save is not None:
            save(encrypt_json(credentials, key))

    mailbox = request.account or request.connection_id or ""
    gate = request.limits.microsoft(
        mailbox=mailbox, app=request.settings.microsoft_client_id or "",
        graph_root=request.settings.microsoft_graph_root, connection_id=request.connection_id,
        person_waits=request.person_waits,
    )
    return MicrosoftCalendarProvider(
        request.secrets, settings=request.settings, mailbox=mailbox,
        connection_id=request.connection_id, on_credentials_refreshed=refreshed,
        backoff=PERSON_WAITS if request.person_waits else None, timeout=PERSON_TIMEOUT if request.person_waits else 30,
        gate=gate,
    )


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """One row of the provider table: how to build it, and what its providers offer beyond the base
    interface, for callers that decide before opening one (the free/busy check while booking)."""

    build: Callable[[ProviderRequest], CalendarProvider]
    free_busy: bool = False
    watch_channels: bool = False


PROVIDERS: dict[Provider, ProviderKind] = {
    Provider.CALDAV: ProviderKind(_caldav),
    Provider.ICS: ProviderKind(_ics),
    Provider.GOOGLE: ProviderKind(_google, free_busy=True, watch_channels=True),
    Provider.MICROSOFT: ProviderKind(_microsoft, free_busy=True, watch_channels=True),
}


def kind_of(provider: str) -> ProviderKind:
    try:
        return PROVIDERS[Provider(provider)]
    except (ValueError, KeyError) as exc:
        raise PermanentError(f"no provider for {provider!r}") from exc


def open_provider(
    connection: CalendarConnection,
    settings: Settings,
    timezone: str,
    *,
    on_credentials_refreshed: SaveCredentials | None = None,
    person_waits: bool = False,
    limits: ProviderLimits | None = None,
) -> CalendarProvider:
    """The provider of a stored connection (loaded with its credentials).

    Raises ``PermanentError`` for an unknown provider or credentials no configured key opens.
    """
    return open_account(
        connection.provider, connection.credentials, settings, timezone, connection_id=connection.id,
        account=connection.account, config=connection.config, on_credentials_refreshed=on_credentials_refreshed,
        person_waits=person_waits, limits=limits,
    )


def open_account(
    provider: str,
    credentials: str | None,
    settings: Settings,
    timezone: str,
    *,
    connection_id: str | None = None,
    account: str | None = None,
    config: Mapping[str, Any] | None = None,
    on_credentials_refreshed: SaveCredentials | None = None,
    person_waits: bool = False,
    limits: ProviderLimits | None = None,
) -> CalendarProvider:
    """A provider for encrypted ``credentials`` that need not be stored yet (an account being connected).

    ``limits``: the rate limits its requests keep; by default the ones ``settings`` name."""
    builder = kind_of(provider).build
    try:
        secrets = decrypt_json(credentials, settings.resolved_encryption_key()) if credentials else {}
    except CredentialsUnreadable as exc:
        raise PermanentError(str(exc)) from exc
    return builder(ProviderRequest(
        connection_id=connection_id, account=account, config=config or {}, secrets=secrets, timezone=timezone,
        settings=settings, person_waits=person_waits, save=on_credentials_refreshed,
        limits=limits if limits is not None else provider_limits(settings),
    ))
