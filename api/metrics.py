"""Prometheus metrics of the API, its access log, and the exposition of ``/metrics`` (docs/operations.md#metrics).

Counted here, in the API process: requests by method, route template and status, their
latencies, and booking attempts by outcome. Under ``calbook api --workers N`` (and ``serve``)
``prometheus_client`` runs in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by the
command), so each process counts into its own file and a scrape, answered by any one process,
adds them all up. Read from the database at each scrape (``StateCollector``): the outbox
backlog and the age of its oldest event, webhook and e-mail deliveries by status, calendar
connections by provider and status, the workers' heartbeats; the workers are described
without being asked.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking_engine.services import operations
from booking_engine.store.db import Store

access_log = logging.getLogger("calbook.access")

HTTP_REQUESTS = Counter(
    "calbook_http_requests", "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "calbook_http_request_duration_seconds", "Time to answer an HTTP request, by method and route template",
    ["method", "route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BOOKINGS = Counter(
    "calbook_bookings", "Booking attempts (POST /v1/bookings) by outcome: the new booking's status, "
    "or the problem code that refused it", ["outcome"],
)

#: Answered for load balancers and scrapers; their access lines are DEBUG, not INFO.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


DOCS_ASSETS = "/static-offline-docs"


def _route(scope: Scope, status: int) -> str:
    """The matched route's template (``/v1/bookings/{booking_id}``): label values stay few.

    Routes outside the API's routers (``/openapi.json``, the docs' files) leave no template in
    the scope; their few fixed paths stand for themselves, and anything not found is ``unmatched``.
    """
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    path = str(scope.get("path", ""))
    if status in (404, 405) or not path:
        return "unmatched"
    return DOCS_ASSETS if path.startswith(DOCS_ASSETS + "/") else path


class MetricsMiddleware:
    """Counts and times every request and writes the access log line, in one place."""

    def __init__(self, app: ASGIApp, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            elapsed = time.perf_counter() - started
            method, route = scope.get("method", ""), _route(scope, status)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            if self.log_requests:
                path = scope.get("path", "")
                level = logging.DEBUG if path in PROBES else logging.INFO
                client = scope.get("client")
                access_log.log(level, "%s %s %d %.1fms", method, path, status, elapsed * 1000, extra={
                    "method": method, "path": path, "route": route, "status": status,
                    "duration_ms": round(elapsed * 1000, 1), "client": client[0] if client else None,
                    "_said": ("method", "path", "status", "duration_ms"),
                })


def count_booking(outcome: str) -> None:
    BOOKINGS.labels(outcome).inc()


class StateCollector(Collector):
    """Gauges read from the database when scraped (``booking_engine.services.operations``)."""

    def __init__(self, store: Store, heartbeat_max_age_seconds: float) -> None:
        self.store = store
        self.heartbeat_max_age_seconds = heartbeat_max_age_seconds

    def collect(self) -> Iterator[Metric]:
        try:
            state = operations.snapshot(self.store)
        except Exception:  # noqa: BLE001 - the counters still go out; the scrape says the database is down
            logging.getLogger(__name__).warning("metrics: database unreadable", exc_info=True)
            yield GaugeMetricFamily("calbook_database_up", "1 when the database answered this scrape", value=0)
            return
        yield GaugeMetricFamily("calbook_database_up", "1 when the database answered this scrape", value=1)
        yield GaugeMetricFamily("calbook_outbox_backlog", "Outbox events not yet dispatched",
                                value=state.outbox_backlog)
        yield GaugeMetricFamily("calbook_outbox_failing", "Undispatched outbox events whose handlers failed before",
                                value=state.outbox_failing)
        yield GaugeMetricFamily("calbook_outbox_oldest_age_seconds",
                                "Age of the oldest undispatched outbox event (0 when none)",
                                value=state.outbox_oldest_age_seconds)
        deliveries = GaugeMetricFamily("calbook_webhook_deliveries", "Webhook deliveries held, by status "
                                       "(finished ones until the retention prune)", labels=["status"])
        for status in ("pending", "succeeded", "failed", "cancelled"):
            deliveries.add_metric([status], state.webhook_deliveries.get(status, 0))
        yield deliveries
        notifications = GaugeMetricFamily("calbook_notifications", "Notifications sent or refused, by channel "
                                          "and status (until the retention prune)", labels=["channel", "status"])
        for (channel, status), count in sorted(state.notifications.items()):
            notifications.add_metric([channel, status], count)
        yield notifications
        age = state.heartbeat_age_seconds
        yield GaugeMetricFamily("calbook_worker_heartbeat_age_seconds",
                                "Age of the freshest worker heartbeat (NaN: no worker ever seen)",
                                value=float("nan") if age is None else age)
        yield GaugeMetricFamily("calbook_workers_seen", "Workers whose heartbeat is fresher than "
                                "CALBOOK_WORKER_HEARTBEAT_MAX_AGE_SECONDS",
                                value=len(state.workers_seen_within(self.heartbeat_max_age_seconds)))
        connections = GaugeMetricFamily("calbook_calendar_connections", "Calendar connections by provider and status",
                                        labels=["provider", "status"])
        for (provider, status), count in sorted(state.connections.items()):
            connections.add_metric([provider, status], count)
        yield connections


class _Process(Collector):
    """This process's own metrics (the default registry), when not in multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(store: Store, heartbeat_max_age_seconds: float, accept: str | None) -> tuple[bytes, str]:
    """The body and content type of ``/metrics``: the counters of this process (or of all API
    processes, in multiprocess mode) and the state, in the format the scraper asked for (the
    Prometheus text format, or OpenMetrics when its ``Accept`` header prefers it)."""
    registry = CollectorRegistry(auto_describe=False)  # no collect() at registration: one database read a scrape
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Process())
    registry.register(StateCollector(store, heartbeat_max_age_seconds))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
