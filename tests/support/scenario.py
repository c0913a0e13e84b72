"""Builders for worker tests: parties with e-mail addresses, bookings, webhook subscriptions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from booking_engine.model import Booking
from booking_engine.services import bookings, users, webhook_subscriptions
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from config.settings import Settings
from connectors.secrets import encrypt_json
from tests.support.factories import NOW, publish

USER = "user-1"
EXPERT = "expert-1"
USER_EMAIL = "ulla@example.org"
EXPERT_EMAIL = "eddie@example.org"


def parties(store: Store, now: datetime = NOW, **settings: Any) -> None:
    publish(store, EXPERT, now=now, **settings)
    users.update_profile(store, USER, email=USER_EMAIL, display_name="Ulla User", timezone="Europe/Berlin", now=now)
    users.update_profile(store, EXPERT, email=EXPERT_EMAIL, display_name="Eddie Expert", timezone="UTC", now=now)


def book(
    store: Store, start: datetime, now: datetime = NOW, confirm: bool = False, topic: str = "Tax advice"
) -> Booking:
    booking = bookings.create_booking(store, USER, EXPERT, start, 60, "video_call", topic=topic, now=now)
    if confirm:
        booking = bookings.confirm_booking(store, EXPERT, booking.id, now=now)
    return booking


def subscribe(store: Store, owner: str, url: str, events: list[str] | None = None) -> str:
    """A subscription whose secret the test knows; returns the secret."""
    key = Settings().resolved_encryption_key()
    created = webhook_subscriptions.create_subscription(
        store, owner, url, events or ["*"], encrypt=lambda s: encrypt_json({"secret": s}, key)
    )
    return str(created["secret"])


def next_slot(day_offset: int, hour: int, now: datetime = NOW) -> datetime:
    base = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=day_offset)
    return base.replace(hour=hour)


def outbox_types(store: Store) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.event_type).order_by(outbox.c.id))]


def redispatch_everything(store: Store) -> None:
    """Simulate a redelivery: every event pending again, as if the dispatches never happened."""
    from booking_engine.store.worker_tables import outbox_handler_runs

    with store.write() as conn:
        conn.execute(update(outbox).values(dispatched_at=None, claimed_until=None))
        conn.execute(outbox_handler_runs.delete())
