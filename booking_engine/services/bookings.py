"""Booking use cases: create, read, list, and every lifecycle action of docs/lifecycle.md."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from booking_engine import availability as engine
from booking_engine import lifecycle, policies
from booking_engine.errors import Forbidden, NotFound, PreconditionFailed, SlotUnavailable, ValidationError
from booking_engine.model import (
    AvailabilitySettings,
    Booking,
    BookingStatus,
    BookingType,
    CancelledBy,
    PaymentStatus,
    new_id,
)
from booking_engine.service_keys import Scope, ServiceKey
from booking_engine.services._common import now_or, optional_text, require_expert, require_scope, role_of
from booking_engine.services.availability import load_context, load_counts_around, load_settings, lock_for_limits
from booking_engine.services.pagination import (
    check_limit,
    check_statuses,
    decode_cursor,
    encode_cursor,
    party_filter,
)
from booking_engine.store.db import Store
from booking_engine.store.repositories import bookings as booking_rows
from booking_engine.store.repositories import outbox as outbox_rows
from booking_engine.store.repositories import users as user_rows
from booking_engine.timeutil import to_utc

log = logging.getLogger(__name__)

MAX_TOPIC = 500
MAX_NOTES = 5000

ExternalCheck = Callable[[str, datetime, datetime], bool]
"""``(expert_id, start, end) -> busy?``: is the expert busy in ``[start, end)`` in a calendar
calbook has not synced yet (Google free/busy at booking time, docs/sync.md#google)? Injected by the caller;
the domain knows nothing of calendars or the network."""


def parse_type(value: object) -> BookingType:
    try:
        return BookingType(value if isinstance(value, str) else "")
    except ValueError as exc:
        allowed = ", ".join(t.value for t in BookingType)
        raise ValidationError(f"type must be one of {allowed}", field="type") from exc


def _validate(
    conn: Connection, user_id: str, expert_id: str, start: datetime, duration: int, now: datetime,
    *, for_write: bool = False,
) -> AvailabilitySettings:
    """The local checks of create (docs/lifecycle.md#create), against what the database holds; the settings.

    ``for_write``: inside the write transaction, an expert with daily or weekly limits has their
    settings row locked before the bookings are counted (docs/domain.md#booking-limits).
    """
    if user_id == expert_id:
        raise ValidationError("an expert cannot book themselves", field="expertId")
    settings = load_settings(conn, expert_id, asked_by=user_id)
    if for_write and settings.has_booking_limits:
        settings = lock_for_limits(conn, settings)
    engine.validate_duration(settings, duration)
    end = start + timedelta(minutes=duration)
    exceptions, busy = load_context(conn, settings, start, end)
    counts = load_counts_around(conn, settings, start) if settings.has_booking_limits else None
    engine.check_bookable(settings, exceptions, busy, start, duration, now, counts)
    return settings


def precheck_booking(
    store: Store,
    external_check: ExternalCheck,
    *,
    user_id: str,
    expert_id: str,
    start: datetime,
    duration: int,
    now: datetime,
) -> None:
    """Validate locally in a read, then ask ``external_check`` about the blocked range.

    Runs before the caller opens its write transaction, so the (network) check never holds
    the write lock: on SQLite ``BEGIN IMMEDIATE`` would serialise every booking behind it,
    and a token refresh saved by the check needs a write of its own. The write transaction
    validates locally again; that re-check, the exclusion constraint (PostgreSQL) and the
    serialised writes (SQLite) stay the guarantee against double booking. A local error is
    raised before the external check is made. The range asked about is the one the buffer
    blocks, ``[start - buffer, end + buffer)``, as for busy blocks (docs/domain.md#conflicts-and-buffers).
    """
    with store.read() as conn:
        settings = _validate(conn, user_id, expert_id, start, duration, now)
    pad = timedelta(minutes=settings.buffer)
    end = start + timedelta(minutes=duration)
    if external_check(expert_id, start - pad, end + pad):
        log.info("booking refused: busy in an external calendar", extra={"expert_id": expert_id})
        raise SlotUnavailable("the time conflicts with busy time in the expert's calendar")


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
    which turns a lost race into ``slot_unavailable``. An external (calendar) check is not
    made here, inside the transaction: callers run :func:`precheck_booking` first.
    """
    settings = _validate(conn, user_id, expert_id, start, duration, now, for_write=True)
    price = engine.price_cents(settings.hourly_rate_cents, duration)
    # Nothing to pay for a free session: the hold applies to a price (docs/lifecycle.md#payment-hold).
    on_hold = settings.payment_required and price > 0
    confirmed = (force_confirmed or settings.auto_confirm) and not on_hold
    booking = Booking(
        id=new_id(),
        expert_id=expert_id,
        user_id=user_id,
        start=start,
        duration=duration,
        type=booking_type,
        status=BookingStatus.CONFIRMED if confirmed else BookingStatus.PENDING,
        price_cents=price,
        currency=settings.currency,
        buffer=settings.buffer,
        created_at=now,
        topic=topic,
        notes=notes,
        confirmed_at=now if confirmed else None,
        request_id=request_id,
        payment_status=PaymentStatus.AWAITING_PAYMENT if on_hold else PaymentStatus.NOT_REQUIRED,
        payment_due_at=policies.payment_due_at(now, start, settings.payment_hold_minutes) if on_hold else None,
    )
    booking.record("booking.created")
    if confirmed:
        booking.record("booking.confirmed")
    user_rows.ensure_user(conn, user_id, now)
    booking_rows.insert_booking(conn, booking, now)
    outbox_rows.add_events(conn, booking.events, now)
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
    *,
    external_check: ExternalCheck | None = None,
) -> Booking:
    """Create a booking (docs/lifecycle.md#create). With ``external_check``, the slot is also checked against
    the expert's external calendars after the local checks pass and before the write; busy
    there is ``slot_unavailable`` and nothing is written."""
    kind = parse_type(booking_type)
    topic = optional_text(topic, "topic", MAX_TOPIC)
    notes = optional_text(notes, "notes", MAX_NOTES)
    start = to_utc(start)
    moment = now_or(now)
    if external_check is not None:
        precheck_booking(
            store, external_check, user_id=user_id, expert_id=expert_id, start=start, duration=duration, now=moment
        )
    return store.transact(lambda conn: place_booking(
        conn, user_id=user_id, expert_id=expert_id, start=start, duration=duration,
        booking_type=kind, topic=topic, notes=notes, now=moment,
    ))


def get_booking(store: Store, actor: str, booking_id: str) -> Booking:
    with store.read() as conn:
        booking = booking_rows.get_booking(conn, booking_id)
    role_of(booking, actor)
    assert booking is not None
    return booking


def get_booking_for_key(store: Store, key: ServiceKey, booking_id: str) -> Booking:
    """A back end's read of one booking by id (scope ``bookings:read``): any booking, as it cannot list them."""
    require_scope(key, Scope.BOOKINGS_READ, "read bookings")
    with store.read() as conn:
        booking = booking_rows.get_booking(conn, booking_id)
    if booking is None:
        raise NotFound("booking not found")
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
    parties = party_filter(actor, as_role)
    check_statuses(statuses, (s.value for s in BookingStatus))
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    with store.read() as conn:
        items = booking_rows.list_bookings(
            conn,
            **parties,
            statuses=statuses,
            start_from=to_utc(start_from) if start_from else None,
            start_to=to_utc(start_to) if start_to else None,
            after=after,
            limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    return items, encode_cursor(items[-1].start, items[-1].id) if more else None


def _change(store: Store, actor: str, booking_id: str, action: str, now: datetime | None, apply,  # type: ignore[no-untyped-def]
            expected_version: int | None = None) -> Booking:
    """Load the booking under its row lock, apply the change, save it with its events.

    ``expected_version``: the change is for the booking as the caller saw it (a page's form);
    checked under the lock, so a change that landed since is ``precondition_failed``, never
    overwritten by what the caller did not see.
    """
    moment = now_or(now)

    def work(conn: Connection) -> Booking:
        booking = booking_rows.get_booking(conn, booking_id, for_update=True)
        role = role_of(booking, actor)
        assert booking is not None
        previous = booking.version
        if expected_version is not None and expected_version != previous:
            raise PreconditionFailed(f"the booking changed since version {expected_version}; reload it")
        apply(conn, booking, role, moment)
        booking_rows.update_booking(conn, booking, previous, moment)
        outbox_rows.add_events(conn, booking.events, moment)
        return booking

    booking = store.transact(work)  # re-read and re-applied if the database aborted it (a deadlock)
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
    store: Store, actor: str, booking_id: str, reason: str | None, now: datetime | None = None, *,
    expected_version: int | None = None,
) -> Booking:
    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        settings = load_settings(conn, booking.expert_id)
        lifecycle.cancel(booking, role, reason, moment, cutoff_minutes=settings.change_cutoff_minutes)

    return _change(store, actor, booking_id, "cancelled", now, apply, expected_version)


def cancellation_preview(
    store: Store, actor: str, booking_id: str, now: datetime | None = None
) -> tuple[Booking, int]:
    """The booking and the refund cancelling it now would give ``actor`` (the cancel page shows it
    before the user confirms); the cancel itself applies the same ``lifecycle.refund_due``."""
    booking = get_booking(store, actor, booking_id)
    role = role_of(booking, actor)
    return booking, lifecycle.refund_due(booking, role, now_or(now))


def reschedule_booking(
    store: Store, actor: str, booking_id: str, new_start: datetime, now: datetime | None = None
) -> Booking:
    new_start = to_utc(new_start)

    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        settings = load_settings(conn, booking.expert_id)
        cutoff, most = settings.change_cutoff_minutes, settings.max_reschedules
        lifecycle.ensure_reschedulable(booking, moment, role, cutoff_minutes=cutoff, max_reschedules=most)
        if settings.has_booking_limits:
            settings = lock_for_limits(conn, settings)
        end = new_start + timedelta(minutes=booking.duration)
        exceptions, busy = load_context(conn, settings, new_start, end, exclude_booking=booking.id)
        # Same duration as booked, even if the expert's limits changed since (docs/lifecycle.md#reschedule).
        limits = replace(
            settings,
            min_duration=min(settings.min_duration, booking.duration),
            max_duration=max(settings.max_duration, booking.duration),
        )
        counts = (load_counts_around(conn, settings, new_start, exclude_booking=booking.id)
                  if settings.has_booking_limits else None)
        engine.check_bookable(limits, exceptions, busy, new_start, booking.duration, moment, counts)
        booking.buffer = settings.buffer
        lifecycle.reschedule(booking, new_start, role, settings.auto_confirm, moment, cutoff_minutes=cutoff,
                             max_reschedules=most)

    return _change(store, actor, booking_id, "rescheduled", now, apply)


def record_payment(
    store: Store, key: ServiceKey | None, booking_id: str, payment_id: str, amount_cents: int, currency: str,
    now: datetime | None = None,
) -> Booking:
    """The payment back end reports a booking paid (scope ``payments``; docs/lifecycle.md#payment-hold).

    The same ``payment_id`` again answers the booking as it is, writing nothing; a booking of
    an expert with ``autoConfirm``, or of an accepted request, is confirmed by its payment."""
    if key is None:
        raise Forbidden("payments are recorded by the payment back end's service key, not by a user")
    require_scope(key, Scope.PAYMENTS, "record payments")
    moment = now_or(now)

    def work(conn: Connection) -> tuple[Booking, bool]:
        booking = booking_rows.get_booking(conn, booking_id, for_update=True)
        if booking is None:
            raise NotFound("booking not found")
        settings = load_settings(conn, booking.expert_id)
        previous = booking.version
        changed = lifecycle.record_payment(
            booking, payment_id, amount_cents, currency, moment,
            confirm_on_payment=settings.auto_confirm or booking.request_id is not None,
        )
        if changed:
            booking_rows.update_booking(conn, booking, previous, moment)
            outbox_rows.add_events(conn, booking.events, moment)
        return booking, changed

    booking, changed = store.transact(work)
    log.info("payment recorded" if changed else "payment already recorded",
             extra={"booking_id": booking.id, "service_key": key.name, "status": str(booking.status)})
    return booking


def mark_no_show(store: Store, actor: str, booking_id: str, now: datetime | None = None) -> Booking:
    def apply(conn: Connection, booking: Booking, role: CancelledBy, moment: datetime) -> None:
        require_expert(role, "mark a no-show")
        lifecycle.no_show(booking, moment)

    return _change(store, actor, booking_id, "marked no-show", now, apply)


def _system_change(
    store: Store, booking_id: str, due: Callable[[Booking, datetime], bool],
    apply: Callable[[Booking, datetime], None], now: datetime | None,
) -> Booking | None:
    """A worker's change to one booking: re-read under lock, apply only if still due, else no-op.

    Re-checking inside the transaction keeps duplicate task deliveries and racing workers harmless.
    """
    moment = now_or(now)
    with store.write() as conn:
        booking = booking_rows.get_booking(conn, booking_id, for_update=True)
        if booking is None or not due(booking, moment):
            return None
        previous = booking.version
        apply(booking, moment)
        booking_rows.update_booking(conn, booking, previous, moment)
        outbox_rows.add_events(conn, booking.events, moment)
        return booking


def complete_booking(store: Store, booking_id: str, now: datetime | None = None) -> Booking | None:
    """Worker use case: complete one booking if it is still confirmed and over; else no-op."""
    return _system_change(
        store, booking_id, lambda b, t: b.status == BookingStatus.CONFIRMED and b.end <= t, lifecycle.complete, now
    )


def expire_unconfirmed_booking(store: Store, booking_id: str, now: datetime | None = None) -> Booking | None:
    """Worker use case: cancel a pending booking whose start has passed; else no-op."""
    return _system_change(
        store, booking_id, lambda b, t: b.status == BookingStatus.PENDING and b.start <= t,
        lifecycle.expire_unconfirmed, now,
    )


def expire_payment_hold(store: Store, booking_id: str, now: datetime | None = None) -> Booking | None:
    """Worker use case: release a booking whose payment hold ended unpaid; else no-op."""
    return _system_change(
        store, booking_id,
        lambda b, t: (b.status == BookingStatus.PENDING and b.awaiting_payment
                      and b.payment_due_at is not None and b.payment_due_at <= t),
        lifecycle.expire_payment, now,
    )


def expire_payment_holds(store: Store, now: datetime | None = None, batch: int = 500) -> int:
    moment = now_or(now)
    with store.read() as conn:
        ids = booking_rows.due_payment_holds(conn, moment, limit=batch)
    expired = [b for b in (expire_payment_hold(store, booking_id, moment) for booking_id in ids) if b is not None]
    for booking in expired:
        log.info("payment hold expired", extra={"booking_id": booking.id, "expert_id": booking.expert_id})
    return len(expired)


def complete_due_bookings(store: Store, now: datetime | None = None, batch: int = 500) -> int:
    moment = now_or(now)
    with store.read() as conn:
        ids = booking_rows.due_bookings(conn, BookingStatus.CONFIRMED, end_before=moment, limit=batch)
    return sum(1 for booking_id in ids if complete_booking(store, booking_id, moment) is not None)


def expire_unconfirmed_bookings(store: Store, now: datetime | None = None, batch: int = 500) -> int:
    moment = now_or(now)
    with store.read() as conn:
        ids = booking_rows.due_bookings(conn, BookingStatus.PENDING, start_before=moment, limit=batch)
    return sum(1 for booking_id in ids if expire_unconfirmed_booking(store, booking_id, moment) is not None)


def audit_conflicts(store: Store) -> list[tuple[str, str]]:
    """Nightly integrity audit: any pair of active bookings of one expert that conflict."""
    with store.read() as conn:
        pairs = booking_rows.conflicting_pairs(conn)
    for a, b in pairs:
        log.error("conflicting bookings found", extra={"booking_id": a, "other_booking_id": b})
    return pairs
