"""``/v1/webhook-subscriptions``: the caller's outbound webhooks.

The signing secret is encrypted with ``connectors.secrets.encrypt_json({"secret": ...})``
before it reaches the store; the worker reads it back with ``decrypt_json(...)["secret"]``.

The receiver's URL must be public (``connectors.url_policy``) unless ``CALBOOK_ALLOW_PRIVATE_URLS``
is set; the worker checks it again before every delivery, since DNS can change in between.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.auth import CurrentUser
from api.deps import SettingsDep, StoreDep
from api.openapi import problem_responses
from api.routes.params import ResourceId
from api.schemas.webhook_subscriptions import CreatedSubscription, SubscriptionCreate, SubscriptionList
from booking_engine.services import webhook_subscriptions
from connectors.secrets import encrypt_json
from connectors.url_policy import check_public_url

router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["webhooks"], responses=problem_responses(401, 422))


@router.get("", response_model=SubscriptionList)
def list_subscriptions(user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return {"items": webhook_subscriptions.list_subscriptions(store, user.user_id)}


@router.post("", status_code=201, response_model=CreatedSubscription)
def create_subscription(
    body: SubscriptionCreate, user: CurrentUser, store: StoreDep, settings: SettingsDep
) -> JSONResponse:
    check_public_url(body.url, settings.allow_private_urls)
    key = settings.resolved_encryption_key()
    created = webhook_subscriptions.create_subscription(
        store, user.user_id, body.url, body.events, lambda secret: encrypt_json({"secret": secret}, key)
    )
    return JSONResponse(created, status_code=201,
                        headers={"Location": f"/v1/webhook-subscriptions/{created['id']}"})


@router.delete("/{subscription_id}", status_code=204, response_class=Response, responses=problem_responses(404))
def delete_subscription(subscription_id: ResourceId, user: CurrentUser, store: StoreDep) -> Response:
    webhook_subscriptions.delete_subscription(store, user.user_id, subscription_id)
    return Response(status_code=204)
