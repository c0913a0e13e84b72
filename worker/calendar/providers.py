"""The provider of a stored connection, for the worker: ``connectors.factory.open_provider`` with the
settings handed in, the expert's time zone, and refreshed credentials saved back at once.

One instance per task (httplib2 is not thread-safe); use it as a context manager.
"""

from __future__ import annotations

from booking_engine.connections import CalendarConnection
from booking_engine.services import connections as connection_service
from booking_engine.services.availability import get_availability
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.base import CalendarProvider
from connectors.factory import open_provider


def expert_timezone(store: Store, expert_id: str) -> str:
    return get_availability(store, expert_id).timezone


def provider_for(store: Store, connection: CalendarConnection, *, settings: Settings,
                 timezone: str | None = None) -> CalendarProvider:
    """Raises ``PermanentError`` when no provider can be built (unknown kind, unreadable credentials).

    ``timezone`` is the expert's, when the caller read it already (a sync's start does)."""

    def save(credentials: str) -> None:
        connection_service.save_credentials(store, connection.id, credentials)

    return open_provider(connection, settings, timezone or expert_timezone(store, connection.expert_id),
                         on_credentials_refreshed=save)
