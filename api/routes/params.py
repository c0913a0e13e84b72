"""Path and query parameter types shared by the routers."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from api.schemas.common import ID_PATTERN, MAX_ID_LENGTH, Day, Instant
from booking_engine.errors import ValidationError
from booking_engine.timeutil import zone


def _known_zone(name: str | None) -> str | None:
    """Checked here, so that an unknown zone is reported under the parameter the client sent (``tz``)."""
    if name is None:
        return None
    try:
        zone(name)
    except ValidationError:
        raise PydanticCustomError(
            "unknown_timezone", "unknown timezone '{name}': use an IANA name such as Europe/Berlin", {"name": name},
        ) from None
    return name


ExpertId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
ResourceId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
PathDay = Annotated[Day, Path(description="A local date, YYYY-MM-DD")]
FromInstant = Annotated[Instant | None, Query(alias="from")]
ToInstant = Annotated[Instant | None, Query(alias="to")]
Role = Annotated[Literal["user", "expert"], Query(alias="as", description="List as the booking's user or expert")]
Statuses = Annotated[
    list[str] | None,
    Query(alias="status", description="Repeat the parameter or separate statuses by commas"),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$")]
Timezone = Annotated[
    str | None, Query(max_length=64, description="IANA timezone (default: the expert's)"), AfterValidator(_known_zone),
]


def split_statuses(values: list[str] | None) -> list[str] | None:
    """``?status=a&status=b`` and ``?status=a,b`` mean the same."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()] or None
