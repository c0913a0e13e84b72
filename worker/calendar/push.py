"""Write a booking's event to the expert's destination calendars (docs/sync.md#push).

The handler reads the booking's state now, not the event payload: a duplicate or late
delivery of ``booking.confirmed`` after a cancellation then deletes rather than recreates,
and any number of deliveries converge on one event. Confirmed means the event exists with
the booking's times and SEQUENCE; any other active or cancelled state means it is gone
(a user's reschedule puts the booking back to pending until the expert confirms again);
completed and no-show bookings keep their event as a record.

When the expert picks another destination calendar, the next write of a confirmed booking
moves its event: deleted where the stored ref says it lives, then created in the new one
(``backfill`` finds the bookings to move after each sync). With no destination at all,
nothing new is written; events already written stay where they are and are still removed
when their booking stops being confirmed.

A server that refuses one booking's event (``EventRejected``: a failed precondition) fails
that push only: the reason is recorded for the booking and connection
(``calendar_sync.record_push_error``, cleared by the next successful push), the connection
stays active, and the next sync's ``backfill`` tries again. Refused credentials mark the
connection ``reauth_required``; any other permanent error (the destination calendar is gone,
the URL policy refuses the server) is the connection's.
"""

from __future__ import annotations

import logging
from typing import Any

from booking_engine.connections import CalendarConnection, ConnectionStatus, Provider
from booking_engine.model import Booking, BookingStatus
from booking_engine.services import calendar_sync
from booking_engine.services import connections as connection_service
from booking_engine.store.db import Store
from config.settings import Settings
from connectors.base import AuthError, BookingEvent, ConnectorError, EventRef, EventRejected, PermanentError
from worker.calendar.providers import provider_for

log = logging.getLogger(__name__)

KEEP_AS_IS = (BookingStatus.COMPLETED, BookingStatus.NO_SHOW)


def booking_event(booking: Booking) -> BookingEvent:
    kind = str(booking.type).replace("_", " ")
    summary = f"calbook: {kind}" + (f" - {booking.topic}" if booking.topic else "")
    description = f"Booking {booking.id}\nType: {kind}\nDuration: {booking.duration} minutes"
    return BookingEvent(
        booking_id=booking.id, start=booking.start, end=booking.end, summary=summary[:250],
        description=description, sequence=booking.sequence,
    )


def push_booking(store: Store, booking_id: str, *, settings: Settings) -> int:
    """Bring every destination calendar in line with the booking; returns calendars touched."""
    state = calendar_sync.booking_for_push(store, booking_id)
    if state is None:
        return 0
    booking, targets = state
    if booking.status in KEEP_AS_IS:
        return 0
    touched = 0
    for target in targets:
        connection_id = target.connection_id
        if not target.writable:
            continue
        try:
            touched += _push_one(store, booking, connection_id, target.destination, settings)
        except AuthError as exc:
            connection_service.set_status(store, connection_id, ConnectionStatus.REAUTH_REQUIRED, str(exc))
        except EventRejected as exc:
            _rejected(store, booking.id, connection_id, exc)
        except PermanentError as exc:
            connection_service.set_status(store, connection_id, ConnectionStatus.ERROR, f"push failed: {exc}")
            log.error("calendar push failed", extra={"booking_id": booking_id, "connection_id": connection_id})
    return touched


def _push_one(store: Store, booking: Booking, connection_id: str, destination: str | None, settings: Settings) -> int:
    stored = calendar_sync.get_event_ref(store, booking.id, connection_id)
    existing = EventRef(stored.calendar_id, stored.ref, stored.etag) if stored else None
    confirmed = booking.status == BookingStatus.CONFIRMED
    if not confirmed and existing is None and booking.confirmed_at is None:
        return 0  # never confirmed: nothing was ever written
    if destination is None and (confirmed or existing is None):
        return 0  # no destination: write nothing new, leave what was written where it is
    connection = connection_service.load_for_sync(store, connection_id)
    if connection is None:
        return 0
    with provider_for(store, connection, settings=settings) as provider:
        if confirmed and destination is not None:
            if existing is not None and existing.calendar_id != destination:
                # The expert picked another destination: the event moves (a missing one is fine).
                provider.delete_event(existing.calendar_id, booking.id, existing)
                existing = None
                log.info("calendar event moving", extra={"booking_id": booking.id, "connection_id": connection_id})
            ref = provider.put_event(destination, booking_event(booking), existing)
            calendar_sync.save_event_ref(store, booking.id, connection_id, ref.calendar_id, ref.ref, ref.etag,
                                         booking.sequence)
            log.info("calendar event written", extra={"booking_id": booking.id, "connection_id": connection_id})
        else:
            target = existing.calendar_id if existing else destination
            provider.delete_event(target, booking.id, existing)
            calendar_sync.delete_event_ref(store, booking.id, connection_id)
            log.info("calendar event removed", extra={"booking_id": booking.id, "connection_id": connection_id})
    calendar_sync.clear_push_error(store, booking.id, connection_id)
    return 1


def _rejected(store: Store, booking_id: str, connection_id: str, exc: EventRejected) -> None:
    calendar_sync.record_push_error(store, booking_id, connection_id, str(exc))
    log.error("calendar server refused the booking's event", extra={
        "booking_id": booking_id, "connection_id": connection_id, "error": str(exc)})


def handle_push_event(store: Store, payload: dict[str, Any], aggregate_id: str, *, settings: Settings) -> None:
    booking = payload.get("booking") or {}
    push_booking(store, booking.get("id") or aggregate_id, settings=settings)


def backfill(store: Store, connection: CalendarConnection, *, settings: Settings) -> int:
    """Write the events that a destination calendar is missing, after a successful sync.

    A push can be skipped for good while a connection is ``reauth_required`` (its outbox
    handler ran and found nothing to write to), or a connection can get a destination after
    bookings were confirmed, or another one. Each sync therefore writes the upcoming confirmed
    bookings of the expert that have no event in this connection's destination calendar yet
    (moving those whose event is in another calendar); errors are logged and left to the next
    sync, never failing the sync itself. ``connection`` is as the sync read it; the sync just
    made it ``active``.
    """
    connection_id = connection.id
    if connection.provider == Provider.ICS:
        return 0
    destination = connection.destination_calendar
    if not destination:
        return 0
    written = 0
    for booking in calendar_sync.unpushed_bookings(store, connection.expert_id, connection_id,
                                                   destination=destination):
        try:
            written += _push_one(store, booking, connection_id, destination, settings)
        except EventRejected as exc:
            _rejected(store, booking.id, connection_id, exc)  # that one booking; the others still go
        except ConnectorError as exc:
            log.warning("backfill push failed", extra={"booking_id": booking.id, "connection_id": connection_id,
                                                       "error": type(exc).__name__})
            break
    if written:
        log.info("missing calendar events written", extra={"connection_id": connection_id, "count": written})
    return written
