"""v2 tasks: copies, deletes and the test task on the operations engine (the same records as v1's
long operations), listed and cancelled as collections, with long polling."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ...errors import BadRequest, NotFound
from ...keys import operations_key, settings_key
from ...kinds.copy import start_copy
from ...kinds.delete import start_delete
from ...kinds.testtask import MAX_SECONDS, TestWork
from ...operations import Admission, Hook, Operation, Work
from ...operations.guard import QUEUE_BOUND
from ..common import bool_param, field, int_param, json, pace_s, read_json, session_of
from ..laserfiche_common import audit_body
from ..odata import preference
from . import render
from .entries import auto_rename_of, entry_id_param
from .render import BASE

routes = web.RouteTableDef()
# the status routes, added before the dialect's others (see v2.add_routes): pollers ask for them
# most, and aiohttp tries a path against the routes below /v2/Repositories one by one, in order
status_routes = web.RouteTableDef()


def _admission(request: web.Request) -> Admission:
    """v2's rule: a limited number of tasks run per access token, the rest wait their turn."""
    return Admission(request.app[settings_key].v2_running_per_session, QUEUE_BOUND)


def _started(request: web.Request, op: Operation, status: int = 202) -> web.Response:
    return json(
        {"taskId": op.token}, status=status, headers={"Location": render.tasks_url(request, op.token)}
    )


async def start_task(
    request: web.Request, work: Work, hook: Hook | None = None, status: int = 202
) -> web.Response:
    """Accept checked work as a task of this access token, under v2's rule, and answer its id."""
    operations = request.app[operations_key]
    op = await operations.start(session_of(request), work, hook, admission=_admission(request))
    return _started(request, op, status)


# ---- starting ----------------------------------------------------------------------------------


@routes.post(BASE + "/Entries/{entryId}/Folder/CopyAsync")
async def start_copy_entry(request: web.Request) -> web.Response:
    pace = pace_s(request)
    parent_id = entry_id_param(request)
    body = await read_json(request)
    source_id = field(body, "sourceId", int, required=True)
    name = field(body, "name", str, required=True)
    auto_rename = auto_rename_of(request, body)
    assert source_id is not None and name is not None
    operations = request.app[operations_key]
    op = await start_copy(
        operations,
        session_of(request),
        source_id,
        parent_id,
        name,
        auto_rename,
        pace_s=pace,
        admission=_admission(request),
    )
    return _started(request, op)


@routes.delete(BASE + "/Entries/{entryId}")
async def start_delete_entry(request: web.Request) -> web.Response:
    pace = pace_s(request)
    entry_id = entry_id_param(request)
    await audit_body(request, "auditReasonComment")
    operations = request.app[operations_key]
    op = await start_delete(
        operations, session_of(request), entry_id, pace_s=pace, admission=_admission(request)
    )
    return _started(request, op)


@routes.post(BASE + "/Tasks/StartTestTaskAsync")
async def start_test_task(request: web.Request) -> web.Response:
    seconds = int_param(request.query.get("operationTime") or "0", "operationTime")
    if seconds > MAX_SECONDS:
        raise BadRequest(f"The parameter 'operationTime' must be at most {MAX_SECONDS} seconds.")
    work = TestWork(seconds, bool_param(request, "hasRedirectUri"), bool_param(request, "hasError"))
    # (200, not 202: what the published client accepts for this one)
    return await start_task(request, work, status=200)


# ---- reading and cancelling --------------------------------------------------------------------


def _tasks(request: web.Request) -> list[Operation]:
    """The tasks `taskIds` names (repeated, or comma-separated), of this access token's; all of its
    tasks if it names none. Others' and expired ones are left out; if that leaves none, 404."""
    operations = request.app[operations_key]
    session = session_of(request)
    ids = [i.strip() for raw in request.query.getall("taskIds", []) for i in raw.split(",") if i.strip()]
    if not ids:
        return operations.of_session(session)
    found: dict[str, Operation] = {}
    missing: NotFound | None = None
    for task_id in ids:
        try:
            found.setdefault(task_id, operations.get(session, task_id))
        except NotFound as exc:
            missing = missing or exc
    if not found and missing is not None:
        raise missing
    return list(found.values())


@status_routes.get(BASE + "/Tasks")
async def list_tasks(request: web.Request) -> web.Response:
    """Long polling: while none of the tasks has ended, the answer waits for one to end, at most
    `--task-wait-s` (the vendor's 60 s), or what `Prefer: wait=N` asks (RFC 7240)."""
    wait_s = request.app[settings_key].task_wait_s
    asked = preference(request, "wait")
    if asked is not None:
        wait_s = min(wait_s, asked)
    ops = _tasks(request)
    if ops and not any(op.done for op in ops):
        await request.app[operations_key].wait_any(ops, wait_s)
    # (what was applied: the server's bound may be shorter than what was asked)
    headers = {"Preference-Applied": f"wait={wait_s:g}"} if asked is not None else None
    return json({"value": [render.task(request, op) for op in ops]}, headers=headers)


@status_routes.delete(BASE + "/Tasks")
async def cancel_tasks(request: web.Request) -> web.Response:
    """Cancel the tasks (all of this access token's if none is named); `result` says whether each
    was still running or waiting. The answer comes once they have stopped (or after a while)."""
    operations = request.app[operations_key]
    ops = _tasks(request)
    running = [op for op in ops if not op.done]
    await asyncio.gather(*(operations.cancel(op) for op in running))
    return json(
        {
            "value": [
                {"id": op.token, "taskType": render.task_type(op.kind), "result": op in running} for op in ops
            ]
        }
    )
