"""Fresh state (issue 16 item 2): `POST /sandbox/reset` puts the repository, catalog, ids, metadata,
operations, events and deliveries back as the server started, and `--ephemeral` serves a temporary
copy of the storage root that is removed on exit, the root itself left byte for byte.

Every test runs against a real server (in process over a socket, or `python -m server`) over real
folders under tmp_path; what the server holds is compared through its API (every entry with its id,
its listing and its metadata), and the disk beside it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import (
    BASE,
    CHILDREN,
    SAMPLE_ROOT,
    Api,
    ServerProcess,
    assert_problem,
    make_settings,
    md_snapshot,
    multipart,
    sign_in,
    start_v2_task,
    tree_snapshot,
    v2_import_form,
    v2_of,
    wait_v2_task,
)
from webhook_receiver import wait_for
from yarl import URL

from server.api import reset as reset_module
from server.app import create_app
from server.config import ELEMENTS_ORG_SECRET, ELEMENTS_TOKEN, ELEMENTS_USER_SECRET
from server.snapshot import StartState

HUB = "/elements/api-v2/hubs/documents"
HUB_AUTH = {"Authorization": f"User {ELEMENTS_USER_SECRET}, Element {ELEMENTS_TOKEN}"}
PLATFORM_AUTH = {"Authorization": f"User {ELEMENTS_USER_SECRET}, Organization {ELEMENTS_ORG_SECRET}"}
PACE = "Sandbox-Pace-Ms"
STORAGE_ROOT_RE = re.compile(r"storage root:\s+(\S+)\)")


# ---- helpers --------------------------------------------------------------------------------


def sample_copy(tmp_path: Path, name: str = "root") -> Path:
    """The sample storage root as a user checks it out (no store yet)."""
    root = tmp_path / name
    shutil.copytree(SAMPLE_ROOT, root, ignore=shutil.ignore_patterns(".sandbox"))
    return root


async def listing(api: Api) -> dict[str, Any]:
    """Every entry, by path, as v1 lists it, and the metadata of the one `changed` sets (for trees
    too large to read every entry's metadata)."""
    found: dict[str, Any] = {"\\": await api.entry(1)}
    pending = [1]
    while pending:
        for child in await api.children(pending.pop()):
            found[child["fullPath"]] = child
            if child["entryType"] == "Folder":
                pending.append(child["id"])
    inv = found["\\Invoices\\2026\\INV-0002.txt"]["id"]
    found["metadata"] = await md_snapshot(v2_of(api), inv)
    return found


async def state(api: Api) -> dict[str, Any]:
    """Every entry, by path, as v1 lists it (id, name, type, times, size, fields…) with its metadata
    through v2 (template, field values, tags, links): what a client can see of the repository."""
    v2 = v2_of(api)
    found: dict[str, Any] = {"\\": (await api.entry(1), await md_snapshot(v2, 1))}
    pending = [1]
    while pending:
        for child in await api.children(pending.pop()):
            found[child["fullPath"]] = (child, await md_snapshot(v2, child["id"]))
            if child["entryType"] == "Folder":
                pending.append(child["id"])
    return found


def disk(root: Path) -> tuple[list, dict[str, int]]:
    """What the storage root holds besides the store: names, kinds and bytes, and every folder's and
    file's modification time (folders' times are what listings show)."""
    times = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d != ".sandbox"]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            times[str(path.relative_to(root))] = path.lstat().st_mtime_ns
    return tree_snapshot(root, exclude_hidden_of=root), times


def whole(root: Path) -> tuple[list, dict[str, int]]:
    """Everything under the root, its store included, with every modification time."""
    times = {str(p.relative_to(root)): p.lstat().st_mtime_ns for p in root.rglob("*")}
    times["."] = root.lstat().st_mtime_ns
    return tree_snapshot(root), times


async def reset(api: Api, status: int = 200) -> dict:
    resp = await api.client.request("POST", "/sandbox/reset", headers=api.headers)
    text = await resp.text()
    assert resp.status == status, text
    return await resp.json()


async def sandbox_list(api: Api, what: str) -> list[dict]:
    resp = await api.client.request("GET", f"/sandbox/{what}", headers=api.headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["value"]


async def wait_v1(api: Api, token: str, deadline_s: float = 30.0) -> int:
    """Poll a v1 operation until it ends; its final status code (302: a copy, 200: a delete)."""
    end = time.monotonic() + deadline_s
    while True:
        resp = await api.get(f"/Tasks/{token}", allow_redirects=False)
        await resp.read()
        if resp.status != 202:
            return resp.status
        assert time.monotonic() < end, f"operation {token} still running"
        await asyncio.sleep(0.02)


async def v1_token(resp) -> str:
    text = await resp.text()
    assert resp.status == 202, text
    return (await resp.json())["token"]


async def events(api: Api) -> list:
    resp = await api.client.request("GET", "/elements/api-v2/instances/events", headers=PLATFORM_AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def change_everything(api: Api, receiver_url: str) -> None:
    """A copy and a long delete (v1), a v2 task, metadata (PUT Fields and Tags), a new folder, an
    import, bytes replaced, an Elements instance, and an asynchronous hub copy with its webhook."""
    v2 = v2_of(api)
    invoices = (await api.by_path("\\Invoices"))["id"]
    contracts = (await api.by_path("\\Contracts"))["id"]
    welcome = (await api.by_path("\\Welcome.txt"))["id"]
    route = f"/Entries/1/{CHILDREN}/CopyAsync"
    token = await v1_token(await api.post(route, json={"sourceId": invoices, "name": "Invoices copy"}))
    assert await wait_v1(api, token) == 302
    token = await v1_token(await api.request("DELETE", f"/Entries/{contracts}"))
    assert await wait_v1(api, token) == 200
    task = await start_v2_task(
        await v2.post("/Entries/1/Folder/CopyAsync", json={"sourceId": invoices, "name": "By v2"})
    )
    assert (await wait_v2_task(v2, task))["status"] == "Completed"
    inv = (await api.by_path("\\Invoices\\2026\\INV-0001.txt"))["id"]
    fields = {
        "fields": [{"name": "Vendor", "values": ["Someone Else"]}, {"name": "Keywords", "values": ["a", "b"]}]
    }
    resp = await v2.request("PUT", f"/Entries/{inv}/Fields", json=fields)
    assert resp.status == 200, await resp.text()
    tags = (await (await v2.get("/TagDefinitions")).json())["value"]
    resp = await v2.request("PUT", f"/Entries/{inv}/Tags", json={"tags": [tags[0]["name"]]})
    assert resp.status == 200, await resp.text()
    await api.mkdir(1, "New folder")
    resp = await api.import_doc(invoices, "imported.txt", b"imported bytes")
    assert resp.status == 201, await resp.text()
    resp = await v2.post(
        "/Entries/1/Folder/Import", data=v2_import_form(b"v2 bytes", request={"name": "v2.pdf"})
    )
    assert resp.status == 201, await resp.text()
    form = aiohttp.FormData()
    form.add_field("file", b"replaced", filename="Welcome.txt", content_type="text/plain")
    resp = await api.client.request(
        "POST",
        f"{HUB}/files",
        params={"path": "/Welcome.txt", "overwrite": "true"},
        data=form,
        headers=HUB_AUTH,
    )
    assert resp.status == 200, await resp.text()
    assert await (await api.download(welcome)).read() == b"replaced"
    resp = await api.client.request(
        "POST",
        "/elements/api-v2/instances",
        json={"name": "spare", "element": {"key": "documents"}},
        headers=PLATFORM_AUTH,
    )
    assert resp.status == 200, await resp.text()
    resp = await api.client.request(
        "POST",
        f"{HUB}/folders/copy",
        params={"path": "/TestFolderCreate"},
        json={"path": "/TestFolderCopy"},
        headers={**HUB_AUTH, "Elements-Async-Request": "True", "Elements-Async-Callback-URL": receiver_url},
    )
    assert resp.status == 202, await resp.text()
    resp = await api.client.post("/sandbox/inbox/demo", json={"hello": "inbox"})
    assert resp.status == 200, await resp.text()


@pytest.fixture
def sample_root(tmp_path: Path) -> Path:
    return sample_copy(tmp_path)


async def open_api(aiohttp_client, root: Path, **overrides: Any) -> Api:
    client = await aiohttp_client(create_app(make_settings(root, **overrides)))
    return Api(client, await sign_in(client))


# ---- POST /sandbox/reset --------------------------------------------------------------------


async def test_reset_after_every_kind_of_change_gives_the_start_state(aiohttp_client, sample_root, receivers):
    rx = await receivers()
    api = await open_api(aiohttp_client, sample_root)
    fresh, fresh_disk = await state(api), disk(sample_root)
    assert await sandbox_list(api, "operations") == []
    assert await events(api) == []

    await change_everything(api, rx.url)
    [delivered] = await rx.wait_delivered(1)
    assert delivered.json()["response"]["events"], delivered.json()
    assert await state(api) != fresh
    assert len(await sandbox_list(api, "operations")) == 4
    assert len(await sandbox_list(api, "deliveries")) == 1
    assert len(await sandbox_list(api, "inbox")) == 1

    report = await reset(api)
    assert set(report) == {"operationsCancelled", "requestsCancelled", "durationMs", "startState"}
    assert (report["operationsCancelled"], report["requestsCancelled"]) == (0, 0)
    # the same bearer still works, and sees the start state: entries, ids, listings, metadata
    assert await state(api) == fresh
    assert disk(sample_root) == fresh_disk
    assert await sandbox_list(api, "operations") == []
    assert await sandbox_list(api, "deliveries") == []
    assert await events(api) == []
    assert await sandbox_list(api, "inbox") == []
    resp = await api.client.request("GET", "/elements/api-v2/instances", headers=PLATFORM_AUTH)
    assert [i["id"] for i in await resp.json()] == [1]  # (the instance made since is gone)
    # nothing was sent for what the reset forgot
    await asyncio.sleep(0.2)
    assert len(rx.delivered) == 1


async def test_ids_after_a_reset_are_those_after_a_fresh_start(aiohttp_client, tmp_path):
    """Ids are never reused, so the next ids are part of the state: a folder made after a reset
    gets the id one made on a fresh start gets, not the next of the ids handed out before."""
    fresh = await open_api(aiohttp_client, sample_copy(tmp_path, "fresh"))
    api = await open_api(aiohttp_client, sample_copy(tmp_path, "reset"))
    for name in ("one", "two", "three"):
        await api.mkdir(1, name)
    await reset(api)
    assert (await api.mkdir(1, "after"))["id"] == (await fresh.mkdir(1, "after"))["id"]
    # (two roots: their times differ, their ids do not)
    assert {path: e["id"] for path, (e, _) in (await state(api)).items()} == {
        path: e["id"] for path, (e, _) in (await state(fresh)).items()
    }


async def test_entries_first_listed_after_a_reset_get_the_ids_of_a_fresh_start(aiohttp_client, tmp_path):
    """Entries put there by hand get ids when first listed: those a reset links back (here, the
    files of a folder renamed and back) get the ids a fresh start gives them, whatever order the
    filesystem lists them in."""
    roots = []
    for name in ("fresh", "reset"):
        root = tmp_path / name
        (root / "F").mkdir(parents=True)
        for letter in "qwertyuiop":
            (root / "F" / f"{letter}.txt").write_bytes(letter.encode())
        roots.append(root)
    fresh = await open_api(aiohttp_client, roots[0])
    api = await open_api(aiohttp_client, roots[1])
    folder = (await api.by_path("\\F"))["id"]
    resp = await api.patch(f"/Entries/{folder}", json={"name": "G"})
    assert resp.status == 200, await resp.text()
    await api.mkdir(1, "F")
    await reset(api)
    ids = [(e["name"], e["id"]) for e in await api.children((await api.by_path("\\F"))["id"])]
    assert ids == [(e["name"], e["id"]) for e in await fresh.children((await fresh.by_path("\\F"))["id"])]


async def test_reset_during_a_paced_copy_cancels_it_and_still_restores(aiohttp_client, sample_root):
    api = await open_api(aiohttp_client, sample_root)
    fresh, fresh_disk = await state(api), disk(sample_root)
    invoices = (await api.by_path("\\Invoices"))["id"]
    v2 = v2_of(api)
    task = await start_v2_task(
        await v2.post(
            "/Entries/1/Folder/CopyAsync",
            json={"sourceId": invoices, "name": "Slow copy"},
            headers={PACE: "400"},
        )
    )
    await wait_for(lambda: (sample_root / "Slow copy").exists(), "the copy to begin", timeout=10)
    report = await reset(api)
    assert report["operationsCancelled"] == 1
    assert await state(api) == fresh
    assert disk(sample_root) == fresh_disk
    assert not (sample_root / "Slow copy").exists()
    assert await sandbox_list(api, "operations") == []
    # its task is forgotten with the rest (v2 answers an unknown id with an error item)
    resp = await v2.get("/Tasks", params={"taskIds": task}, headers={"Prefer": "wait=0"})
    body = await resp.json()
    assert not [t for t in body.get("value", []) if t["id"] == task and t["status"] == "InProgress"], body


async def test_repeated_resets_each_give_the_start_state(aiohttp_client, sample_root):
    api = await open_api(aiohttp_client, sample_root, copy_processes=2)
    fresh = await state(api)
    await reset(api)  # (with nothing changed)
    assert await state(api) == fresh
    invoices = (await api.by_path("\\Invoices"))["id"]
    for round_ in range(3):
        await api.mkdir(1, f"round {round_}")
        resp = await api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": invoices, "name": f"copy {round_}"})
        assert resp.status == 201, await resp.text()
        await api.upload(invoices, f"doc {round_}.txt", b"x" * (round_ + 1))
        assert await state(api) != fresh
        await reset(api)
        assert await state(api) == fresh


async def test_a_reset_ends_event_streams_and_inbox_waits_and_forgets_their_history(
    aiohttp_client, sample_root
):
    api = await open_api(aiohttp_client, sample_root)
    await api.mkdir(1, "made")
    invoices = (await api.by_path("\\Invoices"))["id"]
    resp = await api.post(f"/Entries/1/{CHILDREN}/CopyAsync", json={"sourceId": invoices, "name": "c"})
    assert await wait_v1(api, await v1_token(resp)) == 302
    stream = await api.client.get("/sandbox/events", headers=api.headers)
    assert stream.status == 200
    reader = asyncio.ensure_future(api.client.get("/sandbox/inbox/demo?wait=30", headers=api.headers))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await reset(api)
    # the open stream and the reader waiting on the inbox end at once (not after the grace given
    # to requests under way)
    assert time.monotonic() - started < 1.5
    await asyncio.wait_for(stream.read(), timeout=5)
    waited = await asyncio.wait_for(reader, timeout=5)
    assert waited.status == 200 and (await waited.json())["deliveries"] == []
    # a client that reconnects hears nothing of what happened before
    resp = await api.client.get(
        "/sandbox/events",
        headers={**api.headers, "Last-Event-ID": "0"},
        timeout=aiohttp.ClientTimeout(sock_read=0.5),
    )
    with pytest.raises(asyncio.TimeoutError):
        await resp.content.readuntil(b"event: operation")
    resp.close()


async def test_requests_wait_for_a_reset_and_those_under_way_are_cut_off(aiohttp_client, sample_root):
    """A request under way when a reset begins (an import whose body stalls) gets a grace, then
    is cut off; one sent during the reset waits for it and sees the start state."""
    api = await open_api(aiohttp_client, sample_root)
    fresh, fresh_disk = await state(api), disk(sample_root)
    stalled = asyncio.Event()

    async def body():
        yield b"--x\r\nContent-Disposition: form-data; name=electronicDocument; filename=a.txt\r\n\r\nfirst"
        stalled.set()
        await asyncio.sleep(30)

    headers = {**api.headers, "Content-Type": "multipart/form-data; boundary=x"}
    importing = asyncio.ensure_future(
        api.client.post(f"{BASE}/Entries/1/stalled.txt", data=body(), headers=headers)
    )
    await asyncio.wait_for(stalled.wait(), timeout=5)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    resetting = asyncio.ensure_future(reset(api))
    await asyncio.sleep(0.3)
    assert not resetting.done()
    made = await api.mkdir(1, "sent during the reset")
    # (held at the gate while the reset gave the import its grace)
    assert time.monotonic() - started >= reset_module.DRAIN_S
    report = await asyncio.wait_for(resetting, timeout=5)
    assert report["requestsCancelled"] == 1 and report["durationMs"] >= 1000 * reset_module.DRAIN_S
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(importing, timeout=5)
    now = await state(api)
    assert now.pop("\\sent during the reset")[0]["id"] == made["id"]
    # (entries first listed after the start get their ids when listed, after a reset as after a
    # fresh start: here the new folder came first)
    assert set(now) == set(fresh)
    (sample_root / "sent during the reset").rmdir()
    assert disk(sample_root)[0] == fresh_disk[0]
    assert not (sample_root / "stalled.txt").exists()


async def test_only_admins_may_reset(aiohttp_client, sample_root):
    api = await open_api(
        aiohttp_client, sample_root, users=(("admin", "admin"), ("bob", "bob")), admin_users=("admin",)
    )
    bob = Api(api.client, await sign_in(api.client, "bob", "bob"))
    await api.mkdir(1, "kept")
    await assert_problem(await api.client.post("/sandbox/reset", headers=bob.headers), 403)
    await assert_problem(await api.client.post("/sandbox/reset", headers=HUB_AUTH), 403)
    await assert_problem(await api.client.post("/sandbox/reset"), 401)
    assert "kept" in await api.child_names(1)


async def test_writes_wait_for_the_start_state_and_reads_do_not(aiohttp_client, tmp_path, monkeypatch):
    """Until the start state is kept, a read answers at once and a write waits; one that waits
    past HOLD_S is a 503 with Retry-After, and is not done. Once it is kept, writes go on."""
    release = threading.Event()
    keep_tree = StartState.keep_tree

    def slow_keep_tree(self: StartState) -> None:
        release.wait(30)
        keep_tree(self)

    monkeypatch.setattr(StartState, "keep_tree", slow_keep_tree)
    monkeypatch.setattr(reset_module, "HOLD_S", 0.3)
    (tmp_path / "root").mkdir()
    client = await aiohttp_client(create_app(make_settings(tmp_path / "root")))
    try:
        assert (await client.get("/openapi.json")).status == 200
        token_url = f"{BASE}/Token"
        form = {"grant_type": "password", "username": "admin", "password": "admin"}
        held = await client.post(token_url, data=form)
        await assert_problem(held, 503)
        assert held.headers["Retry-After"] == "1"
    finally:
        release.set()
    api = Api(client, await sign_in(client))
    await api.mkdir(1, "after")


async def test_a_start_state_that_could_not_be_kept_refuses_resets_and_lets_writes_go_on(
    aiohttp_client, tmp_path, monkeypatch
):
    def failing_keep_tree(self: StartState) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StartState, "keep_tree", failing_keep_tree)
    (tmp_path / "root").mkdir()
    api = await open_api(aiohttp_client, tmp_path / "root")
    await api.mkdir(1, "kept")
    body = await assert_problem(await api.client.post("/sandbox/reset", headers=api.headers), 503)
    assert "could not be kept" in body["detail"] and "No space left" in body["detail"], body
    assert "kept" in await api.child_names(1)


# ---- crashes --------------------------------------------------------------------------------


class Remote:
    """What Api needs of a client, over a ClientSession and a server process's base URL."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.base_url = session, base_url

    def make_url(self, path: str) -> URL:
        return URL(self.base_url + path)

    async def request(self, method: str, path: str, **kw: Any):
        resp = await self.session.request(method, self.base_url + path, **kw)
        await resp.read()
        return resp

    async def post(self, path: str, **kw: Any):
        return await self.request("POST", path, **kw)


async def remote_api(session: aiohttp.ClientSession, server: ServerProcess) -> Api:
    resp = await session.post(
        f"{server.base_url}{BASE}/Token",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
    )
    assert resp.status == 200, await resp.text()
    return Api(Remote(session, server.base_url), (await resp.json())["access_token"])


def many_files(root: Path, count: int) -> None:
    folder = root / "Bulk"
    folder.mkdir()
    for i in range(count):
        (folder / f"f{i:05}.txt").write_bytes(b"%d" % i)


async def changed(api: Api) -> None:
    """Enough changes that a reset takes a while: a thousand files copied, their source deleted,
    a folder and metadata."""
    bulk = (await api.by_path("\\Bulk"))["id"]
    resp = await api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": bulk, "name": "Bulk copy"})
    assert resp.status == 201, await resp.text()
    token = await v1_token(await api.request("DELETE", f"/Entries/{bulk}"))
    assert await wait_v1(api, token) == 200
    await api.mkdir(1, "made after the start")
    inv = (await api.by_path("\\Invoices\\2026\\INV-0002.txt"))["id"]
    resp = await v2_of(api).request(
        "PUT", f"/Entries/{inv}/Fields", json={"fields": [{"name": "Vendor", "values": ["Z"]}]}
    )
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("kill_after_s", [0.0, 0.01, 0.02, 0.04, 0.1, 1.0])
async def test_a_kill_during_or_after_a_reset_serves_one_state_or_the_other(
    tmp_path, server_factory, kill_after_s
):
    """SIGKILL at some point of a reset: the server started again on the root serves the start
    state or the state before the reset, never a mix."""
    root = sample_copy(tmp_path)
    many_files(root, 500)
    flags = ("--copy-processes", "0")
    async with aiohttp.ClientSession() as session:
        server = server_factory.start(root, *flags)
        api = await remote_api(session, server)
        start = await listing(api)
        await changed(api)
        before = await listing(api)
        resetting = asyncio.ensure_future(
            session.post(f"{server.base_url}/sandbox/reset", headers=api.headers)
        )
        await asyncio.sleep(kill_after_s)
        server.proc.kill()
        server.proc.wait(timeout=10)
        await asyncio.gather(resetting, return_exceptions=True)
        again = server_factory.start(root, *flags)
        api = await remote_api(session, again)
        now = await listing(api)
        assert now in (start, before), "a mix of the start state and the state before the reset"
        assert again.stop() == 0


async def test_a_restart_finishes_a_reset_a_crash_cut_off(tmp_path, server_factory):
    """The state a kill leaves once the reset has marked the start state, and has put back part of
    the tree: the next start finishes the restore before it serves anything."""
    root = sample_copy(tmp_path)
    many_files(root, 200)
    flags = ("--copy-processes", "0")
    async with aiohttp.ClientSession() as session:
        server = server_factory.start(root, *flags)
        api = await remote_api(session, server)
        start, start_disk = await listing(api), disk(root)
        await changed(api)
        server.proc.kill()  # (the start state stays: only a clean stop removes it)
        server.proc.wait(timeout=10)
        kept = root / ".sandbox" / "start"
        assert (kept / "tree" / "Bulk" / "f00000.txt").exists()
        # a reset that marked it and got half-way through the copy's removal
        (kept / "restoring").touch()
        for path in sorted((root / "Bulk copy").iterdir())[:100]:
            path.unlink()
        again = server_factory.start(root, *flags)
        api = await remote_api(session, again)
        assert await listing(api) == start
        assert disk(root) == start_disk
        assert not (kept / "restoring").exists()
        assert again.stop() == 0


async def test_a_clean_stop_leaves_no_start_state(tmp_path, server_factory):
    root = sample_copy(tmp_path)
    async with aiohttp.ClientSession() as session:
        server = server_factory.start(root)
        api = await remote_api(session, server)
        await api.mkdir(1, "x")  # (a write waits until the start state is kept)
        assert (root / ".sandbox" / "start").is_dir()
        assert server.stop() == 0
    assert (
        sorted(p.name for p in (root / ".sandbox").iterdir() if p.name.startswith(("start", "trash"))) == []
    )


# ---- --ephemeral ----------------------------------------------------------------------------


def copy_of(server: ServerProcess) -> Path:
    found = STORAGE_ROOT_RE.search(server.stdout())
    assert found, server.stdout()
    assert "ephemeral:" in server.stdout()
    return Path(found.group(1))


async def used_once(tmp_path: Path, server_factory) -> tuple[Path, dict]:
    """A sample root that a server has served (its store holds ids, metadata and a folder made
    then), stopped cleanly; and what that server showed."""
    root = sample_copy(tmp_path)
    async with aiohttp.ClientSession() as session:
        server = server_factory.start(root)
        api = await remote_api(session, server)
        await api.mkdir(1, "made by the first server")
        inv = (await api.by_path("\\Invoices\\2026\\INV-0001.txt"))["id"]
        resp = await v2_of(api).request(
            "PUT", f"/Entries/{inv}/Fields", json={"fields": [{"name": "Vendor", "values": ["V"]}]}
        )
        assert resp.status == 200, await resp.text()
        shown = await state(api)
        assert server.stop() == 0
    return root, shown


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_ephemeral_serves_a_copy_and_leaves_the_root_as_it_was(tmp_path, server_factory, sig):
    root, shown = await used_once(tmp_path, server_factory)
    before = whole(root)
    async with aiohttp.ClientSession() as session:
        server = server_factory.start(root, "--ephemeral")
        copy = copy_of(server)
        assert copy.is_dir() and not copy.is_relative_to(root)
        api = await remote_api(session, server)
        # the copy's catalog, ids and metadata are the root's
        assert await state(api) == shown
        invoices = (await api.by_path("\\Invoices"))["id"]
        resp = await api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": invoices, "name": "copied"})
        assert resp.status == 201, await resp.text()
        token = await v1_token(
            await api.request("DELETE", f"/Entries/{(await api.by_path(chr(92) + 'Contracts'))['id']}")
        )
        assert await wait_v1(api, token) == 200
        await api.upload(invoices, "imported.txt", b"new")
        form = multipart(b"replaced", request_json="{}")
        assert (await api.raw("POST", "/Entries/1/Welcome.txt?autoRename=true", data=form)).status == 201
        assert (copy / "copied").is_dir() and not (copy / "Contracts").exists()
        assert server.stop(sig) == 0
    assert not copy.exists()
    assert whole(root) == before


async def test_ephemeral_copy_is_removed_on_a_second_signal_too(tmp_path, server_factory):
    """A second Ctrl-C exits at once, and still removes the copy."""
    root = sample_copy(tmp_path)
    before = whole(root)
    async with aiohttp.ClientSession() as session:
        server = server_factory.start(root, "--ephemeral")
        copy = copy_of(server)
        api = await remote_api(session, server)
        await api.mkdir(1, "x")
    server.proc.send_signal(signal.SIGINT)
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=15) in (0, 130)
    assert not copy.exists()
    assert whole(root) == before


async def test_ephemeral_over_a_root_another_server_serves(tmp_path, server_factory):
    """While a server serves the root, an ephemeral one copies its store beside it (sqlite's
    backup): the same ids, and neither disturbs the other."""
    root = sample_copy(tmp_path)
    async with aiohttp.ClientSession() as session:
        first = server_factory.start(root)
        api = await remote_api(session, first)
        await api.mkdir(1, "live")
        shown = await state(api)
        second = server_factory.start(root, "--ephemeral")
        other = await remote_api(session, second)
        assert await state(other) == shown
        await other.mkdir(1, "only in the copy")
        assert "only in the copy" not in await api.child_names(1)
        assert second.stop() == 0
        assert await state(api) == shown
        assert first.stop() == 0


async def test_ephemeral_over_a_root_that_does_not_exist_yet(tmp_path, server_factory):
    root = tmp_path / "nothing here"
    async with aiohttp.ClientSession() as session:
        server = server_factory.start(root, env_extra={"SANDBOX_EPHEMERAL": "1"})
        copy = copy_of(server)
        api = await remote_api(session, server)
        await api.mkdir(1, "x")
        assert server.stop() == 0
    assert not root.exists() and not copy.exists()


def test_the_start_state_links_the_tree_and_copies_the_rows(tmp_path):
    """What is kept: the rows as a database of its own (one file), the tree as hard links to the
    same bytes; and a clean stop removes it."""
    from server.snapshot import StartState
    from server.store import Store

    root = sample_copy(tmp_path)
    store = Store(root)
    store.open("admin", time.time_ns())
    start = StartState()
    try:
        start.keep_rows(store)
        start.keep_tree()
    finally:
        store.close()
    kept = root / ".sandbox" / "start"
    assert sorted(p.name for p in kept.iterdir()) == ["results", "sandbox.db", "tree"]
    with sqlite3.connect(kept / "sandbox.db") as conn:
        assert conn.execute("SELECT id FROM entries WHERE parent_id IS NULL").fetchall() == [(1,)]
    for name in ("Welcome.txt", ".catalog.toml", "Invoices/2026/INV-0001.txt"):
        assert (kept / "tree" / name).stat().st_ino == (root / name).stat().st_ino
    assert (kept / "tree" / "Invoices").stat().st_mtime_ns == (root / "Invoices").stat().st_mtime_ns
    start.discard()
    start.close()
    assert not kept.exists()
