"""What a CalDAV server's answer means for calbook: the connector error classes, in one place.

* 401: ``AuthError`` - the credentials were refused; the expert has to reconnect.
* 403, 409 or 412 with a ``DAV:error`` body: a *precondition* failed (RFC 4918 16, RFC 4791
  5.3.2): a UID that already exists in another calendar (``no-uid-conflict``, Cyrus's
  ``unique-scheduling-object-resource``), a resource the server will not take, missing
  privileges. None of these is about the credentials, so none is an ``AuthError``: on an
  event write it is ``EventRejected`` (that one booking's push failed; the connection goes
  on), elsewhere a ``PermanentError``. The callers look at the preconditions first
  (``uid_conflict``) and often recover.
* 403 without such a body: ``AuthError`` (the account lost access).
* 408/425/429/5xx and network trouble: ``TransientError`` (with ``retry_after`` when sent).
* Anything else: ``PermanentError``.

Messages name the action, the URL without userinfo and the status code, plus the names of
failed preconditions; never a body, a reason phrase or a credential.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from connectors.base import AuthError, ConnectorError, EventRejected, PermanentError, TransientError
from connectors.caldav.webdav_xml import CALDAV, DAV, MultistatusError, Precondition, parse_dav_error
from connectors.retry_after import parse_retry_after

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 507})
PRECONDITION_STATUSES = frozenset({403, 409, 412})
#: Preconditions that say "this UID already lives in another resource", with that resource's href.
UID_CONFLICTS = frozenset({(CALDAV, "no-uid-conflict"), (CALDAV, "unique-scheduling-object-resource")})


def redact_url(url: str) -> str:
    """The URL without ``user:password@`` so it can go into logs and ``lastError``."""
    parts = urlsplit(str(url))
    if parts.username is None and parts.password is None:
        return str(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def preconditions(status: int, body: bytes | None) -> list[Precondition]:
    return parse_dav_error(body) if status in PRECONDITION_STATUSES else []


def uid_conflict(status: int, body: bytes | None) -> Precondition | None:
    """The UID-conflict precondition of a refused PUT (it names where the UID lives), if that is what it is."""
    for condition in preconditions(status, body):
        if (condition.namespace, condition.name) in UID_CONFLICTS:
            return condition
    return None


def error_for_status(
    status: int, action: str, url: str, retry_after: str | None = None, body: bytes | None = None,
    *, event_write: bool = False,
) -> ConnectorError:
    """The connector error for a failed answer (see the module docstring)."""
    where = f"{action} {redact_url(url)}: HTTP {status}"
    failed = preconditions(status, body)
    if failed:
        names = ", ".join(c.name for c in failed)
        if any((c.namespace, c.name) == (DAV, "need-privileges") for c in failed):
            return PermanentError(f"{where} (not allowed: the account lacks the privilege)")
        if event_write:
            return EventRejected(f"{where} (precondition failed: {names})")
        return PermanentError(f"{where} (precondition failed: {names})")
    if status == 401:
        return AuthError(f"{where} (credentials refused)")
    if status == 403:
        return AuthError(f"{where} (access forbidden)")
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(where, retry_after=parse_retry_after(retry_after))
    return PermanentError(where)


@contextmanager
def translated(action: str, url: str) -> Iterator[None]:
    """Connector errors pass; an unreadable multistatus becomes a ``PermanentError``."""
    try:
        yield
    except ConnectorError:
        raise
    except MultistatusError as exc:
        raise PermanentError(f"{action} {redact_url(url)}: {exc}") from exc
