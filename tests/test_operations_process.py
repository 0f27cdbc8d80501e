"""Long operations against a real `python -m server` process: crash and restart, graceful
shutdown, token expiry, sessions across restarts, and real generic clients (azure-core's
LROPoller with LROBasePolling, and curl -L).

Every test runs its own subprocess server on 127.0.0.1 over a real folder under ``tmp_path``.
The client side is synchronous (urllib, azure-core's requests transport, curl), so no test here
needs an event loop; waiting is polling with a deadline.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE, CHILDREN, HIDDEN, PROBLEM_KEYS, REPO_ID, disk_tree, part_files

from server.fsops import PART_PREFIX

COPY_ASYNC = "Laserfiche.Repository.Folder/CopyAsync"
# how long any wait here may take before the test gives up
DEADLINE_S = 20.0


# --------------------------------------------------------------------------- a small sync client


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx answers back as they are: the 302 of a completed copy is what is under test."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode(errors="replace")


class Http:
    """Requests to one server's repository base (`/v1/Repositories/r-sandbox`), with a bearer."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + BASE + path

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        data = None
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        request = urllib.request.Request(self.url(path), data=data, method=method, headers=h)
        try:
            with _OPENER.open(request, timeout=30) as resp:
                return Reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return Reply(err.code, err.headers, err.read())

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Reply:
        return self.call("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    # -- convenience -------------------------------------------------------------

    def entry(self, entry_id: int) -> dict:
        r = self.get(f"/Entries/{entry_id}")
        assert r.status == 200, r.text()
        return r.json()

    def children(self, folder_id: int) -> list[dict]:
        r = self.get(f"/Entries/{folder_id}/{CHILDREN}", headers={"Prefer": "maxpagesize=1000"})
        assert r.status == 200, r.text()
        body = r.json()
        items = list(body["value"])
        while body.get("@odata.nextLink"):
            r = self.get(body["@odata.nextLink"])
            assert r.status == 200, r.text()
            body = r.json()
            items.extend(body["value"])
        return items

    def ids(self, folder_id: int = 1) -> dict[str, int]:
        """Name -> id of a folder's children (listing is what gives entries made by hand an id)."""
        return {e["name"]: e["id"] for e in self.children(folder_id)}

    def tree(self, folder_id: int, prefix: str = "") -> dict[str, dict]:
        """Relative path -> entry, for everything below a folder, as the API lists it."""
        out: dict[str, dict] = {}
        for e in self.children(folder_id):
            rel = os.path.join(prefix, e["name"])
            out[rel] = e
            if e["entryType"] == "Folder":
                out |= self.tree(e["id"], rel)
        return out

    def start_copy(self, source_id: int, parent_id: int, name: str, expect: int = 202) -> str:
        r = self.post(f"/Entries/{parent_id}/{COPY_ASYNC}", body={"sourceId": source_id, "name": name})
        assert r.status == expect, r.text()
        return r.json()["token"]

    def start_delete(self, entry_id: int, expect: int = 202) -> str:
        r = self.delete(f"/Entries/{entry_id}")
        assert r.status == expect, r.text()
        return r.json()["token"]

    def task(self, token: str) -> Reply:
        return self.get(f"/Tasks/{token}")

    def poll(self, token: str, until, what: str, timeout: float = DEADLINE_S) -> Reply:
        """GET Tasks/{token} until `until(reply)` holds, or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.task(token)
            if until(r):
                return r
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; last answer {r.status}: {r.text()[:500]}"
                )
            time.sleep(0.01)

    def wait_going(self, token: str) -> dict:
        """Poll until the copy has made its folder and is 10% done (or has ended); its progress."""
        return self.poll(
            token,
            lambda r: r.status != 202 or (r.json()["percentComplete"] >= 10 and r.json()["entryId"]),
            "the copy to get going",
        ).json()

    def wait_done(self, token: str) -> Reply:
        return self.poll(token, lambda r: r.status != 202, "the operation to end")


def sign_in(base_url: str, user: str = "admin", password: str = "admin") -> Http:
    http = Http(base_url)
    r = http.post("/Token", form={"grant_type": "password", "username": user, "password": password})
    assert r.status == 200, r.text()
    http.token = r.json()["access_token"]
    return http


def assert_problem(r: Reply, status: int) -> dict:
    assert r.status == status, f"expected {status}, got {r.status}: {r.text()[:500]}"
    assert r.headers.get_content_type() == "application/problem+json", r.headers
    body = r.json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status
    return body


def timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- trees on disk


def make_tree(
    top: Path, folders: int, per_folder: int, top_files: int = 0, size: int | None = None
) -> dict[str, bytes]:
    """A folder of documents made by hand (small ones, or random bytes of `size`); returns
    relative path -> bytes of every file."""
    files: dict[str, bytes] = {}
    for i in range(top_files):
        files[f"top-{i:02d}.txt"] = b""
    for f in range(folders):
        for i in range(per_folder):
            files[os.path.join(f"sub-{f}", f"doc-{i:02d}.bin")] = b""
    top.mkdir(parents=True)
    for n, rel in enumerate(sorted(files)):
        data = hashlib.sha256(rel.encode()).digest() * (1 + n % 9) + rel.encode()
        if size is not None:
            data = os.urandom(size)
        files[rel] = data
        path = top / rel
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    return files


def assert_partial_copy(http: Http, entry_id: int, top: Path, source: dict[str, bytes]) -> dict[str, dict]:
    """The partial copy at `top` (entry `entry_id`): listed with ids exactly as it is on disk,
    some files but not all, each byte for byte its source's."""
    listed = http.tree(entry_id)
    on_disk = disk_tree(top)
    assert set(listed) == set(on_disk), (sorted(set(listed) ^ set(on_disk)), "listing and disk differ")
    ids = [e["id"] for e in listed.values()]
    assert all(isinstance(i, int) and i > 1 for i in ids), listed
    assert len(set(ids)) == len(ids), "ids repeat"
    copied = {rel: data for rel, data in on_disk.items() if data is not None}
    assert 0 < len(copied) < len(source), f"{len(copied)} of {len(source)} files copied: not a partial copy"
    for rel, data in copied.items():
        assert rel in source, rel
        assert data == source[rel], f"{rel} differs from its source"
        assert listed[rel]["entryType"] == "Document"
        assert listed[rel]["elecDocumentSize"] == len(data)
    return listed


def error_text(body: dict) -> str:
    return " ".join(e["errorMessage"] for e in body["errors"]).lower()


# --------------------------------------------------------------------------- crash and shutdown


def test_kill_9_during_a_copy_then_restart(server_factory, tmp_path):
    root = tmp_path / "root"
    source = make_tree(root / "src", folders=3, per_folder=20, top_files=3)
    make_tree(root / "tiny", folders=1, per_folder=2, top_files=1)
    make_tree(root / "doomed", folders=1, per_folder=2)
    server = server_factory.start(root, "--pace-ms", "30")
    a = sign_in(server.base_url)
    b = sign_in(server.base_url)
    ids = a.ids(1)

    # session B finishes a copy and a delete before anything goes wrong
    b_copy = b.start_copy(ids["tiny"], 1, "tiny-copy")
    done = b.wait_done(b_copy)
    assert done.status == 302, done.text()
    tiny_copy_id = done.json()["entryId"]
    b_delete = b.start_delete(ids["doomed"])
    done = b.wait_done(b_delete)
    assert done.status == 200 and done.json()["status"] == "Completed", done.text()

    # session A's copy is killed with the server half way
    token = a.start_copy(ids["src"], 1, "copy")
    seen = a.wait_going(token)
    assert seen["status"] == "InProgress", seen
    assert seen["percentComplete"] > 0
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    partial = root / "copy"
    assert partial.is_dir()
    # what a crash in the middle of writing a file leaves: part files in the copy being made
    (partial / f"{PART_PREFIX}00112233aabbccdd").write_bytes(b"half a file")
    for sub in partial.iterdir():
        if sub.is_dir():
            (sub / f"{PART_PREFIX}44556677eeff0011").write_bytes(b"half")

    server = server_factory.start(root)
    a = Http(server.base_url, a.token)
    b = Http(server.base_url, b.token)
    assert a.get("/Entries/1").status == 200, "the session did not survive the restart"

    r = a.task(token)
    assert r.status == 200, r.text()
    body = r.json()
    assert body["status"] == "Failed", body
    assert body["operationType"] == "CopyEntry"
    assert "interrupted" in error_text(body), body
    assert body["entryId"] == seen["entryId"], body
    assert 0 <= body["percentComplete"] < 100, body
    assert "Retry-After" not in r.headers

    monitor = a.get(f"/Tasks/{token}/status")
    assert monitor.status == 200, monitor.text()
    assert monitor.json()["status"] == "Failed"
    assert "interrupted" in monitor.json()["error"]["message"].lower()

    top = a.entry(body["entryId"])
    assert (top["name"], top["fullPath"], top["entryType"]) == ("copy", "\\copy", "Folder")
    assert_partial_copy(a, body["entryId"], partial, source)
    assert part_files(root) == []

    # what session B finished before the crash still answers its final state
    r = b.task(b_copy)
    assert r.status == 302, r.text()
    assert r.headers["Location"].endswith(f"{BASE}/Entries/{tiny_copy_id}")
    assert r.json()["status"] == "Completed"
    r = b.task(b_delete)
    assert r.status == 200, r.text()
    assert (r.json()["status"], r.json()["operationType"]) == ("Completed", "DeleteEntry")

    # the interrupted operation does not hold the session: it can start another one
    cleanup = a.start_delete(body["entryId"])
    assert a.wait_done(cleanup).json()["status"] == "Completed"
    assert not partial.exists()
    assert server.stop() == 0


def test_percent_complete_does_not_go_back_across_a_crash(server_factory, tmp_path):
    """CONTRACT: percentComplete "never goes backwards". A client that saw 40 % before the server
    was killed must not read less once it is back: the interrupted operation reports at least
    what it had reported."""
    root = tmp_path / "root"
    make_tree(root / "src", folders=3, per_folder=20, top_files=3)
    server = server_factory.start(root, "--pace-ms", "30")
    a = sign_in(server.base_url)
    token = a.start_copy(a.ids(1)["src"], 1, "copy")
    seen = a.poll(
        token, lambda r: r.status != 202 or r.json()["percentComplete"] >= 40, "the copy to reach 40 %"
    ).json()
    assert seen["status"] == "InProgress", seen
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    server = server_factory.start(root)
    body = Http(server.base_url, a.token).task(token).json()
    assert body["status"] == "Failed", body
    assert seen["percentComplete"] <= body["percentComplete"] < 100, (
        f"{seen['percentComplete']} % before the crash, {body['percentComplete']} % after the restart"
    )
    assert server.stop() == 0


def _children(pid: int) -> list[int]:
    """The processes a process started, from any of its threads (Linux /proc)."""
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def test_kill_9_during_a_copy_in_the_worker_processes(server_factory, tmp_path):
    """An unpaced copy of thousands of small files runs in the server's copy worker processes.
    Killed outright, the server takes its workers with it; after a restart the copy is Failed
    (interrupted) and what it left is a clean partial copy."""
    root = tmp_path / "root"
    source = make_tree(root / "src", folders=16, per_folder=256, size=8192)
    server = server_factory.start(root, "--copy-processes", "2")
    a = sign_in(server.base_url)
    token = a.start_copy(a.ids(1)["src"], 1, "copy")
    deadline = time.monotonic() + DEADLINE_S
    while True:  # no pause between polls: the whole copy takes well under a second
        r = a.task(token)
        assert r.status == 202, f"the copy ended before it could be interrupted: {r.status} {r.text()}"
        if r.json()["percentComplete"] >= 10:
            break
        assert time.monotonic() < deadline, r.text()
    workers = _children(server.proc.pid)
    assert workers, "the copy runs in no worker process"
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "copy workers outlived their server by 10 s"
        time.sleep(0.01)

    server = server_factory.start(root)
    a = Http(server.base_url, a.token)
    r = a.task(token)
    assert r.status == 200, r.text()
    body = r.json()
    assert body["status"] == "Failed" and "interrupted" in error_text(body), body
    assert a.entry(body["entryId"])["fullPath"] == "\\copy"
    assert_partial_copy(a, body["entryId"], root / "copy", source)
    assert part_files(root) == []
    assert server.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_a_copy_ends_it_and_exits(server_factory, tmp_path, sig):
    root = tmp_path / "root"
    source = make_tree(root / "src", folders=3, per_folder=20, top_files=3)
    server = server_factory.start(root, "--pace-ms", "30")
    a = sign_in(server.base_url)
    token = a.start_copy(a.ids(1)["src"], 1, "copy")
    seen = a.wait_going(token)
    assert seen["status"] == "InProgress", seen

    sent = time.monotonic()
    assert server.stop(sig, timeout=10) == 0
    assert time.monotonic() - sent < 10
    assert "Traceback" not in server.stderr(), server.stderr()

    server = server_factory.start(root)
    a = Http(server.base_url, a.token)
    r = a.task(token)
    assert r.status == 200, r.text()
    body = r.json()
    assert body["status"] == "Failed", body
    message = error_text(body)
    # recorded by the stop itself: after a crash the next start would say "stopped while it ran"
    assert "server shut down" in message and "stopped while it ran" not in message, body
    assert body["entryId"] == seen["entryId"]
    # the graceful path records the progress it had: it never goes backwards
    assert seen["percentComplete"] <= body["percentComplete"] < 100, (seen, body)
    assert_partial_copy(a, body["entryId"], root / "copy", source)
    assert part_files(root) == []
    assert server.stop() == 0


# --------------------------------------------------------------------------- expiry


def test_finished_operation_survives_a_clean_restart_until_it_expires(server_factory, tmp_path):
    ttl = 3
    root = tmp_path / "root"
    make_tree(root / "tiny", folders=1, per_folder=2, top_files=1)
    server = server_factory.start(root, "--token-ttl", str(ttl))
    a = sign_in(server.base_url)
    token = a.start_copy(a.ids(1)["tiny"], 1, "tiny-copy")
    done = a.wait_done(token)
    assert done.status == 302, done.text()
    finished = timestamp(done.json()["statusTimestamp"])
    new_id = done.json()["entryId"]
    assert server.stop() == 0

    server = server_factory.start(root, "--token-ttl", str(ttl))
    a = Http(server.base_url, a.token)
    r = a.task(token)
    assert time.time() < finished + ttl, "the restart took longer than the token's ttl"
    assert r.status == 302, r.text()
    assert r.headers["Location"] == f"{server.base_url}{BASE}/Entries/{new_id}"

    r = a.poll(token, lambda r: r.status != 302, "the token to expire", timeout=ttl + 10)
    assert time.time() >= finished + ttl - 0.002, "expired before its ttl"
    problem = assert_problem(r, 404)
    assert "expired" in problem["detail"].lower(), problem
    assert server.stop() == 0


def test_token_ttl_expiry_in_the_real_process(server_factory, tmp_path):
    ttl = 1
    root = tmp_path / "root"
    make_tree(root / "tiny", folders=1, per_folder=2, top_files=1)
    make_tree(root / "doomed", folders=1, per_folder=2)
    server = server_factory.start(root, "--token-ttl", str(ttl))
    a = sign_in(server.base_url)
    ids = a.ids(1)

    # a delete that ends and is then left alone: only the server's own sweeper can expire it
    unpolled = a.start_delete(ids["doomed"])
    done = a.wait_done(unpolled)
    assert (done.status, done.json()["status"]) == (200, "Completed"), done.text()
    unpolled_end = timestamp(done.json()["statusTimestamp"])

    token = a.start_copy(ids["tiny"], 1, "tiny-copy")
    done = a.wait_done(token)
    assert done.status == 302, done.text()
    finished = timestamp(done.json()["statusTimestamp"])
    r = a.poll(token, lambda r: r.status != 302, "the token to expire", timeout=ttl + 10)
    assert time.time() >= finished + ttl - 0.002, "expired before its ttl"
    problem = assert_problem(r, 404)
    assert "expired" in problem["detail"].lower(), problem
    problem = assert_problem(a.delete(f"/Tasks/{token}"), 404)
    assert "expired" in problem["detail"].lower(), problem
    assert "expired" in assert_problem(a.get(f"/Tasks/{token}/status"), 404)["detail"].lower()

    # the sweeper records the expiry in the store without anyone asking about the token
    db = root / HIDDEN / "sandbox.db"
    deadline = time.monotonic() + 10
    while True:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT expired FROM operations WHERE token = ?", (unpolled,)).fetchone()
        finally:
            conn.close()
        if row is not None and row[0] == 1:
            break
        assert time.monotonic() < deadline, f"the sweeper never expired {unpolled}: {row}"
        time.sleep(0.05)
    assert time.time() >= unpolled_end + ttl - 0.002
    problem = assert_problem(a.task(unpolled), 404)
    assert "expired" in problem["detail"].lower(), problem

    # after a restart the tokens are still known as expired, not merely unknown
    assert server.stop() == 0
    server = server_factory.start(root, "--token-ttl", str(ttl))
    a = Http(server.base_url, a.token)
    for t in (token, unpolled):
        problem = assert_problem(a.task(t), 404)
        assert "expired" in problem["detail"].lower(), problem
    assert server.stop() == 0


# --------------------------------------------------------------------------- sessions across restarts


def test_sessions_persist_across_restart(server_factory, tmp_path):
    root = tmp_path / "root"
    make_tree(root / "tiny", folders=1, per_folder=2, top_files=1)
    make_tree(root / "doomed", folders=1, per_folder=1)
    server = server_factory.start(root)
    a = sign_in(server.base_url)
    ids = a.ids(1)
    copy_token = a.start_copy(ids["tiny"], 1, "tiny-copy")
    assert a.wait_done(copy_token).status == 302
    delete_token = a.start_delete(ids["doomed"])
    assert a.wait_done(delete_token).status == 200
    assert server.stop() == 0

    server = server_factory.start(root)
    old = Http(server.base_url, a.token)
    assert old.entry(1)["fullPath"] == "\\"
    r = old.task(copy_token)
    assert r.status == 302, r.text()
    assert r.json()["status"] == "Completed"
    assert r.headers["Location"] == f"{server.base_url}{BASE}/Entries/{r.json()['entryId']}"
    r = old.task(delete_token)
    assert r.status == 200, r.text()
    assert (r.json()["status"], r.json()["entryId"]) == ("Completed", ids["doomed"])

    # the operations stay the session's own: a new session of the same user does not see them
    other = sign_in(server.base_url)
    for t in (copy_token, delete_token):
        assert_problem(other.task(t), 404)
    assert_problem(Http(server.base_url, "not-a-token").get("/Entries/1"), 401)
    # and the old bearer can start new work
    again = old.start_copy(ids["tiny"], 1, "tiny-copy-2")
    assert old.wait_done(again).status == 302
    assert server.stop() == 0


# --------------------------------------------------------------------------- generic clients


def _azure_client(base_url: str, token: str):
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class Bearer(SansIOHTTPPolicy):
        def on_request(self, request):  # type: ignore[no-untyped-def]
            request.http_request.headers["Authorization"] = f"Bearer {token}"

    return PipelineClient(base_url, per_call_policies=[Bearer()])


def _azure_start_copy(client, url: str, source_id: int, name: str):
    from azure.core.polling import LROPoller
    from azure.core.polling.base_polling import LROBasePolling
    from azure.core.rest import HttpRequest

    initial = client.send_request(
        HttpRequest("POST", url, json={"sourceId": source_id, "name": name}),
        _return_pipeline_response=True,
    )
    poller = LROPoller(
        client, initial, lambda pipeline_response: pipeline_response.http_response.json(), LROBasePolling()
    )
    return initial.http_response, poller


@pytest.mark.parametrize("profile", ["docs", "sdk"])
def test_azure_lro_poller_completes_a_copy(server_factory, tmp_path, profile):
    root = tmp_path / "root"
    make_tree(root / "tiny", folders=1, per_folder=2, top_files=1)
    server = server_factory.start(root, "--profile", profile)
    http = sign_in(server.base_url)
    url = f"{server.base_url}{BASE}/Entries/1/{COPY_ASYNC}"
    with _azure_client(server.base_url, http.token) as client:
        initial, poller = _azure_start_copy(client, url, http.ids(1)["tiny"], "az-copy")
        assert initial.status_code == (201 if profile == "sdk" else 202), initial.text()
        token = initial.json()["token"]
        assert initial.headers["Operation-Location"] == f"{server.base_url}{BASE}/Tasks/{token}/status"
        result = poller.result(timeout=DEADLINE_S)
        assert poller.done()
    assert poller.status() == "Succeeded"
    assert result["name"] == "az-copy"
    assert result["fullPath"] == "\\az-copy"
    assert result["id"] == http.ids(1)["az-copy"]
    assert (root / "az-copy" / "sub-0" / "doc-00.bin").read_bytes() == (
        root / "tiny" / "sub-0" / "doc-00.bin"
    ).read_bytes()


def test_azure_lro_poller_raises_on_a_cancelled_copy(server_factory, tmp_path):
    from azure.core.exceptions import HttpResponseError
    from azure.core.polling.base_polling import OperationFailed
    from azure.core.rest import HttpRequest

    root = tmp_path / "root"
    source = make_tree(root / "src", folders=3, per_folder=20, top_files=3)
    server = server_factory.start(root, "--pace-ms", "50")
    http = sign_in(server.base_url)
    url = f"{server.base_url}{BASE}/Entries/1/{COPY_ASYNC}"
    with _azure_client(server.base_url, http.token) as client:
        initial, poller = _azure_start_copy(client, url, http.ids(1)["src"], "az-cancelled")
        assert initial.status_code == 202, initial.text()
        token = initial.json()["token"]
        # cancelled once it has made its folder and copied something (the poller sleeps meanwhile)
        http.wait_going(token)
        cancel = client.send_request(HttpRequest("DELETE", initial.headers["Location"]))
        assert cancel.status_code == 204, cancel.text()
        with pytest.raises(HttpResponseError) as info:
            poller.result(timeout=DEADLINE_S)
    assert isinstance(info.value.__cause__, OperationFailed), repr(info.value.__cause__)
    assert poller.status() == "Canceled"

    monitor = http.get(f"/Tasks/{token}/status")
    assert monitor.status == 200, monitor.text()
    assert monitor.json()["status"] == "Canceled"
    assert "resourceLocation" not in monitor.json()
    r = http.task(token)
    assert (r.status, r.json()["status"]) == (200, "Cancelled"), r.text()
    assert r.json()["entryId"] == http.ids(1)["az-cancelled"]
    assert_partial_copy(http, r.json()["entryId"], root / "az-cancelled", source)
    assert server.stop() == 0


def test_a_cancel_that_lands_while_the_copy_makes_its_folder(server_factory, tmp_path):
    """A copy's first step creates its new folder. Here that step is slow (some 15 ms): the
    destination already holds 'w', 'w (2)' … 'w (1000)', so with autoRename the new name is found
    only after a thousand tries. Cancels sent 0, 1, 2 … 19 ms after the copy shows InProgress land
    before, inside and after that step. Wherever one lands, the Cancelled copy names the folder it
    made (entryId 0 only when it made none), and no folder appears after the final status."""
    taken = 1000
    root = tmp_path / "root"
    make_tree(root / "src", folders=1, per_folder=3)
    dest = root / "dest"
    dest.mkdir()
    (dest / "w").mkdir()
    for k in range(2, taken + 1):
        (dest / f"w ({k})").mkdir()
    server = server_factory.start(root, "--pace-ms", "200")
    http = sign_in(server.base_url)
    ids = http.ids(1)
    assert len(http.children(ids["dest"])) == taken
    known = set(os.listdir(dest))
    wrong = []
    made = 0
    for i in range(20):
        r = http.post(
            f"/Entries/{ids['dest']}/{COPY_ASYNC}?autoRename=true", body={"sourceId": ids["src"], "name": "w"}
        )
        assert r.status == 202, r.text()
        token = r.json()["token"]
        http.poll(token, lambda r: r.json()["status"] != "NotStarted", "the copy to start")
        time.sleep(i / 1000)  # spreads the cancels over the first step, not a wait for anything
        assert http.delete(f"/Tasks/{token}").status == 204
        r = http.task(token)
        assert (r.status, r.json()["status"]) == (200, "Cancelled"), r.text()
        entry_id = r.json()["entryId"]
        now = set(os.listdir(dest))
        new = now - known
        known = now
        if entry_id == 0:
            if new:
                wrong.append(f"try {i}: Cancelled with entryId 0, yet it made {sorted(new)}")
            continue
        made += 1
        entry = http.entry(entry_id)
        if new != {entry["name"]} or entry["parentId"] != ids["dest"]:
            wrong.append(f"try {i}: entryId {entry_id} is {entry['fullPath']}, the new folders {sorted(new)}")
    # a step still running after the final status would add its folder a little later
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        late = set(os.listdir(dest)) - known
        if late:
            wrong.append(f"after the last cancel, {sorted(late)} appeared")
            break
        time.sleep(0.02)
    assert not wrong, f"cancelled copies misreport the folder they made: {wrong}"
    assert made > 0, "no cancel landed after the copy made its folder; the test proved nothing"
    assert server.stop() == 0


def test_curl_follows_the_tasks_redirect_to_the_new_entry(server_factory, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed: this test drives the real curl binary")
    root = tmp_path / "root"
    make_tree(root / "tiny", folders=1, per_folder=2, top_files=1)
    server = server_factory.start(root)
    http = sign_in(server.base_url)
    token = http.start_copy(http.ids(1)["tiny"], 1, "curl-copy")
    done = http.wait_done(token)
    assert done.status == 302, done.text()
    new_id = done.json()["entryId"]
    tasks_url = f"{server.base_url}/v1/Repositories/{REPO_ID}/Tasks/{token}"
    auth = f"Authorization: Bearer {http.token}"

    plain = subprocess.run(
        [curl, "-sS", "-o", os.devnull, "-w", "%{http_code} %{redirect_url}", "-H", auth, tasks_url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == f"302 {server.base_url}{BASE}/Entries/{new_id}"

    followed = subprocess.run(
        [curl, "-sS", "-L", "-H", auth, "-w", "\n%{http_code} %{num_redirects}", tasks_url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert followed.returncode == 0, followed.stderr
    body, _, status = followed.stdout.rpartition("\n")
    assert status == "200 1", followed.stdout
    entry = json.loads(body)
    assert (entry["id"], entry["name"], entry["fullPath"]) == (new_id, "curl-copy", "\\curl-copy")
    assert server.stop() == 0


# --------------------------------------------------------------------------- copy worker processes


def test_a_copy_worker_that_dies_fails_its_copy_and_the_next_copy_works(server_factory, tmp_path):
    """A worker killed mid-copy (out of memory, a stray kill) must not hang the copy, the
    session or the server: the copy ends Failed, a new worker takes the dead one's place, the
    next copy completes and the server still stops cleanly."""
    root = tmp_path / "root"
    source = make_tree(root / "src", folders=24, per_folder=250, size=4096)
    server = server_factory.start(root, "--copy-processes", "2")
    a = sign_in(server.base_url)
    src_id = a.ids(1)["src"]
    token = a.start_copy(src_id, 1, "copy")
    deadline = time.monotonic() + DEADLINE_S
    while not (workers := _children(server.proc.pid)):
        assert a.task(token).status == 202, "the copy ended before its workers could be killed"
        assert time.monotonic() < deadline
    for worker in workers:
        os.kill(worker, signal.SIGKILL)
    r = a.wait_done(token)
    body = r.json()
    if r.status != 200 or body["status"] != "Failed":
        pytest.skip(f"the copy completed before its workers died ({r.status} {body['status']})")
    assert "worker" in error_text(body), body
    assert part_files(root) == []
    token = a.start_copy(src_id, 1, "again")
    r = a.wait_done(token)
    assert r.status == 302, r.text()
    copied = disk_tree(root / "again")
    assert {rel: data for rel, data in copied.items() if data is not None} == source
    assert server.stop() == 0


def test_workers_never_import_from_the_working_directory(server_factory, tmp_path):
    """Started with the storage root as its working directory, the server must not let a client
    who uploads a `server` package there run code in a copy worker (python -P)."""
    root = tmp_path / "root"
    make_tree(root / "src", folders=3, per_folder=200)
    marker = tmp_path / "hijacked"
    server = server_factory.start(root, "--copy-processes", "2", cwd=root)
    a = sign_in(server.base_url)
    src_id = a.ids(1)["src"]
    fake = root / "server"
    fake.mkdir()
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (fake / "copyworker.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    r = a.wait_done(a.start_copy(src_id, 1, "copy"))
    assert r.status == 302, r.text()
    assert not marker.exists(), "a copy worker imported code from the working directory"
    assert disk_tree(root / "copy") == disk_tree(root / "src")
    assert server.stop() == 0


def test_queue_mode_cancelling_a_waiting_operation_keeps_the_rest_waiting(server_factory, tmp_path):
    """A, B and C queued in one session; cancelling B must not let C start beside A."""
    root = tmp_path / "root"
    make_tree(root / "src", folders=2, per_folder=15)
    server = server_factory.start(root, "--session-concurrency", "queue", "--pace-ms", "40")
    a = sign_in(server.base_url)
    src_id = a.ids(1)["src"]
    first, second, third = (a.start_copy(src_id, 1, name) for name in ("A", "B", "C"))
    a.poll(first, lambda r: r.json()["status"] == "InProgress", "A to start")
    assert a.delete(f"/Tasks/{second}").status == 204
    assert a.task(second).json()["status"] == "Cancelled"
    waited = 0
    while True:
        # C first, then A: if A still runs after, it ran when C was sampled
        third_status = a.task(third).json()["status"]
        if (state := a.task(first)).status != 202:
            break
        assert third_status == "NotStarted", "C started while A still ran"
        waited += 1
        time.sleep(0.02)
    assert waited >= 2, "A ended before C could be seen waiting: the check checked nothing"
    assert state.status == 302
    assert a.wait_done(third).status == 302
    assert timestamp(a.task(third).json()["startTimestamp"]) >= timestamp(
        a.task(first).json()["statusTimestamp"]
    )
    assert server.stop() == 0


def test_delete_of_id_zero_is_404_at_once(server_factory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    server = server_factory.start(root)
    a = sign_in(server.base_url)
    assert_problem(a.delete("/Entries/0"), 404)
    assert server.stop() == 0


def test_long_operation_settings_from_the_environment(server_factory, tmp_path):
    root = tmp_path / "root"
    make_tree(root / "src", folders=1, per_folder=30)  # paced: about a second
    server = server_factory.start(
        root,
        env_extra={
            "SANDBOX_PROFILE": "sdk",
            "SANDBOX_SESSION_CONCURRENCY": "queue",
            "SANDBOX_PACE_MS": "30",
            "SANDBOX_TOKEN_TTL": "60",
            "SANDBOX_COPY_PROCESSES": "0",
        },
    )
    a = sign_in(server.base_url)
    src_id = a.ids(1)["src"]
    first = a.start_copy(src_id, 1, "one", expect=201)  # sdk profile
    second = a.start_copy(src_id, 1, "two", expect=201)  # queued, not 429
    assert a.task(second).json()["status"] == "NotStarted"  # paced: the first still runs
    assert a.wait_done(first).status == 201
    assert a.wait_done(second).status == 201
    assert server.stop() == 0


@pytest.mark.parametrize(
    "variable, value",
    [("SANDBOX_PROFILE", "fast"), ("SANDBOX_SESSION_CONCURRENCY", "maybe"), ("SANDBOX_PACE_MS", "-1")],
)
def test_a_bad_setting_is_a_usage_error(tmp_path, variable, value):
    done = subprocess.run(
        [sys.executable, "-m", "server", "--port", "0", "--storage-root", str(tmp_path / "root")],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ | {variable: value},
    )
    assert done.returncode == 2
    assert value in done.stderr
