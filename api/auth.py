"""Bearer-token authentication: who is calling, from a JWT's ``sub``.

Two kinds of token are accepted (docs/api.md#authentication):
- HS256, signed with ``CALBOOK_JWT_SECRET`` (or the generated local secret of the
  embedded default). These are calbook's own tokens (``calbook token USER_ID``); they
  carry no audience, so issuer and audience are not checked on them.
- RS256, only when ``CALBOOK_JWT_PUBLIC_KEY_FILE`` is set: tokens of an existing identity
  provider, checked against ``CALBOOK_JWT_ISSUER`` and ``CALBOOK_JWT_AUDIENCE`` when those
  are set (and then the claims are required).
``sub`` and ``exp`` are required on both, and no token may live longer than
``CALBOOK_JWT_MAX_LIFETIME_SECONDS`` (31 days by default): ``exp - iat``, or ``exp - now`` for a
token without ``iat``, so a leaked token with ``exp=1e30`` is not a key for ever. The algorithm
is chosen from a fixed list per key, never trusted from the token alone, so an RS256 public key can never be used as an
HMAC secret. Every failure (missing, malformed, expired, wrong key, bad claims) is the
same 401 ``unauthenticated`` with ``WWW-Authenticate: Bearer``; the detail says which,
which helps a developer and tells an attacker nothing they did not send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.schemas.common import check_id
from booking_engine.errors import Forbidden, Unauthenticated
from booking_engine.service_keys import ServiceKey, looks_like_key
from booking_engine.services import service_keys
from config.settings import Settings

log = logging.getLogger("api.auth")

LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: ``user_id`` is the token's ``sub``."""

    user_id: str
    claims: dict[str, Any] = field(default_factory=dict, compare=False)


def mint_token(
    user_id: str, settings: Settings, ttl_seconds: int = 3600, email: str | None = None, name: str | None = None,
) -> str:
    """An HS256 token for ``user_id`` (``calbook token``, tests, local use)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    return jwt.encode(claims, settings.resolved_jwt_secret(), algorithm="HS256")


VERIFIED_TOKENS_KEPT = 4096
"""Tokens whose signature and claims were checked, kept per process until they expire."""


class TokenVerifier:
    """Verifies tokens with the keys of one ``Settings``; built once per app.

    A token that passed is remembered until its ``exp`` (the only claim whose verdict changes with
    time; the lifetime check only gets easier as time passes): a client sending the same token on
    every request pays for the signature once, not per request (docs/performance.md). Nothing
    else makes a verified token invalid here, as there is no revocation list to consult.
    """

    def __init__(self, settings: Settings) -> None:
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._secret = settings.resolved_jwt_secret()
        self._public_key: str | None = None
        if settings.jwt_public_key_file is not None:
            self._public_key = settings.jwt_public_key_file.read_text()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._max_lifetime = settings.jwt_max_lifetime_seconds

    def verify(self, token: str) -> Principal:
        with self._lock:
            known = self._verified.get(token)
            if known is not None and time.time() < known[1] + LEEWAY_SECONDS:
                self._verified.move_to_end(token)
                return known[0]
        principal = self._verify(token)
        expires = _number(principal.claims.get("exp"))
        if expires is not None:
            with self._lock:
                self._verified[token] = (principal, expires)
                while len(self._verified) > VERIFIED_TOKENS_KEPT:
                    self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("the bearer token is missing or too long")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the bearer token is malformed") from exc
        required = ["sub", "exp"]
        kwargs: dict[str, Any] = {}
        options: dict[str, Any] = {"verify_aud": False}
        key: str
        if algorithm == "HS256":
            key = self._secret
        elif algorithm == "RS256" and self._public_key is not None:
            key = self._public_key
            if self._issuer:
                kwargs["issuer"] = self._issuer
                required.append("iss")
            if self._audience:
                kwargs["audience"] = self._audience
                options["verify_aud"] = True
                required.append("aud")
        else:
            raise Unauthenticated("the bearer token uses an algorithm this server does not accept")
        options["require"] = required
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], options=options, leeway=LEEWAY_SECONDS, **kwargs)
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the bearer token has expired") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthenticated("the bearer token is not valid") from exc
        self._check_lifetime(claims)
        subject = claims.get("sub")
        try:
            user_id = check_id(subject) if isinstance(subject, str) else None
        except ValueError:
            user_id = None
        if user_id is None:
            raise Unauthenticated("the token's sub must be a user id of 1 to 64 printable characters")
        return Principal(user_id, claims)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        if _lifetime(claims, time.time()) > self._max_lifetime + LEEWAY_SECONDS:
            raise Unauthenticated(
                f"the bearer token lives longer than this server accepts ({self._max_lifetime} seconds)")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _lifetime(claims: dict[str, Any], now: float) -> float:
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None:
        return float("inf")
    return exp - (iat if iat is not None else now)


def require_self(principal: Principal, owner_id: str, action: str) -> None:
    """403 unless the caller is ``owner_id``: checked before preconditions, so a stranger learns nothing else."""
    if principal.user_id != owner_id:
        raise Forbidden(f"only the expert may {action}")


_bearer = HTTPBearer(auto_error=False, description="A JWT whose `sub` is the caller's user id")


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the caller, or 401 ``unauthenticated``.

    ``async def`` so it runs on the event loop: verifying a signature takes tens of
    microseconds, less than the thread-pool hop FastAPI gives sync dependencies.
    """
    if credentials is None:
        raise Unauthenticated("a bearer token is required")
    if looks_like_key(credentials.credentials):
        raise Forbidden("a service key is not a user: this route needs a user's token")
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(credentials.credentials)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal | ServiceKey:
    """FastAPI dependency of the routes a service key may call too: a user, or an active key.

    A plain ``def``: a key is looked up in the database (by its hash), which FastAPI then does
    in its thread pool, off the event loop. Every use of a key is logged with its name; what
    the key may do there is decided by the service the route calls (docs/security.md#service-keys).
    """
    if credentials is None:
        raise Unauthenticated("a bearer token is required")
    if not looks_like_key(credentials.credentials):
        verifier: TokenVerifier = request.app.state.verifier
        return verifier.verify(credentials.credentials)
    key = service_keys.authenticate(request.app.state.store, credentials.credentials)
    log.info("service key used", extra={"service_key": key.name, "key_id": key.id, "method": request.method,
                                        "path": request.url.path})
    return key


CurrentCaller = Annotated[Principal | ServiceKey, Depends(current_caller)]
