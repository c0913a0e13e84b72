"""``ProviderAccounts``: the ``CalendarAccounts`` port (``booking_engine.ports``) over the real providers.

Verifying a connection runs in the API request, against a server we do not control, so every
provider is opened with ``person_waits`` (short timeouts, one quick retry) and every way it
can fail becomes a domain error: ``ValidationError`` for what the expert can fix (422),
``CalendarUnreachable`` when the server is unreachable or failing (502), the
``AuthorizationFailed`` family for the OAuth callback (400), never a 500. Before dialling, a
user-given URL must point at a public address (``connectors.url_policy``; its ``UnsafeURL``
is the API's 422 on ``url``) unless ``CALBOOK_ALLOW_PRIVATE_URLS`` is set. Credentials are
encrypted here, before anything is stored; errors carry no secret.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from booking_engine.clock import utcnow
from booking_engine.connections import CalendarConnection, CalendarEntry, Provider, VerifiedAccount
from booking_engine.errors import (
    AuthorizationFailed,
    BookingError,
    CalendarUnreachable,
    FeatureDisabled,
    ProviderRefused,
    ProviderUnavailable,
    ScopesMissing,
    ValidationError,
)
from booking_engine.ports import PendingGoogleAuthorization, SaveCredentials
from config.logging import redact_url
from config.settings import Settings
from connectors.base import AuthError, CalendarInfo, ConnectorError, PermanentError, TransientError
from connectors.factory import kind_of, open_account, open_provider
from connectors.secrets import CredentialsUnreadable, decrypt_json, encrypt_json
from connectors.url_policy import UnsafeURL, check_public_url

log = logging.getLogger(__name__)


def _entries(calendars: list[CalendarInfo]) -> list[CalendarEntry]:
    return [CalendarEntry(c.id, c.name, c.writable) for c in calendars]


def _problem_for(exc: ConnectorError, what: str) -> BookingError:
    """Connector errors as domain errors; the connectors keep credentials out of their messages."""
    if isinstance(exc, AuthError):
        return ValidationError(f"{what}: credentials refused", field="password")
    if isinstance(exc, TransientError):
        return CalendarUnreachable(f"{what}: {exc}")
    return ValidationError(f"{what}: {exc}", field="url")


def _http_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError("url must be an http or https URL", field="url")
    if parts.username or parts.password:
        raise ValidationError("put the credentials in username and password, not in the URL", field="url")
    return url.strip()


class ProviderAccounts:
    """Calendar accounts through ``connectors.factory``, with the settings of the process that built it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def _key(self) -> str:
        return self.settings.resolved_encryption_key()

    # -- connecting ---------------------------------------------------------------------------

    def verify_caldav(self, url: str, username: str, password: str, timezone: str) -> VerifiedAccount:
        """List the account's calendars with the given credentials (at least one must hold events)."""
        url = _http_url(url)
        check_public_url(url, self.settings.allow_private_urls)
        secret = encrypt_json({"username": username, "password": password}, self._key)
        try:
            with open_account(Provider.CALDAV, secret, self.settings, timezone, account=username,
                              config={"url": url}, person_waits=True) as dav:
                calendars = dav.list_calendars()
        except UnsafeURL:
            raise  # a redirect or discovered href to a private address: the 422 of the URL policy
        except ConnectorError as exc:
            log.info("caldav connect refused", extra={"error": type(exc).__name__})
            raise _problem_for(exc, "could not verify the CalDAV account") from exc
        except ValueError as exc:  # a URL the HTTP layer cannot take apart
            raise ValidationError("url is not a usable CalDAV URL", field="url") from exc
        if not calendars:
            raise ValidationError("no calendar with events found at this URL", field="url")
        return VerifiedAccount(account=username, calendars=_entries(calendars), credentials=secret,
                               config={"url": url})

    def verify_feed(self, url: str, timezone: str) -> VerifiedAccount:
        """Fetch and parse the feed once. The feed URL often holds a private token: it is kept
        encrypted, and shown (``account``, ``config["url"]``) redacted."""
        from connectors.ics.provider import FEED_CALENDAR_ID, feed_url

        try:
            url = feed_url(url)
        except PermanentError as exc:
            raise ValidationError("url must be an http, https or webcal URL", field="url") from exc
        check_public_url(url, self.settings.allow_private_urls)  # webcal is mapped to https by now
        secret = encrypt_json({"url": url}, self._key)
        now = utcnow()
        try:
            with open_account(Provider.ICS, secret, self.settings, timezone, config={"url": url},
                              person_waits=True) as feed:
                feed.pull(FEED_CALENDAR_ID, None, now - timedelta(days=1),
                          now + timedelta(days=self.settings.sync_horizon_days), timezone)
        except UnsafeURL:
            raise  # a redirect to a private address: the 422 of the URL policy
        except ConnectorError as exc:
            log.info("ics connect refused", extra={"error": type(exc).__name__})
            raise _problem_for(exc, "could not read the feed") from exc
        shown = redact_url(url)
        return VerifiedAccount(account=shown, calendars=[], credentials=secret, config={"url": shown})

    def start_google(self, login_hint: str | None) -> PendingGoogleAuthorization:
        """The consent URL; on a server without a Google OAuth client the feature does not exist."""
        from connectors.google.errors import GoogleOAuthError
        from connectors.google.oauth import authorization_request, callback_uri

        if not self.settings.google_client_id or not self.settings.google_client_secret:
            raise FeatureDisabled("set CALBOOK_GOOGLE_CLIENT_ID and CALBOOK_GOOGLE_CLIENT_SECRET to enable it",
                                  title="Google Calendar is not enabled on this server")
        try:
            request = authorization_request(callback_uri(self.settings), settings=self.settings,
                                            login_hint=login_hint)
        except GoogleOAuthError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        secret = encrypt_json({"code_verifier": request.code_verifier}, self._key)
        return PendingGoogleAuthorization(url=request.url, state=request.state, secret=secret)

    def complete_google(self, code: str, state: str, secret: str) -> VerifiedAccount:
        """Exchange the code (PKCE: the verifier kept with the state), list the calendars."""
        from connectors.google.errors import GoogleOAuthError, MissingScopesError
        from connectors.google.oauth import callback_uri, exchange_code

        try:
            verifier = str(decrypt_json(secret, self._key)["code_verifier"])
        except (CredentialsUnreadable, KeyError) as exc:
            raise AuthorizationFailed("the authorization can no longer be completed") from exc
        try:
            grant = exchange_code(
                code=code, returned_state=state, expected_state=state, code_verifier=verifier,
                redirect_uri=callback_uri(self.settings), settings=self.settings,
            )
            credentials = encrypt_json(grant.credentials, self._key)
            refreshed: list[str] = []
            with open_account(Provider.GOOGLE, credentials, self.settings, "UTC",
                              on_credentials_refreshed=refreshed.append) as google:
                calendars = google.list_calendars()
        except MissingScopesError as exc:
            raise ScopesMissing(str(exc), field="scope", error_type="missing_scopes") from exc
        except GoogleOAuthError as exc:
            raise AuthorizationFailed(str(exc)) from exc
        except TransientError as exc:
            log.warning("google unreachable during connect")
            raise ProviderUnavailable(f"{exc}; start connecting again shortly", retry_after=5) from exc
        except ConnectorError as exc:
            raise ProviderRefused(str(exc)) from exc
        return VerifiedAccount(account=grant.account_email, calendars=_entries(calendars),
                               credentials=refreshed[-1] if refreshed else credentials)

    # -- Microsoft 365 / Outlook ----------------------------------------------------------------

    def start_microsoft(self, login_hint: str | None) -> PendingGoogleAuthorization:
        """The consent URL (MSAL: state, nonce, PKCE); the MSAL flow is kept encrypted with the state."""
        from connectors.microsoft import oauth as ms_oauth

        if not self.settings.microsoft_client_id or not self.settings.microsoft_client_secret:
            raise FeatureDisabled("set CALBOOK_MICROSOFT_CLIENT_ID and CALBOOK_MICROSOFT_CLIENT_SECRET to enable it",
                                  title="Microsoft 365 calendars are not enabled on this server")
        try:
            started = ms_oauth.start(self.settings, login_hint)
        except (ms_oauth.MicrosoftOAuthError, TransientError) as exc:
            raise ProviderUnavailable(str(exc)) from exc
        return PendingGoogleAuthorization(url=started.url, state=started.state,
                                          secret=encrypt_json({"flow": started.flow}, self._key))

    def complete_microsoft(self, code: str, state: str, secret: str) -> VerifiedAccount:
        """Exchange the code (MSAL with the kept flow), list the calendars with ``canEdit``."""
        from connectors.microsoft import oauth as ms_oauth

        try:
            flow = dict(decrypt_json(secret, self._key)["flow"])
        except (CredentialsUnreadable, KeyError, TypeError, ValueError) as exc:
            raise AuthorizationFailed("the authorization can no longer be completed") from exc
        try:
            grant = ms_oauth.complete(self.settings, flow, code, state)
            credentials = encrypt_json(grant.credentials, self._key)
            refreshed: list[str] = []
            with open_account(Provider.MICROSOFT, credentials, self.settings, "UTC", account=grant.account,
                              on_credentials_refreshed=refreshed.append, person_waits=True) as microsoft:
                calendars = microsoft.list_calendars()
        except ms_oauth.MicrosoftOAuthError as exc:
            raise AuthorizationFailed(str(exc)) from exc
        except TransientError as exc:
            log.warning("microsoft unreachable during connect")
            raise ProviderUnavailable(f"{exc}; start connecting again shortly", retry_after=5) from exc
        except ConnectorError as exc:
            raise ProviderRefused(str(exc)) from exc
        return VerifiedAccount(account=grant.account, calendars=_entries(calendars),
                               credentials=refreshed[-1] if refreshed else credentials)

    # -- stored connections -------------------------------------------------------------------

    def answers_free_busy(self, provider: str) -> bool:
        # Each provider's check has its own switch (Google's also decides the consent scopes).
        if provider == Provider.MICROSOFT and not self.settings.microsoft_freebusy_check:
            return False
        if provider == Provider.GOOGLE and not self.settings.google_freebusy_check:
            return False
        return kind_of(provider).free_busy

    def calendars_of(self, connection: CalendarConnection, timezone: str, save: SaveCredentials) -> list[CalendarEntry]:
        """The account's calendars now (a person waits: short timeout, few retries)."""
        try:
            with open_provider(connection, self.settings, timezone, on_credentials_refreshed=save,
                               person_waits=True) as provider:
                return _entries(provider.list_calendars())
        except (ConnectorError, ValueError) as exc:
            log.info("calendar listing failed", extra={"connection_id": connection.id, "error": type(exc).__name__})
            if isinstance(exc, TransientError):
                raise CalendarUnreachable(f"could not list the account's calendars: {exc}") from exc
            raise ValidationError("could not list the account's calendars; reconnect the account",
                                  field="id") from exc

    def busy_between(
        self, connection: CalendarConnection, start: datetime, end: datetime, timezone: str, save: SaveCredentials
    ) -> bool:
        """Is the account busy in ``[start, end)`` in one of the connection's busy calendars?

        Fails open (docs/decisions/0010-google-freebusy-fail-open.md): a provider that cannot
        answer, or refuses the credentials, does not refuse the booking; a calendar it answers
        with errors counts as busy (the provider's own rule).
        """
        context = {"connection_id": connection.id, "expert_id": connection.expert_id}
        try:
            provider = open_provider(connection, self.settings, timezone, on_credentials_refreshed=save,
                                     person_waits=True)
        except ConnectorError as exc:
            log.error("freebusy: no provider, connection not checked: %s", exc, extra=context)
            return False
        with provider:
            check = provider.free_busy()
            if check is None:
                return False
            try:
                answer = check.freebusy(connection.busy_calendars, start, end)
            except AuthError as exc:
                log.warning("freebusy: credentials refused, connection not checked: %s", exc, extra=context)
                return False
            except ConnectorError as exc:
                log.warning("freebusy: check failed, booking not refused: %s", exc, extra=context)
                return False
        for calendar_id, intervals in answer.items():
            if any(interval.start < end and start < interval.end for interval in intervals):
                log.info("freebusy: busy", extra={**context, "calendar_id": calendar_id})
                return True
        return False
