"""Shortcuts in both Laserfiche dialects (issue 12; CONTRACT-V2.md "Shortcuts", LF-V2-CLIENT.md §2.4 to 2.6,
/work/v2plan.md): created through `children` (v1) and `Folder/Children` (v2), listed, named like any entry,
copied as shortcuts to the same target, deleted without touching the target, 404 when read through after the
target is gone, left out of the Elements hub, kept across a restart.

In process over real sockets (`aiohttp_client`) and a real folder under tmp_path; the restart test runs
`python -m server` twice over the same root.
"""

from __future__ import annotations

import os
import signal

import aiohttp
import pytest
from conftest import (
    CHILDREN,
    EDOC,
    ENTRY_KEYS,
    V2_CHILDREN,
    V2_EDOC,
    V2BASE,
    Api,
    assert_problem,
    assert_v2_shape,
    disk_tree,
    sign_in,
    start_v2_task,
    tree_snapshot,
    v2_children,
    v2_import_form,
    v2_of,
    wait_v2_task,
)
from test_operations import COPY_SHORT, copy_token, delete_token, wait_done
from test_restart import RemoteClient

HUB = "/elements/api-v2/hubs/documents"
# the default Elements credentials (Settings' defaults, printed in the banner)
HUB_AUTH = {"Authorization": "User sandbox-user-secret, Element sandbox-element-token"}
V1_SHORTCUT_KEYS = ENTRY_KEYS | {"targetId", "targetType", "extension"}


@pytest.fixture
def v2(api: Api) -> Api:
    return v2_of(api)


def visible(root) -> list:
    return tree_snapshot(root, exclude_hidden_of=root)


async def v1_shortcut_resp(api: Api, parent_id: int, name: str, target_id, auto_rename: bool | None = None):
    params = {} if auto_rename is None else {"autoRename": "true" if auto_rename else "false"}
    return await api.post(
        f"/Entries/{parent_id}/{CHILDREN}",
        json={"entryType": "Shortcut", "name": name, "targetId": target_id},
        params=params,
    )


async def v1_shortcut(api: Api, parent_id: int, name: str, target_id: int, **kw) -> dict:
    resp = await v1_shortcut_resp(api, parent_id, name, target_id, **kw)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def v2_shortcut_resp(v2: Api, parent_id: int, name: str, target_id, auto_rename: bool = False, **extra):
    body = {"name": name, "autoRename": auto_rename, "entryType": "Shortcut", "targetId": target_id, **extra}
    params = {}
    if "folderPath" in extra:
        params["autoCreateFolderPath"] = "true"
    return await v2.post(f"/Entries/{parent_id}/{V2_CHILDREN}", json=body, params=params)


async def v2_shortcut(v2: Api, parent_id: int, name: str, target_id: int, **kw) -> dict:
    resp = await v2_shortcut_resp(v2, parent_id, name, target_id, **kw)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def assert_shortcut(entry: dict, target_id: int, target_type: str, parent_id: int | None = None) -> None:
    assert entry["entryType"] == "Shortcut", entry
    assert entry["targetId"] == target_id, entry
    assert entry["targetType"] == target_type, entry
    if parent_id is not None:
        assert entry["parentId"] == parent_id, entry


def assert_placeholder(path) -> None:
    """On disk a shortcut is a small regular file named like the entry, never a symlink."""
    assert path.exists() and not path.is_symlink(), path
    assert path.is_file(), path


async def setup_tree(api: Api, storage_root) -> dict:
    """Folders F (a document inside) and T (two files), a document D at the top: their v1 entries."""
    (storage_root / "F").mkdir()
    (storage_root / "F" / "a.txt").write_bytes(b"a in F")
    (storage_root / "T" / "deep").mkdir(parents=True)
    (storage_root / "T" / "t.txt").write_bytes(b"t in T")
    (storage_root / "T" / "deep" / "d.bin").write_bytes(os.urandom(5000))
    (storage_root / "D.pdf").write_bytes(b"%PDF-1.4 target document " + os.urandom(3000))
    return {name: await api.by_path("\\" + name) for name in ("F", "T", "D.pdf")}


# --------------------------------------------------------------------------- create and list


async def test_create_in_v1_and_list(api, storage_root):
    e = await setup_tree(api, storage_root)
    to_doc = await v1_shortcut(api, e["F"]["id"], "to D", e["D.pdf"]["id"])
    to_folder = await v1_shortcut(api, e["F"]["id"], "to T", e["T"]["id"])
    assert set(to_doc) >= V1_SHORTCUT_KEYS, to_doc
    assert_shortcut(to_doc, e["D.pdf"]["id"], "Document", e["F"]["id"])
    assert_shortcut(to_folder, e["T"]["id"], "Folder", e["F"]["id"])
    assert to_doc["name"] == "to D"
    assert to_doc["fullPath"] == "\\F\\to D"
    assert to_doc["id"] not in (e["D.pdf"]["id"], to_folder["id"])
    assert_placeholder(storage_root / "F" / "to D")
    assert_placeholder(storage_root / "F" / "to T")

    # read back by id and by path, and listed with the folder's other children
    assert_shortcut(await api.entry(to_doc["id"]), e["D.pdf"]["id"], "Document", e["F"]["id"])
    assert (await api.by_path("\\F\\to T"))["id"] == to_folder["id"]
    listed = {c["name"]: c for c in await api.children(e["F"]["id"])}
    assert set(listed) == {"a.txt", "to D", "to T"}
    assert_shortcut(listed["to D"], e["D.pdf"]["id"], "Document")
    assert_shortcut(listed["to T"], e["T"]["id"], "Folder")
    assert listed["a.txt"]["entryType"] == "Document"

    # the other dialect sees the same entries
    v2 = v2_of(api)
    entry = await v2.entry(to_doc["id"])
    assert_v2_shape(entry)
    assert_shortcut(entry, e["D.pdf"]["id"], "Document", e["F"]["id"])


async def test_create_in_v2_and_list(api, storage_root):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    body = {
        "name": "RepositoryApiClientIntegrationTest JS CreateShortcut",
        "autoRename": True,
        "entryType": "Shortcut",
        "targetId": e["D.pdf"]["id"],
    }
    resp = await v2.post(f"/Entries/{e['F']['id']}/{V2_CHILDREN}", json=body)
    assert resp.status == 201, await resp.text()
    sc = await resp.json()
    assert_v2_shape(sc)
    assert_shortcut(sc, e["D.pdf"]["id"], "Document", e["F"]["id"])
    assert sc["name"] == body["name"]
    assert_placeholder(storage_root / "F" / body["name"])

    to_t = await v2_shortcut(v2, e["F"]["id"], "to T", e["T"]["id"])
    assert_shortcut(to_t, e["T"]["id"], "Folder", e["F"]["id"])

    listed = {c["name"]: c for c in await v2_children(v2, e["F"]["id"])}
    assert set(listed) == {"a.txt", body["name"], "to T"}
    assert_v2_shape(listed["to T"])
    assert_shortcut(listed["to T"], e["T"]["id"], "Folder")
    assert {c["name"] for c in await api.children(e["F"]["id"])} == set(listed)

    # childInfo counts the shortcuts as shortcuts
    resp = await v2.get(f"/Entries/{e['F']['id']}", params={"includeChildInfo": "true"})
    info = (await resp.json())["childInfo"]
    assert (info["childCount"], info["documentCount"], info["folderCount"], info["shortcutCount"]) == (
        3,
        1,
        0,
        2,
    )
    assert info["hasChildren"] is True


async def test_shortcut_inside_the_folder_it_points_to(api, storage_root):
    """CreateEntry / CopyEntry: a shortcut in F to F, then F/Copy of that shortcut into F."""
    v2 = v2_of(api)
    f = await api.mkdir(1, "RepositoryApiClientIntegrationTest JS CreateFolder")
    sc = await v2_shortcut(
        v2, f["id"], "RepositoryApiClientIntegrationTest JS CreateShortcut", f["id"], auto_rename=True
    )
    assert_shortcut(sc, f["id"], "Folder", f["id"])

    resp = await v2.post(
        f"/Entries/{f['id']}/Folder/Copy",
        json={
            "name": "RepositoryApiClientIntegrationTest JS CopiedEntry",
            "autoRename": True,
            "sourceId": sc["id"],
        },
    )
    assert resp.status == 201, await resp.text()
    copied = await resp.json()
    assert_shortcut(copied, f["id"], "Folder", f["id"])
    assert copied["id"] != sc["id"]
    names = {c["name"] for c in await v2_children(v2, f["id"])}
    assert names == {sc["name"], copied["name"]}
    # in v1 too
    sc1 = await v1_shortcut(api, f["id"], "v1 self", f["id"])
    assert_shortcut(sc1, f["id"], "Folder", f["id"])


async def test_shortcut_with_folder_path(api, storage_root):
    v2 = v2_of(api)
    r = await api.mkdir(1, "APIServer_JS_CreateEntryFolderPath_" + "ab" * 16)
    sc = await v2_shortcut(v2, r["id"], "Sc", r["id"], folderPath="A/B")
    b = await api.by_path(f"\\{r['name']}\\A\\B")
    assert_shortcut(sc, r["id"], "Folder", b["id"])
    assert (await api.by_path(f"\\{r['name']}\\A\\B\\Sc"))["id"] == sc["id"]
    assert_placeholder(storage_root / r["name"] / "A" / "B" / "Sc")


async def test_shortcut_name_conflicts_like_any_entry(api, storage_root):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    sc = await v2_shortcut(v2, e["F"]["id"], "S", e["D.pdf"]["id"])
    placeholder = (storage_root / "F" / "S").read_bytes()
    before = visible(storage_root)

    # a folder, another shortcut, a document: each refused under the shortcut's name
    await assert_problem(
        await v2.post(f"/Entries/{e['F']['id']}/{V2_CHILDREN}", json={"name": "S", "entryType": "Folder"}),
        409,
    )
    await assert_problem(await api.create_folder(e["F"]["id"], "S"), 409)
    await assert_problem(await v2_shortcut_resp(v2, e["F"]["id"], "S", e["T"]["id"]), 409)
    await assert_problem(await v1_shortcut_resp(api, e["F"]["id"], "S", e["T"]["id"]), 409)
    resp = await api.import_doc(e["F"]["id"], "S", b"intruder")
    assert resp.status in (400, 409), await resp.text()
    form = v2_import_form(b"intruder", request={"name": "S", "autoRename": False})
    await assert_problem(await v2.post(f"/Entries/{e['F']['id']}/Folder/Import", data=form), 409)
    # a shortcut may not take an existing entry's name either
    await assert_problem(await v2_shortcut_resp(v2, e["F"]["id"], "a.txt", e["T"]["id"]), 409)
    assert visible(storage_root) == before
    assert (storage_root / "F" / "S").read_bytes() == placeholder
    assert_shortcut(await v2.entry(sc["id"]), e["D.pdf"]["id"], "Document")

    # autoRename picks the next free name, in both dialects
    second = await v2_shortcut(v2, e["F"]["id"], "S", e["T"]["id"], auto_rename=True)
    assert second["name"] == "S (2)"
    third = await v1_shortcut(api, e["F"]["id"], "S", e["T"]["id"], auto_rename=True)
    assert third["name"] == "S (3)"
    folder = await api.create_folder(e["F"]["id"], "S", auto_rename=True)
    assert folder.status == 201
    assert (await folder.json())["name"] == "S (4)"


async def test_shortcut_to_an_unknown_target_is_404(api, storage_root):
    e = await setup_tree(api, storage_root)
    before = visible(storage_root)
    await assert_problem(await v1_shortcut_resp(api, e["F"]["id"], "nowhere", 987654), 404)
    await assert_problem(await v2_shortcut_resp(v2_of(api), e["F"]["id"], "nowhere", 987654), 404)
    # into a folder that is not there
    await assert_problem(await v2_shortcut_resp(v2_of(api), 987654, "x", e["T"]["id"]), 404)
    # with a folderPath to create: the target is refused before any folder is made
    resp = await v2_shortcut_resp(v2_of(api), e["F"]["id"], "sc", 987654, folderPath="New/Deep")
    await assert_problem(resp, 404, "target")
    assert visible(storage_root) == before
    assert {c["name"] for c in await api.children(e["F"]["id"])} == {"a.txt"}


# --------------------------------------------------------------------------- reading through


async def test_reading_through_a_shortcut_gives_the_targets_bytes(api, storage_root):
    e = await setup_tree(api, storage_root)
    data = (storage_root / "D.pdf").read_bytes()
    sc1 = await v1_shortcut(api, e["F"]["id"], "v1 to D", e["D.pdf"]["id"])
    sc2 = await v2_shortcut(v2_of(api), e["F"]["id"], "v2 to D", e["D.pdf"]["id"])
    v2 = v2_of(api)
    for sc in (sc1, sc2):
        resp = await api.get(f"/Entries/{sc['id']}/{EDOC}")
        assert resp.status == 200, await resp.text()
        assert await resp.read() == data
        resp = await v2.get(f"/Entries/{sc['id']}/{V2_EDOC}")
        assert resp.status == 200, await resp.text()
        assert await resp.read() == data
        resp = await v2.get(f"/Entries/{sc['id']}/{V2_EDOC}", headers={"Range": "bytes=10-19"})
        assert resp.status == 206
        assert await resp.read() == data[10:20]
    # a shortcut to a shortcut leads on to the document; once the document goes, through either
    # shortcut is 404 while both still answer
    chain = await v2_shortcut(v2, e["F"]["id"], "to v2 to D", sc2["id"])
    assert (chain["targetId"], chain["targetType"]) == (sc2["id"], "Shortcut")
    resp = await v2.get(f"/Entries/{chain['id']}/{V2_EDOC}")
    assert resp.status == 200, await resp.text()
    assert await resp.read() == data
    # the target is what it was
    assert (storage_root / "D.pdf").read_bytes() == data
    (storage_root / "D.pdf").unlink()
    for sc in (sc2, chain):
        await assert_problem(await v2.get(f"/Entries/{sc['id']}/{V2_EDOC}"), 404, "no longer exists")
        assert (await v2.get(f"/Entries/{sc['id']}")).status == 200


# --------------------------------------------------------------------------- copy


async def test_copying_a_shortcut_makes_a_shortcut(api, storage_root):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    data = (storage_root / "D.pdf").read_bytes()
    sc = await v1_shortcut(api, e["F"]["id"], "to D", e["D.pdf"]["id"])
    dest = await api.mkdir(1, "Dest")
    copies: list[dict] = []

    # v1, synchronous (children with sourceId)
    resp = await api.post(f"/Entries/{dest['id']}/{CHILDREN}", json={"sourceId": sc["id"], "name": "v1 sync"})
    assert resp.status == 201, await resp.text()
    copies.append(await resp.json())

    # v2, synchronous
    resp = await v2.post(
        f"/Entries/{dest['id']}/Folder/Copy",
        json={"sourceId": sc["id"], "name": "v2 sync", "autoRename": False},
    )
    assert resp.status == 201, await resp.text()
    copies.append(await resp.json())

    # v1 CopyAsync
    token = await copy_token(api, dest["id"], sc["id"], "v1 async", route=COPY_SHORT)
    _, resp, body = await wait_done(api, token)
    assert resp.status == 302, body
    copies.append(await api.entry(int(resp.headers["Location"].rsplit("/", 1)[1])))

    # v2 CopyAsync
    task_id = await start_v2_task(
        await v2.post(
            f"/Entries/{dest['id']}/Folder/CopyAsync", json={"sourceId": sc["id"], "name": "v2 async"}
        )
    )
    task = await wait_v2_task(v2, task_id)
    assert task["status"] == "Completed", task
    copies.append(await v2.entry(task["result"]["entryId"]))

    assert [c["name"] for c in copies] == ["v1 sync", "v2 sync", "v1 async", "v2 async"]
    for c in copies:
        assert_shortcut(c, e["D.pdf"]["id"], "Document", dest["id"])
        assert c["id"] != sc["id"]
        assert_placeholder(storage_root / "Dest" / c["name"])
        resp = await v2.get(f"/Entries/{c['id']}/{V2_EDOC}")
        assert resp.status == 200
        assert await resp.read() == data
    listed = {c["name"]: c for c in await v2_children(v2, dest["id"])}
    assert set(listed) == {"v1 sync", "v2 sync", "v1 async", "v2 async"}
    assert all(c["entryType"] == "Shortcut" for c in listed.values())
    # the original and its target are untouched; no document was made from the target's bytes
    assert_shortcut(await api.entry(sc["id"]), e["D.pdf"]["id"], "Document")
    assert (storage_root / "D.pdf").read_bytes() == data


@pytest.mark.parametrize("how", ["v2 CopyAsync", "v2 Copy", "v1 CopyAsync"])
async def test_copied_folder_keeps_its_shortcuts_targets(api, storage_root, how):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    src = await api.mkdir(1, "Src")
    (storage_root / "Src" / "inner.txt").write_bytes(b"inner")
    inner = await api.by_path("\\Src\\inner.txt")
    sub = await api.mkdir(src["id"], "sub")
    await v2_shortcut(v2, src["id"], "to inner", inner["id"])  # a target inside the copied folder
    await v2_shortcut(v2, src["id"], "to D", e["D.pdf"]["id"])  # and one outside it
    await v1_shortcut(api, sub["id"], "to T", e["T"]["id"])

    if how == "v2 CopyAsync":
        task_id = await start_v2_task(
            await v2.post("/Entries/1/Folder/CopyAsync", json={"sourceId": src["id"], "name": "Copy"})
        )
        task = await wait_v2_task(v2, task_id)
        assert task["status"] == "Completed", task
        copy_id = task["result"]["entryId"]
    elif how == "v2 Copy":
        resp = await v2.post("/Entries/1/Folder/Copy", json={"sourceId": src["id"], "name": "Copy"})
        assert resp.status == 201, await resp.text()
        copy_id = (await resp.json())["id"]
    else:
        token = await copy_token(api, 1, src["id"], "Copy", route=COPY_SHORT)
        _, resp, body = await wait_done(api, token)
        assert resp.status == 302, body
        copy_id = int(resp.headers["Location"].rsplit("/", 1)[1])

    top = {c["name"]: c for c in await v2_children(v2, copy_id)}
    assert set(top) == {"inner.txt", "sub", "to inner", "to D"}
    copied_inner = top["inner.txt"]
    assert copied_inner["id"] != inner["id"]
    # they point where the originals pointed: the original inner document, not its copy
    assert_shortcut(top["to inner"], inner["id"], "Document")
    assert_shortcut(top["to D"], e["D.pdf"]["id"], "Document")
    deep = {c["name"]: c for c in await v2_children(v2, top["sub"]["id"])}
    assert set(deep) == {"to T"}
    assert_shortcut(deep["to T"], e["T"]["id"], "Folder")
    for rel in ("to inner", "to D", "sub/to T"):
        assert_placeholder(storage_root / "Copy" / rel)
    assert (storage_root / "Copy" / "inner.txt").read_bytes() == b"inner"
    # reading through a copied shortcut reads its target
    resp = await v2.get(f"/Entries/{top['to inner']['id']}/{V2_EDOC}")
    assert await resp.read() == b"inner"


# --------------------------------------------------------------------------- delete


async def test_deleting_a_shortcut_leaves_its_target(api, storage_root):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    to_t = await v2_shortcut(v2, e["F"]["id"], "to T", e["T"]["id"])
    to_d = await v1_shortcut(api, e["F"]["id"], "to D", e["D.pdf"]["id"])
    t_before = disk_tree(storage_root / "T")
    d_before = (storage_root / "D.pdf").read_bytes()

    # v2: DELETE Entries -> 202 {taskId}, the task completes
    resp = await v2.request("DELETE", f"/Entries/{to_t['id']}", json={})
    task = await wait_v2_task(v2, await start_v2_task(resp))
    assert task["status"] == "Completed", task
    assert task["taskType"] == "DeleteEntry"
    # v1: DELETE Entries -> {token}
    token = await delete_token(api, to_d["id"])
    _, resp, body = await wait_done(api, token, "DeleteEntry")
    assert resp.status == 200 and body["status"] == "Completed", body

    for sc in (to_t, to_d):
        await assert_problem(await v2.get(f"/Entries/{sc['id']}"), 404)
        await assert_problem(await api.get(f"/Entries/{sc['id']}"), 404)
    assert not (storage_root / "F" / "to T").exists()
    assert not (storage_root / "F" / "to D").exists()
    # the targets: every file as it was, and their entries answer
    assert disk_tree(storage_root / "T") == t_before
    assert (storage_root / "D.pdf").read_bytes() == d_before
    assert (await v2.entry(e["T"]["id"]))["entryType"] == "Folder"
    assert (await v2.entry(e["D.pdf"]["id"]))["entryType"] == "Document"
    assert {c["name"] for c in await v2_children(v2, e["F"]["id"])} == {"a.txt"}


async def test_deleting_a_folder_with_a_shortcut_to_outside_leaves_the_target(api, storage_root):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    await v2_shortcut(v2, e["F"]["id"], "to T", e["T"]["id"])
    t_before = disk_tree(storage_root / "T")
    task = await wait_v2_task(v2, await start_v2_task(await v2.request("DELETE", f"/Entries/{e['F']['id']}")))
    assert task["status"] == "Completed", task
    assert not (storage_root / "F").exists()
    assert disk_tree(storage_root / "T") == t_before


async def test_target_gone_reading_through_is_404(api, storage_root):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    sc = await v2_shortcut(v2, e["F"]["id"], "to D", e["D.pdf"]["id"])
    resp = await v2.get(f"/Entries/{sc['id']}/{V2_EDOC}")
    assert resp.status == 200  # it reads while the target is there

    task = await wait_v2_task(
        v2, await start_v2_task(await v2.request("DELETE", f"/Entries/{e['D.pdf']['id']}"))
    )
    assert task["status"] == "Completed", task
    assert not (storage_root / "D.pdf").exists()

    await assert_problem(await api.get(f"/Entries/{sc['id']}/{EDOC}"), 404)
    await assert_problem(await v2.get(f"/Entries/{sc['id']}/{V2_EDOC}"), 404)
    # the shortcut itself still answers, pointing at what was there
    entry = await v2.entry(sc["id"])
    assert entry["entryType"] == "Shortcut"
    assert entry["targetId"] == e["D.pdf"]["id"]
    assert "to D" in {c["name"] for c in await v2_children(v2, e["F"]["id"])}
    assert_placeholder(storage_root / "F" / "to D")


# --------------------------------------------------------------------------- Elements hub


async def test_elements_hub_leaves_shortcuts_out(api, client, storage_root):
    e = await setup_tree(api, storage_root)
    v2 = v2_of(api)
    await v2_shortcut(v2, e["F"]["id"], "to D", e["D.pdf"]["id"])
    await v1_shortcut(api, 1, "top shortcut", e["T"]["id"])
    # both made: the v1 listing shows them
    assert "top shortcut" in {c["name"] for c in await api.children(1)}

    resp = await client.get(f"{HUB}/folders/contents", params={"path": "/F"}, headers=HUB_AUTH)
    assert resp.status == 200, await resp.text()
    assert {item["name"] for item in await resp.json()} == {"a.txt"}
    resp = await client.get(f"{HUB}/folders/contents", params={"path": "/"}, headers=HUB_AUTH)
    assert resp.status == 200, await resp.text()
    assert {item["name"] for item in await resp.json()} == {"F", "T", "D.pdf"}


async def test_elements_hub_copies_and_deletes_report_no_shortcuts(api, client, storage_root):
    """What the hub reports of a copy or delete (its events) leaves shortcuts out as its listings
    do; the shortcuts are copied and deleted all the same."""
    e = await setup_tree(api, storage_root)
    await v1_shortcut(api, e["F"]["id"], "to D", e["D.pdf"]["id"])
    resp = await client.post(
        f"{HUB}/folders/copy", params={"path": "/F"}, json={"path": "/F copy"}, headers=HUB_AUTH
    )
    assert resp.status == 200, await resp.text()
    copied = await api.by_path("\\F copy\\to D")
    assert copied["entryType"] == "Shortcut" and copied["targetId"] == e["D.pdf"]["id"]
    resp = await client.delete(f"{HUB}/folders", params={"path": "/F copy"}, headers=HUB_AUTH)
    assert resp.status == 200, await resp.text()
    reported = {event["metadata"]["path"] for event in (await resp.json())["events"]}
    assert reported == {"/F copy", "/F copy/a.txt"}
    assert not (storage_root / "F copy").exists()
    assert (storage_root / "D.pdf").exists()


# --------------------------------------------------------------------------- restart


async def test_shortcut_survives_a_restart(server_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "F").mkdir()
    data = b"the target's bytes " + os.urandom(1000)
    (root / "D.txt").write_bytes(data)
    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        remote = RemoteClient(session, server.base_url)
        v2 = Api(remote, await sign_in(remote), base=V2BASE)
        f = await v2.by_path("\\F")
        d = await v2.by_path("\\D.txt")
        sc = await v2_shortcut(v2, f["id"], "to D", d["id"])
        sc_folder = await v2_shortcut(v2, f["id"], "to F", f["id"])
    assert server.stop(signal.SIGTERM) == 0

    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        remote = RemoteClient(session, server.base_url)
        v2 = Api(remote, await sign_in(remote), base=V2BASE)
        assert_shortcut(await v2.entry(sc["id"]), d["id"], "Document", f["id"])
        assert_shortcut(await v2.entry(sc_folder["id"]), f["id"], "Folder", f["id"])
        listed = {c["name"]: c for c in await v2_children(v2, f["id"])}
        assert set(listed) == {"to D", "to F"}
        assert listed["to D"]["id"] == sc["id"]
        resp = await v2.get(f"/Entries/{sc['id']}/{V2_EDOC}")
        assert resp.status == 200
        assert await resp.read() == data
        v1 = Api(remote, v2.token)
        assert_shortcut(await v1.entry(sc["id"]), d["id"], "Document", f["id"])
    assert server.stop(signal.SIGTERM) == 0
