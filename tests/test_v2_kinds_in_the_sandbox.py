"""Issue 14, item 4: v2's other long operations (search, export, an import of uploaded parts) are
operations like copies and deletes to the sandbox's controls: `/sandbox/operations` lists them
and cancels them, and the event stream carries their progress to their terminal state."""

from __future__ import annotations

from typing import Any

from conftest import start_v2_task, v2_of, v2_task, wait_v2_task
from sse_client import open_stream
from yarl import URL

TERMINAL = ("Completed", "Failed", "Cancelled")


def _make_tree(root) -> None:
    folder = root / "Docs"
    folder.mkdir()
    for n in range(40):
        (folder / f"note-{n:02d}.txt").write_text(f"note {n}: some searchable words\n")
    (root / "big.bin").write_bytes(b"x" * (40 * 1024 * 1024))  # five 8 MiB chunks to export


async def _listed(api, token: str) -> dict[str, Any]:
    resp = await api.client.get("/sandbox/operations", headers=api.headers)
    assert resp.status == 200, await resp.text()
    [op] = [op for op in (await resp.json())["value"] if op["operationToken"] == token]
    return op


async def _followed(api, token: str) -> list[dict[str, Any]]:
    """The event stream's messages for one operation, up to its terminal one."""
    async with open_stream(api.client, api.headers, {"operationToken": token}) as stream:
        msgs = await stream.until(
            lambda m: m.data.get("operationToken") == token and m.data.get("status") in TERMINAL,
            f"the terminal message of {token}",
            timeout=30,
        )
    return [m.data for m in msgs if m.data.get("operationToken") == token]


async def _start_search(v2, pace_ms: int) -> str:
    resp = await v2.post(
        "/Searches/SearchAsync",
        json={"searchCommand": '{LF:Name="note-*"}'},
        headers={"Sandbox-Pace-Ms": str(pace_ms)},
    )
    return await start_v2_task(resp)


async def _start_export(v2, pace_ms: int) -> str:
    found = await (await v2.get("/Entries/ByPath", params={"fullPath": "\\big.bin"})).json()
    resp = await v2.post(
        f"/Entries/{found['entry']['id']}/ExportAsync",
        json={"part": "Edoc"},
        headers={"Sandbox-Pace-Ms": str(pace_ms)},
    )
    return await start_v2_task(resp)


async def _start_import(v2) -> str:
    made = await v2.post(
        "/Entries/CreateMultipartUploadUrls",
        json={"numberOfParts": 1, "fileName": "small.txt", "mimeType": "text/plain"},
    )
    assert made.status == 200, await made.text()
    upload = await made.json()
    put = await v2.client.put(URL(upload["urls"][0]).path_qs, data=b"a small upload\n")
    assert put.status == 200, await put.text()
    resp = await v2.post(
        "/Entries/1/Folder/ImportUploadedParts",
        json={"uploadId": upload["uploadId"], "partETags": [put.headers["ETag"]], "name": "small.txt"},
    )
    return await start_v2_task(resp)


async def test_search_export_and_import_are_listed_and_followed_like_copies(api, storage_root):
    _make_tree(storage_root)
    v2 = v2_of(api)
    for start, kind in (
        (lambda: _start_search(v2, 20), "SearchEntry"),
        (lambda: _start_export(v2, 50), "ExportEntry"),
        (lambda: _start_import(v2), "ImportUploadedParts"),
    ):
        token = await start()
        listed = await _listed(api, token)
        assert listed["operationType"] == kind, listed
        mine = await _followed(api, token)
        assert mine[-1]["status"] == "Completed", mine[-1]
        assert mine[-1]["percentComplete"] == 100, mine[-1]
        percents = [m["percentComplete"] for m in mine]
        assert percents == sorted(percents), percents
        assert (await _listed(api, token))["status"] == "Completed"
        assert (await wait_v2_task(v2, token))["status"] == "Completed"


async def test_the_sandbox_cancels_a_search_and_an_export(api, storage_root):
    _make_tree(storage_root)
    v2 = v2_of(api)
    # (one task runs at a time per access token: the export waits behind the search until the
    # search is cancelled, then runs until it is)
    for token in (await _start_search(v2, 200), await _start_export(v2, 1000)):
        assert (await v2_task(v2, token))["status"] in ("NotStarted", "InProgress")
        cancelled = await api.client.post(f"/sandbox/operations/{token}/cancel", headers=api.headers)
        assert cancelled.status == 200, await cancelled.text()
        assert (await cancelled.json())["status"] == "Cancelled"
        assert (await wait_v2_task(v2, token))["status"] == "Cancelled"
