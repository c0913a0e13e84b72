"""The routers of the REST API, one module per resource; ``create_app`` includes them all.

Every route is thin: parse (the schemas), authenticate (``CurrentUser``), call one service
function (which authorises: docs/api.md#authorization lives in the services), answer.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    availability,
    booking_requests,
    bookings,
    calendar_connections,
    calendar_feeds,
    exceptions,
    experts,
    google,
    health,
    me,
    metrics,
    microsoft,
    slots,
    webhook_subscriptions,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    me.router,
    experts.router,
    calendar_feeds.me_router,
    calendar_feeds.feed_router,
    availability.router,
    exceptions.router,
    slots.router,
    bookings.router,
    booking_requests.router,
    webhook_subscriptions.router,
    calendar_connections.router,
    google.router,
    microsoft.router,
)
