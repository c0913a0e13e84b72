"""Booking request use cases (docs/lifecycle.md#booking-requests): propose, respond, withdraw, expire."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from booking_engine import availability as engine
from booking_engine import booking_requests as domain
from booking_engine.errors import PreconditionFailed, ValidationError
from booking_engine.model import BookingRequest, RequestStatus
from booking_engine.services._common import now_or, require_expert, require_user, role_of
from booking_engine.services.availability import load_settings
from booking_engine.services.bookings import ExternalCheck, parse_type, place_booking, precheck_booking
from booking_engine.services.pagination import (
    check_limit,
    check_statuses,
    decode_cursor,
    encode_cursor,
    party_filter,
)
from booking_engine.store.db import Store
from booking_engine.store.repositories import booking_requests as request_rows
from booking_engine.store.repositories import outbox as outbox_rows
from booking_engine.store.repositories import users as user_rows
from booking_engine.timeutil import to_utc

log = logging.getLogger(__name__)


def create_request(
    store: Store,
    user_id: str,
    expert_id: str,
    duration: int,
    booking_type: str,
    starts: list[datetime],
    message: str | None = None,
    now: datetime | None = None,
) -> BookingRequest:
    if user_id == expert_id:
        raise ValidationError("an expert cannot send themselves a request", field="expertId")
    kind = parse_type(booking_type)
    if not isinstance(starts, list):
        raise ValidationError("proposedSlots must be a list", field="proposedSlots")
    utc_starts = [to_utc(s) for s in starts]
    moment = now_or(now)
    with store.write() as conn:
        engine.validate_duration(load_settings(conn, expert_id, asked_by=user_id), duration)
        request = domain.new_request(expert_id, user_id, duration, kind, utc_starts, message, moment)
        user_rows.ensure_user(conn, user_id, moment)
        user_rows.ensure_user(conn, expert_id, moment)
        request_rows.insert_request(conn, request)
        outbox_rows.add_events(conn, request.events, moment)
    log.info("booking request created", extra={"request_id": request.id, "expert_id": expert_id})
    return request


def get_request(store: Store, actor: str, request_id: str) -> BookingRequest:
    with store.read() as conn:
        request = request_rows.get_request(conn, request_id)
    role_of(request, actor, "request")
    assert request is not None
    return request


def list_requests(
    store: Store, actor: str, as_role: str = "user", statuses: list[str] | None = None,
    cursor: str | None = None, limit: int = 50,
) -> tuple[list[BookingRequest], str | None]:
    parties = party_filter(actor, as_role)
    check_statuses(statuses, (s.value for s in RequestStatus))
    limit = check_limit(limit)
    with store.read() as conn:
        items = request_rows.list_requests(
            conn,
            **parties,
            statuses=statuses,
            after=decode_cursor(cursor),
            limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    return items, encode_cursor(items[-1].created_at, items[-1].id) if more else None


def respond_to_request(
    store: Store,
    actor: str,
    request_id: str,
    accept: Any,
    slot_index: int | None = None,
    message: str | None = None,
    now: datetime | None = None,
    *,
    external_check: ExternalCheck | None = None,
) -> BookingRequest:
    """Accept one proposed slot (a confirmed booking, validated as in create) or reject.

    With ``external_check``, an acceptance also checks the slot against the expert's external
    calendars, as :func:`bookings.create_booking` does: after the local checks, before (and
    outside) the write transaction, which then checks everything again.
    """
    if not isinstance(accept, bool):
        raise ValidationError("accept must be true or false", field="accept")
    moment = now_or(now)
    if accept and external_check is not None:
        with store.read() as conn:
            request = request_rows.get_request(conn, request_id)
        require_expert(role_of(request, actor, "request"), "respond to a request")
        assert request is not None
        precheck_booking(
            store, external_check, user_id=request.user_id, expert_id=request.expert_id,
            start=domain.chosen_start(request, slot_index, moment), duration=request.duration, now=moment,
        )

    def work(conn: Connection) -> BookingRequest:
        request = request_rows.get_request(conn, request_id, for_update=True)
        require_expert(role_of(request, actor, "request"), "respond to a request")
        assert request is not None
        previous = request.version
        if accept:
            start = domain.chosen_start(request, slot_index, moment)
            booking = place_booking(
                conn, user_id=request.user_id, expert_id=request.expert_id, start=start,
                duration=request.duration, booking_type=request.type, topic=None, notes=request.message,
                now=moment, force_confirmed=True, request_id=request.id,
            )
            domain.accept(request, slot_index or 0, booking.id, message, moment)
        else:
            domain.reject(request, message, moment)
        request_rows.update_request(conn, request, previous)
        outbox_rows.add_events(conn, request.events, moment)
        return request

    return store.transact(work)


def withdraw_request(store: Store, actor: str, request_id: str, now: datetime | None = None, *,
                     expected_version: int | None = None) -> BookingRequest:
    """The user takes back a pending request; ``expected_version`` as for ``bookings.cancel_booking``."""
    moment = now_or(now)
    with store.write() as conn:
        request = request_rows.get_request(conn, request_id, for_update=True)
        require_user(role_of(request, actor, "request"), "withdraw a request")
        assert request is not None
        previous = request.version
        if expected_version is not None and expected_version != previous:
            raise PreconditionFailed(f"the request changed since version {expected_version}; reload it")
        domain.withdraw(request, moment)
        request_rows.update_request(conn, request, previous)
        outbox_rows.add_events(conn, request.events, moment)
    return request


def expire_request(store: Store, request_id: str, now: datetime | None = None) -> BookingRequest | None:
    moment = now_or(now)
    with store.write() as conn:
        request = request_rows.get_request(conn, request_id, for_update=True)
        if request is None or request.status != RequestStatus.PENDING or request.expires_at > moment:
            return None
        previous = request.version
        domain.expire(request, moment)
        request_rows.update_request(conn, request, previous)
        outbox_rows.add_events(conn, request.events, moment)
    return request


def expire_requests(store: Store, now: datetime | None = None, batch: int = 500) -> int:
    moment = now_or(now)
    with store.read() as conn:
        ids = request_rows.due_requests(conn, moment, limit=batch)
    return sum(1 for request_id in ids if expire_request(store, request_id, moment) is not None)
