"""Bookings on the wire: the create body, lifecycle bodies, and the booking of docs/api.md#endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt

from api.schemas.common import Id, Instant, RequestModel, ResponseModel, SafeStr, UtcInstant

BookingTypeName = Literal["video_call", "audio_call", "in_person"]
BookingStatusName = Literal["pending", "confirmed", "cancelled", "completed", "no_show"]


class BookingCreate(RequestModel):
    """``POST /v1/bookings``: always for the caller; there is no ``userId`` to set."""

    expert_id: Id
    start_time: Instant
    duration_minutes: StrictInt
    type: BookingTypeName
    topic: Annotated[SafeStr, Field(max_length=500)] | None = None
    notes: Annotated[SafeStr, Field(max_length=5000)] | None = None


class Reason(RequestModel):
    """Body of ``/cancel`` and ``/decline``; the reason is required (docs/lifecycle.md#cancel-and-refunds)."""

    reason: Annotated[SafeStr, Field(min_length=1, max_length=1000)]


class Reschedule(RequestModel):
    new_start_time: Instant


class Payment(RequestModel):
    """``POST /v1/bookings/{id}/payment`` by the payment back end (docs/lifecycle.md#payment-hold)."""

    payment_id: Annotated[SafeStr, Field(min_length=1, max_length=200)]
    amount_cents: Annotated[StrictInt, Field(ge=0, le=10**12)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Booking(ResponseModel):
    id: str
    expert_id: str
    user_id: str
    start_time: UtcInstant
    end_time: UtcInstant
    duration_minutes: int
    status: BookingStatusName
    type: BookingTypeName
    topic: str | None
    notes: str | None
    price_cents: int
    currency: str
    payment_id: str | None
    payment_status: Literal["not_required", "awaiting_payment", "paid", "unpaid"]
    payment_due_at: UtcInstant | None
    paid_at: UtcInstant | None
    refund_cents: int | None
    reschedule_count: int
    created_at: UtcInstant
    confirmed_at: UtcInstant | None
    cancelled_at: UtcInstant | None
    cancellation_reason: str | None
    cancelled_by: Literal["user", "expert", "system"] | None
    has_conflict: bool


class BookingPage(ResponseModel):
    items: list[Booking]
    next_cursor: str | None
