"""`/sandbox/faults`: faults armed for one session's next operations or webhooks, and tokens expired
at once (`server.sandbox` holds the faults; this is their HTTP edge)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ..config import url_problem
from ..elements import ELEMENTS_USER
from ..errors import BadRequest, NotFound, TooManyRequests
from ..keys import faults_key, instances_key, operations_key, sessions_key, settings_key
from ..operations import Kind
from ..sandbox import Fault, FaultKind
from ..times import iso
from . import elements
from .common import field, json, read_json
from .sandbox import Viewer, either_dialect, viewer_of, visible_operation

routes = web.RouteTableDef()

# a fault is used this many times at most
MAX_TIMES = 1000
# the longest a webhook can be held (10 minutes)
MAX_DELAY_MS = 600_000
MAX_MESSAGE = 1000
# faults armed at once, in all: each is matched by a scan, and one a session never uses stays
MAX_ARMED = 1000


def render_fault(fault: Fault) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": fault.id,
        "kind": fault.kind.value,
        "sessionId": fault.session_id,
        "user": fault.user,
        "remaining": fault.remaining,
        "created": iso(fault.created_ns),
    }
    if fault.kind is FaultKind.OPERATION_FAILURE:
        body |= {
            "afterEntries": fault.after_entries,
            "status": fault.status,
            "message": fault.message,
            "operationType": fault.operation_type.value if fault.operation_type else None,
        }
    else:
        body["url"] = fault.url
        if fault.kind is FaultKind.WEBHOOK_FAILURE:
            body["status"] = fault.status
        else:
            body["delayMs"] = fault.delay_ms
    return body


# the fields each kind takes (besides kind, times and sessionId)
# (expire-token is done at once, not armed: it takes no `times`)
EXPIRE = "expire-token"
_FIELDS = {
    FaultKind.OPERATION_FAILURE.value: {"afterEntries", "status", "message", "operationType", "times"},
    FaultKind.WEBHOOK_FAILURE.value: {"url", "status", "times"},
    FaultKind.WEBHOOK_DELAY.value: {"url", "delayMs", "times"},
    EXPIRE: {"operationToken"},
}


@routes.post("/sandbox/faults")
@either_dialect
async def create_fault(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    body = await read_json(request)
    name = field(body, "kind", str, required=True)
    if name not in _FIELDS:
        raise BadRequest(f"The field 'kind' must be one of {', '.join(_FIELDS)}, got {name!r}.")
    allowed = _FIELDS[name] | {"kind", "sessionId"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            f"A {name} fault takes no field {unknown[0]!r}; it takes {', '.join(sorted(allowed))}."
        )
    session_id, user = _target_session(request, viewer, field(body, "sessionId", str))
    if name == EXPIRE:
        return await _expire(request, viewer, body, session_id)
    kind = FaultKind(name)
    if len(request.app[faults_key].all()) >= MAX_ARMED:
        raise TooManyRequests(f"{MAX_ARMED} faults are armed already; delete some (DELETE /sandbox/faults).")
    fault = Fault(kind, session_id, user, _bounded(body, "times", 1, 1, MAX_TIMES), time.time_ns())
    if kind is FaultKind.OPERATION_FAILURE:
        fault.after_entries = _bounded(body, "afterEntries", 0, 0, None)
        fault.status = _bounded(body, "status", 500, 400, 599)
        message = field(body, "message", str)
        if message is not None and not 0 < len(message) <= MAX_MESSAGE:
            raise BadRequest(f"The field 'message' must hold 1 to {MAX_MESSAGE} characters.")
        fault.message = message or f"Injected failure (sandbox fault {fault.id})."
        operation_type = field(body, "operationType", str)
        if operation_type is not None and operation_type not in set(Kind):
            raise BadRequest(
                f"The field 'operationType' must be one of {', '.join(Kind)}, got {operation_type!r}."
            )
        fault.operation_type = Kind(operation_type) if operation_type else None
    else:
        url = field(body, "url", str, required=True)
        assert url is not None
        problem = url_problem(url)
        if problem:
            raise BadRequest(f"The field 'url' {problem}.")
        fault.url = url
        if kind is FaultKind.WEBHOOK_FAILURE:
            fault.status = _bounded(body, "status", 503, 400, 599)
        else:
            fault.delay_ms = _delay(body)
    request.app[faults_key].add(fault)
    return json(render_fault(fault), status=201)


def _bounded(body: dict[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    value = field(body, name, int)
    if value is None:
        return default
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"The field '{name}' must be {bounds}, got {value}.")
    return value


def _delay(body: dict[str, Any]) -> float:
    value = body.get("delayMs")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_DELAY_MS:
        raise BadRequest(
            f"The field 'delayMs' must be a number of milliseconds above 0, at most {MAX_DELAY_MS}."
        )
    return float(value)


def _target_session(request: web.Request, viewer: Viewer, session_id: str | None) -> tuple[str, str]:
    """The session a fault is for, and its user: the caller's own unless it names another of its
    user's (an admin: anyone's)."""
    if session_id is None or session_id == viewer.session.id:
        return viewer.session.id, viewer.session.user
    secret = request.app[settings_key].elements_user_secret
    instances = request.app[instances_key].all()
    if any(elements.session_for(secret, instance).id == session_id for instance in instances):
        user: str | None = ELEMENTS_USER
    else:
        user = request.app[sessions_key].user_of(session_id)
    if user is None or not viewer.sees(user):
        raise NotFound(f"No session {session_id!r} that you can see.", title="Session not found.")
    return session_id, user


async def _expire(
    request: web.Request, viewer: Viewer, body: dict[str, Any], session_id: str
) -> web.Response:
    token = field(body, "operationToken", str)
    if token is not None:
        op = visible_operation(request, viewer, token)
        request.app[operations_key].expire_now(op)
        return json({"kind": EXPIRE, "operationToken": token})
    if session_id.startswith("el-"):
        raise BadRequest(
            "Elements credentials do not expire: the Element token lasts as long as its instance "
            "(delete the instance instead).",
        )
    await asyncio.to_thread(request.app[sessions_key].expire, session_id)
    return json({"kind": EXPIRE, "sessionId": session_id})


@routes.get("/sandbox/faults")
@either_dialect
async def list_faults(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    faults = [render_fault(f) for f in request.app[faults_key].all() if viewer.sees(f.user)]
    return json({"value": faults})


@routes.delete("/sandbox/faults")
@either_dialect
async def clear_faults(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    faults = request.app[faults_key]
    for fault in faults.all():
        if viewer.sees(fault.user):
            faults.remove(fault.id)
    return web.Response(status=204)


@routes.delete("/sandbox/faults/{faultId}")
@either_dialect
async def delete_fault(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    faults = request.app[faults_key]
    fault = faults.get(request.match_info["faultId"])
    if fault is None or not viewer.sees(fault.user):
        raise NotFound(f"No armed fault {request.match_info['faultId']!r}.", title="Fault not found.")
    faults.remove(fault.id)
    return web.Response(status=204)
