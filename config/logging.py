"""Logging for every calbook process: one handler on stderr, one format, one level.

Every process kind sets it up the same way, from the same settings (docs/operations.md#logging):
``calbook serve``/``migrate``/... in ``config.cli``, each uvicorn worker process of ``calbook api``
through the ``log_config`` dictionary uvicorn applies after it spawns them (``logging_config``),
and ``calbook worker``/``beat`` through Celery's ``setup_logging`` signal (``worker.app``), so
that Celery, uvicorn and alembic records all leave in calbook's format.

- ``CALBOOK_LOG_LEVEL`` (``INFO``) is the threshold of every logger.
- ``CALBOOK_LOG_FORMAT``: ``text`` (one line, the context fields appended as ``key=value``) or
  ``json`` (one JSON object a line, the context fields such as ``booking_id`` and
  ``connection_id`` as keys of their own).
- Routine chatter is demoted to DEBUG (``Demote``): beat sending its periodic ticks, the worker
  receiving and finishing them (calbook logs at INFO when a tick did something), uvicorn's
  startup and shutdown steps and alembic's bookkeeping. An idle service is silent at INFO.

Never log secrets: credentials and tokens are not put into ``extra`` anywhere in calbook. As a
net under that rule (docs/security.md#logs), every line passes ``RedactSecrets`` on its way
out, in every process: URLs lose their userinfo and their query strings (OAuth ``code`` and
``state``, feed tokens, signatures), and path segments that look like tokens (long random
strings, ``private-...`` feed keys) are masked. The HTTP client loggers (httpx, httpcore) are
kept at WARNING whatever the level, since their INFO line is the whole request URL.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
# Celery passes its whole message context (task args included) as ``extra={"data": ...}``.
_DROPPED = {"data"}
_BARE = re.compile(r"^[^\s=\"']+$")

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



def _context(record: logging.LogRecord, said: Iterable[str] = ()) -> dict[str, Any]:
    skip = set(said)
    return {
        k: v for k, v in record.__dict__.items()
        if k not in _STANDARD and k not in _DROPPED and k not in skip and not k.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


def _text_value(value: Any) -> str:
    text = str(value)
    return text if _BARE.match(text) else json.dumps(text, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-03-02T09:00:00.123Z INFO api calbook.bookings: booking created booking_id=... status=pending``.

    The fields are the time (UTC), the level, the process kind (``api``, ``worker``, ``beat``,
    ``serve``, or the command), the logger, the message, then the context as ``key=value``.
    """

    def __init__(self, process: str = "calbook") -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {self.process} {record.name}: {record.getMessage()}"
        # ``extra={"_said": (...)}`` names the fields the message already shows (the access log's).
        context = _context(record, getattr(record, "_said", ()))
        if context:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in sorted(context.items()))
        if record.exc_info:
            line += "\n" + (record.exc_text or self.formatException(record.exc_info))  # exc_text: redacted
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        # Continuation lines (a traceback, a multi-line warning) are indented: a line that starts
        # in the first column always starts a record.
        return line.rstrip("\n").replace("\n", "\n    ")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``process``, ``logger``, ``message``, then the context."""

    def __init__(self, process: str = "calbook") -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "process": self.process,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _context(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# Routine records, by logger: a message prefix (or, for Celery's task trace, the task name).
_UVICORN_ROUTINE = (
    "Started server process", "Waiting for application startup", "Application startup complete",
    "Waiting for application shutdown", "Application shutdown complete", "Finished server process",
    "Started parent process", "Stopping parent process", "Shutting down", "Uvicorn running on",
    "Terminated child process", "Waiting for child process",
)
_CELERY_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")  # "received", "succeeded"


class Demote(logging.Filter):
    """Turn routine INFO records into DEBUG ones, and drop them unless DEBUG is on.

    ``quiet_tasks`` names the tasks whose "received"/"succeeded" lines are routine: the periodic
    ticks of the beat schedule, which run every few seconds whether or not there is work.
    """

    def __init__(self, quiet_tasks: Iterable[str] = ()) -> None:
        super().__init__()
        self.quiet_tasks = frozenset(quiet_tasks)

    def _routine(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name == "celery.beat":
            return str(record.msg).startswith("Scheduler: Sending due task")
        if name in _CELERY_TASK_LOGGERS:
            context = record.args if isinstance(record.args, dict) else {}
            return context.get("name") in self.quiet_tasks
        if name == "celery.worker.request":  # a tick that expired in the queue: the next one is coming
            args = record.args if isinstance(record.args, tuple) else ()
            return str(record.msg).startswith("Discarding revoked task") and bool(args) and args[0] in self.quiet_tasks
        if name.startswith("uvicorn.error") or name == "uvicorn":
            return str(record.msg).startswith(_UVICORN_ROUTINE)
        return name.startswith("alembic")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def logging_config(
    level: str = "INFO", fmt: str = "text", process: str = "calbook", quiet_tasks: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary of a calbook process (picklable: uvicorn
    ships it to the worker processes it spawns)."""
    formatter = "config.logging.JsonFormatter" if fmt == "json" else "config.logging.TextFormatter"
    level = level.upper()
    propagate = {"handlers": [], "propagate": True, "level": "NOTSET"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"calbook": {"()": formatter, "process": process}},
        "filters": {
            "demote": {"()": "config.logging.Demote", "quiet_tasks": sorted(quiet_tasks)},
            "redact": {"()": "config.logging.RedactSecrets"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "calbook",
                       "filters": ["demote", "redact"]},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # Loggers that their libraries configure with handlers of their own: through ours instead.
            **{name: dict(propagate) for name in (
                "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "celery", "celery.task",
                "celery.redirected", "alembic", "kombu", "amqp",
            )},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }


def setup_logging(
    level: str = "INFO", fmt: str = "text", process: str = "calbook", quiet_tasks: Iterable[str] = (),
) -> None:
    logging.config.dictConfig(logging_config(level, fmt, process, quiet_tasks))
    logging.captureWarnings(True)
