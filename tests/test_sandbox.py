"""Sandbox controls (spec6): the `Sandbox-Pace-Ms` header, fault injection, introspection of
operations and deliveries, long polling of Tasks, and the server-sent event stream.

Every test runs the server in process on 127.0.0.1 through `aiohttp_client` over a real folder
under tmp_path, with real sockets; webhooks go to a real receiver (tests/webhook_receiver.py).
Timings are short (paces of tens of ms per entry, webhook backoff 0.05 s); waits are polls with a
deadline or long polls. Lower bounds on durations are tight, upper bounds loose (noisy machine).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CHILDREN,
    Api,
    assert_problem,
    disk_tree,
    make_settings,
    part_files,
    sign_in,
    tree_snapshot,
)
from sse_client import Message, open_stream
from test_operations import (
    COPY_CHILDREN,
    COPY_SHORT,
    RUNNING,
    copy_token,
    delete_token,
    monitor,
    task,
    token_of,
    wait_done,
    wait_progress,
)
from test_webhooks import (
    ASYNC,
    FAST,
    QUIET_S,
    El,
    Reply,
    check_webhook,
    dispatched,
    files_in,
    is_2xx,
    make_files,
)
from test_webhooks import assert_problem as reply_problem
from webhook_receiver import ELEMENTS_SETTINGS, HUB, hub_auth, wait_for

from server.app import create_app

USERS = (("admin", "admin"), ("alice", "a"), ("bob", "b"))
PACE = "Sandbox-Pace-Ms"
HUB_AUTH = hub_auth()
N_FILES = 10
ENTRIES = N_FILES + 1  # the top folder counts as an entry
TERMINAL = ("Completed", "Failed", "Cancelled")
OP_KEYS = {
    "operationToken",
    "operationType",
    "status",
    "percentComplete",
    "entriesDone",
    "entriesTotal",
    "paceMs",
    "sessionId",
    "user",
    "entryId",
    "label",
    "eventId",
    "errors",
    "createdTimestamp",
    "startTimestamp",
    "statusTimestamp",
    "timeline",
}
DELIVERY_KEYS = {"notificationId", "eventId", "instanceId", "url", "status", "sessionId", "attempts"}
ATTEMPT_KEYS = {"number", "startedTimestamp", "durationMs", "statusCode", "error"}
FAULT_KEYS = {"id", "kind", "sessionId", "user", "remaining", "created"}
NO_SUCH_TOKEN = "0f0e0d0c-0000-4000-8000-000000000000"


# --------------------------------------------------------------------------- helpers


@dataclass
class Env:
    client: Any
    el: El

    async def login(self, user: str = "admin") -> Api:
        return Api(self.client, await sign_in(self.client, user, dict(USERS)[user]))

    async def call(
        self,
        method: str,
        path: str,
        who: Api | dict[str, str] | None,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        kw: dict[str, Any] = {
            "params": params or {},
            "headers": {**auth_of(who), **(headers or {})},
            "allow_redirects": False,
        }
        if body is not None:
            kw["json"] = body
        async with self.client.request(method, path, **kw) as resp:
            text = await resp.text()
            return Reply(resp.status, resp.headers, text, resp.content_type)

    async def ok(self, method: str, path: str, who: Any, status: int = 200, **kw: Any) -> Any:
        r = await self.call(method, path, who, **kw)
        assert r.status == status, f"{method} {path}: expected {status}, got {r.status}: {r.text[:500]}"
        return r.json() if r.text else None

    # -- sandbox routes ---------------------------------------------------------------

    async def ops(self, who: Any, **params: str) -> list[dict]:
        body = await self.ok("GET", "/sandbox/operations", who, params=params)
        for op in body["value"]:
            check_op(op)
        return body["value"]

    async def op(self, who: Any, token: str) -> dict:
        op = await self.ok("GET", f"/sandbox/operations/{token}", who)
        check_op(op)
        return op

    async def arm(self, who: Any, **fault: Any) -> dict:
        body = await self.ok("POST", "/sandbox/faults", who, 201, body=fault)
        check_fault(body)
        return body

    async def faults(self, who: Any) -> list[dict]:
        body = await self.ok("GET", "/sandbox/faults", who)
        for f in body["value"]:
            check_fault(f)
        return body["value"]

    async def deliveries(self, who: Any, **params: str) -> list[dict]:
        body = await self.ok("GET", "/sandbox/deliveries", who, params=params)
        for d in body["value"]:
            check_delivery(d)
        return body["value"]

    def stream(self, who: Any, params: dict[str, str] | None = None, headers: dict[str, str] | None = None):
        return open_stream(self.client, {**auth_of(who), **(headers or {})}, params)


def auth_of(who: Api | dict[str, str] | None) -> dict[str, str]:
    if who is None:
        return {}
    if isinstance(who, Api):
        return {"Authorization": f"Bearer {who.token}"}
    return dict(who)


async def open_env(aiohttp_client, storage_root: Path, **overrides: Any) -> Env:
    settings = make_settings(storage_root, users=USERS, **{**ELEMENTS_SETTINGS, **FAST, **overrides})
    client = await aiohttp_client(create_app(settings))
    return Env(client, El(client.session, str(client.make_url("/")).rstrip("/")))


async def with_source(
    aiohttp_client, storage_root: Path, files: int, **overrides: Any
) -> tuple[Env, Api, dict]:
    """An app, the admin signed in, and a folder /Src of `files` documents: the env, the admin
    and the folder's entry."""
    env = await open_env(aiohttp_client, storage_root, **overrides)
    admin = await env.login()
    make_files(storage_root / "Src", files)
    return env, admin, await admin.by_path("\\Src")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_op(op: dict) -> None:
    assert set(op) == OP_KEYS, f"extra {set(op) - OP_KEYS}, missing {OP_KEYS - set(op)}: {op}"
    assert isinstance(op["operationToken"], str)
    assert op["operationType"] in ("CopyEntry", "DeleteEntry"), op
    assert op["status"] in ("NotStarted", "InProgress", *TERMINAL), op
    assert isinstance(op["percentComplete"], int), op
    assert 0 <= op["percentComplete"] <= 100, op
    for name in ("entriesDone", "entriesTotal"):
        assert isinstance(op[name], int), op
        assert not isinstance(op[name], bool), op
    assert isinstance(op["paceMs"], int | float), op
    assert isinstance(op["sessionId"], str), op
    assert isinstance(op["user"], str), op
    assert isinstance(op["label"], str), op
    assert op["eventId"] is None or isinstance(op["eventId"], int), op
    for error in op["errors"]:
        assert {"objectId", "errorMessage"} <= set(error), op
    ts(op["createdTimestamp"])
    ts(op["statusTimestamp"])
    if op["startTimestamp"] is not None:
        ts(op["startTimestamp"])
    if op["status"] == "NotStarted":
        assert op["startTimestamp"] is None, op


def check_fault(f: dict) -> None:
    assert FAULT_KEYS <= set(f), f
    assert isinstance(f["id"], str) and f["id"], f
    assert isinstance(f["sessionId"], str) and f["sessionId"], f
    assert isinstance(f["remaining"], int), f
    ts(f["created"])


def check_delivery(d: dict) -> None:
    assert set(d) == DELIVERY_KEYS, f"extra {set(d) - DELIVERY_KEYS}, missing {DELIVERY_KEYS - set(d)}: {d}"
    assert d["status"] in ("pending", "delivering", "delivered", "queued"), d
    for a in d["attempts"]:
        assert set(a) == ATTEMPT_KEYS, a
        assert isinstance(a["number"], int), a
        ts(a["startedTimestamp"])


def duration_s(body: dict) -> float:
    """How long an ended operation ran, by its own timestamps (millisecond precision)."""
    return (ts(body["statusTimestamp"]) - ts(body["startTimestamp"])).total_seconds()


async def start_copy(
    api: Api, source_id: int, name: str, pace: Any = None, *, route: str = COPY_CHILDREN, dest_id: int = 1
):
    headers = {} if pace is None else {PACE: str(pace)}
    return await api.post(
        f"/Entries/{dest_id}/{route}", json={"sourceId": source_id, "name": name}, headers=headers
    )


async def copied(api: Api, source_id: int, name: str) -> tuple[str, Any, dict | None]:
    """Copy into the root and wait for the end: the token, the final response and its body."""
    token = await copy_token(api, 1, source_id, name)
    _, resp, body = await wait_done(api, token)
    return token, resp, body


async def paced_copy(api: Api, source_id: int, name: str, pace: Any = None, **kw: Any) -> str:
    return await token_of(await start_copy(api, source_id, name, pace, **kw))


async def elements_start(
    env: Env, method: str, path: str, callback: str, *, params=None, body=None, pace: Any = None, auth=None
) -> int:
    headers = {**ASYNC, "Elements-Async-Callback-URL": callback}
    if pace is not None:
        headers[PACE] = str(pace)
    r = await env.el.call(
        method, HUB + path, auth=auth or HUB_AUTH, params=params, body=body, headers=headers
    )
    return dispatched(r)


async def elements_op(env: Env, event_id: int) -> dict:
    found = [op for op in await env.ops(HUB_AUTH) if op["eventId"] == event_id]
    assert len(found) == 1, found
    return found[0]


def entries_under(top: Path) -> int:
    """Folders + documents of a copy, the top folder included (0 if it does not exist)."""
    if not top.exists():
        return 0
    return 1 + len(disk_tree(top))


def op_messages(msgs: list[Message], token: str) -> list[dict]:
    return [m.data for m in msgs if m.event == "operation" and m.data["operationToken"] == token]


def terminal_for(token: str):
    def pred(m: Message) -> bool:
        return m.event == "operation" and m.data["operationToken"] == token and m.data["status"] in TERMINAL

    return pred


async def expect_401(resp) -> dict:
    return await assert_problem(resp, 401)


# --------------------------------------------------------------------------- 1. pacing


async def test_pace_header_slows_a_copy_and_is_shown(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)
    pace = 60

    t0 = time.monotonic()
    token = await paced_copy(admin, src["id"], "Dst", pace)
    resp, body = await task(admin, token)
    assert resp.status == 202, body
    assert body["status"] in RUNNING, body
    assert await wait_progress(admin, token) is not None, "the paced copy was never seen InProgress"
    [op] = await env.ops(admin)
    assert op["operationToken"] == token
    assert op["status"] == "InProgress"
    assert op["paceMs"] == pace
    assert op["operationType"] == "CopyEntry"

    _, resp, body = await wait_done(admin, token)
    elapsed = time.monotonic() - t0
    assert resp.status == 302, body
    assert elapsed >= ENTRIES * pace / 1000, elapsed
    assert duration_s(body) >= ENTRIES * pace / 1000 - 0.01, body
    assert disk_tree(storage_root / "Dst") == disk_tree(storage_root / "Src")
    op = await env.op(admin, token)
    assert op["status"] == "Completed"
    assert op["percentComplete"] == 100
    assert op["paceMs"] == pace
    assert op["entriesDone"] == op["entriesTotal"] == ENTRIES


async def test_copy_without_pace_is_quick(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES, pace_ms=0)
    token = await paced_copy(admin, src["id"], "Dst")
    _, resp, body = await wait_done(admin, token)
    assert resp.status == 302, body
    assert duration_s(body) < 0.5, body
    op = await env.op(admin, token)
    assert op["paceMs"] == 0
    assert op["entriesDone"] == ENTRIES
    assert disk_tree(storage_root / "Dst") == disk_tree(storage_root / "Src")


async def test_pace_header_overrides_the_server_pace(aiohttp_client, storage_root):
    server_pace = 150  # 11 entries: 1.65 s
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES, pace_ms=server_pace)

    # 0 turns the pacing off for this copy
    token = await paced_copy(admin, src["id"], "Fast", 0)
    _, resp, body = await wait_done(admin, token)
    assert resp.status == 302, body
    assert duration_s(body) < 0.5, body
    assert (await env.op(admin, token))["paceMs"] == 0

    # a decimal value, on the short route
    token = await paced_copy(admin, src["id"], "Decimal", "12.5", route=COPY_SHORT)
    _, resp, body = await wait_done(admin, token)
    assert resp.status == 302, body
    assert ENTRIES * 0.0125 - 0.01 <= duration_s(body) < 1.2, body
    assert (await env.op(admin, token))["paceMs"] == 12.5

    # without the header: the server's pace
    token = await paced_copy(admin, src["id"], "Slow")
    assert await wait_progress(admin, token) is not None
    assert (await env.op(admin, token))["paceMs"] == server_pace
    assert (await admin.request("DELETE", f"/Tasks/{token}")).status == 204

    # the upper bound is allowed (and a cancel cuts its pause short)
    token = await paced_copy(admin, src["id"], "Slowest", 60000)
    resp, body = await task(admin, token)
    assert resp.status == 202, body
    assert (await env.op(admin, token))["paceMs"] == 60000
    t0 = time.monotonic()
    assert (await admin.request("DELETE", f"/Tasks/{token}")).status == 204
    resp, body = await task(admin, token)
    assert body["status"] == "Cancelled", body
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "60001", "inf"])
async def test_invalid_pace_header_is_400_and_starts_nothing(aiohttp_client, storage_root, receivers, value):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    rx = await receivers()
    make_files(storage_root / "Src", 3)
    src = await admin.by_path("\\Src")
    doc = await admin.by_path("\\Src\\f00.txt")
    before = tree_snapshot(storage_root, exclude_hidden_of=storage_root)
    h = {PACE: value}

    refused = [
        await start_copy(admin, src["id"], "Dst", value),
        await start_copy(admin, src["id"], "Dst", value, route=COPY_SHORT),
        await admin.post(
            f"/Entries/1/{CHILDREN}",
            json={"sourceId": src["id"], "name": "Dst"},
            headers=h,
        ),
        await admin.request("DELETE", f"/Entries/{doc['id']}", headers=h),
        await admin.request("DELETE", f"/Entries/{src['id']}", headers=h),
    ]
    for resp in refused:
        await assert_problem(resp, 400, PACE)

    elements = [
        await env.el.hub(
            "POST",
            "/folders/copy",
            params={"path": "/Src"},
            body={"path": "/Dst"},
            headers={**ASYNC, "Elements-Async-Callback-URL": rx.url, **h},
        ),
        await env.el.hub("POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"}, headers=h),
        await env.el.hub("DELETE", "/files", params={"path": "/Src/f00.txt"}, headers=h),
        await env.el.hub(
            "DELETE",
            "/folders",
            params={"path": "/Src"},
            headers={**ASYNC, "Elements-Async-Callback-URL": rx.url, **h},
        ),
    ]
    for r in elements:
        problem = reply_problem(r, 400)
        assert PACE.lower() in str(problem["detail"]).lower(), problem

    assert await env.ops(admin) == []
    assert await env.ops(HUB_AUTH) == []
    await asyncio.sleep(QUIET_S)  # anything started would have begun to show on disk
    assert tree_snapshot(storage_root, exclude_hidden_of=storage_root) == before
    assert rx.requests == []


async def test_pace_header_on_delete_and_synchronous_copy(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)
    pace = 40

    # the synchronous copy (POST children with sourceId) answers once it is done
    t0 = time.monotonic()
    resp = await admin.post(
        f"/Entries/1/{CHILDREN}",
        json={"sourceId": src["id"], "name": "Dst"},
        headers={PACE: str(pace)},
    )
    text = await resp.text()
    assert resp.status == 201, text
    assert time.monotonic() - t0 >= ENTRIES * pace / 1000
    assert disk_tree(storage_root / "Dst") == disk_tree(storage_root / "Src")

    dst = await admin.by_path("\\Dst")
    t0 = time.monotonic()
    token = await delete_token(admin, dst["id"], headers={PACE: str(pace)})
    resp, body = await task(admin, token)
    assert resp.status == 202, body
    assert body["status"] in RUNNING, body
    assert await wait_progress(admin, token, kind="DeleteEntry") is not None
    op = await env.op(admin, token)
    assert op["operationType"] == "DeleteEntry"
    assert op["paceMs"] == pace
    _, resp, body = await wait_done(admin, token, "DeleteEntry")
    assert resp.status == 200
    assert body["status"] == "Completed", body
    assert time.monotonic() - t0 >= ENTRIES * pace / 1000
    assert duration_s(body) >= ENTRIES * pace / 1000 - 0.01, body
    assert not (storage_root / "Dst").exists()
    op = await env.op(admin, token)
    assert op["entriesDone"] == op["entriesTotal"] == ENTRIES


async def test_pace_header_on_elements_copy_and_delete(aiohttp_client, storage_root, receivers):
    env = await open_env(aiohttp_client, storage_root)
    rx = await receivers()
    make_files(storage_root / "Src", N_FILES)
    pace = 50

    t0 = time.monotonic()
    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst"}, pace=pace
    )
    op = await elements_op(env, event_id)
    assert op["paceMs"] == pace
    assert op["status"] in RUNNING, op
    assert op["user"] == "elements"
    [rec] = await rx.wait_delivered(1, timeout=10)
    assert check_webhook(rec)["eventId"] == event_id
    assert rec.at - t0 >= ENTRIES * pace / 1000
    op = await elements_op(env, event_id)
    assert op["status"] == "Completed", op
    assert duration_s(op) >= ENTRIES * pace / 1000 - 0.01, op
    assert files_in(storage_root / "Dst") == files_in(storage_root / "Src")

    # synchronous copy and delete: the answer comes once the paced work is done
    t0 = time.monotonic()
    r = await env.el.hub(
        "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Sync"}, headers={PACE: "30"}
    )
    assert r.status == 200, r.text
    assert time.monotonic() - t0 >= ENTRIES * 0.030
    t0 = time.monotonic()
    r = await env.el.hub("DELETE", "/folders", params={"path": "/Sync"}, headers={PACE: "30"})
    assert r.status == 200, r.text
    assert time.monotonic() - t0 >= ENTRIES * 0.030
    assert not (storage_root / "Sync").exists()


# --------------------------------------------------------------------------- 2. operation faults


async def test_operation_failure_fault_fails_the_next_copy_after_k_entries(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)

    fault = await env.arm(admin, kind="operation-failure", afterEntries=4, message="Disk on fire.")
    assert fault["kind"] == "operation-failure"
    assert fault["user"] == "admin"
    assert fault["remaining"] == 1
    assert fault["afterEntries"] == 4
    assert fault["status"] == 500
    assert fault["message"] == "Disk on fire."
    assert fault["operationType"] is None
    assert await env.faults(admin) == [fault]

    token, resp, body = await copied(admin, src["id"], "Dst")
    assert resp.status == 200, body
    assert body["status"] == "Failed", body
    assert body["errors"][0]["errorMessage"] == "Disk on fire."
    # exactly K entries done, the top folder counted, each whole
    dst = storage_root / "Dst"
    assert entries_under(dst) == 4, disk_tree(dst) if dst.exists() else None
    for name in files_in(dst):
        assert (dst / name).read_bytes() == (storage_root / "Src" / name).read_bytes()
    assert part_files(storage_root) == []
    op = await env.op(admin, token)
    assert op["status"] == "Failed"
    assert op["entriesDone"] == 4
    assert op["errors"][0]["errorMessage"] == "Disk on fire."
    assert op["sessionId"] == fault["sessionId"]
    mresp, mbody = await monitor(admin, token)
    assert mresp.status == 200
    assert mbody["status"] == "Failed"
    assert "Disk on fire." in mbody["error"]["message"]

    # used up: gone from the list; the next copy succeeds
    assert await env.faults(admin) == []
    token, resp, body = await copied(admin, src["id"], "Dst2")
    assert resp.status == 302, body
    assert disk_tree(storage_root / "Dst2") == disk_tree(storage_root / "Src")


async def test_operation_failure_fault_times_and_defaults(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, 3)

    fault = await env.arm(admin, kind="operation-failure", times=2, status=503)
    assert fault["remaining"] == 2
    assert fault["afterEntries"] == 0
    assert fault["status"] == 503
    assert fault["operationType"] is None
    default_message = f"Injected failure (sandbox fault {fault['id']})."
    assert fault["message"] == default_message

    for n, name in enumerate(("One", "Two")):
        _, resp, body = await copied(admin, src["id"], name)
        assert resp.status == 200, body
        assert body["status"] == "Failed", body
        assert body["errors"][0]["errorMessage"] == default_message
        assert not (storage_root / name).exists(), "0 entries were to be copied"
        listed = await env.faults(admin)
        if n == 0:
            assert [(f["id"], f["remaining"]) for f in listed] == [(fault["id"], 1)]
        else:
            assert listed == []

    _, resp, body = await copied(admin, src["id"], "Three")
    assert resp.status == 302, body
    assert disk_tree(storage_root / "Three") == disk_tree(storage_root / "Src")


async def test_operation_failure_fault_for_deletes_leaves_copies_alone(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)
    fault = await env.arm(admin, kind="operation-failure", operationType="DeleteEntry", afterEntries=2)
    assert fault["operationType"] == "DeleteEntry"

    token, resp, body = await copied(admin, src["id"], "Dst")
    assert resp.status == 302, body
    assert [(f["id"], f["remaining"]) for f in await env.faults(admin)] == [(fault["id"], 1)]

    dst = await admin.by_path("\\Dst")
    token = await delete_token(admin, dst["id"])
    _, resp, body = await wait_done(admin, token, "DeleteEntry")
    assert resp.status == 200
    assert body["status"] == "Failed", body
    assert body["errors"][0]["errorMessage"] == f"Injected failure (sandbox fault {fault['id']})."
    # exactly 2 entries deleted; what is left is whole
    assert entries_under(storage_root / "Dst") == ENTRIES - 2
    for name in files_in(storage_root / "Dst"):
        assert (storage_root / "Dst" / name).read_bytes() == (storage_root / "Src" / name).read_bytes()
    assert (await env.op(admin, token))["entriesDone"] == 2
    assert await env.faults(admin) == []

    token = await delete_token(admin, dst["id"])
    _, resp, body = await wait_done(admin, token, "DeleteEntry")
    assert body["status"] == "Completed", body
    assert not (storage_root / "Dst").exists()


async def test_faults_belong_to_a_session_and_are_seen_by_their_user(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    alice1 = await env.login("alice")
    alice2 = await env.login("alice")
    bob = await env.login("bob")
    make_files(storage_root / "Src", 3)
    src = await admin.by_path("\\Src")

    fa = await env.arm(alice1, kind="operation-failure", message="alice's fault")
    assert fa["user"] == "alice"
    fb = await env.arm(bob, kind="operation-failure", operationType="DeleteEntry")
    assert fb["user"] == "bob"
    assert fb["sessionId"] != fa["sessionId"]

    # neither another user's session nor another session of the same user is affected
    for who, name in ((bob, "Bob"), (alice2, "Alice2")):
        token, resp, body = await copied(who, src["id"], name)
        assert resp.status == 302, (name, body)
    alice2_session = (await env.op(alice2, token))["sessionId"]
    assert alice2_session != fa["sessionId"]
    token, resp, body = await copied(alice1, src["id"], "Alice1")
    assert body["status"] == "Failed", body
    assert body["errors"][0]["errorMessage"] == "alice's fault"

    # each user sees their own faults; the admin sees all, oldest first
    fa2 = await env.arm(alice1, kind="operation-failure", operationType="DeleteEntry")
    assert [f["id"] for f in await env.faults(alice1)] == [fa2["id"]]
    assert [f["id"] for f in await env.faults(alice2)] == [fa2["id"]]  # every session of the user
    assert [f["id"] for f in await env.faults(bob)] == [fb["id"]]
    assert [f["id"] for f in await env.faults(admin)] == [fb["id"], fa2["id"]]
    reply_problem(await env.call("DELETE", f"/sandbox/faults/{fb['id']}", alice1), 404)
    assert [f["id"] for f in await env.faults(bob)] == [fb["id"]]

    # a session may be named: one of the caller's own user, not another user's or an unknown one
    r = await env.call(
        "POST", "/sandbox/faults", alice1, body={"kind": "operation-failure", "sessionId": fb["sessionId"]}
    )
    reply_problem(r, 404)
    r = await env.call(
        "POST", "/sandbox/faults", alice1, body={"kind": "operation-failure", "sessionId": "no-such-session"}
    )
    reply_problem(r, 404)
    fa3 = await env.arm(alice1, kind="operation-failure", sessionId=alice2_session)
    assert fa3["sessionId"] == alice2_session
    # disarmed, it does nothing
    assert (await env.call("DELETE", f"/sandbox/faults/{fa3['id']}", alice1)).status == 204
    token, resp, body = await copied(alice2, src["id"], "Alice2b")
    assert resp.status == 302, body
    reply_problem(await env.call("DELETE", f"/sandbox/faults/{fa3['id']}", alice1), 404)

    # the admin may disarm anyone's
    assert (await env.call("DELETE", f"/sandbox/faults/{fa2['id']}", admin)).status == 204
    assert await env.faults(alice1) == []

    # DELETE /sandbox/faults clears what the caller sees, nothing else
    await env.arm(alice1, kind="operation-failure", operationType="DeleteEntry")
    await env.arm(alice2, kind="operation-failure", operationType="DeleteEntry")
    assert len(await env.faults(alice1)) == 2
    assert (await env.call("DELETE", "/sandbox/faults", alice1)).status == 204
    assert await env.faults(alice1) == []
    assert [f["id"] for f in await env.faults(bob)] == [fb["id"]]
    assert (await env.call("DELETE", f"/sandbox/faults/{fb['id']}", bob)).status == 204
    assert await env.faults(bob) == []
    reply_problem(await env.call("DELETE", f"/sandbox/faults/{fb['id']}", bob), 404)
    await env.arm(bob, kind="operation-failure", operationType="DeleteEntry")
    assert (await env.call("DELETE", "/sandbox/faults", admin)).status == 204
    assert await env.faults(admin) == []
    assert await env.faults(bob) == []


async def test_invalid_faults_are_400_and_create_nothing(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    url = "http://127.0.0.1:9/hook"
    bad: list[Any] = [
        {},
        {"kind": "nope"},
        {"kind": 5},
        {"kind": "operation-failure", "bogus": 1},
        {"kind": "operation-failure", "afterEntries": "3"},
        {"kind": "operation-failure", "afterEntries": -1},
        {"kind": "operation-failure", "afterEntries": 1.5},
        {"kind": "operation-failure", "status": 399},
        {"kind": "operation-failure", "status": 600},
        {"kind": "operation-failure", "status": "500"},
        {"kind": "operation-failure", "message": 5},
        {"kind": "operation-failure", "operationType": "MoveEntry"},
        {"kind": "operation-failure", "times": 0},
        {"kind": "operation-failure", "times": 1001},
        {"kind": "operation-failure", "sessionId": 7},
        {"kind": "webhook-failure", "url": url, "status": "503"},
        {"kind": "webhook-failure", "url": url, "times": 0},
        {"kind": "webhook-failure", "url": 5},
        {"kind": "webhook-delay", "url": url, "delayMs": 0},
        {"kind": "webhook-delay", "url": url, "delayMs": -5},
        {"kind": "webhook-delay", "url": url, "delayMs": 600001},
        {"kind": "webhook-delay", "url": url, "delayMs": "100"},
        {"kind": "expire-token", "operationToken": 5},
        [],
        "operation-failure",
    ]
    for body in bad:
        r = await env.call("POST", "/sandbox/faults", admin, body=body)
        reply_problem(r, 400)
    r = await env.call(
        "POST", "/sandbox/faults", admin, headers={"Content-Type": "application/json"}
    )  # no body at all
    reply_problem(r, 400)
    async with env.client.post(
        "/sandbox/faults", data=b"{not json", headers={**auth_of(admin), "Content-Type": "application/json"}
    ) as resp:
        await assert_problem(resp, 400)
    assert await env.faults(admin) == []

    # the bounds themselves are allowed
    good = [
        {"kind": "operation-failure", "status": 400, "times": 1000, "afterEntries": 0},
        {"kind": "operation-failure", "status": 599},
        {"kind": "webhook-failure", "url": url, "status": 500, "times": 3},
        {"kind": "webhook-delay", "url": url, "delayMs": 600000},
        {"kind": "webhook-delay", "url": url, "delayMs": 1},
    ]
    armed = [await env.arm(admin, **g) for g in good]
    assert armed[0]["remaining"] == 1000
    assert armed[2]["status"] == 500
    assert armed[2]["url"] == url
    assert armed[3]["delayMs"] == 600000
    assert [f["id"] for f in await env.faults(admin)] == [f["id"] for f in armed]
    assert (await env.call("DELETE", "/sandbox/faults", admin)).status == 204
    assert await env.faults(admin) == []


async def test_elements_operation_failure_webhook_carries_the_error(aiohttp_client, storage_root, receivers):
    env = await open_env(aiohttp_client, storage_root)
    rx = await receivers()
    make_files(storage_root / "Src", N_FILES)
    message = "Injected: the disk is full."
    fault = await env.arm(HUB_AUTH, kind="operation-failure", afterEntries=2, status=507, message=message)
    assert fault["user"] == "elements"
    assert await env.faults(HUB_AUTH) == [fault]

    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst"}
    )
    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["eventId"] == event_id
    response = body["response"]
    assert response["error"] == {"status": 507, "message": message}
    events = response["events"]
    assert len(events) == 2, events  # the K entries done: the folder and one file
    assert events[0]["metadata"]["type"] == "folder"
    assert entries_under(storage_root / "Dst") == 2
    op = await elements_op(env, event_id)
    assert op["status"] == "Failed"
    assert op["errors"][0]["errorMessage"] == message
    assert op["entriesDone"] == 2
    assert await env.faults(HUB_AUTH) == []


# --------------------------------------------------------------------------- 3. webhook faults


async def test_webhook_failure_fault_fails_attempts_without_sending(aiohttp_client, storage_root, receivers):
    env = await open_env(aiohttp_client, storage_root, webhook_retries=2, webhook_backoff_s=0.05)
    rx = await receivers()
    make_files(storage_root / "Src", 2)
    fault = await env.arm(HUB_AUTH, kind="webhook-failure", url=rx.url, times=2, status=503)
    assert fault["kind"] == "webhook-failure"
    assert fault["url"] == rx.url
    assert fault["status"] == 503
    assert fault["remaining"] == 2

    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst"}
    )
    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["eventId"] == event_id

    ev = await env.el.wait_event(
        event_id,
        lambda e: e["deliveries"] and e["deliveries"][-1]["status"] == "delivered",
        "the delivery to be recorded",
    )
    [d] = ev["deliveries"]
    assert [a["attempt"] for a in d["attempts"]] == [1, 2, 3]
    codes = [a["statusCode"] for a in d["attempts"]]
    assert codes[:2] == [503, 503], d
    assert is_2xx(codes[2]), d
    for a in d["attempts"][:2]:
        assert "fault" in str(a["error"]).lower(), a

    # the sandbox's view of the same delivery
    [sd] = await env.deliveries(HUB_AUTH, eventId=str(event_id))
    assert sd["eventId"] == event_id
    assert sd["notificationId"] == body["notificationId"]
    assert sd["url"] == rx.url
    assert sd["status"] == "delivered"
    assert [a["number"] for a in sd["attempts"]] == [1, 2, 3]
    assert [a["statusCode"] for a in sd["attempts"]][:2] == [503, 503]
    assert is_2xx(sd["attempts"][2]["statusCode"])
    assert all("fault" in str(a["error"]).lower() for a in sd["attempts"][:2]), sd
    assert sd["attempts"][2]["error"] is None

    await asyncio.sleep(QUIET_S)
    assert len(rx.requests) == 1, "the failed attempts must never reach the receiver"
    assert await env.faults(HUB_AUTH) == []


async def test_webhook_delay_fault_holds_the_webhook(aiohttp_client, storage_root, receivers):
    env = await open_env(aiohttp_client, storage_root)
    rx = await receivers()
    make_files(storage_root / "Src", 2)
    delay = 400
    fault = await env.arm(HUB_AUTH, kind="webhook-delay", url=rx.url, delayMs=delay)
    assert fault["delayMs"] == delay
    assert fault["remaining"] == 1

    t0 = time.monotonic()
    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst"}
    )
    [rec] = await rx.wait_delivered(1, timeout=10)
    received_wall = time.time() - (time.monotonic() - rec.at)
    assert check_webhook(rec)["eventId"] == event_id
    assert delay / 1000 <= rec.at - t0 < 8
    op = await elements_op(env, event_id)
    assert op["status"] == "Completed", op
    late = received_wall - ts(op["statusTimestamp"]).timestamp()
    assert late >= delay / 1000 - 0.005, f"the webhook came {late:.3f} s after the operation ended"
    assert await env.faults(HUB_AUTH) == []

    # used up: the next webhook is not held
    t0 = time.monotonic()
    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst2"}
    )
    await rx.wait_delivered(2)
    assert check_webhook(rx.delivered[1])["eventId"] == event_id


async def test_webhook_faults_only_touch_their_own_session(aiohttp_client, storage_root, receivers):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    rx = await receivers()
    rx2 = await receivers()
    make_files(storage_root / "Src", 2)
    r = await env.el.create_instance("second", rx2.url, "second-key")
    second = hub_auth(r.json()["token"])
    # armed in the admin's own (Laserfiche) session and in the second instance's session
    mine = await env.arm(admin, kind="webhook-failure", url=rx.url)
    theirs = await env.arm(second, kind="webhook-failure", url=rx.url)
    assert theirs["user"] == "elements"
    assert theirs["sessionId"] != mine["sessionId"]

    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst"}
    )
    [rec] = await rx.wait_delivered(1)
    assert check_webhook(rec)["eventId"] == event_id
    [d] = await env.deliveries(HUB_AUTH, eventId=str(event_id))
    assert [(a["number"], a["statusCode"]) for a in d["attempts"]] == [(1, 200)], d
    assert {(f["id"], f["remaining"]) for f in await env.faults(admin)} == {
        (mine["id"], 1),
        (theirs["id"], 1),
    }

    # the admin may arm one for the first instance's session by naming it
    session = (await elements_op(env, event_id))["sessionId"]
    aimed = await env.arm(admin, kind="webhook-failure", url=rx.url, sessionId=session, status=502)
    assert aimed["sessionId"] == session
    assert aimed["user"] == "elements"
    # a Laserfiche user who is not an admin may not
    alice = await env.login("alice")
    r = await env.call(
        "POST",
        "/sandbox/faults",
        alice,
        body={"kind": "webhook-failure", "url": rx.url, "sessionId": session},
    )
    reply_problem(r, 404)
    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst2"}
    )
    await rx.wait_delivered(2)
    assert check_webhook(rx.delivered[1])["eventId"] == event_id
    [d] = await env.deliveries(HUB_AUTH, eventId=str(event_id))
    assert [a["statusCode"] for a in d["attempts"]] == [502, 200], d
    assert len(rx.requests) == 2
    assert aimed["id"] not in {f["id"] for f in await env.faults(admin)}


# --------------------------------------------------------------------------- 4. expire-token


async def test_expire_operation_token(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    bob = await env.login("bob")
    make_files(storage_root / "Src", N_FILES)
    src = await admin.by_path("\\Src")

    token = await paced_copy(admin, src["id"], "Done")
    _, resp, _ = await wait_done(admin, token)
    assert resp.status == 302
    body = await env.ok(
        "POST", "/sandbox/faults", admin, body={"kind": "expire-token", "operationToken": token}
    )
    assert body == {"kind": "expire-token", "operationToken": token}
    for path in (f"/Tasks/{token}/status", f"/Tasks/{token}"):
        problem = await assert_problem(await admin.get(path, allow_redirects=False), 404)
        assert problem["title"] == "Operation token expired.", problem
    assert token not in [op["operationToken"] for op in await env.ops(admin)]
    reply_problem(await env.call("GET", f"/sandbox/operations/{token}", admin), 404)
    assert await env.faults(admin) == []  # immediate, not listed
    assert disk_tree(storage_root / "Done") == disk_tree(storage_root / "Src")

    # a running operation never expires
    token = await paced_copy(admin, src["id"], "Running", 100)
    assert await wait_progress(admin, token) is not None
    r = await env.call(
        "POST", "/sandbox/faults", admin, body={"kind": "expire-token", "operationToken": token}
    )
    reply_problem(r, 409)
    resp, body = await task(admin, token)
    assert resp.status == 202, body
    assert (await env.op(admin, token))["status"] == "InProgress"
    assert (await admin.request("DELETE", f"/Tasks/{token}")).status == 204

    # another user's operation, or an unknown token: 404, and nothing changes
    theirs = await paced_copy(bob, src["id"], "Bobs")
    _, resp, _ = await wait_done(bob, theirs)
    assert resp.status == 302
    alice = await env.login("alice")
    for t in (theirs, NO_SUCH_TOKEN):
        r = await env.call(
            "POST", "/sandbox/faults", alice, body={"kind": "expire-token", "operationToken": t}
        )
        reply_problem(r, 404)
    resp, _ = await task(bob, theirs)
    assert resp.status == 302


async def test_expire_access_token(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    alice1 = await env.login("alice")
    alice2 = await env.login("alice")
    alice3 = await env.login("alice")
    bob = await env.login("bob")

    # the caller's own
    mine = await env.arm(alice1, kind="operation-failure", operationType="DeleteEntry")
    assert (await env.call("DELETE", f"/sandbox/faults/{mine['id']}", alice1)).status == 204
    body = await env.ok("POST", "/sandbox/faults", alice1, body={"kind": "expire-token"})
    assert body == {"kind": "expire-token", "sessionId": mine["sessionId"]}
    problem = await expect_401(await alice1.get("/Entries/1"))
    assert "expire" in problem["detail"].lower(), problem
    r = await env.call("GET", "/sandbox/faults", alice1)
    assert "expire" in reply_problem(r, 401)["detail"].lower()

    # another session of the same user, named
    f3 = await env.arm(alice3, kind="operation-failure", operationType="DeleteEntry")
    assert (await env.call("DELETE", f"/sandbox/faults/{f3['id']}", alice3)).status == 204
    body = await env.ok(
        "POST", "/sandbox/faults", alice2, body={"kind": "expire-token", "sessionId": f3["sessionId"]}
    )
    assert body == {"kind": "expire-token", "sessionId": f3["sessionId"]}
    problem = await expect_401(await alice3.get("/Entries/1"))
    assert "expire" in problem["detail"].lower(), problem

    # another user's session, or an unknown one: 404, and it still works
    fb = await env.arm(bob, kind="operation-failure", operationType="DeleteEntry")
    assert (await env.call("DELETE", f"/sandbox/faults/{fb['id']}", bob)).status == 204
    r = await env.call(
        "POST", "/sandbox/faults", alice2, body={"kind": "expire-token", "sessionId": fb["sessionId"]}
    )
    reply_problem(r, 404)
    r = await env.call(
        "POST", "/sandbox/faults", alice2, body={"kind": "expire-token", "sessionId": "no-such-session"}
    )
    reply_problem(r, 404)
    resp = await bob.get("/Entries/1")
    assert resp.status == 200, await resp.text()
    resp = await alice2.get("/Entries/1")
    assert resp.status == 200, await resp.text()

    # the admin may expire anyone's
    f2 = await env.arm(alice2, kind="operation-failure", operationType="DeleteEntry")
    assert (await env.call("DELETE", f"/sandbox/faults/{f2['id']}", alice2)).status == 204
    body = await env.ok(
        "POST", "/sandbox/faults", admin, body={"kind": "expire-token", "sessionId": f2["sessionId"]}
    )
    assert body == {"kind": "expire-token", "sessionId": f2["sessionId"]}
    await expect_401(await alice2.get("/Entries/1"))
    resp = await admin.get("/Entries/1")
    assert resp.status == 200, await resp.text()

    # Elements credentials cannot expire this way
    reply_problem(await env.call("POST", "/sandbox/faults", HUB_AUTH, body={"kind": "expire-token"}), 400)
    assert await env.faults(HUB_AUTH) == []
    r = await env.el.hub("GET", "/folders/contents", params={"path": "/"})
    assert r.status == 200, r.text


# --------------------------------------------------------------------------- 5. introspection


async def test_operations_list_filters_and_visibility(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    alice1 = await env.login("alice")
    alice2 = await env.login("alice")
    bob = await env.login("bob")
    make_files(storage_root / "Src", 3)
    (storage_root / "x.txt").write_bytes(b"x")
    src = await admin.by_path("\\Src")
    doc = await admin.by_path("\\x.txt")

    t1 = await copy_token(alice1, 1, src["id"], "A")
    await wait_done(alice1, t1)
    t2 = await delete_token(alice2, doc["id"])
    await wait_done(alice2, t2, "DeleteEntry")
    await env.arm(alice1, kind="operation-failure")
    t3 = await copy_token(alice1, 1, src["id"], "B")
    await wait_done(alice1, t3)
    t4 = await copy_token(bob, 1, src["id"], "C")
    await wait_done(bob, t4)

    ops = await env.ops(alice1)
    assert [op["operationToken"] for op in ops] == [t3, t2, t1]  # newest first
    by = {op["operationToken"]: op for op in ops}
    assert [by[t]["status"] for t in (t1, t2, t3)] == ["Completed", "Completed", "Failed"]
    assert all(op["user"] == "alice" for op in ops)
    assert all(op["eventId"] is None for op in ops)
    s1, s2 = by[t1]["sessionId"], by[t2]["sessionId"]
    assert s1 == by[t3]["sessionId"] != s2
    assert by[t1]["label"].startswith("Copy"), by[t1]
    assert "Src" in by[t1]["label"] and "A" in by[t1]["label"], by[t1]
    assert by[t2]["label"].startswith("Delete"), by[t2]
    assert "x.txt" in by[t2]["label"], by[t2]
    assert by[t1]["entriesDone"] == by[t1]["entriesTotal"] == 4
    assert by[t1]["percentComplete"] == 100
    assert by[t2]["operationType"] == "DeleteEntry"
    assert by[t2]["entriesDone"] == by[t2]["entriesTotal"] == 1
    assert by[t3]["errors"] and by[t3]["entriesDone"] == 0
    assert await env.ops(alice2) == ops  # every session of the user
    assert await env.op(alice2, t1) == by[t1]

    async def tokens(who, **params):
        return [op["operationToken"] for op in await env.ops(who, **params)]

    assert await tokens(alice1, status="Failed") == [t3]
    assert await tokens(alice1, status="Completed") == [t2, t1]
    assert await tokens(alice1, status="InProgress") == []
    assert await tokens(alice1, type="DeleteEntry") == [t2]
    assert await tokens(alice1, type="CopyEntry") == [t3, t1]
    assert await tokens(alice1, sessionId=s1) == [t3, t1]
    assert await tokens(alice1, sessionId=s2) == [t2]
    assert await tokens(alice1, status="Completed", type="CopyEntry") == [t1]
    assert await tokens(alice1, user="bob") == []

    # bob sees his own only; the admin sees everyone's
    assert await tokens(bob) == [t4]
    reply_problem(await env.call("GET", f"/sandbox/operations/{t4}", alice1), 404)
    reply_problem(await env.call("GET", f"/sandbox/operations/{t1}", bob), 404)
    reply_problem(await env.call("GET", f"/sandbox/operations/{NO_SUCH_TOKEN}", admin), 404)
    assert await tokens(admin) == [t4, t3, t2, t1]
    assert await tokens(admin, user="bob") == [t4]
    assert await tokens(admin, user="alice") == [t3, t2, t1]
    assert await tokens(admin, **{"$top": "2"}) == [t4, t3]
    assert await tokens(admin, sessionId=s2) == [t2]
    assert (await env.op(admin, t4))["user"] == "bob"
    assert await tokens(HUB_AUTH) == []  # the Elements user has none of these

    for params in ({"status": "Running"}, {"status": "bogus"}, {"type": "MoveEntry"}, {"type": "copyentry"}):
        reply_problem(await env.call("GET", "/sandbox/operations", admin, params=params), 400)


async def test_cancel_from_another_session_of_the_same_user(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    alice1 = await env.login("alice")
    alice2 = await env.login("alice")
    bob = await env.login("bob")
    make_files(storage_root / "Src", N_FILES)
    src = await admin.by_path("\\Src")

    token = await paced_copy(alice1, src["id"], "Dst", 100)
    assert await wait_progress(alice1, token) is not None
    # not bob's to see or to stop; nor the Elements user's
    for who in (bob, HUB_AUTH):
        reply_problem(await env.call("POST", f"/sandbox/operations/{token}/cancel", who), 404)
        reply_problem(await env.call("GET", f"/sandbox/operations/{token}", who), 404)
    resp, body = await task(alice1, token)
    assert resp.status == 202, body

    op = await env.ok("POST", f"/sandbox/operations/{token}/cancel", alice2)
    check_op(op)
    assert op["operationToken"] == token
    assert op["status"] == "Cancelled", op
    assert op["percentComplete"] < 100
    resp, body = await task(alice1, token)
    assert resp.status == 200, body
    assert body["status"] == "Cancelled"
    assert body["percentComplete"] == op["percentComplete"]
    assert entries_under(storage_root / "Dst") < ENTRIES

    # an ended one is returned as it is, to anyone who can see it
    again = await env.ok("POST", f"/sandbox/operations/{token}/cancel", admin)
    assert again == op
    reply_problem(await env.call("POST", f"/sandbox/operations/{NO_SUCH_TOKEN}/cancel", admin), 404)


async def test_deliveries_list(aiohttp_client, storage_root, receivers):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    alice = await env.login("alice")
    rx = await receivers()
    make_files(storage_root / "Src", 2)
    event_id = await elements_start(
        env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst"}
    )
    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)

    async def recorded():
        found = [d for d in await env.deliveries(HUB_AUTH) if d["eventId"] == event_id]
        return found if found and found[0]["status"] == "delivered" else None

    [d] = await wait_for(recorded, "the delivery to be listed as delivered")
    assert d["notificationId"] == body["notificationId"]
    assert d["instanceId"] == body["instanceId"] == 1
    assert d["url"] == rx.url
    [a] = d["attempts"]
    assert a["number"] == 1
    assert a["statusCode"] == 200
    assert a["error"] is None
    assert isinstance(a["durationMs"], int | float) and a["durationMs"] >= 0
    op = await elements_op(env, event_id)
    assert d["sessionId"] == op["sessionId"]

    assert await env.deliveries(HUB_AUTH, eventId=str(event_id)) == [d]
    assert await env.deliveries(HUB_AUTH, eventId="999999") == []
    assert d in await env.deliveries(HUB_AUTH, status="delivered")
    assert await env.deliveries(HUB_AUTH, status="queued") == []
    assert await env.deliveries(admin, eventId=str(event_id)) == [d]
    assert await env.deliveries(alice) == []


# --------------------------------------------------------------------------- 6. long poll


async def long_poll(api: Api, path: str, wait: str) -> tuple[Any, dict, float]:
    """GET `path?wait=…`: the response, its body and how long it took."""
    t0 = time.monotonic()
    resp = await api.get(path, params={"wait": wait}, allow_redirects=False)
    body = await resp.json()
    return resp, body, time.monotonic() - t0


async def test_long_poll_answers_when_the_operation_ends(aiohttp_client, storage_root):
    _, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)
    pace = 45  # ~0.5 s
    # the status monitor (200 Succeeded) and the Tasks route (302 to the copy), each on its own copy
    for n, (suffix, status, state, read) in enumerate(
        [("/status", 200, "Succeeded", monitor), ("", 302, "Completed", task)]
    ):
        t0 = time.monotonic()
        token = await paced_copy(admin, src["id"], f"Dst{n}", pace)
        resp, body, took = await long_poll(admin, f"/Tasks/{token}{suffix}", "5")
        assert resp.status == status, body
        assert body["status"] == state, body
        assert body["percentComplete"] == 100
        assert time.monotonic() - t0 >= ENTRIES * pace / 1000, "answered before the copy could have ended"
        assert took < 4.0, "the long poll did not answer when the copy ended"
        plain_resp, plain = await read(admin, token)
        assert plain_resp.status == status
        assert plain == body
        assert plain_resp.headers.get("Location") == resp.headers.get("Location")

    # a terminal operation answers at once, whatever the wait (over 60 means 60)
    resp, _, took = await long_poll(admin, f"/Tasks/{token}", "100")
    assert resp.status == 302 and took < 2.0
    resp, _, took = await long_poll(admin, f"/Tasks/{token}/status", "0")
    assert resp.status == 200 and took < 2.0


async def test_long_poll_times_out_with_the_running_state(aiohttp_client, storage_root):
    _, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)
    pace = 150  # ~1.65 s

    t0 = time.monotonic()
    token = await paced_copy(admin, src["id"], "Dst", pace)
    resp, _, took = await long_poll(admin, f"/Tasks/{token}", "0")
    assert resp.status == 202 and took < 1.0

    for suffix, status, state in (("/status", 200, "Running"), ("", 202, "InProgress")):
        resp, body, took = await long_poll(admin, f"/Tasks/{token}{suffix}", "0.3")
        assert resp.status == status, body
        assert body["status"] == state, body
        assert 0.3 - 0.005 <= took < 2.0, took

    resp, body, _ = await long_poll(admin, f"/Tasks/{token}", "10")
    assert resp.status == 302, body
    assert body["status"] == "Completed"
    assert time.monotonic() - t0 >= ENTRIES * pace / 1000


async def test_long_poll_invalid_wait_is_400(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    (storage_root / "a.txt").write_bytes(b"a")
    doc = await admin.by_path("\\a.txt")
    token = await copy_token(admin, 1, doc["id"], "b.txt")
    await wait_done(admin, token)
    for value in ("-1", "x", "nan", "-0.5"):
        for path in (f"/Tasks/{token}", f"/Tasks/{token}/status"):
            resp = await admin.get(path, params={"wait": value}, allow_redirects=False)
            await assert_problem(resp, 400, "wait")


# --------------------------------------------------------------------------- 7. event stream


async def test_event_stream_follows_a_paced_copy(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)
    pace = 40

    async with env.stream(admin) as stream:
        token = await paced_copy(admin, src["id"], "Dst", pace)
        msgs = await stream.until(terminal_for(token), "the copy's terminal message")
        after = await stream.quiet(QUIET_S)

    ids = [m.id for m in msgs]
    assert all(isinstance(i, int) for i in ids), ids
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    assert all(m.event == "operation" for m in msgs), [(m.event, m.data) for m in msgs]
    mine = op_messages(msgs, token)
    assert len(mine) == len(msgs)
    for d in mine:
        check_op(d)
        assert d["paceMs"] == pace
    percents = [d["percentComplete"] for d in mine]
    assert percents == sorted(percents), percents
    done = [d["entriesDone"] for d in mine]
    assert done == sorted(done), done
    assert mine[0]["status"] in RUNNING, mine[0]
    rising = sorted({d["percentComplete"] for d in mine if d["status"] == "InProgress"})
    assert len(rising) >= 2, f"too few progress messages: {percents}"
    assert 0 < rising[-1] < 100, rising
    last = mine[-1]
    assert last["status"] == "Completed", last
    assert last["percentComplete"] == 100
    assert last["entriesDone"] == ENTRIES
    assert all(d["status"] != "Completed" for d in mine[:-1])
    assert op_messages(after, token) == [], "a message followed the terminal one"
    assert await env.op(admin, token) == last


async def test_event_stream_limited_to_one_operation(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin1 = await env.login()
    admin2 = await env.login()
    make_files(storage_root / "Src", N_FILES)
    src = await admin1.by_path("\\Src")
    first = await paced_copy(admin1, src["id"], "One", 30)
    second = await paced_copy(admin2, src["id"], "Two", 30)
    async with env.stream(admin1, params={"operationToken": first}) as stream:
        msgs = await stream.until(terminal_for(first), "the first copy's terminal message")
        _, resp, _ = await wait_done(admin2, second)
        assert resp.status == 302
        msgs += await stream.quiet(QUIET_S)
    assert msgs
    assert {(m.event, m.data["operationToken"]) for m in msgs} == {("operation", first)}
    assert msgs[-1].data["status"] == "Completed"


async def test_event_stream_replays_after_last_event_id(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, N_FILES)

    async with env.stream(admin) as stream:
        token = await paced_copy(admin, src["id"], "Dst", 30)
        original = await stream.until(terminal_for(token), "the copy's terminal message")
    assert len(original) >= 3, original
    pivot = original[1]
    expected = [(m.id, m.event, m.data) for m in original if m.id > pivot.id]

    async with env.stream(admin, headers={"Last-Event-ID": str(pivot.id)}) as stream:
        replayed = await stream.until(terminal_for(token), "the replayed terminal message", timeout=5)
        replayed += await stream.quiet(QUIET_S)
    assert [(m.id, m.event, m.data) for m in replayed] == expected

    async with env.stream(admin, headers={"Last-Event-ID": str(original[-1].id)}) as stream:
        assert await stream.quiet(QUIET_S) == []


async def test_event_stream_needs_credentials(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    routes = [
        ("GET", "/sandbox/events", None),
        ("GET", "/sandbox/operations", None),
        ("GET", f"/sandbox/operations/{NO_SUCH_TOKEN}", None),
        ("POST", f"/sandbox/operations/{NO_SUCH_TOKEN}/cancel", None),
        ("GET", "/sandbox/faults", None),
        ("POST", "/sandbox/faults", {"kind": "operation-failure"}),
        ("POST", "/sandbox/faults", {"kind": "expire-token"}),
        ("DELETE", "/sandbox/faults", None),
        ("DELETE", "/sandbox/faults/1", None),
        ("GET", "/sandbox/deliveries", None),
    ]
    bad = [
        None,
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        hub_auth(element_token="wrong-token"),
        hub_auth(user="wrong-secret"),
    ]
    for who in bad:
        for method, path, body in routes:
            r = await env.call(method, path, who, body=body)
            assert r.status == 401, (method, path, who, r.status, r.text[:300])
            reply_problem(r, 401)
    assert await env.faults(admin) == []
    resp = await admin.get("/Entries/1")
    assert resp.status == 200, await resp.text()


async def test_event_stream_keepalive(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root, sse_keepalive_s=0.2)
    admin = await env.login()
    async with env.stream(admin) as stream:
        await wait_for(lambda: "keepalive" in stream.comments, "a keepalive comment", timeout=3)


async def test_event_stream_shows_only_visible_operations(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    alice = await env.login("alice")
    bob = await env.login("bob")
    make_files(storage_root / "Src", 3)
    src = await admin.by_path("\\Src")

    async with env.stream(alice) as alice_stream, env.stream(admin) as admin_stream:
        bobs = await paced_copy(bob, src["id"], "Bob", 20)
        _, resp, _ = await wait_done(bob, bobs)
        assert resp.status == 302
        alices = await paced_copy(alice, src["id"], "Alice", 20)
        seen_by_alice = await alice_stream.until(terminal_for(alices), "alice's terminal message")
        seen_by_admin = await admin_stream.until(terminal_for(alices), "alice's terminal message (admin)")
    assert all(m.event == "operation" for m in seen_by_alice)
    assert {m.data["operationToken"] for m in seen_by_alice} == {alices}
    assert {m.data["user"] for m in seen_by_alice} == {"alice"}
    assert op_messages(seen_by_admin, bobs), "the admin's stream should show bob's copy"
    assert op_messages(seen_by_admin, bobs)[-1]["status"] == "Completed"


async def test_event_stream_delivery_messages(aiohttp_client, storage_root, receivers):
    env = await open_env(aiohttp_client, storage_root, webhook_retries=2, webhook_backoff_s=0.05)
    admin = await env.login()
    alice = await env.login("alice")
    rx = await receivers()
    make_files(storage_root / "Src", 2)
    await env.arm(HUB_AUTH, kind="webhook-failure", url=rx.url, times=1, status=503)

    async with (
        env.stream(HUB_AUTH) as stream,
        env.stream(alice) as alice_stream,
        env.stream(admin) as admin_stream,
    ):
        event_id = await elements_start(
            env, "POST", "/folders/copy", rx.url, params={"path": "/Src"}, body={"path": "/Dst"}
        )

        def delivered(m: Message) -> bool:
            return (
                m.event == "delivery"
                and m.data["eventId"] == event_id
                and any(is_2xx(a["statusCode"]) for a in m.data["attempts"])
            )

        msgs = await stream.until(delivered, "the delivery message of the successful attempt")
        admin_saw = await admin_stream.until(delivered, "the delivery message in the admin's stream")
        alice_saw = await alice_stream.quiet(QUIET_S)
    await rx.wait_delivered(1)
    assert len(rx.requests) == 1

    ids = [m.id for m in msgs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    deliveries = [m.data for m in msgs if m.event == "delivery" and m.data["eventId"] == event_id]
    for d in deliveries:
        check_delivery(d)
        assert d["url"] == rx.url
    with_attempts = [d for d in deliveries if d["attempts"]]
    assert all(len(d["attempts"]) == 1 for d in with_attempts), with_attempts
    attempts = [d["attempts"][0] for d in with_attempts]
    assert [a["number"] for a in attempts] == [1, 2], attempts
    assert attempts[0]["statusCode"] == 503
    assert "fault" in str(attempts[0]["error"]).lower()
    assert is_2xx(attempts[1]["statusCode"])
    assert with_attempts[-1]["status"] == "delivered"

    ops = [m for m in msgs if m.event == "operation" and m.data["eventId"] == event_id]
    assert ops, "no operation message for the Elements copy"
    assert all(m.data["user"] == "elements" for m in ops)
    end = next(i for i, m in enumerate(msgs) if m in ops and m.data["status"] in TERMINAL)
    assert msgs[end].data["status"] == "Completed"
    first_delivery = next(i for i, m in enumerate(msgs) if m.event == "delivery")
    assert end < first_delivery, "the webhook is sent after the operation ended"

    # an admin sees them too; a Laserfiche user who is not an admin sees neither
    assert [m.data for m in admin_saw if m.event == "delivery"] == deliveries
    assert op_messages(admin_saw, ops[0].data["operationToken"]) == [m.data for m in ops]
    assert alice_saw == [], [(m.event, m.data) for m in alice_saw]


async def test_event_stream_throttles_progress_messages(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, 60)
    async with env.stream(admin) as stream:
        token = await paced_copy(admin, src["id"], "Dst", 5)  # 61 entries, a percent rise every ~5 ms
        msgs = await stream.until(terminal_for(token), "the copy's terminal message")
    mine = op_messages(msgs, token)
    last = mine[-1]
    assert last["status"] == "Completed"
    ran = duration_s(last)
    progress = [d for d in mine if d["status"] == "InProgress"]
    assert len({d["percentComplete"] for d in progress}) >= 2, mine
    # "at most about every 50 ms": generously, twice that rate, plus the start and a final one
    assert len(progress) <= 2 * ran / 0.05 + 3, (len(progress), ran)


# --------------------------------------------------------------------------- found in review


async def test_failure_fault_beyond_the_entries_fails_at_the_end(aiohttp_client, storage_root):
    """A fault armed for more entries than the operation has still fires (at its end), rather than
    being used up by an operation that then completes."""
    env, admin, src = await with_source(aiohttp_client, storage_root, 3)
    await env.arm(admin, kind="operation-failure", afterEntries=100, message="never reached")
    _, resp, body = await wait_done(admin, await paced_copy(admin, src["id"], "Dst"))
    assert resp.status == 200 and body["status"] == "Failed", body
    assert body["errors"][-1]["errorMessage"] == "never reached"
    assert entries_under(storage_root / "Dst") == 4  # everything was done first
    assert await env.faults(admin) == []


async def test_keepalive_reaches_a_filtered_stream_while_others_are_busy(aiohttp_client, storage_root):
    env, admin, src = await with_source(aiohttp_client, storage_root, 10, sse_keepalive_s=0.2)
    token = await paced_copy(admin, src["id"], "Dst", 100)  # ~1.1 s of progress messages
    async with env.stream(admin, {"operationToken": "no-such-operation"}) as stream:
        await wait_for(lambda: len(stream.comments) >= 2, "keep-alives on a filtered stream", timeout=3)
        assert (await env.op(admin, token))["status"] == "InProgress"


async def test_a_stream_ends_once_its_access_token_expires(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root, sse_keepalive_s=0.1)
    admin = await env.login()
    async with env.stream(admin) as stream:
        await env.ok("POST", "/sandbox/faults", admin, body={"kind": "expire-token"})
        await wait_for(lambda: stream._task.done(), "the stream's end", timeout=3)


@pytest.mark.parametrize("last_id", ["²", "-1", "1e3", " ", "9" * 40])
async def test_odd_last_event_ids_replay_nothing(aiohttp_client, storage_root, last_id):
    env = await open_env(aiohttp_client, storage_root, sse_keepalive_s=0.1)
    admin = await env.login()
    async with env.stream(admin, headers={"Last-Event-ID": last_id}) as stream:
        assert await stream.quiet(0.2) == []


async def test_head_on_the_event_stream_is_405(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    r = await env.call("HEAD", "/sandbox/events", admin)
    assert r.status == 405


async def test_an_unknown_elements_session_cannot_be_a_fault_target(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    for who in (admin, HUB_AUTH):
        r = await env.call(
            "POST",
            "/sandbox/faults",
            who,
            body={"kind": "operation-failure", "sessionId": "el-0123456789abcdef"},
        )
        assert r.status == 404, r.text
    assert await env.faults(admin) == []


async def test_a_bad_pace_header_does_not_stop_a_folder_create(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    resp = await admin.post(
        "/Entries/1/Laserfiche.Repository.Folder/children",
        json={"entryType": "Folder", "name": "F"},
        headers={PACE: "abc"},
    )
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize("kind", ["copy", "delete"])
async def test_a_cancel_after_the_last_entry_leaves_the_operation_completed(
    aiohttp_client, storage_root, kind
):
    """Cancel stops the work between entries; one that comes while the last entry's pace runs
    stopped nothing, so the operation reports what happened: Completed (found under load)."""
    env, admin, src = await with_source(aiohttp_client, storage_root, 1)
    if kind == "copy":
        token = await paced_copy(admin, src["id"], "Dst", 600)
    else:
        resp = await admin.request("DELETE", f"/Entries/{src['id']}", headers={PACE: "600"})
        token = await token_of(resp)
    # the last entry is done, and its pause has begun
    await wait_for_op(
        env, admin, token, lambda op: op["entriesTotal"] and op["entriesDone"] == op["entriesTotal"]
    )
    assert (await admin.request("DELETE", f"/Tasks/{token}")).status == 204
    _, _, body = await wait_done(admin, token, "CopyEntry" if kind == "copy" else "DeleteEntry")
    assert body["status"] == "Completed", body
    assert body["percentComplete"] == 100
    if kind == "copy":
        assert entries_under(storage_root / "Dst") == 2
    else:
        assert not (storage_root / "Src").exists()


async def wait_for_op(env: Env, who: Any, token: str, pred: Any, timeout: float = 5.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        op = await env.op(who, token)
        if pred(op):
            return op
        assert loop.time() < deadline, f"operation never reached the state: {op}"
        await asyncio.sleep(0.01)


async def test_at_most_a_thousand_faults_are_armed(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin = await env.login()
    url = "http://127.0.0.1:9/hook"
    for _ in range(1000):
        await env.ok(
            "POST", "/sandbox/faults", admin, 201, body={"kind": "webhook-delay", "url": url, "delayMs": 1}
        )
    r = await env.call(
        "POST", "/sandbox/faults", admin, body={"kind": "webhook-delay", "url": url, "delayMs": 1}
    )
    assert reply_problem(r, 429)["title"] == "Operation limit or request limit reached."
    assert len(await env.faults(admin)) == 1000
    # an expiry is not armed, so it is still done
    await env.ok("POST", "/sandbox/faults", admin, body={"kind": "expire-token"})


async def test_stats_are_for_admins(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    admin, alice = await env.login(), await env.login("alice")
    stats = await env.ok("GET", "/sandbox/stats", admin)
    assert stats["asyncioTasks"] > 0 and stats["openFiles"] > 0 and stats["rssBytes"] > 0
    assert stats["operations"] == stats["runningOperations"] == stats["pendingDeliveries"] == 0
    reply_problem(await env.call("GET", "/sandbox/stats", alice), 404)
    reply_problem(await env.call("GET", "/sandbox/stats", HUB_AUTH), 404)
