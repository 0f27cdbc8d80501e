"""`/sandbox/inbox/*`: the webhook inbox (`server.inbox`) at the HTTP edge.

Posting to an inbox needs no credentials (webhook senders carry none); reading, listing and
emptying take the credentials of the other `/sandbox/*` routes, and any signed-in user may.
"""

from __future__ import annotations

import base64
import math
import re
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from ..errors import BadRequest
from ..inbox import Arrival, Check
from ..keys import feed_key, inbox_key
from ..sandbox import EVERYONE
from ..times import iso
from .common import int_param, json, json_built, problem, public, read_body, seconds_param
from .sandbox import either_dialect

routes = web.RouteTableDef()

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STATUS = re.compile(r"[2-5][0-9]{2}")
# the longest a reader may ask to be held (`?wait=`)
MAX_WAIT_S = 60.0
# statuses whose answer has no body (RFC 9110)
NO_BODY = {204, 205, 304}


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not _NAME.fullmatch(name):
        raise BadRequest(
            f"An inbox name is 1 to 64 letters, digits, '.', '_' or '-', got {name[:80]!r}.",
            title="Invalid inbox name.",
        )
    return name


def _answer_status(request: web.Request) -> int:
    raw = request.query.get("status")
    if raw is None:
        return 200
    if not _STATUS.fullmatch(raw):
        raise BadRequest(f"The parameter 'status' must be an HTTP status from 200 to 599, got {raw[:20]!r}.")
    return int(raw)


def _wait_s(request: web.Request) -> float:
    wait = seconds_param(request, "wait", math.inf) or 0.0
    if wait > MAX_WAIT_S:
        raise BadRequest(f"The parameter 'wait' must be from 0 to {MAX_WAIT_S:g} seconds, got {wait:g}.")
    return wait


def render_check(check: Check) -> dict[str, Any]:
    return {"present": check.present, "valid": check.valid}


def render_arrival(arrival: Arrival) -> dict[str, Any]:
    try:
        body, encoding = arrival.body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(arrival.body).decode(), "base64"
    headers: dict[str, str] = {}
    spelled: dict[str, str] = {}  # a header sent twice (in any case) is listed once, its values joined
    for name, value in arrival.headers:
        first = spelled.setdefault(name.lower(), name)
        headers[first] = f"{headers[first]}, {value}" if first in headers else value
    return {
        "id": arrival.id,
        "receivedAt": iso(arrival.received_ns),
        "method": arrival.method,
        "headers": headers,
        "body": body,
        "bodyEncoding": encoding,
        # (the body itself, known to be JSON: not parsed again to be written again)
        "json": orjson.Fragment(arrival.body) if arrival.is_json else None,
        "instanceId": arrival.instance_id,
        "answeredStatus": arrival.answered_status,
        "verified": arrival.verified,
        "signatures": {
            "elements": render_check(arrival.elements),
            "standard": render_check(arrival.standard),
        },
    }


@routes.post("/sandbox/inbox/{name}")
@public
async def deliver(request: web.Request) -> web.Response:
    """Record whatever is posted; answer 200 `{"id"}`, or the status `?status=` asks for (an
    error status as problem details, with the id)."""
    name, status = _name(request), _answer_status(request)
    body = await read_body(request)
    arrival = await request.app[inbox_key].receive(
        name, request.method, request.headers.items(), body, status
    )
    request.app[feed_key].publish(
        "inbox", EVERYONE, "", {"name": name, "id": arrival.id, "verified": arrival.verified}
    )
    if status in NO_BODY:
        return web.Response(status=status)
    if status >= 400:
        # (an error as every error here is written, the delivery's id with it)
        title = HTTPStatus(status).phrase if status in set(HTTPStatus) else f"Status {status}"
        detail = f"Delivery {arrival.id} was recorded; the inbox answers {status} as '?status=' asked."
        return problem(request, status, title, detail, extra={"id": arrival.id})
    return json({"id": arrival.id}, status=status)


@routes.get("/sandbox/inbox/{name}")
@either_dialect
async def deliveries(request: web.Request) -> web.Response:
    name = _name(request)
    raw_after = request.query.get("after")
    after = int_param(raw_after, "after") if raw_after is not None else 0
    wait_s = _wait_s(request)
    inbox = request.app[inbox_key]
    found = await inbox.wait(name, after, wait_s) if wait_s else inbox.listing(name, after)
    # (a thousand bodies of a megabyte are written in a thread)
    return await json_built(lambda: {"name": name, "deliveries": [render_arrival(a) for a in found]})


@routes.delete("/sandbox/inbox/{name}")
@either_dialect
async def empty(request: web.Request) -> web.Response:
    request.app[inbox_key].empty(_name(request))
    return web.Response(status=204)


@routes.get("/sandbox/inbox")
@either_dialect
async def inboxes(request: web.Request) -> web.Response:
    return json(
        {
            "value": [
                {"name": s.name, "count": s.count, "lastReceivedAt": iso(s.last_received_ns)}
                for s in request.app[inbox_key].inboxes()
            ]
        }
    )


def install(app: web.Application) -> None:
    """The routes, and readers held by `?wait=` answered as the server begins to stop."""
    app.add_routes(routes)

    async def wake_readers(app: web.Application) -> None:
        app[inbox_key].close()

    app.on_shutdown.append(wake_readers)
