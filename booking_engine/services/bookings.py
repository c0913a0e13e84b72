"""Booking use cases: create, read, list, and every lifecycle action of SPEC 2.4."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from booking_engine import availability as engine
from booking_engine import lifecycle
from booking_engine.errors import ValidationError
from booking_engine.model import Booking, BookingStatus, BookingType, CancelledBy, new_id
from booking_engine.services._common import now_or, optional_text, require_expert, role_of
from booking_engine.services.availability import load_context, load_settings
from booking_engine.services.pagination import check_limit, decode_cursor, encode_cursor
from booking_engine.store import repositories as repo
from booking_engine.store.db import Store
from booking_engine.timeutil import to_utc

log = logging.getLogger(__name__)

MAX_TOPIC = 500
MAX_NOTES = 5000


def parse_type(value: object) -> BookingType:
    try:
        return BookingType(value)
    except ValueError as exc:
        allowed = ", ".join(t.value for t in BookingType)
        raise ValidationError(f"type must be one of {allowed}", field="type") from exc


def place_booking(
    conn: Connection,
    *,
    user_id: str,
    expert_id: str,
    start: datetime,
    duration: int,
    booking_type: BookingType,
    topic: str | None,
    notes: str | None,
    now: datetime,
    force_confirmed: bool = False,
    request_id: str | None = None,
) -> Booking:
    """Validate and insert a booking inside the caller's write transaction.

    The check reads busy time and the insert follows in the same transaction: serialised on
    SQLite by ``BEGIN IMMEDIATE``, and on PostgreSQL backed by the exclusion constraint,
    which turns a lost race into ``slot_unavailable``.
    """
    if user_id == expert_id:
        raise ValidationError("an expert cannot book themselves", field="expertId")
    settings = load_settings(conn, expert_id)
    engine.validate_duration(settings, duration)
    end = start + timedelta(minutes=duration)
    exceptions, busy = load_context(conn, settings, start, end)
    engine.check_bookable(settings, exceptions, busy, start, duration, now)
    confirmed = force_confirmed or settings.auto_confirm
    booking = Booking(
        id=new_id(),
        expert_id=expert_id,
        user_id=user_id,
        start=start,
        duration=duration,
        type=booking_type,
        status=BookingStatus.CONFIRMED if confirmed else BookingStatus.PENDING,
        price_cents=engine.price_cents(settings.hourly_rate_cents, duration),
        currency=settings.currency,
        buffer=settings.buffer,
        created_at=now,
        topic=topic,
        notes=notes,
        confirmed_at=now if confirmed else None,
        request_id=request_id,
    )
    booking.record("booking.created")
    if confirmed:
        booking.record("booking.confirmed")
    repo.ensure_user(conn, user_id, now)
    repo.insert_booking(conn, booking, now)
    repo.add_events(conn, booking.events, now)
    log.info("booking created", extra={"booking_id": booking.id, "expert_id": expert_id, "status": booking.status})
    return booking


def create_booking(
    store: Store,
    user_id: str,
    expert_id: str,
    start: datetime,
    duration: int,
    booking_type: BookingType | str,
    topic: str | None = None,
    notes: str | None = None,
    now: datetime | None = None,
) -> Booking:
    kind = parse_type(booking_type)
    topic = optional_text(topic, "topic", MAX_TOPIC)
    notes = optional_text(notes, "notes", MAX_NOTES)
    start = to_utc(start)
    moment = now_or(now)
    with store.write() as conn:
        return place_booking(
            conn, user_id=user_id, expert_id=expert_id, start=start, duration=duration,
            booking_type=kind, topic=topic, notes=notes, now=moment,
        )


def get_booking(store: Store, actor: str, booking_id: str) -> Booking:
    with store.read() as conn:
        booking = repo.get_booking(conn, booking_id)
    role_of(booking, actor)
    assert booking is not None
    return booking


def list_bookings(
    store: Store,
    actor: str,
    as_role: str = "user",
    statuses: Sequence[str] | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Booking], str | None]:
    """The actor's bookings as user or as expert, by start time, with a keyset cursor."""
    if as_role not in ("user", "expert"):
        raise ValidationError("as must be 'user' or 'expert'", field="as")
    for status in statuses or ():
        if status not in {s.value for s in BookingStatus}:
            raise ValidationError(f"unknown status {status!r}", field="status")
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    with store.read() as conn:
        items = repo.list_bookings(
            conn,
            user_id=actor if as_role == "user" else None,
            expert_id=actor if as_role == "expert" else None,
            statuses=statuses,
            start_from=to_utc(start_from) if start_from else None,
            start_to=to_utc(start_to) if start_to else None,
            after=after,
            limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    return items, encode_cursor(items[-1].start, items[-1].id) if more else None


def _change(store: Store, actor: str, booking_id: str, action: str, now: datetime | None, apply) -> Booking:  # type: ignore[no-untyped-def]
    moment = now_or(now)
    with store.write() as conn:
        booking = repo.get_booking(conn, booking_id, for_update=True)
        role = role_of(booking, actor)
        assert booking is not None
        previous = booking.version
        apply(conn, booking, role, moment)
        repo.update_booking(conn, booking, previous, moment)
        repo.add_events(conn, booking.events, moment)
    log.info("booking %s", action, extra={"booking_id": booking.id, "status": str(booking.status)})
    return booking


def confirm_booking(store: Store, actor: str, booking_id: str, now: datetime | None = None) -> Booking:
    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        require_expert(role, "confirm a booking")
        lifecycle.confirm(booking, moment)

    return _change(store, actor, booking_id, "confirmed", now, apply)


def decline_booking(
    store: Store, actor: str, booking_id: str, reason: str | None, now: datetime | None = None
) -> Booking:
    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        require_expert(role, "decline a booking")
        lifecycle.decline(booking, reason, moment)

    return _change(store, actor, booking_id, "declined", now, apply)


def cancel_booking(
    store: Store, actor: str, booking_id: str, reason: str | None, now: datetime | None = None
) -> Booking:
    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        lifecycle.cancel(booking, role, reason, moment)

    return _change(store, actor, booking_id, "cancelled", now, apply)


def reschedule_booking(
    store: Store, actor: str, booking_id: str, new_start: datetime, now: datetime | None = None
) -> Booking:
    new_start = to_utc(new_start)

    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        lifecycle.ensure_reschedulable(booking, moment)
        settings = load_settings(conn, booking.expert_id)
        end = new_start + timedelta(minutes=booking.duration)
        exceptions, busy = load_context(conn, settings, new_start, end, exclude_booking=booking.id)
        # Same duration as booked, even if the expert's limits changed since (SPEC 2.4).
        limits = replace(
            settings,
            min_duration=min(settings.min_duration, booking.duration),
            max_duration=max(settings.max_duration, booking.duration),
        )
        engine.check_bookable(limits, exceptions, busy, new_start, booking.duration, moment)
        booking.buffer = settings.buffer
        lifecycle.reschedule(booking, new_start, role, settings.auto_confirm, moment)

    return _change(store, actor, booking_id, "rescheduled", now, apply)


def mark_no_show(store: Store, actor: str, booking_id: str, now: datetime | None = None) -> Booking:
    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        require_expert(role, "mark a no-show")
        lifecycle.no_show(booking, moment)

    return _change(store, actor, booking_id, "marked no-show", now, apply)


def complete_booking(store: Store, booking_id: str, now: datetime | None = None) -> Booking | None:
    """Worker use case: complete one booking if it is still confirmed and over; else no-op."""
    moment = now_or(now)
    with store.write() as conn:
        booking = repo.get_booking(conn, booking_id, for_update=True)
        if booking is None or booking.status != BookingStatus.CONFIRMED or booking.end > moment:
            return None
        previous = booking.version
        lifecycle.complete(booking, moment)
        repo.update_booking(conn, booking, previous, moment)
        repo.add_events(conn, booking.events, moment)
        return booking


def expire_unconfirmed_booking(store: Store, booking_id: str, now: datetime | None = None) -> Booking | None:
    """Worker use case: cancel a pending booking whose start has passed; else no-op."""
    moment = now_or(now)
    with store.write() as conn:
        booking = repo.get_booking(conn, booking_id, for_update=True)
        if booking is None or booking.status != BookingStatus.PENDING or booking.start > moment:
            return None
        previous = booking.version
        lifecycle.expire_unconfirmed(booking, moment)
        repo.update_booking(conn, booking, previous, moment)
        repo.add_events(conn, booking.events, moment)
        return booking


def complete_due_bookings(store: Store, now: datetime | None = None, batch: int = 500) -> int:
    moment = now_or(now)
    with store.read() as conn:
        ids = repo.due_bookings(conn, BookingStatus.CONFIRMED, end_before=moment, limit=batch)
    return sum(1 for booking_id in ids if complete_booking(store, booking_id, moment) is not None)


def expire_unconfirmed_bookings(store: Store, now: datetime | None = None, batch: int = 500) -> int:
    moment = now_or(now)
    with store.read() as conn:
        ids = repo.due_bookings(conn, BookingStatus.PENDING, start_before=moment, limit=batch)
    return sum(1 for booking_id in ids if expire_unconfirmed_booking(store, booking_id, moment) is not None)


def audit_conflicts(store: Store) -> list[tuple[str, str]]:
    """Nightly integrity audit: any pair of active bookings of one expert that conflict."""
    with store.read() as conn:
        pairs = repo.conflicting_pairs(conn)
    for a, b in pairs:
        log.error("conflicting bookings found", extra={"booking_id": a, "other_booking_id": b})
    return pairs
