"""Build the provider of a stored connection; one instance per task (httplib2 is not thread-safe).

Credentials are decrypted here and nowhere else in the worker; refreshed Google tokens are
encrypted and saved back the moment the provider reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from booking_engine.services import connections as connection_service
from booking_engine.services.connections import CalendarConnection
from booking_engine.store.db import Store
from config.settings import get_settings
from connectors.base import CalendarProvider, PermanentError
from connectors.secrets import CredentialsUnreadable, decrypt_json, encrypt_json
from connectors.url_policy import check_public_url

Factory = Callable[[Store, CalendarConnection, dict[str, Any], str], CalendarProvider]
FACTORIES: dict[str, Factory] = {}


def register_provider(name: str) -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        FACTORIES[name] = factory
        return factory

    return decorate


def expert_timezone(store: Store, expert_id: str) -> str:
    from booking_engine.services.availability import get_availability

    return get_availability(store, expert_id).timezone


def build_provider(store: Store, connection: CalendarConnection) -> CalendarProvider:
    factory = FACTORIES.get(connection.provider)
    if factory is None:
        raise PermanentError(f"no provider for {connection.provider!r}")
    try:
        secrets = decrypt_json(connection.credentials) if connection.credentials else {}
    except CredentialsUnreadable as exc:
        raise PermanentError(str(exc)) from exc
    return factory(store, connection, secrets, expert_timezone(store, connection.expert_id))


def _addresses(connection: CalendarConnection, secrets: dict[str, Any]) -> tuple[str, ...]:
    found = {a for a in (connection.account, secrets.get("username")) if a and "@" in a}
    return tuple(sorted(found))


@register_provider("caldav")
def _caldav(store: Store, connection: CalendarConnection, secrets: dict[str, Any], tz: str) -> CalendarProvider:
    from connectors.caldav import CalDAVProvider

    # The URL policy is applied again at every connection the worker makes (sync and push), to
    # the stored URL and every calendar and event URL derived from it: DNS may have changed.
    return CalDAVProvider(
        connection.config["url"], secrets.get("username", ""), secrets.get("password", ""), tz,
        account_addresses=_addresses(connection, secrets), url_policy=get_settings().allow_private_urls,
    )


@register_provider("ics")
def _ics(store: Store, connection: CalendarConnection, secrets: dict[str, Any], tz: str) -> CalendarProvider:
    from connectors.ics import ICSFeedProvider

    # The API keeps the feed URL encrypted (it often holds a private token) and shows only a
    # redacted one in ``config``; connections stored before that have only ``config["url"]``.
    url = secrets.get("url") or connection.config["url"]
    allow_private = get_settings().allow_private_urls
    return ICSFeedProvider(
        url, tz, account_addresses=_addresses(connection, secrets),
        url_guard=lambda target: check_public_url(target, allow_private),
    )


@register_provider("google")
def _google(store: Store, connection: CalendarConnection, secrets: dict[str, Any], tz: str) -> CalendarProvider:
    from connectors.google.provider import GoogleCalendarProvider

    def save(credentials: dict[str, Any]) -> None:
        connection_service.save_credentials(store, connection.id, encrypt_json(credentials))

    return GoogleCalendarProvider(secrets, connection_id=connection.id, on_credentials_refreshed=save)


def close(provider: CalendarProvider) -> None:
    closer = getattr(provider, "close", None)
    if callable(closer):
        closer()
