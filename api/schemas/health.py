"""Liveness and readiness answers."""

from __future__ import annotations

from typing import Literal

from api.schemas.common import ResponseModel


class Health(ResponseModel):
    status: Literal["ok"]


class Readiness(ResponseModel):
    status: Literal["ok"]
    checks: dict[str, Literal["ok"]]
