"""Limits: body, depth, query and header sizes answer clear problems and change nothing; secrets
never reach the log."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from conftest import PROBLEM_KEYS, Api, sign_in, tree_snapshot
from test_operations import open_api, start_copy, token_of, wait_done
from webhook_receiver import ELEMENTS_SETTINGS, HUB, hub_auth

from server.repository import MAX_DEPTH

pytestmark = pytest.mark.timeout(120)


async def assert_problem(resp: aiohttp.ClientResponse, status: int, title: str | None = None) -> dict:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert PROBLEM_KEYS <= set(body)
    if title is not None:
        assert body["title"] == title, body
    return body


def nest(root: Path, depth: int) -> Path:
    """Folders l1/l2/…/l{depth} under root; the deepest."""
    path = root.joinpath(*(f"l{i}" for i in range(1, depth + 1)))
    path.mkdir(parents=True)
    return path


def path_of(depth: int) -> str:
    return "\\" + "\\".join(f"l{i}" for i in range(1, depth + 1))


async def test_json_body_over_a_mebibyte_is_413(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root)
    body = b'{"entryType": "Folder", "name": "' + b"x" * (1024 * 1024) + b'"}'
    resp = await api.post(
        "/Entries/1/Laserfiche.Repository.Folder/children",
        data=io.BytesIO(body),
        headers={"Content-Type": "application/json"},
    )
    await assert_problem(resp, 413, "Request entity too large.")
    assert os.listdir(storage_root) == [".sandbox"]


async def test_folders_nest_at_most_max_depth(aiohttp_client, storage_root):
    deepest = nest(storage_root, MAX_DEPTH - 1)
    api = await open_api(aiohttp_client, storage_root, **ELEMENTS_SETTINGS)
    parent = await api.by_path(path_of(MAX_DEPTH - 1))
    made = await api.create_folder(parent["id"], f"l{MAX_DEPTH}")
    assert made.status == 201, await made.text()
    last = (await made.json())["id"]
    # one more level is refused, and nothing is made
    body = await assert_problem(await api.create_folder(last, "too-deep"), 400)
    assert str(MAX_DEPTH) in body["detail"]
    assert os.listdir(deepest / f"l{MAX_DEPTH}") == []
    # a document may still live in the deepest folder
    assert (await api.import_doc(last, "leaf.txt", b"leaf")).status == 201
    # the Elements dialect is bound by the same limit
    deep_path = "/" + "/".join(f"l{i}" for i in range(1, MAX_DEPTH + 1)) + "/nope"
    resp = await api.client.post(f"{HUB}/folders", params={"path": deep_path}, json={}, headers=hub_auth())
    assert resp.status == 400, await resp.text()
    assert sorted(os.listdir(deepest / f"l{MAX_DEPTH}")) == ["leaf.txt"]


async def test_a_move_or_copy_that_would_nest_too_deep_is_refused(aiohttp_client, storage_root):
    nest(storage_root, MAX_DEPTH - 1)
    (storage_root / "tree" / "sub").mkdir(parents=True)
    (storage_root / "tree" / "sub" / "f.txt").write_bytes(b"f")
    api = await open_api(aiohttp_client, storage_root)
    deep = await api.by_path(path_of(MAX_DEPTH - 1))
    tree = await api.by_path("\\tree")
    before = tree_snapshot(storage_root, storage_root)

    # tree/sub would land at MAX_DEPTH + 1
    resp = await api.patch(f"/Entries/{tree['id']}", json={"parentId": deep["id"]})
    await assert_problem(resp, 400)
    assert tree_snapshot(storage_root, storage_root) == before

    # a copy is refused before a token is issued, and nothing is made
    await assert_problem(await start_copy(api, deep["id"], tree["id"], "tree"), 400)
    resp = await api.post(
        f"/Entries/{deep['id']}/Laserfiche.Repository.Folder/children",
        json={"sourceId": tree["id"], "name": "t"},
    )
    await assert_problem(resp, 400)
    assert tree_snapshot(storage_root, storage_root) == before

    # one level further up, the whole copy fits
    upper = await api.by_path(path_of(MAX_DEPTH - 2))
    resp = await start_copy(api, upper["id"], tree["id"], "tree")
    _, _, body = await wait_done(api, await token_of(resp))
    assert body["status"] == "Completed", body

    # a folder copied straight into a folder at MAX_DEPTH is refused at once
    resp = await api.post(
        f"/Entries/{deep['id']}/Laserfiche.Repository.Folder/children",
        json={"entryType": "Folder", "name": "m"},
    )
    m = (await resp.json())["id"]
    await assert_problem(await start_copy(api, m, tree["id"], "t"), 400)


async def test_long_query_string_is_414_and_long_header_is_431(aiohttp_client, storage_root):
    api = await open_api(aiohttp_client, storage_root)
    resp = await api.get("/Entries/1/Laserfiche.Repository.Folder/children", params={"$select": "a" * 5000})
    await assert_problem(resp, 414, "URI too long.")
    resp = await api.get("/Entries/1", headers={"X-Padding": "p" * 5000})
    await assert_problem(resp, 431, "Request header fields too large.")
    # before any credentials are looked at: an oversized Authorization is 431, not 401
    resp = await api.client.get("/healthz", headers={"Authorization": "Bearer " + "t" * 5000})
    await assert_problem(resp, 431)
    # just under the limits is fine
    resp = await api.get("/Entries/1", headers={"X-Padding": "p" * 3000}, params={"$select": "name"})
    assert resp.status == 200


SECRETS = {
    "password": "pw-Zq81-never-logged",
    "user_secret": "us-Zq81-never-logged",
    "org_secret": "os-Zq81-never-logged",
    "element_token": "et-Zq81-never-logged",
    "signature_key": "sk-Zq81-never-logged",
}


async def test_secrets_never_reach_the_log(server_factory, tmp_path, receivers):
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.txt").write_bytes(b"a")
    rx = await receivers(fail_first=1)
    sp = server_factory.start(
        root,
        "--log-level",
        "DEBUG",
        "--user",
        f"alice:{SECRETS['password']}",
        "--elements-user-secret",
        SECRETS["user_secret"],
        "--elements-org-secret",
        SECRETS["org_secret"],
        "--elements-token",
        SECRETS["element_token"],
        "--signature-key",
        SECRETS["signature_key"],
        "--webhook-backoff-s",
        "0.05",
    )
    elements = {"Authorization": f"User {SECRETS['user_secret']}, Element {SECRETS['element_token']}"}
    async with aiohttp.ClientSession(sp.base_url) as http:
        token = await sign_in(http, "alice", SECRETS["password"])
        wrong = await http.post(
            "/v1/Repositories/r-sandbox/Token",
            data={"grant_type": "password", "username": "alice", "password": SECRETS["password"] + "x"},
        )
        assert wrong.status == 401
        api = Api(http, token)
        assert (await api.get("/Entries/1")).status == 200
        assert (
            await http.get(
                "/v1/Repositories/r-sandbox/Entries/1", headers={"Authorization": "Bearer " + token + "x"}
            )
        ).status == 401
        # an asynchronous copy whose webhook fails once, then is delivered (signed with the key)
        resp = await http.post(
            "/elements/api-v2/hubs/documents/folders/copy",
            params={"path": "/src"},
            json={"path": "/dst"},
            headers=elements | {"Elements-Async-Request": "true", "Elements-Async-Callback-URL": rx.url},
        )
        assert resp.status == 202, await resp.text()
        await rx.wait_delivered(1, timeout=20)
        wrong_org = {"Authorization": f"User {SECRETS['user_secret']}, Organization nope"}
        assert (await http.get("/elements/api-v2/instances", headers=wrong_org)).status == 401
    assert sp.stop() == 0
    log = sp.stderr() + sp.stdout()
    assert "user=alice" in log, "the access log was not written at all"
    for what, secret in SECRETS.items():
        assert secret not in log, f"the {what} reached the log"
    assert token not in log, "an access token reached the log"


def test_a_malformed_request_is_a_400_and_one_log_line(server_factory, tmp_path):
    """Bytes aiohttp's parser refuses (here a header value with a control byte) are answered 400
    and logged as the client's, in one line: no ERROR, no traceback."""
    sp = server_factory.start(tmp_path / "root")
    where = urlsplit(sp.base_url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nRange: \xa2\x10{\x93\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.split(b" ", 2)[1] == b"400", answer
    assert sp.stop() == 0
    log = sp.stderr()
    assert "malformed request answered 400" in log, log[-2000:]
    assert "Traceback" not in log and " ERROR " not in log, log[-2000:]
