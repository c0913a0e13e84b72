"""Seed experts and their calendar connections straight into the store, as connecting would leave them.

Thousands of OAuth dances would measure the fakes' consent screens, not calbook; instead each
connection row is written with calbook's own repositories (``users.ensure_user``,
``connections.insert_connection``) in batches, with credentials encrypted by calbook's
``encrypt_json`` and the config an API connect stores (the account's calendars, the busy list,
the destination). ``sync_requested_at`` is set, as every connect sets it. A few experts are
"bookable": they publish a schedule and get bookings and slot reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from bench.fakes.caldav import FakeCalDAV
from bench.fakes.ics import FakeFeeds
from bench.fakes.providers import GoogleAccounts, MicrosoftAccounts
from booking_engine.clock import utcnow
from booking_engine.model import new_id
from booking_engine.services import availability, users, webhook_subscriptions
from booking_engine.store.db import Store
from booking_engine.store.repositories import connections as connection_rows
from booking_engine.store.repositories import users as user_rows
from connectors.secrets import encrypt_json

#: Out of every ten experts: five on Google, two on Microsoft 365, two on CalDAV, one on an ICS feed.
MIX = ("google",) * 5 + ("microsoft",) * 2 + ("caldav",) * 2 + ("ics",)
#: Busy calendars per connection, by block of ten experts (so every provider gets each count):
#: six in ten have one, three have two, one has three, 1.5 on average. A feed is one calendar.
CALENDARS = (1, 2, 1, 1, 3, 1, 2, 1, 1, 2)
BATCH = 500


@dataclass(frozen=True, slots=True)
class Expert:
    id: str
    provider: str
    account: str
    """the account's name in its fake (an e-mail for Google and Microsoft, ``u<n>`` for CalDAV and feeds)"""
    connection_id: str
    bookable: bool
    calendars: tuple[str, ...] = ()
    """its calendars' ids in the fakes (for a feed, its account), what a change names"""


@dataclass
class Fakes:
    google: GoogleAccounts
    microsoft: MicrosoftAccounts
    caldav: FakeCalDAV
    feeds: FakeFeeds


def schedule_body() -> dict[str, object]:
    """Open 09:00-21:00 UTC every day, hour slots, no buffer: bookings never touch the fakes' busy hours."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return {"timezone": "UTC",
            "weeklySchedule": {d: {"isAvailable": True, "windows": [{"start": "09:00", "end": "21:00"}]} for d in days},
            "bufferBetweenBookingsMinutes": 0, "advanceBookingDays": 30, "slotIncrementMinutes": 60,
            "hourlyRateCents": 6000}


def calendars_of(index: int, one_calendar: bool = False) -> int:
    return 1 if one_calendar else CALENDARS[(index // len(MIX)) % len(CALENDARS)]


def _config(ids: list[str]) -> dict[str, object]:
    """What a connect stores: the account's calendars, all of them busy, the first the destination."""
    calendars = [{"id": c, "name": "Work" if n == 0 else f"Team {n}", "writable": True} for n, c in enumerate(ids)]
    return {"calendars": calendars, "busyCalendars": list(ids), "destinationCalendar": ids[0]}


def _row(index: int, fakes: Fakes, key: str, one_calendar: bool,
         ) -> tuple[str, str, str, dict[str, object], list[str]]:
    """(provider, account, encrypted credentials, config, calendar ids in the fake) of expert ``index``;
    a feed's account is its URL."""
    provider = MIX[index % len(MIX)]
    count = calendars_of(index, one_calendar)
    email = f"expert{index}@bench.test"
    if provider == "google":
        ids, credentials = fakes.google.add_account(email, count)
        return provider, email, encrypt_json(credentials, key), _config(ids), ids
    if provider == "microsoft":
        ids, credentials = fakes.microsoft.add_account(email, count)
        return provider, email, encrypt_json(credentials, key), _config(ids), ids
    account = f"u{index}"
    if provider == "caldav":
        ids = fakes.caldav.add_account(account, count)
        return provider, account, encrypt_json({"username": account, "password": "pw"}, key), {
            "url": f"{fakes.caldav.base}/dav/{account}/", **_config(ids)}, ids
    url = fakes.feeds.add_feed(account)
    return provider, url, encrypt_json({"url": url}, key), {
        "url": url, "busyCalendars": [], "destinationCalendar": None}, [account]


def seed(store: Store, fakes: Fakes, count: int, bookable_share: float, key: str,
         now: datetime | None = None, one_calendar: bool = False) -> list[Expert]:
    moment = now or utcnow()
    experts: list[Expert] = []
    every = max(1, round(1 / bookable_share)) if bookable_share > 0 else 0
    for start in range(0, count, BATCH):
        with store.write() as conn:
            for index in range(start, min(count, start + BATCH)):
                expert_id = f"bx{index:07d}"
                provider, account, credentials, config, ids = _row(index, fakes, key, one_calendar)
                user_rows.ensure_user(conn, expert_id, moment)
                connection_id = new_id()
                connection_rows.insert_connection(
                    conn, id=connection_id, expert_id=expert_id, provider=provider, status="active",
                    account=account, credentials=credentials, config=config, created_at=moment, updated_at=moment,
                    sync_requested_at=moment, next_sync_at=moment)  # due at once, as a connect makes it
                # Every `every`-th block of ten experts is bookable: each provider is represented.
                bookable = bool(every) and (index // len(MIX)) % every == 0
                name = account if provider in ("google", "microsoft") else f"u{index}"
                experts.append(Expert(expert_id, provider, name, connection_id, bookable, tuple(ids)))
    return experts


def publish(store: Store, experts: list[Expert], users_count: int, hook_url: str, key: str) -> list[str]:
    """The bookable experts publish a schedule and have e-mail addresses; the bookers too, each with a
    webhook subscription for ``booking.confirmed``. Returns the booker ids."""
    for expert in experts:
        if expert.bookable:
            availability.set_availability(store, expert.id, expert.id, schedule_body(), 0)
            users.update_profile(store, expert.id, email=f"{expert.id}@bench.test")
    bookers = [f"booker{n:04d}" for n in range(users_count)]
    for booker in bookers:
        users.update_profile(store, booker, email=f"{booker}@bench.test")
        webhook_subscriptions.create_subscription(
            store, booker, hook_url, ["booking.confirmed"], lambda secret: encrypt_json({"secret": secret}, key))
    return bookers


def shuffled(experts: list[Expert], seed_value: int = 15) -> list[Expert]:
    out = list(experts)
    random.Random(seed_value).shuffle(out)
    return out
