"""Helpers shared by the service modules: the clock, parties, lengths of free text."""

from __future__ import annotations

from datetime import datetime

from booking_engine.clock import utcnow
from booking_engine.errors import Forbidden, NotFound, ValidationError
from booking_engine.model import Booking, BookingRequest, CancelledBy
from booking_engine.service_keys import Scope, ServiceKey

MAX_TEXT = 5000


def now_or(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()


def role_of(entity: Booking | BookingRequest | None, actor: str, what: str = "booking") -> CancelledBy:
    """The actor's side of a booking or request; strangers get ``not_found`` (docs/api.md#authorization)."""
    if entity is None:
        raise NotFound(f"{what} not found")
    if actor == entity.expert_id:
        return CancelledBy.EXPERT
    if actor == entity.user_id:
        return CancelledBy.USER
    raise NotFound(f"{what} not found")


def require_expert(role: CancelledBy, action: str) -> None:
    if role != CancelledBy.EXPERT:
        raise Forbidden(f"only the expert may {action}")


def require_user(role: CancelledBy, action: str) -> None:
    if role != CancelledBy.USER:
        raise Forbidden(f"only the user may {action}")


def require_scope(key: ServiceKey, scope: Scope, action: str) -> None:
    """403 unless the service key carries ``scope`` (docs/security.md#service-keys)."""
    if not key.allows(scope):
        raise Forbidden(f"the service key {key.name!r} may not {action}: it needs the scope {scope.value!r}")


def optional_text(value: object, field: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(f"{field} must be a string of at most {limit} characters", field=field)
    return value
