"""``/v1/calendar-connections``: an expert's CalDAV and ICS connections (docs/sync.md#connections).

Each route parses, calls one use case of ``booking_engine.services.connections`` and answers.
Connecting verifies before it stores (the calendar accounts port lists a CalDAV account's
calendars with the given credentials, fetches and parses a feed once), with short timeouts,
and every way that can fail is a domain error, so a problem document (422 for what the expert
can fix, 502 when the server is unreachable or failing), never a 500; a URL that points at a
private address is the URL policy's 422 on ``url``. Responses never carry credentials.

``PATCH .../{id}`` lets the expert pick the busy calendars and the destination afterwards.
The sync itself runs in the worker: a connect, a ``PATCH`` that changed something or
``POST .../sync`` notes the request in the database and queues ``calbook.sync.connection``;
if the broker is down the periodic sync picks the request up (``config.task_sender``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.auth import CurrentUser
from api.connect_limit import ConnectSlot
from api.deps import AccountsDep, StoreDep, TasksDep
from api.openapi import problem_responses
from api.routes.params import ResourceId
from api.schemas.calendar_connections import (
    CalDAVConnect,
    CalendarChoice,
    CalendarConnectionList,
    CalendarConnectionOut,
    ICSConnect,
)
from booking_engine.connections import CalendarConnection
from booking_engine.services import connections

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/v1/calendar-connections", tags=["calendar connections"], responses=problem_responses(401, 422)
)


def _created(connection: CalendarConnection) -> JSONResponse:
    return JSONResponse(connection.as_dict(), status_code=201,
                        headers={"Location": f"/v1/calendar-connections/{connection.id}"})


@router.get("", response_model=CalendarConnectionList)
def list_connections(user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return {"items": [c.as_dict() for c in connections.list_connections(store, user.user_id)]}


@router.post("/caldav", status_code=201, response_model=CalendarConnectionOut,
             responses=problem_responses(429, 502))
def connect_caldav(
    body: CalDAVConnect, user: CurrentUser, store: StoreDep, accounts: AccountsDep, tasks: TasksDep, _: ConnectSlot,
) -> JSONResponse:
    """Discover the account's calendars with the given credentials, then store the connection."""
    return _created(connections.connect_caldav(
        store, accounts, tasks, user.user_id, url=body.url, username=body.username, password=body.password,
        busy=body.busy_calendars, destination=body.destination_calendar,
    ))


@router.post("/ics", status_code=201, response_model=CalendarConnectionOut, responses=problem_responses(429, 502))
def connect_ics(
    body: ICSConnect, user: CurrentUser, store: StoreDep, accounts: AccountsDep, tasks: TasksDep, _: ConnectSlot,
) -> JSONResponse:
    """Fetch and parse the feed once, then store it; the feed URL is kept encrypted."""
    return _created(connections.connect_feed(store, accounts, tasks, user.user_id, url=body.url))


@router.get("/{connection_id}", response_model=CalendarConnectionOut, responses=problem_responses(404))
def get_connection(connection_id: ResourceId, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return connections.get_connection(store, user.user_id, connection_id).as_dict()


@router.patch("/{connection_id}", response_model=CalendarConnectionOut,
              responses=problem_responses(404, 429, 502))
def choose_calendars(
    connection_id: ResourceId, body: CalendarChoice, user: CurrentUser, store: StoreDep, accounts: AccountsDep,
    tasks: TasksDep, _: ConnectSlot,
) -> dict[str, Any]:
    """Pick the busy calendars and the destination; a change is applied by the sync it queues."""
    given = "destination_calendar" in body.model_fields_set
    destination = body.destination_calendar if given else connections.UNCHANGED
    return connections.choose_calendars(
        store, accounts, tasks, user.user_id, connection_id, body.busy_calendars, destination
    ).as_dict()


@router.delete("/{connection_id}", status_code=204, response_class=Response, responses=problem_responses(404))
def delete_connection(connection_id: ResourceId, user: CurrentUser, store: StoreDep) -> Response:
    """Disconnect: the busy blocks go in the same transaction; the worker wipes the credentials."""
    connections.disconnect(store, user.user_id, connection_id)
    return Response(status_code=204)


@router.post("/{connection_id}/sync", status_code=202, responses=problem_responses(404))
def sync_connection(connection_id: ResourceId, user: CurrentUser, store: StoreDep, tasks: TasksDep) -> JSONResponse:
    """Note the request and queue the sync; a request already waiting is not queued twice."""
    connections.ask_for_sync(store, tasks, user.user_id, connection_id)
    return JSONResponse({"id": connection_id, "syncRequested": True}, status_code=202)
