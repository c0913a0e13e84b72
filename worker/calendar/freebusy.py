"""Booking-time re-check of a slot against the expert's Google calendars (``freebusy.query``).

Busy blocks synced from Google already count in every booking check; this closes the gap of
the seconds between a change in Google and its sync. It is optional
(``CALBOOK_GOOGLE_FREEBUSY_CHECK``); the API hands the checker to the booking services, which
call it after their local checks and outside their write transaction
(``booking_engine.services.bookings.precheck_booking``).

Decisions, per failure:

* A calendar Google answers with errors (not found, no access) counts as busy over the whole
  range (``GoogleCalendarProvider.freebusy``): the booking is refused, never offered blind.
* A whole request that fails - Google down or rate limiting after the short retry budget
  (``TransientError``), a request Google rejects (``PermanentError``), or credentials that
  cannot be read - does *not* refuse the booking: the connection is skipped with a warning.
  The check is an extra layered over the synced busy blocks, which still apply; a conflict it
  would have caught is flagged by the next sync (docs/sync.md#conflicts) rather than lost; and failing closed
  would make every expert with a Google connection unbookable for as long as Google (or one
  connection's setup) is broken. Refusing with ``slot_unavailable`` would also be untrue (the
  slot is not known to be busy) and send users round every slot in turn.
* Credentials refused (``AuthError``: revoked, ``invalid_grant``) skip the connection with a
  warning as well; the next sync marks it ``reauth_required`` and notifies the expert.

Free/busy cannot tell calbook's own events apart. That is harmless for a new booking: any of
the expert's active bookings close enough to show up in ``[start - buffer, end + buffer)``
already fails the local check first. An event of a just-cancelled booking that the worker has
not yet deleted from Google does count as busy until it is: a conservative error.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from booking_engine.services import connections as connection_service
from booking_engine.services.bookings import ExternalCheck
from booking_engine.services.connections import CalendarConnection
from booking_engine.store.db import Store
from config.settings import Settings, get_settings
from connectors.base import AuthError, ConnectorError
from connectors.google.backoff import Backoff
from connectors.google.provider import GoogleCalendarProvider
from connectors.secrets import CredentialsUnreadable, decrypt_json, encrypt_json

log = logging.getLogger(__name__)

CHECKED_STATUSES = frozenset({"active", "error"})
"""``error`` is a sync that failed, often transiently, with credentials that may well work:
asking Google costs little and can only refuse a slot that really is busy."""

CHECK_BACKOFF = Backoff(attempts=2, base_delay=0.2, max_delay=1.0)
"""A person waits for the answer: one retry after at most 0.2 s, not the worker's five tries
over several seconds. (Each attempt is still bounded by the provider's HTTP timeout.)"""


def make_freebusy_check(store: Store, settings: Settings | None = None) -> ExternalCheck | None:
    """The booking services' ``external_check`` over Google free/busy, or ``None`` when the
    check is switched off (``google_freebusy_check``), so the caller can pass it as it is."""
    settings = settings or get_settings()
    if not settings.google_freebusy_check:
        return None

    def busy_in_google(expert_id: str, start: datetime, end: datetime) -> bool:
        """Is the expert busy in ``[start, end)`` in a busy calendar of a Google connection?"""
        for listed in connection_service.list_connections(store, expert_id):
            if listed.provider != "google" or listed.status not in CHECKED_STATUSES or not listed.busy_calendars:
                continue
            connection = connection_service.load_for_sync(store, listed.id)
            if connection is None or connection.status not in CHECKED_STATUSES:
                continue
            if _connection_busy(store, settings, connection, start, end):
                return True
        return False

    return busy_in_google


def _connection_busy(
    store: Store, settings: Settings, connection: CalendarConnection, start: datetime, end: datetime
) -> bool:
    context = {"connection_id": connection.id, "expert_id": connection.expert_id}
    try:
        provider = _provider(store, settings, connection)
    except (CredentialsUnreadable, ConnectorError) as exc:
        log.error("google freebusy: no provider, connection not checked: %s", exc, extra=context)
        return False
    try:
        answer = provider.freebusy(connection.busy_calendars, start, end)
    except AuthError as exc:
        log.warning("google freebusy: credentials refused, connection not checked: %s", exc, extra=context)
        return False
    except ConnectorError as exc:
        log.warning("google freebusy: check failed, booking not refused: %s", exc, extra=context)
        return False
    finally:
        provider.close()
    for calendar_id, intervals in answer.items():
        if any(interval.start < end and start < interval.end for interval in intervals):
            log.info("google freebusy: busy", extra={**context, "calendar_id": calendar_id})
            return True
    return False


def _provider(store: Store, settings: Settings, connection: CalendarConnection) -> GoogleCalendarProvider:
    """A provider of its own per check (httplib2 is not thread-safe), with the short retry
    budget of an interactive call, which ``providers.build_provider`` does not offer.
    Refreshed tokens are saved back as the worker does, with the caller's key."""
    key = settings.resolved_encryption_key()
    secrets = decrypt_json(connection.credentials, key) if connection.credentials else {}

    def save(credentials: dict[str, Any]) -> None:
        connection_service.save_credentials(store, connection.id, encrypt_json(credentials, key))

    return GoogleCalendarProvider(
        secrets, settings=settings, connection_id=connection.id, on_credentials_refreshed=save,
        backoff=CHECK_BACKOFF,
    )
