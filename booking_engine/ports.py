"""The two ports the connection use cases talk to the outside through, in the domain's terms.

``booking_engine.services.connections`` is handed an implementation of each by its caller's
composition root (``api/deps.py``, ``worker/wiring.py``): ``connectors.accounts.ProviderAccounts``
and ``config.task_sender.CeleryTaskQueue`` in production, recording fakes in tests. Neither
port names a provider class, an HTTP library or Celery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from booking_engine.connections import CalendarConnection, CalendarEntry, VerifiedAccount

SaveCredentials = Callable[[str], None]
"""Stores refreshed credentials (already encrypted) of the connection being used."""


@dataclass(frozen=True, slots=True)
class PendingGoogleAuthorization:
    """A consent URL to send the expert to, its ``state``, and the secret to keep until the callback
    (the PKCE verifier, encrypted). Google and Microsoft alike."""

    url: str
    state: str
    secret: str


class CalendarAccounts(Protocol):
    """Calendar accounts at their providers: verify one being connected, list or check a stored one.

    Every method raises domain errors (``booking_engine.errors``): ``ValidationError`` for what the
    expert can fix, ``CalendarUnreachable`` when the server does not answer, the
    ``AuthorizationFailed`` family for an OAuth callback that did not complete.
    """

    def verify_caldav(self, url: str, username: str, password: str, timezone: str) -> VerifiedAccount: ...

    def verify_feed(self, url: str, timezone: str) -> VerifiedAccount: ...

    def start_google(self, login_hint: str | None) -> PendingGoogleAuthorization: ...

    def complete_google(self, code: str, state: str, secret: str) -> VerifiedAccount: ...

    def start_microsoft(self, login_hint: str | None) -> PendingGoogleAuthorization: ...

    def complete_microsoft(self, code: str, state: str, secret: str) -> VerifiedAccount: ...

    def answers_free_busy(self, provider: str) -> bool:
        """Whether ``busy_between`` can ask this provider at all (Google's ``freebusy.query``)."""

    def calendars_of(
        self, connection: CalendarConnection, timezone: str, save: SaveCredentials
    ) -> list[CalendarEntry]: ...

    def busy_between(
        self, connection: CalendarConnection, start: datetime, end: datetime, timezone: str, save: SaveCredentials
    ) -> bool: ...


class TaskQueue(Protocol):
    """Work handed to the worker, by connection id. Sending never fails the caller: a lost message is
    made good by the periodic jobs (the request is noted in the database first)."""

    def sync(self, connection_id: str, countdown: float = 0) -> None:
        """A sync the expert or a change of calendars asked for (``calbook.sync.connection``)."""

    def sync_changed(self, connection_id: str) -> None:
        """A sync because the provider announced a change (``calbook.google.sync``): it waits for a
        running sync rather than being dropped."""

    def watch(self, connection_id: str) -> None:
        """Open or renew the connection's push-notification channels."""

    def drain_outbox(self) -> None:
        """Dispatch the outbox now rather than at the next tick."""

    def deliver_webhooks(self) -> None:
        """Attempt due webhook deliveries now rather than at the next tick."""
