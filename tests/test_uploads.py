"""v2 uploads in parts (issue 14): CreateMultipartUploadUrls, raw PUTs of parts answered with their
MD5 as ETag, ImportUploadedParts / UpdateUploadedParts as tasks, expiry, cancel and kill -9.

Large data is generated deterministically and streamed (never held whole in memory)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import (
    HIDDEN,
    REPO_ID,
    V2BASE,
    Api,
    assert_problem,
    make_settings,
    md_snapshot,
    metadata_tree,
    start_v2_task,
    v2_task,
    wait_v2_task,
    write_catalog,
)
from yarl import URL

from server.app import create_app

MiB = 1024 * 1024
# the generated file: 1 MiB blocks, block k being BLOCK rotated by k * 7919 bytes
BLOCK = random.Random(14).randbytes(MiB)


def generated(offset: int, size: int) -> Iterator[bytes]:
    """Bytes `offset` to `offset + size` of the generated file, a block (or less) at a time."""
    end = offset + size
    while offset < end:
        k, within = divmod(offset, MiB)
        turn = k * 7919 % MiB
        block = BLOCK[turn:] + BLOCK[:turn]
        piece = block[within : min(MiB, within + end - offset)]
        offset += len(piece)
        yield piece


def sizes_of(total: int, parts: int) -> list[int]:
    each = total // parts
    return [each] * (parts - 1) + [total - each * (parts - 1)]


def md5_of(offset: int, size: int) -> str:
    md5 = hashlib.md5()
    for piece in generated(offset, size):
        md5.update(piece)
    return md5.hexdigest()


async def create_urls(v2: Api, count: int, upload_id: str | None = None, first: int = 1, **extra) -> dict:
    body = {"startingPartNumber": first, "numberOfParts": count, "fileName": "big.bin"}
    body |= {"mimeType": "application/octet-stream", **extra}
    if upload_id:
        body["uploadId"] = upload_id
    resp = await v2.post("/Entries/CreateMultipartUploadUrls", json=body)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def put_part(session: aiohttp.ClientSession, url: str, offset: int, size: int) -> str:
    """PUT a part of the generated file (streamed, no bearer); its ETag, checked against its MD5."""
    md5 = hashlib.md5()

    async def body() -> AsyncIterator[bytes]:
        for piece in generated(offset, size):
            md5.update(piece)
            yield piece

    async with session.put(url, data=body()) as resp:
        assert resp.status == 200, await resp.text()
        etag = resp.headers["ETag"]
    assert etag == f'"{md5.hexdigest()}"'
    return etag


async def upload(
    v2: Api, session: aiohttp.ClientSession, sizes: list[int], order=None
) -> tuple[str, list[str]]:
    """An upload of the generated file in parts of `sizes`, PUT in `order`: its id and ETags."""
    made = await create_urls(v2, len(sizes))
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    etags = [""] * len(sizes)
    for i in order or range(len(sizes)):
        etags[i] = await put_part(session, made["urls"][i], offsets[i], sizes[i])
    return made["uploadId"], etags


def import_body(upload_id: str, etags: list[str], name: str = "big.bin", **extra) -> dict:
    return {"uploadId": upload_id, "partETags": etags, "name": name, "autoRename": False, **extra}


def leftovers(root: Path) -> list[str]:
    """What is in the store's temporary and uploads folders."""
    found = []
    for folder in ("tmp", "uploads"):
        top = root / HIDDEN / folder
        found += [str(p.relative_to(top.parent)) for p in top.rglob("*")] if top.exists() else []
    return found


# ---- over a real server process ------------------------------------------------------------------


async def signed_in(session: aiohttp.ClientSession, base_url: str, token: str | None = None) -> Api:
    """A v2 Api over a server process: signed in, or with a token it gave before."""
    if token is not None:
        return Api(_Prefixed(session, base_url), token, base=V2BASE)
    async with session.post(
        f"{base_url}/v1/Repositories/{REPO_ID}/Token",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
    ) as resp:
        assert resp.status == 200
        token = (await resp.json())["access_token"]
    return Api(_Prefixed(session, base_url), token, base=V2BASE)


class _Prefixed:
    """What Api needs of a client, over a ClientSession and a base URL."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.base_url = session, base_url

    async def request(self, method: str, path: str, **kw):
        resp = await self.session.request(method, self.base_url + path, **kw)
        await resp.read()
        return resp


async def test_a_1_gib_file_in_10_parts_out_of_order_is_imported_byte_for_byte(server_factory, tmp_path):
    root = tmp_path / "root"
    server = server_factory.start(root)
    total = 1024 * MiB
    sizes = sizes_of(total, 10)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        v2 = await signed_in(session, server.base_url)
        upload_id, etags = await upload(v2, session, sizes, order=[7, 2, 9, 0, 5, 1, 8, 3, 6, 4])
        task_id = await start_v2_task(
            await v2.post("/Entries/1/Folder/ImportUploadedParts", json=import_body(upload_id, etags))
        )
        task = await wait_v2_task(v2, task_id, deadline_s=120)
        assert task["status"] == "Completed", task
        entry_id = task["result"]["entryId"]
        assert task["result"]["uri"].endswith(f"/Entries/{entry_id}")
        entry = await v2.entry(entry_id)
        assert (entry["name"], entry["electronicDocumentSize"]) == ("big.bin", total)
        expected = hashlib.sha256()
        for piece in generated(0, total):
            expected.update(piece)
        got = hashlib.sha256()
        async with session.get(
            f"{server.base_url}{V2BASE}/Entries/{entry_id}/Document/Edoc", headers=v2.headers
        ) as resp:
            assert resp.status == 200
            async for chunk in resp.content.iter_chunked(4 * MiB):
                got.update(chunk)
        assert got.hexdigest() == expected.hexdigest()
    # the parts went once assembled; nothing is left in the store's folders
    assert leftovers(root) == []


async def test_kill_9_during_the_assembly_leaves_no_document_or_the_whole_one(server_factory, tmp_path):
    root = tmp_path / "root"
    # 48 MiB: 6 chunks of 8 MiB, 0.3 s each
    sizes = [24 * MiB, 24 * MiB]
    for attempt in range(2):  # killed early, then late in the assembly
        server = server_factory.start(root, "--pace-ms", "300")
        async with aiohttp.ClientSession() as session:
            v2 = await signed_in(session, server.base_url)
            upload_id, etags = await upload(v2, session, sizes)
            body = import_body(upload_id, etags, name=f"killed{attempt}.bin")
            task_id = await start_v2_task(await v2.post("/Entries/1/Folder/ImportUploadedParts", json=body))
            while (await v2_task(v2, task_id))["percentComplete"] < (20 if attempt == 0 else 80):
                await asyncio.sleep(0.05)
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=10)
        assert list((root / HIDDEN / "tmp").iterdir()), "killed before or after the assembly"
        server = server_factory.start(root)
        async with aiohttp.ClientSession() as session:
            v2 = await signed_in(session, server.base_url, v2.token)
            task = await v2_task(v2, task_id)
            names = {e["name"]: e for e in await v2.collection("/Entries/1/Folder/Children")}
            if f"killed{attempt}.bin" in names:  # (whole, if there at all)
                assert task["status"] in ("Completed", "Failed")
                assert (root / f"killed{attempt}.bin").stat().st_size == sum(sizes)
                assert (
                    md5_of(0, sum(sizes))
                    == hashlib.md5((root / f"killed{attempt}.bin").read_bytes()).hexdigest()
                )
            else:
                assert task["status"] == "Failed", task
        assert leftovers(root) == []
        server.stop()


# ---- in process ------------------------------------------------------------------------------------


async def _v2(aiohttp_client, storage_root: Path, ttl_s: float) -> Api:
    write_catalog(storage_root)
    metadata_tree(storage_root)
    client = await aiohttp_client(create_app(make_settings(storage_root, upload_ttl_s=ttl_s)))
    resp = await client.post(
        f"/v1/Repositories/{REPO_ID}/Token",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
    )
    return Api(client, (await resp.json())["access_token"], base=V2BASE)


@pytest.fixture
async def v2(aiohttp_client, storage_root) -> Api:
    """A v2 Api over a server with a metadata catalog."""
    return await _v2(aiohttp_client, storage_root, 900)


@pytest.fixture
async def v2_short(aiohttp_client, storage_root) -> Api:
    """The same, but its uploads expire after 1 s."""
    return await _v2(aiohttp_client, storage_root, 1.0)


async def _small(v2: Api, sizes=(5 * MiB, 1000)) -> tuple[str, list[str]]:
    return await upload(v2, v2.client.session, list(sizes))


async def _import(v2: Api, body: dict, folder: int = 1, **kw) -> dict:
    task_id = await start_v2_task(
        await v2.post(f"/Entries/{folder}/Folder/ImportUploadedParts", json=body, **kw)
    )
    return await wait_v2_task(v2, task_id)


async def test_a_wrong_etag_a_missing_part_or_an_expired_upload_fails_and_creates_nothing(
    v2_short, storage_root
):
    v2 = v2_short
    before = sorted(p.name for p in storage_root.iterdir())
    upload_id, etags = await _small(v2)
    wrong = [etags[0], '"' + "0" * 32 + '"']
    for bad in (wrong, [etags[0], ""], [*etags, '"x"']):
        task = await _import(v2, import_body(upload_id, bad))
        assert task["status"] == "Failed", task
        assert task["errors"] and not (task["result"] or {}).get("entryId"), task
    # a missing part: URLs for three, two sent
    made = await create_urls(v2, 3)
    sent = [await put_part(v2.client.session, made["urls"][i], i * 5 * MiB, 5 * MiB) for i in (0, 2)]
    task = await _import(v2, import_body(made["uploadId"], [sent[0], '"' + "1" * 32 + '"', sent[1]]))
    assert task["status"] == "Failed" and "never uploaded" in task["errors"][0]["detail"], task
    # the first upload was right all along, but has expired by now
    await asyncio.sleep(1.1)
    task = await _import(v2, import_body(upload_id, etags))
    assert task["status"] == "Failed" and "expired" in task["errors"][0]["detail"], task
    assert sorted(p.name for p in storage_root.iterdir()) == before
    assert not list((storage_root / HIDDEN / "tmp").iterdir())


async def test_expired_uploads_go_with_their_parts_and_their_urls_lead_nowhere(v2_short, storage_root):
    v2 = v2_short
    made = await create_urls(v2, 2)
    await put_part(v2.client.session, made["urls"][0], 0, 1000)
    assert list((storage_root / HIDDEN / "uploads").iterdir())
    deadline = time.monotonic() + 5
    while list((storage_root / HIDDEN / "uploads").iterdir()):
        assert time.monotonic() < deadline, "the expired upload's parts stayed"
        await asyncio.sleep(0.1)
    resp = await v2.client.session.put(made["urls"][1], data=b"late")
    await assert_problem(resp, 401)


async def test_part_urls_need_their_credential_and_follow_the_part_rules(v2):
    made = await create_urls(v2, 1)
    url = made["urls"][0]
    assert url.startswith("http") and "key=" in url
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    for bad in (url.split("?")[0], tampered, url.replace("/1?", "/2?")):
        await assert_problem(await v2.client.session.put(bad, data=b"x"), 401)
    # a second batch of the same upload, and the bounds of numberOfParts and part numbers
    more = await create_urls(v2, 2, upload_id=made["uploadId"], first=2)
    assert more["uploadId"] == made["uploadId"] and len(more["urls"]) == 2
    for body in (
        {"numberOfParts": 0},
        {"numberOfParts": 101},
        {"numberOfParts": 2, "startingPartNumber": 1000},
        {"numberOfParts": 1, "startingPartNumber": 0},
        {"numberOfParts": 1, "fileName": ""},
        {"numberOfParts": 1, "uploadId": "f" * 32},
    ):
        full = {"fileName": "a.bin", "mimeType": "text/plain"} | body
        resp = await v2.post("/Entries/CreateMultipartUploadUrls", json=full)
        await assert_problem(resp, (400, 404))
    # a part under 5 MiB that is not the last fails the import
    upload_id, etags = await _small(v2, (1000, 1000))
    task = await _import(v2, import_body(upload_id, etags))
    assert task["status"] == "Failed" and "5 MiB" in task["errors"][0]["detail"], task


async def test_import_applies_metadata_and_a_bad_value_fails_before_the_document_appears(v2):
    docs = await v2.by_path("\\Docs")
    upload_id, etags = await _small(v2, (3000,))
    metadata = {
        "templateName": "Order",
        "fields": [{"name": "Title", "values": ["Parts"]}, {"name": "Price", "values": ["12.5"]}],
        "tags": ["Beta"],
        "links": [{"linkDefinitionId": 1, "otherEntryId": docs["id"], "isSource": True}],
    }
    bad = metadata | {"fields": [{"name": "Title", "values": ["Parts"]}, {"name": "Price", "values": ["x"]}]}
    task = await _import(v2, import_body(upload_id, etags, name="m.bin", metadata=bad))
    assert task["status"] == "Failed" and "Price" in task["errors"][0]["detail"], task
    assert "m.bin" not in {e["name"] for e in await v2.collection("/Entries/1/Folder/Children")}
    task = await _import(v2, import_body(upload_id, etags, name="m.bin", metadata=metadata))
    assert task["status"] == "Completed", task
    got = await md_snapshot(v2, task["result"]["entryId"])
    assert got["template"] == "Order" and got["fields"]["Title"] == ["Parts"] and got["tags"] == {"Beta"}
    assert {link[1:3] for link in got["links"]} == {(task["result"]["entryId"], docs["id"])}


async def test_import_into_a_folder_path_and_update_a_document_from_parts(v2, storage_root):
    upload_id, etags = await _small(v2, (2000,))
    body = import_body(upload_id, etags, name="n.bin", folderPath="New/Deeper")
    resp = await v2.post("/Entries/1/Folder/ImportUploadedParts", json=body)
    await assert_problem(resp, 404)  # (no such path, and no autoCreateFolderPath)
    task = await _import(v2, body, params={"autoCreateFolderPath": "true"})
    assert task["status"] == "Completed", task
    entry_id = task["result"]["entryId"]
    # the same task through v1 and the sandbox's own listing (the dashboard's)
    for path in (f"/v1/Repositories/{REPO_ID}/Tasks/{task['id']}", f"/sandbox/operations/{task['id']}"):
        resp = await v2.client.get(path, headers=v2.headers)
        assert resp.status in (200, 201, 302), await resp.text()
    assert (storage_root / "New" / "Deeper" / "n.bin").read_bytes() == b"".join(generated(0, 2000))
    upload_id, etags = await _small(v2, (5 * MiB, 10))
    task_id = await start_v2_task(
        await v2.post(
            f"/Entries/{entry_id}/Document/UpdateUploadedParts",
            json={"uploadId": upload_id, "partETags": etags},
        )
    )
    task = await wait_v2_task(v2, task_id)
    assert task["status"] == "Completed" and task["taskType"] == "ImportUploadedParts", task
    assert task["result"]["entryId"] == entry_id
    data = (storage_root / "New" / "Deeper" / "n.bin").read_bytes()
    assert data == b"".join(generated(0, 5 * MiB + 10))
    resp = await v2.post(
        "/Entries/1/Document/UpdateUploadedParts", json={"uploadId": upload_id, "partETags": etags}
    )
    await assert_problem(resp, 400)  # (a folder has no bytes to update)


async def test_a_cancelled_import_creates_nothing_and_the_upload_can_be_imported_again(v2, storage_root):
    upload_id, etags = await _small(v2, (16 * MiB, 16 * MiB))
    body = import_body(upload_id, etags, name="c.bin")
    resp = await v2.post(
        "/Entries/1/Folder/ImportUploadedParts", json=body, headers={"Sandbox-Pace-Ms": "400"}
    )
    task_id = await start_v2_task(resp)
    while (await v2_task(v2, task_id))["percentComplete"] == 0:
        await asyncio.sleep(0.05)
    resp = await v2.request("DELETE", "/Tasks", params={"taskIds": task_id})
    assert resp.status == 200
    task = await wait_v2_task(v2, task_id)
    assert task["status"] == "Cancelled", task
    assert not (storage_root / "c.bin").exists()
    assert not list((storage_root / HIDDEN / "tmp").iterdir())
    task = await _import(v2, body)
    assert task["status"] == "Completed", task
    assert os.path.getsize(storage_root / "c.bin") == 32 * MiB
    assert not list((storage_root / HIDDEN / "uploads").iterdir())


async def test_a_part_over_5_gib_is_413_and_one_cut_off_leaves_no_file(v2, storage_root):
    made = await create_urls(v2, 1)
    url = URL(made["urls"][0])
    target = f"{url.raw_path}?{url.raw_query_string}"

    async def send(length: int, body: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        head = f"PUT {target} HTTP/1.1\r\nHost: {url.host}\r\nContent-Length: {length}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        if length > len(body):
            await asyncio.sleep(0.2)
        writer.close()  # (cut off before the declared length, if it is longer)
        answer = await reader.read(200) if length == len(body) or length > 5 * 1024**3 else b""
        await writer.wait_closed()
        return answer

    assert b" 413 " in (await send(6 * 1024**3, b""))
    await send(10 * MiB, b"x" * MiB)
    folder = storage_root / HIDDEN / "uploads" / made["uploadId"]
    deadline = time.monotonic() + 5
    while folder.exists() and list(folder.iterdir()):
        assert time.monotonic() < deadline, f"a cut-off part left {list(folder.iterdir())}"
        await asyncio.sleep(0.05)
    # the URL still takes the part whole
    assert (await put_part(v2.client.session, made["urls"][0], 0, 1000)).startswith('"')
