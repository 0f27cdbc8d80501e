"""Reading entries: by id, by path, children listings with paging, ordering, $select, $count."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from conftest import (
    CHILDREN,
    HIDDEN,
    Api,
    assert_entry_shape,
    assert_problem,
    make_settings,
    sign_in,
)
from yarl import URL

from server.app import create_app


def _iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    assert dt.tzinfo is not None, f"timestamp without offset: {value}"
    return dt


# --------------------------------------------------------------------------- by id


async def test_root_folder_is_entry_1(api):
    root = await api.entry(1)
    assert_entry_shape(root)
    assert root["id"] == 1
    assert root["name"] == ""
    assert root["fullPath"] == "\\"
    assert root["entryType"] == "Folder"
    assert root["parentId"] == 0
    assert root["isContainer"] is True
    assert root["isLeaf"] is False


async def test_folder_entry_shape(api, storage_root):
    (storage_root / "Invoices" / "2026").mkdir(parents=True)
    inv = await api.by_path("\\Invoices")
    sub = await api.by_path("\\Invoices\\2026")
    for e in (inv, sub):
        assert_entry_shape(e)
        assert e["entryType"] == "Folder"
        assert e["isContainer"] is True and e["isLeaf"] is False
        assert e["isRecordFolder"] is False and e["isUnderRecordSeries"] is False
        assert e["templateName"] == "" and e["templateId"] == 0
        assert e["templateFieldNames"] == [] and e["fields"] == []
        _iso(e["creationTime"])
        _iso(e["lastModifiedTime"])
    assert inv["name"] == "Invoices"
    assert inv["parentId"] == 1
    assert inv["fullPath"] == "\\Invoices"
    assert inv["folderPath"] == "\\"
    assert sub["name"] == "2026"
    assert sub["parentId"] == inv["id"]
    assert sub["fullPath"] == "\\Invoices\\2026"
    assert sub["folderPath"] == "\\Invoices"
    assert sub["id"] not in (1, inv["id"])
    assert (await api.entry(sub["id"])) == sub


async def test_document_entry_shape(api, storage_root):
    (storage_root / "A").mkdir()
    data = b"hello, laserfiche\n"
    (storage_root / "A" / "b.txt").write_bytes(data)
    doc = await api.by_path("\\A\\b.txt")
    assert_entry_shape(doc)
    assert doc["entryType"] == "Document"
    assert doc["name"] == "b.txt"
    assert doc["fullPath"] == "\\A\\b.txt"
    assert doc["folderPath"] == "\\A"
    assert doc["elecDocumentSize"] == len(data)
    assert doc["extension"] == "txt"
    assert doc["mimeType"].startswith("text/plain")
    assert doc["isElectronicDocument"] is True
    assert doc["pageCount"] == 0
    assert doc["isCheckedOut"] is False
    assert doc["isUnderVersionControl"] is False
    assert doc["isRecord"] is False
    assert doc["isContainer"] is False and doc["isLeaf"] is True
    folder = await api.by_path("\\A")
    assert doc["parentId"] == folder["id"]
    assert await api.entry(doc["id"]) == doc


async def test_document_without_extension(api, storage_root):
    (storage_root / "README").write_bytes(b"x")
    doc = await api.by_path("\\README")
    assert doc["entryType"] == "Document"
    assert doc["extension"] == ""
    assert isinstance(doc["mimeType"], str)


async def test_timestamps_follow_disk(api, storage_root):
    p = storage_root / "old.txt"
    p.write_bytes(b"x")
    os.utime(p, (1_700_000_000, 1_700_000_000))
    doc = await api.by_path("\\old.txt")
    assert abs(_iso(doc["lastModifiedTime"]).timestamp() - 1_700_000_000) < 2


async def test_unknown_id_is_404(api):
    await assert_problem(await api.get("/Entries/987654"), 404)


async def test_id_zero_is_404(api):
    await assert_problem(await api.get("/Entries/0"), 404)


@pytest.mark.parametrize("bad", ["abc", "1.5", "-1"])
async def test_non_integer_id_is_problem(api, bad):
    await assert_problem(await api.get(f"/Entries/{bad}"), (400, 404))


async def test_select_on_single_entry(api, storage_root):
    (storage_root / "d.txt").write_bytes(b"abc")
    doc = await api.by_path("\\d.txt")
    resp = await api.get(f"/Entries/{doc['id']}", params={"$select": "name"})
    assert resp.status == 200
    # $select always brings id, name, entryType and rowNumber (the v1 folder-listing guide)
    assert await resp.json() == {"name": "d.txt", "id": doc["id"], "entryType": "Document", "rowNumber": 0}


# --------------------------------------------------------------------------- by path


async def test_by_path_root(api):
    resp = await api.get("/Entries/ByPath", params={"fullPath": "\\"})
    assert resp.status == 200
    body = await resp.json()
    assert body["entry"]["id"] == 1


async def test_by_path_found_has_no_ancestor(api, storage_root):
    (storage_root / "A" / "B").mkdir(parents=True)
    resp = await api.get(
        "/Entries/ByPath", params={"fullPath": "\\A\\B", "fallbackToClosestAncestor": "true"}
    )
    assert resp.status == 200
    body = await resp.json()
    assert "entry" in body and "ancestorEntry" in body
    assert body["entry"]["name"] == "B"
    assert body["entry"]["fullPath"] == "\\A\\B"
    assert body["ancestorEntry"] is None


async def test_by_path_not_found_is_404(api, storage_root):
    (storage_root / "A").mkdir()
    await assert_problem(await api.get("/Entries/ByPath", params={"fullPath": "\\A\\nope"}), 404)
    await assert_problem(
        await api.get(
            "/Entries/ByPath", params={"fullPath": "\\A\\nope", "fallbackToClosestAncestor": "false"}
        ),
        404,
    )


async def test_by_path_fallback_to_closest_ancestor(api, storage_root):
    (storage_root / "A" / "B").mkdir(parents=True)
    b = await api.by_path("\\A\\B")
    resp = await api.get(
        "/Entries/ByPath", params={"fullPath": "\\A\\B\\C\\D", "fallbackToClosestAncestor": "true"}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["entry"] is None
    assert body["ancestorEntry"]["id"] == b["id"]
    assert body["ancestorEntry"]["fullPath"] == "\\A\\B"
    assert_entry_shape(body["ancestorEntry"])


async def test_by_path_fallback_through_document_stops_at_folder(api, storage_root):
    (storage_root / "A").mkdir()
    (storage_root / "A" / "f.txt").write_bytes(b"x")
    resp = await api.get(
        "/Entries/ByPath", params={"fullPath": "\\A\\f.txt\\x", "fallbackToClosestAncestor": "true"}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["entry"] is None
    assert body["ancestorEntry"]["fullPath"] in ("\\A", "\\A\\f.txt")


async def test_by_path_missing_parameter_is_400(api):
    await assert_problem(await api.get("/Entries/ByPath"), 400, "fullPath")


async def test_by_path_bad_fallback_value_is_400(api):
    resp = await api.get("/Entries/ByPath", params={"fullPath": "\\", "fallbackToClosestAncestor": "maybe"})
    await assert_problem(resp, 400, "fallbackToClosestAncestor")


async def test_by_path_hides_store(api):
    await assert_problem(await api.get("/Entries/ByPath", params={"fullPath": "\\" + HIDDEN}), 404)


async def test_by_path_and_id_agree_for_unicode_names(api, storage_root):
    name = "Über café - 東京 \u2013.txt"
    (storage_root / name).write_bytes(b"u")
    doc = await api.by_path("\\" + name)
    assert doc["name"] == name
    assert (await api.entry(doc["id"]))["fullPath"] == "\\" + name


# --------------------------------------------------------------------------- children


async def test_children_lists_disk_content(api, storage_root):
    (storage_root / "F1").mkdir()
    (storage_root / "F2").mkdir()
    (storage_root / "a.txt").write_bytes(b"aaa")
    (storage_root / "F1" / "inner.txt").write_bytes(b"i")
    resp = await api.get(f"/Entries/1/{CHILDREN}")
    assert resp.status == 200
    body = await resp.json()
    assert "@odata.nextLink" not in body
    assert "@odata.count" not in body
    names = {e["name"]: e for e in body["value"]}
    assert set(names) == {"F1", "F2", "a.txt"}
    for e in body["value"]:
        assert_entry_shape(e)
        assert e["parentId"] == 1
        assert e["folderPath"] == "\\"
    assert names["F1"]["entryType"] == "Folder"
    assert names["a.txt"]["entryType"] == "Document"
    assert names["a.txt"]["elecDocumentSize"] == 3
    inner = await api.children(names["F1"]["id"])
    assert [e["name"] for e in inner] == ["inner.txt"]
    assert inner[0]["parentId"] == names["F1"]["id"]
    assert inner[0]["fullPath"] == "\\F1\\inner.txt"


async def test_children_ids_are_stable_between_listings(api, storage_root):
    for n in ("x", "y", "z"):
        (storage_root / n).mkdir()
    first = {e["name"]: e["id"] for e in await api.children(1)}
    second = {e["name"]: e["id"] for e in await api.children(1)}
    assert first == second
    assert len(set(first.values())) == 3
    assert 1 not in first.values()


async def test_a_listing_after_changes_elsewhere_shows_the_folders_own_changes(api, storage_root):
    """Rows read again after a change elsewhere in the store are reused where they are the same:
    what changed in the folder itself (a rename through the API, a file edited by hand) shows,
    the rest lists as before."""
    (storage_root / "listed").mkdir()
    for n in range(5):
        (storage_root / "listed" / f"doc{n}.txt").write_bytes(b"x")
    (storage_root / "elsewhere").mkdir()
    folder = await api.by_path("\\listed")
    before = {e["name"]: e for e in await api.children(folder["id"])}
    elsewhere = await api.by_path("\\elsewhere")
    assert (await api.create_folder(elsewhere["id"], "new")).status == 201
    renamed = before["doc1.txt"]["id"]
    assert (await api.patch(f"/Entries/{renamed}", json={"name": "renamed.txt"})).status == 200
    (storage_root / "listed" / "doc2.txt").write_bytes(b"longer now")
    after = {e["name"]: e for e in await api.children(folder["id"])}
    assert sorted(after) == ["doc0.txt", "doc2.txt", "doc3.txt", "doc4.txt", "renamed.txt"]
    assert after["renamed.txt"]["id"] == renamed
    assert after["doc2.txt"]["elecDocumentSize"] == len(b"longer now")
    for name in ("doc0.txt", "doc3.txt", "doc4.txt"):  # (numbered anew: renamed.txt sorts last)
        assert after[name] | {"rowNumber": 0} == before[name] | {"rowNumber": 0}


async def test_children_empty_folder(api, storage_root):
    (storage_root / "empty").mkdir()
    e = await api.by_path("\\empty")
    resp = await api.get(f"/Entries/{e['id']}/{CHILDREN}", params={"$count": "true"})
    assert resp.status == 200
    body = await resp.json()
    assert body["value"] == []
    assert body["@odata.count"] == 0
    assert "@odata.nextLink" not in body


async def test_children_hide_store(api, storage_root):
    (storage_root / "visible").mkdir()
    names = await api.child_names(1)
    assert (storage_root / HIDDEN).is_dir(), "the server keeps its store in .sandbox"
    assert names == {"visible"}


async def test_children_of_unknown_folder_is_404(api):
    await assert_problem(await api.get(f"/Entries/4242/{CHILDREN}"), 404)


async def test_children_of_document_is_problem(api, storage_root):
    (storage_root / "d.txt").write_bytes(b"x")
    doc = await api.by_path("\\d.txt")
    await assert_problem(await api.get(f"/Entries/{doc['id']}/{CHILDREN}"), (400, 404))


# --------------------------------------------------------------------------- paging


@pytest.fixture
def many_children(storage_root):
    folder = storage_root / "many"
    folder.mkdir()
    for i in range(420):
        (folder / f"doc{i:04d}.txt").write_bytes(b"x" * (i % 7))
    return folder


async def _many_id(api) -> int:
    return (await api.by_path("\\many"))["id"]


async def test_paging_with_next_link_visits_every_child_exactly_once(api, client, many_children):
    fid = await _many_id(api)
    prefer = {"Prefer": "maxpagesize=100"}
    resp = await api.get(f"/Entries/{fid}/{CHILDREN}", headers=prefer)
    assert resp.status == 200
    body = await resp.json()
    page_sizes = [len(body["value"])]
    ids = [e["id"] for e in body["value"]]
    names = [e["name"] for e in body["value"]]
    while "@odata.nextLink" in body:
        link = URL(body["@odata.nextLink"])
        assert link.is_absolute(), body["@odata.nextLink"]
        assert link.host == client.host and link.port == client.port
        resp = await api.absolute("GET", body["@odata.nextLink"], headers=prefer)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        page_sizes.append(len(body["value"]))
        ids += [e["id"] for e in body["value"]]
        names += [e["name"] for e in body["value"]]
        assert len(page_sizes) < 20
    assert page_sizes == [100, 100, 100, 100, 20]
    assert len(ids) == len(set(ids)) == 420
    assert sorted(names) == sorted(p.name for p in many_children.iterdir())


async def test_default_page_size_is_150(api, many_children):
    fid = await _many_id(api)
    body = await (await api.get(f"/Entries/{fid}/{CHILDREN}")).json()
    assert len(body["value"]) == 150
    assert "@odata.nextLink" in body
    all_items = await api.children(fid)
    assert len({e["id"] for e in all_items}) == 420


async def test_odata_maxpagesize_spelling(api, many_children):
    fid = await _many_id(api)
    resp = await api.get(f"/Entries/{fid}/{CHILDREN}", headers={"Prefer": "odata.maxpagesize=50"})
    body = await resp.json()
    assert len(body["value"]) == 50
    assert "@odata.nextLink" in body


async def test_paging_with_orderby_keeps_order_across_pages(api, many_children):
    fid = await _many_id(api)
    items = await api.children(fid, params={"$orderby": "name desc"}, headers={"Prefer": "maxpagesize=64"})
    names = [e["name"] for e in items]
    assert names == sorted((p.name for p in many_children.iterdir()), reverse=True)


async def test_count_is_total_ignoring_paging(api, many_children):
    fid = await _many_id(api)
    resp = await api.get(
        f"/Entries/{fid}/{CHILDREN}",
        params={"$count": "true", "$top": "10"},
        headers={"Prefer": "maxpagesize=5"},
    )
    body = await resp.json()
    assert body["@odata.count"] == 420
    assert len(body["value"]) == 5
    resp = await api.get(f"/Entries/{fid}/{CHILDREN}", params={"$count": "false"})
    assert "@odata.count" not in await resp.json()


async def test_top_and_skip(api, many_children):
    fid = await _many_id(api)
    all_names = sorted(p.name for p in many_children.iterdir())
    body = await (
        await api.get(f"/Entries/{fid}/{CHILDREN}", params={"$orderby": "name", "$top": "5"})
    ).json()
    assert [e["name"] for e in body["value"]] == all_names[:5]
    assert "@odata.nextLink" not in body
    body = await (
        await api.get(f"/Entries/{fid}/{CHILDREN}", params={"$orderby": "name", "$skip": "415"})
    ).json()
    assert [e["name"] for e in body["value"]] == all_names[415:]
    assert "@odata.nextLink" not in body
    body = await (
        await api.get(f"/Entries/{fid}/{CHILDREN}", params={"$orderby": "name", "$skip": "10", "$top": "3"})
    ).json()
    assert [e["name"] for e in body["value"]] == all_names[10:13]
    body = await (await api.get(f"/Entries/{fid}/{CHILDREN}", params={"$skip": "1000"})).json()
    assert body["value"] == []


async def test_top_spans_pages(api, many_children):
    fid = await _many_id(api)
    items = await api.children(
        fid, params={"$orderby": "name", "$top": "250"}, headers={"Prefer": "maxpagesize=100"}
    )
    assert [e["name"] for e in items] == sorted(p.name for p in many_children.iterdir())[:250]


@pytest.mark.parametrize(
    ("param", "value"),
    [("$top", "-1"), ("$top", "abc"), ("$top", "1.5"), ("$skip", "-1"), ("$skip", "x"), ("$count", "maybe")],
)
async def test_bad_paging_values_are_400(api, param, value):
    resp = await api.get(f"/Entries/1/{CHILDREN}", params={param: value})
    await assert_problem(resp, 400, param.lstrip("$"))


@pytest.mark.parametrize("value", ["bogus", "name sideways", "name desc extra", "password"])
async def test_bad_orderby_is_400(api, value):
    resp = await api.get(f"/Entries/1/{CHILDREN}", params={"$orderby": value})
    await assert_problem(resp, 400, "orderby")


# --------------------------------------------------------------------------- ordering, select


@pytest.fixture
def mixed_children(storage_root):
    (storage_root / "bravo").mkdir()
    (storage_root / "delta").mkdir()
    (storage_root / "alpha.txt").write_bytes(b"1" * 30)
    (storage_root / "charlie.txt").write_bytes(b"1" * 10)
    (storage_root / "echo.txt").write_bytes(b"1" * 20)
    return storage_root


async def test_orderby_name(api, mixed_children):
    asc = [e["name"] for e in await api.children(1, params={"$orderby": "name"})]
    assert asc == ["alpha.txt", "bravo", "charlie.txt", "delta", "echo.txt"]
    asc2 = [e["name"] for e in await api.children(1, params={"$orderby": "name asc"})]
    assert asc2 == asc
    desc = [e["name"] for e in await api.children(1, params={"$orderby": "name desc"})]
    assert desc == list(reversed(asc))


async def test_orderby_id(api, mixed_children):
    items = await api.children(1)
    by_id = sorted(e["id"] for e in items)
    assert [e["id"] for e in await api.children(1, params={"$orderby": "id"})] == by_id
    assert [e["id"] for e in await api.children(1, params={"$orderby": "id desc"})] == by_id[::-1]


async def test_orderby_size_and_type(api, storage_root):
    (storage_root / "alpha.txt").write_bytes(b"1" * 30)
    (storage_root / "charlie.txt").write_bytes(b"1" * 10)
    (storage_root / "echo.txt").write_bytes(b"1" * 20)
    sizes = [
        e["elecDocumentSize"] for e in await api.children(1, params={"$orderby": "elecDocumentSize desc"})
    ]
    assert sizes == [30, 20, 10]
    (storage_root / "zfolder").mkdir()
    (storage_root / "afolder").mkdir()
    types = [e["entryType"] for e in await api.children(1, params={"$orderby": "entryType"})]
    assert types == ["Document"] * 3 + ["Folder"] * 2
    types = [e["entryType"] for e in await api.children(1, params={"$orderby": "entryType desc"})]
    assert types == ["Folder"] * 2 + ["Document"] * 3


async def test_orderby_last_modified(api, storage_root):
    for i, n in enumerate(["m1.txt", "m2.txt", "m3.txt"]):
        p = storage_root / n
        p.write_bytes(b"x")
        os.utime(p, (1_600_000_000 + (3 - i) * 1000, 1_600_000_000 + (3 - i) * 1000))
    names = [e["name"] for e in await api.children(1, params={"$orderby": "lastModifiedTime"})]
    assert names == ["m3.txt", "m2.txt", "m1.txt"]


@pytest.mark.parametrize("field", ["creationTime", "creator", "entryType", "elecDocumentSize"])
async def test_orderby_accepts_documented_fields(api, mixed_children, field):
    resp = await api.get(f"/Entries/1/{CHILDREN}", params={"$orderby": f"{field} desc"})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["value"]) == 5


async def test_select_name(api, mixed_children):
    resp = await api.get(f"/Entries/1/{CHILDREN}", params={"$select": "name"})
    assert resp.status == 200
    items = (await resp.json())["value"]
    assert len(items) == 5
    for e in items:
        assert set(e) == {"name", "id", "entryType", "rowNumber"}
    full = {e["id"]: e for e in await api.children(1)}
    for e in items:
        assert full[e["id"]]["name"] == e["name"]
        assert full[e["id"]]["entryType"] == e["entryType"]


async def test_select_several_fields(api, mixed_children):
    resp = await api.get(f"/Entries/1/{CHILDREN}", params={"$select": "name,fullPath"})
    for e in (await resp.json())["value"]:
        assert set(e) == {"name", "fullPath", "id", "entryType", "rowNumber"}
        assert e["fullPath"] == "\\" + e["name"]


async def test_next_link_carries_query(api, many_children):
    fid = await _many_id(api)
    resp = await api.get(
        f"/Entries/{fid}/{CHILDREN}",
        params={"$orderby": "name desc", "$select": "name", "$count": "true"},
        headers={"Prefer": "maxpagesize=200"},
    )
    body = await resp.json()
    link = body["@odata.nextLink"]
    body2 = await (await api.absolute("GET", link, headers={"Prefer": "maxpagesize=200"})).json()
    assert len(body2["value"]) == 200
    for e in body2["value"]:
        assert set(e) == {"name", "id", "entryType", "rowNumber"}
    names = [e["name"] for e in body["value"] + body2["value"]]
    assert names == sorted(names, reverse=True)
    assert body2.get("@odata.count", 420) == 420


async def test_by_hand_entry_visible_without_restart(aiohttp_client, storage_root):
    client = await aiohttp_client(create_app(make_settings(storage_root)))
    api = Api(client, await sign_in(client))
    assert await api.child_names(1) == set()
    (storage_root / "later").mkdir()
    (storage_root / "later" / "n.txt").write_bytes(b"n")
    assert await api.child_names(1) == {"later"}
    assert (await api.by_path("\\later\\n.txt"))["elecDocumentSize"] == 1


async def test_listing_carries_odata_context(api, storage_root):
    (storage_root / "a.txt").write_bytes(b"a")
    resp = await api.get("/Entries/1/Laserfiche.Repository.Folder/children")
    body = await resp.json()
    assert body["@odata.context"].endswith("/v1/$metadata#Collection(Laserfiche.Repository.Entry)")
    assert URL(body["@odata.context"]).is_absolute()
    assert [e["rowNumber"] for e in body["value"]] == [1]


@pytest.mark.parametrize(
    "prefer", ["maxpagesize=0", "maxpagesize=abc", "maxpagesize=-5", "odata.maxpagesize="]
)
async def test_unusable_page_size_preference_is_ignored(api, many_children, prefer):
    """RFC 7240: a preference the server cannot honour is ignored, so the default page applies."""
    fid = await _many_id(api)
    resp = await api.get(f"/Entries/{fid}/{CHILDREN}", headers={"Prefer": prefer})
    assert resp.status == 200
    body = await resp.json()
    assert len(body["value"]) == 150
    assert "Preference-Applied" not in resp.headers
