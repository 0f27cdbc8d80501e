"""Long operations over real sockets: CopyAsync, DELETE Entries, Tasks status, cancel, expiry, the
one-operation-per-session rule and the status monitor (CONTRACT.md, the Long Operations guide)."""

from __future__ import annotations

import asyncio
import filecmp
import hashlib
import json
import os
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from conftest import (
    BASE,
    HIDDEN,
    Api,
    assert_entry_shape,
    assert_problem,
    make_settings,
    part_files,
    sign_in,
    tree_snapshot,
    walk_tree,
    write_catalog,
)

from server import fsops
from server.app import create_app

COPY_CHILDREN = "Laserfiche.Repository.Folder/children/CopyAsync"
COPY_SHORT = "Laserfiche.Repository.Folder/CopyAsync"
LIMIT_TITLE = "Operation limit or request limit reached."
PROGRESS_KEYS = {
    "operationToken",
    "operationType",
    "percentComplete",
    "status",
    "errors",
    "redirectUri",
    "entryId",
    "startTimestamp",
    "statusTimestamp",
}
RUNNING = ("NotStarted", "InProgress")
MIB = 1024 * 1024
# a poll loop gives up after this long: every operation here ends within a few seconds
DEADLINE_S = 30.0


# --------------------------------------------------------------------------- helpers


async def open_api(aiohttp_client, storage_root: Path, **overrides) -> Api:
    """A signed-in Api over an app built with these settings."""
    client = await aiohttp_client(create_app(make_settings(storage_root, **overrides)))
    return Api(client, await sign_in(client))


async def another_session(api: Api) -> Api:
    return Api(api.client, await sign_in(api.client))


def absolute(api: Api, path: str) -> str:
    return str(api.client.make_url(api.url(path)))


async def start_copy(api: Api, dest_id: int, source_id: int, name: str, *, route=COPY_CHILDREN, params=None):
    return await api.post(
        f"/Entries/{dest_id}/{route}", json={"sourceId": source_id, "name": name}, params=params or {}
    )


async def token_of(resp, expected_status: int = 202) -> str:
    """Check a start response (status, {token}, Location, Retry-After, Operation-Location)."""
    text = await resp.text()
    assert resp.status == expected_status, text
    body = json.loads(text)
    token = body["token"]
    assert isinstance(token, str)
    assert token
    assert set(body) == {"token"}, body
    tasks = str(resp.url.origin().with_path(f"{BASE}/Tasks/{token}"))
    assert resp.headers["Location"] == tasks
    assert int(resp.headers["Retry-After"]) >= 0
    assert resp.headers["Operation-Location"] == tasks + "/status"
    return token


async def copy_token(api: Api, dest_id: int, source_id: int, name: str, **kw) -> str:
    return await token_of(await start_copy(api, dest_id, source_id, name, **kw))


async def delete_token(api: Api, entry_id: int, **kw) -> str:
    return await token_of(await api.request("DELETE", f"/Entries/{entry_id}", **kw))


async def task(api: Api, token: str):
    """GET Tasks/{token} without following the redirect; returns (response, JSON body or None)."""
    resp = await api.get(f"/Tasks/{token}", allow_redirects=False)
    raw = await resp.read()
    body = json.loads(raw) if raw and "json" in resp.content_type else None
    return resp, body


def assert_progress(body: dict, token: str, kind: str) -> None:
    assert set(body) == PROGRESS_KEYS, body
    assert body["operationToken"] == token
    assert body["operationType"] == kind
    pct = body["percentComplete"]
    assert isinstance(pct, int)
    assert not isinstance(pct, bool)
    assert 0 <= pct <= 100
    assert body["status"] in ("NotStarted", "InProgress", "Completed", "Failed", "Cancelled")
    assert isinstance(body["errors"], list)
    for error in body["errors"]:
        assert set(error) >= {"objectId", "errorMessage"}, error
    assert isinstance(body["entryId"], int)
    datetime.fromisoformat(body["statusTimestamp"])
    if body["startTimestamp"] is not None:
        datetime.fromisoformat(body["startTimestamp"])


def assert_completed(body: dict | None, token: str, kind: str) -> None:
    """A finished operation's progress: Completed, 100%, no errors."""
    assert body is not None
    assert_progress(body, token, kind)
    assert body["status"] == "Completed", body
    assert body["percentComplete"] == 100
    assert body["errors"] == []


async def wait_done(api: Api, token: str, kind: str = "CopyEntry", interval: float = 0.01):
    """Poll until the status is not 202; returns (every 202 body seen, the final response, its body).

    Checks along the way: each 202 is a running OperationProgress with Retry-After, and
    percentComplete never goes backwards and stays under 100 until the end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    seen: list[dict] = []
    while True:
        resp, body = await task(api, token)
        if resp.status != 202:
            if body is not None and seen:
                assert body["percentComplete"] >= seen[-1]["percentComplete"], (seen[-1], body)
            return seen, resp, body
        assert "Retry-After" in resp.headers
        assert body is not None
        assert_progress(body, token, kind)
        assert body["status"] in RUNNING, body
        assert body["percentComplete"] < 100, body
        if seen:
            assert body["percentComplete"] >= seen[-1]["percentComplete"], (seen[-1], body)
        seen.append(body)
        assert loop.time() < deadline, f"operation {token} still running: {body}"
        await asyncio.sleep(interval)


async def wait_progress(api: Api, token: str, at_least: int = 1, kind: str = "CopyEntry") -> dict | None:
    """Poll until the operation is InProgress with percentComplete >= at_least; returns that body,
    or None if the operation ended first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while loop.time() < deadline:
        resp, body = await task(api, token)
        if resp.status != 202:
            return None
        assert body is not None
        assert_progress(body, token, kind)
        if body["status"] == "InProgress" and body["percentComplete"] >= at_least:
            return body
        await asyncio.sleep(0.002)
    raise AssertionError(f"operation {token} made no progress to {at_least}%")


async def monitor(api: Api, token: str):
    resp = await api.get(f"/Tasks/{token}/status", allow_redirects=False)
    raw = await resp.read()
    return resp, (json.loads(raw) if raw and "json" in resp.content_type else None)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def digest_tree(top: Path) -> dict[str, str | None]:
    """Relative path -> sha256 of a file (read in chunks: some are hundreds of MiB), None for a folder."""
    return walk_tree(top, sha256_of)


def assert_no_leftovers(storage_root: Path) -> None:
    assert part_files(storage_root) == []
    tmp = storage_root / HIDDEN / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def visible(storage_root: Path) -> list:
    return tree_snapshot(storage_root, exclude_hidden_of=storage_root)


def stored_tokens(storage_root: Path) -> list[str]:
    """The operation records the server keeps in its store (read-only, from outside)."""
    db = storage_root / HIDDEN / "sandbox.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT token FROM operations")]
    finally:
        conn.close()


def build_source(top: Path) -> None:
    """Nested folders, empty and multi-MiB files, unicode names, an empty folder."""
    top.mkdir()
    (top / "empty.txt").write_bytes(b"")
    (top / "small.txt").write_bytes(b"hello\n")
    (top / "Ünïcødé 文件.txt").write_bytes(os.urandom(1000))
    (top / "big1.bin").write_bytes(os.urandom(2 * MIB))
    (top / "big2.dat").write_bytes(os.urandom(3 * MIB + 17))
    (top / "Sub A" / "Deeper" / "Deepest").mkdir(parents=True)
    (top / "Sub A" / "a1.txt").write_bytes(b"a1")
    (top / "Sub A" / "naïve ☃.md").write_bytes("# ☃\n".encode())
    (top / "Sub A" / "Deeper" / "d.bin").write_bytes(os.urandom(100_000))
    (top / "Пустая").mkdir()
    (top / "日本語").mkdir()
    (top / "日本語" / "x.txt").write_bytes(b"x" * 4097)


def build_many(top: Path, folders: int = 3, files_per_folder: int = 20) -> int:
    """Small files spread over a few folders; returns how many files."""
    top.mkdir()
    for f in range(folders):
        d = top / f"dir{f}"
        d.mkdir()
        for i in range(files_per_folder):
            (d / f"file{i:03}.txt").write_bytes(f"{f}-{i}-".encode() + os.urandom(200))
    return folders * files_per_folder


def write_big(path: Path, mib: int) -> None:
    """A file of `mib` MiB whose every MiB differs (a misplaced chunk would show)."""
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(i.to_bytes(8, "big") + block[8:])


async def listed_tree(api: Api, folder_id: int) -> dict[str, dict]:
    """Relative path (with os.sep) -> listing item, for everything below a folder."""
    out: dict[str, dict] = {}
    pending = [(folder_id, "")]
    while pending:
        fid, prefix = pending.pop()
        for item in await api.children(fid):
            rel = os.path.join(prefix, item["name"]) if prefix else item["name"]
            out[rel] = item
            if item["entryType"] == "Folder":
                pending.append((item["id"], rel))
    return out


async def assert_listed_like_disk(api: Api, folder_id: int, top: Path) -> None:
    """Every entry on disk below `top` is listed with its own id, and nothing else is."""
    listed = await listed_tree(api, folder_id)
    on_disk = digest_tree(top)
    assert set(listed) == set(on_disk)
    ids = [e["id"] for e in listed.values()]
    assert all(isinstance(i, int) and i > 1 for i in ids)
    assert len(set(ids)) == len(ids)
    for rel, item in listed.items():
        assert (item["entryType"] == "Folder") == (on_disk[rel] is None), rel
        if item["entryType"] == "Document":
            assert item["elecDocumentSize"] == (top / rel).stat().st_size, rel


# --------------------------------------------------------------------------- copy, docs profile


async def test_copy_async_seed_flow_docs_profile(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=25)
    build_source(storage_root / "Source")
    source = await api.by_path("\\Source")

    token = await copy_token(api, 1, source["id"], "MyCopiedFolder")
    seen, resp, body = await wait_done(api, token)

    # several polls while it ran, each an OperationProgress of a copy still under 100%
    in_progress = [b for b in seen if b["status"] == "InProgress"]
    assert len(in_progress) >= 3, seen
    assert all(b["errors"] == [] for b in seen)

    # completion: 302 to the new entry (the guide)
    assert resp.status == 302, body
    location = resp.headers["Location"]
    assert location.startswith("http://")
    new_id = int(location.rsplit("/", 1)[1])
    assert location == absolute(api, f"/Entries/{new_id}")
    assert new_id not in (1, source["id"])

    entry = await api.entry(new_id)
    assert_entry_shape(entry)
    assert entry["id"] == new_id
    assert entry["name"] == "MyCopiedFolder"
    assert entry["parentId"] == 1
    assert entry["fullPath"] == "\\MyCopiedFolder"
    assert entry["folderPath"] == "\\"
    assert entry["entryType"] == "Folder"
    assert entry["isContainer"] is True
    assert entry["isLeaf"] is False
    assert entry["templateName"] == ""
    assert entry["templateId"] == 0
    assert entry["templateFieldNames"] == []
    assert entry["volumeName"] == "DEFAULTVOLUME"
    assert entry["isRecordFolder"] is False
    assert entry["isUnderRecordSeries"] is False
    assert entry["creator"] == "admin"
    datetime.fromisoformat(entry["creationTime"])
    datetime.fromisoformat(entry["lastModifiedTime"])

    # the copy on disk is the source, name for name and byte for byte
    dest = storage_root / "MyCopiedFolder"
    assert digest_tree(dest) == digest_tree(storage_root / "Source")
    cmp = filecmp.dircmp(storage_root / "Source", dest)
    assert cmp.left_only == cmp.right_only == []
    await assert_listed_like_disk(api, new_id, dest)
    assert_no_leftovers(storage_root)

    # the token still answers the same after completion
    again, body2 = await task(api, token)
    assert again.status == 302
    assert again.headers["Location"] == location
    assert_completed(body2, token, "CopyEntry")


async def test_copy_async_sdk_profile(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, profile="sdk", pace_ms=10)
    build_source(storage_root / "Source")
    source = await api.by_path("\\Source")

    token = await token_of(await start_copy(api, 1, source["id"], "MyCopiedFolder"), 201)
    _, resp, body = await wait_done(api, token)
    assert resp.status == 201, body
    assert_completed(body, token, "CopyEntry")
    new_id = body["entryId"]
    url = absolute(api, f"/Entries/{new_id}")
    assert resp.headers["Location"] == url
    assert body["redirectUri"] == url
    entry = await api.entry(new_id)
    assert entry["fullPath"] == "\\MyCopiedFolder"
    assert digest_tree(storage_root / "MyCopiedFolder") == digest_tree(storage_root / "Source")
    # a delete in the sdk profile starts with 201 too, and ends with 200
    token = await token_of(await api.request("DELETE", f"/Entries/{new_id}"), 201)
    _, resp, body = await wait_done(api, token, "DeleteEntry")
    assert resp.status == 200, body
    assert body["status"] == "Completed"
    assert not (storage_root / "MyCopiedFolder").exists()


# --------------------------------------------------------------------------- other routes, documents


async def test_copy_async_short_route(api, storage_root):
    build_source(storage_root / "Source")
    source = await api.by_path("\\Source")
    folder = await api.mkdir(1, "Target")
    token = await copy_token(api, folder["id"], source["id"], "Copied", route=COPY_SHORT)
    _, resp, _ = await wait_done(api, token)
    assert resp.status == 302
    new_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    entry = await api.entry(new_id)
    assert entry["fullPath"] == "\\Target\\Copied"
    assert entry["parentId"] == folder["id"]
    assert entry["folderPath"] == "\\Target"
    assert digest_tree(storage_root / "Target" / "Copied") == digest_tree(storage_root / "Source")
    await assert_listed_like_disk(api, new_id, storage_root / "Target" / "Copied")


@pytest.mark.parametrize("route", [COPY_CHILDREN, COPY_SHORT])
async def test_copy_async_single_document(api, storage_root, route):
    data = os.urandom(3 * MIB + 5)
    (storage_root / "report.pdf").write_bytes(data)
    doc = await api.by_path("\\report.pdf")
    token = await copy_token(api, 1, doc["id"], "report copy.pdf", route=route)
    _, resp, _ = await wait_done(api, token)
    assert resp.status == 302
    new_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    entry = await api.entry(new_id)
    assert_entry_shape(entry)
    assert entry["entryType"] == "Document"
    assert entry["name"] == "report copy.pdf"
    assert entry["extension"] == "pdf"
    assert entry["elecDocumentSize"] == len(data)
    assert (storage_root / "report copy.pdf").read_bytes() == data
    assert (storage_root / "report.pdf").read_bytes() == data
    dl = await api.download(new_id)
    assert dl.status == 200
    assert await dl.read() == data
    assert_no_leftovers(storage_root)


async def test_copy_async_document_keeps_extension(api, storage_root):
    data = b"%PDF-1.4 " + os.urandom(5000)
    doc_id = await api.upload(1, "Invoice 123", data, filename="File.pdf")
    assert (await api.entry(doc_id))["extension"] == "pdf"
    token = await copy_token(api, 1, doc_id, "Invoice copy")
    _, resp, _ = await wait_done(api, token)
    assert resp.status == 302
    new_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    entry = await api.entry(new_id)
    assert entry["name"] == "Invoice copy"
    assert entry["extension"] == "pdf"
    assert entry["mimeType"] == "application/pdf"
    dl = await api.download(new_id)
    assert await dl.read() == data
    assert "Invoice copy.pdf" in dl.headers["Content-Disposition"]


# --------------------------------------------------------------------------- refused before a token


@pytest.fixture
async def copy_setup(api, storage_root):
    """A source tree, a document and a taken name; returns (api, ids)."""
    build_source(storage_root / "Source")
    (storage_root / "doc.txt").write_bytes(b"doc")
    (storage_root / "Taken").mkdir()
    ids = {
        "source": (await api.by_path("\\Source"))["id"],
        "sub": (await api.by_path("\\Source\\Sub A"))["id"],
        "deeper": (await api.by_path("\\Source\\Sub A\\Deeper"))["id"],
        "doc": (await api.by_path("\\doc.txt"))["id"],
    }
    return api, ids


async def assert_refused(api: Api, storage_root: Path, resp, status: int, field_name: str | None = None):
    """A problem, with no token in it and none stored (the caller compares the disk)."""
    body = await assert_problem(resp, status, field_name)
    assert "token" not in body
    assert stored_tokens(storage_root) == []
    return body


async def test_copy_missing_source_is_404(copy_setup, storage_root):
    api, _ = copy_setup
    before = visible(storage_root)
    resp = await start_copy(api, 1, 999999, "X")
    await assert_refused(api, storage_root, resp, 404)
    assert visible(storage_root) == before


async def test_copy_missing_destination_is_404(copy_setup, storage_root):
    api, ids = copy_setup
    before = visible(storage_root)
    resp = await start_copy(api, 999999, ids["source"], "X")
    await assert_refused(api, storage_root, resp, 404)
    assert visible(storage_root) == before


async def test_copy_into_document_is_400(copy_setup, storage_root):
    api, ids = copy_setup
    before = visible(storage_root)
    resp = await start_copy(api, ids["doc"], ids["source"], "X")
    await assert_refused(api, storage_root, resp, 400)
    assert visible(storage_root) == before


@pytest.mark.parametrize("dest", ["source", "sub", "deeper"])
async def test_copy_into_own_subtree_is_400(copy_setup, storage_root, dest):
    api, ids = copy_setup
    before = visible(storage_root)
    for route in (COPY_CHILDREN, COPY_SHORT):
        resp = await start_copy(api, ids[dest], ids["source"], "Loop", route=route)
        await assert_refused(api, storage_root, resp, 400)
    assert visible(storage_root) == before


async def test_copy_root_is_400(copy_setup, storage_root):
    api, ids = copy_setup
    before = visible(storage_root)
    await assert_refused(api, storage_root, await start_copy(api, ids["source"], 1, "Root"), 400)
    await assert_refused(api, storage_root, await start_copy(api, 1, 1, "Root"), 400)
    assert visible(storage_root) == before


async def test_copy_name_conflict_is_409_then_auto_rename(copy_setup, storage_root):
    api, ids = copy_setup
    before = visible(storage_root)
    await assert_refused(api, storage_root, await start_copy(api, 1, ids["source"], "Taken"), 409)
    resp = await start_copy(api, 1, ids["source"], "Taken", params={"autoRename": "false"})
    await assert_refused(api, storage_root, resp, 409)
    # a document's name is taken too (a folder copy may not take a document's name)
    await assert_refused(api, storage_root, await start_copy(api, 1, ids["source"], "doc.txt"), 409)
    assert visible(storage_root) == before

    token = await copy_token(api, 1, ids["source"], "Taken", params={"autoRename": "true"})
    _, resp, _ = await wait_done(api, token)
    assert resp.status == 302
    entry = await api.entry(int(resp.headers["Location"].rsplit("/", 1)[1]))
    assert entry["name"] == "Taken (2)"
    assert list((storage_root / "Taken").iterdir()) == []
    assert digest_tree(storage_root / "Taken (2)") == digest_tree(storage_root / "Source")


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({}, "sourceId"),
        ({"name": "x"}, "sourceId"),
        ({"sourceId": None, "name": "x"}, "sourceId"),
        ({"sourceId": "SRC", "name": "x"}, "sourceId"),  # a string, not the id
        ({"sourceId": True, "name": "x"}, "sourceId"),
        ({"sourceId": 1.5, "name": "x"}, "sourceId"),
        ({"sourceId": -3, "name": "x"}, "sourceId"),
        ({"sourceId": "<id>"}, "name"),
        ({"sourceId": "<id>", "name": 5}, "name"),
        ({"sourceId": "<id>", "name": ["x"]}, "name"),
        ({"sourceId": "<id>", "name": "a/b"}, "name"),
        ({"sourceId": "<id>", "name": "a\\b"}, "name"),
        ({"sourceId": "<id>", "name": ""}, "name"),
        ({"sourceId": "<id>", "name": ".."}, "name"),
        ({"sourceId": "<id>", "name": "x" * 256}, "name"),
    ],
)
async def test_copy_bad_body_is_400(copy_setup, storage_root, body, field_name):
    api, ids = copy_setup
    body = {k: (ids["source"] if v == "<id>" else v) for k, v in body.items()}
    before = visible(storage_root)
    for route in (COPY_CHILDREN, COPY_SHORT):
        resp = await api.post(f"/Entries/1/{route}", json=body)
        await assert_refused(api, storage_root, resp, 400, field_name)
    assert visible(storage_root) == before


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"', b"null"])
async def test_copy_unreadable_body_is_400(copy_setup, storage_root, raw):
    api, _ = copy_setup
    resp = await api.post(
        f"/Entries/1/{COPY_CHILDREN}", data=raw, headers={"Content-Type": "application/json"}
    )
    await assert_refused(api, storage_root, resp, 400)


async def test_copy_bad_auto_rename_is_400(copy_setup, storage_root):
    api, ids = copy_setup
    resp = await start_copy(api, 1, ids["source"], "X", params={"autoRename": "banana"})
    await assert_refused(api, storage_root, resp, 400, "autoRename")


# --------------------------------------------------------------------------- delete


async def test_delete_folder_tree(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=10)
    build_source(storage_root / "Doomed")
    (storage_root / "Keep").mkdir()
    (storage_root / "Keep" / "k.txt").write_bytes(b"k")
    doomed = await api.by_path("\\Doomed")
    inner = await api.by_path("\\Doomed\\Sub A\\Deeper\\d.bin")

    token = await delete_token(api, doomed["id"])
    seen, resp, body = await wait_done(api, token, "DeleteEntry")
    assert seen, "a paced delete of this tree is observable while it runs"
    assert resp.status == 200, body
    assert_completed(body, token, "DeleteEntry")
    assert not (storage_root / "Doomed").exists()
    assert (storage_root / "Keep" / "k.txt").read_bytes() == b"k"
    await assert_problem(await api.get(f"/Entries/{doomed['id']}"), 404)
    await assert_problem(await api.get(f"/Entries/{inner['id']}"), 404)
    assert await api.child_names(1) == {"Keep"}
    assert_no_leftovers(storage_root)


async def test_delete_document(api, storage_root):
    (storage_root / "a.txt").write_bytes(b"a")
    (storage_root / "b.txt").write_bytes(b"b")
    doc = await api.by_path("\\a.txt")
    token = await delete_token(api, doc["id"])
    _, resp, body = await wait_done(api, token, "DeleteEntry")
    assert resp.status == 200
    assert_completed(body, token, "DeleteEntry")
    assert not (storage_root / "a.txt").exists()
    assert (storage_root / "b.txt").read_bytes() == b"b"
    await assert_problem(await api.get(f"/Entries/{doc['id']}"), 404)


async def test_delete_root_is_400(api, storage_root):
    (storage_root / "x.txt").write_bytes(b"x")
    await api.by_path("\\x.txt")
    before = visible(storage_root)
    await assert_refused(api, storage_root, await api.request("DELETE", "/Entries/1"), 400)
    assert visible(storage_root) == before


async def test_delete_never_issued_id_is_404(api, storage_root):
    (storage_root / "x.txt").write_bytes(b"x")
    await api.by_path("\\x.txt")
    await assert_refused(api, storage_root, await api.request("DELETE", "/Entries/999999"), 404)


@pytest.mark.parametrize("kind", ["folder", "document"])
async def test_delete_entry_removed_by_hand_fails(api, storage_root, kind):
    if kind == "folder":
        (storage_root / "gone" / "inner").mkdir(parents=True)
    else:
        (storage_root / "gone").write_bytes(b"g")
    gone = await api.by_path("\\gone")
    (storage_root / "keep.txt").write_bytes(b"keep")
    if kind == "folder":
        shutil.rmtree(storage_root / "gone")
    else:
        (storage_root / "gone").unlink()

    token = await delete_token(api, gone["id"])
    _, resp, body = await wait_done(api, token, "DeleteEntry")
    assert resp.status == 200, body
    assert_progress(body, token, "DeleteEntry")
    assert body["status"] == "Failed"
    assert body["percentComplete"] < 100
    assert body["errors"], body
    assert "no longer exists" in " ".join(e["errorMessage"] for e in body["errors"])
    assert (storage_root / "keep.txt").read_bytes() == b"keep"
    # the monitor says the same, in its own words
    mresp, mbody = await monitor(api, token)
    assert mresp.status == 200
    assert mbody["status"] == "Failed"
    assert set(mbody["error"]) >= {"code", "message"}
    assert "no longer exists" in mbody["error"]["message"]


async def test_delete_child_right_after_parent(aiohttp_client, storage_root):
    """The official client's tests delete a child right after its parent (queue mode)."""
    api = await open_api(aiohttp_client, storage_root, session_concurrency="queue")
    (storage_root / "P" / "C").mkdir(parents=True)
    parent = await api.by_path("\\P")
    child = await api.by_path("\\P\\C")
    first = await delete_token(api, parent["id"])
    second = await delete_token(api, child["id"])
    _, resp, body = await wait_done(api, first, "DeleteEntry")
    assert body["status"] == "Completed"
    _, resp, body = await wait_done(api, second, "DeleteEntry")
    assert resp.status == 200
    assert body["status"] == "Failed"
    assert "no longer exists" in " ".join(e["errorMessage"] for e in body["errors"])
    assert not (storage_root / "P").exists()


async def test_delete_with_audit_body(aiohttp_client, storage_root):
    write_catalog(storage_root)  # (its DeleteEntry audit reasons are 1 and 2; 3 is an ExportDocument one)
    client = await aiohttp_client(create_app(make_settings(storage_root)))
    api = Api(client, await sign_in(client), BASE)
    (storage_root / "a").mkdir()
    (storage_root / "b.txt").write_bytes(b"b")
    a = await api.by_path("\\a")
    b = await api.by_path("\\b.txt")
    refused = await api.request("DELETE", f"/Entries/{a['id']}", json={"auditReasonId": 3})
    await assert_problem(refused, 400, "auditReasonId")
    token = await delete_token(api, a["id"], json={"auditReasonId": 2, "comment": "tidy up"})
    _, _, body = await wait_done(api, token, "DeleteEntry")
    assert body["status"] == "Completed"
    assert not (storage_root / "a").exists()
    token = await delete_token(api, b["id"], json={})
    _, _resp, body = await wait_done(api, token, "DeleteEntry")
    assert body["status"] == "Completed"
    assert not (storage_root / "b.txt").exists()


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"auditReasonId": "3"}, "auditReasonId"),
        ({"auditReasonId": True}, "auditReasonId"),
        ({"auditReasonId": 1.5}, "auditReasonId"),
        ({"comment": 5}, "comment"),
        ({"comment": ["x"]}, "comment"),
        ({"auditReasonId": 1, "comment": {"a": 1}}, "comment"),
    ],
)
async def test_delete_bad_body_is_400(api, storage_root, body, field_name):
    (storage_root / "a").mkdir()
    a = await api.by_path("\\a")
    resp = await api.request("DELETE", f"/Entries/{a['id']}", json=body)
    await assert_refused(api, storage_root, resp, 400, field_name)
    assert (storage_root / "a").is_dir()


async def test_delete_unreadable_body_is_400(api, storage_root):
    (storage_root / "a").mkdir()
    a = await api.by_path("\\a")
    for raw in (b"{", b"[1]"):
        resp = await api.request(
            "DELETE", f"/Entries/{a['id']}", data=raw, headers={"Content-Type": "application/json"}
        )
        await assert_refused(api, storage_root, resp, 400)
    assert (storage_root / "a").is_dir()


# --------------------------------------------------------------------------- cancel


async def test_cancel_mid_copy_leaves_partial_exact_copy(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=30)
    total = build_many(storage_root / "Many", folders=3, files_per_folder=20)
    source = await api.by_path("\\Many")
    token = await copy_token(api, 1, source["id"], "Partial")

    body = await wait_progress(api, token, at_least=20)
    assert body is not None, "the paced copy ended before it could be cancelled"
    cancel = await api.request("DELETE", f"/Tasks/{token}")
    assert cancel.status == 204, await cancel.text()
    assert await cancel.read() == b""

    resp, body = await task(api, token)
    assert resp.status == 200, body
    assert_progress(body, token, "CopyEntry")
    assert body["status"] == "Cancelled"
    assert 0 < body["percentComplete"] < 100
    partial = await api.entry(body["entryId"])
    assert partial["fullPath"] == "\\Partial"

    dest = storage_root / "Partial"
    snapshot = digest_tree(dest)
    copied = {rel: h for rel, h in snapshot.items() if h is not None}
    assert 0 < len(copied) < total, f"{len(copied)} of {total} copied"
    source_digests = digest_tree(storage_root / "Many")
    for rel, h in snapshot.items():
        assert rel in source_digests, rel
        assert source_digests[rel] == h, rel
    assert_no_leftovers(storage_root)
    await assert_listed_like_disk(api, body["entryId"], dest)

    # nothing moves after the cancel answered; cancelling again is refused and changes nothing
    again = await api.request("DELETE", f"/Tasks/{token}")
    problem = await assert_problem(again, 400)
    assert problem["title"] == "Cannot cancel ended operation."
    await asyncio.sleep(0.2)  # ~7 paced entries: a copy still running would show
    assert digest_tree(dest) == snapshot
    resp, body2 = await task(api, token)
    assert resp.status == 200
    assert body2["status"] == "Cancelled"
    assert body2["percentComplete"] == body["percentComplete"]

    # the session is free again
    token = await copy_token(api, 1, source["id"], "Whole")
    _, resp, _ = await wait_done(api, token)
    assert resp.status == 302
    assert digest_tree(storage_root / "Whole") == source_digests


@pytest.mark.parametrize("kind", ["folder", "document"])
async def test_cancel_mid_file(aiohttp_client, storage_root, kind):
    api = await open_api(aiohttp_client, storage_root)
    src_dir = storage_root / "BigSrc"
    src_dir.mkdir()
    big = src_dir / "big.bin"
    try:
        for size_mib in (300, 1024):
            write_big(big, size_mib)
            if kind == "folder":
                source = await api.by_path("\\BigSrc")
                name = f"BigCopy{size_mib}"
                final = storage_root / name / "big.bin"
            else:
                source = await api.by_path("\\BigSrc\\big.bin")
                name = f"bigcopy{size_mib}.bin"
                final = storage_root / name
            token = await copy_token(api, 1, source["id"], name)
            progress = await wait_progress(api, token, at_least=1)
            cancel = await api.request("DELETE", f"/Tasks/{token}")
            # (400: the copy had already ended)
            assert cancel.status in (204, 400), await cancel.text()
            # what the disk holds the moment the cancel answered (it waits for the operation to end)
            parts_then = part_files(storage_root)
            tmp_then = sorted(p.name for p in (storage_root / HIDDEN / "tmp").iterdir())
            final_then = final.exists()
            resp, body = await task(api, token)
            if progress is None or body["status"] == "Completed":
                assert resp.status == 302
                continue  # too quick to catch: once more, with a bigger file
            assert resp.status == 200, body
            assert body["status"] == "Cancelled"
            assert body["percentComplete"] < 100
            # the operation had ended when the cancel answered: no part file, no temporary file
            assert parts_then == [], "part files left when the cancelled copy had ended"
            assert tmp_then == [], "a temporary file still there when the cancelled copy had ended"
            # no half-written file under the final name
            if final_then:
                assert filecmp.cmp(final, big, shallow=False), "a partial file carries the final name"
            assert_no_leftovers(storage_root)
            await asyncio.sleep(0.1)  # a worker still running after the end would show
            assert final.exists() == final_then, "the copy was published after it was cancelled"
            assert_no_leftovers(storage_root)
            if kind == "folder":
                partial = await api.entry(body["entryId"])
                assert partial["name"] == name
                assert {p.name for p in (storage_root / name).iterdir()} <= {"big.bin"}
                await assert_listed_like_disk(api, body["entryId"], storage_root / name)
            else:
                assert (name in await api.child_names(1)) == final_then
            break
        else:
            pytest.fail("even the 1 GiB copy completed before the cancel: cannot test a mid-file cancel")
    finally:
        for path in storage_root.iterdir():
            if path.name != HIDDEN:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()


async def test_cancel_of_ended_operation_is_refused_and_changes_nothing(api, storage_root):
    build_source(storage_root / "Source")
    source = await api.by_path("\\Source")
    token = await copy_token(api, 1, source["id"], "Done")
    _, resp, body = await wait_done(api, token)
    assert resp.status == 302
    location = resp.headers["Location"]
    before = digest_tree(storage_root / "Done")
    for _ in range(2):
        # the vendor's .NET and Java client tests expect this refusal, title and all
        problem = await assert_problem(await api.request("DELETE", f"/Tasks/{token}"), 400)
        assert problem["title"] == "Cannot cancel ended operation."
        assert "Completed" in problem["detail"]
    resp, body2 = await task(api, token)
    assert resp.status == 302
    assert resp.headers["Location"] == location
    assert_completed(body2, token, "CopyEntry")
    assert digest_tree(storage_root / "Done") == before == digest_tree(storage_root / "Source")

    # a finished delete, too
    (storage_root / "x.txt").write_bytes(b"x")
    doc = await api.by_path("\\x.txt")
    token = await delete_token(api, doc["id"])
    _, resp, body = await wait_done(api, token, "DeleteEntry")
    assert body["status"] == "Completed"
    await assert_problem(await api.request("DELETE", f"/Tasks/{token}"), 400)
    resp, body = await task(api, token)
    assert resp.status == 200
    assert body["status"] == "Completed"


async def test_cancel_mid_delete_leaves_what_it_had_not_reached(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=30)
    total = build_many(storage_root / "Doomed", folders=3, files_per_folder=15)
    before = digest_tree(storage_root / "Doomed")
    doomed = await api.by_path("\\Doomed")
    token = await delete_token(api, doomed["id"])
    body = await wait_progress(api, token, at_least=20, kind="DeleteEntry")
    assert body is not None, "the paced delete ended before it could be cancelled"
    cancel = await api.request("DELETE", f"/Tasks/{token}")
    assert cancel.status == 204

    resp, body = await task(api, token)
    assert resp.status == 200, body
    assert_progress(body, token, "DeleteEntry")
    assert body["status"] == "Cancelled"
    assert 0 < body["percentComplete"] < 100
    assert (storage_root / "Doomed").is_dir()
    left = digest_tree(storage_root / "Doomed")
    files_left = [rel for rel, h in left.items() if h is not None]
    assert 0 < len(files_left) < total, f"{len(files_left)} of {total} left"
    for rel, h in left.items():
        assert before[rel] == h, rel
    # what is left is still the repository's, with its ids
    assert (await api.entry(doomed["id"]))["fullPath"] == "\\Doomed"
    await assert_listed_like_disk(api, doomed["id"], storage_root / "Doomed")
    await asyncio.sleep(0.2)  # ~7 paced entries: a delete still running would show
    assert digest_tree(storage_root / "Doomed") == left


# --------------------------------------------------------------------------- one per session


async def test_one_operation_per_session(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=20)
    build_many(storage_root / "Many", folders=2, files_per_folder=20)
    (storage_root / "victim.txt").write_bytes(b"v")
    source = await api.by_path("\\Many")
    victim = await api.by_path("\\victim.txt")
    running = await copy_token(api, 1, source["id"], "First")
    assert await wait_progress(api, running) is not None

    refusals = [
        await start_copy(api, 1, source["id"], "Second"),
        await start_copy(api, 1, source["id"], "Second", route=COPY_SHORT),
        await api.request("DELETE", f"/Entries/{victim['id']}"),
    ]
    for resp in refusals:
        body = await assert_problem(resp, 429)
        assert body["title"] == LIMIT_TITLE
        assert body["operationToken"] == running
        assert int(resp.headers["Retry-After"]) >= 0
    assert not (storage_root / "Second").exists()
    assert (storage_root / "victim.txt").read_bytes() == b"v"
    assert stored_tokens(storage_root) == [running]

    # another session may run one at the same time
    other = await another_session(api)
    parallel = await copy_token(other, 1, source["id"], "Parallel")
    first_resp, _ = await task(api, running)
    assert first_resp.status == 202, "the first copy should still run"
    _, resp, _ = await wait_done(api, running)
    assert resp.status == 302
    _, resp, _ = await wait_done(other, parallel)
    assert resp.status == 302
    source_digests = digest_tree(storage_root / "Many")
    assert digest_tree(storage_root / "First") == source_digests
    assert digest_tree(storage_root / "Parallel") == source_digests

    # once it ended, the session may start again
    token = await delete_token(api, victim["id"])
    _, resp, body = await wait_done(api, token, "DeleteEntry")
    assert body["status"] == "Completed"


async def test_queue_mode_runs_one_after_another(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=20, session_concurrency="queue")
    build_many(storage_root / "Many", folders=2, files_per_folder=15)
    source = await api.by_path("\\Many")
    first = await copy_token(api, 1, source["id"], "First")
    second = await copy_token(api, 1, source["id"], "Second")
    assert first != second

    resp1, body1 = await task(api, first)
    resp2, body2 = await task(api, second)
    assert resp1.status == 202
    assert resp2.status == 202
    assert_progress(body2, second, "CopyEntry")
    assert body2["status"] == "NotStarted"
    assert body2["percentComplete"] == 0
    assert body2["startTimestamp"] is None
    mresp, mbody = await monitor(api, second)
    assert mresp.status == 200
    assert mbody["status"] == "NotStarted"
    assert mbody["percentComplete"] == 0

    # while the first runs, the second waits
    seen_waiting = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while True:
        # the second first: if the first still runs afterwards, it ran when the second was read
        resp2, body2 = await task(api, second)
        resp1, body1 = await task(api, first)
        if resp1.status != 202:
            break
        assert body2["status"] == "NotStarted", (body1, body2)
        seen_waiting += 1
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    assert seen_waiting >= 2
    assert resp1.status == 302
    _, resp2, body2 = await wait_done(api, second)
    assert resp2.status == 302
    assert body1 is not None
    assert body2 is not None
    first_end = datetime.fromisoformat(body1["statusTimestamp"])
    second_start = datetime.fromisoformat(body2["startTimestamp"])
    assert second_start >= first_end
    digests = digest_tree(storage_root / "Many")
    assert digest_tree(storage_root / "First") == digests
    assert digest_tree(storage_root / "Second") == digests


# --------------------------------------------------------------------------- expiry


async def test_token_expires_after_ttl(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, token_ttl_s=0.5)
    (storage_root / "a.txt").write_bytes(b"a")
    doc = await api.by_path("\\a.txt")
    token = await copy_token(api, 1, doc["id"], "b.txt")
    _, resp, _ = await wait_done(api, token)
    assert resp.status == 302  # answers right after it ended

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        resp, _body = await task(api, token)
        if resp.status != 302:
            break
        assert loop.time() < deadline, "the token did not expire"
        await asyncio.sleep(0.05)
    problem = await assert_problem(resp, 404)
    assert "expired" in problem["detail"].lower()
    problem = await assert_problem(await api.request("DELETE", f"/Tasks/{token}"), 404)
    assert "expired" in problem["detail"].lower()
    problem = await assert_problem(await api.get(f"/Tasks/{token}/status"), 404)
    assert "expired" in problem["detail"].lower()
    # the result itself stays
    assert (storage_root / "b.txt").read_bytes() == b"a"

    # a token that never existed is not found, without a word of expiry
    for method, path in (
        ("GET", "/Tasks/0f0e0d0c-0000-4000-8000-000000000000"),
        ("DELETE", "/Tasks/0f0e0d0c-0000-4000-8000-000000000000"),
        ("GET", "/Tasks/0f0e0d0c-0000-4000-8000-000000000000/status"),
        ("GET", "/Tasks/not-a-token"),
    ):
        problem = await assert_problem(await api.request(method, path), 404)
        assert "expired" not in problem["detail"].lower()
        assert "expired" not in problem["title"].lower()


async def test_running_operation_does_not_expire(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, token_ttl_s=0.3, pace_ms=40)
    build_many(storage_root / "Many", folders=1, files_per_folder=30)
    source = await api.by_path("\\Many")
    token = await copy_token(api, 1, source["id"], "Slow")
    loop = asyncio.get_running_loop()
    started = loop.time()
    seen, resp, _ = await wait_done(api, token, interval=0.05)
    assert loop.time() - started > 3 * 0.3, "the copy should outlive the token TTL several times"
    assert len(seen) >= 10
    assert resp.status == 302


# --------------------------------------------------------------------------- other sessions


async def test_other_sessions_token_is_404(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=20)
    build_many(storage_root / "Many", folders=1, files_per_folder=30)
    source = await api.by_path("\\Many")
    token = await copy_token(api, 1, source["id"], "Mine")
    other = await another_session(api)
    assert await wait_progress(api, token) is not None

    for method, path in (
        ("GET", f"/Tasks/{token}"),
        ("GET", f"/Tasks/{token}/status"),
        ("DELETE", f"/Tasks/{token}"),
    ):
        problem = await assert_problem(await other.request(method, path), 404)
        assert "expired" not in problem["detail"].lower()

    # the other session's cancel did not stop it
    _, resp, body = await wait_done(api, token)
    assert resp.status == 302, body
    assert digest_tree(storage_root / "Mine") == digest_tree(storage_root / "Many")
    # and after the end, still not the other session's
    await assert_problem(await other.get(f"/Tasks/{token}"), 404)


# --------------------------------------------------------------------------- status monitor


async def test_status_monitor_running_then_succeeded(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=20)
    build_many(storage_root / "Many", folders=2, files_per_folder=10)
    source = await api.by_path("\\Many")
    resp = await start_copy(api, 1, source["id"], "Copied")
    token = await token_of(resp)
    monitor_url = resp.headers["Operation-Location"]

    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    statuses: list[str] = []
    last = 0
    while True:
        mresp = await api.absolute("GET", monitor_url, allow_redirects=False)
        assert mresp.status == 200
        body = await mresp.json()
        assert body["id"] == token
        assert body["status"] in ("NotStarted", "Running", "Succeeded"), body
        assert isinstance(body["percentComplete"], int)
        assert body["percentComplete"] >= last
        last = body["percentComplete"]
        statuses.append(body["status"])
        if body["status"] == "Succeeded":
            break
        assert "resourceLocation" not in body
        assert "error" not in body
        assert body["percentComplete"] < 100
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    assert "Running" in statuses
    assert body["percentComplete"] == 100
    _, resp, _ = await wait_done(api, token)
    assert body["resourceLocation"] == resp.headers["Location"]
    new_id = int(body["resourceLocation"].rsplit("/", 1)[1])
    assert body["resourceLocation"] == absolute(api, f"/Entries/{new_id}")
    assert (await api.entry(new_id))["fullPath"] == "\\Copied"
    # still 200 when asked again
    mresp, again = await monitor(api, token)
    assert mresp.status == 200
    assert again == body


async def test_status_monitor_canceled(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=30)
    build_many(storage_root / "Many", folders=1, files_per_folder=30)
    source = await api.by_path("\\Many")
    token = await copy_token(api, 1, source["id"], "Copied")
    assert await wait_progress(api, token) is not None
    assert (await api.request("DELETE", f"/Tasks/{token}")).status == 204
    mresp, body = await monitor(api, token)
    assert mresp.status == 200
    assert body["id"] == token
    assert body["status"] == "Canceled"
    assert set(body["error"]) >= {"code", "message"}
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert "resourceLocation" not in body


# --------------------------------------------------------------------------- percentComplete


async def test_percent_complete_is_monotone_and_100_only_at_the_end(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root, pace_ms=10)
    build_many(storage_root / "Many", folders=4, files_per_folder=15)
    (storage_root / "Many" / "dir0" / "big.bin").write_bytes(os.urandom(6 * MIB))
    source = await api.by_path("\\Many")
    token = await copy_token(api, 1, source["id"], "Copied")
    seen, resp, body = await wait_done(api, token, interval=0.003)
    assert resp.status == 302
    percents = [b["percentComplete"] for b in seen]
    assert len(percents) >= 20, percents
    assert percents == sorted(percents)
    assert max(percents) < 100
    assert len(set(percents)) >= 5, percents
    assert_completed(body, token, "CopyEntry")

    # a delete, likewise
    copied = await api.by_path("\\Copied")
    token = await delete_token(api, copied["id"])
    seen, resp, body = await wait_done(api, token, "DeleteEntry", interval=0.003)
    assert resp.status == 200
    percents = [b["percentComplete"] for b in seen]
    assert len(percents) >= 10, percents
    assert percents == sorted(percents)
    assert max(percents) < 100
    assert body["percentComplete"] == 100


# --------------------------------------------------------------------------- auth


async def test_operation_routes_need_a_bearer(api, storage_root):
    (storage_root / "a").mkdir()
    a = await api.by_path("\\a")
    token = await delete_token(api, a["id"])
    await wait_done(api, token, "DeleteEntry")
    (storage_root / "b").mkdir()
    b = await api.by_path("\\b")
    before = visible(storage_root)
    stored = stored_tokens(storage_root)

    requests = [
        ("POST", f"/Entries/1/{COPY_CHILDREN}", {"sourceId": b["id"], "name": "c"}),
        ("POST", f"/Entries/1/{COPY_SHORT}", {"sourceId": b["id"], "name": "c"}),
        ("DELETE", f"/Entries/{b['id']}", None),
        ("GET", f"/Tasks/{token}", None),
        ("GET", f"/Tasks/{token}/status", None),
        ("DELETE", f"/Tasks/{token}", None),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        for method, path, body in requests:
            resp = await api.client.request(
                method, BASE + path, json=body, headers=headers, allow_redirects=False
            )
            await assert_problem(resp, 401)
    assert visible(storage_root) == before
    assert stored_tokens(storage_root) == stored
    # the token still answers its own session
    resp, _ = await task(api, token)
    assert resp.status == 200


# --------------------------------------------------------------------------- large trees


@pytest.mark.parametrize("processes", [2, 0], ids=["worker-processes", "threads-only"])
async def test_large_tree_copies_and_deletes_exactly(aiohttp_client, storage_root, processes):
    """Enough small files for the copy worker processes (and, with none, for the threads alone),
    nested folders and a file larger than one copy chunk; copied and deleted three times over,
    since a misordered step (a folder removed while its files were still being deleted) showed
    up only now and then."""
    api = await open_api(aiohttp_client, storage_root, copy_processes=processes)
    files = build_many(storage_root / "Large", folders=6, files_per_folder=110)
    nested = storage_root / "Large" / "dir0" / "nested" / "deeper"
    nested.mkdir(parents=True)
    for i in range(30):
        (nested / f"n{i}.txt").write_bytes(os.urandom(300))
    write_big(storage_root / "Large" / "dir1" / "chunked.bin", 9)
    assert files + 31 > 500  # past WORKER_MIN_FILES: the worker processes take the batches
    source = await api.by_path("\\Large")
    expected = digest_tree(storage_root / "Large")
    for round_ in range(3):
        token = await copy_token(api, 1, source["id"], f"Copy {round_}")
        _, resp, _ = await wait_done(api, token)
        assert resp.status == 302
        copy_id = int(resp.headers["Location"].rsplit("/", 1)[1])
        assert digest_tree(storage_root / f"Copy {round_}") == expected
        await assert_listed_like_disk(api, copy_id, storage_root / f"Copy {round_}")
        assert_no_leftovers(storage_root)
        token = await delete_token(api, copy_id)
        _, resp, body = await wait_done(api, token, kind="DeleteEntry")
        assert resp.status == 200
        assert body["status"] == "Completed", body
        assert not (storage_root / f"Copy {round_}").exists()
        assert (await api.request("GET", f"/Entries/{copy_id}")).status == 404
    assert digest_tree(storage_root / "Large") == expected


async def test_where_files_cannot_be_made_unnamed_a_copy_renames_part_files(
    aiohttp_client, storage_root, monkeypatch
):
    """A copy writes each file unnamed (O_TMPFILE) and names it when complete; where the
    filesystem cannot, under a hidden part name renamed when complete: the same copy, nothing left
    behind."""
    renamed = []

    def rename(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
        renamed.append(src)
        original(src_fd, src, dst_fd, dst)

    original = fsops.rename_noreplace
    monkeypatch.setattr(fsops, "_UNNAMED", False)
    monkeypatch.setattr(fsops, "rename_noreplace", rename)
    api = await open_api(aiohttp_client, storage_root, copy_processes=0)
    files = build_many(storage_root / "Src", folders=3, files_per_folder=40)
    expected = digest_tree(storage_root / "Src")
    source = await api.by_path("\\Src")
    _, resp, _ = await wait_done(api, await copy_token(api, 1, source["id"], "Copied"))
    assert resp.status == 302
    assert digest_tree(storage_root / "Copied") == expected
    assert len(renamed) == files and all(name.startswith(fsops.PART_PREFIX) for name in renamed)
    assert_no_leftovers(storage_root)


async def test_delete_fails_clearly_when_a_file_appears_in_a_folder_it_is_emptying(
    aiohttp_client, storage_root
):
    api = await open_api(aiohttp_client, storage_root, pace_ms=20)
    build_many(storage_root / "Doomed", folders=2, files_per_folder=10)
    doomed = await api.by_path("\\Doomed")
    token = await delete_token(api, doomed["id"])
    assert await wait_progress(api, token, kind="DeleteEntry") is not None
    (storage_root / "Doomed" / "dir0" / "late arrival.txt").write_bytes(b"put here by hand")
    _, resp, body = await wait_done(api, token, kind="DeleteEntry")
    assert resp.status == 200
    assert body["status"] == "Failed", body
    assert "not empty" in " ".join(e["errorMessage"] for e in body["errors"])
    assert (storage_root / "Doomed" / "dir0" / "late arrival.txt").read_bytes() == b"put here by hand"
    assert not any(p.name.startswith("file") for p in (storage_root / "Doomed").rglob("*"))


async def test_copied_entries_have_ids_while_the_copy_runs(aiohttp_client, storage_root):
    """New entries get ids as they appear: a listing during a paced copy shows what is there so
    far, and those ids are the ones the entries keep."""
    api = await open_api(aiohttp_client, storage_root, pace_ms=20)
    build_many(storage_root / "Many", folders=2, files_per_folder=20)
    source = await api.by_path("\\Many")
    token = await copy_token(api, 1, source["id"], "Copied")
    running = await wait_progress(api, token, at_least=30)
    assert running is not None, "the paced copy ended before it could be looked at"
    early = await listed_tree(api, running["entryId"])
    assert 0 < sum(e["entryType"] == "Document" for e in early.values()) < 40
    _, resp, _ = await wait_done(api, token)
    assert resp.status == 302
    final = await listed_tree(api, running["entryId"])
    assert {rel: e["id"] for rel, e in early.items()} == {rel: final[rel]["id"] for rel in early}
    assert len(final) == 42
