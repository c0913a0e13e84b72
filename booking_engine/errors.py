"""Domain errors, each carrying the stable ``code`` of docs/api.md#errors and its HTTP status.

The HTTP layer maps every ``BookingError`` once, centrally, to problem+json; the worker
records them. Nothing here knows about HTTP beyond the number.
"""

from __future__ import annotations

from typing import Any, ClassVar


class BookingError(Exception):
    code: ClassVar[str] = "validation_error"
    status: ClassVar[int] = 422
    title: ClassVar[str] = "Invalid request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class ValidationError(BookingError):
    code = "validation_error"
    title = "The request is not valid"


class DurationTooShort(BookingError):
    code = "duration_too_short"
    title = "The duration is below the minimum"


class DurationTooLong(BookingError):
    code = "duration_too_long"
    title = "The duration is above the maximum"


class DurationNotMultipleOf15(BookingError):
    code = "duration_not_multiple_of_15"
    title = "The duration must be a multiple of 15 minutes"


class OutsideAvailability(BookingError):
    code = "outside_availability"
    title = "The time is outside the expert's availability"


class TooShortNotice(BookingError):
    code = "too_short_notice"
    title = "The start is too soon"


class BeyondAdvanceLimit(BookingError):
    code = "beyond_advance_limit"
    title = "The start is too far ahead"


class InThePast(BookingError):
    code = "in_the_past"
    title = "The time is in the past"


class SlotUnavailable(BookingError):
    code = "slot_unavailable"
    status = 409
    title = "The slot is no longer available"


class WithinBuffer(SlotUnavailable):
    """The time is free itself but closer to another booking or busy time than the expert's
    buffer allows: the same stable code, a detail that says why (docs/domain.md#conflicts-and-buffers)."""


class InvalidState(BookingError):
    code = "invalid_state"
    status = 409
    title = "The action is not allowed in the current state"


class PaymentRequired(InvalidState):
    """The expert confirms only a paid booking when the expert asks for payment (docs/lifecycle.md#payment-hold)."""

    code = "payment_required"
    title = "The booking is not paid yet"


class PaymentAmountMismatch(BookingError):
    code = "payment_amount_mismatch"
    title = "The payment does not cover the booking's price"


class ChangeWindowClosed(InvalidState):
    """Too close to the start for the user to cancel or reschedule (docs/lifecycle.md#change-cut-off)."""

    code = "change_window_closed"
    title = "The booking can no longer be changed by the user"


class RescheduleLimitReached(InvalidState):
    code = "reschedule_limit_reached"
    title = "The booking was rescheduled as often as the expert allows"


class BookingLimitReached(InvalidState):
    """The expert's day or ISO week holds as many bookings as they take (docs/domain.md#booking-limits)."""

    code = "booking_limit_reached"
    title = "The expert takes no more bookings that day or week"


class PreconditionFailed(BookingError):
    code = "precondition_failed"
    status = 412
    title = "The resource was changed by someone else"


class Unauthenticated(BookingError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(BookingError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class NotFound(BookingError):
    code = "not_found"
    status = 404
    title = "Not found"


class TooManyRequests(BookingError):
    """Too much under way at once for this caller; ``retry_after`` (seconds) says when to try again."""

    code = "too_many_requests"
    status = 429
    title = "Too many requests"


class FeatureDisabled(NotFound):
    """A provider this server is not configured for (no Google OAuth client): it does not exist here."""

    title = "Not available on this server"


class CalendarUnreachable(BookingError):
    """The calendar server did not answer, or failed (5xx, 429): try again later."""

    code = "calendar_unreachable"
    status = 502
    title = "The calendar server could not be reached"


class AuthorizationFailed(BookingError):
    """The provider's authorization did not complete (declined, a bad code, missing scopes):
    the expert starts connecting again. A 400, as every problem of the OAuth callback is."""

    code = "validation_error"
    status = 400
    title = "The authorization failed"


class AuthorizationDeclined(AuthorizationFailed):
    title = "The authorization was not granted"


class ScopesMissing(AuthorizationFailed):
    title = "The required permissions were not granted"


class ProviderRefused(BookingError):
    """The provider refused a request calbook made on the expert's behalf."""

    code = "bad_gateway"
    status = 502
    title = "The provider refused the request"


class ProviderUnavailable(BookingError):
    """The provider (or its OAuth server) is unavailable right now; ``retry_after`` says when to try again."""

    code = "service_unavailable"
    status = 503
    title = "The service is unavailable"


ALL_ERRORS: tuple[type[BookingError], ...] = (
    ValidationError,
    DurationTooShort,
    DurationTooLong,
    DurationNotMultipleOf15,
    OutsideAvailability,
    TooShortNotice,
    BeyondAdvanceLimit,
    InThePast,
    SlotUnavailable,
    WithinBuffer,
    InvalidState,
    PaymentRequired,
    PaymentAmountMismatch,
    ChangeWindowClosed,
    RescheduleLimitReached,
    BookingLimitReached,
    PreconditionFailed,
    Unauthenticated,
    Forbidden,
    NotFound,
    TooManyRequests,
    CalendarUnreachable,
    AuthorizationFailed,
    AuthorizationDeclined,
    ScopesMissing,
    ProviderRefused,
    ProviderUnavailable,
)
