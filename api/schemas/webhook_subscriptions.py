"""Outbound webhook subscriptions on the wire; the secret appears once, in the create answer."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from api.schemas.common import RequestModel, ResponseModel, SafeStr, UtcInstant


class SubscriptionCreate(RequestModel):
    url: Annotated[SafeStr, Field(min_length=1, max_length=2000)]
    events: Annotated[list[Annotated[SafeStr, Field(max_length=100)]], Field(min_length=1, max_length=50)] | None = (
        None
    )


class Subscription(ResponseModel):
    id: str
    url: str
    events: list[str]
    active: StrictBool
    created_at: UtcInstant


class CreatedSubscription(Subscription):
    secret: str = Field(description="The HMAC signing secret; shown only in this answer")


class SubscriptionList(ResponseModel):
    items: list[Subscription]
