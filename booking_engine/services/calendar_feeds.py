"""A person's subscribable calendar feed (docs/api.md#calendar-feed): its secret URL, rotated on demand,
and the bookings it shows, as user and as expert.

The token is 256 random bits in the URL (calendar apps cannot send a bearer token), kept only as
its SHA-256, so a leaked database does not leak anyone's feed; asking for a new URL replaces it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from booking_engine.errors import NotFound
from booking_engine.model import Booking
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import bookings as booking_rows
from booking_engine.store.repositories import calendar_feeds as feeds
from booking_engine.store.repositories import users as user_rows

log = logging.getLogger(__name__)

RECENT = timedelta(days=30)
AHEAD = timedelta(days=366)
MAX_EVENTS = 1000
_TOKEN_LENGTH = 43


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def rotate_feed(store: Store, user_id: str, now: datetime | None = None) -> str:
    """A new feed token for the user; the previous URL answers 404 from the commit on."""
    moment = now_or(now)
    token = secrets.token_urlsafe(32)
    with store.write() as conn:
        user_rows.ensure_user(conn, user_id, moment)
        feeds.replace_token(conn, user_id, _hash(token), moment)
    log.info("calendar feed token issued", extra={"user_id": user_id})
    return token


def revoke_feed(store: Store, user_id: str) -> None:
    with store.write() as conn:
        if not feeds.delete_token(conn, user_id):
            raise NotFound("no calendar feed")
    log.info("calendar feed revoked", extra={"user_id": user_id})


def feed_bookings(store: Store, token: str, now: datetime | None = None) -> tuple[str, list[Booking]]:
    """The owner of the token and their bookings from 30 days ago to a year ahead (at most 1000), by start."""
    if len(token) != _TOKEN_LENGTH:
        raise NotFound("no such calendar feed")
    moment = now_or(now)
    with store.read() as conn:
        user_id = feeds.user_for(conn, _hash(token))
        if user_id is None:
            raise NotFound("no such calendar feed")
        found = booking_rows.party_bookings(conn, user_id, moment - RECENT, moment + AHEAD, MAX_EVENTS)
    return user_id, found
