"""Pending OAuth authorizations: the ``state`` handed to the browser, bound server-side to the expert.

Between ``POST /v1/calendar-connections/google/authorize`` and Google's redirect to the
callback, the server remembers which expert started the flow and the PKCE code verifier.
The callback arrives from the browser without calbook's bearer token, so the state row is
what says whose connection is being made; that is why it is:

* bound to the expert here, never trusted from the query string alone;
* stored as a SHA-256 hash (a leaked row cannot be replayed as a callback) with the secret
  part (the PKCE verifier, the redirect URI) encrypted by the caller, who owns the key;
* short-lived (``STATE_TTL``) and single use: :func:`consume_state` deletes the row in the
  same transaction that reads it, so a replayed callback finds nothing.

The domain imports no connector: the caller encrypts and decrypts ``secret``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from booking_engine.errors import BookingError, Forbidden
from booking_engine.services._common import now_or
from booking_engine.store.db import Store
from booking_engine.store.repositories import oauth_states as state_rows
from booking_engine.store.repositories import users as user_rows

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
"""Long enough to read a consent screen and log in, short enough that a stale link is useless."""
MAX_PENDING_PER_EXPERT = 20


class OAuthStateInvalid(BookingError):
    """The callback's ``state`` is unknown, expired, already used, or for another provider.

    A 400 problem (``validation_error``): the expert simply starts connecting again.
    """

    code = "validation_error"
    status = 400
    title = "The authorization link is not valid"


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    expert_id: str
    provider: str
    secret: str
    """As stored: encrypted by the caller."""
    created_at: datetime


def _key(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def create_state(
    store: Store,
    actor: str,
    provider: str,
    state: str,
    secret: str,
    *,
    ttl: timedelta = STATE_TTL,
    now: datetime | None = None,
) -> None:
    """Remember a new authorization of ``actor``; expired rows (anyone's) are swept on the way."""
    if not actor:
        raise Forbidden("sign in to connect a calendar")
    moment = now_or(now)
    with store.write() as conn:
        user_rows.ensure_user(conn, actor, moment)
        state_rows.delete_expired(conn, moment)
        pending = state_rows.keys_of_expert_newest_first(conn, actor)
        # An expert clicking "connect" over and over keeps only the newest few links alive.
        stale = pending[MAX_PENDING_PER_EXPERT - 1 :]
        if stale:
            state_rows.delete_keys(conn, stale)
        state_rows.insert_state(
            conn, state=_key(state), expert_id=actor, provider=provider, secret=secret,
            created_at=moment, expires_at=moment + ttl,
        )
    log.info("oauth authorization started", extra={"expert_id": actor, "provider": provider})


def consume_state(store: Store, provider: str, state: str | None, now: datetime | None = None) -> PendingAuthorization:
    """Take the pending authorization for ``state`` (deleting it) or raise ``OAuthStateInvalid``."""
    if not state or len(state) > 500:
        raise OAuthStateInvalid("the state parameter is missing or malformed", field="state")
    moment = now_or(now)
    key = _key(state)
    with store.write() as conn:
        row = state_rows.take(conn, key)
    if row is None:
        raise OAuthStateInvalid("unknown or already used authorization; start connecting again", field="state")
    if row["provider"] != provider:
        raise OAuthStateInvalid("the authorization was started for another provider", field="state")
    if row["expires_at"] <= moment:
        raise OAuthStateInvalid("the authorization has expired; start connecting again", field="state")
    return PendingAuthorization(
        expert_id=row["expert_id"], provider=row["provider"], secret=row["secret"], created_at=row["created_at"]
    )
