"""A fake Google OAuth token endpoint on 127.0.0.1, issuing tokens the fake Calendar accepts.

``responses`` only intercepts ``requests`` in the test process; a Celery worker subprocess
refreshing a token needs a real socket. So this server does what Google's token endpoint
does for calbook, and checks what calbook sends:

* ``authorization_code``: the code must have been issued by :meth:`FakeGoogleOAuth.approve`
  for the same redirect URI and client, once, and the PKCE ``code_verifier`` must hash to
  the ``code_challenge`` of the authorization URL (so the verifier really round-tripped
  through calbook's server-side store);
* ``refresh_token``: a new access token, or ``400 invalid_grant`` once revoked.

Every access token it issues is added to the fake Calendar's ``valid_tokens``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fakes.google_calendar import FakeGoogleCalendar

SCOPES_GRANTED = (
    "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/calendar.events "
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
)


@dataclass
class Grant:
    email: str
    scope: str
    challenge: str
    redirect_uri: str
    used: bool = False


@dataclass
class FakeGoogleOAuth:
    calendar: FakeGoogleCalendar
    client_id: str
    client_secret: str
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    """refresh token -> account e-mail"""
    revoked: set[str] = field(default_factory=set)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Serve; returns the token URI."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {key: values[0] for key, values in parse_qs(raw).items()}
                status, body = fake.answer(form, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- test controls ----------------------------------------------------------------------

    def approve(self, authorization_url: str, email: str, scope: str = SCOPES_GRANTED) -> str:
        """What Google's consent screen does: remember the request, return the code it redirects with."""
        query = {key: values[0] for key, values in parse_qs(urlsplit(authorization_url).query).items()}
        assert query["client_id"] == self.client_id
        assert query["code_challenge_method"] == "S256"
        code = "code-" + secrets.token_urlsafe(12)
        with self.lock:
            self.codes[code] = Grant(email, scope, query["code_challenge"], query["redirect_uri"])
        return code

    def revoke_all(self) -> None:
        """The expert revoked calbook's access (or changed their password): refreshes now fail."""
        with self.lock:
            self.revoked |= set(self.refresh_tokens)

    def refreshes(self) -> int:
        with self.lock:
            return sum(1 for r in self.token_requests if r.get("grant_type") == "refresh_token")

    # -- the endpoint -----------------------------------------------------------------------

    def answer(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.token_requests.append(form)
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            if authorization and authorization.startswith("Basic "):
                client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            if client_id != self.client_id or client_secret != self.client_secret:
                return 401, {"error": "invalid_client"}
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                return self._exchange(form)
            if grant_type == "refresh_token":
                token = form.get("refresh_token", "")
                if token not in self.refresh_tokens or token in self.revoked:
                    return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                return 200, self._access(self.refresh_tokens[token], None)
            return 400, {"error": "unsupported_grant_type"}

    def _exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = self.codes.get(form.get("code", ""))
        if grant is None or grant.used or grant.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if digest != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "Invalid code verifier."}
        grant.used = True
        refresh = "refresh-" + secrets.token_urlsafe(16)
        self.refresh_tokens[refresh] = grant.email
        body = self._access(grant.email, grant.scope)
        body["refresh_token"] = refresh
        body["id_token"] = _id_token(
            {"iss": "https://accounts.google.com", "aud": self.client_id, "sub": "sub-" + grant.email,
             "email": grant.email, "email_verified": True}
        )
        return 200, body

    def _access(self, email: str, scope: str | None) -> dict[str, Any]:
        access = "access-" + secrets.token_urlsafe(16)
        with self.calendar.lock:
            self.calendar.valid_tokens.add(access)
        body: dict[str, Any] = {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}
        if scope:
            body["scope"] = scope
        return body


def _id_token(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"
