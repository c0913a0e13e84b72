"""The pages' sign-in: a short-lived link, then a signed session cookie, a CSRF token per session.

* ``/login?token=JWT`` takes a token the API would accept (same verifier, same keys) whose whole
  lifetime (``exp - iat``) is at most ``CALBOOK_WEB_LOGIN_LINK_MAX_SECONDS``: a link is for
  signing in now, not a long-lived bearer token pasted into a URL. ``calbook token USER --link``
  prints one.
* The session is a cookie ``calbook_session``: ``payload.signature``, the payload the user id,
  the expiry and the CSRF token, the signature an HMAC-SHA256 under a key derived from the
  server's JWT secret (so rotating that secret signs everyone out). HttpOnly (no script reads
  it), ``SameSite=Lax`` (a cross-site form post carries no cookie; following a link does), and
  ``Secure`` when the public base URL is HTTPS.
* Every form carries the session's CSRF token and every POST checks it (constant-time), in
  addition to SameSite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response

from config.settings import Settings

SESSION_COOKIE = "calbook_session"
PRE_COOKIE = "calbook_pre"  # the CSRF token of the (development) sign-in form, before any session
TZ_COOKIE = "calbook_tz"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in to the pages, and their CSRF token."""

    user_id: str
    csrf: str
    expires: int


class SignInRequired(Exception):
    """No valid session: the page redirects to /login, coming back afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CSRFRejected(Exception):
    """A form without this session's CSRF token: refused with 403, nothing done."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"calbook web session\0" + settings.resolved_jwt_secret().encode()).digest()


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def encode_session(settings: Settings, user_id: str, now: float | None = None) -> str:
    moment = int(now if now is not None else time.time())
    body = {"sub": user_id, "exp": moment + settings.web_session_seconds, "csrf": secrets.token_urlsafe(24)}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_sign(_key(settings), payload)}"


def decode_session(settings: Settings, value: str | None, now: float | None = None) -> Viewer | None:
    """The viewer of a cookie, or None when it is missing, forged, malformed or expired."""
    if not value or len(value) > 2048 or "." not in value:
        return None
    payload, signature = value.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(_key(settings), payload)):
        return None
    try:
        body = json.loads(_unb64(payload))
        user_id, expires, csrf = str(body["sub"]), int(body["exp"]), str(body["csrf"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires <= (now if now is not None else time.time()):
        return None
    return Viewer(user_id, csrf, expires)


def set_session(response: Response, settings: Settings, user_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, encode_session(settings, user_id), max_age=settings.web_session_seconds, httponly=True,
        samesite="lax", secure=settings.public_base_url.startswith("https://"), path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def current_viewer(request: Request) -> Viewer | None:
    return decode_session(request.app.state.settings, request.cookies.get(SESSION_COOKIE))


def require_viewer(request: Request) -> Viewer:
    viewer = current_viewer(request)
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return viewer


def check_csrf(expected: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CSRFRejected()


def link_lifetime(claims: dict[str, object], now: float) -> float:
    """A sign-in link token's whole lifetime: ``exp - iat`` (``exp - now`` without ``iat``)."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float):
        return float("inf")
    return float(exp) - (float(iat) if isinstance(iat, int | float) else now)


def safe_next(value: str | None) -> str:
    """Only a path on this site: ``/bookings``, never ``//evil.example`` or ``https://...``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/experts"
