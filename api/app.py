"""The FastAPI application: ``create_app`` wires settings, store, auth, errors and routes.

``uvicorn --factory api.app:create_app`` (what ``calbook api``/``serve`` run) calls it with
no arguments: settings come from the environment and the store from
``settings.resolved_database_url()``; the adapters (calendar accounts, task sender, free/busy check)
from ``api.deps.build_adapters``. It never migrates: ``calbook serve``/``migrate`` do,
so that several API workers never race on a migration. Tests pass their own store,
settings and task queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.answer_cache import AnswerCache
from api.auth import TokenVerifier
from api.body_limit import BodyLimitMiddleware
from api.connect_limit import ConnectLimiter
from api.deps import build_adapters
from api.metrics import MetricsMiddleware
from api.openapi import install_openapi
from api.problems import CatchAllMiddleware, install_problem_handlers
from api.routes import ROUTERS
from api.versions import VersionReads
from api.web import install as install_pages
from booking_engine.ports import TaskQueue
from booking_engine.store.db import Store
from config.settings import Settings
from config.version import VERSION

DESCRIPTION = """Booking backend for expert consultations.

Authenticate with `Authorization: Bearer <JWT>` (HS256 with the server's secret, or RS256
from a configured identity provider); `sub` is your user id. Errors are
`application/problem+json` (RFC 9457) with a stable `code`. Instants are ISO 8601 and
come back in UTC with `Z`.
"""


def create_app(
    store: Store | None = None, settings: Settings | None = None, *, tasks: TaskQueue | None = None
) -> FastAPI:
    settings = settings or Settings()
    owns_store = store is None
    active_store = store if store is not None else Store.from_url(settings.resolved_database_url())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.versions.close()
        if owns_store:
            active_store.dispose()

    # /docs (Swagger UI) and /redoc load their scripts from the fastapi-offline package, not a CDN:
    # they work offline and under a strict CSP. No validator badge: it would send the schema's URL out.
    app = FastAPIOffline(
        title="calbook", version=VERSION, description=DESCRIPTION, lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.store = active_store
    app.state.adapters = build_adapters(settings, tasks=tasks)
    app.state.verifier = TokenVerifier(settings)
    app.state.answers = AnswerCache(settings.answer_cache_entries)
    app.state.versions = VersionReads(active_store)
    app.state.connect_limiter = ConnectLimiter(settings.connect_max_concurrent_per_user,
                                               settings.connect_retry_after_seconds)
    for router in ROUTERS:
        app.include_router(router)
    install_pages(app)  # the booking pages (docs/web.md), after the API so /v1 always wins
    install_problem_handlers(app)
    install_openapi(app)
    # Last added runs first: metrics and the access log see every answer, the catch-all's 500s
    # included; then the catch-all wraps everything, then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.request_max_body_bytes)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(MetricsMiddleware, log_requests=settings.access_log)
    return app
