"""Open Connectors bulk jobs over the documents hub (issue 15), over real sockets.

Every test runs the server on 127.0.0.1 (in process through `aiohttp_client`, or as a
`python -m server` subprocess for the kill -9 test), a real folder under `tmp_path` as its
storage root, and a real webhook receiver (tests/webhook_receiver.py) for the callbacks.

What a job should find is computed here, from the tree the test wrote and the tags it set through
the hub, never from the server's own listing of matches. Jobs are slowed with the
`Sandbox-Pace-Ms` header (milliseconds per entry walked) where a test must see one running.

Sources: CONTRACT.md ("Elements dialect", "Asynchronous requests", "Bulk jobs"), issue 15's
"Done when" list, and the implementation's plan (/work/bulkplan.md) for the shapes the contract
leaves open (the CSV header, `percentComplete`, the titles).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import standardwebhooks
from conftest import HIDDEN, make_settings
from test_webhooks import El, Reply, assert_problem
from webhook_receiver import (
    ELEMENT_TOKEN,
    ELEMENTS,
    ELEMENTS_SETTINGS,
    HUB,
    ORG_SECRET,
    USER_SECRET,
    Received,
    elements_signature,
    hub_auth,
    platform_auth,
    wait_for,
)

from server.app import create_app

# the default instance's signature key when none is configured (the server's default setting)
DEFAULT_KEY = "sandbox-signature-key"
PACE = "Sandbox-Pace-Ms"
STATUS_KEYS = {
    "id",
    "status",
    "objectName",
    "recordsCount",
    "recordsFailedCount",
    "jobDirection",
    "createdDate",
    "statusMessage",
    "percentComplete",
}
JOB_STATUSES = ("CREATED", "RUNNING", "CANCELLATION_PENDING", "COMPLETED", "FAILED", "CANCELLED")
ENDED = ("COMPLETED", "FAILED", "CANCELLED")
# the order a job's status may move in (CANCELLATION_PENDING only after a cancel)
RANK = {"CREATED": 0, "RUNNING": 1, "CANCELLATION_PENDING": 2, "COMPLETED": 3, "FAILED": 3, "CANCELLED": 3}
ALL_FIELDS = ["id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags"]
NDJSON, JSON_ARRAY, CSV = "application/x-ndjson", "application/json", "text/csv"
# how long a test watches for a callback that must NOT come (longer than the retry schedule of
# the settings below: 0.05 + 0.1 + 0.2 s)
QUIET_S = 0.8
# short timings for in-process servers; the signature key is left at its default on purpose
FAST: dict[str, Any] = {
    "webhook_retries": 3,
    "webhook_backoff_s": 0.05,
    "webhook_timeout_s": 1.0,
    "copy_processes": 0,
}
DELIVERY_KEYS = {"notificationId", "eventId", "instanceId", "url", "status", "sessionId", "attempts"}


# --------------------------------------------------------------------------- helpers


async def open_bulk(aiohttp_client, storage_root: Path, **overrides: Any) -> El:
    settings = make_settings(storage_root, **{**ELEMENTS_SETTINGS, **FAST, **overrides})
    client = await aiohttp_client(create_app(settings))
    return El(client.session, str(client.make_url("/")).rstrip("/"))


def check_status(body: Any) -> dict:
    """A bulk job's status object as the contract lists it."""
    assert isinstance(body, dict), body
    missing = STATUS_KEYS - set(body)
    extra = set(body) - STATUS_KEYS - {"completionTime"}
    assert not missing and not extra, f"status object: missing {missing}, extra {extra}: {body}"
    assert isinstance(body["id"], int) and not isinstance(body["id"], bool), body
    assert body["status"] in JOB_STATUSES, body
    assert body["objectName"] in ("files", "folders"), body
    assert body["jobDirection"] == "DOWNLOAD", body
    for name in ("recordsCount", "recordsFailedCount", "percentComplete"):
        assert isinstance(body[name], int) and not isinstance(body[name], bool), body
        assert body[name] >= 0, body
    assert body["percentComplete"] <= 100, body
    assert isinstance(body["statusMessage"], str), body
    iso(body["createdDate"])
    if body["status"] in ENDED:
        assert "completionTime" in body, f"an ended job has a completionTime: {body}"
        assert iso(body["completionTime"]) >= iso(body["createdDate"]), body
    elif "completionTime" in body:
        raise AssertionError(f"a job that has not ended has no completionTime: {body}")
    return body


def iso(value: str) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def start_job(
    el: El,
    q: str,
    *,
    callback: str | None = None,
    pace: float | None = None,
    token: str = ELEMENT_TOKEN,
) -> int:
    """POST /bulk/query; check the immediate answer `{id, status: CREATED}`; the job's id."""
    headers: dict[str, str] = {}
    if callback is not None:
        headers["Elements-Async-Callback-URL"] = callback
    if pace is not None:
        headers[PACE] = f"{pace:g}"
    r = await el.hub("POST", "/bulk/query", params={"q": q}, headers=headers, token=token)
    assert r.status == 200, f"POST bulk/query q={q!r}: {r.status} {r.text[:500]}"
    body = r.json()
    assert set(body) == {"id", "status"}, body
    assert isinstance(body["id"], int) and not isinstance(body["id"], bool), body
    assert body["status"] == "CREATED", body
    return int(body["id"])


async def job_status(el: El, job_id: int, token: str = ELEMENT_TOKEN) -> dict:
    r = await el.hub("GET", f"/bulk/{job_id}/status", token=token)
    assert r.status == 200, f"GET bulk/{job_id}/status: {r.status} {r.text[:500]}"
    body = check_status(r.json())
    assert body["id"] == job_id, body
    return body


async def wait_job(
    el: El, job_id: int, statuses: tuple[str, ...] = ENDED, timeout: float = 20.0, token: str = ELEMENT_TOKEN
) -> tuple[dict, list[str]]:
    """Poll the status route until the job reads one of `statuses`: its last status object and
    every status read on the way (checked to move forward only)."""
    seen: list[str] = []
    last: dict = {}

    async def check() -> dict | None:
        nonlocal last
        last = await job_status(el, job_id, token)
        if not seen or seen[-1] != last["status"]:
            if seen:
                assert RANK[last["status"]] >= RANK[seen[-1]], f"status went back: {seen} -> {last}"
            seen.append(last["status"])
        return last if last["status"] in statuses else None

    try:
        await wait_for(check, f"bulk job {job_id} to read {statuses}", timeout, interval=0.02)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatuses seen: {seen}\nlast: {last}") from None
    return last, seen


async def download(
    el: El, job_id: int, object_name: str, accept: str | None, token: str = ELEMENT_TOKEN
) -> Reply:
    headers = {} if accept is None else {"Accept": accept}
    return await el.hub("GET", f"/bulk/{job_id}/{object_name}", headers=headers, token=token)


async def records_as(el: El, job_id: int, object_name: str, accept: str | None) -> list[dict]:
    """The job's records in the format `accept` names (None: no Accept header, JSON), parsed."""
    r = await download(el, job_id, object_name, accept)
    assert r.status == 200, f"download as {accept}: {r.status} {r.text[:500]}"
    expected_type = {None: JSON_ARRAY, JSON_ARRAY: JSON_ARRAY, NDJSON: NDJSON, CSV: CSV}[accept]
    assert r.content_type == expected_type, (accept, r.content_type)
    if expected_type == JSON_ARRAY:
        body = json.loads(r.text)
        assert isinstance(body, list), r.text[:300]
        return body
    if expected_type == NDJSON:
        lines = r.text.split("\n")
        assert lines[-1] == "", f"NDJSON ends with a newline: {r.text[-100:]!r}"
        return [json.loads(line) for line in lines[:-1]]
    return csv_records(r.text)


def csv_records(text: str) -> list[dict]:
    """CSV rows as records: `tags` a JSON array, `directory` true/false as a boolean, `size` an
    int; a header row first."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows, "CSV has a header row"
    header, *data = rows
    out = []
    for row in data:
        assert len(row) == len(header), (header, row)
        found: dict[str, Any] = dict(zip(header, row, strict=True))
        if "tags" in found:
            found["tags"] = json.loads(found["tags"])
        if "directory" in found:
            assert found["directory"] in ("true", "false"), row
            found["directory"] = found["directory"] == "true"
        if "size" in found:
            found["size"] = int(found["size"])
        out.append(found)
    return out


def csv_header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")))


def check_callback(rec: Received, key: str = DEFAULT_KEY) -> dict:
    """A bulk callback: JSON, signed with the vendor's HMAC and Standard Webhooks, ids matching."""
    assert rec.method == "POST", rec.method
    assert rec.headers["Content-Type"].split(";")[0].strip() == "application/json", rec.headers
    body = check_status(rec.json())
    assert rec.headers.get("Elements-Webhook-Signature") == elements_signature(key, rec.body), (
        f"vendor HMAC does not verify with key {key!r}: {rec.headers.get('Elements-Webhook-Signature')}"
    )
    notification_id = rec.headers["Elements-Webhook-Id"]
    assert notification_id.isdigit(), notification_id
    assert rec.headers["webhook-id"] == notification_id, dict(rec.headers)
    verified = standardwebhooks.Webhook(key.encode()).verify(rec.body, dict(rec.headers))
    assert verified == body
    return body


def notification_of(rec: Received) -> int:
    return int(rec.headers["Elements-Webhook-Id"])


def results_left(storage_root: Path) -> list[str]:
    """Records files (finished or part) in the store's results folder."""
    results = storage_root / HIDDEN / "results"
    if not results.is_dir():
        return []
    return sorted(n for n in os.listdir(results) if n.endswith((".ndjson", ".part")))


def make_grid(top: Path, folders: int, files: int) -> int:
    """`folders` folders of `files` empty files each under `top`; how many entries that is
    (`top` included)."""
    top.mkdir()
    for d in range(folders):
        folder = top / f"d{d:03d}"
        folder.mkdir()
        for f in range(files):
            (folder / f"f{f:03d}.txt").touch()
    return 1 + folders + folders * files


async def deliveries(el: El, where: str | None, auth: dict[str, str]) -> list[dict]:
    params = {} if where is None else {"where": where}
    r = await el.call("GET", ELEMENTS + "/notifications/subscriptions/deliveries", auth=auth, params=params)
    assert r.status == 200, f"deliveries where={where!r}: {r.status} {r.text[:500]}"
    found = r.json()
    assert isinstance(found, list), found
    for d in found:
        assert set(d) == DELIVERY_KEYS, d
    return found


# --------------------------------------------------------------------------- the tagged tree

# file path -> (size, tags); folders are created through the hub with their tags
FOLDERS: dict[str, list[str]] = {
    "/Docs": ["keep"],
    "/Docs/Sub": ["keep", "red"],
    "/Other": [],
    "/DocsArchive": ["keep"],  # shares a prefix with /Docs: `like '/docs/%'` must not take it
}
FILES: dict[str, tuple[int, list[str]]] = {
    "/Docs/a0.txt": (10, ["red"]),
    "/Docs/a1.txt": (31, ["red", "draft"]),
    "/Docs/A2.TXT": (52, ["green"]),
    "/Docs/a3.txt": (73, []),
    "/Docs/a4.txt": (94, ["blue"]),
    "/Docs/a5.txt": (115, ["rose"]),  # a tag of its own: not 'red'
    "/Docs/a6.txt": (136, ["red", "green"]),
    "/Docs/we,ird 'q' ü.txt": (7, ["x,y", "red"]),  # CSV quoting, and a tag with a comma
    "/Docs/Sub/b0.txt": (157, ["red"]),
    "/Docs/Sub/b1.txt": (178, ["green", "draft"]),
    "/Docs/Sub/b2.txt": (199, []),
    "/Other/c0.txt": (220, ["red"]),
    "/Other/c1.txt": (241, ["green"]),
    "/DocsArchive/d0.txt": (262, ["red"]),
    "/top.txt": (283, ["red"]),
}
# the end-to-end query, and the same condition in Python over this model
E2E_QUERY = (
    "select id, path, tags from files "
    "where path like '/docs/%' and (tags = 'red' or tags = 'green') and tags != 'draft'"
)


def e2e_matches(path: str, tags: list[str]) -> bool:
    return path.lower().startswith("/docs/") and ("red" in tags or "green" in tags) and "draft" not in tags


async def make_tagged_tree(el: El, storage_root: Path) -> dict[str, dict]:
    """The tree above: folders created through the hub with their tags, files written to disk and
    tagged through the hub. Every entry as the hub shows it, by path (the ids come from there)."""
    for path, tags in FOLDERS.items():
        r = await el.hub("POST", "/folders", body={"path": path, "tags": tags})
        assert r.status == 200, f"create folder {path}: {r.status} {r.text[:300]}"
    for path, (size, tags) in FILES.items():
        (storage_root / path.lstrip("/")).write_bytes(b"x" * size)
        if tags:
            r = await el.hub("PATCH", "/files/metadata", params={"path": path}, body={"tags": tags})
            assert r.status == 200, f"tag {path}: {r.status} {r.text[:300]}"
    # what the hub shows (ids, and a check that the tags took)
    entries: dict[str, dict] = {}
    pending = ["/"]
    while pending:
        folder = pending.pop()
        r = await el.hub("GET", "/folders/contents", params={"path": folder, "pageSize": "200"})
        assert r.status == 200, r.text
        for entry in r.json():
            entries[entry["path"]] = entry
            if entry["directory"]:
                pending.append(entry["path"])
    assert set(entries) == set(FOLDERS) | set(FILES), sorted(entries)
    for path, tags in FOLDERS.items():
        assert entries[path]["tags"] == tags, entries[path]
    for path, (size, tags) in FILES.items():
        assert (entries[path]["size"], entries[path]["tags"]) == (size, tags), entries[path]
    return entries


def projected(entries: dict[str, dict], paths: list[str], fields: list[str]) -> list[dict]:
    return [{f: entries[p][f] for f in fields} for p in paths]


def as_set(records: list[dict]) -> set[tuple]:
    return {tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in r.items()) for r in records}


# --------------------------------------------------------------------------- 1. end to end


async def test_bulk_flow_end_to_end(aiohttp_client, storage_root, receivers):
    rx = await receivers()
    el = await open_bulk(aiohttp_client, storage_root)
    entries = await make_tagged_tree(el, storage_root)
    expected_paths = sorted(p for p, (_, tags) in FILES.items() if e2e_matches(p, tags))
    # (the model picks what the query should: a0, A2.TXT, a6, Sub/b0, the odd name — and not a5
    # 'rose', the drafts, /Other, /DocsArchive or the folders)
    assert expected_paths == [
        "/Docs/A2.TXT",
        "/Docs/Sub/b0.txt",
        "/Docs/a0.txt",
        "/Docs/a6.txt",
        "/Docs/we,ird 'q' ü.txt",
    ]
    expected = projected(entries, expected_paths, ["id", "path", "tags"])

    # paced: about 20 entries walked at 60 ms each, long enough to be seen running
    job_id = await start_job(el, E2E_QUERY, callback=rx.url, pace=60)
    final, seen = await wait_job(el, job_id)
    assert "RUNNING" in seen, f"the job was never seen RUNNING: {seen}"
    assert seen[-1] == "COMPLETED", (seen, final)
    assert set(seen) <= {"CREATED", "RUNNING", "COMPLETED"}, seen
    assert final["objectName"] == "files"
    assert final["recordsCount"] == len(expected), final
    assert final["recordsFailedCount"] == 0, final
    assert final["percentComplete"] == 100, final

    # the records, in each format: exactly the expected ones, projected to the selected fields
    for accept in (JSON_ARRAY, NDJSON, CSV, None):
        got = await records_as(el, job_id, "files", accept)
        for rec in got:
            assert list(rec) == ["id", "path", "tags"], f"{accept}: fields not as selected: {rec}"
        assert len(got) == len(expected), f"{accept}: {got}"
        assert as_set(got) == as_set(expected), f"{accept}: got {got}\nexpected {expected}"
    r = await download(el, job_id, "files", CSV)
    assert csv_header(r.text) == ["id", "path", "tags"]
    # Accept by preference; one naming none of the three formats is a 406
    for accept, media in (
        ("text/csv;q=0.5, application/x-ndjson", NDJSON),
        ("application/json;q=0, text/csv", CSV),
        ("*/*", JSON_ARRAY),
    ):
        r = await download(el, job_id, "files", accept)
        assert (r.status, r.content_type) == (200, media), f"Accept: {accept}: {r.status} {r.content_type}"
    r = await download(el, job_id, "files", "image/png")
    assert r.status == 406, f"Accept: image/png: {r.status} {r.text[:300]}"

    # the callback: one, signed both ways with the default instance's key, the final status object
    [rec] = await rx.wait_delivered(1)
    body = check_callback(rec, DEFAULT_KEY)
    assert body == final == await job_status(el, job_id), (body, final)
    # the job is an event too; its response is the same status object
    ev = await el.platform("GET", f"/instances/events/{job_id}")
    assert ev.status == 200, ev.text
    assert ev.json()["response"] == body, ev.json()
    [d] = ev.json()["deliveries"]
    assert d["notificationId"] == notification_of(rec)
    # the session's jobs
    r = await el.hub("GET", "/bulk/jobs")
    assert r.status == 200, r.text
    assert r.json() == [final], r.json()
    # a completed job has no errors, and cannot be cancelled
    r = await el.hub("GET", f"/bulk/{job_id}/errors")
    assert (r.status, r.json()) == (200, []), r.text
    problem = assert_problem(await el.hub("PUT", f"/bulk/{job_id}/cancel"), 400)
    assert problem["title"] == "Cannot cancel ended job.", problem
    await asyncio.sleep(QUIET_S)
    assert len(rx.requests) == 1, [r.json() for r in rx.requests]


async def test_order_by_and_limit(aiohttp_client, storage_root):
    el = await open_bulk(aiohttp_client, storage_root)
    entries = await make_tagged_tree(el, storage_root)
    under_docs = [p for p in FILES if p.lower().startswith("/docs/")]

    async def run(q: str) -> tuple[dict, list[dict]]:
        job_id = await start_job(el, q)
        final, _ = await wait_job(el, job_id)
        assert final["status"] == "COMPLETED", final
        got = await records_as(el, job_id, "files", JSON_ARRAY)
        assert final["recordsCount"] == len(got), (final, got)
        # the other formats hold the same records in the same order
        assert await records_as(el, job_id, "files", NDJSON) == got
        assert [{k: str(v) if k == "size" else v for k, v in r.items()} for r in got] == [
            {k: str(v) if k == "size" else v for k, v in r.items()}
            for r in await records_as(el, job_id, "files", CSV)
        ]
        return final, got

    # order by size desc, limit 3: the three largest under /Docs, largest first
    _, got = await run("select name, size from files where path like '/docs/%' order by size desc limit 3")
    largest = sorted(under_docs, key=lambda p: FILES[p][0], reverse=True)[:3]
    assert got == projected(entries, largest, ["name", "size"]), got

    # order by name (ascending by default): case-insensitively
    _, got = await run("select name from files where path like '/docs/%' order by name")
    assert [r["name"] for r in got] == sorted((entries[p]["name"] for p in under_docs), key=str.lower), got

    # order by path asc over every file
    _, got = await run("select path from files order by path asc")
    assert [r["path"] for r in got] == sorted(FILES, key=str.lower), got

    # limit without an order: that many of the matches
    _, got = await run("select path from files where tags = 'red' limit 2")
    red = {p for p, (_, tags) in FILES.items() if "red" in tags}
    assert len(got) == 2, got
    assert {r["path"] for r in got} <= red, got

    # a condition on size (and the `in` list on name)
    _, got = await run(
        "select path from files where size > 100 and size < 200 or name in ('top.txt', 'c1.txt')"
    )
    wanted = {p for p, (size, _) in FILES.items() if 100 < size < 200} | {"/top.txt", "/Other/c1.txt"}
    assert sorted(r["path"] for r in got) == sorted(wanted), got

    # limit 0: nothing, in every format (CSV: the header alone)
    job_id = await start_job(el, "select id, name from files limit 0")
    final, _ = await wait_job(el, job_id)
    assert (final["status"], final["recordsCount"]) == ("COMPLETED", 0), final
    assert await records_as(el, job_id, "files", JSON_ARRAY) == []
    r = await download(el, job_id, "files", NDJSON)
    assert (r.status, r.text) == (200, ""), r.text
    r = await download(el, job_id, "files", CSV)
    assert r.status == 200, r.text
    assert list(csv.reader(io.StringIO(r.text, newline=""))) == [["id", "name"]], r.text


async def test_from_folders(aiohttp_client, storage_root):
    el = await open_bulk(aiohttp_client, storage_root)
    entries = await make_tagged_tree(el, storage_root)

    job_id = await start_job(el, "select * from folders where tags = 'keep' and tags != 'red'")
    final, _ = await wait_job(el, job_id)
    assert final["status"] == "COMPLETED", final
    assert final["objectName"] == "folders", final
    expected = sorted(p for p, tags in FOLDERS.items() if "keep" in tags and "red" not in tags)
    assert expected == ["/Docs", "/DocsArchive"]
    for accept in (JSON_ARRAY, NDJSON, CSV):
        got = await records_as(el, job_id, "folders", accept)
        for rec in got:
            assert list(rec) == ALL_FIELDS, rec  # select *: the whole hub entry
            assert rec["directory"] is True, rec
        assert sorted(r["path"] for r in got) == expected, got
        if accept != CSV:  # (CSV's cells are strings; compared by path above)
            assert sorted(got, key=lambda r: r["path"]) == [entries[p] for p in expected], got
    r = await download(el, job_id, "folders", CSV)
    assert csv_header(r.text) == ALL_FIELDS
    # the job's object is folders: its files route holds nothing
    r = await download(el, job_id, "files", JSON_ARRAY)
    assert r.status == 404, f"a folders job's /files: {r.status} {r.text[:300]}"

    # every folder, and nothing else
    job_id = await start_job(el, "select path, directory from folders")
    final, _ = await wait_job(el, job_id)
    got = await records_as(el, job_id, "folders", JSON_ARRAY)
    assert sorted(r["path"] for r in got) == sorted(FOLDERS), got
    assert final["recordsCount"] == len(FOLDERS), final


# --------------------------------------------------------------------------- 2. 20,000 entries


async def test_big_job_progress_cancel_and_no_download_while_running(aiohttp_client, storage_root, receivers):
    total = make_grid(storage_root / "Big", 100, 200)
    assert total == 20_101
    rx = await receivers()
    el = await open_bulk(aiohttp_client, storage_root)
    # 0.5 ms per entry walked: a folder of 200 is 0.1 s, the whole walk about 10 s
    job_id = await start_job(el, "select id, path from files", callback=rx.url, pace=0.5)

    samples: list[tuple[int, int]] = []
    downloaded_while_running = False
    deadline = time.monotonic() + 20
    while len({s for s in samples if s[1] > 0}) < 4:
        assert time.monotonic() < deadline, f"progress did not rise in 20 s: {samples}"
        status = await job_status(el, job_id)
        assert status["status"] in ("CREATED", "RUNNING"), f"the job ended too soon: {status}"
        if status["status"] == "RUNNING":
            assert status["percentComplete"] < 100, status
            samples.append((status["percentComplete"], status["recordsCount"]))
            if not downloaded_while_running and status["recordsCount"] > 0:
                # its records cannot be downloaded while it runs, in any format
                for accept in (JSON_ARRAY, NDJSON, CSV):
                    assert_problem(await download(el, job_id, "files", accept), 400)
                r = await el.hub("GET", f"/bulk/{job_id}/errors")
                assert (r.status, r.json()) == (200, []), r.text
                downloaded_while_running = True
        await asyncio.sleep(0.15)
    percents = [p for p, _ in samples]
    counts = [c for _, c in samples]
    assert percents == sorted(percents) and counts == sorted(counts), f"progress went back: {samples}"
    assert len(set(percents)) >= 3, f"percentComplete did not rise over several polls: {samples}"
    assert len(set(counts)) >= 3, f"recordsCount did not rise over several polls: {samples}"
    assert counts[-1] < 20_000, samples

    r = await el.hub("PUT", f"/bulk/{job_id}/cancel")
    assert r.status == 200, r.text
    assert check_status(r.json())["status"] in ("CANCELLATION_PENDING", "CANCELLED"), r.json()
    final, seen = await wait_job(el, job_id, timeout=10)
    assert final["status"] == "CANCELLED", (final, seen)
    r = await el.hub("GET", f"/bulk/{job_id}/errors")
    assert (r.status, r.json()) == (200, []), f"a cancelled job has no errors: {r.text}"
    assert_problem(await download(el, job_id, "files", JSON_ARRAY), 400)
    problem = assert_problem(await el.hub("PUT", f"/bulk/{job_id}/cancel"), 400)
    assert problem["title"] == "Cannot cancel ended job.", problem

    [rec] = await rx.wait_delivered(1, timeout=10)
    body = check_callback(rec)
    assert body["status"] == "CANCELLED", body
    assert body == final, (body, final)
    await wait_for(lambda: not results_left(storage_root), "the records file to be removed", timeout=5)
    await asyncio.sleep(QUIET_S)
    assert len(rx.requests) == 1
    assert results_left(storage_root) == []


async def test_big_job_downloads_whole_in_each_format(aiohttp_client, storage_root):
    """20,000 records (more than one read chunk of the file in every format), each exactly once."""
    make_grid(storage_root / "Big", 100, 200)
    el = await open_bulk(aiohttp_client, storage_root)
    job_id = await start_job(el, "select id, path, directory from files")
    final, _ = await wait_job(el, job_id, timeout=40)
    assert (final["status"], final["recordsCount"]) == ("COMPLETED", 20_000), final
    expected = {f"/Big/d{d:03d}/f{f:03d}.txt" for d in range(100) for f in range(200)}
    for accept in (NDJSON, JSON_ARRAY, CSV):
        got = await records_as(el, job_id, "files", accept)
        assert len(got) == 20_000, (accept, len(got))
        assert {r["path"] for r in got} == expected, accept
        assert len({r["id"] for r in got}) == 20_000, f"{accept}: ids repeat"
        assert all(r["directory"] is False for r in got), accept


# --------------------------------------------------------------------------- 3. one per session


async def test_second_job_in_a_session_is_429(aiohttp_client, storage_root, receivers):
    make_grid(storage_root / "G", 4, 10)
    rx = await receivers()
    el = await open_bulk(aiohttp_client, storage_root)
    first = await start_job(el, "select * from files", pace=100)
    await wait_job(el, first, ("RUNNING",))

    r = await el.hub("POST", "/bulk/query", params={"q": "select * from folders"})
    problem = assert_problem(r, 429)
    assert problem["eventId"] == first, problem
    # an asynchronous request of the same session is refused too (one operation per session)
    r = await el.hub(
        "DELETE",
        "/files",
        params={"path": "/G/d000/f000.txt"},
        headers={"Elements-Async-Request": "True", "Elements-Async-Callback-URL": rx.url},
    )
    assert assert_problem(r, 429)["eventId"] == first
    assert (storage_root / "G" / "d000" / "f000.txt").exists()
    r = await el.hub("GET", "/bulk/jobs")
    assert [j["id"] for j in r.json()] == [first], r.json()

    r = await el.hub("PUT", f"/bulk/{first}/cancel")
    assert r.status == 200, r.text
    final, _ = await wait_job(el, first)
    assert final["status"] == "CANCELLED", final
    # once it has ended the session may start another
    second = await start_job(el, "select * from folders")
    final, _ = await wait_job(el, second)
    assert (final["status"], final["recordsCount"]) == ("COMPLETED", 5), final


async def test_second_job_queues_under_queue_mode(aiohttp_client, storage_root):
    """Under queue mode a second job waits (CREATED) and then runs; a third, cancelled while it
    waits, ends CANCELLED without running."""
    make_grid(storage_root / "G", 3, 10)  # 34 entries: at 80 ms each, about 2.7 s
    el = await open_bulk(aiohttp_client, storage_root, session_concurrency="queue")
    first = await start_job(el, "select * from files", pace=80)
    await wait_job(el, first, ("RUNNING",))
    second = await start_job(el, "select path from folders")
    assert second != first
    # it waits its turn while the first runs
    for _ in range(3):
        assert (await job_status(el, first))["status"] == "RUNNING"
        assert (await job_status(el, second))["status"] == "CREATED"
        await asyncio.sleep(0.1)
    # a third, cancelled while it waits: it never runs
    third = await start_job(el, "select * from files")
    r = await el.hub("PUT", f"/bulk/{third}/cancel")
    assert r.status == 200, r.text
    assert check_status(r.json())["status"] in ("CANCELLATION_PENDING", "CANCELLED"), r.json()
    assert (await job_status(el, first))["status"] == "RUNNING"
    three, _ = await wait_job(el, third, timeout=5)
    assert three["status"] == "CANCELLED", three
    one, _ = await wait_job(el, first)
    two, seen = await wait_job(el, second)
    assert (one["status"], one["recordsCount"]) == ("COMPLETED", 30), one
    assert (two["status"], two["recordsCount"]) == ("COMPLETED", 4), (two, seen)
    assert iso(two["completionTime"]) >= iso(one["completionTime"])
    r = await el.hub("GET", "/bulk/jobs")
    assert [j["id"] for j in r.json()] == [third, second, first], r.json()  # newest first
    assert results_left(storage_root).__len__() == 2, results_left(storage_root)


# --------------------------------------------------------------------------- 4. refused queries


@pytest.mark.parametrize(
    ("q", "named"),
    [
        ("select count(*) from files", "count(*)"),
        ("select * from files group by name", "group by"),
        ("select * from files where size <= 5", "<="),
        ("select * from files join folders", "join"),
        ("select * from files where owner = 'me'", "owner"),
        ("select * from files limit -1", "limit -1"),
        ("select * where name = 'a'", "from"),
        ("select owner from files", "owner"),
        ("select * from files where size like '%5%'", "size like '%5%'"),
        ("select * from files order by name, size", "size"),
        ("select * from users", "users"),
        ("select * from files where name is null", "is null"),
        ("select distinct name from files", "distinct"),
        ("select * from files limit 5 offset 10", "offset"),
        ("select * from files where tags > 'x'", "tags > 'x'"),
    ],
)
async def test_unsupported_ceql_is_400_naming_it_and_starts_nothing(
    aiohttp_client, storage_root, receivers, q, named
):
    make_grid(storage_root / "G", 2, 3)
    rx = await receivers()
    el = await open_bulk(aiohttp_client, storage_root)
    r = await el.hub("POST", "/bulk/query", params={"q": q}, headers={"Elements-Async-Callback-URL": rx.url})
    problem = assert_problem(r, 400)
    assert f'"{named}"' in problem["detail"], f"detail does not name {named!r}: {problem['detail']}"
    await assert_nothing_started(el, storage_root)
    await asyncio.sleep(0.2)
    assert rx.requests == []


async def test_missing_or_empty_q_is_400(aiohttp_client, storage_root):
    el = await open_bulk(aiohttp_client, storage_root)
    problem = assert_problem(await el.hub("POST", "/bulk/query"), 400)
    assert "'q'" in problem["detail"], problem
    problem = assert_problem(await el.hub("POST", "/bulk/query", params={"q": "  "}), 400)
    assert "empty" in problem["detail"], problem
    await assert_nothing_started(el, storage_root)


async def assert_nothing_started(el: El, storage_root: Path) -> None:
    r = await el.hub("GET", "/bulk/jobs")
    assert (r.status, r.json()) == (200, []), r.text
    r = await el.platform("GET", "/instances/events")
    assert (r.status, r.json()) == (200, []), f"an event was created: {r.text[:500]}"
    r = await el.platform("GET", "/notifications/subscriptions/deliveries")
    assert (r.status, r.json()) == (200, []), r.text
    assert results_left(storage_root) == []


# --------------------------------------------------------------------------- 5. kill -9


def _server_flags(backoff: float) -> list[str]:
    return [
        "--elements-user-secret",
        USER_SECRET,
        "--elements-org-secret",
        ORG_SECRET,
        "--elements-token",
        ELEMENT_TOKEN,
        "--webhook-retries",
        "3",
        "--webhook-backoff-s",
        str(backoff),
        "--copy-processes",
        "0",
    ]


async def test_kill_9_mid_job_fails_it_and_sends_its_callback_once(storage_root, server_factory, receivers):
    make_grid(storage_root / "G", 5, 20)  # 106 entries: at 40 ms each, about 4 s
    rx = await receivers()
    flags = _server_flags(backoff=0.2)
    first = await asyncio.to_thread(server_factory.start, storage_root, *flags)
    async with aiohttp.ClientSession() as session:
        el = El(session, first.base_url)
        # a job that completed before the crash: it and its records must survive it
        done_id = await start_job(el, "select path from files where path like '/g/d002/%'")
        done, _ = await wait_job(el, done_id)
        assert (done["status"], done["recordsCount"]) == ("COMPLETED", 20), done
        done_records = await records_as(el, done_id, "files", NDJSON)

        job_id = await start_job(el, "select * from files", callback=rx.url, pace=40)
        await wait_job(el, job_id, ("RUNNING",), timeout=10)
        await wait_for(lambda: _records_seen(el, job_id), "the job to have matched some records", timeout=10)
        first.proc.kill()
        first.proc.wait(timeout=5)
        assert rx.requests == [], "a callback went out before the job ended"

        second = await asyncio.to_thread(server_factory.start, storage_root, *flags)
        el = El(session, second.base_url)
        final = await job_status(el, job_id)
        assert final["status"] == "FAILED", final
        assert "interrupted" in final["statusMessage"].lower(), final
        await rx.wait_delivered(1, timeout=10)
        # long enough for every retry the settings allow (0.2 + 0.4 + 0.8 s) had it been resent
        await asyncio.sleep(2.0)
        assert_problem(await download(el, job_id, "files", JSON_ARRAY), 400)
        r = await el.hub("GET", f"/bulk/{job_id}/errors")
        assert r.status == 200, r.text
        assert [e["message"] for e in r.json()] == [final["statusMessage"]], r.json()
        assert results_left(storage_root) == [done_file(storage_root)], "a crash's part file is left"
        # the completed job is as it was
        assert await job_status(el, done_id) == done
        assert await records_as(el, done_id, "files", NDJSON) == done_records
        r = await el.hub("GET", "/bulk/jobs")
        assert [j["id"] for j in r.json()] == [job_id, done_id], r.json()
        last = await job_status(el, job_id)

    per_notification = Counter(notification_of(r) for r in rx.requests)
    assert list(per_notification.values()) == [1], f"callbacks by notificationId: {per_notification}"
    assert len(rx.requests) == 1
    body = check_callback(rx.requests[0])
    assert body["status"] == "FAILED", body
    assert body == last, f"the callback is not the status route's answer:\ncallback: {body}\nstatus:   {last}"
    assert await asyncio.to_thread(second.stop, signal.SIGTERM) == 0, second.stderr()


def done_file(storage_root: Path) -> str:
    """The one finished records file (`<name>.ndjson`) in the results folder."""
    [name] = [n for n in results_left(storage_root) if n.endswith(".ndjson")]
    return name


async def _records_seen(el: El, job_id: int) -> bool:
    return (await job_status(el, job_id))["recordsCount"] > 0


# --------------------------------------------------------------------------- 6. expiry


async def test_finished_job_expires_with_its_file(aiohttp_client, storage_root):
    make_grid(storage_root / "G", 2, 3)
    el = await open_bulk(aiohttp_client, storage_root, token_ttl_s=2.0)
    job_id = await start_job(el, "select * from files")
    final, _ = await wait_job(el, job_id)
    assert final["status"] == "COMPLETED", final
    assert len(results_left(storage_root)) == 1, results_left(storage_root)
    assert len(await records_as(el, job_id, "files", NDJSON)) == 6

    async def expired() -> bool:
        r = await el.hub("GET", f"/bulk/{job_id}/status")
        assert r.status in (200, 404), r.text
        return r.status == 404

    await wait_for(expired, "the job to expire", timeout=10, interval=0.05)
    # not before its time: token_ttl_s (2 s) after it ended
    lived = time.time() - iso(final["completionTime"]).timestamp()
    assert lived >= 2.0 - 0.05, f"the job expired {lived:.2f} s after it ended"
    problem = assert_problem(await el.hub("GET", f"/bulk/{job_id}/status"), 404)
    assert problem["title"] == "Bulk job expired.", problem
    await wait_for(lambda: not results_left(storage_root), "the records file to be removed", timeout=5)
    assert_problem(await download(el, job_id, "files", NDJSON), 404)
    r = await el.hub("GET", "/bulk/jobs")
    assert (r.status, r.json()) == (200, []), r.text


# --------------------------------------------------------------------------- 7. isolation, no callback


async def test_another_instances_job_is_404_everywhere(aiohttp_client, storage_root, receivers):
    make_grid(storage_root / "G", 2, 10)
    rx = await receivers()
    el = await open_bulk(aiohttp_client, storage_root)
    other = (await el.create_instance("other", rx.url, "other-key")).json()["token"]
    job_id = await start_job(el, "select * from files", pace=100)
    await wait_job(el, job_id, ("RUNNING",))

    async def all_404() -> None:
        for method, path, headers in (
            ("GET", f"/bulk/{job_id}/status", {}),
            ("PUT", f"/bulk/{job_id}/cancel", {}),
            ("GET", f"/bulk/{job_id}/errors", {}),
            ("GET", f"/bulk/{job_id}/files", {"Accept": JSON_ARRAY}),
            ("GET", f"/bulk/{job_id}/files", {"Accept": CSV}),
        ):
            r = await el.hub(method, path, headers=headers, token=other)
            assert_problem(r, 404)
        r = await el.hub("GET", "/bulk/jobs", token=other)
        assert (r.status, r.json()) == (200, []), r.text
        r = await el.call("GET", f"{ELEMENTS}/instances/events/{job_id}", auth=hub_auth(other))
        assert_problem(r, 404)

    await all_404()  # while it runs (the other's cancel must not touch it)
    assert (await job_status(el, job_id))["status"] == "RUNNING"
    r = await el.hub("PUT", f"/bulk/{job_id}/cancel")  # (the owner stops it, to be quick)
    assert r.status == 200, r.text
    await wait_job(el, job_id)
    # and a completed one
    job_id = await start_job(el, "select * from files")
    final, _ = await wait_job(el, job_id)
    assert final["status"] == "COMPLETED", final
    await all_404()
    assert len(await records_as(el, job_id, "files", JSON_ARRAY)) == 20
    # a job id that does not exist; no credentials, or platform credentials on a hub route
    assert_problem(await el.hub("GET", "/bulk/999999/status"), 404)
    for auth in ({}, platform_auth(), hub_auth("no-such-token")):
        r = await el.call("GET", f"{HUB}/bulk/{job_id}/status", auth=auth)
        assert_problem(r, 401)
        r = await el.call("POST", f"{HUB}/bulk/query", auth=auth, params={"q": "select * from files"})
        assert_problem(r, 401)
    await asyncio.sleep(0.2)
    assert rx.requests == []


async def test_no_callback_url_anywhere_still_completes(aiohttp_client, storage_root):
    make_grid(storage_root / "G", 2, 3)
    el = await open_bulk(aiohttp_client, storage_root)  # the default instance has no callback URL
    r = await el.platform("GET", "/instances/1")
    assert not r.json()["configuration"].get("event.notification.callback.url"), r.json()
    job_id = await start_job(el, "select path from files where path like '/g/d001/%'")
    final, _ = await wait_job(el, job_id)
    assert (final["status"], final["recordsCount"]) == ("COMPLETED", 3), final
    got = await records_as(el, job_id, "files", JSON_ARRAY)
    assert sorted(r["path"] for r in got) == [f"/G/d001/f00{n}.txt" for n in range(3)], got
    await asyncio.sleep(0.3)
    assert await deliveries(el, None, platform_auth()) == []
    r = await el.platform("GET", f"/instances/events/{job_id}")
    assert r.status == 200, r.text
    assert r.json()["deliveries"] == [], r.json()
    assert r.json()["response"] == final, r.json()


async def test_callback_url_header_else_instance(aiohttp_client, storage_root, receivers):
    make_grid(storage_root / "G", 1, 2)
    instance_rx = await receivers()
    header_rx = await receivers()
    el = await open_bulk(aiohttp_client, storage_root)
    token = (await el.create_instance("with-url", instance_rx.url, "inst-key")).json()["token"]
    # the instance's URL and key
    job_id = await start_job(el, "select * from files", token=token)
    [rec] = await instance_rx.wait_delivered(1)
    assert check_callback(rec, "inst-key") == await job_status(el, job_id, token)
    # the header wins over it (signed with the instance's key still)
    job_id = await start_job(el, "select * from folders", token=token, callback=header_rx.url)
    [rec] = await header_rx.wait_delivered(1)
    assert check_callback(rec, "inst-key")["id"] == job_id
    await asyncio.sleep(QUIET_S)
    assert (len(instance_rx.requests), len(header_rx.requests)) == (1, 1)


@pytest.mark.parametrize(
    "headers",
    [
        {"Elements-Async-Callback-URL": "ftp://127.0.0.1/hook"},
        {"Elements-Async-Callback-URL": "not a url"},
        {"Elements-Async-Callback-URL": "http://127.0.0.1:0/hook"},
        {PACE: "fast"},
        {PACE: "-5"},
    ],
    ids=["ftp", "garbage", "port-0", "pace-word", "pace-negative"],
)
async def test_bad_headers_are_400_and_start_nothing(aiohttp_client, storage_root, headers):
    make_grid(storage_root / "G", 1, 2)
    el = await open_bulk(aiohttp_client, storage_root)
    r = await el.hub("POST", "/bulk/query", params={"q": "select * from files"}, headers=headers)
    problem = assert_problem(r, 400)
    [name] = headers
    assert name.lower() in problem["detail"].lower(), problem
    await assert_nothing_started(el, storage_root)


# --------------------------------------------------------------------------- 8. errors


async def test_errors_of_a_failed_job(aiohttp_client, storage_root, receivers):
    make_grid(storage_root / "G", 3, 10)
    rx = await receivers()
    el = await open_bulk(aiohttp_client, storage_root)
    message = "Injected: the index is on fire."
    # a sandbox fault armed with the hub's own credentials: the next operation of this session fails
    r = await el.call(
        "POST",
        "/sandbox/faults",
        auth=hub_auth(),
        body={"kind": "operation-failure", "afterEntries": 5, "status": 503, "message": message},
    )
    assert r.status == 201, r.text
    assert r.json()["user"] == "elements", r.json()

    job_id = await start_job(el, "select * from files", callback=rx.url)
    final, _ = await wait_job(el, job_id)
    assert final["status"] == "FAILED", final
    assert message in final["statusMessage"], final
    r = await el.hub("GET", f"/bulk/{job_id}/errors")
    assert r.status == 200, r.text
    assert r.json() == [{"message": message}], r.json()
    assert_problem(await download(el, job_id, "files", NDJSON), 400)
    [rec] = await rx.wait_delivered(1)
    assert check_callback(rec) == final
    assert results_left(storage_root) == []

    # used up: the next job completes, and has no errors
    job_id = await start_job(el, "select * from files")
    final, _ = await wait_job(el, job_id)
    assert (final["status"], final["recordsCount"]) == ("COMPLETED", 30), final
    r = await el.hub("GET", f"/bulk/{job_id}/errors")
    assert (r.status, r.json()) == (200, []), r.text


async def test_download_headers_ranges_head_and_accept_preferences(aiohttp_client, storage_root):
    """Every download carries its request id; a HEAD sends no records; an NDJSON range past the
    end is a problem like any other download's; Accept's q=0 refuses a format even under */*."""
    make_grid(storage_root / "grid", folders=2, files=3)
    el = await open_bulk(aiohttp_client, storage_root)
    job_id = await start_job(el, "select name from files")
    await wait_job(el, job_id)
    for accept in (JSON_ARRAY, NDJSON, CSV):
        r = await download(el, job_id, "files", accept)
        assert r.status == 200 and r.headers.get("X-RequestId"), (accept, r.status, dict(r.headers))
        head = await el.call(
            "HEAD", f"{HUB}/bulk/{job_id}/files", auth=hub_auth(ELEMENT_TOKEN), headers={"Accept": accept}
        )
        assert head.status == 200 and head.text == "", (accept, head)
        assert head.content_type == accept, (accept, head.content_type)
    r = await download(el, job_id, "files", NDJSON)
    size = len(r.text.encode())
    ranged = await el.hub("GET", f"/bulk/{job_id}/files", headers={"Accept": NDJSON, "Range": "bytes=0-9"})
    assert ranged.status == 206 and ranged.text == r.text[:10], ranged
    past = await el.hub("GET", f"/bulk/{job_id}/files", headers={"Accept": NDJSON, "Range": f"bytes={size}-"})
    assert_problem(past, 416)
    for accept, expected in (
        (f"{JSON_ARRAY};q=0, */*", NDJSON),
        (f"{JSON_ARRAY};q=0, {NDJSON};q=0, */*", CSV),
        ("text/*;q=0.5, application/*;q=0.4", CSV),
        (f"{CSV};q=1e400, {NDJSON};q=0.2", NDJSON),  # (not a weight: counts as 0)
    ):
        r = await download(el, job_id, "files", accept)
        assert (r.status, r.content_type) == (200, expected), (accept, r.status, r.content_type)
    r = await download(el, job_id, "files", f"{JSON_ARRAY};q=0, {NDJSON};q=0, {CSV};q=0, */*")
    assert_problem(r, 406)
