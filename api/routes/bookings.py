"""``/v1/bookings``: create, list, read (JSON or iCalendar) and every lifecycle action.

A booking is visible to its user and its expert only; the services answer ``not_found``
to anyone else (docs/api.md#authorization), so a stranger cannot even learn that an id exists. Which side
may take which action (confirm: expert, cancel: both, ...) is decided by the services.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.auth import CurrentCaller, CurrentUser
from api.deps import ExternalCheckDep, StoreDep
from api.ics import booking_to_ics
from api.metrics import count_booking
from api.openapi import problem_responses
from api.routes.params import Cursor, FromInstant, Limit, ResourceId, Role, Statuses, ToInstant, split_statuses
from api.schemas.bookings import Booking, BookingCreate, BookingPage, Payment, Reason, Reschedule
from booking_engine.clock import utcnow
from booking_engine.errors import BookingError
from booking_engine.service_keys import ServiceKey
from booking_engine.services import bookings

router = APIRouter(prefix="/v1/bookings", tags=["bookings"], responses=problem_responses(401, 422))
_ONE = problem_responses(404)
_ACTION = problem_responses(403, 404, 409)


class IcsResponse(Response):
    media_type = "text/calendar"


@router.post("", status_code=201, response_model=Booking, responses=problem_responses(404, 409))
def create_booking(
    body: BookingCreate, user: CurrentUser, store: StoreDep, external_check: ExternalCheckDep
) -> JSONResponse:
    try:
        booking = bookings.create_booking(
            store, user.user_id, body.expert_id, body.start_time, body.duration_minutes, body.type,
            topic=body.topic, notes=body.notes, external_check=external_check,
        )
    except BookingError as refused:
        count_booking(refused.code)
        raise
    count_booking(str(booking.status))
    return JSONResponse(booking.as_dict(), status_code=201, headers={"Location": f"/v1/bookings/{booking.id}"})


@router.get("", response_model=BookingPage)
def list_bookings(
    user: CurrentUser,
    store: StoreDep,
    role: Role = "user",
    status: Statuses = None,
    start_from: FromInstant = None,
    start_to: ToInstant = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    items, next_cursor = bookings.list_bookings(
        store, user.user_id, role, split_statuses(status), start_from, start_to, cursor or None, limit
    )
    return {"items": [b.as_dict() for b in items], "nextCursor": next_cursor}


# Registered before ``/{booking_id}``, whose pattern would otherwise swallow the ``.ics``.
@router.get(
    "/{booking_id}.ics",
    response_class=IcsResponse,
    responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}, **_ONE},
)
def get_booking_ics(booking_id: ResourceId, user: CurrentUser, store: StoreDep) -> IcsResponse:
    booking = bookings.get_booking(store, user.user_id, booking_id)
    return IcsResponse(
        booking_to_ics(booking, utcnow()),
        headers={"Content-Disposition": f'attachment; filename="booking-{booking.id}.ics"'},
    )


@router.get("/{booking_id}", response_model=Booking, responses={**_ONE, **problem_responses(403)})
def get_booking(booking_id: ResourceId, caller: CurrentCaller, store: StoreDep) -> dict[str, Any]:
    """Its user or expert, or a service key with the scope ``bookings:read`` (docs/security.md#service-keys)."""
    if isinstance(caller, ServiceKey):
        return bookings.get_booking_for_key(store, caller, booking_id).as_dict()
    return bookings.get_booking(store, caller.user_id, booking_id).as_dict()


@router.post("/{booking_id}/confirm", response_model=Booking, responses=_ACTION)
def confirm_booking(booking_id: ResourceId, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return bookings.confirm_booking(store, user.user_id, booking_id).as_dict()


@router.post("/{booking_id}/decline", response_model=Booking, responses=_ACTION)
def decline_booking(booking_id: ResourceId, body: Reason, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return bookings.decline_booking(store, user.user_id, booking_id, body.reason).as_dict()


@router.post("/{booking_id}/cancel", response_model=Booking, responses=_ACTION)
def cancel_booking(booking_id: ResourceId, body: Reason, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return bookings.cancel_booking(store, user.user_id, booking_id, body.reason).as_dict()


@router.post("/{booking_id}/reschedule", response_model=Booking, responses=_ACTION)
def reschedule_booking(
    booking_id: ResourceId, body: Reschedule, user: CurrentUser, store: StoreDep
) -> dict[str, Any]:
    return bookings.reschedule_booking(store, user.user_id, booking_id, body.new_start_time).as_dict()


@router.post("/{booking_id}/payment", response_model=Booking, responses=_ACTION)
def record_payment(booking_id: ResourceId, body: Payment, caller: CurrentCaller, store: StoreDep) -> dict[str, Any]:
    """The payment back end, with a key of scope ``payments``: the booking is paid (idempotent per ``paymentId``)."""
    key = caller if isinstance(caller, ServiceKey) else None
    return bookings.record_payment(
        store, key, booking_id, body.payment_id, body.amount_cents, body.currency
    ).as_dict()


@router.post("/{booking_id}/no-show", response_model=Booking, responses=_ACTION)
def mark_no_show(booking_id: ResourceId, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return bookings.mark_no_show(store, user.user_id, booking_id).as_dict()
