"""`/sandbox/*`: the controls and introspection no public service has (`server.sandbox`).

Either dialect's credentials are accepted. A caller sees and steers the operations of every session
of its own user (the Elements dialect's callers all share one user); users named by `--admin-user`
see every session's. What a caller may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ..elements import ELEMENTS_USER, EventHook
from ..elements.bulk import records_found
from ..errors import BadRequest, Conflict, NotFound, Unauthorized
from ..keys import (
    deliveries_key,
    faults_key,
    feed_key,
    operations_key,
    settings_key,
)
from ..operations import Kind, Operation, Status
from ..sandbox import EVERYONE, Message, Subscription
from ..sessions import Session
from ..times import iso
from ..webhooks import Attempt, Delivery, DeliveryStatus, Pending, headers_for
from . import elements
from .common import (
    authenticated_by,
    bearer_session,
    int_param,
    json,
    json_built,
    session_of,
)

routes = web.RouteTableDef()

# at most this many operations or deliveries in one listing
DEFAULT_TOP = 200
MAX_TOP = 1000
_EVENT_ID = re.compile(r"[0-9]{1,18}")


def _authenticate(request: web.Request) -> Session:
    """A Laserfiche bearer, else the Elements hub's `User …, Element …`."""
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return bearer_session(request)
    return elements.hub_auth(request)


either_dialect = authenticated_by(_authenticate)


@dataclass(frozen=True)
class Viewer:
    session: Session
    admin: bool

    def sees(self, user: str) -> bool:
        return self.admin or user == self.session.user


def viewer_of(request: web.Request) -> Viewer:
    session = session_of(request)
    is_elements = session.id.startswith("el-")
    return Viewer(session, not is_elements and session.user in request.app[settings_key].admin_users)


# ---- rendering --------------------------------------------------------------------------


def render_operation(op: Operation) -> dict[str, Any]:
    progress = op.progress
    body: dict[str, Any] = {
        "operationToken": op.token,
        "operationType": op.kind.value,
        "status": op.status.value,
        "percentComplete": op.percent,
        "entriesDone": progress.entries_done,
        "entriesTotal": progress.entries_total,
        "paceMs": round(progress.pace_s * 1000, 3),
        "sessionId": op.session_id,
        "user": op.user,
        "entryId": op.entry_id,
        "label": op.label,
        "eventId": op.hook.event_id if isinstance(op.hook, EventHook) and op.hook.event_id else None,
        "errors": [{"objectId": e.object_id, "errorMessage": e.message} for e in op.errors],
        "createdTimestamp": iso(op.created_ns),
        "startTimestamp": iso(op.started_ns) if op.started_ns else None,
        "statusTimestamp": iso(op.status_ns),
        "timeline": [
            {"status": c.status.value, "timestamp": iso(c.at_ns), "percentComplete": c.percent}
            for c in op.changes
        ],
    }
    if op.kind is Kind.BULK:
        body["recordsCount"] = records_found(op)
    return body


def render_attempt(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "startedTimestamp": iso(attempt.started_ns),
        "durationMs": round(attempt.duration_ms, 1),
        "statusCode": attempt.status_code,
        "error": attempt.error,
    }


def render_delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "notificationId": delivery.notification_id,
        "eventId": delivery.event_id,
        "instanceId": delivery.instance_id,
        "url": delivery.url,
        "status": delivery.status.value,
        "sessionId": delivery.session_id,
        "attempts": [render_attempt(a) for a in delivery.attempts],
    }


def render_sent(delivery: Delivery, body: bytes, key: str) -> dict[str, Any]:
    """A delivery with what it sends: the body, and the headers of each attempt (made again from
    the body, the key and the attempt's time, as they were signed); those of the latest at the top."""
    nid = delivery.notification_id
    attempts = [
        render_attempt(a) | {"headers": headers_for(nid, key, body, a.started_ns // 10**9)}
        for a in delivery.attempts
    ]
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    return render_delivery(delivery) | {
        "attempts": attempts,
        "body": body.decode("utf-8", "replace"),
        "payload": payload,
        "headers": attempts[-1]["headers"] if attempts else None,
    }


# ---- wiring: faults into the engine, what happens into the feed ----------------------------


def install(app: web.Application) -> None:
    """Arm operations and deliveries with the faults, and publish what they do to the feed (again
    after a reset, which builds them anew: see `end_streams` for the streams' end)."""
    faults, feed = app[faults_key], app[feed_key]
    operations, deliveries = app[operations_key], app[deliveries_key]
    operations.arm = faults.arm
    deliveries.intercept = faults.intercept

    def operation_changed(op: Operation) -> None:
        feed.publish("operation", op.user, op.token, render_operation(op))

    def attempted(pending: Pending, attempt: Attempt, status: DeliveryStatus) -> None:
        delivery = Delivery(
            pending.notification_id,
            pending.event_id,
            pending.instance_id,
            pending.url,
            status,
            pending.session_id,
            [attempt],
        )
        feed.publish("delivery", ELEMENTS_USER, "", render_delivery(delivery))

    operations.listeners.append(operation_changed)
    deliveries.listeners.append(attempted)


async def end_streams(app: web.Application) -> None:
    """As the server stops (an on_shutdown signal, after the operations stop: the event streams
    carry how they ended, then end)."""
    app[feed_key].close()


# ---- operations and deliveries --------------------------------------------------------------


def _choice(request: web.Request, name: str, options: type[Status] | type[Kind]) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    if value not in {o.value for o in options}:
        raise BadRequest(
            f"The parameter '{name}' must be one of {', '.join(o.value for o in options)}, got {value!r}."
        )
    return value


def _top(request: web.Request) -> int:
    raw = request.query.get("$top")
    return DEFAULT_TOP if raw is None else min(int_param(raw, "$top", 1), MAX_TOP)


@routes.get("/sandbox/operations")
@either_dialect
async def list_operations(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    status, kind = _choice(request, "status", Status), _choice(request, "type", Kind)
    session_id, user = request.query.get("sessionId"), request.query.get("user")
    found = [
        op
        for op in request.app[operations_key].visible()
        if viewer.sees(op.user)
        and (status is None or op.status == status)
        and (kind is None or op.kind == kind)
        and (session_id is None or op.session_id == session_id)
        and (user is None or op.user == user)
    ]
    found.sort(key=lambda op: op.created_ns, reverse=True)
    return json({"value": [render_operation(op) for op in found[: _top(request)]]})


def visible_operation(request: web.Request, viewer: Viewer, token: str) -> Operation:
    op = request.app[operations_key].lookup(token)
    if op is None or not viewer.sees(op.user):
        raise NotFound(f"No operation with token {token!r} that you can see.", title="Operation not found.")
    return op


@routes.get("/sandbox/operations/{operationToken}")
@either_dialect
async def get_operation(request: web.Request) -> web.Response:
    op = visible_operation(request, viewer_of(request), request.match_info["operationToken"])
    return json(render_operation(op))


@routes.post("/sandbox/operations/{operationToken}/cancel")
@either_dialect
async def cancel_operation(request: web.Request) -> web.Response:
    op = visible_operation(request, viewer_of(request), request.match_info["operationToken"])
    await request.app[operations_key].cancel(op)
    return json(render_operation(op))


@routes.get("/sandbox/deliveries")
@either_dialect
async def list_deliveries(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    raw_event = request.query.get("eventId")
    event_id = int_param(raw_event, "eventId", 1) if raw_event is not None else None
    status = request.query.get("status")
    if status is not None and status not in set(DeliveryStatus):
        known = ", ".join(DeliveryStatus)
        raise BadRequest(f"The parameter 'status' must be one of {known}, got {status!r}.")
    if not viewer.sees(ELEMENTS_USER):
        return json({"value": []})  # (only the Elements dialect sends webhooks)
    deliveries = request.app[deliveries_key]
    top = _top(request)
    return await json_built(
        lambda: {"value": [render_delivery(d) for d in deliveries.listing(event_id, status, top)]}
    )


@routes.get("/sandbox/deliveries/{notificationId}")
@either_dialect
async def get_delivery(request: web.Request) -> web.Response:
    """One webhook delivery with its attempts, its body and the headers each attempt sent."""
    viewer = viewer_of(request)
    notification_id = int_param(request.match_info["notificationId"], "notificationId", 1)
    deliveries = request.app[deliveries_key]

    def build() -> dict[str, Any] | None:
        found = deliveries.listing(None, None, 1, None, notification_id)
        sent = deliveries.sent(notification_id)
        return render_sent(found[0], *sent) if found and sent else None

    body = await asyncio.to_thread(build) if viewer.sees(ELEMENTS_USER) else None
    if body is None:
        raise NotFound(
            f"No webhook delivery {notification_id} that you can see.", title="Delivery not found."
        )
    return await json_built(lambda: body)


@routes.post("/sandbox/deliveries/{notificationId}/redeliver")
@either_dialect
async def redeliver_delivery(request: web.Request) -> web.Response:
    """Send a delivered or queued webhook again, now (same notificationId), as the Elements
    dialect's `POST /instances/events/{id}/redeliver` does: for a caller with a Laserfiche bearer
    (the dashboard's queue) who sees the deliveries."""
    viewer = viewer_of(request)
    notification_id = int_param(request.match_info["notificationId"], "notificationId", 1)
    deliveries = request.app[deliveries_key]

    def find() -> list[Delivery]:
        return deliveries.listing(None, None, 1, None, notification_id)

    found = await asyncio.to_thread(find) if viewer.sees(ELEMENTS_USER) else []
    if not found:
        raise NotFound(
            f"No webhook delivery {notification_id} that you can see.", title="Delivery not found."
        )
    if not await deliveries.redeliver(notification_id):
        raise Conflict(
            f"Webhook delivery {notification_id} is being delivered already; wait for it to be "
            "delivered or queued.",
            title="Nothing to redeliver.",
        )
    # (as it is now: pending, or already under way)
    found = await asyncio.to_thread(find) or found
    return json(render_delivery(found[0]), status=202)


# ---- the server's own resources ------------------------------------------------------------


@routes.get("/sandbox/stats")
@either_dialect
async def stats(request: web.Request) -> web.Response:
    """What the process holds (admins only): for load runs that check nothing leaks."""
    if not viewer_of(request).admin:
        raise NotFound("Only an --admin-user may read the server's stats.", title="Not found.")
    operations = request.app[operations_key]
    # (the /proc reads are file I/O: off the loop)
    files, threads, rss = await asyncio.to_thread(
        lambda: (_count_in("/proc/self/fd"), _count_in("/proc/self/task"), _rss_bytes())
    )
    return json(
        {
            "asyncioTasks": len(asyncio.all_tasks()),
            "openFiles": files,
            "threads": threads,
            "rssBytes": rss,
            "operations": len(operations.visible()),
            "runningOperations": operations.running,
            "feedSubscribers": request.app[feed_key].subscribers,
            "pendingDeliveries": request.app[deliveries_key].pending,
        }
    )


def _count_in(folder: str) -> int:
    """Entries of a /proc folder (-1 where there is no /proc)."""
    try:
        return len(os.listdir(folder))
    except OSError:
        return -1


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return -1


# ---- the event stream -------------------------------------------------------------------------


@routes.get("/sandbox/events", allow_head=False)
@either_dialect
async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `operation` and `delivery` messages as they happen (see server.sandbox)."""
    viewer = viewer_of(request)
    token = request.query.get("operationToken")
    last_id = request.headers.get("Last-Event-ID", "").strip()
    subscription = request.app[feed_key].subscribe(int(last_id) if _EVENT_ID.fullmatch(last_id) else None)
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                # proxies must pass each message on as it comes
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await _stream(request, response, subscription, viewer, token)
        return response
    finally:
        request.app[feed_key].unsubscribe(subscription)


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    subscription: Subscription,
    viewer: Viewer,
    token: str | None,
) -> None:
    keepalive_s = request.app[settings_key].sse_keepalive_s
    loop = asyncio.get_running_loop()
    # (the retry field: how long a client waits before reconnecting)
    await response.write(b"retry: 1000\n\n")
    written = loop.time()
    try:
        while True:
            try:
                message = await subscription.next(max(0.0, written + keepalive_s - loop.time()))
            except EOFError:
                return
            if message is not None and _wanted(message, viewer, token):
                await response.write(_encode(message))
                written = loop.time()
            elif loop.time() >= written + keepalive_s:
                # quiet for this stream (if not for others): a keep-alive, once the client is
                # known to be there still and its credentials still good
                if request.transport is None or request.transport.is_closing():
                    return
                _authenticate(request)
                await response.write(b": keepalive\n\n")
                written = loop.time()
    except (ConnectionResetError, Unauthorized):
        return  # the client went away, or its credentials expired


def _wanted(message: Message, viewer: Viewer, token: str | None) -> bool:
    if token is not None and message.token != token:
        return False
    return message.user == EVERYONE or viewer.sees(message.user)


def _encode(message: Message) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (message.id, message.event.encode(), message.data)
