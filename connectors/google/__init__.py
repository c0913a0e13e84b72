"""Google Calendar connector: OAuth connection (``oauth``), the provider (``provider``) and
push-notification helpers (``webhook``)."""

from connectors.google.backoff import Backoff
from connectors.google.errors import (
    GoogleOAuthError,
    GoogleRequestRejected,
    MissingScopesError,
    StateMismatchError,
)
from connectors.google.oauth import AuthorizationRequest, GoogleGrant, authorization_request, exchange_code
from connectors.google.provider import GoogleCalendarProvider, WatchChannel

__all__ = [
    "AuthorizationRequest",
    "Backoff",
    "GoogleCalendarProvider",
    "GoogleGrant",
    "GoogleOAuthError",
    "GoogleRequestRejected",
    "MissingScopesError",
    "StateMismatchError",
    "WatchChannel",
    "authorization_request",
    "exchange_code",
]
