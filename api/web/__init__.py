"""The booking pages served by calbook itself (issue 14, docs/web.md): server-rendered HTML.

``install(app)`` adds the page routes and the static assets (CSS, one small script), all shipped
inside this package: no CDN, no build step. The pages call the same services as the API.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web.pages import router
from api.web.render import HERE


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/assets", StaticFiles(directory=HERE / "static"), name="assets")
