"""Shared fixtures and helpers for the sandbox server's test suite.

Helpers are plain functions importable with ``from conftest import ...``; fixtures build a
``Settings`` over a real folder under ``tmp_path``, an in-process client (``aiohttp_client``),
a signed-in ``Api`` wrapper, and a factory that runs ``python -m server`` as a subprocess.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from yarl import URL

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent
for _p in (str(PROJECT_ROOT), str(TESTS_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from webhook_receiver import Receiver  # noqa: E402

from server.app import create_app  # noqa: E402
from server.config import Settings  # noqa: E402
from server.fsops import PART_PREFIX  # noqa: E402

# a separate project of a plugin user's, which tests/test_plugin.py runs as that user would
collect_ignore = ["user_project"]

REPO_ID = "r-sandbox"
BASE = f"/v1/Repositories/{REPO_ID}"
HIDDEN = ".sandbox"

PROBLEM_KEYS = {
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "operationId",
    "errorSource",
    "errorCode",
    "traceId",
}

ENTRY_KEYS = {
    "id",
    "name",
    "parentId",
    "fullPath",
    "folderPath",
    "creator",
    "creationTime",
    "lastModifiedTime",
    "entryType",
    "isContainer",
    "isLeaf",
    "templateName",
    "templateId",
    "templateFieldNames",
    "volumeName",
    "rowNumber",
    "fields",
}
FOLDER_KEYS = ENTRY_KEYS | {"isRecordFolder", "isUnderRecordSeries"}
DOCUMENT_KEYS = ENTRY_KEYS | {
    "elecDocumentSize",
    "extension",
    "mimeType",
    "isElectronicDocument",
    "pageCount",
    "isCheckedOut",
    "isUnderVersionControl",
    "isRecord",
}

CHILDREN = "Laserfiche.Repository.Folder/children"
EDOC = "Laserfiche.Repository.Document/edoc"


# --------------------------------------------------------------------------- settings


def make_settings(storage_root: Path, **overrides: Any) -> Settings:
    """A Settings object over ``storage_root`` with test-friendly defaults."""
    kwargs: dict[str, Any] = {
        "storage_root": Path(storage_root),
        "host": "127.0.0.1",
        "port": 0,
        "repository_id": REPO_ID,
        "users": (("admin", "admin"),),
        "session_ttl_s": 3600.0,
    }
    kwargs.update(overrides)
    return Settings(**kwargs)


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
async def receivers():
    """`await receivers(port=0, **options)` starts a webhook Receiver; all are stopped at the end."""
    made: list[Receiver] = []

    async def make(port: int = 0, **options: Any) -> Receiver:
        rx = Receiver(**options)
        made.append(rx)
        return await rx.start(port)

    yield make
    for rx in made:
        await rx.stop()


@pytest.fixture
def settings(storage_root: Path) -> Settings:
    return make_settings(storage_root)


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


# --------------------------------------------------------------------------- api wrapper


async def sign_in(client, username: str = "admin", password: str = "admin", repo: str = REPO_ID) -> str:
    resp = await client.post(
        f"/v1/Repositories/{repo}/Token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return body["access_token"]


@dataclass
class Api:
    """Thin wrapper: prefixes the repository base path and adds the bearer header."""

    client: Any
    token: str
    base: str = BASE
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **self.extra_headers}

    def url(self, path: str) -> str:
        return self.base + path

    def _h(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {**self.headers, **(headers or {})}

    async def request(self, method: str, path: str, *, headers=None, **kw):
        return await self.client.request(method, self.url(path), headers=self._h(headers), **kw)

    async def get(self, path: str, **kw):
        return await self.request("GET", path, **kw)

    async def head(self, path: str, **kw):
        return await self.request("HEAD", path, **kw)

    async def post(self, path: str, **kw):
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw):
        return await self.request("PATCH", path, **kw)

    async def raw(self, method: str, encoded_path: str, *, headers=None, **kw):
        """Send a request whose path is used byte for byte (no normalisation by yarl)."""
        root = str(self.client.make_url("/")).rstrip("/")
        url = URL(root + self.base + encoded_path, encoded=True)
        resp = await self.client.session.request(method, url, headers=self._h(headers), **kw)
        await resp.read()  # release the connection; the body stays cached on the response
        return resp

    async def absolute(self, method: str, url: str, *, headers=None, **kw):
        resp = await self.client.session.request(method, URL(url), headers=self._h(headers), **kw)
        await resp.read()
        return resp

    # -- convenience -------------------------------------------------------------

    async def entry(self, entry_id: int) -> dict:
        resp = await self.get(f"/Entries/{entry_id}")
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def by_path(self, full_path: str) -> dict:
        resp = await self.get("/Entries/ByPath", params={"fullPath": full_path})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["entry"] is not None
        return body["entry"]

    async def collection(self, path: str, params=None, headers=None) -> list[dict]:
        """Every item of an OData collection, following its absolute nextLinks."""
        resp = await self.get(path, params=params or {}, headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        items = list(body["value"])
        seen = 0
        while body.get("@odata.nextLink"):
            seen += 1
            assert seen < 1000, "nextLink loop"
            assert body["@odata.nextLink"].startswith("http"), body["@odata.nextLink"]
            resp = await self.absolute("GET", body["@odata.nextLink"], headers=headers)
            assert resp.status == 200, await resp.text()
            body = await resp.json()
            items.extend(body["value"])
        return items

    async def children(self, folder_id: int, params=None, headers=None) -> list[dict]:
        """All children of a folder, following nextLink."""
        return await self.collection(f"/Entries/{folder_id}/{CHILDREN}", params, headers)

    async def child_names(self, folder_id: int) -> set[str]:
        return {e["name"] for e in await self.children(folder_id)}

    async def create_folder(self, parent_id: int, name: str, *, auto_rename: bool | None = None):
        params = {} if auto_rename is None else {"autoRename": "true" if auto_rename else "false"}
        return await self.post(
            f"/Entries/{parent_id}/{CHILDREN}",
            json={"entryType": "Folder", "name": name},
            params=params,
        )

    async def mkdir(self, parent_id: int, name: str) -> dict:
        resp = await self.create_folder(parent_id, name)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def import_doc(
        self,
        parent_id: int,
        name: str,
        data: bytes,
        *,
        auto_rename: bool | None = None,
        request_json: str = "{}",
        encoded_name: str | None = None,
        content_type: str = "application/octet-stream",
        filename: str = "upload.bin",
    ):
        # the entry's name comes from the URL; the part's own filename is deliberately different
        form = multipart(
            data,
            filename=filename,
            request_json=request_json,
            content_type=content_type,
        )
        params = "" if auto_rename is None else f"?autoRename={'true' if auto_rename else 'false'}"
        if encoded_name is not None:
            seg = encoded_name
        elif name and set(name) == {"."}:
            seg = "%2E" * len(name)  # a bare "." or ".." segment would be normalised away by the URL layer
        else:
            seg = quote(name, safe="")
        return await self.raw("POST", f"/Entries/{parent_id}/{seg}{params}", data=form)

    async def upload(self, parent_id: int, name: str, data: bytes, **kw) -> int:
        resp = await self.import_doc(parent_id, name, data, **kw)
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        return body["operations"]["entryCreate"]["entryId"]

    async def download(self, entry_id: int, headers=None):
        return await self.get(f"/Entries/{entry_id}/{EDOC}", headers=headers)


def multipart(
    data: bytes,
    *,
    filename: str = "file.bin",
    request_json: str | None = "{}",
    content_type: str = "application/octet-stream",
):
    import aiohttp

    form = aiohttp.FormData()
    if request_json is not None:
        form.add_field("request", request_json, content_type="application/json")
    if data is not None:
        # a stream, not raw bytes: aiohttp warns about large raw bodies, and warnings are errors here
        form.add_field("electronicDocument", io.BytesIO(data), filename=filename, content_type=content_type)
    return form


@pytest.fixture
async def token(client) -> str:
    return await sign_in(client)


@pytest.fixture
async def api(client, token) -> Api:
    return Api(client, token)


# --------------------------------------------------------------------------- assertions


async def assert_problem(resp, status: int | tuple[int, ...], field_name: str | None = None) -> dict:
    """Assert an RFC 9457 problem response; return its body."""
    statuses = (status,) if isinstance(status, int) else tuple(status)
    text = await resp.text()
    assert resp.status in statuses, f"expected {statuses}, got {resp.status}: {text[:500]}"
    assert resp.content_type == "application/problem+json", (resp.content_type, text[:500])
    assert "X-RequestId" in resp.headers
    assert "X-APIServer-Error" in resp.headers
    import json

    body = json.loads(text)
    missing = PROBLEM_KEYS - set(body)
    assert not missing, f"problem lacks {missing}: {body}"
    assert body["status"] == resp.status
    if field_name is not None:
        assert field_name.lower() in str(body["detail"]).lower(), (
            f"detail does not name {field_name!r}: {body}"
        )
    return body


def assert_entry_shape(entry: dict) -> None:
    assert entry["entryType"] in ("Folder", "Document"), entry
    expected = FOLDER_KEYS if entry["entryType"] == "Folder" else DOCUMENT_KEYS
    assert set(entry) == expected, f"extra {set(entry) - expected}, missing {expected - set(entry)}"


def tree_snapshot(top: Path, exclude_hidden_of: Path | None = None) -> list:
    """Every directory and file under ``top`` (sizes and bytes of files), symlinks as links.

    ``exclude_hidden_of``: a storage root whose ``.sandbox`` store is left out.
    """
    top = Path(top)
    hidden = (Path(exclude_hidden_of) / HIDDEN) if exclude_hidden_of is not None else None
    out = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        d = Path(dirpath)
        if hidden is not None and (d == hidden or hidden in d.parents):
            dirnames[:] = []
            continue
        rel = os.path.relpath(d, top)
        for name in sorted(dirnames):
            p = d / name
            if hidden is not None and p == hidden:
                continue
            kind = "link" if p.is_symlink() else "dir"
            out.append((os.path.join(rel, name), kind, os.readlink(p) if kind == "link" else None))
        for name in sorted(filenames):
            p = d / name
            if p.is_symlink():
                out.append((os.path.join(rel, name), "link", os.readlink(p)))
            elif p.is_file():
                out.append((os.path.join(rel, name), "file", p.read_bytes()))
            else:
                out.append((os.path.join(rel, name), "special", None))
    return sorted(out, key=lambda t: t[0])


T = TypeVar("T")


def walk_tree(top: Path, read: Callable[[Path], T]) -> dict[str, T | None]:
    """Relative path -> `read(file)` for files, None for folders, for comparing copies."""
    out: dict[str, T | None] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        for n in dirnames:
            out[os.path.normpath(os.path.join(rel, n))] = None
        for n in filenames:
            out[os.path.normpath(os.path.join(rel, n))] = read(Path(dirpath) / n)
    return out


def disk_tree(top: Path) -> dict[str, bytes | None]:
    """Relative path -> bytes (files) or None (folders)."""
    return walk_tree(top, Path.read_bytes)


def part_files(root: Path) -> list[str]:
    """Every `.sandbox-part-*` name anywhere under the root (its store included)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [os.path.join(dirpath, n) for n in dirnames + filenames if n.startswith(PART_PREFIX)]
    return found


def make_jail(tmp_path: Path, canary_bytes: bytes) -> tuple[Path, Path, Path]:
    """A storage root deep under tmp_path with a little content, a canary file outside it and a
    sibling folder whose name shares the root's prefix (defeats naive startswith checks): the
    root, the outside folder and the canary."""
    root = tmp_path / "jail" / "a" / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "r.txt").write_bytes(b"real content")
    (root / "top.txt").write_bytes(b"top")
    outside = tmp_path / "outside"
    outside.mkdir()
    canary = outside / "canary.txt"
    canary.write_bytes(canary_bytes)
    sibling = tmp_path / "jail" / "a" / "root2"
    sibling.mkdir()
    (sibling / "canary.txt").write_bytes(canary_bytes)
    return root, outside, canary


# --------------------------------------------------------------------------- subprocess server

BANNER_RE = re.compile(r"base URL:\s+(\S+)")


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    base_url: str
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"server did not exit within {timeout}s after signal {sig}") from None


class ServerFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[ServerProcess] = []

    def start(
        self,
        storage_root: Path,
        *extra: str,
        timeout: float = 20.0,
        env_extra: dict[str, str] | None = None,
        cwd: Path = PROJECT_ROOT,
    ) -> ServerProcess:
        n = len(self.started)
        out_path = self.tmp_path / f"server-{n}.stdout"
        err_path = self.tmp_path / f"server-{n}.stderr"
        cmd = [
            sys.executable,
            "-m",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--storage-root",
            str(storage_root),
            *extra,
        ]
        env = dict(os.environ) | (env_extra or {})
        env.pop("PYTHONUNBUFFERED", None)  # the banner must be flushed by the server itself
        pp = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + pp if pp else "")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                cmd, cwd=str(cwd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )
        sp = ServerProcess(proc, "", out_path, err_path)
        self.started.append(sp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = BANNER_RE.search(sp.stdout())
            if m:
                sp.base_url = m.group(1).rstrip("/")
                return sp
            if proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {proc.returncode} before the banner\n"
                    f"stdout:\n{sp.stdout()}\nstderr:\n{sp.stderr()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no banner within {timeout}s\nstdout:\n{sp.stdout()}\nstderr:\n{sp.stderr()}")

    def cleanup(self) -> None:
        for sp in self.started:
            if sp.proc.poll() is None:
                sp.proc.kill()
                sp.proc.wait(timeout=5)


@pytest.fixture
def server_factory(tmp_path: Path):
    factory = ServerFactory(tmp_path)
    yield factory
    factory.cleanup()


# --------------------------------------------------------------------------- Laserfiche v2 (issue 12)

V2BASE = f"/v2/Repositories/{REPO_ID}"
V2_CHILDREN = "Folder/Children"
V2_EDOC = "Document/Edoc"

# the v2 Entry as the implementation plan lists it (no `fields`; `childInfo` and
# `totalDocumentSize` only when asked for)
V2_ENTRY_KEYS = ENTRY_KEYS - {"fields"}
V2_FOLDER_KEYS = V2_ENTRY_KEYS | {"isRecordFolder", "isUnderRecordSeries"}
V2_DOCUMENT_KEYS = V2_ENTRY_KEYS | {
    "electronicDocumentSize",
    "extension",
    "isElectronicDocument",
    "isRecord",
    "mimeType",
    "pageCount",
    "isCheckedOut",
    "isUnderVersionControl",
}
V2_SHORTCUT_KEYS = V2_ENTRY_KEYS | {"targetId", "targetType", "extension"}
TASK_KEYS = {"id", "taskType", "percentComplete", "status", "errors", "result", "startTime", "lastUpdateTime"}
TASK_STATUSES = ("NotStarted", "InProgress", "Completed", "Failed", "Cancelled")
TASK_ENDED = ("Completed", "Failed", "Cancelled")


def v2_of(api: Api) -> Api:
    """The same session (bearer) on the v2 base."""
    return Api(api.client, api.token, base=V2BASE)


def v1_of(api: Api) -> Api:
    return Api(api.client, api.token, base=BASE)


def assert_v2_shape(entry: dict, *extra: str, listed: bool = False) -> None:
    """A v2 Entry has exactly its type's members (plus `extra`, the ones asked for). `rowNumber` is
    a listing's (required there, optional on an entry read by itself)."""
    expected = {
        "Folder": V2_FOLDER_KEYS,
        "Document": V2_DOCUMENT_KEYS,
        "Shortcut": V2_SHORTCUT_KEYS,
    }[entry["entryType"]] | set(extra)
    if not listed and "rowNumber" not in entry:
        expected = expected - {"rowNumber"}
    assert set(entry) == expected, f"extra {set(entry) - expected}, missing {expected - set(entry)}: {entry}"


async def v2_children(api: Api, folder_id: int, params=None, headers=None) -> list[dict]:
    """Every child of a folder through v2's Folder/Children, following absolute nextLinks."""
    return await api.collection(f"/Entries/{folder_id}/{V2_CHILDREN}", params, headers)


def v2_import_form(
    data: bytes | None,
    *,
    filename: str = "test.pdf",
    request: dict | str | None = None,
    content_type: str = "application/pdf",
):
    """The official v2 client's import body: part `file` and a plain text part `request`."""
    import json as _json

    import aiohttp

    form = aiohttp.FormData()
    if data is not None:
        form.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
    if request is not None:
        form.add_field("request", request if isinstance(request, str) else _json.dumps(request))
    return form


def assert_task_shape(task: dict) -> None:
    assert set(task) == TASK_KEYS, f"extra {set(task) - TASK_KEYS}, missing {TASK_KEYS - set(task)}: {task}"
    assert isinstance(task["id"], str) and task["id"], task
    assert task["status"] in TASK_STATUSES, task
    pct = task["percentComplete"]
    assert isinstance(pct, int) and not isinstance(pct, bool), task
    assert 0 <= pct <= 100, task
    assert isinstance(task["errors"], list), task
    assert task["result"] is None or isinstance(task["result"], dict), task


async def start_v2_task(resp, status: int = 202) -> str:
    """The task id of a v2 start answer (`{taskId}` and nothing else)."""
    text = await resp.text()
    assert resp.status == status, text
    import json as _json

    body = _json.loads(text)
    assert set(body) == {"taskId"}, body
    assert isinstance(body["taskId"], str) and body["taskId"], body
    return body["taskId"]


async def v2_tasks(api: Api, *task_ids: str, wait: float | None = 0, comma: bool = False):
    """GET Tasks (repeated `taskIds`, or one comma-separated), `Prefer: wait=N` unless wait is
    None: the response and its JSON body (None when it is not JSON)."""
    import json as _json

    if comma and task_ids:
        params: list[tuple[str, str]] = [("taskIds", ",".join(task_ids))]
    else:
        params = [("taskIds", t) for t in task_ids]
    headers = {} if wait is None else {"Prefer": f"wait={wait:g}"}
    resp = await api.get("/Tasks", params=params, headers=headers)
    raw = await resp.read()
    body = _json.loads(raw) if raw and "json" in resp.content_type else None
    return resp, body


async def v2_task(api: Api, task_id: str, wait: float | None = 0) -> dict:
    resp, body = await v2_tasks(api, task_id, wait=wait)
    assert resp.status == 200, body
    assert body is not None
    [task] = [t for t in body["value"] if t["id"] == task_id]
    assert_task_shape(task)
    return task


async def wait_v2_task(api: Api, task_id: str, deadline_s: float = 30.0) -> dict:
    """Long-poll GET Tasks (at most 5 s a request) until the task has ended; its TaskProgress."""
    t_end = time.monotonic() + deadline_s
    while True:
        task = await v2_task(api, task_id, wait=5)
        if task["status"] in TASK_ENDED:
            return task
        assert time.monotonic() < t_end, f"task {task_id} did not end within {deadline_s}s: {task}"


# --------------------------------------------------------------------------- metadata (issue 13)

# A test catalog in the sample's format (`storage_root/.catalog.toml`): every field type, a
# constrained and a multi-value String, templates with and without required fields, a secure
# tag, three link types, audit reasons of both kinds, attributes for everyone and per user.
TEST_CATALOG = """\
[[field]]
id = 1
name = "Title"
type = "String"
length = 20

[[field]]
id = 2
name = "Code"
type = "String"
length = 8
constraint = 'AB-\\d{3}'
constraint_error = "A code is AB- and three digits."

[[field]]
id = 3
name = "Count"
type = "LongInteger"

[[field]]
id = 4
name = "Price"
type = "Number"

[[field]]
id = 5
name = "Due"
type = "Date"

[[field]]
id = 6
name = "Stamp"
type = "DateTime"

[[field]]
id = 7
name = "Color"
type = "List"
values = ["Red", "Green", "Blue"]

[[field]]
id = 8
name = "Words"
type = "String"
length = 10
multi_value = true

[[field]]
id = 9
name = "Remark"
type = "String"

[[field]]
id = 10
name = "Owner"
type = "String"
length = 50

[[template]]
id = 1
name = "Order"
description = "An order."
color = "#102030"
fields = ["Code", "Title", "Count", "Price", "Due", "Color"]
required = ["Title"]

[[template]]
id = 2
name = "Loose"
fields = ["Remark", "Words"]

[[template]]
id = 3
name = "Bare"

[[tag]]
id = 1
name = "Alpha"
description = "The first."

[[tag]]
id = 2
name = "Beta"

[[tag]]
id = 3
name = "Gamma"

[[tag]]
id = 4
name = "Secret"
secure = true
watermark = "TOP SECRET"

[[link]]
id = 1
source_label = "Parent"
target_label = "Child"
description = "One begets the other."

[[link]]
id = 2
source_label = "Original"
target_label = "Duplicate"

[[link]]
id = 3
source_label = "Cites"
target_label = "Cited By"

[[audit_reason]]
id = 1
name = "Expired"
type = "DeleteEntry"

[[audit_reason]]
id = 2
name = "Mistake"
type = "DeleteEntry"

[[audit_reason]]
id = 3
name = "Audit"
type = "ExportDocument"

[attributes.everyone]
A = "1"
B = "2"
C = "3"

[attributes.users.admin]
Mine = "x"
Other = "y"

[attributes.users.bob]
Theirs = "z"
"""

CATALOG_FILE = ".catalog.toml"
SAMPLE_ROOT = PROJECT_ROOT / "storage_root"


def write_catalog(root: Path, text: str = TEST_CATALOG) -> Path:
    """The catalog file at the top of `root` (made if missing)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / CATALOG_FILE
    path.write_text(text, encoding="utf-8")
    return path


def metadata_tree(root: Path) -> None:
    """Docs/{a.txt, b.txt, Sub/c.txt} and Other/o.txt: entries to put metadata on."""
    (root / "Docs" / "Sub").mkdir(parents=True, exist_ok=True)
    (root / "Docs" / "a.txt").write_bytes(b"alpha")
    (root / "Docs" / "b.txt").write_bytes(b"bravo")
    (root / "Docs" / "Sub" / "c.txt").write_bytes(b"charlie")
    (root / "Other").mkdir(exist_ok=True)
    (root / "Other" / "o.txt").write_bytes(b"other")


def problem_names(body: dict, *names: str) -> None:
    """A 400's detail (or title) names one of `names` (case-insensitively)."""
    text = f"{body.get('detail') or ''} {body.get('title') or ''}".lower()
    assert any(n.lower() in text for n in names), f"the problem names none of {names}: {body}"


async def md_fields(v2: Api, entry_id: int) -> dict[str, list[str]]:
    """v2 GET Fields (every page): field name -> values, fields with values only."""
    items = await v2.collection(f"/Entries/{entry_id}/Fields")
    return {f["name"]: list(f["values"]) for f in items if f["values"]}


async def md_tags(v2: Api, entry_id: int) -> set[str]:
    return {t["name"] for t in await v2.collection(f"/Entries/{entry_id}/Tags")}


async def md_links(v2: Api, entry_id: int) -> set[tuple]:
    """v2 GET Links: (linkDefinitionId, sourceId, targetId, custom properties) of each link."""
    out = set()
    for link in await v2.collection(f"/Entries/{entry_id}/Links"):
        props = tuple(sorted((link.get("customProperties") or {}).items()))
        out.add((link["linkDefinitionId"], link["sourceId"], link["targetId"], props))
    return out


async def md_snapshot(v2: Api, entry_id: int) -> dict[str, Any]:
    """An entry's whole metadata through v2: template name, fields with values, tags, links."""
    resp = await v2.get(f"/Entries/{entry_id}")
    assert resp.status == 200, await resp.text()
    entry = await resp.json()
    return {
        "template": entry["templateName"] or "",
        "fields": await md_fields(v2, entry_id),
        "tags": await md_tags(v2, entry_id),
        "links": await md_links(v2, entry_id),
    }
