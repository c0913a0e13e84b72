"""Logging setup: one line per record, with the context fields (booking id, connection id) appended.

Never log secrets: credentials and tokens are not put into ``extra`` anywhere in calbook. As a
net under that rule (docs/security.md#logs), every line passes ``RedactSecrets`` on its way
out, in the API (uvicorn's access log included) and in the worker: URLs lose their userinfo
and their query strings (OAuth ``code`` and ``state``, feed tokens, signatures), and path
segments that look like tokens (long random strings, ``private-...`` feed keys) are masked.
The HTTP client loggers (httpx, httpcore) are kept at WARNING, since their INFO line is the
whole request URL.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "googleapiclient.discovery_cache")
MASK = "REDACTED"

_URL = re.compile(r"(?i)\b((?:https?|webcals?|wss?|redis|rediss|postgresql(?:\+\w+)?|smtps?(?:\+\w+)?|amqp)://)"
                  r"([^\s/?#@\"'<>]+@)?([^\s/?#\"'<>]*)([^\s?#\"'<>]*)(\?[^\s#\"'<>]*)?")
#: A request line of the access log: ``"GET /path?query HTTP/1.1"``.
_REQUEST_LINE = re.compile(r'("(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) [^\s?"]*)\?[^\s"]*')
#: Path segments that are keys: long random-looking strings, or ``private-<hex>`` (Google's feeds).
_TOKEN_SEGMENT = re.compile(r"(?i)^(?:private-[0-9a-f]{8,}|(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])"
                            r"[A-Za-z0-9_\-]{24,})$")
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _mask_path(path: str) -> str:
    return "/".join(MASK if _TOKEN_SEGMENT.match(seg) and not _UUID.match(seg) else seg for seg in path.split("/"))


def _mask_url(match: re.Match[str]) -> str:
    scheme, userinfo, host, path, query = match.groups()
    return f"{scheme}{'***@' if userinfo else ''}{host}{_mask_path(path or '')}{'?' + MASK if query else ''}"


def redact_url(url: str) -> str:
    """One URL as it may be shown or logged: no userinfo, no query, token-like path segments masked."""
    match = _URL.match(url.strip())
    return _mask_url(match) if match else MASK


def redact(text: str) -> str:
    """The text with credentials, query strings and token-like path segments of its URLs masked."""
    if "://" in text:
        text = _URL.sub(_mask_url, text)
    if '"' in text and "?" in text:
        text = _REQUEST_LINE.sub(lambda m: f"{m.group(1)}?{MASK}", text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message and string context fields through ``redact``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logged as it is
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str) and "://" in value:
                setattr(record, key, redact(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        if not extra:
            return base
        return base + " " + " ".join(f"{k}={v}" for k, v in sorted(extra.items()))


def quiet_http_clients() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def install_redaction(logger: logging.Logger) -> None:
    """Put ``RedactSecrets`` on every handler of ``logger`` (the worker's, set up by Celery)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    quiet_http_clients()


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ContextFormatter(FORMAT))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_http_clients()


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers (access log included) go through calbook's handler,
    in every API worker process (uvicorn applies it in each)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "config.logging.RedactSecrets"}},
        "formatters": {"calbook": {"()": "config.logging.ContextFormatter", "fmt": FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "calbook", "filters": ["redact"]}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }
