"""Laserfiche Repository API v2, entries (issue 12; CONTRACT-V2.md "v2 entries", LF-V2-CLIENT.md §1 and
§2.4 to 2.18, /work/v2plan.md): repositories, entry by id and by path, children (paging, ordering, $select,
$count), create with `folderPath`, synchronous copy, move and rename, multipart import, downloads, errors.

Every test runs the app in process over real sockets (`aiohttp_client`) and a real folder under tmp_path; the
sign-in is v1's `Token` route, whose bearer works on both dialects.
"""

from __future__ import annotations

import os

import pytest
from conftest import (
    HIDDEN,
    PROBLEM_KEYS,
    REPO_ID,
    V2_CHILDREN,
    V2_EDOC,
    V2BASE,
    Api,
    assert_problem,
    assert_v2_shape,
    disk_tree,
    part_files,
    tree_snapshot,
    v1_of,
    v2_import_form,
    v2_of,
)
from yarl import URL

# the official client's import content (ImportFolderPath, EntryIntrospection)
CONTENT = b"integration test content"


@pytest.fixture
def v2(api: Api) -> Api:
    return v2_of(api)


def visible(root) -> list:
    """The storage root as a user sees it (the server's own store left out)."""
    return tree_snapshot(root, exclude_hidden_of=root)


async def create(v2: Api, parent_id: int, body: dict, params=None):
    return await v2.post(f"/Entries/{parent_id}/{V2_CHILDREN}", json=body, params=params or {})


async def made(v2: Api, parent_id: int, body: dict, params=None, status: int = 201) -> dict:
    resp = await create(v2, parent_id, body, params)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def folder(v2: Api, parent_id: int, name: str) -> dict:
    return await made(v2, parent_id, {"name": name, "autoRename": False, "entryType": "Folder"})


async def import_doc(v2: Api, parent_id: int, data: bytes, *, request=None, params=None, **kw):
    form = v2_import_form(data, request=request if request is not None else {}, **kw)
    return await v2.post(f"/Entries/{parent_id}/Folder/Import", data=form, params=params or {})


async def found(v2: Api, full_path: str) -> dict | None:
    """ByPath without fallback: the entry, or None on 404 (the folder-path tests' check)."""
    resp = await v2.get("/Entries/ByPath", params={"fullPath": full_path})
    if resp.status == 404:
        await assert_problem(resp, 404)
        return None
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body) == {"entry"}, body
    return body["entry"]


# --------------------------------------------------------------------------- repositories


async def test_repositories_listed_without_a_token(client):
    resp = await client.get("/v2/Repositories")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert isinstance(body["value"], list)
    ids = [r["id"] for r in body["value"]]
    assert REPO_ID in ids
    for repo in body["value"]:
        assert {"id", "name", "webClientUrl"} <= set(repo), repo
        assert repo["id"] in repo["webClientUrl"]


async def test_repositories_listed_with_a_token(client, v2):
    bare = await (await client.get("/v2/Repositories")).json()
    resp = await client.get(
        "/v2/Repositories",
        headers={
            **v2.headers,
            "X-LF-AppID": "RepositoryApiClientIntegrationTest JS",
            "Accept": "application/json",
        },
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body == bare
    [repo] = [r for r in body["value"] if r["id"].lower() == REPO_ID.lower()]
    assert repo["name"] == REPO_ID
    assert URL(repo["webClientUrl"]).is_absolute()


# --------------------------------------------------------------------------- entry by id


async def test_root_entry(v2):
    resp = await v2.get("/Entries/1")
    assert resp.status == 200, await resp.text()
    root = await resp.json()
    assert_v2_shape(root)
    assert (root["id"], root["fullPath"], root["entryType"]) == (1, "\\", "Folder")
    assert "childInfo" not in root


async def test_child_info_only_when_asked(v2, storage_root):
    (storage_root / "F" / "sub1").mkdir(parents=True)
    (storage_root / "F" / "sub2").mkdir()
    for i in range(3):
        (storage_root / "F" / f"d{i}.txt").write_bytes(b"x" * i)
    (storage_root / "Empty").mkdir()
    f = await v1_of(v2).by_path("\\F")
    empty = await v1_of(v2).by_path("\\Empty")

    for params in ({}, {"includeChildInfo": "false"}):
        resp = await v2.get(f"/Entries/{f['id']}", params=params)
        assert resp.status == 200
        plain = await resp.json()
        assert_v2_shape(plain)
        assert "childInfo" not in plain

    resp = await v2.get(f"/Entries/{f['id']}", params={"includeChildInfo": "true"})
    assert resp.status == 200
    entry = await resp.json()
    assert_v2_shape(entry, "childInfo")
    info = entry["childInfo"]
    assert info["folderCount"] == 2
    assert info["documentCount"] == 3
    assert info.get("shortcutCount", 0) == 0
    assert info["childCount"] == 5
    assert info["childCount"] == info["folderCount"] + info["documentCount"] + info.get("shortcutCount", 0)
    assert info["hasChildren"] is True
    assert {k: v for k, v in entry.items() if k != "childInfo"} == plain

    resp = await v2.get(f"/Entries/{empty['id']}", params={"includeChildInfo": "true"})
    info = (await resp.json())["childInfo"]
    assert info["childCount"] == 0
    assert info["hasChildren"] is False

    # the root, as the official EntryIntrospection test reads it
    root = await (await v2.get("/Entries/1", params={"includeChildInfo": "true"})).json()
    info = root["childInfo"]
    assert info["childCount"] == 2  # F and Empty
    assert info["childCount"] == info["folderCount"] + info["documentCount"] + info.get("shortcutCount", 0)
    assert info["hasChildren"] is (info["childCount"] > 0)


async def test_total_document_size_only_when_asked(v2, storage_root):
    resp = await import_doc(
        v2,
        1,
        CONTENT,
        request={
            "name": "RepositoryApiClientIntegrationTest JS EntryIntrospection",
            "autoRename": True,
            "importAsElectronicDocument": False,
            "generateImagePagesText": True,
        },
    )
    assert resp.status == 201, await resp.text()
    doc_id = (await resp.json())["id"]

    resp = await v2.get(f"/Entries/{doc_id}")
    plain = await resp.json()
    assert_v2_shape(plain)  # no totalDocumentSize member at all: a null fails the official client
    assert "totalDocumentSize" not in plain
    assert plain["electronicDocumentSize"] == len(CONTENT)

    resp = await v2.get(f"/Entries/{doc_id}", params={"includeTotalSize": "true"})
    assert resp.status == 200
    sized = await resp.json()
    assert_v2_shape(sized, "totalDocumentSize")
    assert isinstance(sized["totalDocumentSize"], int)
    assert sized["totalDocumentSize"] >= sized["electronicDocumentSize"] == len(CONTENT)

    resp = await v2.get(f"/Entries/{doc_id}", params={"includeTotalSize": "false"})
    assert "totalDocumentSize" not in await resp.json()


async def test_unknown_entry_is_404(v2):
    # the routes exist: they answer for the root
    assert (await v2.get("/Entries/1")).status == 200
    assert (await v2.get(f"/Entries/1/{V2_CHILDREN}")).status == 200
    for path in ("/Entries/987654", f"/Entries/987654/{V2_CHILDREN}", f"/Entries/987654/{V2_EDOC}"):
        await assert_problem(await v2.get(path), 404)


@pytest.mark.parametrize("bad", ["abc", "1.5", "-1", "%2B1"])
async def test_non_integer_id_is_400(v2, bad):
    # as v1 answers: a whole number is required
    await assert_problem(await v2.get(f"/Entries/{bad}"), 400, "entryId")
    await assert_problem(await v2.get(f"/Entries/{bad}/{V2_CHILDREN}"), 400, "entryId")


# --------------------------------------------------------------------------- by path


async def test_by_path_with_and_without_leading_backslash(v2, storage_root):
    (storage_root / "R" / "A" / "B").mkdir(parents=True)
    b = await v1_of(v2).by_path("\\R\\A\\B")
    for full_path in ("\\R\\A\\B", "R\\A\\B"):
        resp = await v2.get("/Entries/ByPath", params={"fullPath": full_path})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert set(body) == {"entry"}, body  # no ancestorEntry member
        assert body["entry"]["id"] == b["id"]
        assert body["entry"]["fullPath"] == "\\R\\A\\B"
        assert_v2_shape(body["entry"])

    resp = await v2.get("/Entries/ByPath", params={"fullPath": "\\", "fallbackToClosestAncestor": "false"})
    body = await resp.json()
    assert set(body) == {"entry"}, body
    assert (body["entry"]["id"], body["entry"]["fullPath"], body["entry"]["entryType"]) == (1, "\\", "Folder")

    # an existing path with the fallback asked for is still `entry`
    resp = await v2.get("/Entries/ByPath", params={"fullPath": "R\\A", "fallbackToClosestAncestor": "true"})
    body = await resp.json()
    assert set(body) == {"entry"}, body


async def test_by_path_fallback_to_closest_ancestor(v2, storage_root):
    (storage_root / "R" / "A").mkdir(parents=True)
    a = await v1_of(v2).by_path("\\R\\A")
    resp = await v2.get(
        "/Entries/ByPath", params={"fullPath": "\\Non Existing Path", "fallbackToClosestAncestor": "true"}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body) == {"ancestorEntry"}, body  # no entry member
    assert (body["ancestorEntry"]["id"], body["ancestorEntry"]["fullPath"]) == (1, "\\")
    assert body["ancestorEntry"]["entryType"] == "Folder"

    resp = await v2.get(
        "/Entries/ByPath", params={"fullPath": "R\\A\\missing\\deeper", "fallbackToClosestAncestor": "true"}
    )
    body = await resp.json()
    assert set(body) == {"ancestorEntry"}, body
    assert body["ancestorEntry"]["id"] == a["id"]


async def test_by_path_missing_without_fallback_is_404(v2, storage_root):
    (storage_root / "R").mkdir()
    assert (await v2.get("/Entries/ByPath", params={"fullPath": "\\R"})).status == 200
    for params in ({"fullPath": "\\R\\nope"}, {"fullPath": "R\\nope", "fallbackToClosestAncestor": "false"}):
        await assert_problem(await v2.get("/Entries/ByPath", params=params), 404)


# --------------------------------------------------------------------------- children listing


@pytest.fixture
async def listed(api, v2, storage_root) -> tuple[Api, dict, list[str]]:
    """A folder P with five children of both kinds: (v2, P, their names)."""
    top = storage_root / "P"
    top.mkdir()
    names = ["alpha", "bravo.txt", "charlie", "delta.bin", "echo"]
    for n in names:
        if "." in n:
            (top / n).write_bytes(n.encode())
        else:
            (top / n).mkdir()
    # set up through v1 (tested elsewhere), so that only the test itself depends on v2
    return v2, await api.by_path("\\P"), names


async def test_children_listing(listed):
    v2, p, names = listed
    resp = await v2.get(f"/Entries/{p['id']}/{V2_CHILDREN}")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert isinstance(body["value"], list)
    assert "@odata.nextLink" not in body or not body["@odata.nextLink"]
    assert sorted(e["name"] for e in body["value"]) == names
    rows = [e["rowNumber"] for e in body["value"]]
    assert all(isinstance(r, int) for r in rows) and len(set(rows)) == len(rows)
    for e in body["value"]:
        assert_v2_shape(e, listed=True)
        assert e["parentId"] == p["id"]
        assert e["entryType"] == ("Document" if "." in e["name"] else "Folder")
        assert "childInfo" not in e and "totalDocumentSize" not in e


async def test_children_paging_with_maxpagesize_1(listed):
    v2, p, names = listed
    prefer = {"Prefer": "maxpagesize=1"}
    resp = await v2.get(f"/Entries/{p['id']}/{V2_CHILDREN}", headers=prefer)
    assert resp.status == 200
    body = await resp.json()
    assert len(body["value"]) == 1
    link = body["@odata.nextLink"]
    assert link.startswith("http://"), link
    assert URL(link).path == f"{V2BASE}/Entries/{p['id']}/{V2_CHILDREN}"
    seen = [body["value"][0]["name"]]
    pages = 1
    while body.get("@odata.nextLink"):
        resp = await v2.absolute("GET", body["@odata.nextLink"], headers=prefer)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert len(body["value"]) <= 1
        seen += [e["name"] for e in body["value"]]
        pages += 1
        assert pages <= 10
    assert sorted(seen) == names  # each item exactly once
    assert len(seen) == len(set(seen))

    # the ForEach helper's page size
    resp = await v2.get(f"/Entries/{p['id']}/{V2_CHILDREN}", headers={"Prefer": "maxpagesize=10"})
    body = await resp.json()
    assert sorted(e["name"] for e in body["value"]) == names
    assert not body.get("@odata.nextLink")


async def test_children_orderby_top_skip_count(listed):
    v2, p, names = listed
    resp = await v2.get(f"/Entries/{p['id']}/{V2_CHILDREN}", params={"$orderby": "name desc"})
    assert resp.status == 200, await resp.text()
    assert [e["name"] for e in (await resp.json())["value"]] == sorted(names, reverse=True)

    resp = await v2.get(
        f"/Entries/{p['id']}/{V2_CHILDREN}", params={"$orderby": "name asc", "$count": "true"}
    )
    body = await resp.json()
    assert [e["name"] for e in body["value"]] == sorted(names)
    assert body["@odata.count"] == len(names)

    params = {"$orderby": "name", "$top": "2", "$skip": "1", "$count": "true"}
    resp = await v2.get(f"/Entries/{p['id']}/{V2_CHILDREN}", params=params)
    body = await resp.json()
    assert [e["name"] for e in body["value"]] == sorted(names)[1:3]
    assert body["@odata.count"] == len(names)

    resp = await v2.get(f"/Entries/{p['id']}/{V2_CHILDREN}", params={"$orderby": "nosuchfield desc"})
    await assert_problem(resp, 400, "$orderby")


async def test_children_select(listed):
    v2, p, names = listed
    resp = await v2.get(f"/Entries/{p['id']}/{V2_CHILDREN}", params={"$select": "name,parentId"})
    assert resp.status == 200, await resp.text()
    items = (await resp.json())["value"]
    assert sorted(e["name"] for e in items) == names
    for e in items:
        assert {"id", "entryType", "name", "parentId"} <= set(e), e
        assert e["parentId"] == p["id"]
        for left_out in ("creator", "fullPath", "creationTime", "volumeName"):
            assert left_out not in e, e


# --------------------------------------------------------------------------- create


async def test_create_folder(v2, storage_root):
    body = {
        "name": "RepositoryApiClientIntegrationTest JS CreateFolder",
        "autoRename": True,
        "entryType": "Folder",
    }
    resp = await create(v2, 1, body)
    assert resp.status == 201, await resp.text()
    entry = await resp.json()
    assert_v2_shape(entry)
    assert entry["entryType"] == "Folder"
    assert entry["parentId"] == 1
    assert entry["name"] == body["name"]
    assert entry["fullPath"] == "\\" + body["name"]
    assert (storage_root / body["name"]).is_dir()
    assert (await v2.entry(entry["id"]))["id"] == entry["id"]

    # inside it
    sub = await made(v2, entry["id"], {"name": "child", "entryType": "Folder"})
    assert sub["parentId"] == entry["id"]
    assert (storage_root / body["name"] / "child").is_dir()


async def test_create_folder_taken_name_is_409_then_auto_rename(v2, storage_root):
    first = await folder(v2, 1, "Taken")
    (storage_root / "Taken" / "inside.txt").write_bytes(b"keep me")
    before = visible(storage_root)
    for body in (
        {"name": "Taken", "entryType": "Folder"},
        {"name": "Taken", "entryType": "Folder", "autoRename": False},
    ):
        await assert_problem(await create(v2, 1, body), 409)
    assert visible(storage_root) == before

    renamed = await made(v2, 1, {"name": "Taken", "entryType": "Folder", "autoRename": True})
    assert renamed["name"] == "Taken (2)"
    assert renamed["id"] != first["id"]
    assert (storage_root / "Taken (2)").is_dir()
    assert (storage_root / "Taken" / "inside.txt").read_bytes() == b"keep me"
    again = await made(v2, 1, {"name": "Taken", "entryType": "Folder", "autoRename": True})
    assert again["name"] == "Taken (3)"


# --------------------------------------------------------------------------- folderPath


@pytest.fixture
async def root_r(api, v2, storage_root) -> tuple[Api, dict]:
    """The folder-path tests' own root R (made through v1, so that only the test depends on v2)."""
    return v2, await api.mkdir(1, "APIServer_JS_CreateEntryFolderPath_" + "0123456789abcdef" * 2)


async def test_folder_path_all_new_is_created(root_r, storage_root):
    v2, r = root_r
    leaf = await made(
        v2,
        r["id"],
        {"name": "Leaf", "autoRename": False, "entryType": "Folder", "folderPath": "A/B"},
        params={"autoCreateFolderPath": "true"},
    )
    assert_v2_shape(leaf)
    a = await found(v2, f"{r['name']}\\A")
    b = await found(v2, f"{r['name']}\\A\\B")
    assert a is not None and b is not None
    assert b["parentId"] == a["id"] and a["parentId"] == r["id"]
    assert leaf["parentId"] == b["id"]  # the deepest folder of the path
    assert (await found(v2, f"{r['name']}\\A\\B\\Leaf"))["id"] == leaf["id"]
    assert (storage_root / r["name"] / "A" / "B" / "Leaf").is_dir()


async def test_folder_path_keeps_existing_folders(root_r, storage_root):
    v2, r = root_r
    a = await folder(v2, r["id"], "A")
    (storage_root / r["name"] / "A" / "a.txt").write_bytes(b"already here")
    leaf = await made(
        v2,
        r["id"],
        {"name": "Leaf", "autoRename": False, "entryType": "Folder", "folderPath": "A/B"},
        params={"autoCreateFolderPath": "true"},
    )
    assert (await found(v2, f"{r['name']}\\A"))["id"] == a["id"]
    b = await found(v2, f"{r['name']}\\A\\B")
    assert b["parentId"] == a["id"]
    assert leaf["parentId"] == b["id"]
    assert (storage_root / r["name"] / "A" / "a.txt").read_bytes() == b"already here"

    # an existing path needs no flag
    other = await made(
        v2, r["id"], {"name": "Other", "autoRename": False, "entryType": "Folder", "folderPath": "A/B"}
    )
    assert other["parentId"] == b["id"]


@pytest.mark.parametrize("folder_path", ["A/B", "A\\B"], ids=["slash", "backslash"])
async def test_folder_path_separators(root_r, storage_root, folder_path):
    v2, r = root_r
    leaf = await made(
        v2,
        r["id"],
        {"name": "Leaf", "autoRename": False, "entryType": "Folder", "folderPath": folder_path},
        params={"autoCreateFolderPath": "true"},
    )
    b = await found(v2, f"{r['name']}\\A\\B")
    assert b is not None
    assert leaf["parentId"] == b["id"]
    assert (storage_root / r["name"] / "A" / "B" / "Leaf").is_dir()


@pytest.mark.parametrize("params", [{"autoCreateFolderPath": "false"}, {}], ids=["flag-false", "no-flag"])
async def test_folder_path_missing_without_the_flag_is_404(root_r, storage_root, params):
    v2, r = root_r
    before = visible(storage_root)
    resp = await create(
        v2, r["id"], {"name": "Leaf", "autoRename": False, "entryType": "Folder", "folderPath": "X/Y"}, params
    )
    await assert_problem(resp, 404)
    assert await found(v2, f"{r['name']}\\X") is None
    assert not (storage_root / r["name"] / "X").exists()
    assert visible(storage_root) == before
    # the same request with the flag makes them
    leaf = await made(
        v2,
        r["id"],
        {"name": "Leaf", "autoRename": False, "entryType": "Folder", "folderPath": "X/Y"},
        params={"autoCreateFolderPath": "true"},
    )
    assert leaf["parentId"] == (await found(v2, f"{r['name']}\\X\\Y"))["id"]


@pytest.mark.parametrize("folder_path", ["A/../B", "A//B", "./A", "A/./B", "..", "A\\..\\B"])
async def test_folder_path_dot_dot_dot_or_empty_segment_is_400(root_r, storage_root, folder_path):
    v2, r = root_r
    before = visible(storage_root)
    resp = await create(
        v2,
        r["id"],
        {"name": "Leaf", "autoRename": False, "entryType": "Folder", "folderPath": folder_path},
        params={"autoCreateFolderPath": "true"},
    )
    await assert_problem(resp, 400, "folderPath")
    assert visible(storage_root) == before
    assert list((storage_root / r["name"]).iterdir()) == []


@pytest.mark.parametrize("folder_path", [None, ""], ids=["absent", "empty"])
async def test_no_folder_path_creates_in_the_folder(root_r, folder_path):
    v2, r = root_r
    body = {"name": "Leaf", "autoRename": False, "entryType": "Folder"}
    if folder_path is not None:
        body["folderPath"] = folder_path  # (what a client that always sends the member sends)
    leaf = await made(v2, r["id"], body)
    assert leaf["parentId"] == r["id"]


# --------------------------------------------------------------------------- synchronous copy


def build_tree(top) -> None:
    (top / "sub" / "deeper").mkdir(parents=True)
    (top / "empty").mkdir()
    (top / "a.txt").write_bytes(b"alpha\n")
    (top / "zero.bin").write_bytes(b"")
    (top / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    (top / "sub" / "deeper" / "ünï.md").write_bytes("ünï ☃".encode())


async def test_synchronous_folder_copy(v2, storage_root):
    build_tree(storage_root / "Src")
    src = await v1_of(v2).by_path("\\Src")
    dest = await folder(v2, 1, "Dest")
    resp = await v2.post(
        f"/Entries/{dest['id']}/Folder/Copy",
        json={"sourceId": src["id"], "name": "Copied", "autoRename": True},
    )
    assert resp.status == 201, await resp.text()
    copy = await resp.json()
    assert_v2_shape(copy)
    assert (copy["entryType"], copy["name"], copy["parentId"]) == ("Folder", "Copied", dest["id"])
    assert copy["id"] not in (src["id"], dest["id"])
    assert disk_tree(storage_root / "Dest" / "Copied") == disk_tree(storage_root / "Src")

    # a document, and autoRename on a taken name
    a = await v1_of(v2).by_path("\\Src\\a.txt")
    resp = await v2.post(
        f"/Entries/{dest['id']}/Folder/Copy", json={"sourceId": a["id"], "name": "Copied", "autoRename": True}
    )
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert doc["entryType"] == "Document"
    assert doc["name"] == "Copied (2)"
    assert (storage_root / "Dest" / "Copied (2)").read_bytes() == b"alpha\n"

    # a taken name without autoRename: 409, nothing written
    before = visible(storage_root)
    resp = await v2.post(f"/Entries/{dest['id']}/Folder/Copy", json={"sourceId": a["id"], "name": "Copied"})
    await assert_problem(resp, 409)
    assert visible(storage_root) == before


async def test_synchronous_copy_refusals(v2, storage_root):
    build_tree(storage_root / "Src")
    src = await v1_of(v2).by_path("\\Src")
    sub = await v1_of(v2).by_path("\\Src\\sub")
    before = visible(storage_root)
    await assert_problem(await v2.post("/Entries/1/Folder/Copy", json={"sourceId": 987654, "name": "x"}), 404)
    await assert_problem(
        await v2.post("/Entries/987654/Folder/Copy", json={"sourceId": src["id"], "name": "x"}), 404
    )
    await assert_problem(
        await v2.post(f"/Entries/{sub['id']}/Folder/Copy", json={"sourceId": src["id"], "name": "loop"}), 400
    )
    assert visible(storage_root) == before


# --------------------------------------------------------------------------- move and rename


async def test_patch_moves_and_renames(v2, storage_root):
    """UpdateEntries: a child folder moved into a new parent under a new name in one PATCH."""
    a = await made(
        v2,
        1,
        {
            "name": "RepositoryApiClientIntegrationTest JS ParentFolder",
            "autoRename": True,
            "entryType": "Folder",
        },
    )
    b = await made(
        v2,
        1,
        {
            "name": "RepositoryApiClientIntegrationTest JS ChildFolder",
            "autoRename": True,
            "entryType": "Folder",
        },
    )
    (storage_root / b["name"] / "inner.txt").write_bytes(b"inner")
    moved_name = "RepositoryApiClientIntegrationTest JS MovedFolder"
    resp = await v2.patch(
        f"/Entries/{b['id']}", json={"parentId": a["id"], "name": moved_name, "autoRename": True}
    )
    assert resp.status == 200, await resp.text()
    moved = await resp.json()
    assert_v2_shape(moved)
    assert (moved["id"], moved["parentId"], moved["name"]) == (b["id"], a["id"], moved_name)
    assert moved["fullPath"] == f"\\{a['name']}\\{moved_name}"
    assert not (storage_root / b["name"]).exists()
    assert (storage_root / a["name"] / moved_name / "inner.txt").read_bytes() == b"inner"

    # rename alone
    resp = await v2.patch(f"/Entries/{b['id']}", json={"name": "Renamed"})
    assert resp.status == 200, await resp.text()
    renamed = await resp.json()
    assert (renamed["id"], renamed["parentId"], renamed["name"]) == (b["id"], a["id"], "Renamed")
    assert (storage_root / a["name"] / "Renamed" / "inner.txt").read_bytes() == b"inner"

    # a taken name: 409 without autoRename, `(2)` with it
    await folder(v2, a["id"], "Other")
    await assert_problem(await v2.patch(f"/Entries/{b['id']}", json={"name": "Other"}), 409)
    resp = await v2.patch(f"/Entries/{b['id']}", json={"name": "Other", "autoRename": True})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["name"] == "Other (2)"
    assert (storage_root / a["name"] / "Other (2)" / "inner.txt").read_bytes() == b"inner"


# --------------------------------------------------------------------------- import


async def test_import_names_from_request_or_file(v2, storage_root):
    resp = await import_doc(
        v2,
        1,
        CONTENT,
        filename="test.pdf",
        request={
            "name": "report.pdf",
            "autoRename": True,
            "importAsElectronicDocument": False,
            "generateImagePagesText": True,
        },
    )
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert_v2_shape(doc)
    assert (doc["entryType"], doc["name"], doc["parentId"]) == ("Document", "report.pdf", 1)
    assert doc["electronicDocumentSize"] == len(CONTENT)
    assert doc["extension"] == "pdf"
    assert (storage_root / "report.pdf").read_bytes() == CONTENT

    # no name in the request: the file's name
    resp = await import_doc(
        v2,
        1,
        b"from the file name",
        filename="notes.txt",
        content_type="text/plain",
        request={"autoRename": True},
    )
    assert resp.status == 201, await resp.text()
    doc2 = await resp.json()
    assert doc2["name"] == "notes.txt"
    assert (storage_root / "notes.txt").read_bytes() == b"from the file name"

    # autoRename on a taken name keeps the extension last
    resp = await import_doc(
        v2, 1, b"second", filename="x.pdf", request={"name": "report.pdf", "autoRename": True}
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["name"] == "report (2).pdf"
    assert (storage_root / "report (2).pdf").read_bytes() == b"second"
    assert (storage_root / "report.pdf").read_bytes() == CONTENT

    # the content is stored as given, never checked against its type
    dl = await v2.get(f"/Entries/{doc['id']}/{V2_EDOC}")
    assert dl.status == 200
    assert await dl.read() == CONTENT


async def test_import_taken_name_without_auto_rename_is_409(v2, storage_root):
    (storage_root / "report.pdf").write_bytes(b"first")
    before = visible(storage_root)
    resp = await import_doc(v2, 1, CONTENT, request={"name": "report.pdf", "autoRename": False})
    await assert_problem(resp, 409)
    assert visible(storage_root) == before


async def test_import_empty_file_is_400_problem(v2, storage_root):
    """ImportEntry.test.ts: a 0-byte file, no name in the request; a JSON problem, nothing made."""
    before = visible(storage_root)
    resp = await import_doc(
        v2,
        1,
        b"",
        filename="RepositoryApiClientIntegrationTest JS GetDocumentContent",
        content_type="application/json",
        request={"autoRename": True, "importAsElectronicDocument": False, "generateImagePagesText": True},
    )
    body = await assert_problem(resp, 400)
    assert "extensions" not in body
    assert visible(storage_root) == before
    assert part_files(storage_root) == []
    tmp = storage_root / HIDDEN / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


async def test_import_with_folder_path(root_r, storage_root):
    v2, r = root_r
    request = {
        "name": "RepositoryApiClientIntegrationTest JS ImportFolderPath",
        "autoRename": True,
        "importAsElectronicDocument": False,
        "generateImagePagesText": True,
        "folderPath": "A/B/C",
    }
    resp = await import_doc(v2, r["id"], CONTENT, request=request, params={"autoCreateFolderPath": "true"})
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert doc["id"] > 0
    c = await found(v2, f"{r['name']}\\A\\B\\C")
    assert await found(v2, f"{r['name']}\\A") is not None
    assert await found(v2, f"{r['name']}\\A\\B") is not None
    assert c is not None
    assert doc["parentId"] == c["id"]
    dl = await v2.get(f"/Entries/{doc['id']}/{V2_EDOC}")
    assert await dl.read() == CONTENT

    # an existing path needs no flag
    resp = await import_doc(
        v2,
        r["id"],
        b"again",
        request={**request, "folderPath": "A/B"},
        params={"autoCreateFolderPath": "false"},
    )
    assert resp.status == 201, await resp.text()
    b = await found(v2, f"{r['name']}\\A\\B")
    assert (await resp.json())["parentId"] == b["id"]

    # a missing path without it: 404, nothing created
    before = visible(storage_root)
    resp = await import_doc(
        v2,
        r["id"],
        CONTENT,
        request={**request, "folderPath": "X/Y"},
        params={"autoCreateFolderPath": "false"},
    )
    await assert_problem(resp, 404)
    assert await found(v2, f"{r['name']}\\X") is None
    assert visible(storage_root) == before

    # `..` or an empty segment: 400, nothing created
    for bad in ("A/../B", "A//B"):
        resp = await import_doc(
            v2,
            r["id"],
            CONTENT,
            request={**request, "folderPath": bad},
            params={"autoCreateFolderPath": "true"},
        )
        await assert_problem(resp, 400, "folderPath")
    assert visible(storage_root) == before

    # no folderPath: into R itself
    resp = await import_doc(v2, r["id"], CONTENT, request={"name": "plain.pdf"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["parentId"] == r["id"]


async def test_import_bad_requests_are_400(v2, storage_root):
    before = visible(storage_root)
    # no file part
    form = v2_import_form(None, request={"name": "x.txt"})
    await assert_problem(await v2.post("/Entries/1/Folder/Import", data=form), 400, "file")
    # a request part that is not a JSON object, or a name of the wrong type
    await assert_problem(await import_doc(v2, 1, CONTENT, request="{not json"), 400, "request")
    await assert_problem(await import_doc(v2, 1, CONTENT, request={"name": 5}), 400, "name")
    await assert_problem(await import_doc(v2, 1, CONTENT, request={"name": "a/b.txt"}), 400, "name")
    assert visible(storage_root) == before
    assert part_files(storage_root) == []
    # into a document, or a folder that is not there
    (storage_root / "doc.txt").write_bytes(b"d")
    doc = await v1_of(v2).by_path("\\doc.txt")
    before = visible(storage_root)
    await assert_problem(await import_doc(v2, doc["id"], CONTENT, request={"name": "x.txt"}), 400)
    await assert_problem(await import_doc(v2, 987654, CONTENT, request={"name": "x.txt"}), 404)
    assert visible(storage_root) == before


# --------------------------------------------------------------------------- download


async def test_document_edoc_download_and_range(v2, storage_root):
    data = os.urandom(10_000)
    (storage_root / "blob.bin").write_bytes(data)
    doc = await v1_of(v2).by_path("\\blob.bin")
    resp = await v2.get(f"/Entries/{doc['id']}/{V2_EDOC}")
    assert resp.status == 200, await resp.text()
    assert await resp.read() == data
    assert int(resp.headers["Content-Length"]) == len(data)

    resp = await v2.get(f"/Entries/{doc['id']}/{V2_EDOC}", headers={"Range": "bytes=100-199"})
    assert resp.status == 206
    assert await resp.read() == data[100:200]
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(data)}"

    resp = await v2.head(f"/Entries/{doc['id']}/{V2_EDOC}")
    assert resp.status == 200
    assert int(resp.headers["Content-Length"]) == len(data)
    assert await resp.read() == b""


# --------------------------------------------------------------------------- metadata (empty until issue 13)


@pytest.mark.parametrize("what", ["Fields", "Tags", "Links"])
async def test_metadata_lists_are_empty(v2, what):
    resp = await v2.get(f"/Entries/1/{what}")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["value"] == []
    await assert_problem(await v2.get(f"/Entries/987654/{what}"), 404)


# --------------------------------------------------------------------------- errors


async def test_unknown_repository_with_a_valid_token_is_404(v2):
    # the same token on the real repository's route is fine
    assert (await v2.get(f"/Entries/1/{V2_CHILDREN}")).status == 200
    for method, path in (
        ("GET", "/v2/Repositories/fakeRepo/Entries/1/Folder/Children"),
        ("GET", "/v2/Repositories/fakeRepo/Entries/1"),
        ("GET", "/v2/Repositories/fakeRepo/Tasks"),
        ("POST", "/v2/Repositories/fakeRepo/Entries/1/Folder/Children"),
    ):
        resp = await v2.client.request(
            method,
            path,
            headers=v2.headers,
            json={"name": "x", "entryType": "Folder"} if method == "POST" else None,
        )
        body = await assert_problem(resp, 404)
        assert PROBLEM_KEYS <= set(body)
        for member in ("title", "type", "instance", "errorSource", "traceId", "operationId"):
            assert body[member] is not None, (member, body)
        assert "extensions" not in body


async def test_missing_or_invalid_token_is_401(v2, storage_root):
    before = visible(storage_root)
    requests = [
        ("GET", "/Entries/1", None),
        ("GET", f"/Entries/1/{V2_CHILDREN}", None),
        ("POST", f"/Entries/1/{V2_CHILDREN}", {"name": "x", "entryType": "Folder"}),
        ("POST", "/Entries/1/Folder/Copy", {"sourceId": 1, "name": "x"}),
        ("PATCH", "/Entries/1", {"name": "x"}),
        ("GET", "/Entries/ByPath?fullPath=%5C", None),
        ("GET", "/Tasks", None),
        ("GET", "/Entries/1/Fields", None),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        for method, path, body in requests:
            resp = await v2.client.request(method, V2BASE + path, json=body, headers=headers)
            await assert_problem(resp, 401)
    assert visible(storage_root) == before


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"entryType": "Folder"}, "name"),
        ({"entryType": "Folder", "name": 5}, "name"),
        ({"entryType": "Folder", "name": ["x"]}, "name"),
        ({"entryType": "Folder", "name": ""}, "name"),
        ({"entryType": "Folder", "name": "a/b"}, "name"),
        ({"entryType": "Folder", "name": "a\\b"}, "name"),
        ({"entryType": "Folder", "name": ".."}, "name"),
        ({"entryType": "Banana", "name": "x"}, "entryType"),
        ({"entryType": 3, "name": "x"}, "entryType"),
        ({"entryType": "Folder", "name": "x", "autoRename": "yes"}, "autoRename"),
        ({"entryType": "Folder", "name": "x", "folderPath": 5}, "folderPath"),
        ({"entryType": "Shortcut", "name": "x"}, "targetId"),
        ({"entryType": "Shortcut", "name": "x", "targetId": "abc"}, "targetId"),
        ({"entryType": "Shortcut", "name": "x", "targetId": 1.5}, "targetId"),
        ({"entryType": "Shortcut", "name": "x", "targetId": True}, "targetId"),
    ],
)
async def test_create_bad_body_is_400_naming_the_field(v2, storage_root, body, field_name):
    (storage_root / "existing").mkdir()
    await v1_of(v2).by_path("\\existing")
    before = visible(storage_root)
    await assert_problem(await create(v2, 1, body), 400, field_name)
    assert visible(storage_root) == before


async def test_create_unreadable_body_or_query_is_400(v2, storage_root):
    before = visible(storage_root)
    for raw in (b"", b"{", b"[1, 2]", b"null"):
        resp = await v2.post(
            f"/Entries/1/{V2_CHILDREN}", data=raw, headers={"Content-Type": "application/json"}
        )
        await assert_problem(resp, 400)
    resp = await create(
        v2, 1, {"entryType": "Folder", "name": "x"}, params={"autoCreateFolderPath": "banana"}
    )
    await assert_problem(resp, 400, "autoCreateFolderPath")
    assert visible(storage_root) == before


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"name": "x"}, "sourceId"),
        ({"sourceId": "SRC", "name": "x"}, "sourceId"),
        ({"sourceId": True, "name": "x"}, "sourceId"),
        ({"sourceId": 1.5, "name": "x"}, "sourceId"),
        ({"sourceId": "<id>", "name": 5}, "name"),
        ({"sourceId": "<id>", "name": "a/b"}, "name"),
        ({"sourceId": "<id>", "name": "x", "autoRename": "no"}, "autoRename"),
    ],
)
async def test_copy_bad_body_is_400_naming_the_field(v2, storage_root, body, field_name):
    build_tree(storage_root / "Src")
    src = await v1_of(v2).by_path("\\Src")
    body = {k: (src["id"] if v == "<id>" else v) for k, v in body.items()}
    before = visible(storage_root)
    await assert_problem(await v2.post("/Entries/1/Folder/Copy", json=body), 400, field_name)
    assert visible(storage_root) == before


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"parentId": "x"}, "parentId"),
        ({"parentId": 1.5}, "parentId"),
        ({"name": 5}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x", "autoRename": "yes"}, "autoRename"),
    ],
)
async def test_patch_bad_body_is_400_naming_the_field(v2, storage_root, body, field_name):
    (storage_root / "A").mkdir()
    a = await v1_of(v2).by_path("\\A")
    before = visible(storage_root)
    await assert_problem(await v2.patch(f"/Entries/{a['id']}", json=body), 400, field_name)
    assert visible(storage_root) == before
