"""v2 exports over real sockets (issue 14, Export): `ExportAsync` copies a document to the store's
results folder as a task (progress, pace, cancel), and the finished task's `result.uri` downloads
it (Range) until the task expires. Real files under tmp_path; the 256 MiB document is generated
on disk and compared by streaming hashes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from conftest import (
    V2BASE,
    Api,
    assert_problem,
    make_settings,
    sign_in,
    start_v2_task,
    v1_of,
    v2_task,
    v2_tasks,
    wait_v2_task,
    write_catalog,
)
from test_restart import RemoteClient

from server.app import create_app

MIB = 1024 * 1024
PACE = "Sandbox-Pace-Ms"
# the contract's chunk: an export copies, counts and paces this much at a time
CHUNK = 8 * MIB


def results_of(root: Path) -> list[str]:
    """What the store's results folder holds (exports and their part files, in a fresh root)."""
    folder = root / ".sandbox" / "results"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def write_document(path: Path, mib: int) -> str:
    """A document of `mib` MiB, no two MiB alike, written a MiB at a time; its SHA-256."""
    digest = hashlib.sha256()
    block = bytearray(os.urandom(MIB))
    with path.open("wb") as out:
        for i in range(mib):
            block[:8] = i.to_bytes(8, "big")  # (a chunk served out of place changes the hash)
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


async def open_v2(aiohttp_client, root: Path, **overrides) -> Api:
    client = await aiohttp_client(create_app(make_settings(root, **overrides)))
    return Api(client, await sign_in(client), base=V2BASE)


async def entry_id(v2: Api, path: str) -> int:
    return int((await v1_of(v2).by_path(path))["id"])


async def export_async(v2: Api, entry: int, body: dict | None = None, pace: float | None = None, **kw):
    headers = {} if pace is None else {PACE: str(pace)}
    return await v2.post(
        f"/Entries/{entry}/ExportAsync",
        json={"part": "Edoc"} if body is None else body,
        headers=headers,
        **kw,
    )


async def exported(v2: Api, entry: int, **kw) -> dict:
    """Export a document and wait for the task; its (Completed) TaskProgress."""
    task = await wait_v2_task(v2, await start_v2_task(await export_async(v2, entry, **kw)), deadline_s=60)
    assert task["status"] == "Completed", task
    assert task["taskType"] == "ExportEntry" and task["percentComplete"] == 100, task
    return task


async def running(v2: Api, task_id: str, deadline_s: float = 20) -> dict:
    """The task once it has made progress (and not ended)."""
    deadline = time.monotonic() + deadline_s
    while True:
        task = await v2_task(v2, task_id)
        assert task["status"] in ("NotStarted", "InProgress"), task
        if task["percentComplete"] > 0:
            return task
        assert time.monotonic() < deadline, task
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- the whole file, and a Range


async def test_256_mib_export_downloads_byte_for_byte(aiohttp_client, storage_root):
    (storage_root / "Big").mkdir()
    source = storage_root / "Big" / "video.bin"
    expected = write_document(source, 256)
    v2 = await open_v2(aiohttp_client, storage_root)
    task = await exported(v2, await entry_id(v2, "\\Big\\video.bin"))
    uri = task["result"]["uri"]
    assert uri.startswith("http") and "/v2/Repositories/" in uri, task
    [file] = results_of(storage_root)
    assert (storage_root / ".sandbox" / "results" / file).stat().st_size == 256 * MIB

    headers = v2.headers
    async with v2.client.session.get(uri, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_length == 256 * MIB
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="video.bin"')
        digest = hashlib.sha256()
        async for chunk in resp.content.iter_chunked(4 * MIB):
            digest.update(chunk)
    assert digest.hexdigest() == expected

    # one Range, across a chunk boundary, and a suffix
    with source.open("rb") as f:
        f.seek(CHUNK - 100)
        middle = f.read(300)
        f.seek(-17, os.SEEK_END)
        tail = f.read()
    resp = await v2.absolute("GET", uri, headers={"Range": f"bytes={CHUNK - 100}-{CHUNK + 199}"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {CHUNK - 100}-{CHUNK + 199}/{256 * MIB}"
    assert await resp.read() == middle
    resp = await v2.absolute("GET", uri, headers={"Range": "bytes=-17"})
    assert resp.status == 206 and await resp.read() == tail
    await assert_problem(await v2.absolute("GET", uri, headers={"Range": f"bytes={256 * MIB}-"}), 416)


async def test_export_through_both_dialects_and_users(aiohttp_client, storage_root):
    """The URI is served below both bases (v1's Tasks/{token} names it too), to the sessions of
    the user who exported, as a HEAD too; another user hears 404."""
    (storage_root / "report.pdf").write_bytes(b"%PDF-1.4 tiny")
    v2 = await open_v2(aiohttp_client, storage_root, users=(("admin", "admin"), ("bob", "bob")))
    task = await exported(v2, await entry_id(v2, "\\report.pdf"))
    uri = task["result"]["uri"]
    resp = await v2.absolute("GET", uri)
    assert resp.status == 200 and await resp.read() == b"%PDF-1.4 tiny"
    assert resp.content_type == "application/pdf"
    head = await v2.absolute("HEAD", uri)
    assert head.status == 200 and head.content_length == len(b"%PDF-1.4 tiny")

    v1 = v1_of(v2)
    status = await v1.get(f"/Tasks/{task['id']}", allow_redirects=False)
    v1_uri = status.headers.get("Location") or (await status.json()).get("redirectUri")
    assert v1_uri and "/v1/Repositories/" in v1_uri, await status.text()
    resp = await v1.absolute("GET", v1_uri)
    assert resp.status == 200 and await resp.read() == b"%PDF-1.4 tiny"

    again = Api(v2.client, await sign_in(v2.client), base=V2BASE)  # the same user, another session
    assert (await again.absolute("GET", uri)).status == 200
    bob = Api(v2.client, await sign_in(v2.client, "bob", "bob"), base=V2BASE)
    await assert_problem(await bob.absolute("GET", uri), 404)
    await assert_problem(await v2.get("/Exports/0123456789abcdef01234567"), 404)


async def test_text_of_a_text_like_document(aiohttp_client, storage_root):
    write_catalog(storage_root)
    (storage_root / "notes.md").write_text("# Notes\nsé\n", encoding="utf-8")
    v2 = await open_v2(aiohttp_client, storage_root)
    notes = await entry_id(v2, "\\notes.md")
    task = await exported(v2, notes, body={"part": "Text", "textOptions": {"includeRedactions": True}})
    resp = await v2.absolute("GET", task["result"]["uri"])
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert 'filename="notes.txt"' in resp.headers["Content-Disposition"]
    assert await resp.text() == "# Notes\nsé\n"
    # an Edoc export ignores pageRange; an ExportDocument audit reason is accepted
    body = {"part": "Edoc", "auditReasonId": 3, "auditReasonComment": "for the auditors"}
    task = await exported(v2, notes, body=body, params={"pageRange": "not pages"})
    resp = await v2.absolute("GET", task["result"]["uri"])
    assert (
        resp.content_type == "text/markdown" and 'filename="notes.md"' in resp.headers["Content-Disposition"]
    )


# --------------------------------------------------------------------------- refusals change nothing


@pytest.mark.parametrize(
    ("path", "body", "status", "names"),
    [
        ("\\data.bin", {"part": "Image"}, 400, "page images"),
        ("\\data.bin", {"part": "Text"}, 400, "not a text-like document"),
        ("\\data.bin", {"part": "Pages"}, 400, "'part'"),
        ("\\data.bin", {}, 400, "'part'"),
        ("\\data.bin", {"part": 1}, 400, "'part'"),
        ("\\data.bin", {"part": "Edoc", "auditReasonId": 1}, 400, "ExportDocument"),
        ("\\data.bin", {"part": "Edoc", "auditReasonId": 99}, 400, "auditReasonId"),
        ("\\data.bin", {"part": "Edoc", "imageOptions": {"format": "GIF"}}, 400, "format"),
        ("\\data.bin", {"part": "Edoc", "imageOptions": {"jPEGCompressionLevel": 101}}, 400, "jPEG"),
        ("\\data.bin", {"part": "Edoc", "textOptions": "X"}, 400, "textOptions"),
        ("\\Folder", {"part": "Edoc"}, 400, "folder"),
        ("\\to nothing", {"part": "Edoc"}, 404, "not found"),
        (None, {"part": "Edoc"}, 404, "not found"),
    ],
)
async def test_refused_before_a_task(aiohttp_client, storage_root, path, body, status, names):
    write_catalog(storage_root)
    (storage_root / "data.bin").write_bytes(b"\0\1\2")
    (storage_root / "Folder").mkdir()
    (storage_root / "gone.txt").write_bytes(b"gone")
    v2 = await open_v2(aiohttp_client, storage_root)
    gone = await entry_id(v2, "\\gone.txt")
    made = await v2.post(
        "/Entries/1/Folder/Children", json={"entryType": "Shortcut", "name": "to nothing", "targetId": gone}
    )
    assert made.status == 201, await made.text()
    (storage_root / "gone.txt").unlink()
    target = 999_999 if path is None else await entry_id(v2, path)
    problem = await assert_problem(await export_async(v2, target, body), status)
    assert names.lower() in f"{problem['detail']} {problem['title']}".lower(), problem
    resp, tasks = await v2_tasks(v2)
    assert resp.status == 200 and tasks["value"] == [], tasks
    assert results_of(storage_root) == []


async def test_image_text_and_text_page_range_are_checked(aiohttp_client, storage_root):
    (storage_root / "a.txt").write_bytes(b"a")
    v2 = await open_v2(aiohttp_client, storage_root)
    a = await entry_id(v2, "\\a.txt")
    resp = await export_async(v2, a, {"part": "Text"}, params={"pageRange": "3-"})
    await assert_problem(resp, 400, "pageRange")
    task = await exported(v2, a, body={"part": "Text"}, params={"pageRange": "1-3,5"})
    assert task["status"] == "Completed"


# --------------------------------------------------------------------------- cancel, expiry, crash


async def test_cancel_mid_export_leaves_no_file(aiohttp_client, storage_root):
    write_document(storage_root / "big.bin", 64)  # 8 chunks of 8 MiB
    v2 = await open_v2(aiohttp_client, storage_root)
    task_id = await start_v2_task(await export_async(v2, await entry_id(v2, "\\big.bin"), pace=1000))
    seen = await running(v2, task_id)
    assert 0 < seen["percentComplete"] < 50, seen  # (progress in bytes: a chunk or two of eight)
    assert [name.endswith(".part") for name in results_of(storage_root)] == [True]
    resp = await v2.request("DELETE", "/Tasks", params={"taskIds": task_id})
    assert resp.status == 200
    assert (await resp.json())["value"][0]["result"] is True
    task = await wait_v2_task(v2, task_id)
    assert task["status"] == "Cancelled" and "uri" not in (task["result"] or {}), task
    assert results_of(storage_root) == []


async def test_uri_answers_404_once_the_task_expired(server_factory, tmp_path):
    """With --token-ttl 1: the URI answers 404 as soon as the task has expired, and the file goes;
    one that expired while the server was down goes at the next start."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.csv").write_bytes(b"a,b\n1,2\n")
    server = server_factory.start(root, "--token-ttl", "1")
    async with aiohttp.ClientSession() as session:
        v2 = Api(RemoteClient(session, server.base_url), "", base=V2BASE)
        v2.token = await sign_in(v2.client)
        a = await entry_id(v2, "\\a.csv")
        task = await exported(v2, a)
        uri = task["result"]["uri"]
        assert (await v2.absolute("GET", uri)).status == 200
        deadline = time.monotonic() + 10
        while (await v2_tasks(v2, task["id"]))[0].status == 200:
            assert time.monotonic() < deadline, "the export did not expire"
            await asyncio.sleep(0.05)
        await assert_problem(await v2.absolute("GET", uri), 404)  # at once, however the sweep goes
        deadline = time.monotonic() + 5
        while results_of(root):  # and the file goes
            assert time.monotonic() < deadline, results_of(root)
            await asyncio.sleep(0.05)
        path = urlsplit((await exported(v2, a))["result"]["uri"]).path
    assert len(results_of(root)) == 1
    assert server.stop() == 0
    await asyncio.sleep(1.2)  # (expired while the server was down)

    server = server_factory.start(root, "--token-ttl", "1")
    assert results_of(root) == []
    async with aiohttp.ClientSession() as session:
        v2 = Api(RemoteClient(session, server.base_url), v2.token, base=V2BASE)
        await assert_problem(await v2.absolute("GET", server.base_url + path), 404)


async def test_kill_9_mid_export_leaves_no_debris(server_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write_document(root / "big.bin", 32)
    (root / "small.txt").write_bytes(b"small")
    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        v2 = Api(RemoteClient(session, server.base_url), "", base=V2BASE)
        v2.token = await sign_in(v2.client)
        kept = await exported(v2, await entry_id(v2, "\\small.txt"))
        task_id = await start_v2_task(await export_async(v2, await entry_id(v2, "\\big.bin"), pace=1000))
        await running(v2, task_id)
    assert len(results_of(root)) == 2  # the finished export, and the part file of the running one
    server.proc.kill()
    server.proc.wait(timeout=10)

    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        v2 = Api(RemoteClient(session, server.base_url), v2.token, base=V2BASE)
        task = await v2_task(v2, task_id)
        assert task["status"] == "Failed" and "uri" not in (task["result"] or {}), task
        [file] = results_of(root)  # the part file went; the finished export stays
        assert file.endswith(".export")
        # (the URI is absolute, made for the request that read it: the old port)
        resp = await v2.absolute("GET", server.base_url + urlsplit(kept["result"]["uri"]).path)
        assert resp.status == 200 and await resp.read() == b"small"


# --------------------------------------------------------------------------- the description


async def test_answers_fit_the_description(aiohttp_client, storage_root):
    from test_guard_and_fuzz import _conforms

    (storage_root / "a.txt").write_bytes(b"a")
    v2 = await open_v2(aiohttp_client, storage_root)
    spec = await (await v2.client.get("/openapi.json")).json()
    route = "/v2/Repositories/{repoId}"
    a = await entry_id(v2, "\\a.txt")

    async def check(resp, path: str, method: str = "GET"):
        return await _conforms(v2.client, spec, resp, path, method)

    started = await check(await export_async(v2, a), route + "/Entries/{entryId}/ExportAsync", "POST")
    await wait_v2_task(v2, started["taskId"])
    tasks = await check(await v2.get("/Tasks", params={"taskIds": started["taskId"]}), route + "/Tasks")
    assert tasks["value"][0]["taskType"] == "ExportEntry"
    status = await v1_of(v2).get(f"/Tasks/{started['taskId']}", allow_redirects=False)
    await check(status, "/v1/Repositories/{repoId}/Tasks/{operationToken}")
    for body in ({"part": "Image"}, {"part": "Edoc", "imageOptions": []}):
        await check(await export_async(v2, a, body), route + "/Entries/{entryId}/ExportAsync", "POST")
    await check(await export_async(v2, 999), route + "/Entries/{entryId}/ExportAsync", "POST")
    await check(await v2.get("/Exports/x"), route + "/Exports/{exportId}")


async def test_the_dashboard_lists_and_cancels_an_export(aiohttp_client, storage_root):
    from test_guard_and_fuzz import _conforms

    write_document(storage_root / "big.bin", 24)
    v2 = await open_v2(aiohttp_client, storage_root)
    spec = await (await v2.client.get("/openapi.json")).json()
    task_id = await start_v2_task(await export_async(v2, await entry_id(v2, "\\big.bin"), pace=1000))
    await running(v2, task_id)
    listed = await v2.client.get("/sandbox/operations", headers=v2.headers)
    body = await _conforms(v2.client, spec, listed, "/sandbox/operations")
    [op] = body["value"]
    assert op["operationType"] == "ExportEntry" and op["status"] == "InProgress", op
    cancelled = await v2.client.post(f"/sandbox/operations/{task_id}/cancel", headers=v2.headers)
    body = await _conforms(v2.client, spec, cancelled, "/sandbox/operations/{operationToken}/cancel", "POST")
    assert body["status"] == "Cancelled", body
    assert results_of(storage_root) == []
