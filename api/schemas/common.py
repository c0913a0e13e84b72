"""Field types shared by every schema: safe strings, ids, instants, dates.

Why the extra care: PostgreSQL refuses NUL bytes and lone surrogates in text, ids are
``VARCHAR(64)``, and Python datetimes overflow near years 1 and 9999. Each of those would
surface as a database or arithmetic error deep in a service, that is, a 500. Refusing
them here turns every such input into a 422 ``validation_error``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

MIN_YEAR = 1970
MAX_YEAR = 2999
ID_PATTERN = r"^[^\u0000-\u001f\u007f/]{1,64}$"
MAX_ID_LENGTH = 64


def check_text(value: str) -> str:
    """Refuse text the database cannot store (NUL, lone surrogates)."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode") from exc
    return value


def check_id(value: str) -> str:
    check_text(value)
    if not 1 <= len(value) <= MAX_ID_LENGTH or any(ord(c) < 32 or ord(c) == 127 or c == "/" for c in value):
        raise ValueError(f"ids are 1 to {MAX_ID_LENGTH} printable characters")
    return value


_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _require_string(value: Any) -> Any:
    """Timestamps are ISO 8601 strings; refuse the numbers pydantic would read as epoch seconds,
    in a JSON body (``0.5``) and in a query string alike (``?to=0.5`` arrives as a string)."""
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError("must be an ISO 8601 date-time (YYYY-MM-DDTHH:MM...) with an offset or 'Z'")
    return value


def check_instant(value: datetime) -> datetime:
    """Normalise to UTC; refuse instants whose arithmetic could overflow."""
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("timestamp out of range") from exc
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"timestamp must lie between the years {MIN_YEAR} and {MAX_YEAR}")
    return utc


def check_day(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"date must lie between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


#: Documented, not enforced by a regex: ``check_text`` does that (and refuses lone surrogates too).
NO_NUL = {"pattern": "^[^\\u0000]*$"}

SafeStr = Annotated[str, AfterValidator(check_text), Field(json_schema_extra=NO_NUL)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN), AfterValidator(check_id)]
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_require_string),
    AfterValidator(check_instant),
    Field(
        description=(f"ISO 8601 date-time with an offset or 'Z' (a naive timestamp or an epoch number is "
                     f"refused), between the years {MIN_YEAR} and {MAX_YEAR} in UTC"),
        json_schema_extra={"format": "date-time", "x-minimum-year": MIN_YEAR, "x-maximum-year": MAX_YEAR},
    ),
]
Day = Annotated[
    date,
    AfterValidator(check_day),
    Field(description=f"YYYY-MM-DD, between the years {MIN_YEAR} and {MAX_YEAR}",
          json_schema_extra={"x-minimum-year": MIN_YEAR, "x-maximum-year": MAX_YEAR}),
]
UtcInstant = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="UTC, ending in 'Z'")]
LocalInstant = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="local, with offset")]
IsoDate = Annotated[str, Field(json_schema_extra={"format": "date"})]


class RequestModel(BaseModel):
    """A request body: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)


class ResponseModel(BaseModel):
    """A response body: camelCase on the wire, built from the domain's ``as_dict()``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
