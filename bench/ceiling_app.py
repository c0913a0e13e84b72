"""The ceiling for bench/api_load.py: a bare FastAPI app answering a fixed body, nothing else.

Served by uvicorn with two workers like ``calbook api``; the body is ``CEILING_BYTES`` bytes
of JSON, the size of the slots answer the benchmark measures against it.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Response

app = FastAPI()
_BODY = b'{"pad":"' + b"x" * max(0, int(os.environ.get("CEILING_BYTES", "2000")) - 10) + b'"}'


@app.get("/ceiling")
def ceiling() -> Response:
    return Response(_BODY, media_type="application/json")
