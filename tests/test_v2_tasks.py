"""Laserfiche Repository API v2, tasks on the operations engine (issue 12's "Done when"; CONTRACT-V2.md
"v2 tasks", LF-V2-CLIENT.md §1 Tasks, §2.1 to 2.3, §3, /work/v2plan.md): CopyAsync and DELETE Entries start
tasks, GET Tasks long-polls (bounded by `task_wait_s`, shortened by `Prefer: wait=N`), DELETE Tasks cancels
with a per-task result, StartTestTaskAsync, queueing past the per-session running limit, one record for both
dialects, expiry, and a `kill -9` in the middle of a task.

In process over real sockets (`aiohttp_client`) and a real folder under tmp_path, except the crash test, which
runs `python -m server` twice over the same root. Operations are slowed with `Sandbox-Pace-Ms` (per entry),
never by mocking time; lower bounds on durations are tight, upper bounds loose (a loaded 2-core machine).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from conftest import (
    BASE,
    HIDDEN,
    REPO_ID,
    TASK_ENDED,
    V2_CHILDREN,
    V2BASE,
    Api,
    assert_problem,
    assert_task_shape,
    disk_tree,
    make_settings,
    part_files,
    sign_in,
    start_v2_task,
    tree_snapshot,
    v1_of,
    v2_import_form,
    v2_task,
    v2_tasks,
    wait_v2_task,
)
from test_operations import LIMIT_TITLE, build_many, copy_token, task, token_of, wait_done
from test_operations_process import make_tree
from test_restart import RemoteClient

from server.app import create_app

PACE = "Sandbox-Pace-Ms"
CANCEL_TITLE = "Cannot cancel ended operation."
# a poll loop gives up after this long: every task here ends within a few seconds
DEADLINE_S = 30.0
RUNNING = ("NotStarted", "InProgress")
V1_COPY = "Laserfiche.Repository.Folder/CopyAsync"


# --------------------------------------------------------------------------- helpers


async def open_v2(aiohttp_client, storage_root: Path, **overrides) -> Api:
    """A signed-in v2 Api (the v1 Token route, as the official v2 client signs in) over these settings."""
    client = await aiohttp_client(create_app(make_settings(storage_root, **overrides)))
    return Api(client, await sign_in(client), base=V2BASE)


async def another_session(api: Api) -> Api:
    return Api(api.client, await sign_in(api.client), base=api.base)


async def copy_async(api: Api, dest_id: int, source_id: int, name: str, *, pace=None, auto_rename=None):
    body: dict = {"sourceId": source_id, "name": name}
    if auto_rename is not None:
        body["autoRename"] = auto_rename
    headers = {} if pace is None else {PACE: str(pace)}
    return await api.post(f"/Entries/{dest_id}/Folder/CopyAsync", json=body, headers=headers)


async def start_copy(api: Api, dest_id: int, source_id: int, name: str, **kw) -> str:
    return await start_v2_task(await copy_async(api, dest_id, source_id, name, **kw))


async def start_delete(api: Api, entry_id: int, body: dict | None = None, pace=None) -> str:
    headers = {} if pace is None else {PACE: str(pace)}
    return await start_v2_task(
        await api.request(
            "DELETE", f"/Entries/{entry_id}", json={} if body is None else body, headers=headers
        )
    )


async def v1_paced_copy(v1: Api, source_id: int, name: str, pace: int) -> str:
    """A v1 CopyAsync into the root, slowed with the pace header: its token."""
    resp = await v1.post(
        f"/Entries/1/{V1_COPY}", json={"sourceId": source_id, "name": name}, headers={PACE: str(pace)}
    )
    return await token_of(resp)


async def cancel(api: Api, *task_ids: str):
    """DELETE Tasks: the response and its JSON body."""
    resp = await api.request("DELETE", "/Tasks", params=[("taskIds", t) for t in task_ids])
    text = await resp.text()
    return resp, (json.loads(text) if text and "json" in resp.content_type else None)


async def cancelled(api: Api, *task_ids: str) -> dict[str, bool]:
    """DELETE Tasks answering 200: task id -> result."""
    resp, body = await cancel(api, *task_ids)
    assert resp.status == 200, body
    out = {}
    for item in body["value"]:
        assert set(item) == {"id", "taskType", "result"}, item
        assert isinstance(item["result"], bool), item
        out[item["id"]] = item["result"]
    return out


async def wait_running(api: Api, task_id: str, at_least: int = 1) -> dict | None:
    """Poll with `Prefer: wait=0` until the task is InProgress at `at_least` % (its progress), or None if it
    ended first."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        t = await v2_task(api, task_id, wait=0)
        if t["status"] in TASK_ENDED:
            return None
        if t["status"] == "InProgress" and t["percentComplete"] >= at_least:
            return t
        await asyncio.sleep(0.005)
    raise AssertionError(f"task {task_id} made no progress to {at_least}%")


def ts(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert dt.tzinfo is not None, value
    return dt


def assert_no_leftovers(root: Path) -> None:
    assert part_files(root) == []
    tmp = root / HIDDEN / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def entry_url(api: Api, entry_id: int) -> str:
    return str(api.client.make_url(f"{V2BASE}/Entries/{entry_id}"))


def assert_completed_copy(t: dict, api: Api) -> int:
    """A Completed copy's TaskProgress; the new entry's id."""
    assert_task_shape(t)
    assert t["status"] == "Completed", t
    assert t["taskType"] == "CopyEntry", t
    assert t["percentComplete"] == 100, t
    assert t["errors"] == [], t
    entry_id = t["result"]["entryId"]
    assert isinstance(entry_id, int) and entry_id > 1, t
    assert t["result"]["uri"] == entry_url(api, entry_id), t
    ts(t["startTime"])
    assert ts(t["lastUpdateTime"]) >= ts(t["startTime"])
    return entry_id


# --------------------------------------------------------------------------- the flow end to end


async def test_v2_copy_flow_end_to_end(aiohttp_client, storage_root):
    """Sign in, create a folder with files, CopyAsync -> 202 {taskId}, GET Tasks long-polls to Completed with
    result.entryId; the copy on disk is the source byte for byte."""
    client = await aiohttp_client(create_app(make_settings(storage_root)))
    resp = await client.post(
        f"/v1/Repositories/{REPO_ID}/Token",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
        headers={"Accept": "application/json"},
    )
    assert resp.status == 200, await resp.text()
    v2 = Api(client, (await resp.json())["access_token"], base=V2BASE)

    resp = await v2.post(
        f"/Entries/1/{V2_CHILDREN}", json={"name": "Source", "autoRename": True, "entryType": "Folder"}
    )
    assert resp.status == 201, await resp.text()
    src = await resp.json()
    resp = await v2.post(f"/Entries/{src['id']}/{V2_CHILDREN}", json={"name": "Sub", "entryType": "Folder"})
    assert resp.status == 201, await resp.text()
    sub = await resp.json()
    files = {
        (src["id"], "small.txt"): b"hello\n",
        (src["id"], "big.bin"): bytes(range(256)) * 8192,  # 2 MiB
        (sub["id"], "inner.pdf"): b"integration test content",
    }
    for (parent, name), data in files.items():
        form = v2_import_form(data, filename=name, request={"name": name, "autoRename": False})
        resp = await v2.post(f"/Entries/{parent}/Folder/Import", data=form)
        assert resp.status == 201, await resp.text()

    resp = await copy_async(v2, 1, src["id"], "Copy", auto_rename=True)
    assert resp.status == 202, await resp.text()
    task_id = await start_v2_task(resp)

    # no Prefer: the answer is held until the copy has ended (what the official Search test relies on)
    resp, body = await v2_tasks(v2, task_id, wait=None)
    assert resp.status == 200, body
    [t] = body["value"]
    assert t["id"] == task_id
    new_id = assert_completed_copy(t, v2)

    entry = await v2.entry(new_id)
    assert (entry["name"], entry["parentId"], entry["entryType"]) == ("Copy", 1, "Folder")
    assert disk_tree(storage_root / "Copy") == disk_tree(storage_root / "Source")
    assert (storage_root / "Copy" / "big.bin").read_bytes() == files[(src["id"], "big.bin")]
    assert_no_leftovers(storage_root)
    # asked again, the same answer
    again = await v2_task(v2, task_id)
    assert again["status"] == "Completed" and again["result"] == t["result"]


async def test_copy_async_refused_before_a_task(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    build_many(storage_root / "Src", folders=1, files_per_folder=2)
    (storage_root / "Taken").mkdir()
    src = await v1_of(v2).by_path("\\Src")
    sub = await v1_of(v2).by_path("\\Src\\dir0")
    before = tree_snapshot(storage_root, exclude_hidden_of=storage_root)
    await assert_problem(await copy_async(v2, 1, 987654, "x"), 404)
    await assert_problem(await copy_async(v2, 987654, src["id"], "x"), 404)
    await assert_problem(await copy_async(v2, sub["id"], src["id"], "loop"), 400)
    await assert_problem(await copy_async(v2, 1, src["id"], "Taken", auto_rename=False), 409)
    await assert_problem(await copy_async(v2, 1, src["id"], "a/b"), 400, "name")
    await assert_problem(await v2.post("/Entries/1/Folder/CopyAsync", json={"name": "x"}), 400, "sourceId")
    assert tree_snapshot(storage_root, exclude_hidden_of=storage_root) == before
    ops = await v2.client.get("/sandbox/operations", headers=v2.headers)
    assert ops.status == 200
    assert (await ops.json())["value"] == []
    # the route works: a good request starts a task
    t = await wait_v2_task(v2, await start_copy(v2, 1, src["id"], "Taken", auto_rename=True))
    assert (await v2.entry(assert_completed_copy(t, v2)))["name"] == "Taken (2)"


# --------------------------------------------------------------------------- long polling


async def test_prefer_wait_0_answers_at_once_with_rising_progress(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)  # task_wait_s at its default (60 s)
    build_many(storage_root / "Src", folders=3, files_per_folder=10)  # 34 entries
    src = await v1_of(v2).by_path("\\Src")
    task_id = await start_copy(v2, 1, src["id"], "Copy", pace=40)  # ~1.4 s

    seen: list[dict] = []
    deadline = time.monotonic() + DEADLINE_S
    while True:
        t0 = time.monotonic()
        resp, body = await v2_tasks(v2, task_id, wait=0)
        took = time.monotonic() - t0
        assert resp.status == 200, body
        assert took < 3.0, f"Prefer: wait=0 held the answer {took:.2f}s"
        [t] = body["value"]
        assert_task_shape(t)
        if t["status"] in TASK_ENDED:
            break
        assert t["percentComplete"] < 100, t
        if seen:
            assert t["percentComplete"] >= seen[-1]["percentComplete"], (seen[-1], t)
        seen.append(t)
        assert time.monotonic() < deadline, t
        await asyncio.sleep(0.02)
    assert_completed_copy(t, v2)
    running = [s["percentComplete"] for s in seen if s["status"] == "InProgress"]
    assert len(set(running)) >= 3, f"percentComplete did not rise while the copy ran: {running}"
    assert disk_tree(storage_root / "Copy") == disk_tree(storage_root / "Src")


async def test_long_poll_answers_when_the_task_ends(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root, task_wait_s=30.0)
    build_many(storage_root / "Src", folders=1, files_per_folder=25)  # 27 entries
    src = await v1_of(v2).by_path("\\Src")
    pace = 50
    t0 = time.monotonic()
    task_id = await start_copy(v2, 1, src["id"], "Copy", pace=pace)
    resp, body = await v2_tasks(v2, task_id, wait=None)
    ended = time.monotonic()
    assert resp.status == 200, body
    [t] = body["value"]
    assert_completed_copy(t, v2)
    assert ended - t0 >= 27 * pace / 1000 * 0.9, "answered before the copy could have ended"
    assert ended - t0 < 12, "the long poll did not answer when the task ended"

    # an ended task answers at once, whatever the wait
    t1 = time.monotonic()
    assert (await v2_task(v2, task_id, wait=None))["status"] == "Completed"
    assert time.monotonic() - t1 < 2


async def test_long_poll_is_bounded_by_task_wait_s(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root, task_wait_s=1.0)
    build_many(storage_root / "Src", folders=2, files_per_folder=30)  # 63 entries
    src = await v1_of(v2).by_path("\\Src")
    task_id = await start_copy(v2, 1, src["id"], "Copy", pace=100)  # ~6 s
    try:
        for wait in (None, 5):  # no Prefer, and a Prefer longer than the server's bound
            t0 = time.monotonic()
            resp, body = await v2_tasks(v2, task_id, wait=wait)
            took = time.monotonic() - t0
            assert resp.status == 200, body
            [t] = body["value"]
            assert t["status"] in RUNNING, t
            assert 0.9 <= took < 3.5, f"held {took:.2f}s with task_wait_s=1 (Prefer wait={wait})"
            # (RFC 7240: what was applied, the server's bound, not what was asked)
            assert resp.headers.get("Preference-Applied") == (None if wait is None else "wait=1"), (
                resp.headers
            )
    finally:
        await cancel(v2, task_id)


async def test_prefer_wait_shortens_the_long_poll(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root, task_wait_s=30.0)
    build_many(storage_root / "Src", folders=2, files_per_folder=30)
    src = await v1_of(v2).by_path("\\Src")
    task_id = await start_copy(v2, 1, src["id"], "Copy", pace=100)  # ~6 s
    try:
        t0 = time.monotonic()
        resp, body = await v2_tasks(v2, task_id, wait=1)
        took = time.monotonic() - t0
        assert resp.status == 200, body
        assert body["value"][0]["status"] in RUNNING, body
        assert 0.9 <= took < 3.5, f"Prefer: wait=1 held the answer {took:.2f}s"
        assert resp.headers.get("Preference-Applied") == "wait=1", resp.headers
    finally:
        await cancel(v2, task_id)


# --------------------------------------------------------------------------- which tasks a request sees


async def test_task_ids_repeated_comma_separated_or_none(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    (storage_root / "a.txt").write_bytes(b"a")
    doc = await v1_of(v2).by_path("\\a.txt")
    a = await start_copy(v2, 1, doc["id"], "a1.txt")
    b = await start_copy(v2, 1, doc["id"], "a2.txt")
    other = await another_session(v2)
    c = await start_copy(other, 1, doc["id"], "a3.txt")
    for t in (a, b):
        assert (await wait_v2_task(v2, t))["status"] == "Completed"
    assert (await wait_v2_task(other, c))["status"] == "Completed"

    for comma in (False, True):
        resp, body = await v2_tasks(v2, a, b, comma=comma)
        assert resp.status == 200, body
        assert {t["id"] for t in body["value"]} == {a, b}, (comma, body)
        for t in body["value"]:
            assert_task_shape(t)
    # no ids: every task of this token, and only those
    resp, body = await v2_tasks(v2)
    assert resp.status == 200, body
    assert {t["id"] for t in body["value"]} == {a, b}
    resp, body = await v2_tasks(other)
    assert {t["id"] for t in body["value"]} == {c}

    # another session's task is as good as unknown: 404 when none is the caller's, else left out
    for ids in ((c,), ("no-such-task",), (c, "no-such-task")):
        resp, body = await v2_tasks(v2, *ids)
        await assert_problem(resp, 404)
    resp, body = await v2_tasks(v2, a, c, "no-such-task")
    assert resp.status == 200, body
    assert [t["id"] for t in body["value"]] == [a]
    resp, body = await v2_tasks(other, a, c)
    assert [t["id"] for t in body["value"]] == [c]


async def test_another_sessions_running_task_is_not_seen_or_cancelled(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    build_many(storage_root / "Src", folders=1, files_per_folder=25)
    src = await v1_of(v2).by_path("\\Src")
    task_id = await start_copy(v2, 1, src["id"], "Mine", pace=30)
    assert await wait_running(v2, task_id) is not None
    other = await another_session(v2)
    resp, _ = await v2_tasks(other, task_id)
    await assert_problem(resp, 404)
    resp, body = await cancel(other, task_id)
    assert resp.status == 404 or (resp.status == 200 and body["value"] == []), (resp.status, body)
    # it ran to its end
    assert_completed_copy(await wait_v2_task(v2, task_id), v2)
    assert disk_tree(storage_root / "Mine") == disk_tree(storage_root / "Src")


# --------------------------------------------------------------------------- cancel


async def test_cancel_mid_copy(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    source = make_tree(storage_root / "Many", folders=3, per_folder=20, top_files=3)
    src = await v1_of(v2).by_path("\\Many")
    task_id = await start_copy(v2, 1, src["id"], "Partial", pace=30)  # ~2 s
    assert await wait_running(v2, task_id, at_least=20) is not None, "the paced copy ended before the cancel"

    assert await cancelled(v2, task_id) == {task_id: True}
    _, body = await cancel(v2, task_id)  # the answer names the task's type too
    assert body["value"] == [{"id": task_id, "taskType": "CopyEntry", "result": False}]

    # stopped before the cancel answered
    t = await v2_task(v2, task_id)
    assert t["status"] == "Cancelled", t
    assert 0 < t["percentComplete"] < 100, t
    dest = storage_root / "Partial"
    snapshot = disk_tree(dest)
    copied = {rel: data for rel, data in snapshot.items() if data is not None}
    assert 0 < len(copied) < len(source), f"{len(copied)} of {len(source)} files copied"
    for rel, data in copied.items():
        assert rel in source, rel
        assert data == source[rel], f"{rel} differs from its source"
    assert_no_leftovers(storage_root)
    await asyncio.sleep(0.2)  # ~7 paced entries: a copy still running would show
    assert disk_tree(dest) == snapshot
    assert (await v2_task(v2, task_id))["percentComplete"] == t["percentComplete"]

    # cancelling a task that has ended is no error: result false, and nothing changes
    (storage_root / "one.txt").write_bytes(b"1")
    doc = await v1_of(v2).by_path("\\one.txt")
    done = await start_copy(v2, 1, doc["id"], "two.txt")
    assert (await wait_v2_task(v2, done))["status"] == "Completed"
    assert await cancelled(v2, done) == {done: False}
    assert (await v2_task(v2, done))["status"] == "Completed"
    assert (storage_root / "two.txt").read_bytes() == b"1"


async def test_cancel_without_ids_cancels_all_of_the_token(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root, v2_running_per_session=1)
    build_many(storage_root / "Src", folders=2, files_per_folder=20)
    src = await v1_of(v2).by_path("\\Src")
    first = await start_copy(v2, 1, src["id"], "First", pace=40)
    second = await start_copy(v2, 1, src["id"], "Second", pace=40)
    other = await another_session(v2)
    theirs = await start_copy(other, 1, src["id"], "Theirs", pace=5)
    assert await wait_running(v2, first) is not None
    assert (await v2_task(v2, second))["status"] == "NotStarted"

    resp = await v2.request("DELETE", "/Tasks")
    assert resp.status == 200, await resp.text()
    results = {i["id"]: i["result"] for i in (await resp.json())["value"]}
    assert results == {first: True, second: True}
    for t in (first, second):
        assert (await v2_task(v2, t))["status"] == "Cancelled"
    assert not (storage_root / "Second").exists(), "a task cancelled before it started made its copy"
    # the other session's task was not touched
    assert_completed_copy(await wait_v2_task(other, theirs), other)
    assert disk_tree(storage_root / "Theirs") == disk_tree(storage_root / "Src")


async def test_v1_cancel_of_an_ended_operation_is_400(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    v1 = v1_of(v2)
    (storage_root / "a.txt").write_bytes(b"a")
    build_many(storage_root / "Src", folders=1, files_per_folder=30)
    doc = await v1.by_path("\\a.txt")
    src = await v1.by_path("\\Src")

    # a v1 operation that has ended
    token = await copy_token(v1, 1, doc["id"], "b.txt")
    _, resp, _ = await wait_done(v1, token)
    assert resp.status == 302
    problem = await assert_problem(await v1.request("DELETE", f"/Tasks/{token}"), 400)
    assert problem["title"] == CANCEL_TITLE
    resp, body = await task(v1, token)  # nothing changed
    assert resp.status == 302 and body["status"] == "Completed"

    # a running one: still 204, and once it has ended, 400
    token = await v1_paced_copy(v1, src["id"], "Copy", 30)
    resp = await v1.request("DELETE", f"/Tasks/{token}")
    assert resp.status == 204, await resp.text()
    resp, body = await task(v1, token)
    assert body["status"] == "Cancelled", body
    problem = await assert_problem(await v1.request("DELETE", f"/Tasks/{token}"), 400)
    assert problem["title"] == CANCEL_TITLE

    # a v2 task that has ended, cancelled through v1
    done = await start_copy(v2, 1, doc["id"], "c.txt")
    assert (await wait_v2_task(v2, done))["status"] == "Completed"
    problem = await assert_problem(await v1.request("DELETE", f"/Tasks/{done}"), 400)
    assert problem["title"] == CANCEL_TITLE


# --------------------------------------------------------------------------- one record, two dialects


async def test_tasks_are_read_in_both_dialects(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    v1 = v1_of(v2)
    build_many(storage_root / "Src", folders=1, files_per_folder=3)
    (storage_root / "Doomed").mkdir()
    src = await v1.by_path("\\Src")
    doomed = await v1.by_path("\\Doomed")

    # a v2 copy, read through v1's Tasks/{token}
    task_id = await start_copy(v2, 1, src["id"], "V2Copy")
    new_id = assert_completed_copy(await wait_v2_task(v2, task_id), v2)
    resp, body = await task(v1, task_id)
    assert resp.status == 302, body  # the docs profile's completed copy
    assert resp.headers["Location"] == str(v1.client.make_url(f"{BASE}/Entries/{new_id}"))
    assert (body["operationToken"], body["operationType"], body["status"]) == (
        task_id,
        "CopyEntry",
        "Completed",
    )
    assert body["percentComplete"] == 100

    # a v2 delete, read through v1
    delete_id = await start_delete(v2, doomed["id"], {"auditReasonComment": "tidy up"})
    assert (await wait_v2_task(v2, delete_id))["status"] == "Completed"
    resp, body = await task(v1, delete_id)
    assert resp.status == 200, body
    assert (body["operationType"], body["status"]) == ("DeleteEntry", "Completed")
    assert not (storage_root / "Doomed").exists()

    # a v1 copy, read through v2's Tasks
    token = await copy_token(v1, 1, src["id"], "V1Copy")
    _, resp, body = await wait_done(v1, token)
    assert resp.status == 302
    t = await v2_task(v2, token)
    assert t["id"] == token
    assert assert_completed_copy(t, v2) == body["entryId"] == int(resp.headers["Location"].rsplit("/", 1)[1])
    assert (
        disk_tree(storage_root / "V1Copy")
        == disk_tree(storage_root / "V2Copy")
        == disk_tree(storage_root / "Src")
    )


async def test_sandbox_operations_lists_v2_tasks(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    build_many(storage_root / "Src", folders=1, files_per_folder=20)
    src = await v1_of(v2).by_path("\\Src")
    copy_id = await start_copy(v2, 1, src["id"], "Copy", pace=30)
    other = await another_session(v2)
    resp = await other.post("/Tasks/StartTestTaskAsync", params={"operationTime": "30"})
    test_id = await start_v2_task(resp, 200)
    try:
        resp = await v2.client.get("/sandbox/operations", headers=v2.headers)  # the same bearer
        assert resp.status == 200, await resp.text()
        ops = {op["operationToken"]: op for op in (await resp.json())["value"]}
        assert copy_id in ops and test_id in ops, ops
        assert ops[copy_id]["operationType"] == "CopyEntry"
        assert ops[test_id]["operationType"] == "TestTask"
        assert ops[copy_id]["status"] in RUNNING
        resp = await v2.client.get(f"/sandbox/operations/{copy_id}", headers=v2.headers)
        assert resp.status == 200
        assert (await resp.json())["operationToken"] == copy_id
    finally:
        await cancel(v2, copy_id)
        await cancel(other, test_id)


# --------------------------------------------------------------------------- queueing


async def test_v2_queues_starts_beyond_the_running_limit(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root, v2_running_per_session=1)
    build_many(storage_root / "Src", folders=2, files_per_folder=10)  # 23 entries
    src = await v1_of(v2).by_path("\\Src")
    first = await start_copy(v2, 1, src["id"], "First", pace=40)  # ~0.9 s
    second = await start_copy(v2, 1, src["id"], "Second", pace=40)
    assert first != second

    waiting = 0
    deadline = time.monotonic() + DEADLINE_S
    while True:
        # the second first: if the first still runs afterwards, it ran while the second was read
        t2 = await v2_task(v2, second)
        t1 = await v2_task(v2, first)
        if t1["status"] in TASK_ENDED:
            break
        assert t2["status"] == "NotStarted", (t1, t2)
        assert t2["percentComplete"] == 0, t2
        waiting += 1
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert waiting >= 2
    assert_completed_copy(t1, v2)
    t2 = await wait_v2_task(v2, second)
    assert_completed_copy(t2, v2)
    assert ts(t2["startTime"]) >= ts(t1["lastUpdateTime"]), (t1, t2)
    expected = disk_tree(storage_root / "Src")
    assert disk_tree(storage_root / "First") == expected
    assert disk_tree(storage_root / "Second") == expected


async def test_v1_still_refuses_a_second_start_while_one_runs(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)  # default settings: session_concurrency "reject"
    v1 = v1_of(v2)
    build_many(storage_root / "Src", folders=1, files_per_folder=30)
    src = await v1.by_path("\\Src")

    # a v1 operation runs: a second v1 start is 429
    token = await v1_paced_copy(v1, src["id"], "First", 30)
    resp = await v1.post(f"/Entries/1/{V1_COPY}", json={"sourceId": src["id"], "name": "Second"})
    body = await assert_problem(resp, 429)
    assert body["title"] == LIMIT_TITLE
    await v1.request("DELETE", f"/Tasks/{token}")

    # a v2 task runs in the session: v1 still refuses
    task_id = await start_copy(v2, 1, src["id"], "V2", pace=30)
    assert await wait_running(v2, task_id) is not None
    resp = await v1.post(f"/Entries/1/{V1_COPY}", json={"sourceId": src["id"], "name": "Third"})
    body = await assert_problem(resp, 429)
    assert body["title"] == LIMIT_TITLE
    assert not (storage_root / "Third").exists()
    await cancel(v2, task_id)


async def test_back_to_back_deletes_of_a_parent_and_its_child(aiohttp_client, storage_root):
    """UpdateEntries' afterEach: DELETE A then at once DELETE B (inside A), same token: both 202."""
    v2 = await open_v2(aiohttp_client, storage_root)
    (storage_root / "A" / "B").mkdir(parents=True)
    (storage_root / "A" / "B" / "f.txt").write_bytes(b"f")
    (storage_root / "keep.txt").write_bytes(b"keep")
    a = await v1_of(v2).by_path("\\A")
    b = await v1_of(v2).by_path("\\A\\B")
    first = await start_delete(v2, a["id"])
    second = await start_delete(v2, b["id"])
    assert first != second
    t1 = await wait_v2_task(v2, first)
    t2 = await wait_v2_task(v2, second)
    assert (t1["status"], t1["taskType"], t1["percentComplete"]) == ("Completed", "DeleteEntry", 100), t1
    assert t2["taskType"] == "DeleteEntry"
    assert t2["status"] in ("Completed", "Failed"), t2
    assert not (storage_root / "A").exists()
    assert (storage_root / "keep.txt").read_bytes() == b"keep"


@pytest.mark.parametrize(
    ("body", "field_name"),
    [({"auditReasonId": "x"}, "auditReasonId"), ({"auditReasonComment": 5}, "auditReasonComment")],
)
async def test_delete_bad_body_is_400(aiohttp_client, storage_root, body, field_name):
    v2 = await open_v2(aiohttp_client, storage_root)
    (storage_root / "A").mkdir()
    a = await v1_of(v2).by_path("\\A")
    await assert_problem(await v2.request("DELETE", f"/Entries/{a['id']}", json=body), 400, field_name)
    assert (storage_root / "A").is_dir()
    await assert_problem(await v2.request("DELETE", "/Entries/987654", json={}), 404)
    await assert_problem(await v2.request("DELETE", "/Entries/1", json={}), 400)
    # the route works
    assert (await wait_v2_task(v2, await start_delete(v2, a["id"])))["status"] == "Completed"


# --------------------------------------------------------------------------- the test task


async def test_start_test_task(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    sessions = [v2, await another_session(v2), await another_session(v2), await another_session(v2)]
    start = "/Tasks/StartTestTaskAsync"

    async def begin(api: Api, seconds: int, redirect: bool, error: bool) -> str:
        params = {
            "operationTime": str(seconds),
            "hasRedirectUri": "true" if redirect else "false",
            "hasError": "true" if error else "false",
        }
        return await start_v2_task(await api.post(start, params=params), 200)  # 200, not 202

    t0 = time.monotonic()
    ok = await begin(sessions[0], 2, True, False)
    plain = await begin(sessions[1], 1, False, False)
    failing = await begin(sessions[2], 1, False, True)
    endless = await begin(sessions[3], 60, False, False)

    # rising progress while it runs
    seen: list[int] = []
    while True:
        t = await v2_task(sessions[0], ok, wait=0)
        if t["status"] in TASK_ENDED:
            break
        assert t["percentComplete"] < 100, t
        if t["status"] == "InProgress":
            assert not seen or t["percentComplete"] >= seen[-1], (seen, t)
            seen.append(t["percentComplete"])
        assert time.monotonic() - t0 < DEADLINE_S
        await asyncio.sleep(0.05)
    assert time.monotonic() - t0 >= 1.9, "the test task ended before its operationTime"
    assert len(set(seen)) >= 2, seen
    assert (t["status"], t["percentComplete"], t["errors"]) == ("Completed", 100, []), t
    assert t["taskType"] == "CopyEntry"  # the client's enum has no test type
    uri = t["result"]["uri"]
    assert isinstance(uri, str) and uri.startswith("http"), t

    t = await wait_v2_task(sessions[1], plain)
    assert t["status"] == "Completed", t
    assert not (t["result"] or {}).get("uri"), t

    t = await wait_v2_task(sessions[2], failing)
    assert t["status"] == "Failed", t
    assert t["errors"], t
    for error in t["errors"]:
        assert isinstance(error, dict) and (error.get("title") or error.get("detail")), error

    # cancellable
    assert await wait_running(sessions[3], endless) is not None
    assert await cancelled(sessions[3], endless) == {endless: True}
    t = await v2_task(sessions[3], endless)
    assert t["status"] == "Cancelled", t
    assert t["percentComplete"] < 100


async def test_start_test_task_bad_parameters_are_400(aiohttp_client, storage_root):
    v2 = await open_v2(aiohttp_client, storage_root)
    for params, name in (
        ({"operationTime": "x"}, "operationTime"),
        ({"operationTime": "1", "hasError": "banana"}, "hasError"),
        ({"operationTime": "1", "hasRedirectUri": "2"}, "hasRedirectUri"),
    ):
        await assert_problem(await v2.post("/Tasks/StartTestTaskAsync", params=params), 400, name)
    # a good one starts
    await start_v2_task(await v2.post("/Tasks/StartTestTaskAsync", params={"operationTime": "1"}), 200)


# --------------------------------------------------------------------------- expiry


async def test_ended_task_expires_after_token_ttl(aiohttp_client, storage_root):
    ttl = 1.0
    v2 = await open_v2(aiohttp_client, storage_root, token_ttl_s=ttl)
    (storage_root / "a.txt").write_bytes(b"a")
    build_many(storage_root / "Src", folders=1, files_per_folder=20)
    doc = await v1_of(v2).by_path("\\a.txt")
    src = await v1_of(v2).by_path("\\Src")
    started = time.monotonic()
    ended = await start_copy(v2, 1, doc["id"], "b.txt")
    assert (await wait_v2_task(v2, ended))["status"] == "Completed"  # read right after it ended

    deadline = time.monotonic() + 10
    while True:
        resp, body = await v2_tasks(v2, ended)
        if resp.status != 200:
            break
        assert body["value"][0]["status"] == "Completed"
        assert time.monotonic() < deadline, "the ended task did not expire"
        await asyncio.sleep(0.05)
    assert time.monotonic() - started >= ttl - 0.05, "expired before token_ttl_s after it ended"
    await assert_problem(resp, 404)
    await assert_problem(await v1_of(v2).get(f"/Tasks/{ended}"), 404)
    assert (storage_root / "b.txt").read_bytes() == b"a"  # the result stays

    # left out next to a live one; a running task never expires
    running = await start_copy(v2, 1, src["id"], "Copy", pace=100)  # ~2.2 s, twice the TTL
    resp, body = await v2_tasks(v2, ended, running)
    assert resp.status == 200, body
    assert [t["id"] for t in body["value"]] == [running]
    resp, body = await v2_tasks(v2)
    assert [t["id"] for t in body["value"]] == [running]
    assert_completed_copy(await wait_v2_task(v2, running), v2)


# --------------------------------------------------------------------------- kill -9 and restart


async def test_kill_9_and_restart(server_factory, tmp_path):
    root = tmp_path / "root"
    source = make_tree(root / "src", folders=3, per_folder=20, top_files=3)
    (root / "small.txt").write_bytes(b"small")
    ttl = 8.0
    server = server_factory.start(root, "--token-ttl", str(ttl))
    async with aiohttp.ClientSession() as session:
        remote = RemoteClient(session, server.base_url)
        v2 = Api(remote, await sign_in(remote), base=V2BASE)
        small = await v1_of(v2).by_path("\\small.txt")
        src = await v1_of(v2).by_path("\\src")

        ended = await start_copy(v2, 1, small["id"], "small copy.txt")
        done = await wait_v2_task(v2, ended)
        assert done["status"] == "Completed", done
        ended_at = time.monotonic()

        interrupted = await start_copy(v2, 1, src["id"], "copy", pace=30)  # ~2 s
        seen = await wait_running(v2, interrupted, at_least=10)
        assert seen is not None, "the paced copy ended before the kill"

    server.proc.kill()  # kill -9
    server.proc.wait(timeout=10)

    server = server_factory.start(root, "--token-ttl", str(ttl))
    async with aiohttp.ClientSession() as session:
        remote = RemoteClient(session, server.base_url)
        v2 = Api(remote, v2.token, base=V2BASE)  # no new sign-in: the bearer survives restarts
        t = await v2_task(v2, interrupted)
        assert t["status"] == "Failed", t
        assert t["errors"], t
        assert seen["percentComplete"] <= t["percentComplete"] < 100, (seen, t)
        # v1 reads the same record
        resp = await v1_of(v2).get(f"/Tasks/{interrupted}")
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "Failed"
        # what it copied is a clean partial copy
        copied = {rel: data for rel, data in disk_tree(root / "copy").items() if data is not None}
        assert len(copied) < len(source)
        for rel, data in copied.items():
            assert data == source[rel], rel
        assert part_files(root) == []

        # the task that had ended still answers, until it expires
        assert time.monotonic() - ended_at < ttl, "the restart took longer than the TTL; the test cannot tell"
        t = await v2_task(v2, ended)
        assert t["status"] == "Completed", t
        assert t["result"]["entryId"] == done["result"]["entryId"]
        deadline = time.monotonic() + ttl + 10
        while True:
            resp, _ = await v2_tasks(v2, ended)
            if resp.status != 200:
                break
            assert time.monotonic() < deadline, "the ended task did not expire after the restart"
            await asyncio.sleep(0.1)
        await assert_problem(resp, 404)
        assert time.monotonic() - ended_at >= ttl - 0.5

        # the session is free again: a new task runs
        again = await start_copy(v2, 1, small["id"], "again.txt")
        assert (await wait_v2_task(v2, again))["status"] == "Completed"
    assert server.stop() == 0
