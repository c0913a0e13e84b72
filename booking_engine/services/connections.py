"""Calendar connections of an expert: every use case (docs/sync.md#connections).

Connect (CalDAV, ICS feed, the Google OAuth callback), reconnect, choose calendars, request a
sync, disconnect, and the status, lease and credential changes the worker records. The rules
live in the aggregate (``booking_engine.connections``); the outside is reached through the two
ports of ``booking_engine.ports``, handed in by the caller: ``CalendarAccounts`` verifies and
lists accounts at their providers, ``TaskQueue`` hands work to the worker.

Credentials reach this module already encrypted (the accounts port owns the key), and never
leave it through ``as_dict``. The worker reads them back with ``load_for_sync``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from booking_engine.clock import utcnow
from booking_engine.connections import (
    MAX_CONNECTIONS,
    SYNCABLE,
    CalendarChoice,
    CalendarConnection,
    CalendarEntry,
    ConnectionStatus,
    Provider,
    VerifiedAccount,
    is_syncable,
    same_calendar,
)
from booking_engine.errors import (
    AuthorizationDeclined,
    AuthorizationFailed,
    CalendarUnreachable,
    Forbidden,
    NotFound,
    ValidationError,
)
from booking_engine.model import DomainEvent, new_id
from booking_engine.ports import CalendarAccounts, TaskQueue
from booking_engine.services import oauth_states
from booking_engine.services._common import now_or
from booking_engine.services.availability import get_availability
from booking_engine.store.db import Store
from booking_engine.store.repositories import calendar_sync as sync_rows
from booking_engine.store.repositories import connections as connection_rows
from booking_engine.store.repositories import outbox as outbox_rows
from booking_engine.store.repositories import users as user_rows
from booking_engine.sync_progress import progress_of
from booking_engine.sync_schedule import SyncSchedule

log = logging.getLogger(__name__)

PROVIDERS = tuple(str(p) for p in Provider)
STATUSES = tuple(str(s) for s in ConnectionStatus)


class _Unchanged:
    """The marker for "not given" where ``None`` is a value (a destination of none)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()


def from_row(row: Any, with_secret: bool = False) -> CalendarConnection:
    return CalendarConnection(
        id=row["id"],
        expert_id=row["expert_id"],
        provider=Provider(row["provider"]),
        status=ConnectionStatus(row["status"]),
        account=row["account"],
        config=dict(row["config"] or {}),
        last_synced_at=row["last_synced_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        credentials=row["credentials"] if with_secret else None,
        sync_progress=progress_of(row, utcnow()),
        sync_requested_at=row["sync_requested_at"],
        last_reconciled_at=row["last_reconciled_at"],
        next_sync_at=row["next_sync_at"],
        sync_failures=int(row["sync_failures"] or 0),
        sync_resume_from=row["sync_resume_from"],
    )


def _owned(row: Any, actor: str | None) -> Any:
    """The row, if it is a live connection of ``actor`` (any live one for ``actor=None``); else ``not_found``."""
    gone = row is None or row["status"] == ConnectionStatus.DISCONNECTED
    if gone or (actor is not None and row["expert_id"] != actor):
        raise NotFound("calendar connection not found")
    return row


def _timezone(store: Store, expert_id: str) -> str:
    return get_availability(store, expert_id).timezone


def _saver(store: Store, connection_id: str) -> Any:
    return lambda credentials: save_credentials(store, connection_id, credentials)


# -- connecting ---------------------------------------------------------------------------------


def _insert(
    conn: Connection, expert_id: str, provider: Provider, account: str | None, credentials: str | None,
    config: dict[str, Any], moment: datetime,
) -> str:
    user_rows.ensure_user(conn, expert_id, moment)
    if connection_rows.count_not_disconnected(conn, expert_id) >= MAX_CONNECTIONS:
        raise ValidationError(f"at most {MAX_CONNECTIONS} calendar connections per expert")
    connection_id = new_id()
    connection_rows.insert_connection(
        conn, id=connection_id, expert_id=expert_id, provider=str(provider), status=str(ConnectionStatus.ACTIVE),
        account=account, credentials=credentials, config=config, created_at=moment, updated_at=moment,
        sync_requested_at=moment, next_sync_at=moment,
    )
    return connection_id


def _config(
    provider: Provider, choice: CalendarChoice, calendars: Sequence[CalendarEntry], extra: dict[str, Any]
) -> dict[str, Any]:
    """A new connection's config: its choice and, but for a feed (one calendar), the account's calendars."""
    config = {**extra, "busyCalendars": list(choice.busy), "destinationCalendar": choice.destination}
    if provider != Provider.ICS:
        config["calendars"] = [c.as_dict() for c in calendars]
    return config


def create_connection(
    store: Store,
    actor: str,
    expert_id: str,
    provider: str,
    *,
    account: str | None,
    credentials: str | None,
    busy_calendars: list[str],
    destination_calendar: str | None,
    extra_config: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> CalendarConnection:
    """Store a verified connection as it is (the caller has listed its calendars already)."""
    if actor != expert_id:
        raise Forbidden("only the expert connects their calendars")
    if provider not in PROVIDERS:
        raise ValidationError(f"provider must be one of {', '.join(PROVIDERS)}", field="provider")
    moment = now_or(now)
    config = {**(extra_config or {}), "busyCalendars": busy_calendars, "destinationCalendar": destination_calendar}
    with store.write() as conn:
        connection_id = _insert(conn, expert_id, Provider(provider), account, credentials, config, moment)
        row = connection_rows.get(conn, connection_id)
    log.info("calendar connection created", extra={"connection_id": connection_id, "provider": provider})
    return from_row(row)


def _store_verified(
    store: Store, actor: str, provider: Provider, verified: VerifiedAccount, choice: CalendarChoice,
) -> CalendarConnection:
    moment = utcnow()
    with store.write() as conn:
        connection_id = _insert(conn, actor, provider, verified.account, verified.credentials,
                                _config(provider, choice, verified.calendars, verified.config), moment)
        row = connection_rows.get(conn, connection_id)
    log.info("calendar connection created", extra={
        "connection_id": connection_id, "provider": str(provider), "calendars": len(verified.calendars)})
    return from_row(row)


def connect_caldav(
    store: Store, accounts: CalendarAccounts, tasks: TaskQueue, actor: str, *, url: str, username: str,
    password: str, busy: Sequence[str] | None = None, destination: str | None = None,
) -> CalendarConnection:
    """Discover the account's calendars with the given credentials, store the connection, queue its sync.

    ``busy`` defaults to every calendar, ``destination`` to the first writable one.
    """
    verified = accounts.verify_caldav(url, username, password, _timezone(store, actor))
    choice = CalendarChoice.picked(verified.calendars, busy or None, destination, destination_given=bool(destination))
    created = _store_verified(store, actor, Provider.CALDAV, verified, choice)
    tasks.sync(created.id)
    return created


def connect_feed(
    store: Store, accounts: CalendarAccounts, tasks: TaskQueue, actor: str, *, url: str
) -> CalendarConnection:
    """Fetch and parse the feed once, store it (its URL encrypted), queue its sync."""
    verified = accounts.verify_feed(url, _timezone(store, actor))
    created = _store_verified(store, actor, Provider.ICS, verified, CalendarChoice((), None))
    tasks.sync(created.id)
    return created


def start_google(store: Store, accounts: CalendarAccounts, actor: str, login_hint: str | None = None) -> str:
    """The consent URL that starts connecting Google; its state is remembered for the callback."""
    if not actor:
        raise Forbidden("sign in to connect a calendar")
    pending = accounts.start_google(login_hint)
    oauth_states.create_state(store, actor, str(Provider.GOOGLE), pending.state, pending.secret)
    return pending.url


def connect_google(
    store: Store, accounts: CalendarAccounts, tasks: TaskQueue, *, code: str | None, state: str | None,
    error: str | None = None,
) -> CalendarConnection:
    """The OAuth callback: spend the state, exchange the code, store or refresh the connection, queue
    its first sync and watch.

    Reconnecting the same Google account (after ``reauth_required``) refreshes the existing
    connection, in one transaction (credentials, calendar list, status, sync request), instead of
    adding a second one with the same calendars.
    """
    # The state is spent whatever happens next: a code is single use, and so is its state.
    pending = oauth_states.consume_state(store, str(Provider.GOOGLE), state)
    if error:
        log.info("google authorization declined", extra={"expert_id": pending.expert_id, "error": error[:100]})
        raise AuthorizationDeclined(f"Google answered {error[:100]!r}; start connecting again")
    if not code:
        raise AuthorizationFailed("the code parameter is missing", field="code", message="required",
                                  error_type="missing")
    verified = accounts.complete_google(code, state or "", pending.secret)
    connection = _store_google(store, pending.expert_id, verified)
    tasks.sync_changed(connection.id)
    tasks.watch(connection.id)
    return connection


def _store_google(store: Store, expert_id: str, verified: VerifiedAccount) -> CalendarConnection:
    return _store_oauth(store, Provider.GOOGLE, expert_id, verified, primary=verified.account)


def _store_oauth(
    store: Store, provider: Provider, expert_id: str, verified: VerifiedAccount, primary: str | None,
) -> CalendarConnection:
    """Store an OAuth connection, or refresh the expert's existing one of the same account in one
    transaction (credentials, calendar list, status, sync request)."""
    moment = utcnow()
    known = [c.as_dict() for c in verified.calendars]
    with store.write() as conn:
        existing = next(
            (r for r in connection_rows.list_not_disconnected(conn, expert_id)
             if r["provider"] == provider and (r["account"] or "").lower() == verified.account.lower()),
            None,
        )
        row = connection_rows.get(conn, existing["id"], for_update=True) if existing is not None else None
        if row is not None:
            connection_id = row["id"]
            connection_rows.update_connection(
                conn, connection_id, credentials=verified.credentials,
                config={**dict(row["config"] or {}), "calendars": known},
                status=str(ConnectionStatus.ACTIVE), last_error=None, last_synced_at=moment, updated_at=moment,
                sync_requested_at=row["sync_requested_at"] or moment, next_sync_at=moment, sync_failures=0,
            )
            log.info("%s connection re-authorised", provider, extra={"connection_id": connection_id,
                                                                     "was": row["status"]})
        else:
            choice = CalendarChoice.default(verified.calendars, primary=primary)
            connection_id = _insert(conn, expert_id, provider, verified.account, verified.credentials,
                                    _config(provider, choice, verified.calendars, {}), moment)
            log.info("%s connection created", provider, extra={"connection_id": connection_id,
                                                               "calendars": len(choice.busy)})
        row = connection_rows.get(conn, connection_id)
    return from_row(row)


def start_microsoft(store: Store, accounts: CalendarAccounts, actor: str, login_hint: str | None = None) -> str:
    """The Microsoft consent URL; its state is bound to the expert server-side, as for Google."""
    if not actor:
        raise Forbidden("sign in to connect a calendar")
    pending = accounts.start_microsoft(login_hint)
    oauth_states.create_state(store, actor, str(Provider.MICROSOFT), pending.state, pending.secret)
    return pending.url


def connect_microsoft(
    store: Store, accounts: CalendarAccounts, tasks: TaskQueue, *, code: str | None, state: str | None,
    error: str | None = None,
) -> CalendarConnection:
    """The Microsoft OAuth callback, as ``connect_google``: spend the state, exchange the code, store or
    refresh the connection (the default calendar busy and, if writable, the destination), queue the
    first sync and the subscriptions."""
    pending = oauth_states.consume_state(store, str(Provider.MICROSOFT), state)
    if error:
        log.info("microsoft authorization declined", extra={"expert_id": pending.expert_id, "error": error[:100]})
        raise AuthorizationDeclined(f"Microsoft answered {error[:100]!r}; start connecting again")
    if not code:
        raise AuthorizationFailed("the code parameter is missing", field="code", message="required",
                                  error_type="missing")
    verified = accounts.complete_microsoft(code, state or "", pending.secret)
    primary = verified.calendars[0].id if verified.calendars else None  # the default calendar comes first
    connection = _store_oauth(store, Provider.MICROSOFT, pending.expert_id, verified, primary=primary)
    tasks.sync_changed(connection.id)
    tasks.watch(connection.id)
    return connection


# -- reading ------------------------------------------------------------------------------------


def list_connections(store: Store, actor: str) -> list[CalendarConnection]:
    with store.read() as conn:
        return [from_row(r) for r in connection_rows.list_not_disconnected(conn, actor)]


def get_connection(store: Store, actor: str, connection_id: str) -> CalendarConnection:
    """The actor's own connection; anyone else's is ``not_found``."""
    with store.read() as conn:
        row = connection_rows.get(conn, connection_id)
    return from_row(_owned(row, actor))


def load_for_sync(store: Store, connection_id: str) -> CalendarConnection | None:
    """Worker use: the connection with its (encrypted) credentials, or None if gone."""
    with store.read() as conn:
        row = connection_rows.get(conn, connection_id)
    return from_row(row, with_secret=True) if row is not None else None


def syncable_connections(store: Store, expert_id: str) -> list[CalendarConnection]:
    """The expert's connections that sync, oldest first, with their (encrypted) credentials."""
    with store.read() as conn:
        rows = connection_rows.of_expert_with_status(conn, expert_id, [str(s) for s in SYNCABLE])
    return [from_row(r, with_secret=True) for r in rows]


def busy_in_provider_calendars(
    store: Store, accounts: CalendarAccounts, expert_id: str, start: datetime, end: datetime
) -> bool:
    """The booking-time re-check (docs/sync.md#google): is the expert busy in ``[start, end)`` in a busy
    calendar of a connection whose provider answers free/busy right away?

    It closes the gap of the seconds between a change at the provider and its sync; synced busy
    blocks count in every booking check anyway. A provider that cannot answer does not refuse
    the booking (docs/decisions/0010-google-freebusy-fail-open.md).
    """
    timezone: str | None = None
    for connection in syncable_connections(store, expert_id):
        if not connection.busy_calendars or not accounts.answers_free_busy(connection.provider):
            continue
        timezone = timezone or _timezone(store, expert_id)
        if accounts.busy_between(connection, start, end, timezone, _saver(store, connection.id)):
            return True
    return False


# -- changing -----------------------------------------------------------------------------------


def disconnect(store: Store, actor: str, connection_id: str, now: datetime | None = None) -> CalendarConnection:
    """Mark disconnected and drop its busy blocks at once; the worker stops its channels.

    The credentials stay until the worker has stopped the provider-side channels (it needs
    them for that), then ``forget_credentials`` wipes them.
    """
    moment = now_or(now)
    with store.write() as conn:
        row = _owned(connection_rows.get(conn, connection_id, for_update=True), actor)
        connection_rows.update_connection(conn, connection_id, status=str(ConnectionStatus.DISCONNECTED),
                                          updated_at=moment, next_sync_at=None)
        sync_rows.drop_connection(conn, connection_id)
        outbox_rows.add_events(
            conn,
            [DomainEvent("connection.disconnected", connection_id,
                         {"connectionId": connection_id, "expertId": row["expert_id"], "provider": row["provider"]})],
            moment,
        )
        row = connection_rows.get(conn, connection_id)
    log.info("calendar connection removed", extra={"connection_id": connection_id})
    return from_row(row)


def choose_calendars(
    store: Store,
    accounts: CalendarAccounts,
    tasks: TaskQueue,
    actor: str,
    connection_id: str,
    busy: Sequence[str] | None,
    destination: str | None | _Unchanged,
    now: datetime | None = None,
) -> CalendarConnection:
    """The expert picks which calendars count as busy and where bookings go (docs/sync.md#connections).

    ``busy=None`` and ``destination=UNCHANGED`` leave that part as it is; ``destination=None``
    stops new pushes (events already written stay where they are). The ids are checked against
    the account's calendars: the list kept at connect time, or the provider's current one when
    an id is not in it (or for connections stored before calbook kept one); if the provider
    cannot answer, the kept list stands. Every id must be one of them, the destination
    writable, and at least one calendar must stay busy (``validation_error`` otherwise, nothing
    changed).

    In the same transaction, a calendar no longer busy loses its busy blocks and cursor, and a
    change requests a sync, queued unless one is already waiting: that sync imports new busy
    calendars and moves upcoming confirmed bookings to a new destination.
    """
    connection = get_connection(store, actor, connection_id)
    if connection.provider == Provider.ICS:
        raise ValidationError("an ICS feed is one calendar: there is nothing to choose", field="busyCalendars")
    wanted = [*(busy or []), *([destination] if isinstance(destination, str) else [])]
    known = connection.known_calendars
    if known is None or not all(any(same_calendar(c.id, w) for c in known) for w in wanted):
        loaded = load_for_sync(store, connection_id)
        if loaded is None:
            raise NotFound("calendar connection not found")
        try:
            known = accounts.calendars_of(loaded, _timezone(store, loaded.expert_id), _saver(store, loaded.id))
        except (CalendarUnreachable, ValidationError):
            if known is None:
                raise
            log.info("calendar listing failed, the kept list stands", extra={"connection_id": connection_id})
    changed, queue = _choose(store, actor, connection_id, busy, destination, known or [], now_or(now))
    if queue:
        tasks.sync(connection_id)
    return changed


def _choose(
    store: Store, actor: str, connection_id: str, busy: Sequence[str] | None, destination: str | None | _Unchanged,
    known: Sequence[CalendarEntry], moment: datetime,
) -> tuple[CalendarConnection, bool]:
    with store.write() as conn:
        row = _owned(connection_rows.get(conn, connection_id, for_update=True), actor)
        current = from_row(row)
        if current.provider == Provider.ICS:
            raise ValidationError("an ICS feed is one calendar: there is nothing to choose", field="busyCalendars")
        choice = CalendarChoice.picked(
            known, busy, destination if isinstance(destination, str) else None, current=current.choice,
            destination_given=not isinstance(destination, _Unchanged),
        )
        changed = choice != current.choice
        config = {**current.config, "busyCalendars": list(choice.busy), "destinationCalendar": choice.destination}
        if known:
            config["calendars"] = [c.as_dict() for c in known]
        values: dict[str, Any] = {"config": config, "updated_at": moment}
        queue_sync = changed and row["sync_requested_at"] is None
        if changed:
            values.update(sync_requested_at=row["sync_requested_at"] or moment, next_sync_at=moment,
                          sync_resume_from=None)
        connection_rows.update_connection(conn, connection_id, **values)
        if choice.busy != current.choice.busy:
            # Every calendar with blocks or a cursor that is not busy now (an old connection's
            # empty list meant "all calendars", so look at what is stored, not at the old list).
            stored = sync_rows.stored_calendar_ids(conn, connection_id)
            for removed in sorted(stored - set(choice.busy)):
                sync_rows.drop_calendar(conn, connection_id, removed)
        row = connection_rows.get(conn, connection_id)
    log.info("calendar connection calendars chosen", extra={
        "connection_id": connection_id, "busy": len(choice.busy), "changed": changed})
    return from_row(row), queue_sync


def ask_for_sync(store: Store, tasks: TaskQueue, actor: str, connection_id: str) -> None:
    """The expert asks for a sync now: noted, and queued unless one is already waiting."""
    if request_sync(store, actor, connection_id):
        tasks.sync(connection_id)


def forget_credentials(store: Store, connection_id: str) -> None:
    with store.write() as conn:
        connection_rows.forget_credentials(conn, connection_id)


def save_credentials(store: Store, connection_id: str, credentials: str, now: datetime | None = None) -> None:
    """Refreshed tokens are written back as soon as the provider reports them."""
    with store.write() as conn:
        connection_rows.update_connection(conn, connection_id, credentials=credentials, updated_at=now_or(now))


def update_config(store: Store, connection_id: str, changes: dict[str, Any], now: datetime | None = None) -> None:
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None:
            raise NotFound("calendar connection not found")
        connection_rows.update_connection(
            conn, connection_id, config={**dict(row["config"] or {}), **changes}, updated_at=now_or(now))


def status_change(row: Any, status: ConnectionStatus, error: str | None, moment: datetime,
                  ) -> tuple[dict[str, Any], DomainEvent | None]:
    """The columns a sync outcome of ``status`` sets on ``row``, and the event it emits: entering
    ``reauth_required`` tells the expert (``connection.reauth_required``); ``active`` is a good sync."""
    values: dict[str, Any] = {"status": str(status), "last_error": error[:2000] if error else None,
                              "updated_at": moment}
    if status == ConnectionStatus.ACTIVE:
        values["last_synced_at"] = moment
    if status == ConnectionStatus.REAUTH_REQUIRED:
        values["next_sync_at"] = None  # waits for the expert to reconnect
    event = None
    if status == ConnectionStatus.REAUTH_REQUIRED and row["status"] != ConnectionStatus.REAUTH_REQUIRED:
        event = DomainEvent("connection.reauth_required", row["id"], {
            "connectionId": row["id"], "expertId": row["expert_id"], "provider": row["provider"], "error": error})
    return values, event


def set_status(
    store: Store, connection_id: str, status: ConnectionStatus | str, error: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record a sync or push outcome. Entering ``reauth_required`` notifies the expert (outbox)."""
    status = ConnectionStatus(status)  # ValueError for anything else
    moment = now_or(now)
    with store.write() as conn:
        row = connection_rows.get(conn, connection_id, for_update=True)
        if row is None or row["status"] == ConnectionStatus.DISCONNECTED:
            return
        values, event = status_change(row, status, error, moment)
        connection_rows.update_connection(conn, connection_id, **values)
        if event is not None:
            outbox_rows.add_events(conn, [event], moment)
    log.info("calendar connection status", extra={"connection_id": connection_id, "status": str(status)})


def request_sync(store: Store, actor: str | None, connection_id: str, now: datetime | None = None) -> bool:
    """Note that a sync is wanted (API ``POST .../sync``, a Google or Microsoft notification): the
    connection is due at once (``next_sync_at``), and ``sync_requested_at`` remembers the request
    until a sync takes its lease, so that a request arriving during a sync makes the connection
    due again right after it (docs/sync.md#scheduling).

    Returns False when one was already requested and not yet started: the caller need not
    queue another task, which coalesces bursts of notifications into one sync.
    """
    moment = now_or(now)
    with store.write() as conn:
        row = _owned(connection_rows.get(conn, connection_id, for_update=True), actor)
        already = row["sync_requested_at"] is not None
        values: dict[str, Any] = {"sync_requested_at": row["sync_requested_at"] or moment}
        if is_syncable(row["status"]) and (row["next_sync_at"] is None or row["next_sync_at"] > moment):
            values["next_sync_at"] = moment
        connection_rows.update_connection(conn, connection_id, **values)
    return not already


# -- the sync schedule (docs/sync.md#scheduling, decision 0023) ----------------------------------


@dataclass(frozen=True, slots=True)
class SyncClaim:
    """A claimed due connection: its sync lease runs until ``lease_until``, which is also the token
    the sync task shows to take the lease over (``adopt_sync_lease``)."""

    connection_id: str
    lease_until: datetime


def claim_due_syncs(
    store: Store, limit: int, lease: timedelta, *, connection_id: str | None = None, now: datetime | None = None,
) -> list[SyncClaim]:
    """Claim up to ``limit`` due connections (or just ``connection_id``, if it is due), most overdue
    first, for a sync each: one statement takes their lease and pushes their due time to its end.

    Two claimers never get the same connection (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
    single writer on SQLite, and the lease in the WHERE either way); a claimed connection whose
    message is lost is due and claimable again when the lease ends.
    """
    moment = now_or(now)
    until = moment + lease
    with store.write() as conn:
        ids = connection_rows.claim_due(conn, [str(s) for s in SYNCABLE], moment, until, limit, only=connection_id)
    return [SyncClaim(i, until) for i in ids]


def give_back_claim(store: Store, claim: SyncClaim, now: datetime | None = None) -> None:
    """A claim whose message could not be sent: due again at once, the lease freed (if still its own)."""
    with store.write() as conn:
        connection_rows.give_back_claim(conn, claim.connection_id, claim.lease_until, now_or(now))


def syncs_in_flight(store: Store, now: datetime | None = None) -> int:
    """Connections whose sync is queued or running: the dispatcher keeps this under its cap."""
    with store.read() as conn:
        return connection_rows.leased_count(conn, now_or(now))


def next_due(
    row: Any, schedule: SyncSchedule, moment: datetime, *, status: str | None = None, failed: bool = False,
    resume_from: int | None = None, retry_at: datetime | None = None,
) -> dict[str, Any]:
    """The schedule columns after a sync of ``row`` (whose status is now ``status``, if it changed).

    A good sync: due after its provider's interval, with jitter, and the failure count reset. A
    failed one: after the backoff of its failures in a row. One stopped by its time budget
    (``resume_from``, the calendar to continue at): due at once, behind every connection already
    overdue. A sync requested while this one ran (``sync_requested_at``, cleared when the lease
    was taken): due at once. One that waited for a rate limit (``retry_at``): due then, its
    failure count as it was. ``reauth_required`` and disconnected connections are not due.
    """
    values: dict[str, Any] = {"sync_resume_from": resume_from}
    if not is_syncable(status or row["status"]):
        values["next_sync_at"] = None
    elif retry_at is not None:
        values["next_sync_at"] = retry_at
    elif resume_from is not None:
        values["next_sync_at"] = moment
    elif failed:
        failures = int(row["sync_failures"] or 0) + 1
        values.update(sync_failures=failures, next_sync_at=schedule.after_failure(failures, moment))
    else:
        values.update(sync_failures=0, next_sync_at=schedule.after_success(row["provider"], moment))
    if row["sync_requested_at"] is not None and values["next_sync_at"] is not None:
        values["next_sync_at"] = min(values["next_sync_at"], moment)
    return values


def due_connections(store: Store, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Connections due and not leased, most overdue first (what the dispatcher would claim)."""
    with store.read() as conn:
        return connection_rows.due_ids(conn, [str(s) for s in SYNCABLE], now_or(now), limit)
