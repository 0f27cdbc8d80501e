"""Create folder, autoRename, conflicts, move/rename (PATCH) and synchronous copy."""

from __future__ import annotations

import asyncio

import pytest
from conftest import CHILDREN, assert_entry_shape, assert_problem, disk_tree

# --------------------------------------------------------------------------- create folder


async def test_create_folder(api, storage_root):
    resp = await api.create_folder(1, "Invoices")
    assert resp.status == 201, await resp.text()
    e = await resp.json()
    assert_entry_shape(e)
    assert e["entryType"] == "Folder"
    assert e["name"] == "Invoices"
    assert e["parentId"] == 1
    assert e["fullPath"] == "\\Invoices"
    assert e["folderPath"] == "\\"
    assert e["id"] > 1
    assert (storage_root / "Invoices").is_dir()
    assert (await api.entry(e["id"]))["fullPath"] == "\\Invoices"
    assert "Invoices" in await api.child_names(1)


async def test_create_nested_folder(api, storage_root):
    a = await api.mkdir(1, "A")
    b = await api.mkdir(a["id"], "B")
    assert b["parentId"] == a["id"]
    assert b["fullPath"] == "\\A\\B"
    assert b["folderPath"] == "\\A"
    assert (storage_root / "A" / "B").is_dir()
    assert (await api.by_path("\\A\\B"))["id"] == b["id"]


async def test_new_ids_are_fresh_and_increasing(api):
    ids = [(await api.mkdir(1, f"f{i}"))["id"] for i in range(5)]
    assert len(set(ids)) == 5
    assert ids == sorted(ids)
    assert 1 not in ids


async def test_create_folder_conflict_is_409(api, storage_root):
    await api.mkdir(1, "dup")
    (storage_root / "dup" / "keep.txt").write_bytes(b"keep")
    resp = await api.create_folder(1, "dup")
    await assert_problem(resp, 409)
    resp = await api.create_folder(1, "dup", auto_rename=False)
    await assert_problem(resp, 409)
    assert sorted(p.name for p in storage_root.iterdir() if p.name != ".sandbox") == ["dup"]
    assert (storage_root / "dup" / "keep.txt").read_bytes() == b"keep"


async def test_create_folder_conflict_with_document_is_409(api, storage_root):
    (storage_root / "same").write_bytes(b"doc")
    await assert_problem(await api.create_folder(1, "same"), 409)
    assert (storage_root / "same").read_bytes() == b"doc"


async def test_create_folder_auto_rename(api, storage_root):
    first = await api.mkdir(1, "Reports")
    resp = await api.create_folder(1, "Reports", auto_rename=True)
    assert resp.status == 201, await resp.text()
    second = await resp.json()
    assert second["name"] == "Reports (2)"
    assert second["fullPath"] == "\\Reports (2)"
    resp = await api.create_folder(1, "Reports", auto_rename=True)
    third = await resp.json()
    assert third["name"] == "Reports (3)"
    assert len({first["id"], second["id"], third["id"]}) == 3
    for n in ("Reports", "Reports (2)", "Reports (3)"):
        assert (storage_root / n).is_dir()


async def test_auto_rename_without_conflict_keeps_name(api, storage_root):
    resp = await api.create_folder(1, "Fresh", auto_rename=True)
    assert resp.status == 201
    assert (await resp.json())["name"] == "Fresh"


async def test_folder_auto_rename_does_not_split_extension(api, storage_root):
    (storage_root / "a.txt").write_bytes(b"x")
    resp = await api.create_folder(1, "a.txt", auto_rename=True)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["name"] == "a.txt (2)"
    assert (storage_root / "a.txt (2)").is_dir()
    assert (storage_root / "a.txt").read_bytes() == b"x"


async def test_create_in_unknown_parent_is_404(api, storage_root):
    await assert_problem(await api.create_folder(98765, "x"), 404)
    assert not (storage_root / "x").exists()


async def test_create_under_document_is_problem(api, storage_root):
    (storage_root / "d.txt").write_bytes(b"x")
    doc = await api.by_path("\\d.txt")
    await assert_problem(await api.create_folder(doc["id"], "x"), (400, 404, 409))
    assert (storage_root / "d.txt").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entryType": "Folder"}, "name"),
        ({"entryType": "Folder", "name": 5}, "name"),
        ({"entryType": "Folder", "name": None}, "name"),
        ({"entryType": "Folder", "name": ["x"]}, "name"),
        ({"entryType": "Banana", "name": "x"}, "entryType"),
        ({"entryType": 7, "name": "x"}, "entryType"),
    ],
)
async def test_create_folder_bad_body_is_400(api, storage_root, body, field):
    resp = await api.post(f"/Entries/1/{CHILDREN}", json=body)
    await assert_problem(resp, 400, field)
    assert [p.name for p in storage_root.iterdir() if p.name != ".sandbox"] == []


async def test_create_folder_bad_auto_rename_value_is_400(api, storage_root):
    resp = await api.post(
        f"/Entries/1/{CHILDREN}", json={"entryType": "Folder", "name": "x"}, params={"autoRename": "banana"}
    )
    await assert_problem(resp, 400, "autoRename")
    assert not (storage_root / "x").exists()


# --------------------------------------------------------------------------- PATCH


async def test_rename_folder_keeps_id(api, storage_root):
    e = await api.mkdir(1, "old")
    (storage_root / "old" / "child.txt").write_bytes(b"c")
    child = await api.by_path("\\old\\child.txt")
    resp = await api.patch(f"/Entries/{e['id']}", json={"name": "new"})
    assert resp.status == 200, await resp.text()
    r = await resp.json()
    assert_entry_shape(r)
    assert r["id"] == e["id"]
    assert r["name"] == "new"
    assert r["fullPath"] == "\\new"
    assert not (storage_root / "old").exists()
    assert (storage_root / "new" / "child.txt").read_bytes() == b"c"
    assert (await api.entry(e["id"]))["name"] == "new"
    moved_child = await api.entry(child["id"])
    assert moved_child["fullPath"] == "\\new\\child.txt"
    assert moved_child["parentId"] == e["id"]


async def test_rename_document_updates_extension(api, storage_root):
    (storage_root / "a.txt").write_bytes(b"data")
    doc = await api.by_path("\\a.txt")
    resp = await api.patch(f"/Entries/{doc['id']}", json={"name": "b.csv"})
    assert resp.status == 200, await resp.text()
    r = await resp.json()
    assert r["id"] == doc["id"]
    assert r["name"] == "b.csv"
    assert r["extension"] == "csv"
    assert (storage_root / "b.csv").read_bytes() == b"data"
    assert not (storage_root / "a.txt").exists()


async def test_move_document(api, storage_root):
    dest = await api.mkdir(1, "dest")
    (storage_root / "m.txt").write_bytes(b"move me")
    doc = await api.by_path("\\m.txt")
    resp = await api.patch(f"/Entries/{doc['id']}", json={"parentId": dest["id"]})
    assert resp.status == 200, await resp.text()
    r = await resp.json()
    assert r["id"] == doc["id"]
    assert r["parentId"] == dest["id"]
    assert r["fullPath"] == "\\dest\\m.txt"
    assert r["folderPath"] == "\\dest"
    assert (storage_root / "dest" / "m.txt").read_bytes() == b"move me"
    assert not (storage_root / "m.txt").exists()


async def test_move_and_rename_folder_with_subtree(api, storage_root):
    src = await api.mkdir(1, "src")
    sub = await api.mkdir(src["id"], "sub")
    (storage_root / "src" / "sub" / "deep.bin").write_bytes(b"\x00\x01")
    deep = await api.by_path("\\src\\sub\\deep.bin")
    dest = await api.mkdir(1, "dest")
    resp = await api.patch(f"/Entries/{src['id']}", json={"parentId": dest["id"], "name": "renamed"})
    assert resp.status == 200, await resp.text()
    r = await resp.json()
    assert (r["id"], r["parentId"], r["fullPath"]) == (src["id"], dest["id"], "\\dest\\renamed")
    assert (storage_root / "dest" / "renamed" / "sub" / "deep.bin").read_bytes() == b"\x00\x01"
    assert not (storage_root / "src").exists()
    assert (await api.entry(sub["id"]))["fullPath"] == "\\dest\\renamed\\sub"
    assert (await api.entry(deep["id"]))["fullPath"] == "\\dest\\renamed\\sub\\deep.bin"


async def test_move_into_own_subtree_is_400(api, storage_root):
    a = await api.mkdir(1, "a")
    b = await api.mkdir(a["id"], "b")
    c = await api.mkdir(b["id"], "c")
    for target in (a, b, c):
        await assert_problem(await api.patch(f"/Entries/{a['id']}", json={"parentId": target["id"]}), 400)
    assert (storage_root / "a" / "b" / "c").is_dir()
    assert (await api.entry(a["id"]))["fullPath"] == "\\a"


async def test_move_into_sibling_with_same_prefix(api, storage_root):
    """`a` is not an ancestor of `ab`: a string-prefix subtree check would wrongly refuse this."""
    a = await api.mkdir(1, "a")
    ab = await api.mkdir(1, "ab")
    (storage_root / "a" / "x.txt").write_bytes(b"x")
    resp = await api.post(f"/Entries/{ab['id']}/{CHILDREN}", json={"sourceId": a["id"], "name": "a-copy"})
    assert resp.status == 201, await resp.text()
    resp = await api.patch(f"/Entries/{a['id']}", json={"parentId": ab["id"]})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["fullPath"] == "\\ab\\a"
    assert (storage_root / "ab" / "a" / "x.txt").read_bytes() == b"x"
    assert (storage_root / "ab" / "a-copy" / "x.txt").read_bytes() == b"x"


async def test_rename_conflict_is_409(api, storage_root):
    x = await api.mkdir(1, "x")
    await api.mkdir(1, "y")
    await assert_problem(await api.patch(f"/Entries/{x['id']}", json={"name": "y"}), 409)
    assert (storage_root / "x").is_dir() and (storage_root / "y").is_dir()


async def test_move_conflict_is_409(api, storage_root):
    d = await api.mkdir(1, "d")
    (storage_root / "d" / "f.txt").write_bytes(b"inside")
    (storage_root / "f.txt").write_bytes(b"outside")
    f = await api.by_path("\\f.txt")
    await assert_problem(await api.patch(f"/Entries/{f['id']}", json={"parentId": d["id"]}), 409)
    assert (storage_root / "d" / "f.txt").read_bytes() == b"inside"
    assert (storage_root / "f.txt").read_bytes() == b"outside"


async def test_patch_root_is_400(api, storage_root):
    d = await api.mkdir(1, "d")
    await assert_problem(await api.patch("/Entries/1", json={"name": "root2"}), 400)
    await assert_problem(await api.patch("/Entries/1", json={"parentId": d["id"]}), 400)
    assert (await api.entry(1))["fullPath"] == "\\"


async def test_patch_unknown_entry_is_404(api):
    await assert_problem(await api.patch("/Entries/55555", json={"name": "x"}), 404)


async def test_patch_to_unknown_parent_is_404(api, storage_root):
    d = await api.mkdir(1, "d")
    await assert_problem(await api.patch(f"/Entries/{d['id']}", json={"parentId": 55555}), (400, 404))
    assert (storage_root / "d").is_dir()


async def test_patch_into_document_is_problem(api, storage_root):
    d = await api.mkdir(1, "d")
    (storage_root / "f.txt").write_bytes(b"x")
    f = await api.by_path("\\f.txt")
    await assert_problem(await api.patch(f"/Entries/{d['id']}", json={"parentId": f["id"]}), (400, 404, 409))
    assert (storage_root / "d").is_dir()
    assert (storage_root / "f.txt").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"parentId": "x"}, "parentId"),
        ({"parentId": "1"}, "parentId"),
        ({"parentId": 1.5}, "parentId"),
        ({"parentId": True}, "parentId"),
    ],
)
async def test_patch_bad_body_is_400(api, storage_root, body, field):
    d = await api.mkdir(1, "d")
    await assert_problem(await api.patch(f"/Entries/{d['id']}", json=body), 400, field)
    assert (storage_root / "d").is_dir()


async def test_rename_to_same_name_is_ok_or_noop(api, storage_root):
    d = await api.mkdir(1, "same")
    resp = await api.patch(f"/Entries/{d['id']}", json={"name": "same"})
    assert resp.status == 200
    assert (storage_root / "same").is_dir()


# --------------------------------------------------------------------------- synchronous copy


async def _copy(api, dest_id: int, source_id: int, name: str, auto_rename: bool | None = None):
    params = {} if auto_rename is None else {"autoRename": "true" if auto_rename else "false"}
    return await api.post(
        f"/Entries/{dest_id}/{CHILDREN}", json={"sourceId": source_id, "name": name}, params=params
    )


@pytest.fixture
def source_tree(storage_root):
    src = storage_root / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "a.txt").write_bytes(b"alpha\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (src / "sub" / "deeper" / "c.dat").write_bytes(b"")
    (src / "sub" / "deeper" / "d.txt").write_bytes("ünïcode".encode())
    return src


async def test_copy_folder_tree(api, storage_root, source_tree):
    src = await api.by_path("\\src")
    dest = await api.mkdir(1, "dest")
    before_ids = [e["id"] for e in await api.children(src["id"])]
    resp = await _copy(api, dest["id"], src["id"], "copy")
    assert resp.status == 201, await resp.text()
    e = await resp.json()
    assert_entry_shape(e)
    assert e["entryType"] == "Folder"
    assert e["name"] == "copy"
    assert e["parentId"] == dest["id"]
    assert e["fullPath"] == "\\dest\\copy"
    assert e["id"] not in (src["id"], dest["id"], *before_ids)
    assert e["id"] > max([*before_ids, dest["id"]])
    assert disk_tree(storage_root / "dest" / "copy") == disk_tree(source_tree)
    copied_children = await api.children(e["id"])
    assert {c["name"] for c in copied_children} == {"sub", "empty", "a.txt"}
    assert not ({c["id"] for c in copied_children} & set(before_ids))
    # the source is untouched
    assert [c["id"] for c in await api.children(src["id"])] == before_ids


async def test_copy_document(api, storage_root):
    data = b"copy me " * 1000
    (storage_root / "orig.txt").write_bytes(data)
    doc = await api.by_path("\\orig.txt")
    resp = await _copy(api, 1, doc["id"], "dup.txt")
    assert resp.status == 201, await resp.text()
    e = await resp.json()
    assert e["entryType"] == "Document"
    assert e["name"] == "dup.txt"
    assert e["elecDocumentSize"] == len(data)
    assert e["id"] != doc["id"]
    assert (storage_root / "dup.txt").read_bytes() == data
    assert (storage_root / "orig.txt").read_bytes() == data


async def test_copy_conflict_is_409_and_auto_rename(api, storage_root):
    (storage_root / "r.txt").write_bytes(b"r")
    doc = await api.by_path("\\r.txt")
    await assert_problem(await _copy(api, 1, doc["id"], "r.txt"), 409)
    resp = await _copy(api, 1, doc["id"], "r.txt", auto_rename=True)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["name"] == "r (2).txt"
    assert (storage_root / "r (2).txt").read_bytes() == b"r"


async def test_copy_folder_auto_rename(api, storage_root, source_tree):
    src = await api.by_path("\\src")
    resp = await _copy(api, 1, src["id"], "src", auto_rename=True)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["name"] == "src (2)"
    assert disk_tree(storage_root / "src (2)") == disk_tree(source_tree)


async def test_copy_into_own_subtree_is_400(api, storage_root, source_tree):
    src = await api.by_path("\\src")
    sub = await api.by_path("\\src\\sub")
    before = disk_tree(storage_root / "src")
    await assert_problem(await _copy(api, src["id"], src["id"], "again"), 400)
    await assert_problem(await _copy(api, sub["id"], src["id"], "again"), 400)
    assert disk_tree(storage_root / "src") == before


async def test_copy_unknown_source_is_404(api, storage_root):
    await assert_problem(await _copy(api, 1, 77777, "x"), (400, 404))
    assert not (storage_root / "x").exists()


async def test_copy_to_unknown_destination_is_404(api, storage_root):
    (storage_root / "s.txt").write_bytes(b"s")
    doc = await api.by_path("\\s.txt")
    await assert_problem(await _copy(api, 77777, doc["id"], "x"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sourceId": "abc", "name": "x"}, "sourceId"),
        ({"sourceId": True, "name": "x"}, "sourceId"),
        ({"sourceId": 1.5, "name": "x"}, "sourceId"),
        ({"sourceId": 2, "name": 5}, "name"),
    ],
)
async def test_copy_bad_body_is_400(api, storage_root, body, field):
    (storage_root / "s.txt").write_bytes(b"s")
    await api.by_path("\\s.txt")
    await assert_problem(await api.post(f"/Entries/1/{CHILDREN}", json=body), 400, field)
    assert sorted(p.name for p in storage_root.iterdir() if p.name != ".sandbox") == ["s.txt"]


async def test_copy_root_is_400(api, storage_root):
    d = await api.mkdir(1, "d")
    await assert_problem(await _copy(api, d["id"], 1, "rootcopy"), 400)
    assert not (storage_root / "d" / "rootcopy").exists()


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_creates_of_one_name(api, storage_root):
    resps = await asyncio.gather(*(api.create_folder(1, "race") for _ in range(8)))
    statuses = sorted(r.status for r in resps)
    assert statuses == [201] + [409] * 7, statuses
    for r in resps:
        await r.read()
    assert sorted(p.name for p in storage_root.iterdir() if p.name != ".sandbox") == ["race"]


async def test_concurrent_auto_renamed_creates_and_imports(api, storage_root):
    folder_resps = await asyncio.gather(*(api.create_folder(1, "dir", auto_rename=True) for _ in range(6)))
    import_resps = await asyncio.gather(
        *(api.import_doc(1, "same.txt", f"content {i}".encode(), auto_rename=True) for i in range(6))
    )
    folders = []
    for r in folder_resps:
        assert r.status == 201, await r.text()
        folders.append((await r.json())["name"])
    assert sorted(folders) == sorted(["dir"] + [f"dir ({n})" for n in range(2, 7)])
    ids = []
    for r in import_resps:
        assert r.status == 201, await r.text()
        ids.append((await r.json())["operations"]["entryCreate"]["entryId"])
    assert len(set(ids)) == 6
    names = {(await api.entry(i))["name"] for i in ids}
    assert names == {"same.txt"} | {f"same ({n}).txt" for n in range(2, 7)}
    contents = sorted((storage_root / n).read_bytes() for n in names)
    assert contents == sorted(f"content {i}".encode() for i in range(6))
