"""Metadata values and definitions (issue 13; CONTRACT-V2.md "Metadata", LF-V2-CLIENT.md §2.10 to 2.22):
fields, tags, links and templates set and read back in v2 and in v1, the same values seen through the
other dialect, paging of every collection with `Prefer: maxpagesize=1`, the definition routes, audit
reasons and attributes, and each validation rule (a 400 naming the field; nothing changes).

In process over real sockets (`aiohttp_client`), over a real storage root under tmp_path holding a test
catalog (conftest.TEST_CATALOG, in the sample's `.catalog.toml` format) and a few real files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import (
    DOCUMENT_KEYS,
    FOLDER_KEYS,
    Api,
    assert_problem,
    assert_v2_shape,
    make_settings,
    md_fields,
    md_links,
    md_snapshot,
    md_tags,
    metadata_tree,
    problem_names,
    sign_in,
    v1_of,
    v2_of,
    write_catalog,
)

V2_FIELD_KEYS = {
    "id",
    "name",
    "fieldType",
    "isMultiValue",
    "isRequired",
    "hasMoreValues",
    "groupId",
    "values",
}
V2_TAG_KEYS = {"id", "name", "displayName", "description", "isSecure", "watermark"}
V2_LINK_KEYS = {
    "id",
    "linkDefinitionId",
    "sourceId",
    "targetId",
    "sourceLabel",
    "targetLabel",
    "sourceFullPath",
    "targetFullPath",
    "description",
    "linkDefinitionDescription",
    "customProperties",
    "sourceLink",
    "targetLink",
}
V1_FIELD_KEYS = {"fieldName", "fieldId", "fieldType", "values", "isMultiValue", "isRequired", "hasMoreValues"}
# the published v1 clients' paths of a template's fields: by id `.../{templateId}/fields`, by name
# `.../Fields?templateName=` (the generated Java client, TemplateDefinitionsApi); the lower-case by
# name is accepted too
V1_TEMPLATE_FIELDS_BY_NAME = ("/TemplateDefinitions/Fields", "/TemplateDefinitions/fields")

# the test catalog's definitions (conftest.TEST_CATALOG)
FIELD_TYPES = {
    "Title": "String",
    "Code": "String",
    "Count": "LongInteger",
    "Price": "Number",
    "Due": "Date",
    "Stamp": "DateTime",
    "Color": "List",
    "Words": "String",
    "Remark": "String",
    "Owner": "String",
}
FIELD_IDS = {name: i for i, name in enumerate(FIELD_TYPES, 1)}
ORDER_FIELDS = ["Code", "Title", "Count", "Price", "Due", "Color"]
TAG_IDS = {"Alpha": 1, "Beta": 2, "Gamma": 3, "Secret": 4}
TEMPLATES = {"Order": 1, "Loose": 2, "Bare": 3}
EVERYONE = {"A": "1", "B": "2", "C": "3"}
ADMIN_ATTRS = {"Mine": "x", "Other": "y"}

# one value of every type, each in the form the server stores and shows it
FULL = {
    "Title": ["Hello"],
    "Code": ["AB-123"],
    "Count": ["42"],
    "Price": ["12.5"],
    "Due": ["2026-11-15"],
    "Stamp": ["2026-03-02T10:00:00"],
    "Color": ["Green"],
    "Words": ["one", "two", "three"],
    "Remark": ["a remark"],
}
PAGE_1 = {"Prefer": "maxpagesize=1"}


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write_catalog(root)
    metadata_tree(root)
    return root


@pytest.fixture
def settings(storage_root: Path):
    return make_settings(storage_root, users=(("admin", "admin"), ("bob", "bob")))


@pytest.fixture
def v2(api: Api) -> Api:
    return v2_of(api)


@pytest.fixture
async def ids(api: Api) -> dict[str, int]:
    out = {}
    for path in ("Docs", "Docs/a.txt", "Docs/b.txt", "Docs/Sub", "Docs/Sub/c.txt", "Other", "Other/o.txt"):
        out[path.rsplit("/", 1)[-1]] = (await api.by_path("\\" + path.replace("/", "\\")))["id"]
    return out


def field_body(values: dict[str, list[str]]) -> dict:
    return {"fields": [{"name": name, "values": vals} for name, vals in values.items()]}


async def put_fields(v2: Api, entry_id: int, values: dict[str, list[str]]):
    return await v2.request("PUT", f"/Entries/{entry_id}/Fields", json=field_body(values))


async def ok_json(resp, status: int = 200):
    text = await resp.text()
    assert resp.status == status, f"expected {status}, got {resp.status}: {text[:800]}"
    return json.loads(text)


async def set_fields(v2: Api, entry_id: int, values: dict[str, list[str]]) -> list[dict]:
    return (await ok_json(await put_fields(v2, entry_id, values)))["value"]


async def set_tags(v2: Api, entry_id: int, tags: list[str]) -> list[dict]:
    resp = await v2.request("PUT", f"/Entries/{entry_id}/Tags", json={"tags": tags})
    return (await ok_json(resp))["value"]


async def set_links(v2: Api, entry_id: int, links: list[dict]) -> list[dict]:
    resp = await v2.request("PUT", f"/Entries/{entry_id}/Links", json={"links": links})
    return (await ok_json(resp))["value"]


async def set_template(v2: Api, entry_id: int, name: str, fields: dict | None = None) -> dict:
    body: dict = {"templateName": name}
    if fields is not None:
        body["fields"] = field_body(fields)["fields"]
    return await ok_json(await v2.request("PUT", f"/Entries/{entry_id}/Template", json=body))


async def pages(api: Api, path: str, params=None) -> list[dict]:
    """Every item of a collection read one per page (`Prefer: maxpagesize=1`), following absolute
    nextLinks: each page holds at most one item and there is a link while items remain."""
    resp = await api.get(path, params=params or {}, headers=PAGE_1)
    body = await ok_json(resp)
    items = list(body["value"])
    assert len(body["value"]) <= 1, body
    hops = 0
    while body.get("@odata.nextLink"):
        hops += 1
        assert hops < 200, "nextLink loop"
        link = body["@odata.nextLink"]
        assert link.startswith("http"), link
        body = await ok_json(await api.absolute("GET", link, headers=PAGE_1))
        assert isinstance(body["value"], list) and len(body["value"]) <= 1, body
        items.extend(body["value"])
    return items


async def assert_pages_match(api: Api, path: str, key: str, params=None) -> list[dict]:
    """maxpagesize=1 visits exactly the items of the unpaged listing, each once (by `key`); at least 2."""
    whole = await ok_json(await api.get(path, params=params or {}))
    expected = [item[key] for item in whole["value"]]
    assert "@odata.nextLink" not in whole or not whole["@odata.nextLink"], whole
    assert len(expected) >= 2, f"{path}: too few items to page: {whole}"
    seen = [item[key] for item in await pages(api, path, params)]
    assert sorted(map(str, seen)) == sorted(map(str, expected)), (path, seen, expected)
    assert len(set(map(str, seen))) == len(seen), f"{path}: an item was visited twice: {seen}"
    return whole["value"]


def v1_field_map(items: list[dict]) -> dict[str, list[str]]:
    """v1 field values: name -> values in position order (fields with values only)."""
    out = {}
    for item in items:
        values = sorted(item["values"], key=lambda v: v["position"])
        assert [v["position"] for v in values] == list(range(1, len(values) + 1)), item
        if values:
            out[item["fieldName"]] = [v["value"] for v in values]
    return out


def v1_field_body(values: dict[str, list[str]]) -> dict:
    return {
        name: {"values": [{"value": v, "position": i} for i, v in enumerate(vals, 1)]}
        for name, vals in values.items()
    }


async def entry_v2(v2: Api, entry_id: int) -> dict:
    return await ok_json(await v2.get(f"/Entries/{entry_id}"))


# --------------------------------------------------------------------------- v2 values


async def test_v2_fields_set_and_read_back(v2, ids):
    a = ids["a.txt"]
    assert await md_fields(v2, a) == {}
    answer = await set_fields(v2, a, FULL)
    for item in answer:
        assert set(item) == V2_FIELD_KEYS, item
        assert item["id"] == FIELD_IDS[item["name"]], item
        assert item["fieldType"] == FIELD_TYPES[item["name"]], item
        assert item["isMultiValue"] is (item["name"] == "Words"), item
        assert item["hasMoreValues"] is False, item
    assert {f["name"]: f["values"] for f in answer} == FULL
    assert [f["name"] for f in answer if f["values"]].count("Words") == 1
    # read back: the same, in the answer's order
    listed = await v2.collection(f"/Entries/{a}/Fields")
    assert listed == answer
    # the multi-value field keeps its values' order
    assert next(f for f in listed if f["name"] == "Words")["values"] == ["one", "two", "three"]

    # a PUT replaces every value: fields it does not name lose theirs
    smaller = {"Owner": ["me"], "Words": ["z", "y"]}
    answer = await set_fields(v2, a, smaller)
    assert {f["name"]: f["values"] for f in answer} == smaller
    assert await md_fields(v2, a) == smaller
    assert await set_fields(v2, a, {}) == []
    assert await md_fields(v2, a) == {}
    # another entry was never touched
    assert await md_fields(v2, ids["b.txt"]) == {}


async def test_v2_template_put_and_delete(v2, ids):
    a = ids["a.txt"]
    entry = await entry_v2(v2, a)
    assert (entry["templateId"], entry["templateName"], entry["templateFieldNames"]) == (0, "", [])

    entry = await set_template(v2, a, "Loose")
    assert_v2_shape(entry)
    assert (entry["id"], entry["templateId"], entry["templateName"]) == (a, 2, "Loose")
    assert entry["templateFieldNames"] == ["Remark", "Words"]
    again = await entry_v2(v2, a)
    assert (again["templateId"], again["templateName"], again["templateFieldNames"]) == (
        2,
        "Loose",
        ["Remark", "Words"],
    )
    # the template's fields are listed first, in its order, even without values
    listed = await v2.collection(f"/Entries/{a}/Fields")
    assert [(f["name"], f["values"]) for f in listed] == [("Remark", []), ("Words", [])]
    answer = await set_fields(v2, a, {"Owner": ["me"], "Remark": ["r"]})
    assert [(f["name"], f["values"]) for f in answer] == [("Remark", ["r"]), ("Words", []), ("Owner", ["me"])]
    assert await v2.collection(f"/Entries/{a}/Fields") == answer

    # removing the template removes its fields' values, not the others'
    resp = await v2.request("DELETE", f"/Entries/{a}/Template")
    entry = await ok_json(resp)
    assert_v2_shape(entry)
    assert entry["id"] == a
    assert entry["templateId"] == 0
    assert entry["templateName"] in ("", None)
    assert entry["templateFieldNames"] == []
    assert (await entry_v2(v2, a))["templateId"] == 0
    assert await md_fields(v2, a) == {"Owner": ["me"]}

    # a template with a required field: assigned with its value, listed first in its order
    entry = await set_template(v2, a, "Order", {"Title": ["T"], "Color": ["Red"]})
    assert (entry["templateId"], entry["templateName"], entry["templateFieldNames"]) == (
        1,
        "Order",
        ORDER_FIELDS,
    )
    listed = await v2.collection(f"/Entries/{a}/Fields")
    assert [f["name"] for f in listed][: len(ORDER_FIELDS)] == ORDER_FIELDS
    assert {f["name"] for f in listed if f["isRequired"]} == {"Title"}
    got = {f["name"]: f["values"] for f in listed}
    assert got["Title"] == ["T"] and got["Color"] == ["Red"]
    # a template matched by name in any case; one without fields
    entry = await set_template(v2, ids["b.txt"], "bare")
    assert (entry["templateId"], entry["templateName"], entry["templateFieldNames"]) == (3, "Bare", [])
    # on a folder too
    entry = await set_template(v2, ids["Docs"], "Loose")
    assert (entry["entryType"], entry["templateName"]) == ("Folder", "Loose")


async def test_v2_template_required_field_is_400_and_nothing_changes(v2, ids):
    a = ids["a.txt"]
    await set_template(v2, a, "Loose")
    await set_fields(v2, a, {"Remark": ["kept"]})
    before = await md_snapshot(v2, a)
    body = await assert_problem(
        await v2.request("PUT", f"/Entries/{a}/Template", json={"templateName": "Order"}), 400
    )
    problem_names(body, "Title")
    assert await md_snapshot(v2, a) == before
    # with the template: a PUT of fields that leaves the required one empty
    await set_template(v2, a, "Order", {"Title": ["T"]})
    await set_fields(v2, a, {"Title": ["T2"], "Count": ["7"]})
    before = await md_snapshot(v2, a)
    body = await assert_problem(await put_fields(v2, a, {"Count": ["8"]}), 400)
    problem_names(body, "Title")
    assert await md_snapshot(v2, a) == before


async def test_v2_tags_set_and_read_back(v2, ids):
    a = ids["a.txt"]
    assert await md_tags(v2, a) == set()
    answer = await set_tags(v2, a, ["Alpha", "Secret"])
    assert sorted(t["name"] for t in answer) == ["Alpha", "Secret"]
    for tag in answer:
        assert set(tag) == V2_TAG_KEYS, tag
        assert tag["id"] == TAG_IDS[tag["name"]], tag
        assert tag["isSecure"] is (tag["name"] == "Secret"), tag
    secret = next(t for t in answer if t["name"] == "Secret")
    assert "TOP SECRET" in json.dumps(secret["watermark"]), secret
    alpha = next(t for t in answer if t["name"] == "Alpha")
    assert alpha["description"] == "The first.", alpha
    listed = await v2.collection(f"/Entries/{a}/Tags")
    assert sorted(listed, key=lambda t: t["id"]) == sorted(answer, key=lambda t: t["id"])
    # by name in any case; a PUT replaces the set
    answer = await set_tags(v2, a, ["beta"])
    assert [t["name"] for t in answer] == ["Beta"]
    assert await md_tags(v2, a) == {"Beta"}
    assert await set_tags(v2, a, []) == []
    assert await md_tags(v2, a) == set()
    # on a folder too
    await set_tags(v2, ids["Docs"], ["Gamma"])
    assert await md_tags(v2, ids["Docs"]) == {"Gamma"}


async def test_v2_links_set_and_read_back(v2, ids):
    a, b, c, o = ids["a.txt"], ids["b.txt"], ids["c.txt"], ids["o.txt"]
    answer = await set_links(
        v2,
        a,
        [
            {"linkDefinitionId": 1, "otherEntryId": b, "isSource": True},
            {"linkDefinitionId": 3, "otherEntryId": c, "isSource": False, "customProperties": {"k": "v"}},
            {"linkDefinitionId": 2, "otherEntryId": o},  # isSource defaults to true
        ],
    )
    assert len(answer) == 3, answer
    for link in answer:
        assert set(link) == V2_LINK_KEYS, link
        assert isinstance(link["id"], int), link
    by_def = {link["linkDefinitionId"]: link for link in answer}
    assert (by_def[1]["sourceId"], by_def[1]["targetId"]) == (a, b)
    assert (by_def[3]["sourceId"], by_def[3]["targetId"]) == (c, a)
    assert (by_def[2]["sourceId"], by_def[2]["targetId"]) == (a, o)
    assert (by_def[1]["sourceLabel"], by_def[1]["targetLabel"]) == ("Parent", "Child")
    assert by_def[1]["linkDefinitionDescription"] == "One begets the other."
    assert (by_def[1]["sourceFullPath"], by_def[1]["targetFullPath"]) == ("\\Docs\\a.txt", "\\Docs\\b.txt")
    assert by_def[3]["customProperties"] == {"k": "v"}
    assert not by_def[1]["customProperties"]
    listed = await v2.collection(f"/Entries/{a}/Links")
    assert sorted(listed, key=lambda x: x["id"]) == sorted(answer, key=lambda x: x["id"])
    # the other ends see the links that touch them
    assert await md_links(v2, b) == {(1, a, b, ())}
    assert await md_links(v2, c) == {(3, c, a, (("k", "v"),))}
    assert await md_links(v2, o) == {(2, a, o, ())}

    # a PUT replaces every link touching the entry
    answer = await set_links(v2, a, [{"linkDefinitionId": 1, "otherEntryId": o, "isSource": False}])
    assert [(x["linkDefinitionId"], x["sourceId"], x["targetId"]) for x in answer] == [(1, o, a)]
    assert await md_links(v2, a) == {(1, o, a, ())}
    assert await md_links(v2, b) == set()
    assert await md_links(v2, c) == set()
    assert await md_links(v2, o) == {(1, o, a, ())}
    assert await set_links(v2, a, []) == []
    assert await md_links(v2, o) == set()


# --------------------------------------------------------------------------- v1 values


async def test_v1_fields_set_and_read_back(api, ids):
    a = ids["a.txt"]
    resp = await api.get(f"/Entries/{a}/fields")
    assert (await ok_json(resp))["value"] == []
    values = {"Title": ["V1"], "Words": ["w1", "w2"], "Count": ["5"], "Due": ["2026-01-31"]}
    resp = await api.request("PUT", f"/Entries/{a}/fields", json=v1_field_body(values))
    answer = (await ok_json(resp))["value"]
    for item in answer:
        assert V1_FIELD_KEYS <= set(item) <= V1_FIELD_KEYS | {"groupId"}, item
        assert item["fieldId"] == FIELD_IDS[item["fieldName"]], item
        assert item["fieldType"] == FIELD_TYPES[item["fieldName"]], item
        assert item["isMultiValue"] is (item["fieldName"] == "Words"), item
        for v in item["values"]:
            assert set(v) >= {"value", "position"}, v
    assert v1_field_map(answer) == values
    listed = await api.collection(f"/Entries/{a}/fields")
    assert v1_field_map(listed) == values
    # replaces all of them
    resp = await api.request("PUT", f"/Entries/{a}/fields", json=v1_field_body({"Owner": ["o"]}))
    assert v1_field_map((await ok_json(resp))["value"]) == {"Owner": ["o"]}
    assert v1_field_map(await api.collection(f"/Entries/{a}/fields")) == {"Owner": ["o"]}


async def test_v1_tags_links_and_template(api, ids):
    a, b = ids["a.txt"], ids["b.txt"]
    resp = await api.request("PUT", f"/Entries/{a}/tags", json={"tags": ["Beta", "Secret"]})
    answer = (await ok_json(resp))["value"]
    assert sorted(t["name"] for t in answer) == ["Beta", "Secret"]
    for tag in answer:
        assert tag["id"] == TAG_IDS[tag["name"]], tag
        assert tag["isSecure"] is (tag["name"] == "Secret"), tag
    assert sorted(t["name"] for t in await api.collection(f"/Entries/{a}/tags")) == ["Beta", "Secret"]

    resp = await api.request(
        "PUT", f"/Entries/{a}/links", json=[{"targetId": b, "linkTypeId": 1, "customProperties": {"p": "q"}}]
    )
    answer = (await ok_json(resp))["value"]
    assert len(answer) == 1, answer
    link = answer[0]
    assert {"linkId", "sourceId", "targetId", "linkTypeId", "sourceLabel", "targetLabel"} <= set(link), link
    assert (link["sourceId"], link["targetId"], link["linkTypeId"]) == (a, b, 1)
    assert (link["sourceLabel"], link["targetLabel"]) == ("Parent", "Child")
    listed = await api.collection(f"/Entries/{a}/links")
    assert [(x["linkId"], x["sourceId"], x["targetId"]) for x in listed] == [(link["linkId"], a, b)]
    # the target sees it too
    assert [(x["sourceId"], x["targetId"]) for x in await api.collection(f"/Entries/{b}/links")] == [(a, b)]

    resp = await api.request("PUT", f"/Entries/{a}/template", json={"templateName": "Loose"})
    entry = await ok_json(resp)
    assert set(entry) == DOCUMENT_KEYS, entry
    assert (entry["id"], entry["templateId"], entry["templateName"]) == (a, 2, "Loose")
    assert entry["templateFieldNames"] == ["Remark", "Words"]
    assert (await api.entry(a))["templateName"] == "Loose"
    # with fields, on a folder
    resp = await api.request(
        "PUT",
        f"/Entries/{ids['Docs']}/template",
        json={"templateName": "Order", "fields": v1_field_body({"Title": ["F"]})},
    )
    entry = await ok_json(resp)
    assert set(entry) == FOLDER_KEYS, entry
    assert (entry["templateId"], entry["templateName"]) == (1, "Order")
    assert v1_field_map(await api.collection(f"/Entries/{ids['Docs']}/fields")) == {"Title": ["F"]}
    # removed
    entry = await ok_json(await api.request("DELETE", f"/Entries/{a}/template"))
    assert entry["id"] == a
    assert entry["templateId"] == 0
    assert entry["templateName"] in ("", None)
    assert (await api.entry(a))["templateId"] == 0


# --------------------------------------------------------------------------- one model, two dialects


async def test_values_set_in_v2_are_read_in_v1(api, v2, ids):
    a, b = ids["a.txt"], ids["b.txt"]
    await set_template(v2, a, "Order", {"Title": ["Both"]})
    await set_fields(v2, a, {"Title": ["Both"], "Price": ["9.99"], "Words": ["x", "y"]})
    await set_tags(v2, a, ["Alpha", "Gamma"])
    [link] = await set_links(v2, a, [{"linkDefinitionId": 2, "otherEntryId": b}])

    entry = await api.entry(a)
    assert (entry["templateId"], entry["templateName"], entry["templateFieldNames"]) == (
        1,
        "Order",
        ORDER_FIELDS,
    )
    assert isinstance(entry["fields"], list)
    fields = await api.collection(f"/Entries/{a}/fields")
    assert v1_field_map(fields) == {"Title": ["Both"], "Price": ["9.99"], "Words": ["x", "y"]}
    assert {t["name"] for t in await api.collection(f"/Entries/{a}/tags")} == {"Alpha", "Gamma"}
    v1_links = await api.collection(f"/Entries/{a}/links")
    assert [(x["linkId"], x["sourceId"], x["targetId"], x["linkTypeId"]) for x in v1_links] == [
        (link["id"], a, b, 2)
    ]
    # the listing of the folder shows the template too
    [listed] = [e for e in await api.children(ids["Docs"]) if e["id"] == a]
    assert listed["templateName"] == "Order"


async def test_values_set_in_v1_are_read_in_v2(api, v2, ids):
    a, c = ids["a.txt"], ids["c.txt"]
    resp = await api.request(
        "PUT",
        f"/Entries/{a}/template",
        json={"templateName": "Loose", "fields": v1_field_body({"Remark": ["from v1"]})},
    )
    await ok_json(resp)
    resp = await api.request(
        "PUT",
        f"/Entries/{a}/fields",
        json=v1_field_body({"Remark": ["from v1"], "Stamp": ["2026-05-05T05:05:05"]}),
    )
    await ok_json(resp)
    await ok_json(await api.request("PUT", f"/Entries/{a}/tags", json={"tags": ["Secret"]}))
    resp = await api.request("PUT", f"/Entries/{a}/links", json=[{"targetId": c, "linkTypeId": 3}])
    [v1_link] = (await ok_json(resp))["value"]

    entry = await entry_v2(v2, a)
    assert (entry["templateId"], entry["templateName"], entry["templateFieldNames"]) == (
        2,
        "Loose",
        ["Remark", "Words"],
    )
    assert await md_snapshot(v2, a) == {
        "template": "Loose",
        "fields": {"Remark": ["from v1"], "Stamp": ["2026-05-05T05:05:05"]},
        "tags": {"Secret"},
        "links": {(3, a, c, ())},
    }
    [v2_link] = await v2.collection(f"/Entries/{a}/Links")
    assert v2_link["id"] == v1_link["linkId"]


# --------------------------------------------------------------------------- paging


async def test_entry_values_page_one_at_a_time(api, v2, ids):
    a, b, c, o = ids["a.txt"], ids["b.txt"], ids["c.txt"], ids["o.txt"]
    await set_template(v2, a, "Loose")
    await set_fields(v2, a, {"Remark": ["r"], "Title": ["t"], "Count": ["1"], "Words": ["w"]})
    await set_tags(v2, a, ["Alpha", "Beta", "Gamma"])
    await set_links(
        v2,
        a,
        [
            {"linkDefinitionId": 1, "otherEntryId": b},
            {"linkDefinitionId": 2, "otherEntryId": c},
            {"linkDefinitionId": 3, "otherEntryId": o, "isSource": False},
        ],
    )
    fields = await assert_pages_match(v2, f"/Entries/{a}/Fields", "name")
    assert len(fields) == 4  # Remark, Words (the template's), Title, Count
    await assert_pages_match(v2, f"/Entries/{a}/Tags", "id")
    await assert_pages_match(v2, f"/Entries/{a}/Links", "id")
    # v1
    v1 = v1_of(v2)
    await assert_pages_match(v1, f"/Entries/{a}/fields", "fieldName")
    await assert_pages_match(v1, f"/Entries/{a}/tags", "id")
    await assert_pages_match(v1, f"/Entries/{a}/links", "linkId")


async def test_definitions_page_one_at_a_time(v2):
    everything = [
        ("/FieldDefinitions", "id", None, 10),
        ("/TagDefinitions", "id", None, 4),
        ("/LinkDefinitions", "id", None, 3),
        ("/TemplateDefinitions", "id", None, 3),
        ("/TemplateDefinitions/1/FieldDefinitions", "id", None, 6),
        ("/TemplateDefinitions/FieldDefinitions", "id", {"templateName": "Order"}, 6),
        ("/AuditReasons", "id", None, 3),
        ("/Attributes", "key", {"everyone": "true"}, 3),
        ("/Attributes", "key", None, 2),
    ]
    for path, key, params, count in everything:
        items = await assert_pages_match(v2, path, key, params)
        assert len(items) == count, (path, items)
    v1 = v1_of(v2)
    for path, key, params, count in [
        ("/FieldDefinitions", "id", None, 10),
        ("/TagDefinitions", "id", None, 4),
        ("/LinkDefinitions", "linkTypeId", None, 3),
        ("/TemplateDefinitions", "id", None, 3),
        ("/TemplateDefinitions/1/fields", "id", None, 6),
        *((path, "id", {"templateName": "Order"}, 6) for path in V1_TEMPLATE_FIELDS_BY_NAME),
    ]:
        items = await assert_pages_match(v1, path, key, params)
        assert len(items) == count, (path, items)


# --------------------------------------------------------------------------- definitions


async def test_v2_field_and_tag_definitions(v2):
    fields = (await ok_json(await v2.get("/FieldDefinitions")))["value"]
    by_name = {f["name"]: f for f in fields}
    assert set(by_name) == set(FIELD_TYPES)
    for name, f in by_name.items():
        assert f["id"] == FIELD_IDS[name], f
        assert f["fieldType"] == FIELD_TYPES[name], f
        assert f["isMultiValue"] is (name == "Words"), f
        assert {"displayName", "description", "length", "constraint", "listValues", "isRequired"} <= set(f), f
    assert by_name["Title"]["length"] == 20
    assert by_name["Remark"]["length"] == 100  # the default
    assert by_name["Code"]["constraint"] == r"AB-\d{3}"
    assert by_name["Code"]["constraintError"] == "A code is AB- and three digits."
    assert not by_name["Title"]["constraint"]
    assert by_name["Color"]["listValues"] == ["Red", "Green", "Blue"]
    one = await ok_json(await v2.get("/FieldDefinitions/7"))
    assert (one["id"], one["name"], one["listValues"]) == (7, "Color", ["Red", "Green", "Blue"])

    tags = (await ok_json(await v2.get("/TagDefinitions")))["value"]
    assert {t["name"]: t["id"] for t in tags} == TAG_IDS
    for tag in tags:
        assert set(tag) == V2_TAG_KEYS, tag
        assert tag["isSecure"] is (tag["name"] == "Secret"), tag
    secret = await ok_json(await v2.get("/TagDefinitions/4"))
    assert (secret["id"], secret["name"], secret["isSecure"]) == (4, "Secret", True)
    assert "TOP SECRET" in json.dumps(secret["watermark"])


async def test_v2_link_and_template_definitions(v2):
    links = (await ok_json(await v2.get("/LinkDefinitions")))["value"]
    assert {(x["id"], x["sourceLabel"], x["targetLabel"]) for x in links} == {
        (1, "Parent", "Child"),
        (2, "Original", "Duplicate"),
        (3, "Cites", "Cited By"),
    }
    one = await ok_json(await v2.get("/LinkDefinitions/1"))
    assert {"id", "sourceLabel", "targetLabel", "description"} <= set(one)
    assert (one["id"], one["description"]) == (1, "One begets the other.")

    templates = (await ok_json(await v2.get("/TemplateDefinitions")))["value"]
    assert {t["name"]: t["id"] for t in templates} == TEMPLATES
    counts = {t["name"]: t["fieldCount"] for t in templates}
    assert counts == {"Order": 6, "Loose": 2, "Bare": 0}
    order = next(t for t in templates if t["name"] == "Order")
    assert {"displayName", "description", "color", "isAutoAssignable"} <= set(order), order
    assert (order["color"]["r"], order["color"]["g"], order["color"]["b"]) == (0x10, 0x20, 0x30)
    by_name = await ok_json(await v2.get("/TemplateDefinitions", params={"templateName": "Loose"}))
    assert [t["id"] for t in by_name["value"]] == [2]
    by_id = await ok_json(await v2.get("/TemplateDefinitions/1"))
    assert (by_id["id"], by_id["name"], by_id["fieldCount"]) == (1, "Order", 6)

    members = (await ok_json(await v2.get("/TemplateDefinitions/1/FieldDefinitions")))["value"]
    assert [f["name"] for f in members] == ORDER_FIELDS
    assert [f["id"] for f in members] == [FIELD_IDS[n] for n in ORDER_FIELDS]
    assert {f["name"] for f in members if f["isRequired"]} == {"Title"}
    same = await ok_json(
        await v2.get("/TemplateDefinitions/FieldDefinitions", params={"templateName": "order"})
    )
    assert [f["id"] for f in same["value"]] == [f["id"] for f in members]
    loose = (await ok_json(await v2.get("/TemplateDefinitions/2/FieldDefinitions")))["value"]
    assert [(f["name"], f["isRequired"]) for f in loose] == [("Remark", False), ("Words", False)]
    assert (await ok_json(await v2.get("/TemplateDefinitions/3/FieldDefinitions")))["value"] == []


async def test_v1_definitions(api):
    fields = (await ok_json(await api.get("/FieldDefinitions")))["value"]
    assert {f["name"]: (f["id"], f["fieldType"]) for f in fields} == {
        n: (FIELD_IDS[n], t) for n, t in FIELD_TYPES.items()
    }
    assert (await ok_json(await api.get("/FieldDefinitions/2")))["name"] == "Code"
    tags = (await ok_json(await api.get("/TagDefinitions")))["value"]
    assert {t["name"]: t["id"] for t in tags} == TAG_IDS
    assert (await ok_json(await api.get("/TagDefinitions/4")))["isSecure"] is True

    links = (await ok_json(await api.get("/LinkDefinitions")))["value"]
    for link in links:
        assert {"linkTypeId", "sourceLabel", "targetLabel", "linkTypeDescription"} <= set(link), link
    assert {(x["linkTypeId"], x["sourceLabel"], x["targetLabel"]) for x in links} == {
        (1, "Parent", "Child"),
        (2, "Original", "Duplicate"),
        (3, "Cites", "Cited By"),
    }
    one = await ok_json(await api.get("/LinkDefinitions/1"))
    assert (one["linkTypeId"], one["linkTypeDescription"]) == (1, "One begets the other.")

    templates = (await ok_json(await api.get("/TemplateDefinitions")))["value"]
    assert {t["name"]: (t["id"], t["fieldCount"]) for t in templates} == {
        "Order": (1, 6),
        "Loose": (2, 2),
        "Bare": (3, 0),
    }
    named = (await ok_json(await api.get("/TemplateDefinitions", params={"templateName": "Order"})))["value"]
    assert [t["id"] for t in named] == [1]
    assert (await ok_json(await api.get("/TemplateDefinitions/2")))["name"] == "Loose"
    members = (await ok_json(await api.get("/TemplateDefinitions/1/fields")))["value"]
    assert [f["name"] for f in members] == ORDER_FIELDS
    assert {f["name"] for f in members if f["isRequired"]} == {"Title"}
    for path in V1_TEMPLATE_FIELDS_BY_NAME:
        same = (await ok_json(await api.get(path, params={"templateName": "Order"})))["value"]
        assert [f["id"] for f in same] == [f["id"] for f in members], path


@pytest.mark.parametrize("dialect", ["v1", "v2"])
async def test_unknown_definitions_are_404(api, dialect):
    client = api if dialect == "v1" else v2_of(api)
    member_fields = "fields" if dialect == "v1" else "FieldDefinitions"
    for path in (
        "/FieldDefinitions/999",
        "/TagDefinitions/999",
        "/LinkDefinitions/999",
        "/TemplateDefinitions/999",
        f"/TemplateDefinitions/999/{member_fields}",
    ):
        await assert_problem(await client.get(path), 404)
    by_name = V1_TEMPLATE_FIELDS_BY_NAME if dialect == "v1" else ("/TemplateDefinitions/FieldDefinitions",)
    for path in by_name:
        await assert_problem(await client.get(path, params={"templateName": "Nope"}), 404)
    await assert_problem(await client.get("/TemplateDefinitions", params={"templateName": "Nope"}), 404)


async def test_values_of_a_missing_entry_are_404(api, v2):
    for path in ("/Entries/999999/Fields", "/Entries/999999/Tags", "/Entries/999999/Links"):
        await assert_problem(await v2.get(path), 404)
    await assert_problem(await put_fields(v2, 999999, {"Title": ["x"]}), 404)
    await assert_problem(await v2.request("PUT", "/Entries/999999/Tags", json={"tags": ["Alpha"]}), 404)
    resp = await v2.request("PUT", "/Entries/999999/Template", json={"templateName": "Loose"})
    await assert_problem(resp, 404)
    await assert_problem(await v2.request("DELETE", "/Entries/999999/Template"), 404)
    for path in ("/Entries/999999/fields", "/Entries/999999/tags", "/Entries/999999/links"):
        await assert_problem(await api.get(path), 404)


# --------------------------------------------------------------------------- audit reasons, attributes


async def test_audit_reasons_in_both_dialects(api, v2, ids):
    reasons = (await ok_json(await v2.get("/AuditReasons")))["value"]
    assert sorted((r["id"], r["name"], r["auditEventType"]) for r in reasons) == [
        (1, "Expired", "DeleteEntry"),
        (2, "Mistake", "DeleteEntry"),
        (3, "Audit", "ExportDocument"),
    ]
    v1 = await ok_json(await api.get("/AuditReasons"))
    assert sorted((r["id"], r["name"]) for r in v1["deleteEntry"]) == [(1, "Expired"), (2, "Mistake")]
    assert [(r["id"], r["name"]) for r in v1["exportDocument"]] == [(3, "Audit")]

    # a delete names a DeleteEntry reason, or none
    for bad in (3, 999):
        body = await assert_problem(
            await v2.request("DELETE", f"/Entries/{ids['b.txt']}", json={"auditReasonId": bad}), 400
        )
        problem_names(body, "auditReasonId", "audit reason", str(bad))
        await assert_problem(
            await api.request("DELETE", f"/Entries/{ids['b.txt']}", json={"auditReasonId": bad}), 400
        )
    assert (await api.entry(ids["b.txt"]))["name"] == "b.txt"
    resp = await v2.request("DELETE", f"/Entries/{ids['b.txt']}", json={"auditReasonId": 2})
    assert resp.status == 202, await resp.text()


async def test_attributes(api, v2):
    everyone = (await ok_json(await v2.get("/Attributes", params={"everyone": "true"})))["value"]
    assert {a["key"]: a["value"] for a in everyone} == EVERYONE
    mine = (await ok_json(await v2.get("/Attributes")))["value"]
    assert {a["key"]: a["value"] for a in mine} == ADMIN_ATTRS
    assert await ok_json(await v2.get("/Attributes/Mine")) == {"key": "Mine", "value": "x"}
    one = await ok_json(await v2.get("/Attributes/B", params={"everyone": "true"}))
    assert (one["key"], one["value"]) == ("B", "2")
    await assert_problem(await v2.get("/Attributes/Nope"), 404)
    await assert_problem(await v2.get("/Attributes/Theirs"), 404)  # bob's
    # another user sees their own
    bob = Api(api.client, await sign_in(api.client, "bob", "bob"), base=v2.base)
    theirs = (await ok_json(await bob.get("/Attributes")))["value"]
    assert {a["key"]: a["value"] for a in theirs} == {"Theirs": "z"}
    assert (await ok_json(await bob.get("/Attributes/Theirs")))["value"] == "z"
    await assert_problem(await bob.get("/Attributes/Mine"), 404)


# --------------------------------------------------------------------------- validation


BAD_FIELDS = [
    ({"Count": ["abc"]}, "Count"),
    ({"Count": ["1.5"]}, "Count"),
    ({"Price": ["x"]}, "Price"),
    ({"Due": ["2026-13-40"]}, "Due"),
    ({"Due": ["tomorrow"]}, "Due"),
    ({"Stamp": ["nope"]}, "Stamp"),
    ({"Color": ["Purple"]}, "Color"),
    ({"Color": ["red"]}, "Color"),  # list values are exact
    ({"Title": ["x" * 21]}, "Title"),
    ({"Words": ["ok", "x" * 11]}, "Words"),
    ({"Code": ["ZZ-123"]}, "Code"),
    ({"Code": ["AB-12"]}, "Code"),
    ({"Title": ["a", "b"]}, "Title"),  # a single-value field
    ({"Nope": ["x"]}, "Nope"),
    # one good value next to a bad one: neither lands
    ({"Title": ["changed"], "Owner": ["changed"], "Count": ["abc"]}, "Count"),
]


@pytest.mark.parametrize(
    ("values", "named"), BAD_FIELDS, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD_FIELDS)]
)
async def test_v2_bad_field_value_is_400_and_nothing_changes(v2, ids, values, named):
    a = ids["a.txt"]
    await set_fields(v2, a, {**FULL, "Owner": ["before"]})
    await set_tags(v2, a, ["Alpha"])
    before = await md_snapshot(v2, a)
    body = await assert_problem(await put_fields(v2, a, values), 400)
    problem_names(body, named)
    assert await md_snapshot(v2, a) == before


@pytest.mark.parametrize(("values", "named"), BAD_FIELDS[::3], ids=[n for _, n in BAD_FIELDS[::3]])
async def test_v1_bad_field_value_is_400_and_nothing_changes(api, v2, ids, values, named):
    a = ids["a.txt"]
    await set_fields(v2, a, {**FULL, "Owner": ["before"]})
    before = await md_snapshot(v2, a)
    resp = await api.request("PUT", f"/Entries/{a}/fields", json=v1_field_body(values))
    body = await assert_problem(resp, 400)
    problem_names(body, named)
    assert await md_snapshot(v2, a) == before


async def test_bad_tags_templates_and_links_are_400_and_nothing_changes(api, v2, ids):
    a, b = ids["a.txt"], ids["b.txt"]
    await set_template(v2, a, "Loose")
    await set_fields(v2, a, {"Remark": ["r"]})
    await set_tags(v2, a, ["Alpha"])
    await set_links(v2, a, [{"linkDefinitionId": 1, "otherEntryId": b}])
    before = await md_snapshot(v2, a)
    before_b = await md_snapshot(v2, b)

    async def refused(resp, *names):
        body = await assert_problem(resp, 400)
        problem_names(body, *names)
        assert await md_snapshot(v2, a) == before
        assert await md_snapshot(v2, b) == before_b

    # an unknown tag, alone or next to a known one
    await refused(await v2.request("PUT", f"/Entries/{a}/Tags", json={"tags": ["Beta", "Nope"]}), "Nope")
    await refused(await api.request("PUT", f"/Entries/{a}/tags", json={"tags": ["Nope"]}), "Nope")
    # an unknown template
    await refused(await v2.request("PUT", f"/Entries/{a}/Template", json={"templateName": "Nope"}), "Nope")
    await refused(await api.request("PUT", f"/Entries/{a}/template", json={"templateName": "Nope"}), "Nope")
    # a template with a bad value for one of its fields
    resp = await v2.request(
        "PUT",
        f"/Entries/{a}/Template",
        json={
            "templateName": "Order",
            "fields": [{"name": "Title", "values": ["t"]}, {"name": "Count", "values": ["x"]}],
        },
    )
    await refused(resp, "Count")
    # an unknown link definition, next to a good link
    links = [{"linkDefinitionId": 2, "otherEntryId": b}, {"linkDefinitionId": 99, "otherEntryId": b}]
    await refused(
        await v2.request("PUT", f"/Entries/{a}/Links", json={"links": links}), "99", "linkDefinitionId"
    )
    await refused(
        await api.request("PUT", f"/Entries/{a}/links", json=[{"targetId": b, "linkTypeId": 99}]),
        "99",
        "linkTypeId",
    )
    # a link to an entry that does not exist
    links = [{"linkDefinitionId": 2, "otherEntryId": b}, {"linkDefinitionId": 1, "otherEntryId": 999999}]
    await refused(
        await v2.request("PUT", f"/Entries/{a}/Links", json={"links": links}), "999999", "otherEntryId"
    )
    await refused(
        await api.request("PUT", f"/Entries/{a}/links", json=[{"targetId": 999999, "linkTypeId": 1}]),
        "999999",
        "targetId",
    )


MALFORMED = [
    ("v2", "/Fields", {"fields": "Title"}),
    ("v2", "/Fields", {"fields": [{"name": "Title", "values": "t"}]}),
    ("v2", "/Fields", {"fields": [{"name": "Title", "values": [1]}]}),
    ("v2", "/Fields", {"fields": [{"values": ["t"]}]}),
    ("v2", "/Fields", [1, 2]),
    ("v2", "/Fields", None),
    ("v2", "/Tags", {"tags": "Alpha"}),
    ("v2", "/Tags", {"tags": [1]}),
    ("v2", "/Links", {"links": [{"linkDefinitionId": "one", "otherEntryId": "B"}]}),
    ("v2", "/Links", {"links": [{"linkDefinitionId": 1}]}),
    ("v2", "/Links", {"links": [{"linkDefinitionId": 1, "otherEntryId": "B", "customProperties": "x"}]}),
    ("v2", "/Template", {}),
    ("v2", "/Template", {"templateName": 3}),
    ("v1", "/fields", {"Title": {"values": "t"}}),
    ("v1", "/fields", {"Title": {"values": [{"value": 1, "position": 1}]}}),
    ("v1", "/fields", ["Title"]),
    ("v1", "/tags", {"tags": "Alpha"}),
    ("v1", "/links", {"targetId": "B", "linkTypeId": 1}),
    ("v1", "/links", [{"targetId": "B"}]),
    ("v1", "/template", {}),
]


@pytest.mark.parametrize(
    ("dialect", "path", "body"), MALFORMED, ids=[f"{d}{p}-{i}" for i, (d, p, _) in enumerate(MALFORMED)]
)
async def test_malformed_bodies_are_400(api, v2, ids, dialect, path, body):
    """A body of the wrong shape (a string for a list, a number for a string, a member missing, not
    JSON): a 400 problem, nothing changes."""
    a = ids["a.txt"]
    await set_fields(v2, a, {"Title": ["t"]})
    before = await md_snapshot(v2, a)
    client = v2 if dialect == "v2" else api
    text = json.dumps(body).replace('"B"', str(ids["b.txt"]))
    if body is None:
        text = "{not json"
    resp = await client.request(
        "PUT", f"/Entries/{a}{path}", data=text.encode(), headers={"Content-Type": "application/json"}
    )
    await assert_problem(resp, 400)
    assert await md_snapshot(v2, a) == before
