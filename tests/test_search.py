"""v2 searches over real sockets and real files: the language (names, field values, tags, text,
LookIn; a 400 naming what is not supported), result paging, context hits, progress and cancel over
a 20,000-entry tree, results that expire and `refresh`, SimpleSearches, the official client's calls
against the sample repository, and a kill -9 mid-search."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import (
    REPO_ID,
    SAMPLE_ROOT,
    Api,
    assert_problem,
    assert_v2_shape,
    make_settings,
    sign_in,
    start_v2_task,
    v2_of,
    v2_task,
    v2_tasks,
    wait_v2_task,
    write_catalog,
)

from server.app import create_app

QUICK_TEXT = "The quick brown fox jumps over the lazy dog; a second fox waits."


def _tree(root: Path) -> None:
    (root / "Docs" / "Sub").mkdir(parents=True)
    (root / "Docs" / "fox.txt").write_text(QUICK_TEXT)
    (root / "Docs" / "notes.md").write_text("Nothing to see here.")
    (root / "Docs" / "binary.bin").write_bytes(b"fox " * 10)  # not text-like: never read
    (root / "Docs" / "Sub" / "report-2026.txt").write_text("annual figures")
    (root / "Docs" / "Sub" / "Report-draft.csv").write_text("a,b\n1,2\n")
    (root / "Other").mkdir()
    (root / "Other" / "report-old.txt").write_text("old figures")
    write_catalog(root)


@pytest.fixture
def settings(storage_root: Path):
    _tree(storage_root)
    return make_settings(storage_root, search_results_ttl_s=1.0)


async def _search(v2, command: str, headers=None) -> str:
    resp = await v2.post("/Searches/SearchAsync", json={"searchCommand": command}, headers=headers)
    return await start_v2_task(resp)


async def _results(v2, task_id: str, params=None, headers=None) -> list[dict]:
    return await v2.collection(f"/Searches/{task_id}/Results", params=params, headers=headers)


async def _found(v2, command: str) -> set[str]:
    task_id = await _search(v2, command)
    task = await wait_v2_task(v2, task_id)
    assert task["status"] == "Completed", task
    return {row["fullPath"] for row in await _results(v2, task_id)}


async def _entry_id(v2, path: str) -> int:
    return (await v2.by_path(path))["id"]


async def test_names_fields_tags_and_text_are_each_found(api):
    v2 = v2_of(api)
    sub_report = await _entry_id(v2, "\\Docs\\Sub\\report-2026.txt")
    notes = await _entry_id(v2, "\\Docs\\notes.md")
    resp = await v2.request(
        "PUT",
        f"/Entries/{sub_report}/Template",
        json={
            "templateName": "Order",
            "fields": [{"name": "Title", "values": ["Widget order"]}, {"name": "Price", "values": ["25.50"]}],
        },
    )
    assert resp.status == 200, await resp.text()
    resp = await v2.request(
        "PUT", f"/Entries/{notes}/Fields", json={"fields": [{"name": "Price", "values": ["7"]}]}
    )
    assert resp.status == 200, await resp.text()
    resp = await v2.request("PUT", f"/Entries/{notes}/Tags", json={"tags": ["Beta"]})
    assert resp.status == 200, await resp.text()

    # names, with wildcards, in any case
    assert await _found(v2, '{LF:Name="report*"}') == {
        "\\Docs\\Sub\\report-2026.txt",
        "\\Docs\\Sub\\Report-draft.csv",
        "\\Other\\report-old.txt",
    }
    # field values: a template's field, any template's, compared as numbers
    assert await _found(v2, '{[Order]:[Title]="widget*"}') == {"\\Docs\\Sub\\report-2026.txt"}
    assert await _found(v2, '{[]:[Price]>"10"}') == {"\\Docs\\Sub\\report-2026.txt"}
    assert await _found(v2, '{[]:[Price]<"10"}') == {"\\Docs\\notes.md"}
    assert await _found(v2, "{[Order]}") == {"\\Docs\\Sub\\report-2026.txt"}
    # tags
    assert await _found(v2, '{LF:Tags="beta"}') == {"\\Docs\\notes.md"}
    # text: of text-like documents only (binary.bin holds "fox" too, and is not read)
    assert await _found(v2, '{LF:Basic ~= "fox"}') == {"\\Docs\\fox.txt"}
    assert await _found(v2, '{LF:Basic ~= "lazy fox"}') == {"\\Docs\\fox.txt"}
    assert await _found(v2, '{LF:Basic ~= "fox cat"}') == set()
    # Basic over names (option N), over field values and tag names (L), combined with & and |
    assert await _found(v2, '{LF:Basic ~= "binary", option="N"}') == {"\\Docs\\binary.bin"}
    assert await _found(v2, '{LF:Basic ~= "fox", option="N"}') == {"\\Docs\\fox.txt"}
    assert await _found(v2, '{LF:Basic ~= "widget", option="L"}') == {"\\Docs\\Sub\\report-2026.txt"}
    assert await _found(v2, '{LF:Basic ~= "beta", option="L"}') == {"\\Docs\\notes.md"}
    assert await _found(v2, '{LF:Tags="Beta"} | ({LF:Name="*.csv"} & {LF:Basic ~= "draft"})') == {
        "\\Docs\\notes.md",
        "\\Docs\\Sub\\Report-draft.csv",
    }
    assert await _found(v2, '{LF:Basic ~= "Sub", option="F"}') == {"\\Docs\\Sub"}


async def test_look_in_restricts_to_a_subtree(api):
    v2 = v2_of(api)
    assert await _found(v2, '{LF:LookIn="\\Docs\\Sub"} & {LF:Name="*"}') == {
        "\\Docs\\Sub\\report-2026.txt",
        "\\Docs\\Sub\\Report-draft.csv",
    }
    # names in any case, the leading backslash optional; the folder itself is not below itself
    assert await _found(v2, '{LF:LookIn="docs"}') == {
        "\\Docs\\fox.txt",
        "\\Docs\\notes.md",
        "\\Docs\\binary.bin",
        "\\Docs\\Sub",
        "\\Docs\\Sub\\report-2026.txt",
        "\\Docs\\Sub\\Report-draft.csv",
    }
    assert await _found(v2, '{LF:LookIn="\\Other"} & {LF:Name="report*"}') == {"\\Other\\report-old.txt"}
    assert await _found(v2, '{LF:LookIn="\\Nowhere"} & {LF:Name="*"}') == set()
    # LookIn beside an |: a test of each entry, not a bound on the walk
    assert await _found(v2, '{LF:LookIn="\\Other"} | {LF:Name="fox.txt"}') == {
        "\\Other\\report-old.txt",
        "\\Docs\\fox.txt",
    }


async def test_paging_a_thousand_results_visits_each_once(api, storage_root):
    v2 = v2_of(api)
    for folder in range(4):
        top = storage_root / "Many" / f"f{folder}"
        top.mkdir(parents=True)
        for i in range(250):
            (top / f"item-{folder}-{i:03}.dat").touch()
    task_id = await _search(v2, '{LF:Name="item-*"}')
    await wait_v2_task(v2, task_id)
    rows = await _results(v2, task_id, headers={"Prefer": "maxpagesize=150"})
    assert len(rows) == 1000
    assert len({row["id"] for row in rows}) == 1000
    assert [row["rowNumber"] for row in rows] == list(range(1, 1001))
    for row in rows[:3]:
        assert_v2_shape(row, listed=True)
    # the default page is 150, with an absolute nextLink and, asked for, the count
    resp = await v2.get(f"/Searches/{task_id}/Results", params={"$count": "true"})
    body = await resp.json()
    assert len(body["value"]) == 150 and body["@odata.count"] == 1000
    assert body["@odata.nextLink"].startswith("http")
    # $orderby, $top, $skip and $select
    params = {"$orderby": "name desc", "$top": "5", "$skip": "2", "$select": "name"}
    resp = await v2.get(f"/Searches/{task_id}/Results", params=params)
    body = await resp.json()
    names = sorted((row["name"] for row in rows), reverse=True)
    assert [row["name"] for row in body["value"]] == names[2:7]
    assert set(body["value"][0]) == {"id", "name", "entryType", "rowNumber"}
    # a field column: only the first value of a multi-value field
    first = rows[0]["id"]
    resp = await v2.request(
        "PUT", f"/Entries/{first}/Fields", json={"fields": [{"name": "Words", "values": ["a", "b"]}]}
    )
    assert resp.status == 200, await resp.text()
    resp = await v2.get(f"/Searches/{task_id}/Results", params=[("fields", "Words"), ("$top", "1")])
    [row] = (await resp.json())["value"]
    assert [(f["name"], f["values"]) for f in row["fields"]] == [("Words", ["a"])]


async def test_context_hits_point_at_the_right_text(api, storage_root):
    v2 = v2_of(api)
    task_id = await _search(v2, '{LF:Basic ~= "fox"}')
    await wait_v2_task(v2, task_id)
    [row] = await _results(v2, task_id)
    hits = await v2.collection(f"/Searches/{task_id}/Results/{row['rowNumber']}/ContextHits")
    edoc = [hit for hit in hits if hit["hitType"] == "Edoc"]
    assert len(edoc) == 2 and {hit["hitNumber"] for hit in hits} == set(range(1, len(hits) + 1))
    for hit in edoc:
        found = hit["context"][hit["highlight1Offset"] : hit["highlight1Offset"] + hit["highlight1Length"]]
        assert found == "fox"
        at = hit["pageOffset"] + hit["highlight1Offset"]
        assert QUICK_TEXT[at : at + 3] == "fox", hit
        assert hit["edocHitCount"] == 2
    assert sorted(hit["pageOffset"] + hit["highlight1Offset"] for hit in edoc) == [
        16,
        QUICK_TEXT.rindex("fox"),
    ]
    # a name hit, and a field hit that names its field
    fox = row["id"]
    resp = await v2.request(
        "PUT", f"/Entries/{fox}/Fields", json={"fields": [{"name": "Remark", "values": ["a red fox"]}]}
    )
    assert resp.status == 200, await resp.text()
    task_id = await _search(v2, '{LF:Basic ~= "fox", option="NL"}')
    await wait_v2_task(v2, task_id)
    [row] = await _results(v2, task_id)
    hits = await v2.collection(f"/Searches/{task_id}/Results/1/ContextHits")
    kinds = {(hit["hitType"], hit["fieldName"]) for hit in hits}
    assert kinds == {("Name", None), ("Field", "Remark")}
    field_hit = next(hit for hit in hits if hit["hitType"] == "Field")
    assert field_hit["context"][field_hit["highlight1Offset"] :][:3] == "fox"
    # many hits: 100 to a page (the default), the rest after the nextLink
    (storage_root / "Docs" / "many.txt").write_text("fox " * 130)
    task_id = await _search(v2, '{LF:Name="many.txt"} & {LF:Basic ~= "fox"}')
    await wait_v2_task(v2, task_id)
    resp = await v2.get(f"/Searches/{task_id}/Results/1/ContextHits")
    body = await resp.json()
    assert len(body["value"]) == 100 and body["@odata.nextLink"].startswith("http")
    hits = await v2.collection(f"/Searches/{task_id}/Results/1/ContextHits")
    assert [hit["hitType"] for hit in hits] == ["Name"] + ["Edoc"] * 130
    resp = await v2.get(f"/Searches/{task_id}/Results/2/ContextHits")
    await assert_problem(resp, 404)


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ('{LF:Creator="admin"}', "LF:Creator"),
        ('{LF:Name="a"} - {LF:Name="b"}', "negation"),
        ('{LF:Name="a"} AND {LF:Name="b"}', "AND"),
        ('{LF:Basic ~= "x", option="DQ"}', "'Q'"),
        ('{LF:Name="a", Type="D"}', "Type"),
        ('{[Order]:[Title]~="x"}', "~="),
        ('{[Nope]:[Title]="x"}', "Nope"),
        ('{[]:[Nothing]="x"}', "Nothing"),
        ('{[]:[Price]>"cheap"}', "Price"),
        ('{LF:Name="a"', "ends early"),
        ("plain words", "plain"),
    ],
)
async def test_an_unsupported_construct_is_a_400_naming_it(api, command, named):
    v2 = v2_of(api)
    resp = await v2.post("/Searches/SearchAsync", json={"searchCommand": command})
    await assert_problem(resp, 400, named)
    resp = await v2.post("/SimpleSearches", json={"searchCommand": command})
    await assert_problem(resp, 400, named)
    resp, body = await v2_tasks(v2)
    assert resp.status == 200 and body["value"] == []  # nothing was started


async def test_fuzzy_and_malformed_bodies_are_400s(api):
    v2 = v2_of(api)
    resp = await v2.post(
        "/Searches/SearchAsync", json={"searchCommand": '{LF:Name="a"}', "fuzzyType": "Percentage"}
    )
    await assert_problem(resp, 400, "fuzzyType")
    resp = await v2.post("/Searches/SearchAsync", json={"command": "x"})
    await assert_problem(resp, 400, "searchCommand")
    resp = await v2.get("/Searches/not-a-task/Results")
    await assert_problem(resp, 404)


async def test_a_search_over_20000_entries_reports_rising_progress_and_can_be_cancelled(api, storage_root):
    v2 = v2_of(api)
    for folder in range(100):
        top = storage_root / "Big" / f"d{folder:03}"
        top.mkdir(parents=True)
        for i in range(199):
            os.close(os.open(top / f"e{i:03}", os.O_CREAT | os.O_WRONLY, 0o644))
    # 0.5 ms per entry: 10 s for the tree, cancelled long before
    task_id = await _search(v2, '{LF:Name="*"}', headers={"Sandbox-Pace-Ms": "0.5"})
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while len(set(seen)) < 3 or seen[-1] < 10:
        task = await v2_task(v2, task_id)
        assert task["status"] in ("NotStarted", "InProgress"), task
        seen.append(task["percentComplete"])
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.05)
    assert seen == sorted(seen) and seen[-1] < 100
    resp = await v2.request("DELETE", "/Tasks", params={"taskIds": task_id})
    assert resp.status == 200
    [cancelled] = (await resp.json())["value"]
    assert cancelled["result"] is True
    task = await v2_task(v2, task_id)
    assert task["status"] == "Cancelled", task
    # what it found before the cancel stays readable
    resp = await v2.get(f"/Searches/{task_id}/Results", params={"$count": "true", "$top": "1"})
    count = (await resp.json())["@odata.count"]
    assert 0 < count < 20_000


async def test_an_injected_failure_stops_the_search_between_entries(api, client):
    v2 = v2_of(api)
    fault = {"kind": "operation-failure", "afterEntries": 5, "status": 507, "message": "disk full (injected)"}
    resp = await client.post("/sandbox/faults", json=fault, headers=api.headers)
    assert resp.status in (200, 201), await resp.text()
    task_id = await _search(v2, '{LF:Name="*"}')
    task = await wait_v2_task(v2, task_id)
    assert task["status"] == "Failed" and task["errors"][0]["status"] == 507, task
    # the five entries done before it are its rows
    rows = await _results(v2, task_id)
    assert [row["fullPath"] for row in rows] == [
        "\\Docs",
        "\\Other",
        "\\Docs\\binary.bin",
        "\\Docs\\fox.txt",
        "\\Docs\\notes.md",
    ]


async def test_results_expire_after_their_last_read_and_refresh_reruns(api, storage_root):
    v2 = v2_of(api)
    task_id = await _search(v2, '{LF:Name="report*"}')
    await wait_v2_task(v2, task_id)
    # each read keeps them another second (the setting here)
    for _ in range(3):
        await asyncio.sleep(0.5)
        assert len(await _results(v2, task_id)) == 3
    await asyncio.sleep(1.3)
    resp = await v2.get(f"/Searches/{task_id}/Results")
    body = await assert_problem(resp, 404, "expired")
    assert "refresh" in body["detail"]
    resp = await v2.get(f"/Searches/{task_id}/Results/1/ContextHits")
    await assert_problem(resp, 404, "expired")
    # refresh runs the search again, over the tree as it is now
    (storage_root / "Other" / "report-new.txt").write_text("new")
    rows = await _results(v2, task_id, params={"refresh": "true"})
    assert {row["name"] for row in rows} == {
        "report-2026.txt",
        "Report-draft.csv",
        "report-old.txt",
        "report-new.txt",
    }
    assert sorted(row["rowNumber"] for row in rows) == [1, 2, 3, 4]
    assert len(await _results(v2, task_id)) == 4
    # a refresh before expiry replaces the results too
    (storage_root / "Other" / "report-old.txt").unlink()
    assert len(await _results(v2, task_id, params={"refresh": "true"})) == 3


async def test_simple_search_answers_at_once(api):
    v2 = v2_of(api)
    resp = await v2.post(
        "/SimpleSearches",
        json={"searchCommand": '{LF:Name="report*"}'},
        params={"$orderby": "name", "$count": "true"},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert [row["name"] for row in body["value"]] == ["report-2026.txt", "Report-draft.csv", "report-old.txt"]
    assert body["@odata.count"] == 3
    assert [row["rowNumber"] for row in body["value"]] == [1, 2, 3]
    resp, tasks = await v2_tasks(v2)
    assert tasks["value"] == []  # no task


async def test_the_official_clients_calls_on_the_sample(aiohttp_client, tmp_path):
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE_ROOT, root, ignore=shutil.ignore_patterns(".sandbox"))
    client = await aiohttp_client(create_app(make_settings(root)))
    v2 = v2_of(Api(client, await sign_in(client)))
    for command in (
        '({LF:Basic ~= "search text", option="DFANLT"})',
        '({LF:Basic ~= "search", option="DFANLT"})',
    ):
        task_id = await _search(v2, command)
        # the immediate poll (no Prefer: long polling) already says Completed
        task = await v2_task(v2, task_id, wait=None)
        assert task["status"] == "Completed" and task["percentComplete"] == 100, task
        rows = await _results(v2, task_id, headers={"Prefer": "maxpagesize=10"})
        assert rows, command
        hits = await v2.collection(
            f"/Searches/{task_id}/Results/{rows[0]['rowNumber']}/ContextHits",
            headers={"Prefer": "maxpagesize=10"},
        )
        assert hits, command
        resp = await v2.request("DELETE", "/Tasks", params={"taskIds": task_id})
        assert resp.status == 200
        assert (await resp.json())["value"][0]["result"] is False
    resp = await v2.post(
        "/SimpleSearches", json={"searchCommand": '({LF:Basic ~= "search text", option="DFANLT"})'}
    )
    assert resp.status == 200 and (await resp.json())["value"], await resp.text()


def _rows_by_run(root: Path, task_id: str) -> dict[int, int]:
    """The result rows stored for a search, by set (read from the store beside the server)."""
    with sqlite3.connect(f"file:{root / '.sandbox' / 'sandbox.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT run, count(*) FROM search_rows WHERE token = ? GROUP BY run", (task_id,))
        return dict(rows.fetchall())


def _count(v2: str, auth: dict[str, str], task_id: str) -> int:
    r = requests.get(f"{v2}/Searches/{task_id}/Results", params={"$count": "true", "$top": "0"}, headers=auth)
    assert r.status_code == 200, r.text
    return int(r.json()["@odata.count"])


def test_kill_9_mid_search_or_refresh_keeps_what_was_found_and_leaves_no_debris(server_factory, tmp_path):
    root = tmp_path / "root"
    for folder in range(20):
        top = root / f"d{folder:02}"
        top.mkdir(parents=True)
        for i in range(100):
            (top / f"e{i:03}").touch()
    server = server_factory.start(root, "--copy-processes", "0")
    v2 = f"{server.base_url}/v2/Repositories/{REPO_ID}"
    r = requests.post(
        f"{server.base_url}/v1/Repositories/{REPO_ID}/Token",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
    )
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}  # (sessions outlive a restart)

    def start(pace: str) -> str:
        r = requests.post(
            f"{v2}/Searches/SearchAsync",
            json={"searchCommand": '{LF:Name="*"}'},
            headers={**auth, "Sandbox-Pace-Ms": pace},
        )
        assert r.status_code == 202, r.text
        return str(r.json()["taskId"])

    def restart() -> str:
        nonlocal server
        server.stop(signal.SIGKILL)
        server = server_factory.start(root, "--copy-processes", "0")
        return f"{server.base_url}/v2/Repositories/{REPO_ID}"

    # a refresh cut off: the set it was writing goes, the one it was to replace stays whole
    done = start("0")
    assert requests.get(f"{v2}/Tasks", params={"taskIds": done}, headers=auth).json()["value"][0][
        "status"
    ] == ("Completed")
    assert _count(v2, auth, done) == 2020

    def refresh() -> None:
        with contextlib.suppress(requests.RequestException):
            requests.get(
                f"{v2}/Searches/{done}/Results",
                params={"refresh": "true"},
                headers={**auth, "Sandbox-Pace-Ms": "2"},
                timeout=60,
            )

    refreshing = threading.Thread(target=refresh)
    refreshing.start()
    deadline = time.monotonic() + 30
    while _rows_by_run(root, done).get(1, 0) < 50:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    v2 = restart()
    refreshing.join()
    assert _rows_by_run(root, done) == {0: 2020}
    assert _count(v2, auth, done) == 2020

    # a search cut off: Failed, and the rows it had stored stay readable, numbered without gaps
    task_id = start("2")
    deadline = time.monotonic() + 30
    while _count(v2, auth, task_id) < 50:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    v2 = restart()
    task = requests.get(f"{v2}/Tasks", params={"taskIds": task_id}, headers=auth).json()["value"][0]
    assert task["status"] == "Failed", task
    found = _count(v2, auth, task_id)
    assert found >= 50 and _rows_by_run(root, task_id) == {0: found}
    with sqlite3.connect(f"file:{root / '.sandbox' / 'sandbox.db'}?mode=ro", uri=True) as conn:
        low, high = conn.execute(
            "SELECT min(row_number), max(row_number) FROM search_rows WHERE token = ?", (task_id,)
        ).fetchone()
    assert (low, high) == (1, found)


async def _conforms(client, spec: dict, resp, path: str, method: str = "GET") -> dict:
    """The answer's JSON, once its status is one the description declares for the route and its
    body fits the declared schema."""
    from jsonschema import Draft202012Validator

    declared = spec["paths"][path][method.lower()]["responses"]
    raw = await resp.read()
    assert str(resp.status) in declared, f"{method} {path}: undeclared {resp.status}: {raw[:300]!r}"
    content = declared[str(resp.status)]["content"]
    assert resp.content_type in content, (path, resp.content_type)
    schema = content[resp.content_type]["schema"]
    # (the description as the root resource, so that its #/components/schemas/... refs resolve)
    validator = Draft202012Validator({**spec, **schema}, format_checker=Draft202012Validator.FORMAT_CHECKER)
    body = json.loads(raw)
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, f"{method} {path} {resp.status}: {[e.message for e in errors][:5]}"
    return body


async def test_answers_fit_the_openapi_description(api, client):
    v2 = v2_of(api)
    spec = await (await client.get("/openapi.json")).json()
    base = "/v2/Repositories/{repoId}"
    resp = await v2.post(
        "/Searches/SearchAsync", json={"searchCommand": '{LF:Basic ~= "fox"} | {LF:Name="*"}'}
    )
    task_id = (await _conforms(client, spec, resp, base + "/Searches/SearchAsync", "POST"))["taskId"]
    await wait_v2_task(v2, task_id)
    results = base + "/Searches/{taskId}/Results"
    for params in (
        {},
        {"$select": "name,fields", "fields": "Title"},
        {"$orderby": "entryType desc", "$count": "true"},
    ):
        resp = await v2.get(
            f"/Searches/{task_id}/Results", params=params, headers={"Prefer": "maxpagesize=3"}
        )
        assert (await _conforms(client, spec, resp, results))["value"]
    hits = results + "/{rowNumber}/ContextHits"
    for number in range(1, 10):
        resp = await v2.get(f"/Searches/{task_id}/Results/{number}/ContextHits")
        await _conforms(client, spec, resp, hits)
    resp = await v2.get(f"/Searches/{task_id}/Results/1/ContextHits", params={"$orderby": "nothing"})
    await _conforms(client, spec, resp, hits)
    resp = await v2.post(
        "/SimpleSearches", json={"searchCommand": '{LF:Name="*"}'}, params={"$count": "true"}
    )
    assert (await _conforms(client, spec, resp, base + "/SimpleSearches", "POST"))["value"]
    resp = await v2.post("/SimpleSearches", json={"searchCommand": "{LF:Nope}"})
    await _conforms(client, spec, resp, base + "/SimpleSearches", "POST")
