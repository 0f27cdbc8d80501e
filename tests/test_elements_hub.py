"""The Elements dialect over real sockets: the Authorization header, the instances API and the
synchronous documents hub (`/elements/api-v2/hubs/documents`), checked against the disk each time,
plus hostile paths, ids and bodies (CONTRACT.md "Elements dialect" and the decisions it follows).

Asynchronous requests and webhooks are not covered here: every copy and delete below runs without
`Elements-Async-Request` and answers with its result.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import (
    BASE,
    HIDDEN,
    Api,
    assert_problem,
    disk_tree,
    make_jail,
    make_settings,
    sign_in,
    tree_snapshot,
)
from webhook_receiver import ELEMENTS, HUB
from yarl import URL

from server.app import create_app

# the defaults of the elements_* settings
USER = "sandbox-user-secret"
ORG = "sandbox-org-secret"
ELEMENT = "sandbox-element-token"
SIGNATURE_KEY = "sandbox-signature-key"

HUB_ENTRY_KEYS = {"id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags"}
ENABLED = "event.notification.enabled"
CALLBACK = "event.notification.callback.url"
SIGKEY = "event.notification.signature.key"

CANARY = b"CANARY-elements-do-not-read-0xBADC0DE"
ALPHA = b"alpha content, 0123456789\n"


# --------------------------------------------------------------------------- helpers


def hub_header(user: str = USER, element: str = ELEMENT) -> dict[str, str]:
    return {"Authorization": f"User {user}, Element {element}"}


def org_header(user: str = USER, org: str = ORG) -> dict[str, str]:
    return {"Authorization": f"User {user}, Organization {org}"}


@dataclass
class Hub:
    """The documents hub and the platform routes of one in-process server, with the default secrets."""

    client: Any
    root: Path
    user: str = USER
    org: str = ORG
    element: str = ELEMENT

    @property
    def auth(self) -> dict[str, str]:
        return hub_header(self.user, self.element)

    @property
    def platform_auth(self) -> dict[str, str]:
        return org_header(self.user, self.org)

    async def request(self, method: str, route: str, *, headers=None, auth=None, **kw):
        h = {**(self.auth if auth is None else auth), **(headers or {})}
        return await self.client.request(method, HUB + route, headers=h, **kw)

    async def get(self, route: str, **kw):
        return await self.request("GET", route, **kw)

    async def post(self, route: str, **kw):
        return await self.request("POST", route, **kw)

    async def patch(self, route: str, **kw):
        return await self.request("PATCH", route, **kw)

    async def delete(self, route: str, **kw):
        return await self.request("DELETE", route, **kw)

    async def platform(self, method: str, route: str, *, headers=None, auth=None, **kw):
        h = {**(self.platform_auth if auth is None else auth), **(headers or {})}
        return await self.client.request(method, ELEMENTS + route, headers=h, **kw)

    async def raw(self, method: str, encoded: str, *, headers=None, auth=None, **kw):
        """A request whose path and query are sent byte for byte (no normalisation by yarl)."""
        root = str(self.client.make_url("/")).rstrip("/")
        url = URL(root + HUB + encoded, encoded=True)
        h = {**(self.auth if auth is None else auth), **(headers or {})}
        resp = await self.client.session.request(method, url, headers=h, **kw)
        await resp.read()
        return resp

    # -- convenience -------------------------------------------------------------

    async def folder(self, path: str) -> dict:
        return await ok(await self.get("/folders/metadata", params={"path": path}))

    async def file(self, path: str) -> dict:
        return await ok(await self.get("/files/metadata", params={"path": path}))

    async def contents(self, path: str, **params) -> list[dict]:
        return await ok(await self.get("/folders/contents", params={"path": path, **params}))

    async def upload(self, path: str, data: bytes, **params):
        return await self.post("/files", params={"path": path, **params}, data=file_form(data))


async def ok(resp, status: int = 200) -> Any:
    text = await resp.text()
    assert resp.status == status, f"expected {status}, got {resp.status}: {text[:800]}"
    assert "X-RequestId" in resp.headers
    return json.loads(text) if text else None


def file_form(data: bytes, field_name: str = "file", filename: str = "upload.bin") -> aiohttp.FormData:
    form = aiohttp.FormData()
    # a stream, not raw bytes: aiohttp warns about large raw bodies, and warnings are errors here
    form.add_field(field_name, io.BytesIO(data), filename=filename, content_type="application/octet-stream")
    return form


def _iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    assert dt.tzinfo is not None, f"timestamp without offset: {value}"
    return dt


def assert_hub_entry(
    e: dict, *, path: str | None = None, directory: bool | None = None, size: int | None = None
) -> None:
    assert set(e) == HUB_ENTRY_KEYS, f"extra {set(e) - HUB_ENTRY_KEYS}, missing {HUB_ENTRY_KEYS - set(e)}"
    assert isinstance(e["id"], str) and e["id"].isdigit(), e
    assert isinstance(e["name"], str) and isinstance(e["path"], str)
    assert isinstance(e["directory"], bool)
    assert isinstance(e["size"], int) and not isinstance(e["size"], bool)
    assert isinstance(e["tags"], list)
    _iso(e["createdDate"])
    _iso(e["modifiedDate"])
    if path is not None:
        assert e["path"] == path, e
        assert e["name"] == path.rsplit("/", 1)[-1], e
    if directory is not None:
        assert e["directory"] is directory, e
    if size is not None:
        assert e["size"] == size, e


def event(path: str, kind: str) -> dict:
    """One event as the hub reports it: the lower-case key and the stored path and name."""
    return {"path": path.lower(), "metadata": {"path": path, "name": path.rsplit("/", 1)[-1], "type": kind}}


def populate(root: Path) -> None:
    (root / "Docs" / "Sub").mkdir(parents=True)
    (root / "Docs" / "a.txt").write_bytes(ALPHA)
    (root / "Docs" / "b.txt").write_bytes(b"bravo")
    (root / "Docs" / "Sub" / "c.txt").write_bytes(b"charlie")
    (root / "Other").mkdir()
    (root / "top.txt").write_bytes(b"top")
    (root / "TestFolderCreate").mkdir()
    (root / "TestFolderCreate" / "testUploadFile.txt").write_bytes(b"uploaded by the seed\n")


def visible_tree(root: Path) -> dict[str, bytes | None]:
    """The repository as seen on disk, without the server's own store."""
    return {k: v for k, v in disk_tree(root).items() if k != HIDDEN and not k.startswith(HIDDEN + os.sep)}


@pytest.fixture
async def hub(aiohttp_client, storage_root) -> Hub:
    populate(storage_root)
    client = await aiohttp_client(create_app(make_settings(storage_root)))
    return Hub(client, storage_root)


# =========================================================================== auth


async def test_missing_authorization_is_401(hub):
    await assert_problem(await hub.get("/folders/contents", params={"path": "/"}, auth={}), 401)
    await assert_problem(await hub.platform("GET", "/instances", auth={}), 401)
    await assert_problem(await hub.platform("GET", "/instances/1", auth={}), 401)
    # a write without credentials changes nothing
    await assert_problem(await hub.post("/folders", json={"path": "/NoAuth"}, auth={}), 401)
    assert not (hub.root / "NoAuth").exists()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "User",
        "Element",
        f"User {USER}",
        f"Element {ELEMENT}",
        f"User {USER}, Element",
        f"User , Element {ELEMENT}",
        "User , Element ",
        "Basic dXNlcjpwYXNz",
        f"Bearer {ELEMENT}",
        f"Userx {USER}, Element {ELEMENT}",
        f"User {USER}, Token {ELEMENT}",
    ],
)
async def test_garbled_authorization_is_401(hub, value):
    resp = await hub.get("/folders/contents", params={"path": "/"}, auth={"Authorization": value})
    await assert_problem(resp, 401)
    resp = await hub.delete("/files", params={"path": "/top.txt"}, auth={"Authorization": value})
    await assert_problem(resp, 401)
    assert (hub.root / "top.txt").read_bytes() == b"top"


async def test_wrong_user_secret_is_401(hub):
    resp = await hub.get("/folders/contents", params={"path": "/"}, auth=hub_header(user="not-the-secret"))
    await assert_problem(resp, 401)
    resp = await hub.platform("GET", "/instances", auth=org_header(user="not-the-secret"))
    await assert_problem(resp, 401)
    # the element token in the User slot, the user secret in the Element slot
    resp = await hub.get("/folders/contents", params={"path": "/"}, auth=hub_header(ELEMENT, USER))
    await assert_problem(resp, 401)


async def test_wrong_element_token_is_401(hub):
    for token in ("not-a-token", ELEMENT + "x", ELEMENT.upper(), ORG):
        resp = await hub.get("/folders/contents", params={"path": "/"}, auth=hub_header(element=token))
        await assert_problem(resp, 401)
    resp = await hub.post("/folders", json={"path": "/Nope"}, auth=hub_header(element="not-a-token"))
    await assert_problem(resp, 401)
    assert not (hub.root / "Nope").exists()


async def test_wrong_organization_secret_is_401(hub):
    resp = await hub.platform("GET", "/instances", auth=org_header(org="not-the-org"))
    await assert_problem(resp, 401)
    resp = await hub.platform(
        "POST",
        "/instances",
        auth=org_header(org="not-the-org"),
        json={"name": "x", "element": {"key": "documents"}},
    )
    await assert_problem(resp, 401)


async def test_hub_route_needs_element_not_organization(hub):
    resp = await hub.get("/folders/contents", params={"path": "/"}, auth=org_header())
    await assert_problem(resp, 401)


async def test_instances_route_needs_organization_not_element(hub):
    await assert_problem(await hub.platform("GET", "/instances", auth=hub_header()), 401)
    await assert_problem(await hub.platform("GET", "/instances/1", auth=hub_header()), 401)
    resp = await hub.platform(
        "POST", "/instances", auth=hub_header(), json={"name": "x", "element": {"key": "documents"}}
    )
    await assert_problem(resp, 401)


async def test_laserfiche_bearer_refused_on_elements_routes(hub):
    bearer = await sign_in(hub.client)
    lf = Api(hub.client, bearer)
    assert (await lf.entry(1))["id"] == 1  # the bearer itself is good
    h = {"Authorization": f"Bearer {bearer}"}
    await assert_problem(await hub.get("/folders/contents", params={"path": "/"}, auth=h), 401)
    await assert_problem(await hub.platform("GET", "/instances", auth=h), 401)
    # and the Elements header is no good on a Laserfiche route
    resp = await hub.client.get(BASE + "/Entries/1", headers=hub_header())
    await assert_problem(resp, 401)


@pytest.mark.parametrize(
    "value",
    [
        f"User {USER}, Element {ELEMENT}",
        f"Element {ELEMENT}, User {USER}",
        f"user {USER}, element {ELEMENT}",
        f"ELEMENT {ELEMENT}, USER {USER}",
        f"User {USER}, Organization {ORG}, Element {ELEMENT}",
        f"element {ELEMENT}, organization {ORG}, user {USER}",
    ],
)
async def test_hub_header_parts_any_order_any_case(hub, value):
    entries = await ok(
        await hub.get("/folders/contents", params={"path": "/"}, auth={"Authorization": value})
    )
    assert {e["name"] for e in entries} == {"Docs", "Other", "top.txt", "TestFolderCreate"}


@pytest.mark.parametrize(
    "value",
    [
        f"Organization {ORG}, User {USER}",
        f"organization {ORG}, user {USER}",
        f"USER {USER}, ORGANIZATION {ORG}",
        f"User {USER}, Organization {ORG}, Element {ELEMENT}",
    ],
)
async def test_platform_header_parts_any_order_any_case(hub, value):
    instances = await ok(await hub.platform("GET", "/instances", auth={"Authorization": value}))
    assert 1 in [i["id"] for i in instances]


# =========================================================================== instances


async def test_default_instance_from_default_settings(hub):
    inst = await ok(await hub.platform("GET", "/instances/1"))
    assert inst["id"] == 1
    assert inst["name"] == "sandbox"
    assert inst["token"] == ELEMENT
    assert inst["element"] == {"key": "documents"}
    conf = inst["configuration"]
    assert conf[ENABLED] is False
    assert conf[CALLBACK] == ""
    assert conf[SIGKEY] == SIGNATURE_KEY
    listed = await ok(await hub.platform("GET", "/instances"))
    assert isinstance(listed, list)
    assert [i for i in listed if i["id"] == 1] == [inst]


async def test_default_instance_from_custom_settings(aiohttp_client, storage_root):
    populate(storage_root)
    settings = make_settings(
        storage_root,
        elements_user_secret="u-secret-1",
        elements_org_secret="o-secret-1",
        elements_token="t-token-1",
        callback_url="http://127.0.0.1:9/hook",
        signature_key="sig-key-1",
    )
    hub = Hub(
        await aiohttp_client(create_app(settings)), storage_root, "u-secret-1", "o-secret-1", "t-token-1"
    )
    inst = await ok(await hub.platform("GET", "/instances/1"))
    assert inst["token"] == "t-token-1"
    assert inst["name"] == "sandbox"
    conf = inst["configuration"]
    assert conf[ENABLED] is True
    assert conf[CALLBACK] == "http://127.0.0.1:9/hook"
    assert conf[SIGKEY] == "sig-key-1"
    # the custom secrets work on the hub, the defaults no longer do
    entries = await hub.contents("/")
    assert "Docs" in {e["name"] for e in entries}
    resp = await hub.get("/folders/contents", params={"path": "/"}, auth=hub_header())
    await assert_problem(resp, 401)
    resp = await hub.get("/folders/contents", params={"path": "/"}, auth=hub_header(element="t-token-1"))
    await assert_problem(resp, 401)
    resp = await hub.get("/folders/contents", params={"path": "/"}, auth=hub_header(user="u-secret-1"))
    await assert_problem(resp, 401)
    await assert_problem(await hub.platform("GET", "/instances", auth=org_header()), 401)
    await assert_problem(await hub.platform("GET", "/instances", auth=org_header(user="u-secret-1")), 401)


async def test_unsigned_default_instance(aiohttp_client, storage_root):
    settings = make_settings(storage_root, signature_key="")
    hub = Hub(await aiohttp_client(create_app(settings)), storage_root)
    conf = (await ok(await hub.platform("GET", "/instances/1")))["configuration"]
    assert conf.get(SIGKEY, "") == ""
    assert conf[ENABLED] is False


async def test_create_instance_and_use_its_token(hub):
    config = {ENABLED: True, CALLBACK: "https://example.invalid/hook", SIGKEY: "k2"}
    body = {"name": "second", "element": {"key": "documents"}, "configuration": config}
    inst = await ok(await hub.platform("POST", "/instances", json=body))
    assert isinstance(inst["id"], int) and not isinstance(inst["id"], bool)
    assert inst["id"] != 1
    assert inst["name"] == "second"
    assert isinstance(inst["token"], str) and len(inst["token"]) >= 8
    assert inst["token"] != ELEMENT
    assert inst["element"] == {"key": "documents"}
    assert inst["disabled"] is False
    assert inst["tags"] == []
    _iso(inst["createdDate"])
    for k, v in config.items():
        assert inst["configuration"][k] == v
    # a second instance gets another token
    other = await ok(await hub.platform("POST", "/instances", json={**body, "name": "third"}))
    assert other["token"] not in (inst["token"], ELEMENT)
    assert other["id"] not in (1, inst["id"])
    # the new token works on the hub, and sees the same repository
    entries = await ok(
        await hub.get("/folders/contents", params={"path": "/Docs"}, auth=hub_header(element=inst["token"]))
    )
    assert {e["name"] for e in entries} == {"a.txt", "b.txt", "Sub"}
    resp = await hub.post("/folders", json={"path": "/ByNewToken"}, auth=hub_header(element=inst["token"]))
    await ok(resp)
    assert (hub.root / "ByNewToken").is_dir()
    # list and read
    listed = await ok(await hub.platform("GET", "/instances"))
    assert {1, inst["id"], other["id"]} <= {i["id"] for i in listed}
    got = await ok(await hub.platform("GET", f"/instances/{inst['id']}"))
    assert got["name"] == "second"
    assert got["token"] == inst["token"]
    assert got["configuration"] == inst["configuration"]


async def test_create_instance_accepts_string_enabled(hub):
    config = {ENABLED: "true", CALLBACK: "http://127.0.0.1:9/x"}
    body = {"name": "strings", "element": {"key": "documents"}, "configuration": config}
    inst = await ok(await hub.platform("POST", "/instances", json=body))
    assert inst["configuration"][CALLBACK] == "http://127.0.0.1:9/x"
    assert inst["configuration"][ENABLED] in (True, "true")


async def test_patch_instance_merges_configuration(hub):
    config = {ENABLED: True, CALLBACK: "https://example.invalid/one", SIGKEY: "first-key"}
    body = {"name": "patchme", "element": {"key": "documents"}, "configuration": config}
    inst = await ok(await hub.platform("POST", "/instances", json=body))
    iid = inst["id"]
    patched = await ok(
        await hub.platform("PATCH", f"/instances/{iid}", json={"configuration": {CALLBACK: "http://h/two"}})
    )
    assert patched["configuration"][CALLBACK] == "http://h/two"
    assert patched["configuration"][SIGKEY] == "first-key"  # merged, not replaced
    assert patched["configuration"][ENABLED] is True
    assert patched["name"] == "patchme"
    assert patched["token"] == inst["token"]
    renamed = await ok(await hub.platform("PATCH", f"/instances/{iid}", json={"name": "renamed"}))
    assert renamed["name"] == "renamed"
    assert renamed["configuration"][CALLBACK] == "http://h/two"
    got = await ok(await hub.platform("GET", f"/instances/{iid}"))
    assert got["name"] == "renamed"
    assert got["configuration"][CALLBACK] == "http://h/two"
    assert got["configuration"][SIGKEY] == "first-key"
    # a bad callback URL in a PATCH is refused and changes nothing
    resp = await hub.platform("PATCH", f"/instances/{iid}", json={"configuration": {CALLBACK: "ftp://h/x"}})
    await assert_problem(resp, 400)
    got = await ok(await hub.platform("GET", f"/instances/{iid}"))
    assert got["configuration"][CALLBACK] == "http://h/two"


async def test_delete_instance_revokes_its_token(hub):
    body = {"name": "doomed", "element": {"key": "documents"}, "configuration": {}}
    inst = await ok(await hub.platform("POST", "/instances", json=body))
    auth = hub_header(element=inst["token"])
    await ok(await hub.get("/folders/contents", params={"path": "/"}, auth=auth))
    resp = await hub.platform("DELETE", f"/instances/{inst['id']}")
    assert resp.status == 204, await resp.text()
    await assert_problem(await hub.get("/folders/contents", params={"path": "/"}, auth=auth), 401)
    resp = await hub.post("/folders", json={"path": "/AfterDelete"}, auth=auth)
    await assert_problem(resp, 401)
    assert not (hub.root / "AfterDelete").exists()
    await assert_problem(await hub.platform("GET", f"/instances/{inst['id']}"), 404)
    assert inst["id"] not in {i["id"] for i in await ok(await hub.platform("GET", "/instances"))}
    # the default instance is untouched
    await ok(await hub.get("/folders/contents", params={"path": "/"}))


async def test_delete_default_instance_is_400(hub):
    await assert_problem(await hub.platform("DELETE", "/instances/1"), 400)
    assert (await ok(await hub.platform("GET", "/instances/1")))["token"] == ELEMENT
    await ok(await hub.get("/folders/contents", params={"path": "/"}))


async def test_unknown_instance_is_404(hub):
    await assert_problem(await hub.platform("GET", "/instances/987654"), 404)
    await assert_problem(await hub.platform("PATCH", "/instances/987654", json={"name": "x"}), 404)
    await assert_problem(await hub.platform("DELETE", "/instances/987654"), 404)
    await assert_problem(await hub.platform("GET", "/instances/abc"), (400, 404))


@pytest.mark.parametrize(
    "element",
    [{"key": "salesforce"}, {"key": ""}, {"key": 5}, "documents", {}],
    ids=["other-key", "empty-key", "int-key", "string", "no-key"],
)
async def test_create_instance_bad_element_is_400(hub, element):
    before = await ok(await hub.platform("GET", "/instances"))
    resp = await hub.platform("POST", "/instances", json={"name": "bad", "element": element})
    await assert_problem(resp, 400, "element")
    assert await ok(await hub.platform("GET", "/instances")) == before


@pytest.mark.parametrize("name", [None, "", 5], ids=["missing", "empty", "int"])
async def test_create_instance_bad_name_is_400(hub, name):
    body: dict[str, Any] = {"element": {"key": "documents"}, "configuration": {}}
    if name is not None:
        body["name"] = name
    resp = await hub.platform("POST", "/instances", json=body)
    await assert_problem(resp, 400, "name")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.invalid/hook",
        "not a url",
        "/relative/hook",
        "javascript:alert(1)",
        "file:///etc/passwd",
    ],
)
async def test_create_instance_non_http_callback_is_400(hub, url):
    body = {"name": "cb", "element": {"key": "documents"}, "configuration": {ENABLED: True, CALLBACK: url}}
    before = await ok(await hub.platform("GET", "/instances"))
    await assert_problem(await hub.platform("POST", "/instances", json=body), 400, "callback")
    assert await ok(await hub.platform("GET", "/instances")) == before


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'"str"',
        b"{",
        b'{"name": "x", "element": {"key": "documents"}, "configuration": 5}',
    ],
    ids=["text", "array", "string", "truncated", "configuration-int"],
)
async def test_create_instance_bad_body_is_400(hub, body):
    resp = await hub.platform("POST", "/instances", data=body, headers={"Content-Type": "application/json"})
    await assert_problem(resp, 400)


# =========================================================================== listing


async def test_list_root_and_folder(hub):
    resp = await hub.get("/folders/contents", params={"path": "/"})
    entries = await ok(resp)
    assert resp.content_type == "application/json"
    assert [e["name"] for e in entries] == sorted(
        ["Docs", "Other", "TestFolderCreate", "top.txt"], key=str.casefold
    )
    for e in entries:
        assert_hub_entry(e, path="/" + e["name"])
    by_name = {e["name"]: e for e in entries}
    assert by_name["Docs"]["directory"] is True
    assert_hub_entry(by_name["top.txt"], directory=False, size=3)
    docs = await hub.contents("/Docs")
    # (whether "Sub" sorts before "a.txt" depends on case folding, which the spec leaves open)
    assert sorted(e["name"] for e in docs) == ["Sub", "a.txt", "b.txt"]
    by_name = {e["name"]: e for e in docs}
    a = by_name["a.txt"]
    assert_hub_entry(a, path="/Docs/a.txt", directory=False, size=len(ALPHA))
    assert a["tags"] == []
    assert_hub_entry(by_name["Sub"], path="/Docs/Sub", directory=True)
    # leading slash optional, case-insensitive
    assert await hub.contents("Docs") == docs
    assert await hub.contents("/dOCS") == docs
    assert await hub.contents("/Docs/") == docs


async def test_list_ids_are_laserfiche_ids(hub):
    lf = Api(hub.client, await sign_in(hub.client))
    docs = {e["name"]: e for e in await hub.contents("/Docs")}
    for name in ("a.txt", "Sub"):
        lf_entry = await lf.by_path(f"\\Docs\\{name}")
        assert docs[name]["id"] == str(lf_entry["id"])
    folder = await hub.folder("/Docs")
    assert folder["id"] == str((await lf.by_path("\\Docs"))["id"])
    # and the other way round: an entry the Laserfiche dialect made has the same id in the hub
    made = await lf.mkdir(int(folder["id"]), "FromLaserfiche")
    assert (await hub.folder("/Docs/FromLaserfiche"))["id"] == str(made["id"])
    root = await hub.folder("/")
    assert root["id"] == "1"
    assert root["path"] == "/"
    assert root["directory"] is True


async def test_list_by_id_form(hub):
    docs = await hub.folder("/Docs")
    by_path = await hub.contents("/Docs")
    by_id = await ok(await hub.get(f"/folders/{docs['id']}/contents"))
    assert by_id == by_path
    root = await ok(await hub.get("/folders/1/contents"))
    assert root == await hub.contents("/")


async def test_list_follows_disk(hub):
    (hub.root / "Docs" / "d.txt").write_bytes(b"delta")
    (hub.root / "Docs" / "b.txt").unlink()
    names = sorted(e["name"] for e in await hub.contents("/Docs"))
    assert names == ["Sub", "a.txt", "d.txt"]


async def test_list_errors(hub):
    await assert_problem(await hub.get("/folders/contents"), 400, "path")
    await assert_problem(await hub.get("/folders/contents", params={"path": "/Missing"}), 404)
    await assert_problem(await hub.get("/folders/contents", params={"path": "/Docs/Missing/x"}), 404)
    await assert_problem(await hub.get("/folders/contents", params={"path": "/top.txt"}), 400)
    top = await hub.file("/top.txt")
    await assert_problem(await hub.get(f"/folders/{top['id']}/contents"), 400)
    await assert_problem(await hub.get("/folders/987654/contents"), 404)


async def test_paging(hub):
    many = hub.root / "Many"
    many.mkdir()
    for i in range(1, 6):
        (many / f"f{i}.txt").write_bytes(b"x" * i)
    resp = await hub.get("/folders/contents", params={"path": "/Many", "pageSize": "2"})
    page1 = await ok(resp)
    assert [e["name"] for e in page1] == ["f1.txt", "f2.txt"]
    assert resp.headers["Elements-Total-Count"] == "5"
    assert resp.headers["Elements-Returned-Count"] == "2"
    token = resp.headers["Elements-Next-Page-Token"]
    assert token
    resp = await hub.get("/folders/contents", params={"path": "/Many", "pageSize": "2", "page": "2"})
    page2 = await ok(resp)
    assert [e["name"] for e in page2] == ["f3.txt", "f4.txt"]
    assert resp.headers["Elements-Returned-Count"] == "2"
    assert "Elements-Next-Page-Token" in resp.headers
    # the token is accepted back as nextPage
    resp = await hub.get("/folders/contents", params={"path": "/Many", "pageSize": "2", "nextPage": token})
    assert await ok(resp) == page2
    resp = await hub.get("/folders/contents", params={"path": "/Many", "pageSize": "2", "page": "3"})
    page3 = await ok(resp)
    assert [e["name"] for e in page3] == ["f5.txt"]
    assert resp.headers["Elements-Total-Count"] == "5"
    assert resp.headers["Elements-Returned-Count"] == "1"
    assert "Elements-Next-Page-Token" not in resp.headers
    # past the end: empty
    resp = await hub.get("/folders/contents", params={"path": "/Many", "pageSize": "2", "page": "9"})
    assert await ok(resp) == []
    assert resp.headers["Elements-Returned-Count"] == "0"
    # the default page holds them all
    resp = await hub.get("/folders/contents", params={"path": "/Many"})
    assert len(await ok(resp)) == 5
    assert resp.headers["Elements-Total-Count"] == "5"
    assert resp.headers["Elements-Returned-Count"] == "5"
    assert "Elements-Next-Page-Token" not in resp.headers
    # the id form pages the same way
    folder = await hub.folder("/Many")
    resp = await hub.get(f"/folders/{folder['id']}/contents", params={"pageSize": "2", "page": "2"})
    assert await ok(resp) == page2


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("page", "abc"),
        ("page", "-1"),
        ("page", "0"),
        ("page", "1.5"),
        ("pageSize", "abc"),
        ("pageSize", "0"),
        ("pageSize", "-5"),
    ],
)
async def test_paging_bad_values_are_400(hub, field_name, value):
    resp = await hub.get("/folders/contents", params={"path": "/Docs", field_name: value})
    await assert_problem(resp, 400, field_name)


# =========================================================================== create folder


async def test_create_folder_with_tags(hub):
    resp = await hub.post("/folders", json={"path": "/Docs/New", "tags": ["red", "blue"]})
    entry = await ok(resp)
    assert_hub_entry(entry, path="/Docs/New", directory=True)
    assert entry["tags"] == ["red", "blue"]
    assert (hub.root / "Docs" / "New").is_dir()
    assert list((hub.root / "Docs" / "New").iterdir()) == []
    got = await hub.folder("/Docs/New")
    assert got["id"] == entry["id"]
    assert got["tags"] == ["red", "blue"]
    by_id = await ok(await hub.get(f"/folders/{entry['id']}/metadata"))
    assert by_id == got
    listed = {e["name"]: e for e in await hub.contents("/Docs")}
    assert listed["New"]["tags"] == ["red", "blue"]


async def test_create_folder_name_and_query_path(hub):
    # `name` wins over the last segment of `path`
    entry = await ok(await hub.post("/folders", json={"path": "/Other/ignored", "name": "Named"}))
    assert_hub_entry(entry, path="/Other/Named", directory=True)
    assert (hub.root / "Other" / "Named").is_dir()
    assert not (hub.root / "Other" / "ignored").exists()
    # path in the query, no leading slash, parent matched case-insensitively
    entry = await ok(await hub.post("/folders", params={"path": "other/FromQuery"}, json={}))
    assert entry["path"] == "/Other/FromQuery"
    assert (hub.root / "Other" / "FromQuery").is_dir()
    # at the root
    entry = await ok(await hub.post("/folders", json={"path": "/AtRoot"}))
    assert_hub_entry(
        entry,
        path="/AtRoot",
        directory=True,
    )
    assert entry["tags"] == []
    assert (hub.root / "AtRoot").is_dir()


async def test_create_folder_taken_is_409(hub):
    before = visible_tree(hub.root)
    await assert_problem(await hub.post("/folders", json={"path": "/Docs"}), 409)
    await assert_problem(await hub.post("/folders", json={"path": "/docs"}), 409)
    await assert_problem(await hub.post("/folders", json={"path": "/Docs/Sub"}), 409)
    # a file holds the name
    await assert_problem(await hub.post("/folders", json={"path": "/top.txt"}), 409)
    # `name` takes the place of the last segment: "Docs" in the root
    await assert_problem(await hub.post("/folders", json={"path": "/x", "name": "Docs"}), 409)
    await assert_problem(await hub.post("/folders", json={"path": "/Docs/x", "name": "SUB"}), 409)
    assert visible_tree(hub.root) == before


async def test_create_folder_missing_parent_is_404(hub):
    before = visible_tree(hub.root)
    await assert_problem(await hub.post("/folders", json={"path": "/Missing/New"}), 404)
    await assert_problem(await hub.post("/folders", json={"path": "/Docs/Missing/Deeper/New"}), 404)
    await assert_problem(await hub.post("/folders", json={"path": "/top.txt/New"}), (400, 404))
    assert visible_tree(hub.root) == before


# =========================================================================== metadata


async def test_folder_metadata_get(hub):
    by_path = await hub.folder("/Docs/Sub")
    assert_hub_entry(by_path, path="/Docs/Sub", directory=True)
    assert await hub.folder("/docs/SUB") == by_path
    assert await ok(await hub.get(f"/folders/{by_path['id']}/metadata")) == by_path
    await assert_problem(await hub.get("/folders/metadata", params={"path": "/top.txt"}), 400)
    await assert_problem(await hub.get("/folders/metadata", params={"path": "/Nope"}), 404)
    await assert_problem(await hub.get("/folders/metadata"), 400, "path")


async def test_file_metadata_get(hub):
    by_path = await hub.file("/Docs/a.txt")
    assert_hub_entry(by_path, path="/Docs/a.txt", directory=False, size=len(ALPHA))
    assert await hub.file("/DOCS/A.TXT") == by_path
    assert await ok(await hub.get(f"/files/{by_path['id']}/metadata")) == by_path
    await assert_problem(await hub.get("/files/metadata", params={"path": "/Docs"}), 400)
    docs = await hub.folder("/Docs")
    await assert_problem(await hub.get(f"/files/{docs['id']}/metadata"), 400)
    await assert_problem(await hub.get("/files/metadata", params={"path": "/Docs/nope.txt"}), 404)


async def test_folder_patch_rename_move_tags(hub):
    sub = await hub.folder("/Docs/Sub")
    # rename in place
    renamed = await ok(
        await hub.patch("/folders/metadata", params={"path": "/Docs/Sub"}, json={"name": "Renamed"})
    )
    assert_hub_entry(renamed, path="/Docs/Renamed", directory=True)
    assert renamed["id"] == sub["id"]
    assert (hub.root / "Docs" / "Renamed" / "c.txt").read_bytes() == b"charlie"
    assert not (hub.root / "Docs" / "Sub").exists()
    # move (new parent = parent of path, name = its last segment), by id
    moved = await ok(await hub.patch(f"/folders/{sub['id']}/metadata", json={"path": "/Other/Moved"}))
    assert_hub_entry(moved, path="/Other/Moved", directory=True)
    assert moved["id"] == sub["id"]
    assert (hub.root / "Other" / "Moved" / "c.txt").read_bytes() == b"charlie"
    assert not (hub.root / "Docs" / "Renamed").exists()
    # move and rename with `name` winning over the last segment
    both = await ok(
        await hub.patch(
            "/folders/metadata", params={"path": "/Other/Moved"}, json={"path": "/x", "name": "Back"}
        )
    )
    assert both["path"] == "/Back"
    assert (hub.root / "Back" / "c.txt").is_file()
    # tags only: nothing moves
    tagged = await ok(await hub.patch("/folders/metadata", params={"path": "/Back"}, json={"tags": ["t1"]}))
    assert tagged["path"] == "/Back"
    assert tagged["tags"] == ["t1"]
    assert (await hub.folder("/Back"))["tags"] == ["t1"]
    assert (hub.root / "Back").is_dir()
    # the child moved with it, and kept its id
    child = await hub.file("/Back/c.txt")
    assert child["path"] == "/Back/c.txt"


async def test_folder_patch_conflicts_and_errors(hub):
    before = visible_tree(hub.root)
    sub = await hub.folder("/Docs/Sub")
    await assert_problem(await hub.patch(f"/folders/{sub['id']}/metadata", json={"name": "a.txt"}), 409)
    await assert_problem(
        await hub.patch(f"/folders/{sub['id']}/metadata", json={"path": "/Other"}), (400, 409)
    )
    await assert_problem(await hub.patch(f"/folders/{sub['id']}/metadata", json={"path": "/Docs/b.txt"}), 409)
    await assert_problem(await hub.patch(f"/folders/{sub['id']}/metadata", json={"path": "/Missing/x"}), 404)
    # into its own subtree
    docs = await hub.folder("/Docs")
    await assert_problem(
        await hub.patch(f"/folders/{docs['id']}/metadata", json={"path": "/Docs/Sub/In"}), 400
    )
    await assert_problem(
        await hub.patch("/folders/metadata", params={"path": "/top.txt"}, json={"name": "x"}), 400
    )
    await assert_problem(
        await hub.patch("/folders/metadata", params={"path": "/Nope"}, json={"name": "x"}), 404
    )
    assert visible_tree(hub.root) == before


async def test_file_patch_rename_move_tags(hub):
    a = await hub.file("/Docs/a.txt")
    renamed = await ok(
        await hub.patch("/files/metadata", params={"path": "/Docs/a.txt"}, json={"name": "A2.txt"})
    )
    assert_hub_entry(renamed, path="/Docs/A2.txt", directory=False, size=len(ALPHA))
    assert renamed["id"] == a["id"]
    assert (hub.root / "Docs" / "A2.txt").read_bytes() == ALPHA
    assert not (hub.root / "Docs" / "a.txt").exists()
    moved = await ok(await hub.patch(f"/files/{a['id']}/metadata", json={"path": "/Other/moved.txt"}))
    assert_hub_entry(moved, path="/Other/moved.txt", directory=False)
    assert moved["id"] == a["id"]
    assert (hub.root / "Other" / "moved.txt").read_bytes() == ALPHA
    assert not (hub.root / "Docs" / "A2.txt").exists()
    tagged = await ok(await hub.patch(f"/files/{a['id']}/metadata", json={"tags": ["x", "y"]}))
    assert tagged["tags"] == ["x", "y"]
    assert tagged["path"] == "/Other/moved.txt"
    assert (await hub.file("/Other/moved.txt"))["tags"] == ["x", "y"]
    # the Laserfiche dialect sees the move too
    lf = Api(hub.client, await sign_in(hub.client))
    assert (await lf.entry(int(a["id"])))["fullPath"] == "\\Other\\moved.txt"
    # conflicts and wrong kinds
    before = visible_tree(hub.root)
    await assert_problem(await hub.patch(f"/files/{a['id']}/metadata", json={"path": "/top.txt"}), 409)
    await assert_problem(await hub.patch(f"/files/{a['id']}/metadata", json={"path": "/TOP.TXT"}), 409)
    await assert_problem(await hub.patch(f"/files/{a['id']}/metadata", json={"path": "/Nope/x.txt"}), 404)
    await assert_problem(
        await hub.patch("/files/metadata", params={"path": "/Docs"}, json={"name": "x"}), 400
    )
    assert visible_tree(hub.root) == before


# =========================================================================== upload and download


async def test_upload_and_overwrite(hub):
    resp = await hub.upload("/Docs/new.bin", b"first version")
    entry = await ok(resp)
    assert_hub_entry(entry, path="/Docs/new.bin", directory=False, size=13)
    assert (hub.root / "Docs" / "new.bin").read_bytes() == b"first version"
    # exists: refused without overwrite, bytes unchanged
    for params in ({}, {"overwrite": "false"}):
        await assert_problem(await hub.upload("/Docs/new.bin", b"second!", **params), 409)
        await assert_problem(await hub.upload("/docs/NEW.bin", b"second!", **params), 409)
    assert (hub.root / "Docs" / "new.bin").read_bytes() == b"first version"
    # overwrite: replaced in place, same id
    again = await ok(await hub.upload("/Docs/new.bin", b"second version, longer", overwrite="true"))
    assert again["id"] == entry["id"]
    assert again["size"] == 22
    assert (hub.root / "Docs" / "new.bin").read_bytes() == b"second version, longer"
    assert (await hub.file("/Docs/new.bin"))["size"] == 22
    resp = await hub.get(f"/files/{entry['id']}")
    assert resp.status == 200
    assert await resp.read() == b"second version, longer"
    # only one file by that name on disk, no leftovers
    assert sorted(p.name for p in (hub.root / "Docs").iterdir()) == ["Sub", "a.txt", "b.txt", "new.bin"]


async def test_upload_overwrite_of_existing_disk_file_keeps_laserfiche_id(hub):
    lf = Api(hub.client, await sign_in(hub.client))
    before = await lf.by_path("\\Docs\\b.txt")
    entry = await ok(await hub.upload("/Docs/b.txt", b"replaced", overwrite="true"))
    assert entry["id"] == str(before["id"])
    assert (hub.root / "Docs" / "b.txt").read_bytes() == b"replaced"


async def test_upload_errors(hub):
    before = visible_tree(hub.root)
    await assert_problem(await hub.upload("/Missing/x.txt", b"x"), 404)
    # missing `file` part
    resp = await hub.post("/files", params={"path": "/Docs/nofile.txt"}, data=file_form(b"x", "other"))
    await assert_problem(resp, 400, "file")
    resp = await hub.post("/files", params={"path": "/Docs/nofile.txt"})
    await assert_problem(resp, 400)
    await assert_problem(await hub.post("/files", data=file_form(b"x")), 400, "path")
    # a folder holds the name
    await assert_problem(await hub.upload("/Docs/Sub", b"x", overwrite="true"), (400, 409))
    await assert_problem(await hub.upload("/Docs/new.txt", b"x", overwrite="maybe"), 400, "overwrite")
    await assert_problem(await hub.upload("/", b"x"), 400)
    assert visible_tree(hub.root) == before


async def test_download_bytes_and_range(hub):
    resp = await hub.get("/files", params={"path": "/Docs/a.txt"})
    assert resp.status == 200, await resp.text()
    assert await resp.read() == ALPHA
    cd = resp.headers["Content-Disposition"]
    assert "attachment" in cd and "a.txt" in cd
    assert "X-RequestId" in resp.headers
    a = await hub.file("/Docs/a.txt")
    resp = await hub.get(f"/files/{a['id']}")
    assert resp.status == 200
    assert await resp.read() == ALPHA
    resp = await hub.get("/files", params={"path": "/docs/A.TXT"}, headers={"Range": "bytes=2-5"})
    assert resp.status == 206, await resp.text()
    assert await resp.read() == ALPHA[2:6]
    assert resp.headers["Content-Range"] == f"bytes 2-5/{len(ALPHA)}"
    resp = await hub.get(f"/files/{a['id']}", headers={"Range": "bytes=-4"})
    assert resp.status == 206
    assert await resp.read() == ALPHA[-4:]
    resp = await hub.get(f"/files/{a['id']}", headers={"Range": f"bytes={len(ALPHA) + 10}-"})
    assert resp.status == 416


async def test_download_errors(hub):
    await assert_problem(await hub.get("/files", params={"path": "/Docs"}), 400)
    await assert_problem(await hub.get("/files", params={"path": "/"}), 400)
    await assert_problem(await hub.get("/files", params={"path": "/Docs/none.txt"}), 404)
    await assert_problem(await hub.get("/files"), 400, "path")
    docs = await hub.folder("/Docs")
    await assert_problem(await hub.get(f"/files/{docs['id']}"), 400)
    await assert_problem(await hub.get("/files/1"), 400)


# =========================================================================== copy


SEED_BODY = {"path": "/testfoldercopy", "tags": ["TestFolderCopy"], "name": "TestFolderCopy"}


async def test_copy_folder_seed_request(hub):
    src_before = disk_tree(hub.root / "TestFolderCreate")
    resp = await hub.post("/folders/copy", params={"path": "/TestFolderCreate"}, json=SEED_BODY)
    entry = await ok(resp)
    assert_hub_entry(entry, path="/TestFolderCopy", directory=True)
    assert entry["tags"] == ["TestFolderCopy"]
    assert (hub.root / "TestFolderCopy").is_dir()
    assert disk_tree(hub.root / "TestFolderCopy") == src_before
    assert (hub.root / "TestFolderCopy" / "testUploadFile.txt").read_bytes() == b"uploaded by the seed\n"
    assert disk_tree(hub.root / "TestFolderCreate") == src_before
    src = await hub.folder("/TestFolderCreate")
    assert entry["id"] != src["id"]
    got = await hub.folder("/testfoldercopy")
    assert got["id"] == entry["id"]
    assert got["tags"] == ["TestFolderCopy"]
    inside = await hub.contents("/TestFolderCopy")
    assert [e["path"] for e in inside] == ["/TestFolderCopy/testUploadFile.txt"]
    # again: the name is taken now
    before = visible_tree(hub.root)
    resp = await hub.post("/folders/copy", params={"path": "/TestFolderCreate"}, json=SEED_BODY)
    await assert_problem(resp, 409)
    assert visible_tree(hub.root) == before


async def test_copy_folder_by_id_and_nested(hub):
    docs = await hub.folder("/Docs")
    entry = await ok(await hub.post(f"/folders/{docs['id']}/copy", json={"path": "/Other/DocsCopy"}))
    assert_hub_entry(entry, path="/Other/DocsCopy", directory=True)
    assert entry["tags"] == []
    assert disk_tree(hub.root / "Other" / "DocsCopy") == disk_tree(hub.root / "Docs")
    # the copy's entries are new entries, with ids of their own
    copied = await hub.file("/Other/DocsCopy/Sub/c.txt")
    original = await hub.file("/Docs/Sub/c.txt")
    assert copied["id"] != original["id"]


async def test_copy_folder_errors(hub):
    before = visible_tree(hub.root)
    copy = "/folders/copy"
    await assert_problem(await hub.post(copy, params={"path": "/Docs"}, json={"path": "/Docs/Sub/In"}), 400)
    await assert_problem(await hub.post(copy, params={"path": "/Docs"}, json={"path": "/Docs/In"}), 400)
    await assert_problem(await hub.post(copy, params={"path": "/Missing"}, json={"path": "/X"}), 404)
    await assert_problem(await hub.post(copy, params={"path": "/Docs"}, json={"path": "/Missing/X"}), 404)
    await assert_problem(await hub.post(copy, params={"path": "/Docs"}, json={"path": "/Other"}), 409)
    await assert_problem(await hub.post(copy, params={"path": "/Docs"}, json={"path": "/TOP.txt"}), 409)
    await assert_problem(await hub.post(copy, params={"path": "/top.txt"}, json={"path": "/X"}), 400)
    await assert_problem(await hub.post(copy, params={"path": "/"}, json={"path": "/Other/RootCopy"}), 400)
    await assert_problem(await hub.post(copy, params={"path": "/Docs"}, json={}), 400, "path")
    await assert_problem(await hub.post(copy, json={"path": "/X"}), 400, "path")
    assert visible_tree(hub.root) == before


async def test_copy_file(hub):
    entry = await ok(
        await hub.post("/files/copy", params={"path": "/Docs/a.txt"}, json={"path": "/Other/b.txt"})
    )
    assert_hub_entry(entry, path="/Other/b.txt", directory=False, size=len(ALPHA))
    assert (hub.root / "Other" / "b.txt").read_bytes() == ALPHA
    assert (hub.root / "Docs" / "a.txt").read_bytes() == ALPHA
    a = await hub.file("/Docs/a.txt")
    assert entry["id"] != a["id"]
    # id form, `name` wins over the last segment
    named = await ok(
        await hub.post(f"/files/{a['id']}/copy", json={"path": "/Other/ignored.txt", "name": "c.txt"})
    )
    assert named["path"] == "/Other/c.txt"
    assert (hub.root / "Other" / "c.txt").read_bytes() == ALPHA
    assert not (hub.root / "Other" / "ignored.txt").exists()
    # errors
    before = visible_tree(hub.root)
    await assert_problem(await hub.post(f"/files/{a['id']}/copy", json={"path": "/Other/B.TXT"}), 409)
    await assert_problem(await hub.post(f"/files/{a['id']}/copy", json={"path": "/Missing/x.txt"}), 404)
    await assert_problem(await hub.post("/files/copy", params={"path": "/Docs"}, json={"path": "/Y"}), 400)
    await assert_problem(
        await hub.post("/files/copy", params={"path": "/nope.txt"}, json={"path": "/Y"}), 404
    )
    await assert_problem(await hub.post(f"/files/{a['id']}/copy", json={}), 400, "path")
    assert visible_tree(hub.root) == before


# =========================================================================== delete


async def test_delete_file(hub):
    a = await hub.file("/Docs/a.txt")
    resp = await hub.delete("/files", params={"path": "/Docs/a.txt"})
    body = await ok(resp)
    assert body == {"events": [event("/Docs/a.txt", "file")]}
    assert not (hub.root / "Docs" / "a.txt").exists()
    assert (hub.root / "Docs" / "b.txt").exists()
    await assert_problem(await hub.get("/files/metadata", params={"path": "/Docs/a.txt"}), 404)
    await assert_problem(await hub.get(f"/files/{a['id']}"), 404)
    lf = Api(hub.client, await sign_in(hub.client))
    await assert_problem(await lf.get(f"/Entries/{a['id']}"), 404)
    # id form, case-insensitive path in the result keeps the stored case
    b = await hub.file("/docs/B.TXT")
    body = await ok(await hub.delete(f"/files/{b['id']}"))
    assert body == {"events": [event("/Docs/b.txt", "file")]}
    assert not (hub.root / "Docs" / "b.txt").exists()
    # gone now
    await assert_problem(await hub.delete(f"/files/{b['id']}"), 404)
    await assert_problem(await hub.delete("/files", params={"path": "/Docs/b.txt"}), 404)


async def test_delete_folder_tree(hub):
    (hub.root / "Docs" / "Sub" / "Deep").mkdir()
    (hub.root / "Docs" / "Sub" / "Deep" / "D.txt").write_bytes(b"d")
    resp = await hub.delete("/folders", params={"path": "/Docs", "emptyTrash": "true"})
    body = await ok(resp)
    assert set(body) == {"events"}
    expected = [
        event("/Docs", "folder"),
        event("/Docs/a.txt", "file"),
        event("/Docs/b.txt", "file"),
        event("/Docs/Sub", "folder"),
        event("/Docs/Sub/c.txt", "file"),
        event("/Docs/Sub/Deep", "folder"),
        event("/Docs/Sub/Deep/D.txt", "file"),
    ]
    key = lambda e: e["metadata"]["path"]  # noqa: E731
    assert sorted(body["events"], key=key) == sorted(expected, key=key)
    assert not (hub.root / "Docs").exists()
    assert (hub.root / "Other").is_dir() and (hub.root / "top.txt").exists()
    await assert_problem(await hub.get("/folders/metadata", params={"path": "/Docs"}), 404)
    names = {e["name"] for e in await hub.contents("/")}
    assert names == {"Other", "top.txt", "TestFolderCreate"}


async def test_delete_folder_by_id(hub):
    folder = await hub.folder("/TestFolderCreate")
    body = await ok(await hub.delete(f"/folders/{folder['id']}", params={"emptyTrash": "false"}))
    key = lambda e: e["metadata"]["path"]  # noqa: E731
    assert sorted(body["events"], key=key) == [
        event("/TestFolderCreate", "folder"),
        event("/TestFolderCreate/testUploadFile.txt", "file"),
    ]
    assert not (hub.root / "TestFolderCreate").exists()
    await assert_problem(await hub.delete(f"/folders/{folder['id']}"), 404)


async def test_delete_wrong_kind_and_root(hub):
    before = visible_tree(hub.root)
    for params in ({"path": "/"}, {"path": ""}):
        await assert_problem(await hub.delete("/folders", params=params), 400)
    await assert_problem(await hub.delete("/folders/1"), 400)
    await assert_problem(await hub.delete("/folders"), 400, "path")
    await assert_problem(await hub.delete("/files", params={"path": "/Docs"}), 400)
    await assert_problem(await hub.delete("/folders", params={"path": "/top.txt"}), 400)
    docs = await hub.folder("/Docs")
    await assert_problem(await hub.delete(f"/files/{docs['id']}"), 400)
    await assert_problem(await hub.delete("/folders", params={"path": "/Missing"}), 404)
    await assert_problem(await hub.delete("/files", params={"path": "/Docs/none.txt"}), 404)
    assert visible_tree(hub.root) == before
    assert (hub.root / HIDDEN).is_dir()


# =========================================================================== hostile input


@dataclass
class Jail:
    tmp: Path
    root: Path
    canary: Path
    hub: Hub

    def snapshot(self):
        return tree_snapshot(self.tmp, exclude_hidden_of=self.root)

    def assert_canary_intact(self):
        assert self.canary.read_bytes() == CANARY
        assert (self.root.parent / "root2" / "canary.txt").read_bytes() == CANARY


@pytest.fixture
async def jail(tmp_path, aiohttp_client) -> Jail:
    root, _, canary = make_jail(tmp_path, CANARY)
    client = await aiohttp_client(create_app(make_settings(root)))
    return Jail(tmp_path, root, canary, Hub(client, root))


async def _refused(resp, allowed=(400, 404)) -> None:
    raw = await resp.read()
    assert CANARY not in raw
    await assert_problem(resp, allowed)


HOSTILE_PATHS = [
    "..",
    "../outside/canary.txt",
    "/..",
    "/../root2/canary.txt",
    "/../../../outside/canary.txt",
    "/real/../../root2/canary.txt",
    "/real/../top.txt",
    "/real/..",
    "/" + "../" * 12 + "etc/passwd",
    "\\..\\root2\\canary.txt",
    "/real\\..\\..\\root2",
    "\\real",
    "C:\\Windows\\win.ini",
    "\\\\server\\share\\x",
    "/etc/passwd",
    "//etc/passwd",
    "/top.txt\x00.pdf",
    "/real/\x00",
    "/real/a\x01b",
    "/real/%2e%2e/%2e%2e/root2/canary.txt",
    "/%2E%2E/root2",
]


async def _hostile_round(jail: Jail, p: str) -> None:
    """Every hub route with `p` as the path it acts on, and as a destination."""
    h = jail.hub
    q = {"path": p}
    await _refused(await h.get("/folders/contents", params=q))
    await _refused(await h.get("/folders/metadata", params=q))
    await _refused(await h.get("/files", params=q))
    await _refused(await h.get("/files/metadata", params=q))
    await _refused(await h.post("/folders", json={"path": p}))
    await _refused(await h.post("/folders", json={"path": p + "/new"}))
    await _refused(await h.upload(p, b"OVERWRITE", overwrite="true"))
    await _refused(await h.upload(p + "/x.txt", b"OVERWRITE", overwrite="true"))
    await _refused(await h.post("/folders/copy", params=q, json={"path": "/copied"}))
    await _refused(await h.post("/folders/copy", params={"path": "/real"}, json={"path": p}))
    await _refused(await h.post("/files/copy", params=q, json={"path": "/copied.txt"}))
    await _refused(await h.post("/files/copy", params={"path": "/top.txt"}, json={"path": p}))
    await _refused(await h.patch("/folders/metadata", params=q, json={"name": "renamed"}))
    await _refused(await h.patch("/folders/metadata", params={"path": "/real"}, json={"path": p}))
    await _refused(await h.patch("/files/metadata", params=q, json={"name": "renamed.txt"}))
    await _refused(await h.patch("/files/metadata", params={"path": "/top.txt"}, json={"path": p}))
    await _refused(await h.delete("/folders", params=q))
    await _refused(await h.delete("/files", params=q))


@pytest.mark.parametrize("p", HOSTILE_PATHS)
async def test_hostile_paths(jail, p):
    before = jail.snapshot()
    await _hostile_round(jail, p)
    assert jail.snapshot() == before
    jail.assert_canary_intact()


async def test_absolute_os_paths(jail):
    before = jail.snapshot()
    for p in (str(jail.canary), str(jail.root / "top.txt"), str(jail.root), str(jail.canary.parent)):
        await _hostile_round(jail, p)
    assert jail.snapshot() == before
    jail.assert_canary_intact()


@pytest.mark.parametrize(
    "encoded",
    [
        "%2e%2e",
        "%2E%2E%2Foutside%2Fcanary.txt",
        "%2F%2e%2e%2Froot2%2Fcanary.txt",
        "%2Freal%2F%2e%2e%2F%2e%2e%2Froot2%2Fcanary.txt",
        "..%2F..%2F..%2Foutside%2Fcanary.txt",
        "%5C..%5Croot2%5Ccanary.txt",
        "%2Ftop.txt%00",
        "%00",
        "%2F%C0%AE%C0%AE%2Froot2%2Fcanary.txt",
        "%2Freal%2F%FF%FE%2F..%2F..%2Froot2",
    ],
)
async def test_percent_encoded_paths(jail, encoded):
    h = jail.hub
    before = jail.snapshot()
    q = f"?path={encoded}"
    for method, route in (
        ("GET", "/folders/contents"),
        ("GET", "/folders/metadata"),
        ("GET", "/files"),
        ("GET", "/files/metadata"),
        ("DELETE", "/folders"),
        ("DELETE", "/files"),
    ):
        await _refused(await h.raw(method, route + q))
    await _refused(await h.raw("POST", "/folders" + q, json={}))
    await _refused(await h.raw("POST", "/folders/copy" + q, json={"path": "/copied"}))
    await _refused(await h.raw("POST", "/files/copy" + q, json={"path": "/copied.txt"}))
    await _refused(await h.raw("PATCH", "/folders/metadata" + q, json={"name": "renamed"}))
    await _refused(await h.raw("POST", "/files" + q + "&overwrite=true", data=file_form(b"OVERWRITE")))
    assert jail.snapshot() == before
    jail.assert_canary_intact()


async def test_invalid_utf8_path_stays_inside_root(jail):
    """`%FF%FE` is not UTF-8: refused, or taken (as the Laserfiche dialect takes it) for some name that
    is one segment inside the root; either way nothing outside the root changes."""
    h = jail.hub
    outside = jail.snapshot()
    inside_before = set(os.listdir(jail.root))
    resp = await h.raw("POST", "/folders?path=%2F%FF%FE", json={})
    text = await resp.text()
    if resp.status == 200:
        entry = json.loads(text)
        assert entry["directory"] is True
        assert entry["path"] == "/" + entry["name"]
        assert "/" not in entry["name"] and ".." not in entry["name"]
        assert set(os.listdir(jail.root)) - inside_before == {entry["name"]}
        assert (jail.root / entry["name"]).is_dir()
        os.rmdir(jail.root / entry["name"])
    else:
        await assert_problem(resp, 400)
    resp = await h.raw("GET", "/files?path=%2F%FF%FE%2F..%2Ftop.txt")
    await _refused(resp)
    assert jail.snapshot() == outside
    jail.assert_canary_intact()


async def test_symlinks_are_invisible(jail):
    r = jail.root
    outside = jail.canary.parent
    sibling = r.parent / "root2"
    os.symlink(outside, r / "link_out")
    os.symlink(jail.canary, r / "link_file.txt")
    os.symlink("../root2", r / "link_rel_out")
    os.symlink(outside, r / "real" / "inner_link")
    outside_before = tree_snapshot(outside)
    sibling_before = tree_snapshot(sibling)
    h = jail.hub
    assert {e["name"] for e in await h.contents("/")} == {"real", "top.txt"}
    assert {e["name"] for e in await h.contents("/real")} == {"r.txt"}
    before = jail.snapshot()
    links = ("/link_out", "/link_file.txt", "/link_rel_out", "/real/inner_link")
    through = ("/link_out/canary.txt", "/link_rel_out/canary.txt", "/real/inner_link/canary.txt")
    for p in links + through:
        q = {"path": p}
        await _refused(await h.get("/folders/contents", params=q))
        await _refused(await h.get("/folders/metadata", params=q))
        await _refused(await h.get("/files", params=q))
        await _refused(await h.get("/files/metadata", params=q))
        await _refused(await h.post("/folders/copy", params=q, json={"path": "/copied"}))
        await _refused(await h.post("/files/copy", params=q, json={"path": "/copied.txt"}))
        await _refused(await h.patch("/folders/metadata", params=q, json={"name": "renamed"}))
        await _refused(await h.patch("/files/metadata", params=q, json={"name": "renamed.txt"}))
        await _refused(await h.delete("/folders", params=q))
        await _refused(await h.delete("/files", params=q))
    # writes through a link: the parent folder is not in the repository
    for p in ("/link_out", "/link_rel_out", "/real/inner_link"):
        await _refused(await h.upload(p + "/new.txt", b"OVERWRITE", overwrite="true"))
        await _refused(await h.upload(p + "/canary.txt", b"OVERWRITE", overwrite="true"))
        await _refused(await h.post("/folders", json={"path": p + "/NewDir"}))
        await _refused(await h.post("/folders/copy", params={"path": "/real"}, json={"path": p + "/copy"}))
        await _refused(await h.post("/files/copy", params={"path": "/top.txt"}, json={"path": p + "/t.txt"}))
        await _refused(await h.patch("/files/metadata", params={"path": "/top.txt"}, json={"path": p + "/t"}))
    assert jail.snapshot() == before
    # writes onto a link's own name: whatever the answer, nothing outside changes
    await h.upload("/link_file.txt", b"OVERWRITE", overwrite="true")
    await h.post("/folders", json={"path": "/link_out"})
    await h.patch("/files/metadata", params={"path": "/top.txt"}, json={"name": "link_rel_out"})
    await h.post("/files/copy", params={"path": "/real/r.txt"}, json={"path": "/link_file.txt"})
    assert tree_snapshot(outside) == outside_before
    assert tree_snapshot(sibling) == sibling_before
    jail.assert_canary_intact()


# sent byte for byte in the URL path
BAD_IDS = [
    "abc",
    "-1",
    "0",
    "1.5",
    "99999999999",
    "9" * 30,
    "1e3",
    "0x10",
    "%201",  # " 1": int() would take it
    "%EF%BC%91",  # fullwidth digit one: str.isdigit() and int() would take it
    "%D9%A1",  # Arabic-Indic digit one
    "%2e%2e",
    "..%2F..",
    "%00",
]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_ids(jail, bad):
    h = jail.hub
    before = jail.snapshot()
    for method, route, kw in (
        ("GET", "/folders/{}/contents", {}),
        ("GET", "/folders/{}/metadata", {}),
        ("GET", "/files/{}", {}),
        ("GET", "/files/{}/metadata", {}),
        ("PATCH", "/folders/{}/metadata", {"json": {"name": "renamed"}}),
        ("PATCH", "/files/{}/metadata", {"json": {"name": "renamed.txt"}}),
        ("POST", "/folders/{}/copy", {"json": {"path": "/copied"}}),
        ("POST", "/files/{}/copy", {"json": {"path": "/copied.txt"}}),
        ("DELETE", "/folders/{}", {}),
        ("DELETE", "/files/{}", {}),
    ):
        await _refused(await h.raw(method, route.format(bad), **kw), (400, 404, 405))
    assert jail.snapshot() == before
    jail.assert_canary_intact()


FOLDER_BODIES = [
    (b"not json", None),
    (b"[]", None),
    (b"{", None),
    (b"null", None),
    (b"{}", "path"),
    (b'{"path": 5}', "path"),
    (b'{"path": null}', "path"),
    (b'{"path": ["/a"]}', "path"),
    (b'{"path": "/real/n", "tags": "red"}', "tags"),
    (b'{"path": "/real/n", "tags": [1]}', "tags"),
    (b'{"path": "/real/n", "tags": {"a": 1}}', "tags"),
    (b'{"path": "/real/n", "name": 5}', "name"),
    (b'{"path": "/real/n", "name": ""}', "name"),
    (b'{"path": "/real/n", "name": ".."}', "name"),
    (b'{"path": "/real/n", "name": "a/b"}', "name"),
    (b'{"path": "/real/n", "name": "a\\\\b"}', "name"),
    (b'{"path": "/real/n", "name": "x\\u0000y"}', "name"),
    (b'{"path": "/real/n", "name": "' + b"x" * 256 + b'"}', "name"),
]


@pytest.mark.parametrize(("body", "field_name"), FOLDER_BODIES)
async def test_bad_bodies(jail, body, field_name):
    h = jail.hub
    before = jail.snapshot()
    json_h = {"Content-Type": "application/json"}
    await assert_problem(await h.post("/folders", data=body, headers=json_h), 400, field_name)
    await assert_problem(
        await h.post("/folders/copy", params={"path": "/real"}, data=body, headers=json_h), 400, field_name
    )
    if field_name != "path":  # PATCH needs no path; a body without one is a valid rename or tag
        for route, target in (("/folders/metadata", "/real"), ("/files/metadata", "/top.txt")):
            resp = await h.patch(route, params={"path": target}, data=body, headers=json_h)
            await assert_problem(resp, 400, field_name)
    if field_name in (None, "path", "name"):  # a file copy takes {path, name?}
        resp = await h.post("/files/copy", params={"path": "/top.txt"}, data=body, headers=json_h)
        await assert_problem(resp, 400, field_name)
    assert jail.snapshot() == before


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"name": 5}, "name"),
        ({"name": ""}, "name"),
        ({"configuration": "x"}, "configuration"),
        ({"configuration": [1]}, "configuration"),
        ({"configuration": {CALLBACK: "ftp://x/y"}}, "callback"),
        ({"configuration": {CALLBACK: 5}}, "callback"),
    ],
)
async def test_bad_instance_patch_bodies(jail, body, field_name):
    h = jail.hub
    before = await ok(await h.platform("GET", "/instances/1"))
    await assert_problem(await h.platform("PATCH", "/instances/1", json=body), 400, field_name)
    assert await ok(await h.platform("GET", "/instances/1")) == before
    await assert_problem(
        await h.platform("PATCH", "/instances/1", data=b"{", headers={"Content-Type": "application/json"}),
        400,
    )
