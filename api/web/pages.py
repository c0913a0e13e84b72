"""The booking pages: server-rendered HTML over the same service functions the API calls.

Each route reads the session (``api.web.session``), calls one or a few functions of
``booking_engine.services`` and renders a template; a form post checks the CSRF token, calls the
service and redirects (303) to a page that shows the outcome. No business rule lives here: slots,
"booked", the month view, prices, refunds and every check come from the services and the engine
(docs/web.md). A domain error becomes an HTML page with the error in words, never a stack trace
or a JSON document; a slot taken meanwhile brings back the slot picker with fresh slots.
"""

from __future__ import annotations

import calendar as month_calendar
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from api import conditional
from api.deps import get_accounts, get_external_check, get_tasks
from api.ics import booking_to_ics
from api.routes.google import OAUTH_RETURN_COOKIE as RETURN_COOKIE
from api.web.render import Page, page_headers
from api.web.session import (
    PRE_COOKIE,
    TZ_COOKIE,
    CSRFRejected,
    SignInRequired,
    Viewer,
    check_csrf,
    clear_session,
    link_lifetime,
    require_viewer,
    safe_next,
    set_session,
)
from booking_engine import availability as engine
from booking_engine import policies
from booking_engine.clock import utcnow
from booking_engine.errors import BookingError, PreconditionFailed, ValidationError
from booking_engine.model import WEEKDAYS, Booking, BookingStatus, BookingType, RequestStatus
from booking_engine.services import availability, booking_requests, bookings, calendar_feeds, connections, users
from booking_engine.store.db import Store
from booking_engine.timeutil import iana_names, iso_z, zone
from config.version import VERSION
from connectors.url_policy import UnsafeURL

log = logging.getLogger("api.web")

#: A booking that fails for one of these is a slot gone since the page was shown: the picker comes
#: back with a message and fresh slots instead of an error page.
SLOT_GONE = {"slot_unavailable", "outside_availability", "in_the_past", "too_short_notice", "beyond_advance_limit",
             "booking_limit_reached"}
DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                     strict=True))
MAX_FORM_BYTES = 64_000


class PageRoute(APIRoute):
    """A page route: domain errors and bad parameters become HTML pages (the API's handlers answer JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)
            except CSRFRejected:
                return Page(request).response("error.html", 403, title="The form has expired",
                                              detail="The form was not sent from this page or has expired. "
                                                     "Go back, reload the page and try again.")
            except RequestValidationError as exc:
                detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
                return Page(request).response("error.html", 422, title="That address is not valid", detail=detail)
            except BookingError as exc:
                return Page(request).response("error.html", exc.status, title=exc.title, detail=exc.detail)

        return page_handler


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


async def _form(request: Request, viewer: Viewer | None) -> dict[str, list[str]]:
    """The url-encoded form, its CSRF token checked against the session's."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationError("the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=500)
    check_csrf(viewer.csrf if viewer else request.cookies.get(PRE_COOKIE, ""), _one(fields, "csrf"))
    return fields


def _one(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[0].strip() if values else ""


def _see(path: str, **query: str) -> RedirectResponse:
    target = path + ("?" + urlencode(query) if query else "")
    return RedirectResponse(target, status_code=303, headers=page_headers())


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD)", field="date") from exc


def _parse_instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError("the time is not valid", field="start") from exc
    if value.tzinfo is None:
        raise ValidationError("the time has no offset", field="start")
    return value


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise ValidationError(f"{name} must be a whole number", field=name) from exc


# -- sign-in ------------------------------------------------------------------------------------


@router.get("/")
def home() -> Response:
    return _see("/experts")


@router.get("/login")
def login(request: Request, token: str | None = None, next: str | None = None) -> Response:
    """A sign-in link (``?token=``) starts a session; without one, how to get a link (or the dev form)."""
    page = Page(request)
    if token:
        try:
            principal = request.app.state.verifier.verify(token)
        except BookingError as exc:
            return page.response("login.html", 401, error=f"This sign-in link is not valid: {exc.detail}.",
                                 next=safe_next(next))
        settings = request.app.state.settings
        if link_lifetime(principal.claims, time.time()) > settings.web_login_link_max_seconds + 30:
            return page.response("login.html", 401, next=safe_next(next), error=(
                "This link lives too long to be a sign-in link; ask for a new one "
                f"(at most {settings.web_login_link_max_seconds // 60} minutes)."))
        response = _see(safe_next(next))
        set_session(response, settings, principal.user_id)
        log.info("signed in to the pages", extra={"user_id": principal.user_id})
        return response
    response = page.response("login.html", next=safe_next(next), signed_out=request.query_params.get("out") == "1")
    if request.app.state.settings.web_dev_login:
        import secrets

        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
        response = page.response("login.html", next=safe_next(next), pre_csrf=pre)
        response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict", max_age=3600)
    return response


@router.post("/login/dev")
async def login_dev(request: Request) -> Response:
    """Development only (``CALBOOK_WEB_DEV_LOGIN=true``): sign in as any user id."""
    if not request.app.state.settings.web_dev_login:
        return Page(request).response("error.html", 404, title="Not found", detail="There is no such page.")
    fields = await _form(request, None)
    from api.schemas.common import check_id

    try:
        user_id = check_id(_one(fields, "user"))
    except ValueError:
        return Page(request).response("login.html", 422, error="A user id is 1 to 64 printable characters.",
                                      pre_csrf=request.cookies.get(PRE_COOKIE), next="/experts")
    response = _see(safe_next(_one(fields, "next")))
    set_session(response, request.app.state.settings, user_id)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer = require_viewer(request)
    await _form(request, viewer)
    response = _see("/login", out="1")
    clear_session(response)
    return response


@router.get("/timezone")
def timezone_page(request: Request) -> Response:
    page = Page(request, require_viewer(request))
    return page.response("timezone.html", zones=sorted(iana_names()), back=safe_next(request.query_params.get("next")))


@router.post("/timezone")
async def set_timezone(request: Request) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    name = _one(fields, "tz")
    zone(name)  # validation_error for a name that is no IANA zone
    response = _see(safe_next(_one(fields, "next")))
    response.set_cookie(TZ_COOKIE, name, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


# -- finding an expert, the month, the day --------------------------------------------------------


@router.get("/experts")
def experts_page(request: Request, cursor: str | None = None) -> Response:
    viewer = require_viewer(request)
    items, next_cursor = users.list_experts(_store(request), cursor, 20)
    return Page(request, viewer).response("experts.html", experts=items, next_cursor=next_cursor)


def revalidate(request: Request, page: Page, expert_id: str) -> tuple[str | None, datetime, Response | None]:
    """The ETag of a month or day page, the minute it is computed for, and a 304 when the browser's
    copy is current. The tag names what the page shows: the expert's version, the address, the
    viewer and their session (the forms carry its CSRF token), their timezone, the minute
    (api/conditional.py) and the release (templates change with it)."""
    moment = conditional.answer_time()
    version = conditional.read_version(_store(request), expert_id)
    if version is None or page.viewer is None:
        return None, moment, None
    tag = conditional.make_etag(version, "page", VERSION, request.url.path, request.url.query, page.viewer.user_id,
                                page.viewer.csrf, page.tz_name, request.cookies.get(TZ_COOKIE) is not None, moment)
    if conditional.none_match(request.headers.get("if-none-match"), tag):
        return tag, moment, Response(status_code=304, headers=page_headers(tag))
    return tag, moment, None


def _month_weeks(year: int, month: int) -> list[list[date | None]]:
    weeks = month_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
    return [[d if d.month == month else None for d in week] for week in weeks]


@router.get("/experts/{expert_id}")
def month_page(request: Request, expert_id: str, month: str | None = None) -> Response:
    viewer = require_viewer(request)
    page = Page(request, viewer)
    store = _store(request)
    expert = users.get_expert(store, expert_id)
    tag, moment, unchanged = revalidate(request, page, expert_id)
    if unchanged is not None:
        return unchanged
    if month:
        try:
            year, number = (int(part) for part in month.split("-", 1))
        except ValueError as exc:
            raise ValidationError("month must be YYYY-MM", field="month") from exc
    else:
        year, number = page.today.year, page.today.month
    days = dict(availability.get_month(store, expert_id, year, number, page.tz_name, now=moment,
                                       asked_by=viewer.user_id))
    first = date(year, number, 1)
    previous = (first - timedelta(days=1)).strftime("%Y-%m")
    following = (first + timedelta(days=32)).strftime("%Y-%m")
    return page.response("month.html", etag=tag, expert=expert, days=days, weeks=_month_weeks(year, number),
                         first=first, previous=previous, following=following, day_names=list(DAY_NAMES.values()))


def _groups(slots: list[engine.Slot], page: Page) -> list[tuple[str, list[engine.Slot]]]:
    groups: dict[str, list[engine.Slot]] = {"Morning": [], "Afternoon": [], "Evening": []}
    for slot in slots:
        hour = slot.start.astimezone(page.tz).hour
        groups["Morning" if hour < 12 else "Afternoon" if hour < 17 else "Evening"].append(slot)
    return [(name, found) for name, found in groups.items() if found]


def _day_response(
    request: Request, viewer: Viewer, expert_id: str, day: date, duration: int | None, reschedule: str | None,
    *, message: str | None = None, status_code: int = 200, revalidating: bool = False,
) -> Response:
    """``revalidating``: a plain GET of the page, which may be a 304 (``revalidate``)."""
    page = Page(request, viewer)
    store = _store(request)
    expert = users.get_expert(store, expert_id)
    tag, moment, unchanged = revalidate(request, page, expert_id) if revalidating else (None, utcnow(), None)
    if unchanged is not None:
        return unchanged
    settings = availability.get_availability(store, expert_id, asked_by=viewer.user_id)
    moving = None
    if reschedule:
        moving = bookings.get_booking(store, viewer.user_id, reschedule)  # not_found unless it is the viewer's
        duration = moving.duration
    low = engine.minimum_duration(settings)
    durations = list(range(low, settings.max_duration + 1, 15))
    chosen = duration if duration is not None else low
    found = availability.get_slots(store, expert_id, day, chosen, page.tz_name, moment, asked_by=viewer.user_id,
                                   exclude_booking=moving.id if moving else None)
    return page.response(
        "day.html", status_code, etag=tag, expert=expert, day=day, durations=durations, duration=chosen,
        groups=_groups(found.slots, page), moving=moving, message=message, iso_z=iso_z, quote=quote,
        previous=day - timedelta(days=1), following=day + timedelta(days=1),
    )


@router.get("/experts/{expert_id}/{day}")
def day_page(
    request: Request, expert_id: str, day: str, duration: int | None = None, reschedule: str | None = None,
) -> Response:
    viewer = require_viewer(request)
    return _day_response(request, viewer, expert_id, _parse_day(day), duration, reschedule, revalidating=True)


def _refund_policy_words(settings: Any) -> list[str]:
    """The user's cancellation policy in words (``booking_engine.policies``): the confirm page and the cancel page."""
    full = int(policies.FULL_REFUND_BEFORE.total_seconds() // 3600)
    half = int(policies.HALF_REFUND_BEFORE.total_seconds() // 3600)
    words = [f"Free cancellation until {full} hours before the start.",
             f"50% refund if you cancel until {half} hours before.",
             f"No refund less than {half} hours before."]
    if settings.change_cutoff_minutes:
        words.append(f"No changes or cancellations in the last {duration_words(settings.change_cutoff_minutes)}.")
    return words


def _policy_words(settings: Any) -> list[str]:
    words = _refund_policy_words(settings)
    if settings.payment_required:
        words.append(f"The booking is held for {settings.payment_hold_minutes} minutes until it is paid.")
    return words


def duration_words(minutes: int) -> str:
    return f"{minutes // 60} hours" if minutes % 60 == 0 else f"{minutes} minutes"


def _confirm_response(
    request: Request, viewer: Viewer, expert_id: str, day: date, start: datetime, duration: int,
    *, error: str | None = None, values: dict[str, str] | None = None, status_code: int = 200,
) -> Response:
    store = _store(request)
    expert = users.get_expert(store, expert_id)
    settings = availability.get_availability(store, expert_id, asked_by=viewer.user_id)
    engine.validate_duration(settings, duration)
    return Page(request, viewer).response(
        "confirm.html", status_code, expert=expert, day=day, start=start, duration=duration,
        end=start + timedelta(minutes=duration), price=engine.price_cents(settings.hourly_rate_cents, duration),
        currency=settings.currency, policy=_policy_words(settings), auto_confirm=settings.auto_confirm,
        types=[t.value for t in BookingType], start_z=iso_z(start), error=error, values=values or {},
    )


@router.get("/experts/{expert_id}/{day}/confirm")
def confirm_page(request: Request, expert_id: str, day: str, start: str, duration: int) -> Response:
    viewer = require_viewer(request)
    return _confirm_response(request, viewer, expert_id, _parse_day(day), _parse_instant(start), duration)


@router.post("/experts/{expert_id}/book")
async def book(request: Request, expert_id: str) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    start = _parse_instant(_one(fields, "start"))
    duration = _int(_one(fields, "duration"), "duration")
    page = Page(request, viewer)
    day = start.astimezone(page.tz).date()
    values = {k: _one(fields, k) for k in ("type", "topic", "notes")}
    try:
        created = bookings.create_booking(
            _store(request), viewer.user_id, expert_id, start, duration, values["type"],
            values["topic"] or None, values["notes"] or None, external_check=await get_external_check(request),
        )
    except BookingError as exc:
        if exc.code in SLOT_GONE:
            log.info("booking from the pages refused: slot gone", extra={"expert_id": expert_id, "code": exc.code})
            return _day_response(request, viewer, expert_id, day, duration, None, status_code=409, message=(
                "Sorry, that time is no longer available (someone else may have just booked it). "
                "Here are the times that are still free."))
        return _confirm_response(request, viewer, expert_id, day, start, duration, error=exc.detail,
                                 values=values, status_code=exc.status)
    return _see(f"/bookings/{created.id}", new="1")


# -- my bookings ----------------------------------------------------------------------------------


def _active(booking: Booking) -> bool:
    """Still ahead and not ended by anyone: the pages offer to reschedule or cancel it (the service decides)."""
    return booking.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED) and booking.start > utcnow()


def _bookings_response(request: Request, viewer: Viewer, **extra: Any) -> Response:
    """"My bookings": upcoming (each active one with its "Cancel…"), requests (a pending one with
    its "Withdraw…"), past, the calendar feed."""
    store = _store(request)
    mine, _ = bookings.list_bookings(store, viewer.user_id, "user", limit=200)
    requests, _ = booking_requests.list_requests(store, viewer.user_id, "user", limit=200)
    now = utcnow()
    names = {b.expert_id: _name(store, b.expert_id) for b in mine}
    names.update({r.expert_id: _name(store, r.expert_id) for r in requests})
    notices = {"withdrawn": "The request was withdrawn."}
    return Page(request, viewer).response(
        "bookings.html", upcoming=[b for b in mine if b.end > now],
        past=sorted((b for b in mine if b.end <= now), key=lambda b: b.start, reverse=True), requests=requests,
        names=names, cancellable={b.id for b in mine if _active(b)}, pending=RequestStatus.PENDING,
        notice=notices.get(request.query_params.get("done", "")), **({"feed_url": None} | extra),
    )


@router.get("/bookings")
def bookings_page(request: Request) -> Response:
    return _bookings_response(request, require_viewer(request))


def _name(store: Store, user_id: str) -> str:
    profile = users.get_profile(store, user_id)
    return str(profile["displayName"] or user_id)


@router.post("/calendar-feed")
async def calendar_feed(request: Request) -> Response:
    """"Add to my calendar": a subscribable feed of all the viewer's bookings (a new secret URL each time)."""
    viewer = require_viewer(request)
    await _form(request, viewer)
    token = calendar_feeds.rotate_feed(_store(request), viewer.user_id)
    base = request.app.state.settings.public_base_url.rstrip("/")
    url = f"{base}/v1/calendar-feeds/{token}.ics"
    return _bookings_response(request, viewer, feed_url=url, webcal_url="webcal://" + url.split("://", 1)[1])


@router.get("/bookings/{booking_id}")
def booking_page(request: Request, booking_id: str) -> Response:
    viewer = require_viewer(request)
    store = _store(request)
    booking = bookings.get_booking(store, viewer.user_id, booking_id)
    page = Page(request, viewer)
    return page.response(
        "booking.html", booking=booking, expert_name=_name(store, booking.expert_id),
        user_name=_name(store, booking.user_id), is_user=booking.user_id == viewer.user_id, active=_active(booking),
        local_day=booking.start.astimezone(page.tz).date().isoformat(), query=request.query_params,
    )


@router.get("/bookings/{booking_id}/calendar.ics")
def booking_ics(request: Request, booking_id: str) -> Response:
    viewer = require_viewer(request)
    booking = bookings.get_booking(_store(request), viewer.user_id, booking_id)
    return Response(booking_to_ics(booking, utcnow()), media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="booking-{booking.id}.ics"'})


def _seen_version(fields: dict[str, list[str]]) -> int:
    """The version the form was made from. The service checks it under its row lock: if the thing
    changed since (another tab, the other party), the page shows it as it is now instead of acting
    on what the viewer saw (docs/web.md#versions)."""
    return _int(_one(fields, "version"), "version")


STALE = "It changed since this page was shown (in another window, or by the other party); here it is as it is now."


def _cancel_response(request: Request, viewer: Viewer, booking_id: str, status_code: int = 200,
                     error: str | None = None, reason: str = "") -> Response:
    """The confirmation step: the refund cancelling now would give (``bookings.cancellation_preview``,
    the same ``lifecycle.refund_due`` the cancel applies) and, for the user, the policy behind it."""
    store = _store(request)
    booking, refund = bookings.cancellation_preview(store, viewer.user_id, booking_id)
    is_user = booking.user_id == viewer.user_id
    policy = _refund_policy_words(availability.get_availability(store, booking.expert_id)) if is_user else []
    return Page(request, viewer).response("cancel.html", status_code, booking=booking, refund=refund, error=error,
                                          policy=policy, reason=reason, active=_active(booking))


@router.get("/bookings/{booking_id}/cancel")
def cancel_page(request: Request, booking_id: str) -> Response:
    return _cancel_response(request, require_viewer(request), booking_id)


@router.post("/bookings/{booking_id}/cancel")
async def cancel(request: Request, booking_id: str) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    store = _store(request)
    reason = _one(fields, "reason")
    seen = _seen_version(fields)
    try:
        bookings.cancel_booking(store, viewer.user_id, booking_id, reason or None, expected_version=seen)
    except PreconditionFailed:
        return _cancel_response(request, viewer, booking_id, 409, STALE + " Cancel again if you still want to.", reason)
    except BookingError as exc:
        return _cancel_response(request, viewer, booking_id, exc.status, exc.detail, reason)
    return _see(f"/bookings/{booking_id}", cancelled="1")


def _withdraw_response(request: Request, viewer: Viewer, request_id: str, status_code: int = 200,
                       error: str | None = None) -> Response:
    """The confirmation step of withdrawing a booking request (``not_found`` unless it is the viewer's)."""
    store = _store(request)
    asked = booking_requests.get_request(store, viewer.user_id, request_id)
    return Page(request, viewer).response("withdraw.html", status_code, asked=asked, error=error,
                                          expert_name=_name(store, asked.expert_id),
                                          pending=asked.status == RequestStatus.PENDING,
                                          is_user=asked.user_id == viewer.user_id)


@router.get("/bookings/requests/{request_id}/withdraw")
def withdraw_page(request: Request, request_id: str) -> Response:
    return _withdraw_response(request, require_viewer(request), request_id)


@router.post("/bookings/requests/{request_id}/withdraw")
async def withdraw(request: Request, request_id: str) -> Response:
    """The user withdraws a pending request: ``booking_requests.withdraw_request``, as ``POST
    /v1/booking-requests/{id}/withdraw`` does."""
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    store = _store(request)
    seen = _seen_version(fields)
    try:
        booking_requests.withdraw_request(store, viewer.user_id, request_id, expected_version=seen)
    except PreconditionFailed:
        return _withdraw_response(request, viewer, request_id, 409, STALE)
    except BookingError as exc:
        return _withdraw_response(request, viewer, request_id, exc.status, exc.detail)
    return _see("/bookings", done="withdrawn")


@router.post("/bookings/{booking_id}/reschedule")
async def reschedule(request: Request, booking_id: str) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    store = _store(request)
    start = _parse_instant(_one(fields, "start"))
    try:
        moved = bookings.reschedule_booking(store, viewer.user_id, booking_id, start)
    except BookingError as exc:
        if exc.code not in SLOT_GONE:
            raise
        booking = bookings.get_booking(store, viewer.user_id, booking_id)
        day = start.astimezone(Page(request, viewer).tz).date()
        return _day_response(request, viewer, booking.expert_id, day, booking.duration, booking_id, status_code=409,
                             message="Sorry, that time is no longer available. Here are the times still free.")
    return _see(f"/bookings/{moved.id}", rescheduled="1")


# -- the expert's schedule --------------------------------------------------------------------------


def _weekly_of(settings: Any) -> dict[str, dict[str, Any]]:
    return {day: {"available": s.is_available, "windows": [w.as_dict() for w in s.windows]}
            for day, s in settings.weekly.items()}


def _schedule_response(
    request: Request, viewer: Viewer, *, status_code: int = 200, errors: dict[str, str] | None = None,
    weekly: dict[str, dict[str, Any]] | None = None, values: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    store = _store(request)
    settings = availability.get_availability(store, viewer.user_id, asked_by=viewer.user_id)
    page = Page(request, viewer)
    today = page.today
    exceptions = availability.list_exceptions(store, viewer.user_id, today - timedelta(days=1),
                                              today + timedelta(days=366), asked_by=viewer.user_id)
    pending, _ = bookings.list_bookings(store, viewer.user_id, "expert", statuses=["pending"], limit=200)
    upcoming, _ = bookings.list_bookings(store, viewer.user_id, "expert", statuses=["confirmed"],
                                         start_from=utcnow(), limit=50)
    requests, _ = booking_requests.list_requests(store, viewer.user_id, "expert", statuses=["pending"], limit=200)
    linked = connections.list_connections(store, viewer.user_id)
    profile = users.get_profile(store, viewer.user_id)
    notices = {"saved": "Saved.", "connected": "The calendar is connected; its busy time is being imported.",
               "google": "Google Calendar is connected; its busy time is being imported.",
               "sync": "A sync was asked for.", "disconnected": "The calendar was disconnected.",
               "confirmed": "The booking is confirmed.", "declined": "The booking was declined.",
               "accepted": "The request was accepted.", "rejected": "The request was rejected."}
    query_notice = notices.get(request.query_params.get("done", ""))
    google_error = request.query_params.get("google_error")
    return page.response(
        "schedule.html", status_code, settings=settings, weekly=weekly or _weekly_of(settings),
        day_names=DAY_NAMES, exceptions=exceptions, pending=pending, upcoming=upcoming, requests=requests,
        connections=linked, errors=errors or {}, values=values or {}, profile=profile,
        notice=notice or query_notice, google_error=google_error,
        google_enabled=bool(request.app.state.settings.google_client_id),
        names={b.user_id: _name(store, b.user_id) for b in [*pending, *upcoming]} | {
            r.user_id: _name(store, r.user_id) for r in requests},
    )


@router.get("/schedule")
def schedule_page(request: Request) -> Response:
    viewer = require_viewer(request)
    return _schedule_response(request, viewer)


def _field_error(exc: BookingError) -> tuple[str, str]:
    return str(exc.extra.get("field") or ""), exc.detail


@router.post("/schedule/weekly")
async def save_weekly(request: Request) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    weekly: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for day in WEEKDAYS:
        windows = []
        starts, ends = fields.get(f"{day}-start", []), fields.get(f"{day}-end", [])
        removed = set(fields.get(f"{day}-remove", []))
        for index, (start, end) in enumerate(zip(starts, ends, strict=False)):
            start, end = start.strip(), end.strip()
            if str(index) in removed or (not start and not end):
                continue
            if not start or not end:
                errors[day] = "Give both a start and an end for each time window."
            windows.append({"start": start, "end": end})
        weekly[day] = {"available": f"{day}-available" in fields, "windows": windows}
    if errors:
        return _schedule_response(request, viewer, status_code=422, errors=errors, weekly=weekly)
    store = _store(request)
    current = availability.get_availability(store, viewer.user_id, asked_by=viewer.user_id)
    body = current.as_dict()
    body["weeklySchedule"] = {d: {"isAvailable": w["available"], "windows": w["windows"]} for d, w in weekly.items()}
    try:
        availability.set_availability(store, viewer.user_id, viewer.user_id, body,
                                      _int(_one(fields, "version"), "version"))
    except BookingError as exc:
        field, detail = _field_error(exc)
        day = next((d for d in WEEKDAYS if d in field.split(".")), "weekly")
        if exc.code == "precondition_failed":
            detail = "The schedule was changed in another window; here it is as saved now. Make your change again."
            return _schedule_response(request, viewer, status_code=409, errors={"weekly": detail})
        return _schedule_response(request, viewer, status_code=422, errors={day: detail}, weekly=weekly)
    return _see("/schedule", done="saved")


SETTING_FIELDS = ("minBookingDurationMinutes", "maxBookingDurationMinutes", "bufferBetweenBookingsMinutes",
                  "minNoticeMinutes", "advanceBookingDays", "slotIncrementMinutes", "hourlyRateCents")


@router.post("/schedule/settings")
async def save_settings(request: Request) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    values = {name: _one(fields, name) for name in (*SETTING_FIELDS, "timezone", "currency")}
    store = _store(request)
    current = availability.get_availability(store, viewer.user_id, asked_by=viewer.user_id)
    body = current.as_dict()
    try:
        for name in SETTING_FIELDS:
            body[name] = _int(values[name], name)
        body["timezone"] = values["timezone"]
        body["currency"] = values["currency"].upper()
        body["autoConfirm"] = "autoConfirm" in fields
        availability.set_availability(store, viewer.user_id, viewer.user_id, body,
                                      _int(_one(fields, "version"), "version"))
        headline, bio = _one(fields, "headline"), _one(fields, "bio")
        users.update_profile(store, viewer.user_id, display_name=_one(fields, "displayName") or None,
                             headline=headline or None, bio=bio or None)
    except BookingError as exc:
        field, detail = _field_error(exc)
        return _schedule_response(request, viewer, status_code=422, errors={field or "settings": detail},
                                  values=values)
    return _see("/schedule", done="saved")


@router.post("/schedule/exceptions")
async def add_exception(request: Request) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    kind = _one(fields, "type")
    body: dict[str, Any] = {"type": kind}
    if kind == "custom_hours":
        body["windows"] = [{"start": _one(fields, "start"), "end": _one(fields, "end")}]
    if _one(fields, "reason"):
        body["reason"] = _one(fields, "reason")
    try:
        day = _parse_day(_one(fields, "date"))
        availability.set_exception(_store(request), viewer.user_id, viewer.user_id, day, body)
    except BookingError as exc:
        return _schedule_response(request, viewer, status_code=422, errors={"exception": exc.detail},
                                  values={k: _one(fields, k) for k in ("date", "type", "start", "end", "reason")})
    return _see("/schedule", done="saved")


@router.post("/schedule/exceptions/{day}/delete")
async def delete_exception(request: Request, day: str) -> Response:
    viewer = require_viewer(request)
    await _form(request, viewer)
    availability.delete_exception(_store(request), viewer.user_id, viewer.user_id, _parse_day(day))
    return _see("/schedule", done="saved")


@router.post("/schedule/bookings/{booking_id}/{action}")
async def expert_booking_action(request: Request, booking_id: str, action: str) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    store = _store(request)
    try:
        if action == "confirm":
            bookings.confirm_booking(store, viewer.user_id, booking_id)
        elif action == "decline":
            bookings.decline_booking(store, viewer.user_id, booking_id, _one(fields, "reason") or None)
        else:
            raise ValidationError("unknown action")
    except BookingError as exc:
        return _schedule_response(request, viewer, status_code=exc.status, errors={f"booking-{booking_id}": exc.detail})
    return _see("/schedule", done="confirmed" if action == "confirm" else "declined")


@router.post("/schedule/requests/{request_id}")
async def respond(request: Request, request_id: str) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    accept = _one(fields, "decision") == "accept"
    slot = _one(fields, "slot")
    try:
        booking_requests.respond_to_request(
            _store(request), viewer.user_id, request_id, accept, _int(slot, "slot") if accept and slot else None,
            _one(fields, "message") or None, external_check=await get_external_check(request),
        )
    except BookingError as exc:
        return _schedule_response(request, viewer, status_code=exc.status, errors={f"request-{request_id}": exc.detail})
    return _see("/schedule", done="accepted" if accept else "rejected")


@router.post("/schedule/connections/{kind}")
async def connect(request: Request, kind: str) -> Response:
    """Connect CalDAV or an ICS feed (the server's answer in words on failure), or start Google's consent."""
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    store = _store(request)
    accounts, tasks = await get_accounts(request), await get_tasks(request)
    try:
        if kind == "caldav":
            connections.connect_caldav(store, accounts, tasks, viewer.user_id, url=_one(fields, "url"),
                                       username=_one(fields, "username"), password=_one(fields, "password"))
        elif kind == "ics":
            connections.connect_feed(store, accounts, tasks, viewer.user_id, url=_one(fields, "url"))
        elif kind == "google":
            url = connections.start_google(store, accounts, viewer.user_id)
            response = RedirectResponse(url, status_code=303)
            # The callback answers JSON to API clients; this marks a flow started here, so that it
            # comes back to this page with the outcome (api/routes/google.py).
            response.set_cookie(RETURN_COOKIE, "schedule", max_age=600, httponly=True, samesite="lax", path="/")
            return response
        else:
            raise ValidationError("unknown kind of calendar")
    except (BookingError, UnsafeURL) as exc:
        detail = exc.detail if isinstance(exc, BookingError) else str(exc)
        log.info("calendar connect from the pages refused", extra={"kind": kind, "expert_id": viewer.user_id})
        return _schedule_response(request, viewer, status_code=getattr(exc, "status", 422),
                                  errors={f"connect-{kind}": detail},
                                  values={"url": _one(fields, "url"), "username": _one(fields, "username"),
                                          "kind": kind})
    return _see("/schedule", done="connected")


@router.post("/schedule/connection/{connection_id}/{action}")
async def connection_action(request: Request, connection_id: str, action: str) -> Response:
    viewer = require_viewer(request)
    fields = await _form(request, viewer)
    store = _store(request)
    accounts, tasks = await get_accounts(request), await get_tasks(request)
    try:
        if action == "sync":
            connections.ask_for_sync(store, tasks, viewer.user_id, connection_id)
        elif action == "disconnect":
            connections.disconnect(store, viewer.user_id, connection_id)
        elif action == "calendars":
            destination = _one(fields, "destination") or None
            connections.choose_calendars(store, accounts, tasks, viewer.user_id, connection_id,
                                         fields.get("busy", []), destination)
        else:
            raise ValidationError("unknown action")
    except BookingError as exc:
        return _schedule_response(request, viewer, status_code=exc.status,
                                  errors={f"connection-{connection_id}": exc.detail})
    return _see("/schedule", done={"sync": "sync", "disconnect": "disconnected"}.get(action, "saved"))
