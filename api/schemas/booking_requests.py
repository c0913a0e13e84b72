"""Booking requests on the wire (docs/lifecycle.md#booking-requests)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt

from api.schemas.bookings import BookingTypeName
from api.schemas.common import Id, Instant, RequestModel, ResponseModel, SafeStr, UtcInstant


class ProposedSlotIn(RequestModel):
    start_time: Instant


class BookingRequestCreate(RequestModel):
    expert_id: Id
    requested_duration_minutes: StrictInt
    type: BookingTypeName
    proposed_slots: Annotated[list[ProposedSlotIn], Field(min_length=1, max_length=5)]
    message: Annotated[SafeStr, Field(max_length=2000)] | None = None


class RequestResponse(RequestModel):
    """Body of ``/respond``: accept one proposed slot by index, or reject."""

    accept: StrictBool
    slot_index: StrictInt | None = None
    message: Annotated[SafeStr, Field(max_length=2000)] | None = None


class ProposedSlot(ResponseModel):
    start_time: UtcInstant
    end_time: UtcInstant


class BookingRequest(ResponseModel):
    id: str
    expert_id: str
    user_id: str
    requested_duration_minutes: int
    type: BookingTypeName
    proposed_slots: list[ProposedSlot]
    message: str | None
    status: Literal["pending", "accepted", "rejected", "expired", "withdrawn"]
    created_at: UtcInstant
    expires_at: UtcInstant
    responded_at: UtcInstant | None
    response_message: str | None
    accepted_slot_index: int | None
    booking_id: str | None


class BookingRequestPage(ResponseModel):
    items: list[BookingRequest]
    next_cursor: str | None
