"""Map whatever the caldav library, the HTTP stack or a raw status says to our three error classes.

One place so every call site agrees: 401 -> ``AuthError``; 403 -> ``AuthError`` (the account
lost access; the expert has to act) except on the sync REPORT where it means "token expired"
and the caller resyncs instead; 408/425/429/5xx and network trouble -> ``TransientError``
(with ``retry_after`` when the server sent one); everything else -> ``PermanentError``.
Messages never contain credentials: URLs are stripped of userinfo.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from caldav.lib import error as caldav_error
from caldav.lib.error import parse_retry_after
from caldav.lib.http_sync import requests as http_lib

from connectors.base import AuthError, ConnectorError, PermanentError, TransientError
from connectors.caldav.webdav_xml import MultistatusError

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 507})


def redact_url(url: str) -> str:
    """The URL without ``user:password@`` so it can go into logs and ``lastError``."""
    parts = urlsplit(str(url))
    if parts.username is None and parts.password is None:
        return str(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def error_for_status(status: int, action: str, url: str, retry_after: str | None = None) -> ConnectorError:
    where = f"{action} {redact_url(url)}: HTTP {status}"
    if status == 401:
        return AuthError(f"{where} (credentials refused)")
    if status == 403:
        return AuthError(f"{where} (access forbidden)")
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(where, retry_after=parse_retry_after(retry_after) if retry_after else None)
    return PermanentError(where)


@contextmanager
def translated(action: str, url: str) -> Iterator[None]:
    """Re-raise library and network exceptions raised inside as connector errors."""
    try:
        yield
    except ConnectorError:
        raise
    except caldav_error.RateLimitError as exc:
        raise TransientError(
            f"{action} {redact_url(url)}: rate limited (HTTP {exc.status or 429})",
            retry_after=exc.retry_after_seconds,
        ) from exc
    except caldav_error.AuthorizationError as exc:
        raise error_for_status(exc.status or 401, action, url) from exc
    except caldav_error.NotFoundError as exc:
        raise PermanentError(f"{action} {redact_url(url)}: not found") from exc
    except caldav_error.DAVError as exc:
        if exc.status:
            raise error_for_status(exc.status, action, url) from exc
        raise PermanentError(f"{action} {redact_url(url)}: {exc.reason}") from exc
    except MultistatusError as exc:
        raise PermanentError(f"{action} {redact_url(url)}: {exc}") from exc
    except (
        http_lib.exceptions.InvalidURL,
        http_lib.exceptions.MissingSchema,
        http_lib.exceptions.InvalidSchema,
    ) as exc:
        raise PermanentError(f"{action} {redact_url(url)}: invalid URL") from exc
    except (http_lib.exceptions.RequestException, OSError) as exc:
        raise TransientError(f"{action} {redact_url(url)}: network error ({type(exc).__name__})") from exc
    except NotImplementedError as exc:  # caldav: server offers no auth scheme we support
        raise PermanentError(f"{action} {redact_url(url)}: {exc}") from exc
