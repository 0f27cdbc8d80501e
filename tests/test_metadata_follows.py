"""Metadata follows its entries (issue 13 "Metadata follows the entries"; CONTRACT-V2.md "Metadata"): every
kind of copy (v1 children with `sourceId`, v2 Folder/Copy, v1 and v2 CopyAsync, the Elements hub's copy)
carries each copied entry's template, fields, tags and links; a link between two copied entries joins the
copies, one to an entry outside the copied tree joins the copy to that same entry; a cancelled paced copy
leaves every copied entry with its source's metadata; a move keeps metadata, a delete removes it (links
from entries outside included); the Elements hub's tags are Laserfiche's tags, by name.

In process over real sockets (`aiohttp_client`), over a real storage root under tmp_path holding the test
catalog (conftest.TEST_CATALOG). The helpers that compare a copy with its source are used by
test_metadata_catalog.py's `kill -9` test too.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import (
    Api,
    assert_problem,
    make_settings,
    md_links,
    md_snapshot,
    md_tags,
    sign_in,
    v1_of,
    v2_children,
    v2_of,
    wait_v2_task,
    write_catalog,
)
from test_elements_hub import Hub, ok
from test_operations import copy_token, wait_done
from test_v2_tasks import cancelled, start_copy, v2_task, wait_running

from server.app import create_app

# ---------------------------------------------------------------------------- trees with metadata


def small_tree(root: Path) -> None:
    """Src/{a.txt, b.txt, Sub/{c.txt, d.txt}} and Out/o.txt, outside Src."""
    (root / "Src" / "Sub").mkdir(parents=True)
    for rel, data in (("a.txt", b"a"), ("b.txt", b"bb"), ("Sub/c.txt", b"ccc"), ("Sub/d.txt", b"dddd")):
        (root / "Src" / rel).write_bytes(data)
    (root / "Out").mkdir()
    (root / "Out" / "o.txt").write_bytes(b"o")


async def put(v2: Api, path: str, body: dict) -> list | dict:
    resp = await v2.request("PUT", path, json=body)
    text = await resp.text()
    assert resp.status == 200, f"PUT {path} {body}: {resp.status} {text[:800]}"
    return json.loads(text)


async def decorate(v2: Api, entry_id: int, *, template=None, fields=None, tags=None, links=None) -> None:
    """Give an entry metadata through v2 (template first, then fields, tags, links)."""
    if template is not None:
        await put(v2, f"/Entries/{entry_id}/Template", {"templateName": template, **_fields(fields or {})})
    if fields is not None:
        await put(v2, f"/Entries/{entry_id}/Fields", _fields(fields))
    if tags is not None:
        await put(v2, f"/Entries/{entry_id}/Tags", {"tags": tags})
    if links is not None:
        await put(v2, f"/Entries/{entry_id}/Links", {"links": links})


def _fields(values: dict[str, list[str]]) -> dict:
    return {"fields": [{"name": n, "values": v} for n, v in values.items()]}


async def path_ids(api: Api, *paths: str) -> dict[str, int]:
    v1 = v1_of(api)
    return {p: (await v1.by_path("\\" + p.replace("/", "\\")))["id"] for p in paths}


async def decorate_small(v2: Api) -> dict[str, int]:
    """Metadata on every entry of small_tree's Src (each has tags), links inside Src, out of it and
    into it: a->b, a->o (with custom properties), o->c, c->a, Sub->d. The ids by path."""
    ids = await path_ids(
        v2, "Src", "Src/a.txt", "Src/b.txt", "Src/Sub", "Src/Sub/c.txt", "Src/Sub/d.txt", "Out", "Out/o.txt"
    )
    a, b, c, d, o = (
        ids[p] for p in ("Src/a.txt", "Src/b.txt", "Src/Sub/c.txt", "Src/Sub/d.txt", "Out/o.txt")
    )
    await decorate(v2, ids["Src"], template="Loose", fields={"Remark": ["top"]}, tags=["Gamma"])
    await decorate(
        v2,
        a,
        template="Order",
        fields={"Title": ["A"], "Code": ["AB-001"], "Count": ["1"], "Due": ["2026-02-03"]},
        tags=["Alpha", "Secret"],
        links=[
            {"linkDefinitionId": 1, "otherEntryId": b},
            {"linkDefinitionId": 2, "otherEntryId": o, "customProperties": {"why": "x"}},
        ],
    )
    await decorate(v2, b, fields={"Owner": ["bo"], "Price": ["2.5"]}, tags=["Beta"])
    await decorate(
        v2,
        c,
        template="Bare",
        tags=["Gamma"],
        links=[
            {"linkDefinitionId": 1, "otherEntryId": o, "isSource": False},
            {"linkDefinitionId": 3, "otherEntryId": a},
        ],
    )
    await decorate(v2, d, fields={"Words": ["d1", "d2"], "Color": ["Blue"]}, tags=["Beta"])
    await decorate(v2, ids["Src/Sub"], tags=["Alpha"], links=[{"linkDefinitionId": 3, "otherEntryId": d}])
    return ids


def big_tree(root: Path, folders: int = 3, per_folder: int = 8) -> list[str]:
    """Many/sub-F/doc-II.txt and Out/o.txt: the relative paths below Many (folders first)."""
    rels = []
    for f in range(folders):
        (root / "Many" / f"sub-{f}").mkdir(parents=True)
        rels.append(f"sub-{f}")
        for i in range(per_folder):
            (root / "Many" / f"sub-{f}" / f"doc-{i:02d}.txt").write_bytes(f"{f}/{i}".encode())
            rels.append(f"sub-{f}/doc-{i:02d}.txt")
    (root / "Out").mkdir(exist_ok=True)
    (root / "Out" / "o.txt").write_bytes(b"o")
    return rels


async def decorate_big(v2: Api, rels: list[str]) -> dict[str, int]:
    """Metadata on every entry below Many (tags on each; fields on documents; a chain of links from
    each document to the next, across folders; every third document linked with Out/o.txt)."""
    ids = await path_ids(v2, "Many", "Out/o.txt", *(f"Many/{r}" for r in rels))
    o = ids["Out/o.txt"]
    await decorate(v2, ids["Many"], template="Loose", fields={"Remark": ["many"]}, tags=["Gamma"])
    docs = [r for r in rels if r.endswith(".txt")]
    for n, rel in enumerate(rels):
        entry_id = ids[f"Many/{rel}"]
        if not rel.endswith(".txt"):
            await decorate(v2, entry_id, tags=["Gamma"])
            continue
        i = docs.index(rel)
        links = []
        if i + 1 < len(docs):
            links.append({"linkDefinitionId": 1, "otherEntryId": ids[f"Many/{docs[i + 1]}"]})
        if i > 0:  # (the link from the one before, made by its PUT; kept in this replacing PUT)
            links.append(
                {"linkDefinitionId": 1, "otherEntryId": ids[f"Many/{docs[i - 1]}"], "isSource": False}
            )
        if i % 3 == 0:
            links.append({"linkDefinitionId": 2, "otherEntryId": o, "isSource": i % 2 == 0})
        await decorate(
            v2,
            entry_id,
            template="Order" if n % 2 else None,
            fields={"Title": [f"t{n}"], "Count": [str(n)], "Words": [f"w{n}", "x"]},
            tags=["Alpha"] if n % 2 else ["Beta", "Secret"],
            links=links,
        )
    return ids


# ---------------------------------------------------------------------------- comparing a copy


async def tree_ids(v2: Api, top_id: int) -> dict[str, int]:
    """Relative path (with /) -> id of every entry below `top_id` through v2, the top itself as ''."""
    out = {"": top_id}
    todo = [("", top_id)]
    while todo:
        rel, folder = todo.pop()
        for child in await v2_children(v2, folder):
            path = f"{rel}/{child['name']}" if rel else child["name"]
            out[path] = child["id"]
            if child["entryType"] == "Folder":
                todo.append((path, child["id"]))
    return out


def is_empty(snap: dict) -> bool:
    return not (snap["template"] or snap["fields"] or snap["tags"] or snap["links"])


async def assert_copy_carries(
    v2: Api,
    source: dict[str, int],
    copy: dict[str, int],
    *,
    snapshots: dict[int, dict] | None = None,
    may_be_empty: bool = False,
) -> dict[int, dict]:
    """Every copied entry (copy: relative path -> id, a subset of source's paths) carries its source's
    template, field values and tags; its links are its source's, each end inside the source tree
    replaced by that end's copy and each end outside kept, less those whose inside end has no copy
    (a partial copy). `may_be_empty`: an entry may instead carry nothing at all (a copy interrupted
    by a crash whose rows a restart made). `snapshots`: the sources' metadata read before (source id
    -> md_snapshot), else read now. Every source entry carries tags, so a copy is "full" or empty.
    The copies' snapshots by id."""
    assert set(copy) <= set(source), f"entries in the copy that the source lacks: {set(copy) - set(source)}"
    inside = {sid: rel for rel, sid in source.items()}
    copies = {rel: await md_snapshot(v2, cid) for rel, cid in copy.items()}
    full = {rel for rel, snap in copies.items() if not is_empty(snap)}
    if not may_be_empty:
        assert full == set(copy), f"copied entries without metadata: {sorted(set(copy) - full)}"

    def mapped(entry_id: int) -> int | None:
        if entry_id not in inside:
            return entry_id  # outside the copied tree: the same entry
        rel = inside[entry_id]
        return copy[rel] if rel in full else None

    for rel in copy:
        sid = source[rel]
        want = (snapshots or {}).get(sid) or await md_snapshot(v2, sid)
        got = copies[rel]
        if rel not in full:
            assert is_empty(got), (rel, got)
            continue
        for key in ("template", "fields", "tags"):
            assert got[key] == want[key], f"{rel or '(top)'}: {key} {got[key]} != source's {want[key]}"
        expected = set()
        for definition, s, t, props in want["links"]:
            ms, mt = mapped(s), mapped(t)
            if ms is not None and mt is not None:
                expected.add((definition, ms, mt, props))
        assert got["links"] == expected, f"{rel or '(top)'}: links {got['links']} != {expected}"
    return {copy[rel]: snap for rel, snap in copies.items()}


async def snapshots_of(v2: Api, ids: dict[str, int]) -> dict[int, dict]:
    return {i: await md_snapshot(v2, i) for i in ids.values()}


def outside_links_after_copy(before: set[tuple], source: dict[str, int], copy: dict[str, int]) -> set[tuple]:
    """An outside entry's links after a complete copy: its own, and each one into the source tree
    again into the copy."""
    inside = {sid: rel for rel, sid in source.items()}
    out = set(before)
    for definition, s, t, props in before:
        if s in inside or t in inside:
            out.add((definition, copy.get(inside.get(s), s), copy.get(inside.get(t), t), props))
    return out


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write_catalog(root)
    small_tree(root)
    return root


@pytest.fixture
def v2(api: Api) -> Api:
    return v2_of(api)


async def copy_by(how: str, api: Api, source_id: int, name: str, root: Path) -> int:
    """Copy `source_id` into the root as `name` by one of the five routes; the copy's id."""
    v1, v2 = v1_of(api), v2_of(api)
    if how == "v1-children":
        resp = await v1.post(
            "/Entries/1/Laserfiche.Repository.Folder/children", json={"sourceId": source_id, "name": name}
        )
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]
    if how == "v2-copy":
        resp = await v2.post("/Entries/1/Folder/Copy", json={"sourceId": source_id, "name": name})
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]
    if how == "v1-async":
        token = await copy_token(v1, 1, source_id, name, route="Laserfiche.Repository.Folder/CopyAsync")
        _, resp, body = await wait_done(v1, token)
        assert body is not None and body["status"] == "Completed", body
        return body["entryId"]
    if how == "v2-async":
        task = await wait_v2_task(v2, await start_copy(v2, 1, source_id, name))
        assert task["status"] == "Completed", task
        return task["result"]["entryId"]
    if how == "elements":
        hub = Hub(api.client, root)
        src = await (await v2.get(f"/Entries/{source_id}")).json()
        kind = "folders" if src["entryType"] == "Folder" else "files"
        made = await ok(await hub.post(f"/{kind}/{source_id}/copy", json={"path": f"/{name}"}))
        return int(made["id"])
    raise AssertionError(how)


HOW = ["v1-children", "v2-copy", "v1-async", "v2-async", "elements"]


# ---------------------------------------------------------------------------- copies


@pytest.mark.parametrize("how", HOW)
async def test_a_copy_carries_every_entrys_metadata(api, v2, storage_root, how):
    ids = await decorate_small(v2)
    source = await tree_ids(v2, ids["Src"])
    o = ids["Out/o.txt"]
    before = await snapshots_of(v2, source)
    o_before = await md_links(v2, o)

    top = await copy_by(how, api, ids["Src"], "Copy", storage_root)
    copy = await tree_ids(v2, top)
    assert set(copy) == set(source)
    await assert_copy_carries(v2, source, copy, snapshots=before)
    # links between copied entries join the copies; those with o, outside, join o
    a2, b2, c2 = copy["a.txt"], copy["b.txt"], copy["Sub/c.txt"]
    assert (1, a2, b2, ()) in await md_links(v2, a2)
    assert (2, a2, o, (("why", "x"),)) in await md_links(v2, a2)
    assert (1, o, c2, ()) in await md_links(v2, c2)
    assert await md_links(v2, o) == outside_links_after_copy(o_before, source, copy)
    # the source is as it was
    assert await snapshots_of(v2, source) == before
    # v1 sees the copy's values too
    v1 = v1_of(api)
    assert (await v1.entry(a2))["templateName"] == "Order"
    assert {t["name"] for t in await v1.collection(f"/Entries/{a2}/tags")} == {"Alpha", "Secret"}


@pytest.mark.parametrize("how", ["v1-children", "v2-copy", "v2-async", "elements"])
async def test_a_copied_document_keeps_its_links_to_the_same_entries(api, v2, storage_root, how):
    ids = await decorate_small(v2)
    a, b, c, o = (ids[p] for p in ("Src/a.txt", "Src/b.txt", "Src/Sub/c.txt", "Out/o.txt"))
    before = await md_snapshot(v2, a)
    a2 = await copy_by(how, api, a, "a copy.txt", storage_root)
    got = await md_snapshot(v2, a2)
    assert {k: got[k] for k in ("template", "fields", "tags")} == {
        k: before[k] for k in ("template", "fields", "tags")
    }
    # every end but the copied document itself is outside what was copied
    assert got["links"] == {(1, a2, b, ()), (2, a2, o, (("why", "x"),)), (3, c, a2, ())}
    assert await md_snapshot(v2, a) == before
    assert (1, a2, b, ()) in await md_links(v2, b)


async def test_a_cancelled_paced_copy_leaves_consistent_metadata(aiohttp_client, tmp_path):
    root = tmp_path / "root"
    write_catalog(root)
    rels = big_tree(root)
    client = await aiohttp_client(create_app(make_settings(root)))
    v2 = Api(client, await sign_in(client), base="/v2/Repositories/r-sandbox")
    ids = await decorate_big(v2, rels)
    source = await tree_ids(v2, ids["Many"])
    before = await snapshots_of(v2, source)
    o_before = await md_links(v2, ids["Out/o.txt"])

    task_id = await start_copy(v2, 1, ids["Many"], "Partial", pace=40)
    assert await wait_running(v2, task_id, at_least=30) is not None, "the paced copy ended before the cancel"
    assert await cancelled(v2, task_id) == {task_id: True}
    t = await v2_task(v2, task_id)
    assert t["status"] == "Cancelled", t
    partial = await v1_of(v2).by_path("\\Partial")
    copy = await tree_ids(v2, partial["id"])
    docs = [r for r in copy if r.endswith(".txt")]
    assert 0 < len(docs) < len([r for r in source if r.endswith(".txt")]), (
        f"not a partial copy: {sorted(copy)}"
    )
    snaps = await assert_copy_carries(v2, source, copy, snapshots=before)
    # nothing moves on after the answer
    await asyncio.sleep(0.2)
    assert await tree_ids(v2, partial["id"]) == copy
    assert {i: await md_snapshot(v2, i) for i in copy.values()} == snaps
    # the source is as it was; the outside entry gained links to copies only
    assert await snapshots_of(v2, source) == before
    o_after = await md_links(v2, ids["Out/o.txt"])
    assert o_before <= o_after
    inside_copy = set(copy.values())
    for link in o_after - o_before:
        assert {link[1], link[2]} & inside_copy, link


# ---------------------------------------------------------------------------- move and delete


async def test_a_move_keeps_metadata(api, v2):
    ids = await decorate_small(v2)
    everything = await tree_ids(v2, ids["Src"])
    before = await snapshots_of(v2, everything)
    o_before = await md_snapshot(v2, ids["Out/o.txt"])
    # a document to another folder, renamed (v2), and a folder with its children (v1)
    resp = await v2.patch(f"/Entries/{ids['Src/a.txt']}", json={"parentId": ids["Out"], "name": "moved.txt"})
    assert resp.status == 200, await resp.text()
    resp = await v1_of(api).patch(f"/Entries/{ids['Src/Sub']}", json={"parentId": 1, "name": "SubMoved"})
    assert resp.status == 200, await resp.text()
    assert (await v1_of(api).entry(ids["Src/Sub/c.txt"]))["fullPath"] == "\\SubMoved\\c.txt"
    assert await snapshots_of(v2, everything) == before
    assert await md_snapshot(v2, ids["Out/o.txt"]) == o_before
    # the links name the new paths
    [link] = [
        x for x in await v2.collection(f"/Entries/{ids['Src/a.txt']}/Links") if x["linkDefinitionId"] == 2
    ]
    assert link["sourceFullPath"] == "\\Out\\moved.txt"


@pytest.mark.parametrize("dialect", ["v1", "v2"])
async def test_a_delete_removes_metadata_and_links_from_outside(api, v2, dialect):
    ids = await decorate_small(v2)
    a, b, c, d, o = (
        ids[p] for p in ("Src/a.txt", "Src/b.txt", "Src/Sub/c.txt", "Src/Sub/d.txt", "Out/o.txt")
    )

    async def delete(entry_id: int) -> None:
        if dialect == "v2":
            task_id = await start_v2_delete(v2, entry_id)
            assert (await wait_v2_task(v2, task_id))["status"] == "Completed"
        else:
            resp = await api.request("DELETE", f"/Entries/{entry_id}")
            assert resp.status in (201, 202), await resp.text()
            _, _, body = await wait_done(api, (await resp.json())["token"], kind="DeleteEntry")
            assert body is not None and body["status"] == "Completed", body

    await delete(a)
    for path in (f"/Entries/{a}/Fields", f"/Entries/{a}/Tags", f"/Entries/{a}/Links"):
        await assert_problem(await v2.get(path), 404)
    # the links of others that pointed at it are gone; theirs otherwise stay
    assert await md_links(v2, b) == set()
    assert await md_links(v2, o) == {(1, o, c, ())}
    assert await md_links(v2, c) == {(1, o, c, ())}
    assert (await md_snapshot(v2, b))["fields"] == {"Owner": ["bo"], "Price": ["2.5"]}
    # a folder: its own and its children's metadata, and the links into it
    await delete(ids["Src/Sub"])
    assert await md_links(v2, o) == set()
    for entry_id in (c, d, ids["Src/Sub"]):
        await assert_problem(await v2.get(f"/Entries/{entry_id}/Tags"), 404)
    assert await md_tags(v2, b) == {"Beta"}


async def start_v2_delete(v2: Api, entry_id: int) -> str:
    resp = await v2.request("DELETE", f"/Entries/{entry_id}", json={})
    assert resp.status == 202, await resp.text()
    return (await resp.json())["taskId"]


# ---------------------------------------------------------------------------- the Elements hub's tags


async def test_elements_tags_are_laserfiche_tags_by_name(api, v2, storage_root):
    hub = Hub(api.client, storage_root)
    made = await ok(await hub.post("/folders", json={"path": "/Tagged", "tags": ["Alpha", "Brand New"]}))
    assert sorted(made["tags"]) == ["Alpha", "Brand New"]
    folder_id = int(made["id"])
    tags = await v2.collection(f"/Entries/{folder_id}/Tags")
    assert {t["name"] for t in tags} == {"Alpha", "Brand New"}
    assert next(t for t in tags if t["name"] == "Alpha")["id"] == 1
    # the new name is a tag definition now, not secure, with an id of its own
    definitions = (await (await v2.get("/TagDefinitions")).json())["value"]
    [new] = [t for t in definitions if t["name"].casefold() == "brand new"]
    assert new["isSecure"] is False
    assert new["id"] not in (1, 2, 3, 4)
    assert (await (await v2.get(f"/TagDefinitions/{new['id']}")).json())["name"] == "Brand New"
    assert new["id"] == next(t for t in tags if t["name"] == "Brand New")["id"]
    # v1 too
    assert {t["name"] for t in await v1_of(api).collection("/TagDefinitions")} >= {"Brand New", "Alpha"}

    # a file's tags, a catalog tag among them
    file = await ok(await hub.upload("/Tagged/f.txt", b"f"))
    resp = await hub.patch(f"/files/{file['id']}/metadata", json={"tags": ["Brand New", "Secret"]})
    assert sorted((await ok(resp))["tags"]) == ["Brand New", "Secret"]
    assert {t["id"] for t in await v2.collection(f"/Entries/{file['id']}/Tags")} == {new["id"], 4}
    # Laserfiche's PUT shows in the hub
    await put(v2, f"/Entries/{folder_id}/Tags", {"tags": ["Beta", "Brand New"]})
    assert sorted((await hub.folder("/Tagged"))["tags"]) == ["Beta", "Brand New"]
    await put(v2, f"/Entries/{file['id']}/Tags", {"tags": []})
    assert (await hub.file("/Tagged/f.txt"))["tags"] == []
    # a hub copy carries tags (and Laserfiche's other metadata)
    await put(v2, f"/Entries/{folder_id}/Fields", _fields({"Remark": ["hub"]}))
    copied = await ok(await hub.post("/folders/copy", params={"path": "/Tagged"}, json={"path": "/Tagged2"}))
    assert sorted(copied["tags"]) == ["Beta", "Brand New"]
    snap = await md_snapshot(v2, int(copied["id"]))
    assert (snap["tags"], snap["fields"]) == ({"Beta", "Brand New"}, {"Remark": ["hub"]})


async def test_elements_tag_names_are_one_definition_in_any_case(api, v2, storage_root):
    """Tag names are unique in any case (the catalog's rule, and Laserfiche's PUT Tags matches them
    so): a hub tag that differs from a defined one only in case is that tag, not a second one."""
    hub = Hub(api.client, storage_root)
    made = await ok(await hub.post("/folders", json={"path": "/Cased", "tags": ["alpha", "Brand New"]}))
    other = await ok(await hub.post("/folders", json={"path": "/Cased2", "tags": ["BRAND NEW"]}))
    definitions = (await (await v2.get("/TagDefinitions")).json())["value"]
    assert len([t for t in definitions if t["name"].casefold() == "alpha"]) == 1, definitions
    assert len([t for t in definitions if t["name"].casefold() == "brand new"]) == 1, definitions
    [new] = [t["id"] for t in definitions if t["name"].casefold() == "brand new"]
    assert {t["id"] for t in await v2.collection(f"/Entries/{made['id']}/Tags")} == {1, new}
    assert {t["id"] for t in await v2.collection(f"/Entries/{other['id']}/Tags")} == {new}
