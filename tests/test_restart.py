"""Entry ids: persistence across a real restart (subprocess), by-hand changes, no reuse; CLI and signals."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
from conftest import BASE, Api, assert_problem, sign_in
from yarl import URL

from server.store import SCHEMA_VERSION


class RemoteClient:
    """The small part of aiohttp's TestClient that ``Api`` and ``sign_in`` use, over a real socket."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str):
        self.session = session
        self.base_url = base_url.rstrip("/")

    def make_url(self, path: str) -> URL:
        return URL(self.base_url + path)

    async def request(self, method: str, path: str, **kw):
        resp = await self.session.request(method, self.base_url + path, **kw)
        await resp.read()
        return resp

    async def get(self, path: str, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw):
        return await self.request("POST", path, **kw)


async def _remote_api(session, server, repo_base: str = BASE, user=("admin", "admin")) -> Api:
    client = RemoteClient(session, server.base_url)
    repo = repo_base.rsplit("/", 1)[-1]
    token = await sign_in(client, *user, repo=repo)
    return Api(client, token, base=repo_base)


# --------------------------------------------------------------------------- process behaviour


async def test_banner_and_sigterm(server_factory, tmp_path):
    root = tmp_path / "root"
    server = server_factory.start(root)
    url = URL(server.base_url)
    assert url.scheme == "http" and url.host == "127.0.0.1"
    assert url.port and url.port != 0
    assert "base URL:" in server.stdout()
    async with aiohttp.ClientSession() as session:
        async with session.get(server.base_url + "/healthz") as resp:
            assert resp.status == 200
            await resp.read()
        api = await _remote_api(session, server)
        assert (await api.entry(1))["fullPath"] == "\\"
    assert root.is_dir(), "the storage root is created when missing"
    assert server.stop(signal.SIGTERM) == 0
    assert "Traceback" not in server.stderr()


async def test_sigint_exits_cleanly(server_factory, tmp_path):
    server = server_factory.start(tmp_path / "root")
    assert server.stop(signal.SIGINT) == 0
    assert "Traceback" not in server.stderr()


async def test_two_servers_pick_different_ports(server_factory, tmp_path):
    a = server_factory.start(tmp_path / "r1")
    b = server_factory.start(tmp_path / "r2")
    assert URL(a.base_url).port != URL(b.base_url).port
    assert a.stop() == 0 and b.stop() == 0


async def test_cli_options(server_factory, tmp_path):
    server = server_factory.start(
        tmp_path / "root",
        "--repository-id",
        "r-cli",
        "--user",
        "bob:pa:ss",
        "--user",
        "carol:pw",
        "--session-ttl",
        "2",
    )
    async with aiohttp.ClientSession() as session:
        signed_in = time.monotonic()
        api = await _remote_api(session, server, "/v1/Repositories/r-cli", ("bob", "pa:ss"))
        assert (await api.get("/Entries/1")).status == 200
        await _remote_api(session, server, "/v1/Repositories/r-cli", ("carol", "pw"))
        resp = await api.client.get(f"{BASE}/Entries/1", headers=api.headers)
        await assert_problem(resp, 404)
        await asyncio.sleep(max(0.0, signed_in + 2.5 - time.monotonic()))
        await assert_problem(await api.get("/Entries/1"), 401)
    assert server.stop() == 0


# --------------------------------------------------------------------------- ids across restarts


async def test_ids_survive_restart_rename_and_move(server_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "handmade").mkdir()
    (root / "handmade" / "h.txt").write_bytes(b"by hand")
    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        api = await _remote_api(session, server)
        a = await api.mkdir(1, "A")
        b = await api.mkdir(a["id"], "B")
        doc = await api.upload(b["id"], "doc.txt", b"document")
        moved = await api.mkdir(1, "to-move")
        renamed = await api.upload(1, "before.txt", b"r")
        ids = {
            "\\A": a["id"],
            "\\A\\B": b["id"],
            "\\A\\B\\doc.txt": doc,
            "\\handmade": (await api.by_path("\\handmade"))["id"],
            "\\handmade\\h.txt": (await api.by_path("\\handmade\\h.txt"))["id"],
        }
        assert (await api.patch(f"/Entries/{moved['id']}", json={"parentId": a["id"]})).status == 200
        assert (await api.patch(f"/Entries/{renamed}", json={"name": "after.txt"})).status == 200
        ids["\\A\\to-move"] = moved["id"]
        ids["\\after.txt"] = renamed
        assert len(set(ids.values())) == len(ids)
    assert server.stop() == 0

    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        api = await _remote_api(session, server)
        for path, eid in ids.items():
            assert (await api.by_path(path))["id"] == eid, path
            assert (await api.entry(eid))["fullPath"] == path
        # after the restart: move and rename again, the ids still hold
        assert (await api.patch(f"/Entries/{a['id']}", json={"name": "A2"})).status == 200
        assert (await api.entry(doc))["fullPath"] == "\\A2\\B\\doc.txt"
        new = await api.mkdir(1, "new")
        assert new["id"] > max(ids.values())
        ids = {("\\A2" + p[2:] if p == "\\A" or p.startswith("\\A\\") else p): i for p, i in ids.items()}
        ids["\\new"] = new["id"]
    assert server.stop() == 0

    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        api = await _remote_api(session, server)
        for path, eid in ids.items():
            assert (await api.entry(eid))["fullPath"] == path
    assert server.stop() == 0


async def test_removed_id_not_reused_after_restart(server_factory, tmp_path):
    root = tmp_path / "root"
    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        api = await _remote_api(session, server)
        ids = [(await api.mkdir(1, f"f{i}"))["id"] for i in range(3)]
    assert server.stop() == 0
    shutil.rmtree(root / "f2")  # the newest entry disappears while the server is down
    server = server_factory.start(root)
    async with aiohttp.ClientSession() as session:
        api = await _remote_api(session, server)
        await assert_problem(await api.get(f"/Entries/{ids[2]}"), 404)
        new = await api.mkdir(1, "f2")
        assert new["id"] > max(ids)
        assert (await api.by_path("\\f2"))["id"] == new["id"]
    assert server.stop() == 0


# ------------------------------------------------------------------ ids and by-hand changes (in process)


async def test_by_hand_folder_gets_new_id_on_listing(api, storage_root):
    known = [(await api.mkdir(1, f"k{i}"))["id"] for i in range(3)]
    (storage_root / "manual").mkdir()
    items = {e["name"]: e["id"] for e in await api.children(1)}
    assert items["manual"] > max(known)
    assert (await api.entry(items["manual"]))["fullPath"] == "\\manual"


async def test_by_hand_file_gets_new_id_on_by_path(api, storage_root):
    known = (await api.mkdir(1, "k"))["id"]
    (storage_root / "k" / "manual.txt").write_bytes(b"m")
    e = await api.by_path("\\k\\manual.txt")
    assert e["id"] > known
    assert e["parentId"] == known
    assert (await api.by_path("\\k\\manual.txt"))["id"] == e["id"]


async def test_by_hand_removed_is_404(api, storage_root):
    d = await api.mkdir(1, "gone")
    f = await api.upload(d["id"], "f.txt", b"f")
    shutil.rmtree(storage_root / "gone")
    await assert_problem(await api.get(f"/Entries/{f}"), 404)
    await assert_problem(await api.get(f"/Entries/{d['id']}"), 404)
    assert "gone" not in await api.child_names(1)


async def test_id_never_reused(api, storage_root):
    seen = [(await api.mkdir(1, f"n{i}"))["id"] for i in range(4)]
    (storage_root / "n3").rmdir()
    await assert_problem(await api.get(f"/Entries/{seen[3]}"), 404)
    again = await api.mkdir(1, "n3")
    assert again["id"] > max(seen)
    (storage_root / "n3").rmdir()
    await assert_problem(await api.get(f"/Entries/{again['id']}"), 404)
    (storage_root / "n3").mkdir()  # recreated by hand under the same name
    hand = (await api.by_path("\\n3"))["id"]
    assert hand > again["id"]
    doc = await api.upload(1, "x.txt", b"x")
    assert doc > hand


async def test_descendants_of_removed_folder_are_404(api, storage_root):
    a = await api.mkdir(1, "A")
    b = await api.mkdir(a["id"], "B")
    c = await api.upload(b["id"], "c.txt", b"c")
    # twins of the descendants' names one level up, so a path rebuilt without "A" would resolve
    (storage_root / "B").mkdir()
    (storage_root / "c.txt").write_bytes(b"twin")
    shutil.rmtree(storage_root / "A")
    assert await api.child_names(1) == {"B", "c.txt"}  # the server notices A is gone
    for eid in (a["id"], b["id"], c):
        await assert_problem(await api.get(f"/Entries/{eid}"), 404)
    await assert_problem(await api.download(c), 404)
    twin_b = await api.by_path("\\B")
    twin_c = await api.by_path("\\c.txt")
    assert twin_b["id"] > c and twin_c["id"] > c


def test_every_setting_can_come_from_the_environment(server_factory, tmp_path):
    root = tmp_path / "env-root"
    server = server_factory.start(
        root,
        env_extra={
            "SANDBOX_REPOSITORY_ID": "r-env",
            "SANDBOX_USER": "alice:wonder, bob:builder",
            "SANDBOX_SESSION_TTL": "120",
            "SANDBOX_LOG_LEVEL": "WARNING",
        },
    )
    assert "r-env" in server.stdout()
    for user, password in (("alice", "wonder"), ("bob", "builder")):
        body = urllib.parse.urlencode({"grant_type": "password", "username": user, "password": password})
        with urllib.request.urlopen(f"{server.base_url}/v1/Repositories/r-env/Token", body.encode()) as resp:
            token = json.load(resp)
        assert token["expires_in"] == 120
    assert server.stop() == 0


def test_a_second_server_on_the_same_root_refuses_to_start(server_factory, tmp_path):
    root = tmp_path / "shared-root"
    first = server_factory.start(root)
    second = subprocess.run(
        [sys.executable, "-m", "server", "--port", "0", "--storage-root", str(root)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 2
    assert "already served" in second.stderr
    assert first.stop() == 0


def test_help_lists_every_flag():
    done = subprocess.run(
        [sys.executable, "-m", "server", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    flags = ("--host", "--port", "--storage-root", "--repository-id", "--user", "--session-ttl")
    flags += ("--token-ttl", "--profile", "--session-concurrency", "--pace-ms", "--copy-processes")
    flags += ("--elements-user-secret", "--elements-org-secret", "--elements-token", "--callback-url")
    flags += ("--signature-key", "--webhook-retries", "--webhook-backoff-s", "--webhook-timeout-s")
    for flag in (*flags, "SANDBOX_"):
        assert flag in done.stdout


def test_one_log_line_per_request_without_secrets(server_factory, tmp_path):
    password = "pw-that-must-not-leak"
    server = server_factory.start(tmp_path / "log-root", "--user", f"carol:{password}")
    base = f"{server.base_url}/v1/Repositories/r-sandbox"
    body = urllib.parse.urlencode({"grant_type": "password", "username": "carol", "password": password})
    with urllib.request.urlopen(f"{base}/Token", body.encode()) as resp:
        token = json.load(resp)["access_token"]
        ids = [resp.headers["X-RequestId"]]
    for path in ("/Entries/1", "/Entries/1/Laserfiche.Repository.Folder/children", "/Entries/999"):
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request) as resp:
                ids.append(resp.headers["X-RequestId"])
        except urllib.error.HTTPError as err:
            ids.append(err.headers["X-RequestId"])
    assert server.stop() == 0
    log = server.stderr()
    for request_id in ids:
        assert sum(f"id={request_id}" in line for line in log.splitlines()) == 1
    assert password not in log and token not in log


# --------------------------------------------------------------------------- store upgrades


async def test_a_store_of_the_previous_version_is_upgraded_and_loses_nothing(server_factory, tmp_path):
    """A storage root served by the version before shortcuts and v2 (store version 3) is served
    again: its ids, sessions and operations stay, and the new columns are added."""
    import sqlite3

    root = tmp_path / "root"
    (root / "Docs").mkdir(parents=True)
    (root / "Docs" / "a.txt").write_bytes(b"alpha")
    server = server_factory.start(root, "--copy-processes", "0")
    async with aiohttp.ClientSession() as session:
        api = await _remote_api(session, server)
        docs = await api.by_path("\\Docs")
        resp = await api.post(
            "/Entries/1/Laserfiche.Repository.Folder/CopyAsync", json={"sourceId": docs["id"], "name": "Copy"}
        )
        token = json.loads(resp._body)["token"]
        for _ in range(200):
            resp = await api.get(f"/Tasks/{token}/status")
            if json.loads(resp._body)["status"] == "Succeeded":
                break
            await asyncio.sleep(0.05)
        copy_id = (await api.by_path("\\Copy"))["id"]
    assert server.stop(signal.SIGTERM) == 0

    # what a version 3 store looked like: neither a shortcut's target nor an operation's result
    db = sqlite3.connect(root / ".sandbox" / "sandbox.db")
    added = (
        ("entries", "target_id"),
        ("entries", "target_type"),
        ("operations", "result"),
        ("deliveries", "retries"),
    )
    for table, column in added:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()

    server = server_factory.start(root, "--copy-processes", "0")
    async with aiohttp.ClientSession() as session:
        client = RemoteClient(session, server.base_url)
        again = Api(client, api.token)  # the session survived too
        assert (await again.by_path("\\Docs"))["id"] == docs["id"]
        assert (await again.by_path("\\Copy"))["id"] == copy_id
        resp = await again.get(f"/Tasks/{token}", allow_redirects=False)
        assert resp.status == 302, resp._body
        # v2 reads the same operation, and shortcuts (new columns) work on the upgraded store
        resp = await client.get(f"/v2/Repositories/r-sandbox/Tasks?taskIds={token}", headers=again.headers)
        assert json.loads(resp._body)["value"][0]["result"]["entryId"] == copy_id
        resp = await again.post(
            "/Entries/1/Laserfiche.Repository.Folder/children",
            json={"entryType": "Shortcut", "name": "To docs", "targetId": docs["id"]},
        )
        assert resp.status == 201, resp._body
        assert json.loads(resp._body)["targetId"] == docs["id"]
    assert server.stop(signal.SIGTERM) == 0
    db = sqlite3.connect(root / ".sandbox" / "sandbox.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
