"""The metadata catalog and what survives the process (issue 13; CONTRACT-V2.md "Metadata"): the sample
storage root starts with its seeded values; a bad catalog stops `python -m server` at start with the
file, the line and the problem; `--catalog FILE` names another catalog; no catalog is an empty one; a
restart loses nothing and does not seed again; `kill -9` during a loop of PUT Fields leaves one whole
set or the other; `kill -9` during a paced copy of a tree with metadata leaves each copied entry with its
source's metadata or none.

The sample root is always copied under tmp_path first (the tracked one is never served). The process
tests run `python -m server` (conftest.server_factory); the others run in process over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import (
    CATALOG_FILE,
    HIDDEN,
    PROJECT_ROOT,
    SAMPLE_ROOT,
    TEST_CATALOG,
    V2BASE,
    Api,
    assert_problem,
    make_settings,
    md_fields,
    md_links,
    md_snapshot,
    sign_in,
    v1_of,
    v2_children,
    write_catalog,
)
from test_metadata_follows import assert_copy_carries, big_tree, decorate_big, snapshots_of, tree_ids
from test_restart import RemoteClient
from test_v2_tasks import start_copy, wait_running

from server.app import create_app

# --------------------------------------------------------------------------- helpers


def sample_copy(tmp_path: Path) -> Path:
    """The sample storage root, copied (its store, if any, left out)."""
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE_ROOT, root, ignore=shutil.ignore_patterns(HIDDEN))
    assert (root / CATALOG_FILE).is_file()
    return root


async def remote_v2(session: aiohttp.ClientSession, server, token: str | None = None) -> Api:
    client = RemoteClient(session, server.base_url)
    return Api(client, token or await sign_in(client), base=V2BASE)


async def by_path(api: Api, path: str) -> int:
    return (await v1_of(api).by_path(path))["id"]


async def json_of(resp, status: int = 200):
    text = await resp.text()
    assert resp.status == status, f"{resp.status}: {text[:800]}"
    return json.loads(text)


# --------------------------------------------------------------------------- the sample


async def test_the_sample_root_starts_with_its_seeded_values(aiohttp_client, tmp_path):
    root = sample_copy(tmp_path)
    client = await aiohttp_client(create_app(make_settings(root)))
    v2 = Api(client, await sign_in(client), base=V2BASE)
    inv1 = await by_path(v2, "\\Invoices\\2026\\INV-0001.txt")
    agreement = await by_path(v2, "\\Contracts\\Acme Corp\\agreement.md")
    amendment = await by_path(v2, "\\Contracts\\Acme Corp\\amendment-1.md")

    entry = await json_of(await v2.get(f"/Entries/{inv1}"))
    assert (entry["templateId"], entry["templateName"]) == (1, "Invoice")
    assert entry["templateFieldNames"] == ["Invoice Number", "Vendor", "Amount", "Invoice Date", "Status"]
    snap = await md_snapshot(v2, inv1)
    assert snap["fields"] == {
        "Invoice Number": ["INV-0001"],
        "Vendor": ["Acme Corp"],
        "Amount": ["1250.00"],
        "Invoice Date": ["2026-11-15"],
        "Status": ["Approved"],
    }
    assert snap["tags"] == {"Reviewed"}
    assert snap["links"] == {(2, inv1, agreement, ())}
    # the template's fields come first, in its order
    listed = await v2.collection(f"/Entries/{inv1}/Fields")
    assert [f["name"] for f in listed] == ["Invoice Number", "Vendor", "Amount", "Invoice Date", "Status"]

    snap = await md_snapshot(v2, agreement)
    assert snap["template"] == "Contract"
    assert snap["fields"]["Keywords"] == ["services", "master agreement"]
    assert snap["fields"]["Contract Number"] == ["1001"]
    assert snap["tags"] == {"Reviewed", "Confidential"}
    assert (1, agreement, amendment, ()) in snap["links"]
    assert (await md_links(v2, amendment)) == {(1, agreement, amendment, ())}
    [link] = await v2.collection(f"/Entries/{amendment}/Links")
    assert (link["sourceLabel"], link["targetLabel"]) == ("Contract", "Amendment")
    welcome = await md_snapshot(v2, await by_path(v2, "\\Welcome.txt"))
    assert welcome["template"] == "General" and welcome["fields"]["Notes"]

    # v1 reads the same values
    v1 = v1_of(v2)
    assert (await v1.entry(inv1))["templateName"] == "Invoice"
    v1_fields = {
        f["fieldName"]: [v["value"] for v in f["values"]]
        for f in await v1.collection(f"/Entries/{inv1}/fields")
    }
    assert v1_fields["Vendor"] == ["Acme Corp"]
    assert {t["name"] for t in await v1.collection(f"/Entries/{inv1}/tags")} == {"Reviewed"}

    # the catalog file is no entry, in either dialect
    assert CATALOG_FILE not in {e["name"] for e in await v2_children(v2, 1)}
    assert CATALOG_FILE not in await v1.child_names(1)
    await assert_problem(await v1.get("/Entries/ByPath", params={"fullPath": "\\" + CATALOG_FILE}), 404)
    # what the official clients' tests look for on the root: 2 unconstrained String fields, 2
    # informational tags, link definition 1, a template whose fields are all optional
    fields = (await json_of(await v2.get("/FieldDefinitions")))["value"]
    assert len([f for f in fields if f["fieldType"] == "String" and not f["constraint"] and f["length"]]) >= 2
    tags = (await json_of(await v2.get("/TagDefinitions")))["value"]
    assert len([t for t in tags if t["isSecure"] is False]) >= 2
    assert (await json_of(await v2.get("/LinkDefinitions/1")))["id"] == 1
    # the tracked sample was not touched
    assert not (SAMPLE_ROOT / HIDDEN).exists()


async def test_no_catalog_is_an_empty_catalog(aiohttp_client, tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    client = await aiohttp_client(create_app(make_settings(root)))
    v2 = Api(client, await sign_in(client), base=V2BASE)
    for path in (
        "/FieldDefinitions",
        "/TagDefinitions",
        "/LinkDefinitions",
        "/TemplateDefinitions",
        "/AuditReasons",
    ):
        assert (await json_of(await v2.get(path)))["value"] == [], path
    d = await by_path(v2, "\\d")
    assert await md_fields(v2, d) == {}
    body = await assert_problem(
        await v2.request("PUT", f"/Entries/{d}/Tags", json={"tags": ["Zyzzyva"]}), 400
    )
    assert "Zyzzyva" in f"{body['detail']} {body['title']}"
    resp = await v2.request("PUT", f"/Entries/{d}/Fields", json={"fields": [{"name": "F", "values": ["v"]}]})
    await assert_problem(resp, 400)


async def test_catalog_setting_names_another_file(aiohttp_client, tmp_path):
    root = tmp_path / "root"
    write_catalog(root)  # not the one served
    other = tmp_path / "elsewhere" / "mine.toml"
    other.parent.mkdir()
    other.write_text(OTHER_CATALOG, encoding="utf-8")
    client = await aiohttp_client(create_app(make_settings(root, catalog=other)))
    v2 = Api(client, await sign_in(client), base=V2BASE)
    assert [t["name"] for t in (await json_of(await v2.get("/TemplateDefinitions")))["value"]] == [
        "Elsewhere"
    ]
    assert [f["name"] for f in (await json_of(await v2.get("/FieldDefinitions")))["value"]] == ["Only"]
    assert CATALOG_FILE not in {e["name"] for e in await v2_children(v2, 1)}


OTHER_CATALOG = """\
[[field]]
id = 5
name = "Only"
type = "String"

[[template]]
id = 7
name = "Elsewhere"
fields = ["Only"]
"""


async def test_the_catalog_flag_in_the_process(server_factory, tmp_path):
    root = tmp_path / "root"
    write_catalog(root)
    other = tmp_path / "mine.toml"
    other.write_text(OTHER_CATALOG, encoding="utf-8")
    server = server_factory.start(root, "--catalog", str(other))
    async with aiohttp.ClientSession() as session:
        v2 = await remote_v2(session, server)
        templates = (await json_of(await v2.get("/TemplateDefinitions")))["value"]
        assert [(t["id"], t["name"]) for t in templates] == [(7, "Elsewhere")]
    assert server.stop() == 0


# --------------------------------------------------------------------------- bad catalogs


def _append(extra: str) -> tuple[str, range]:
    """TEST_CATALOG with `extra` (one table) appended; the lines a message may name: from the
    table's header to its line marked `# <-`, the mistake."""
    text = TEST_CATALOG + "\n" + extra
    first = len(TEST_CATALOG.splitlines()) + 2
    [line] = [n for n, s in enumerate(text.splitlines(), 1) if s.rstrip().endswith("# <-")]
    return text, range(first, line + 1)


BAD_CATALOGS = {
    "toml syntax": (
        '[[tag]]\nid = 9\nname = "unterminated  # <-\n',
        [("invalid", "not valid", "syntax", "illegal", "unterminated", "expected")],
    ),
    "unknown type": (
        '[[field]]\nid = 11\nname = "Bad"\ntype = "Text"  # <-\n',
        ["[[field]] #11", "type", "Text"],
    ),
    "duplicate id": (
        '[[tag]]\nid = 2  # <-\nname = "Delta"\n',
        ["2", "tag"],
    ),
    "template with an unknown field": (
        '[[template]]\nid = 9\nname = "Ghostly"\nfields = ["Title", "Ghost"]  # <-\n',
        ["Ghost"],
    ),
    "bad seed value": (
        '[[entry]]\npath = "/d/a.txt"\nfields = { Count = "many" }  # <-\n',
        ["Count", "many"],
    ),
    "list without values": (
        '[[field]]\nid = 12\nname = "Choice"\ntype = "List"  # <-\n',
        ["values"],
    ),
    "duplicate name": (
        '[[template]]\nid = 8\nname = "order"  # <-\n',
        ["order"],
    ),
}


def run_server_expecting_failure(root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", "0", "--storage-root", str(root)]
    try:
        return subprocess.run(
            [*cmd, *extra],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"the server started on a bad catalog (still running after 20 s): {exc.stdout}"
        ) from None


def assert_refused(done: subprocess.CompletedProcess, path: Path, lines: range, words: list) -> None:
    """Exit status not 0, no banner, no traceback; stderr names `path`:<one of `lines`>: and each of
    `words` (a tuple: one of those), case aside."""
    err = done.stderr
    assert done.returncode != 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{err}"
    assert "base URL" not in done.stdout, done.stdout
    assert "Traceback" not in err, err
    assert any(f"{path}:{n}:" in err for n in lines), f"stderr does not name {path}:<{list(lines)}>:\n{err}"
    for word in words:
        options = word if isinstance(word, tuple) else (word,)
        assert any(w.lower() in err.lower() for w in options), f"stderr does not say {word!r}:\n{err}"


@pytest.mark.parametrize("kind", sorted(BAD_CATALOGS))
def test_a_bad_catalog_stops_the_server_at_start(tmp_path, kind):
    extra, words = BAD_CATALOGS[kind]
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "a.txt").write_bytes(b"a")
    text, lines = _append(extra)
    path = write_catalog(root, text)
    done = run_server_expecting_failure(root)
    assert_refused(done, path, lines, words)


def test_a_bad_catalog_named_by_the_flag_is_named_in_the_message(tmp_path):
    root = tmp_path / "root"
    write_catalog(root)  # a good one, not used
    text, lines = _append('[[field]]\nid = 11\nname = "Bad"\ntype = "Text"  # <-\n')
    other = tmp_path / "other.toml"
    other.write_text(text, encoding="utf-8")
    done = run_server_expecting_failure(root, "--catalog", str(other))
    assert_refused(done, other, lines, ["type", "Text"])


# --------------------------------------------------------------------------- restarts


async def test_a_restart_loses_nothing_and_does_not_seed_again(server_factory, tmp_path):
    root = sample_copy(tmp_path)
    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        v2 = await remote_v2(session, server)
        token = v2.token
        inv1 = await by_path(v2, "\\Invoices\\2026\\INV-0001.txt")
        inv2 = await by_path(v2, "\\Invoices\\2026\\INV-0002.txt")
        # change a seeded entry: other values than the catalog's seed
        fields = {"Invoice Number": ["INV-0009"], "Vendor": ["Changed Inc"], "Status": ["Paid"]}
        resp = await v2.request(
            "PUT",
            f"/Entries/{inv1}/Fields",
            json={"fields": [{"name": n, "values": v} for n, v in fields.items()]},
        )
        await json_of(resp)
        await json_of(await v2.request("PUT", f"/Entries/{inv1}/Tags", json={"tags": ["Archived"]}))
        await json_of(
            await v2.request(
                "PUT",
                f"/Entries/{inv1}/Links",
                json={"links": [{"linkDefinitionId": 2, "otherEntryId": inv2}]},
            )
        )
        await json_of(await v2.request("DELETE", f"/Entries/{inv2}/Template"))
        everything = await tree_ids(v2, 1)
        before = await snapshots_of(v2, everything)
    assert server.stop() == 0

    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        v2 = await remote_v2(session, server, token)
        assert await tree_ids(v2, 1) == everything
        assert await snapshots_of(v2, everything) == before
        snap = before[inv1]
        assert snap["fields"] == fields and snap["tags"] == {"Archived"}
        assert snap["links"] == {(2, inv1, inv2, ())}
        assert (await json_of(await v2.get(f"/Entries/{inv2}")))["templateId"] == 0
    assert server.stop() == 0


# the two full sets a PUT loop alternates between: every field differs, and each names some the
# other lacks
SET_A = {
    "Title": ["alpha"],
    "Code": ["AB-111"],
    "Count": ["1"],
    "Price": ["1.5"],
    "Due": ["2026-01-01"],
    "Color": ["Red"],
    "Words": ["a1", "a2", "a3"],
    "Remark": ["only in A"],
}
SET_B = {
    "Title": ["bravo"],
    "Code": ["AB-222"],
    "Count": ["2"],
    "Price": ["2.5"],
    "Due": ["2026-02-02"],
    "Color": ["Blue"],
    "Words": ["b1", "b2"],
    "Owner": ["only in B"],
    "Stamp": ["2026-02-02T02:02:02"],
}


def _fields_body(values: dict[str, list[str]]) -> dict:
    return {"fields": [{"name": n, "values": v} for n, v in values.items()]}


async def _put_loop(
    session: aiohttp.ClientSession, url: str, token: str, first: int, stop: asyncio.Event
) -> int:
    """PUT Fields alternating between the sets until the server goes; the PUTs answered 200."""
    n = first
    answered = 0
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        body = _fields_body(SET_A if n % 2 == 0 else SET_B)
        n += 1
        try:
            async with session.put(url, json=body, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
                answered += 1
        except (aiohttp.ClientError, TimeoutError):
            return answered
    return answered


async def test_kill_9_during_put_fields_leaves_one_set_or_the_other(server_factory, tmp_path):
    root = tmp_path / "root"
    write_catalog(root)
    (root / "d").mkdir()
    (root / "d" / "a.txt").write_bytes(b"a")
    rng = random.Random()
    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        v2 = await remote_v2(session, server)
        token = v2.token
        entry = await by_path(v2, "\\d\\a.txt")
        resp = await v2.request(
            "PUT", f"/Entries/{entry}/Template", json={"templateName": "Order", **_fields_body(SET_A)}
        )
        await json_of(resp)
        await json_of(await v2.request("PUT", f"/Entries/{entry}/Fields", json=_fields_body(SET_A)))
    for round_ in range(3):
        url = f"{server.base_url}{V2BASE}/Entries/{entry}/Fields"
        stop = asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            loops = [asyncio.create_task(_put_loop(session, url, token, i, stop)) for i in range(4)]
            await asyncio.sleep(0.3 + rng.random() * 0.4)
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=10)
            stop.set()
            answered = await asyncio.gather(*loops)
        assert sum(answered) > 0, f"round {round_}: no PUT was answered before the kill"

        server = server_factory.start(root)
        async with aiohttp.ClientSession() as session:
            v2 = await remote_v2(session, server, token)
            got = await md_fields(v2, entry)
            assert got in (SET_A, SET_B), f"round {round_}: a mix of the two sets: {got}"
            v1_items = await v1_of(v2).collection(f"/Entries/{entry}/fields")
            v1_got = {f["fieldName"]: [v["value"] for v in f["values"]] for f in v1_items if f["values"]}
            assert v1_got == got
            assert (await json_of(await v2.get(f"/Entries/{entry}")))["templateName"] == "Order"
    assert server.stop() == 0


async def test_kill_9_during_a_paced_copy_with_metadata(server_factory, tmp_path):
    root = tmp_path / "root"
    write_catalog(root)
    rels = big_tree(root)
    server = server_factory.start(root, "--pace-ms", "40")
    async with aiohttp.ClientSession() as session:
        v2 = await remote_v2(session, server)
        token = v2.token
        ids = await decorate_big(v2, rels)
        source = await tree_ids(v2, ids["Many"])
        before = await snapshots_of(v2, source)
        o_before = await md_links(v2, ids["Out/o.txt"])
        task_id = await start_copy(v2, 1, ids["Many"], "Partial")
        seen = await wait_running(v2, task_id, at_least=55)
        assert seen is not None, "the paced copy ended before the kill"
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    assert time.monotonic() - t0 < 10

    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        v2 = await remote_v2(session, server, token)
        partial = await by_path(v2, "\\Partial")
        copy = await tree_ids(v2, partial)
        assert len(copy) < len(source), "the copy was complete: the kill came too late"
        # (documents' rows are written a batch at a time: those of a batch the kill cut short are
        # made by the restart, without metadata)
        snaps = await assert_copy_carries(v2, source, copy, snapshots=before, may_be_empty=True)
        carried = [rel for rel, i in copy.items() if rel.endswith(".txt") and snaps[i]["tags"]]
        assert carried, f"no copied document carries metadata: {sorted(copy)}"
        # the source is as it was; the outside entry gained links to copies only
        assert await snapshots_of(v2, source) == before
        o_after = await md_links(v2, ids["Out/o.txt"])
        assert o_before <= o_after
        for link in o_after - o_before:
            assert {link[1], link[2]} & set(copy.values()), link
    assert server.stop() == 0
