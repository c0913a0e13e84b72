"""Google connector test helpers: the OAuth client, tokens, stored credentials."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

TOKEN_URI = "https://oauth2.test/token"


AUTH_URI = "https://accounts.test/o/oauth2/auth"


CLIENT_ID = "client-123.apps.googleusercontent.com"


CLIENT_SECRET = "client-secret-xyz"


ACCESS_TOKEN = "access-token-1"


REFRESH_TOKEN = "refresh-token-1"


CALENDAR = "expert@example.com"


def stored_credentials(
    token: str = ACCESS_TOKEN, expires_in: timedelta = timedelta(hours=1), refresh: str = REFRESH_TOKEN
) -> dict[str, Any]:
    expiry = (datetime.now(UTC) + expires_in).isoformat().replace("+00:00", "Z")
    return {
        "format": 1,
        "token": token,
        "refresh_token": refresh,
        "expiry": expiry,
        "scopes": ["https://www.googleapis.com/auth/calendar.events"],
    }


def id_token(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT with the given claims (the exchange does not check signatures)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"
