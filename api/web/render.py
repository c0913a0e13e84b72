"""Rendering helpers of the pages: the Jinja2 environment, filters in the viewer's timezone, the base context.

Formatting only: nothing here decides anything about bookings. Times come in UTC from the services
and are shown in the viewer's timezone (``calbook_tz`` cookie, detected by the page, changeable).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.web.session import TZ_COOKIE, Viewer, current_viewer
from booking_engine.errors import ValidationError
from booking_engine.timeutil import zone

HERE = Path(__file__).resolve().parent
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)

#: A strict policy: every script and style comes from this server, nothing inline, no frames.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self' https://accounts.google.com; frame-ancestors 'none'; base-uri 'none'")

STATUS_LABELS = {
    "pending": "Pending", "confirmed": "Confirmed", "cancelled": "Cancelled", "completed": "Completed",
    "no_show": "No-show", "accepted": "Accepted", "rejected": "Rejected", "expired": "Expired",
    "withdrawn": "Withdrawn", "active": "Active", "error": "Error", "reauth_required": "Sign-in needed",
    "disconnected": "Disconnected",
}
TYPE_LABELS = {"video_call": "Video call", "audio_call": "Audio call", "in_person": "In person"}


def viewer_timezone(request: Request) -> str:
    """The viewer's timezone: the cookie if it names a real zone, else UTC (until the page detects one)."""
    name = request.cookies.get(TZ_COOKIE)
    if name:
        try:
            zone(name)
            return name
        except ValidationError:
            pass
    return "UTC"


def duration_label(minutes: int) -> str:
    hours = minutes / 60
    text = f"{hours:g}"
    return f"{text} hour" if hours == 1 else f"{text} hours"


def money(cents: int | None, currency: str = "USD") -> str:
    if cents is None:
        return ""
    amount = f"{cents / 100:,.2f}"
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


class Page:
    """One page render: the request, the viewer and their timezone; ``response`` builds the HTML."""

    def __init__(self, request: Request, viewer: Viewer | None = None) -> None:
        self.request = request
        self.viewer = viewer if viewer is not None else current_viewer(request)
        self.tz_name = viewer_timezone(request)
        self.tz = zone(self.tz_name)

    @property
    def today(self) -> date:
        return datetime.now(self.tz).date()

    def local(self, value: datetime | None, pattern: str = "%a %-d %b %Y, %H:%M") -> str:
        return value.astimezone(self.tz).strftime(pattern) if value is not None else ""

    def response(self, template: str, status_code: int = 200, *, etag: str | None = None,
                 **context: Any) -> HTMLResponse:
        """``etag``: a page the browser may keep and revalidate (``pages.revalidate``); others are ``no-store``."""
        env = TEMPLATES
        html = env.get_template(template).render(
            viewer=self.viewer, csrf=self.viewer.csrf if self.viewer else "", tz_name=self.tz_name,
            tz_detected=self.request.cookies.get(TZ_COOKIE) is not None, path=self.request.url.path,
            local=self.local, money=money, duration_label=duration_label, status_label=STATUS_LABELS.get,
            type_label=TYPE_LABELS.get, dev_login=self.request.app.state.settings.web_dev_login,
            today=self.today, date=date, **context,
        )
        return HTMLResponse(html, status_code=status_code, headers=page_headers(etag))


def page_headers(etag: str | None = None) -> dict[str, str]:
    """Pages are ``no-store``, except the month and the day (``etag`` given): those only show the
    expert's time, so the viewer's browser may keep its own copy and revalidate it (``private,
    no-cache``): a 304 when nothing changed (docs/web.md#caching)."""
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
               "Cache-Control": "no-store"}
    if etag is not None:
        headers.update({"Cache-Control": "private, no-cache", "ETag": etag})
    return headers
