"""Booking requests (docs/lifecycle.md#booking-requests): a user proposes up to five times, the expert picks one.

Proposed slots do not block availability; acceptance creates a confirmed booking,
validated like any other booking at that moment (the service layer does that part).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from booking_engine.errors import InThePast, InvalidState, ValidationError
from booking_engine.model import BookingRequest, BookingType, ProposedSlot, RequestStatus, new_id

DEFAULT_EXPIRY = timedelta(hours=48)
MAX_PROPOSED = 5
MAX_MESSAGE_LENGTH = 2000


def _message(message: str | None, field_name: str = "message") -> str | None:
    if message is None:
        return None
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_LENGTH:
        raise ValidationError(f"{field_name} is a string of at most {MAX_MESSAGE_LENGTH} characters", field=field_name)
    return message


def new_request(
    expert_id: str,
    user_id: str,
    duration: int,
    booking_type: BookingType,
    starts: list[datetime],
    message: str | None,
    now: datetime,
) -> BookingRequest:
    if not 1 <= len(starts) <= MAX_PROPOSED:
        raise ValidationError(f"propose between 1 and {MAX_PROPOSED} slots", field="proposedSlots")
    if len(set(starts)) != len(starts):
        raise ValidationError("proposed slots must differ", field="proposedSlots")
    for start in starts:
        if start <= now:
            raise InThePast("a proposed slot is in the past", field="proposedSlots")
    request = BookingRequest(
        id=new_id(),
        expert_id=expert_id,
        user_id=user_id,
        duration=duration,
        type=booking_type,
        proposed=tuple(ProposedSlot(s) for s in starts),
        status=RequestStatus.PENDING,
        created_at=now,
        expires_at=min(now + DEFAULT_EXPIRY, min(starts)),
        message=_message(message),
    )
    request.record("booking_request.created")
    return request


def _require_open(request: BookingRequest, now: datetime, action: str) -> None:
    if request.status != RequestStatus.PENDING:
        raise InvalidState(f"cannot {action} a {request.status} request", status=str(request.status))
    if request.expires_at <= now:
        raise InvalidState(f"cannot {action} an expired request", status="expired")


def chosen_start(request: BookingRequest, slot_index: int | None, now: datetime) -> datetime:
    _require_open(request, now, "accept")
    if isinstance(slot_index, bool) or not isinstance(slot_index, int):
        raise ValidationError("slotIndex is required to accept", field="slotIndex")
    if not 0 <= slot_index < len(request.proposed):
        raise ValidationError("slotIndex does not name a proposed slot", field="slotIndex")
    return request.proposed[slot_index].start


def accept(request: BookingRequest, slot_index: int, booking_id: str, message: str | None, now: datetime) -> None:
    request.status = RequestStatus.ACCEPTED
    request.accepted_index = slot_index
    request.booking_id = booking_id
    request.response_message = _message(message)
    request.responded_at = now
    request.version += 1
    request.record("booking_request.accepted")


def reject(request: BookingRequest, message: str | None, now: datetime) -> None:
    _require_open(request, now, "reject")
    request.status = RequestStatus.REJECTED
    request.response_message = _message(message)
    request.responded_at = now
    request.version += 1
    request.record("booking_request.rejected")


def withdraw(request: BookingRequest, now: datetime) -> None:
    if request.status != RequestStatus.PENDING:
        raise InvalidState(f"cannot withdraw a {request.status} request", status=str(request.status))
    request.status = RequestStatus.WITHDRAWN
    request.responded_at = now
    request.version += 1
    request.record("booking_request.withdrawn")


def expire(request: BookingRequest, now: datetime) -> None:
    if request.status != RequestStatus.PENDING or request.expires_at > now:
        raise InvalidState("only a pending request past its expiry expires")
    request.status = RequestStatus.EXPIRED
    request.version += 1
    request.record("booking_request.expired")
