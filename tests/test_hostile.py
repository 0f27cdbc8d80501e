"""Hostile input: bad names, path escapes, symlinks, special files, malformed bodies.

Every case asserts a 4xx problem (or an explicitly allowed outcome) AND that nothing on disk changed:
the whole tmp_path (storage root nested inside it, plus an "outside" folder with a canary) is
snapshotted before and after, leaving out only the server's own ``.sandbox`` store.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import (
    CHILDREN,
    EDOC,
    HIDDEN,
    V2_CHILDREN,
    V2_EDOC,
    Api,
    assert_problem,
    make_jail,
    make_settings,
    sign_in,
    tree_snapshot,
    v2_children,
    v2_import_form,
    v2_of,
)

from server.app import create_app

CANARY = b"CANARY-SECRET-do-not-read-0xC0FFEE"

BAD_NAMES = [
    "",
    ".",
    "..",
    "a/b",
    "../escape",
    "../../escape.txt",
    "a\\b",
    "..\\escape",
    "\\abs",
    "/abs",
    "/etc/passwd",
    "a\x00b",
    "\x00",
    "a\x01b",
    "tab\there",
    "new\nline",
    "cr\rx",
    "unit\x1fsep",
    "del\x7f",
    "x" * 256,
    "é" * 128,  # 256 bytes of UTF-8
    "a" * 254 + "é",  # 256 bytes of UTF-8, 255 characters
    "next\x85line",  # a C1 control character
    # what Laserfiche itself refuses in a name
    "a:b",
    "star*",
    "what?",
    'say "hi"',
    "<tag>",
    "pipe|d",
]
BAD_IDS = [
    "empty",
    "dot",
    "dotdot",
    "slash",
    "dotdot-slash",
    "dotdot2-slash",
    "backslash",
    "dotdot-backslash",
    "abs-backslash",
    "abs-slash",
    "etc-passwd",
    "nul",
    "only-nul",
    "ctrl-01",
    "tab",
    "newline",
    "cr",
    "ctrl-1f",
    "del",
    "256-ascii",
    "256-bytes-utf8",
    "255-chars-256-bytes",
    "c1-control",
    "colon",
    "star",
    "question",
    "quote",
    "angles",
    "pipe",
]


@dataclass
class Env:
    tmp: Path
    root: Path
    outside: Path
    canary: Path
    api: Api

    def snapshot(self):
        return tree_snapshot(self.tmp, exclude_hidden_of=self.root)

    def assert_canary_intact(self):
        assert self.canary.read_bytes() == CANARY


@pytest.fixture
async def env(tmp_path, aiohttp_client):
    root, outside, canary = make_jail(tmp_path, CANARY)
    client = await aiohttp_client(create_app(make_settings(root)))
    api = Api(client, await sign_in(client))
    return Env(tmp_path, root, outside, canary, api)


def _assert_no_canary(text: str | bytes):
    raw = text.encode() if isinstance(text, str) else text
    assert CANARY not in raw


# --------------------------------------------------------------------------- bad names


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_bad_name_create_folder(env, name):
    before = env.snapshot()
    for auto in (None, True):
        resp = await env.api.create_folder(1, name, auto_rename=auto)
        await assert_problem(resp, 400)
    real = await env.api.by_path("\\real")
    await assert_problem(await env.api.create_folder(real["id"], name), 400)
    assert env.snapshot() == before


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_bad_name_patch_rename(env, name):
    for path in ("\\real", "\\top.txt"):
        victim = await env.api.by_path(path)
        before = env.snapshot()
        resp = await env.api.patch(f"/Entries/{victim['id']}", json={"name": name})
        await assert_problem(resp, 400)
        assert env.snapshot() == before
        assert (await env.api.entry(victim["id"]))["fullPath"] == path


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_bad_name_copy(env, name):
    src = await env.api.by_path("\\real")
    before = env.snapshot()
    resp = await env.api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": src["id"], "name": name})
    await assert_problem(resp, 400)
    assert env.snapshot() == before


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_bad_name_import(env, name):
    before = env.snapshot()
    for auto in (None, True):
        resp = await env.api.import_doc(1, name, b"payload", auto_rename=auto)
        # an empty name leaves the route's last segment empty: no route may match it
        await assert_problem(resp, (400, 404, 405) if name == "" else 400)
    assert env.snapshot() == before


@pytest.mark.parametrize(
    "encoded",
    [
        "..%2F..%2Fescape.txt",
        "..%2F..%2F..%2F..%2Fescape.txt",
        "..%5C..%5Cescape.txt",
        "%2E%2E",
        "%2e%2e",
        "%2E",
        "%2E%2E%2F%2E%2E%2Fescape.txt",
        "%2Fetc%2Fescape.txt",
        "%5Cescape.txt",
        "a%00.txt",
        "%00",
        "escape.txt%00.pdf",
        "%01.txt",
        "..%2Froot2%2Fcanary.txt",
        "..%2F..%2F..%2Foutside%2Fcanary.txt",
    ],
)
async def test_percent_encoded_import_names(env, encoded):
    before = env.snapshot()
    resp = await env.api.import_doc(1, "ignored", b"overwrite!", encoded_name=encoded)
    await assert_problem(resp, (400, 404))
    real = await env.api.by_path("\\real")
    resp = await env.api.import_doc(real["id"], "ignored", b"overwrite!", encoded_name=encoded)
    await assert_problem(resp, (400, 404))
    assert env.snapshot() == before
    assert not (env.tmp.parent / "escape.txt").exists()
    env.assert_canary_intact()


async def test_double_encoded_name_stays_literal(env):
    """`%252E%252E%252F` decodes once to the literal name `%2E%2E%2Fx.txt`: legal, only inside the root."""
    before = env.snapshot()
    resp = await env.api.import_doc(1, "ignored", b"literal", encoded_name="%252E%252E%252Fx.txt")
    if resp.status == 201:
        assert (env.root / "%2E%2E%2Fx.txt").read_bytes() == b"literal"
        (env.root / "%2E%2E%2Fx.txt").unlink()
    else:
        await assert_problem(resp, 400)
    assert env.snapshot() == before


async def test_longest_valid_names_are_accepted(env):
    for name in ("x" * 255, "é" * 127 + "x"):
        assert len(name.encode()) == 255
        resp = await env.api.create_folder(1, name)
        assert resp.status == 201, await resp.text()
        assert (env.root / name).is_dir()
        resp = await env.api.import_doc(1, "d" + name[1:], b"x")
        assert resp.status == 201, await resp.text()


# --------------------------------------------------------------------------- hidden store


async def test_store_cannot_be_created_renamed_to_or_imported(env):
    assert (env.root / HIDDEN).is_dir()
    before = env.snapshot()
    store_before = sorted(p.name for p in (env.root / HIDDEN).iterdir())
    await assert_problem(await env.api.create_folder(1, HIDDEN), (400, 409))
    real = await env.api.by_path("\\real")
    await assert_problem(await env.api.patch(f"/Entries/{real['id']}", json={"name": HIDDEN}), (400, 409))
    await assert_problem(await env.api.import_doc(1, HIDDEN, b"x"), (400, 409))
    await assert_problem(await env.api.get("/Entries/ByPath", params={"fullPath": "\\" + HIDDEN}), (400, 404))
    for f in store_before:
        resp = await env.api.get("/Entries/ByPath", params={"fullPath": f"\\{HIDDEN}\\{f}"})
        await assert_problem(resp, (400, 404))
    assert env.snapshot() == before
    assert (env.root / HIDDEN).is_dir()
    assert HIDDEN not in await env.api.child_names(1)


async def test_store_name_allowed_below_root(env):
    real = await env.api.by_path("\\real")
    resp = await env.api.create_folder(real["id"], HIDDEN)
    assert resp.status == 201, await resp.text()
    assert (env.root / "real" / HIDDEN).is_dir()
    assert HIDDEN in await env.api.child_names(real["id"])


async def test_store_never_has_an_id(env):
    await env.api.children(1)
    for i in range(1, 40):
        resp = await env.api.get(f"/Entries/{i}")
        if resp.status == 200:
            e = await resp.json()
            assert HIDDEN not in e["fullPath"].split("\\")
        else:
            await assert_problem(resp, 404)


# --------------------------------------------------------------------------- by path


HOSTILE_PATHS = [
    "\\..",
    "\\..\\..",
    "\\..\\root2\\canary.txt",
    "\\..\\..\\..\\outside\\canary.txt",
    "\\real\\..\\..\\root2\\canary.txt",
    "\\real\\..\\top.txt",
    "\\.\\top.txt",
    "..\\root2\\canary.txt",
    "\\" + "..\\" * 12 + "etc\\passwd",
    "/etc/passwd",
    "\\..\\..\\..\\..\\..\\..\\etc\\passwd",
    "C:\\Windows\\win.ini",
    "\\\\server\\share\\x",
    "\\real/../../root2/canary.txt",
    "\\top.txt\x00.pdf",
    "\\%2e%2e\\root2\\canary.txt",
]


@pytest.mark.parametrize("full_path", HOSTILE_PATHS)
async def test_hostile_by_path(env, full_path):
    before = env.snapshot()
    resp = await env.api.get("/Entries/ByPath", params={"fullPath": full_path})
    _assert_no_canary(await resp.read())
    await assert_problem(resp, (400, 404))
    resp = await env.api.get(
        "/Entries/ByPath", params={"fullPath": full_path, "fallbackToClosestAncestor": "true"}
    )
    body_bytes = await resp.read()
    _assert_no_canary(body_bytes)
    if resp.status == 200:
        body = json.loads(body_bytes)
        assert body["entry"] is None
        anc = body["ancestorEntry"]
        assert anc is None or anc["fullPath"] in ("\\", "\\real")
    else:
        await assert_problem(resp, (400, 404))
    assert env.snapshot() == before


async def test_absolute_os_path_by_path(env):
    for p in (str(env.canary), str(env.root / "top.txt"), str(env.root)):
        resp = await env.api.get("/Entries/ByPath", params={"fullPath": p})
        await assert_problem(resp, (400, 404))
        resp = await env.api.get("/Entries/ByPath", params={"fullPath": p.replace("/", "\\")})
        if resp.status == 200:  # only acceptable if it is a real path inside the storage root - it is not
            raise AssertionError(await resp.text())
        await assert_problem(resp, (400, 404))


@pytest.mark.parametrize(
    "query",
    [
        "fullPath=%5C..%5Croot2%5Ccanary.txt",
        "fullPath=%5C%2E%2E%5Croot2%5Ccanary.txt",
        "fullPath=%5C..%2F..%2F..%2Foutside%2Fcanary.txt",
        "fullPath=%2Fetc%2Fpasswd",
        "fullPath=%5Ctop.txt%00",
        "fullPath=%5C%00",
        "fullPath=%5C%C0%AE%C0%AE%5Croot2%5Ccanary.txt",
        "fullPath=%5C%FF%FE",
    ],
)
async def test_percent_encoded_by_path(env, query):
    before = env.snapshot()
    resp = await env.api.raw("GET", f"/Entries/ByPath?{query}")
    _assert_no_canary(await resp.read())
    await assert_problem(resp, (400, 404))
    assert env.snapshot() == before


# --------------------------------------------------------------------------- symlinks and special files


class FifoWatch:
    """Detects (and unblocks) any reader that opens the FIFO: the server must never open it."""

    def __init__(self, path: Path):
        self.path = path
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            except OSError:
                self._stop.wait(0.02)
                continue
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    self.opened = True  # only possible while some reader has it open
            finally:
                os.close(fd)
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def links(env):
    r = env.root
    os.symlink(env.outside, r / "link_out")
    os.symlink(env.canary, r / "link_file.txt")
    os.symlink(r / "real", r / "link_in")
    os.symlink(r / "top.txt", r / "link_in_file.txt")
    os.symlink(r / "missing", r / "link_dangling")
    os.symlink("../root2", r / "link_rel_out")
    os.symlink(env.outside, r / "real" / "inner_link")
    os.symlink(env.canary, r / "real" / "inner_canary.txt")
    os.mkfifo(r / "pipe")
    os.mkfifo(r / "real" / "pipe2")
    watch = FifoWatch(r / "pipe")
    watch2 = FifoWatch(r / "real" / "pipe2")
    yield env
    watch.stop()
    watch2.stop()
    assert not watch.opened and not watch2.opened, "the server opened a FIFO"


LINK_NAMES = {
    "link_out",
    "link_file.txt",
    "link_in",
    "link_in_file.txt",
    "link_dangling",
    "link_rel_out",
    "inner_link",
    "inner_canary.txt",
    "pipe",
    "pipe2",
}


async def test_symlinks_and_special_files_are_invisible(links):
    env = links
    before = env.snapshot()
    root_items = await env.api.children(1)
    assert {e["name"] for e in root_items} == {"real", "top.txt"}
    resp = await env.api.get(f"/Entries/1/{CHILDREN}", params={"$count": "true"})
    assert (await resp.json())["@odata.count"] == 2
    real = await env.api.by_path("\\real")
    assert await env.api.child_names(real["id"]) == {"r.txt"}
    for p in (
        "\\link_out",
        "\\link_out\\canary.txt",
        "\\link_file.txt",
        "\\link_in",
        "\\link_in\\r.txt",
        "\\link_in_file.txt",
        "\\link_dangling",
        "\\link_rel_out\\canary.txt",
        "\\pipe",
        "\\real\\inner_link",
        "\\real\\inner_link\\canary.txt",
        "\\real\\inner_canary.txt",
        "\\real\\pipe2",
    ):
        resp = await env.api.get("/Entries/ByPath", params={"fullPath": p})
        _assert_no_canary(await resp.read())
        await assert_problem(resp, 404)
        resp = await env.api.get(
            "/Entries/ByPath", params={"fullPath": p, "fallbackToClosestAncestor": "true"}
        )
        body = await resp.json()
        assert body["entry"] is None
        assert body["ancestorEntry"]["fullPath"] in ("\\", "\\real")
    for i in range(1, 40):
        resp = await env.api.get(f"/Entries/{i}")
        raw = await resp.read()
        _assert_no_canary(raw)
        if resp.status == 200:
            assert not (set(json.loads(raw)["fullPath"].split("\\")) & LINK_NAMES)
        resp = await env.api.get(f"/Entries/{i}/{EDOC}")
        _assert_no_canary(await resp.read())
    assert env.snapshot() == before
    env.assert_canary_intact()


async def test_writes_near_symlinks_never_touch_outside(links):
    env = links
    outside_before = tree_snapshot(env.outside)
    sibling_before = tree_snapshot(env.root.parent / "root2")
    real = await env.api.by_path("\\real")
    top = await env.api.by_path("\\top.txt")
    # names that collide with invisible links: whatever the answer, nothing outside changes
    for auto in (None, True):
        await env.api.import_doc(1, "link_file.txt", b"OVERWRITE", auto_rename=auto)
        await env.api.import_doc(real["id"], "inner_canary.txt", b"OVERWRITE", auto_rename=auto)
        await env.api.create_folder(1, "link_out", auto_rename=auto)
        await env.api.create_folder(real["id"], "inner_link", auto_rename=auto)
        await env.api.import_doc(1, "pipe", b"OVERWRITE", auto_rename=auto)
    await env.api.patch(f"/Entries/{top['id']}", json={"name": "link_rel_out"})
    await env.api.patch(f"/Entries/{top['id']}", json={"name": "link_file.txt"})
    assert tree_snapshot(env.outside) == outside_before
    assert tree_snapshot(env.root.parent / "root2") == sibling_before
    env.assert_canary_intact()


async def test_copy_skips_symlinks(links):
    env = links
    real = await env.api.by_path("\\real")
    outside_before = tree_snapshot(env.outside)
    resp = await env.api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": real["id"], "name": "copy"})
    assert resp.status == 201, await resp.text()
    copy = env.root / "copy"
    found = []
    for dirpath, dirnames, filenames in os.walk(copy):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            assert not p.is_symlink(), p
            found.append(os.path.relpath(p, copy))
            if p.is_file():
                assert CANARY not in p.read_bytes()
    assert found == ["r.txt"]
    assert (copy / "r.txt").read_bytes() == b"real content"
    assert tree_snapshot(env.outside) == outside_before


async def test_folder_replaced_by_symlink_is_gone(env):
    target = await env.api.mkdir(1, "victim")
    (env.root / "victim" / "v.txt").write_bytes(b"v")
    v = await env.api.by_path("\\victim\\v.txt")
    # replace the folder by a symlink pointing outside, behind the server's back
    (env.root / "victim" / "v.txt").unlink()
    (env.root / "victim").rmdir()
    os.symlink(env.outside, env.root / "victim")
    outside_before = tree_snapshot(env.outside)
    tid = target["id"]
    for resp in (
        await env.api.get(f"/Entries/{tid}"),
        await env.api.get(f"/Entries/{tid}/{CHILDREN}"),
        await env.api.get(f"/Entries/{v['id']}"),
        await env.api.get(f"/Entries/{v['id']}/{EDOC}"),
    ):
        _assert_no_canary(await resp.read())
        await assert_problem(resp, 404)
    resp = await env.api.get("/Entries/ByPath", params={"fullPath": "\\victim\\canary.txt"})
    await assert_problem(resp, 404)
    await assert_problem(await env.api.create_folder(tid, "planted"), (400, 404))
    await assert_problem(await env.api.import_doc(tid, "planted.txt", b"planted"), (400, 404))
    top = await env.api.by_path("\\top.txt")
    await assert_problem(await env.api.patch(f"/Entries/{top['id']}", json={"parentId": tid}), (400, 404))
    await assert_problem(await env.api.patch(f"/Entries/{tid}", json={"name": "renamed"}), (400, 404))
    await assert_problem(
        await env.api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": tid, "name": "stolen"}), (400, 404)
    )
    assert tree_snapshot(env.outside) == outside_before
    assert not (env.root / "stolen").exists()
    assert (env.root / "top.txt").read_bytes() == b"top"
    env.assert_canary_intact()


async def test_document_under_folder_swapped_for_symlink_is_gone(env):
    """A known document whose folder is swapped (by hand) for a symlink to a folder holding a file of
    the same name: the id must not now reach the outside file, for reading or for writing."""
    folder = await env.api.mkdir(1, "swap")
    doc = await env.api.upload(folder["id"], "canary.txt", b"inside")
    sub = await env.api.mkdir(folder["id"], "sub")
    (env.outside / "sub").mkdir()
    (env.outside / "sub" / "deep.txt").write_bytes(CANARY)
    deep = await env.api.upload(sub["id"], "deep.txt", b"inside too")
    os.rename(env.root / "swap", env.tmp / "swap-moved-away")
    os.symlink(env.outside, env.root / "swap")
    outside_before = tree_snapshot(env.outside)
    for eid in (doc, deep):
        for resp in (
            await env.api.get(f"/Entries/{eid}"),
            await env.api.get(f"/Entries/{eid}/{EDOC}"),
            await env.api.head(f"/Entries/{eid}/{EDOC}"),
        ):
            _assert_no_canary(await resp.read())
            assert resp.status == 404, resp.status
        await assert_problem(await env.api.patch(f"/Entries/{eid}", json={"name": "renamed.txt"}), 404)
        await assert_problem(await env.api.patch(f"/Entries/{eid}", json={"parentId": 1}), 404)
        body = {"sourceId": eid, "name": f"stolen{eid}.txt"}
        resp = await env.api.post(f"/Entries/1/{CHILDREN}", json=body)
        await assert_problem(resp, (400, 404))
    for fid in (folder["id"], sub["id"]):
        await assert_problem(await env.api.get(f"/Entries/{fid}/{CHILDREN}"), 404)
        await assert_problem(await env.api.import_doc(fid, "planted.txt", b"planted"), (400, 404))
        await assert_problem(await env.api.create_folder(fid, "planted"), (400, 404))
    assert tree_snapshot(env.outside) == outside_before
    assert sorted(p.name for p in env.root.iterdir()) == sorted([HIDDEN, "real", "swap", "top.txt"])
    env.assert_canary_intact()


async def test_document_replaced_by_symlink_is_not_read(env):
    eid = await env.api.upload(1, "doc.txt", b"mine")
    (env.root / "doc.txt").unlink()
    os.symlink(env.canary, env.root / "doc.txt")
    for resp in (
        await env.api.get(f"/Entries/{eid}/{EDOC}"),
        await env.api.get(f"/Entries/{eid}/{EDOC}", headers={"Range": "bytes=0-5"}),
        await env.api.get(f"/Entries/{eid}"),
    ):
        _assert_no_canary(await resp.read())
        assert resp.status == 404
    resp = await env.api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": eid, "name": "copy.txt"})
    await assert_problem(resp, (400, 404))
    assert not (env.root / "copy.txt").exists()
    env.assert_canary_intact()


# --------------------------------------------------------------------------- bad names on disk


async def test_invalid_names_on_disk_are_not_listed(env):
    root_b = os.fsencode(env.root)
    for raw in (b"back\\slash.txt", b"ctrl\x01.txt", b"new\nline", b"latin\xe9.txt", b"\xff\xfe"):
        with open(os.path.join(root_b, raw), "wb") as f:
            f.write(b"hidden")
    os.mkdir(os.path.join(root_b, b"dir\x02"))
    os.mkdir(os.path.join(root_b, b"dir\xc3"))
    before = env.snapshot()
    resp = await env.api.get(f"/Entries/1/{CHILDREN}", params={"$count": "true"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert {e["name"] for e in body["value"]} == {"real", "top.txt"}
    assert body["@odata.count"] == 2
    assert await env.api.child_names(1) == {"real", "top.txt"}
    assert env.snapshot() == before


# --------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    "body",
    [
        b'{"entryType": "Folder", "name": ',
        b"not json",
        b"",
        b"[]",
        b'"Folder"',
        b"null",
        b"\xff\xfe{}",
        b'{"entryType": "Folder", "name": "x"} trailing',
    ],
    ids=["truncated", "garbage", "empty", "array", "string", "null", "bad-utf8", "trailing"],
)
async def test_malformed_json_create(env, body):
    before = env.snapshot()
    resp = await env.api.post(
        f"/Entries/1/{CHILDREN}", data=body, headers={"Content-Type": "application/json"}
    )
    await assert_problem(resp, 400)
    assert env.snapshot() == before


@pytest.mark.parametrize("body", [b'{"name": ', b"[1]", b"\x00", b'{"name": "x"}}'])
async def test_malformed_json_patch(env, body):
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    resp = await env.api.patch(
        f"/Entries/{real['id']}", data=body, headers={"Content-Type": "application/json"}
    )
    await assert_problem(resp, 400)
    assert env.snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entryType": "Folder", "name": 5}, "name"),
        ({"entryType": "Folder", "name": {"a": 1}}, "name"),
        ({"entryType": "Folder", "name": True}, "name"),
        ({"entryType": "Folder"}, "name"),
        ({"name": "x"}, "entryType"),
        ({"entryType": "Shortcut", "name": "x"}, "targetId"),
        ({"entryType": "Shortcut", "name": "x", "targetId": "1"}, "targetId"),
        ({"entryType": "RecordSeries", "name": "x"}, "entryType"),
        ({"entryType": "folder\x00", "name": "x"}, "entryType"),
        ({"sourceId": "1", "name": "x"}, "sourceId"),
        ({"sourceId": None, "name": "x"}, "sourceId"),
    ],
)
async def test_wrong_types_create(env, body, field):
    before = env.snapshot()
    resp = await env.api.post(f"/Entries/1/{CHILDREN}", json=body)
    await assert_problem(resp, 400, field)
    assert env.snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": ["a"]}, "name"),
        ({"parentId": "2"}, "parentId"),
        ({"parentId": False}, "parentId"),
        ({"parentId": -1}, "parentId"),
    ],
)
async def test_wrong_types_patch(env, body, field):
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    resp = await env.api.patch(f"/Entries/{real['id']}", json=body)
    await assert_problem(
        resp, (400, 404) if body.get("parentId") == -1 else 400, None if body.get("parentId") == -1 else field
    )
    assert env.snapshot() == before


async def test_huge_json_body_is_refused_cleanly(env):
    before = env.snapshot()
    body = json.dumps({"entryType": "Folder", "name": "x" * (3 * 1024 * 1024)})
    resp = await env.api.post(
        f"/Entries/1/{CHILDREN}", data=io.BytesIO(body.encode()), headers={"Content-Type": "application/json"}
    )
    assert 400 <= resp.status < 500
    await resp.read()
    assert env.snapshot() == before


async def test_error_never_leaks_storage_path(env):
    probes = [
        await env.api.get("/Entries/ByPath", params={"fullPath": "\\..\\..\\outside"}),
        await env.api.create_folder(1, "../x"),
        await env.api.import_doc(1, "ignored", b"x", encoded_name="..%2Fx"),
        await env.api.get("/Entries/999999"),
    ]
    for resp in probes:
        text = await resp.text()
        assert str(env.tmp) not in text
        assert "Traceback" not in text
        assert quote(str(env.tmp), safe="") not in resp.headers.get("X-APIServer-Error", "")


@pytest.mark.parametrize("field_name", ["sourceId", "parentId"])
@pytest.mark.parametrize("value", [2**63, 2**64 - 1, 2**31, -1])
async def test_out_of_range_ids_in_bodies_are_400(env, field_name, value):
    before = env.snapshot()
    if field_name == "sourceId":
        resp = await env.api.post(f"/Entries/1/{CHILDREN}", json={"sourceId": value, "name": "x"})
    else:
        resp = await env.api.patch("/Entries/1", json={"parentId": value})
    await assert_problem(resp, 400, field_name)
    assert env.snapshot() == before


@pytest.mark.parametrize("raw", ["%2B1", "%201", "%D9%A1", "1_0", "0x1", "1.0"])
async def test_ids_are_plain_ascii_digits(env, raw):
    await assert_problem(await env.api.raw("GET", f"/Entries/{raw}"), 400)


async def test_skip_must_be_plain_digits(env):
    resp = await env.api.get(f"/Entries/1/{CHILDREN}", params={"$skip": "1_0"})
    await assert_problem(resp, 400, "$skip")


# --------------------------------------------------------------------------- Laserfiche v2
#
# The same hostile input through v2's routes. v2 takes names in JSON bodies (and an import's in its
# `request` part, or the file part's file name), and adds `folderPath`: folders below the route's
# folder, `/` or `\` between names, created with ?autoCreateFolderPath=true.


def _v2_child(name: str, entry_type: str = "Folder", **extra) -> dict:
    return {"entryType": entry_type, "name": name, **extra}


async def _v2_create(v2: Api, parent: int, body: dict, create: str | None = None):
    params = {} if create is None else {"autoCreateFolderPath": create}
    return await v2.post(f"/Entries/{parent}/{V2_CHILDREN}", json=body, params=params)


async def _v2_import(
    v2: Api, parent: int, data: bytes, request: dict | str | None, create: str | None = None, **kw
):
    form = v2_import_form(data, request=request, **kw)
    params = {} if create is None else {"autoCreateFolderPath": create}
    return await v2.post(f"/Entries/{parent}/Folder/Import", data=form, params=params)


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_v2_bad_name_create_folder_and_shortcut(env, name):
    v2 = v2_of(env.api)
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    for parent in (1, real["id"]):
        for body in (
            _v2_child(name),
            _v2_child(name, autoRename=True),
            _v2_child(name, "Shortcut", targetId=real["id"]),
            # (the name is refused before the folders of the path are made)
            _v2_child(name, folderPath="made/here"),
        ):
            await assert_problem(await _v2_create(v2, parent, body, "true"), 400)
    assert env.snapshot() == before


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_v2_bad_name_patch_rename(env, name):
    v2 = v2_of(env.api)
    for path in ("\\real", "\\top.txt"):
        victim = await env.api.by_path(path)
        before = env.snapshot()
        for body in ({"name": name}, {"name": name, "autoRename": True}, {"name": name, "parentId": 1}):
            await assert_problem(await v2.patch(f"/Entries/{victim['id']}", json=body), 400)
        assert env.snapshot() == before
        assert (await env.api.entry(victim["id"]))["fullPath"] == path


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_v2_bad_name_copy(env, name):
    v2 = v2_of(env.api)
    src = await env.api.by_path("\\real")
    before = env.snapshot()
    for route in ("Folder/Copy", "Folder/CopyAsync"):
        for auto in (False, True):
            body = {"sourceId": src["id"], "name": name, "autoRename": auto}
            await assert_problem(await v2.post(f"/Entries/1/{route}", json=body), 400)
    assert env.snapshot() == before


@pytest.mark.parametrize("name", BAD_NAMES, ids=BAD_IDS)
async def test_v2_bad_name_import(env, name):
    v2 = v2_of(env.api)
    before = env.snapshot()
    for request in ({"name": name}, {"name": name, "autoRename": True}, json.dumps({"name": name})):
        resp = await _v2_import(v2, 1, b"payload", request, filename="upload.bin")
        if name == "" and resp.status == 201:
            # an empty name is no name: the file part's file name is taken
            assert (await resp.json())["name"] == "upload.bin"
            (env.root / "upload.bin").unlink()
            continue
        await assert_problem(resp, 400)
    assert env.snapshot() == before


def _raw_import_body(disposition: bytes, data: bytes = b"OVERWRITE") -> tuple[bytes, str]:
    """A multipart body whose file part's Content-Disposition is given byte for byte (the hostile
    file names aiohttp's FormData would quote), with an empty `request` part: the name is the file's."""
    boundary = "hostile0boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n{{}}\r\n'.encode()
        + f"--{boundary}\r\nContent-Disposition: ".encode()
        + disposition
        + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "disposition",
    [
        b'form-data; name="file"; filename="../../escape.txt"',
        b'form-data; name="file"; filename="..\\\\..\\\\escape.txt"',
        b'form-data; name="file"; filename=".."',
        b'form-data; name="file"; filename="."',
        b'form-data; name="file"; filename="/etc/escape.txt"',
        b'form-data; name="file"; filename="C:\\\\escape.txt"',
        b'form-data; name="file"; filename=""',
        b"form-data; name=\"file\"; filename*=UTF-8''..%2F..%2Fescape.txt",
        b"form-data; name=\"file\"; filename*=UTF-8''..%2F..%2F..%2Foutside%2Fcanary.txt",
        b"form-data; name=\"file\"; filename*=UTF-8''%2E%2E",
        b"form-data; name=\"file\"; filename*=UTF-8''escape.txt%00.pdf",
        b"form-data; name=\"file\"; filename*=UTF-8''%2Fetc%2Fescape.txt",
        b"form-data; name=\"file\"; filename*=UTF-8''%5C..%5Cescape.txt",
    ],
)
async def test_v2_hostile_import_file_names(env, disposition):
    """With no name in the `request` part, the file part's file name is the entry's: it is checked
    as any name is."""
    v2 = v2_of(env.api)
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    for parent in (1, real["id"]):
        body, content_type = _raw_import_body(disposition)
        resp = await v2.post(
            f"/Entries/{parent}/Folder/Import", data=body, headers={"Content-Type": content_type}
        )
        await assert_problem(resp, 400)
    assert env.snapshot() == before
    assert not (env.tmp.parent / "escape.txt").exists()
    env.assert_canary_intact()


# ("" is not among them: an empty folderPath means the route's folder, as an absent one does)
HOSTILE_FOLDER_PATHS = [
    ".",
    "..",
    "../escape",
    "..\\escape",
    "../../../outside",
    "a/../b",
    "a\\..\\b",
    "a/./b",
    "a//b",
    "a\\\\b",
    "a/\\b",
    "/abs",
    "\\abs",
    "a/",
    "a\\",
    "/etc/passwd",
    "\\..\\root2",
    "C:\\Windows",
    "C:/escape",
    "\\\\server\\share",
    "a\x00b",
    "a/\x00",
    "tab\there/x",
    "new\nline",
    "x" * 256,
    "ok/" + "é" * 128,
    "a:b/c",
    "star*/x",
    "what?/x",
    "pipe|d",
    "/".join(["deep"] * 70),  # past the deepest a folder may nest (64)
]


@pytest.mark.parametrize("folder_path", HOSTILE_FOLDER_PATHS)
async def test_v2_hostile_folder_path(env, folder_path):
    v2 = v2_of(env.api)
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    for parent in (1, real["id"]):
        for create in ("true", "false"):
            body = _v2_child("leaf", folderPath=folder_path)
            await assert_problem(await _v2_create(v2, parent, body, create), 400)
            body = _v2_child("leaf", "Shortcut", targetId=real["id"], folderPath=folder_path)
            await assert_problem(await _v2_create(v2, parent, body, create), 400)
            request = {"name": "leaf.txt", "folderPath": folder_path}
            resp = await _v2_import(v2, parent, b"OVERWRITE", request, create=create)
            await assert_problem(resp, 400)
    assert env.snapshot() == before
    env.assert_canary_intact()


async def test_v2_missing_folder_path_creates_nothing(env):
    """A folder path that does not exist yet, without ?autoCreateFolderPath: 404 and nothing made
    (not even the folders of it that could have been)."""
    v2 = v2_of(env.api)
    before = env.snapshot()
    for folder_path in ("X/Y", "real/X/Y", "real\\r.txt\\X"):
        resp = await _v2_create(v2, 1, _v2_child("leaf", folderPath=folder_path), "false")
        await assert_problem(resp, (400, 404))
        resp = await _v2_import(v2, 1, b"x", {"name": "leaf.txt", "folderPath": folder_path})
        await assert_problem(resp, (400, 404))
    assert env.snapshot() == before


@pytest.mark.parametrize("full_path", HOSTILE_PATHS)
async def test_v2_hostile_by_path(env, full_path):
    v2 = v2_of(env.api)
    before = env.snapshot()
    resp = await v2.get("/Entries/ByPath", params={"fullPath": full_path})
    _assert_no_canary(await resp.read())
    await assert_problem(resp, (400, 404))
    resp = await v2.get(
        "/Entries/ByPath", params={"fullPath": full_path, "fallbackToClosestAncestor": "true"}
    )
    raw = await resp.read()
    _assert_no_canary(raw)
    if resp.status == 200:
        body = json.loads(raw)
        assert set(body) == {"ancestorEntry"}, body
        assert body["ancestorEntry"]["fullPath"] in ("\\", "\\real")
    else:
        await assert_problem(resp, (400, 404))
    assert env.snapshot() == before


async def test_v2_absolute_os_path_by_path(env):
    v2 = v2_of(env.api)
    for p in (str(env.canary), str(env.root / "top.txt"), str(env.root)):
        for full_path in (p, p.replace("/", "\\")):
            resp = await v2.get("/Entries/ByPath", params={"fullPath": full_path})
            await assert_problem(resp, (400, 404))


@pytest.mark.parametrize(
    "query",
    [
        "fullPath=%5C..%5Croot2%5Ccanary.txt",
        "fullPath=..%5Croot2%5Ccanary.txt",
        "fullPath=%5C%2E%2E%5Croot2%5Ccanary.txt",
        "fullPath=%5C..%2F..%2F..%2Foutside%2Fcanary.txt",
        "fullPath=%2Fetc%2Fpasswd",
        "fullPath=%5Ctop.txt%00",
        "fullPath=%5C%C0%AE%C0%AE%5Croot2%5Ccanary.txt",
        "fullPath=%5C%FF%FE",
    ],
)
async def test_v2_percent_encoded_by_path(env, query):
    v2 = v2_of(env.api)
    before = env.snapshot()
    resp = await v2.raw("GET", f"/Entries/ByPath?{query}")
    _assert_no_canary(await resp.read())
    await assert_problem(resp, (400, 404))
    assert env.snapshot() == before


async def test_v2_store_cannot_be_created_renamed_to_or_imported(env):
    v2 = v2_of(env.api)
    before = env.snapshot()
    real = await env.api.by_path("\\real")
    await assert_problem(await _v2_create(v2, 1, _v2_child(HIDDEN)), (400, 409))
    await assert_problem(await _v2_create(v2, 1, _v2_child("x", folderPath=HIDDEN), "true"), (400, 409))
    await assert_problem(
        await _v2_create(v2, 1, _v2_child("x", folderPath=f"{HIDDEN}/x"), "true"), (400, 409)
    )
    await assert_problem(await v2.patch(f"/Entries/{real['id']}", json={"name": HIDDEN}), (400, 409))
    await assert_problem(await _v2_import(v2, 1, b"x", {"name": HIDDEN}), (400, 409))
    # (without the flag: as if no folder were there; with it: not made)
    await assert_problem(await _v2_import(v2, 1, b"x", {"name": "x", "folderPath": HIDDEN}), (400, 404, 409))
    resp = await _v2_import(v2, 1, b"x", {"name": "x", "folderPath": HIDDEN}, create="true")
    await assert_problem(resp, (400, 409))
    await assert_problem(await v2.get("/Entries/ByPath", params={"fullPath": "\\" + HIDDEN}), (400, 404))
    assert env.snapshot() == before
    assert HIDDEN not in {e["name"] for e in await v2_children(v2, 1)}


async def test_v2_symlinks_and_special_files_are_invisible(links):
    env = links
    v2 = v2_of(env.api)
    before = env.snapshot()
    assert {e["name"] for e in await v2_children(v2, 1)} == {"real", "top.txt"}
    real = await env.api.by_path("\\real")
    assert {e["name"] for e in await v2_children(v2, real["id"])} == {"r.txt"}
    for p in (
        "\\link_out\\canary.txt",
        "\\link_file.txt",
        "\\link_in\\r.txt",
        "\\pipe",
        "\\real\\inner_canary.txt",
    ):
        resp = await v2.get("/Entries/ByPath", params={"fullPath": p})
        _assert_no_canary(await resp.read())
        await assert_problem(resp, 404)
    for i in range(1, 40):
        for suffix in ("", f"/{V2_EDOC}", f"/{V2_CHILDREN}"):
            resp = await v2.get(f"/Entries/{i}{suffix}")
            _assert_no_canary(await resp.read())
    assert env.snapshot() == before
    env.assert_canary_intact()


async def test_v2_folder_paths_through_symlinks_never_touch_outside(links):
    """A folder path naming a symlink (invisible: as if nothing were there) never goes through it."""
    env = links
    v2 = v2_of(env.api)
    outside_before = tree_snapshot(env.outside)
    sibling_before = tree_snapshot(env.root.parent / "root2")
    real = await env.api.by_path("\\real")
    for parent, folder_path in (
        (1, "link_out"),
        (1, "link_out/planted"),
        (1, "link_rel_out\\planted"),
        (1, "link_in/planted"),
        (1, "link_dangling/planted"),
        (1, "pipe/planted"),
        (real["id"], "inner_link/planted"),
    ):
        # not there without the flag; with it, its name is taken (by what is on disk)
        for create, status in (("true", 409), ("false", 404)):
            resp = await _v2_create(v2, parent, _v2_child("leaf", folderPath=folder_path), create)
            await assert_problem(resp, status)
            request = {"name": "leaf.txt", "folderPath": folder_path}
            await assert_problem(await _v2_import(v2, parent, b"OVERWRITE", request, create=create), status)
    assert tree_snapshot(env.outside) == outside_before
    assert tree_snapshot(env.root.parent / "root2") == sibling_before
    for dirpath, dirnames, filenames in os.walk(env.root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            if p.is_file() and not p.is_symlink():
                assert p.read_bytes() != CANARY, p
    env.assert_canary_intact()


async def test_v2_writes_near_symlinks_never_touch_outside(links):
    env = links
    v2 = v2_of(env.api)
    outside_before = tree_snapshot(env.outside)
    real = await env.api.by_path("\\real")
    top = await env.api.by_path("\\top.txt")
    for auto in (False, True):
        await _v2_import(v2, 1, b"OVERWRITE", {"name": "link_file.txt", "autoRename": auto})
        await _v2_import(v2, real["id"], b"OVERWRITE", {"name": "inner_canary.txt", "autoRename": auto})
        await _v2_import(v2, 1, b"OVERWRITE", {"name": "pipe", "autoRename": auto})
        await _v2_create(v2, 1, _v2_child("link_out", autoRename=auto))
        await _v2_create(v2, real["id"], _v2_child("inner_link", "Shortcut", targetId=1, autoRename=auto))
        await v2.post(
            "/Entries/1/Folder/Copy",
            json={"sourceId": top["id"], "name": "link_file.txt", "autoRename": auto},
        )
    await v2.patch(f"/Entries/{top['id']}", json={"name": "link_rel_out"})
    assert tree_snapshot(env.outside) == outside_before
    env.assert_canary_intact()


async def test_v2_folder_replaced_by_symlink_is_gone(env):
    v2 = v2_of(env.api)
    target = await env.api.mkdir(1, "victim")
    (env.root / "victim" / "v.txt").write_bytes(b"v")
    v = await env.api.by_path("\\victim\\v.txt")
    shortcut = await (await _v2_create(v2, 1, _v2_child("to v", "Shortcut", targetId=v["id"]))).json()
    (env.root / "victim" / "v.txt").unlink()
    (env.root / "victim").rmdir()
    os.symlink(env.outside, env.root / "victim")
    outside_before = tree_snapshot(env.outside)
    tid = target["id"]
    for path in (
        f"/Entries/{tid}",
        f"/Entries/{tid}/{V2_CHILDREN}",
        f"/Entries/{v['id']}",
        f"/Entries/{v['id']}/{V2_EDOC}",
        f"/Entries/{shortcut['id']}/{V2_EDOC}",
    ):
        resp = await v2.get(path)
        _assert_no_canary(await resp.read())
        await assert_problem(resp, 404)
    resp = await v2.get("/Entries/ByPath", params={"fullPath": "\\victim\\canary.txt"})
    await assert_problem(resp, 404)
    await assert_problem(await _v2_create(v2, tid, _v2_child("planted")), (400, 404))
    await assert_problem(
        await _v2_create(v2, 1, _v2_child("planted", folderPath="victim"), "true"), (400, 404, 409)
    )
    await assert_problem(await _v2_import(v2, tid, b"planted", {"name": "planted.txt"}), (400, 404))
    top = await env.api.by_path("\\top.txt")
    await assert_problem(await v2.patch(f"/Entries/{top['id']}", json={"parentId": tid}), (400, 404))
    await assert_problem(await v2.patch(f"/Entries/{tid}", json={"name": "renamed"}), (400, 404))
    for route in ("Folder/Copy", "Folder/CopyAsync"):
        body = {"sourceId": tid, "name": "stolen"}
        await assert_problem(await v2.post(f"/Entries/1/{route}", json=body), (400, 404))
    assert tree_snapshot(env.outside) == outside_before
    assert not (env.root / "stolen").exists()
    env.assert_canary_intact()


async def test_v2_shortcut_to_document_replaced_by_symlink_is_not_read(env):
    v2 = v2_of(env.api)
    eid = await env.api.upload(1, "doc.txt", b"mine")
    shortcut = await (await _v2_create(v2, 1, _v2_child("to doc", "Shortcut", targetId=eid))).json()
    (env.root / "doc.txt").unlink()
    os.symlink(env.canary, env.root / "doc.txt")
    for entry_id in (eid, shortcut["id"]):
        for headers in ({}, {"Range": "bytes=0-5"}):
            resp = await v2.get(f"/Entries/{entry_id}/{V2_EDOC}", headers=headers)
            _assert_no_canary(await resp.read())
            assert resp.status == 404
    resp = await v2.post("/Entries/1/Folder/Copy", json={"sourceId": eid, "name": "copy.txt"})
    await assert_problem(resp, (400, 404))
    assert not (env.root / "copy.txt").exists()
    env.assert_canary_intact()


V2_JSON_ROUTES = [
    ("POST", f"/Entries/1/{V2_CHILDREN}"),
    ("POST", "/Entries/1/Folder/Copy"),
    ("POST", "/Entries/1/Folder/CopyAsync"),
    ("PATCH", "/Entries/{real}"),
    ("DELETE", "/Entries/{real}"),
]


@pytest.mark.parametrize(
    "body",
    [
        b'{"entryType": "Folder", "name": ',
        b"not json",
        b"[]",
        b'"Folder"',
        b"null",
        b"\xff\xfe{}",
        b'{"entryType": "Folder", "name": "x"} trailing',
        b"\x00",
    ],
    ids=["truncated", "garbage", "array", "string", "null", "bad-utf8", "trailing", "nul"],
)
async def test_v2_malformed_json(env, body):
    v2 = v2_of(env.api)
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    for method, path in V2_JSON_ROUTES:
        resp = await v2.request(
            method, path.format(real=real["id"]), data=body, headers={"Content-Type": "application/json"}
        )
        await assert_problem(resp, 400)
    assert env.snapshot() == before


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("children", {"entryType": "Folder", "name": 5}, "name"),
        ("children", {"entryType": "Folder", "name": {"a": 1}}, "name"),
        ("children", {"entryType": "Folder"}, "name"),
        ("children", {"name": "x"}, "entryType"),
        ("children", {"entryType": "Document", "name": "x"}, "entryType"),
        ("children", {"entryType": "folder\x00", "name": "x"}, "entryType"),
        ("children", {"entryType": "Shortcut", "name": "x"}, "targetId"),
        ("children", {"entryType": "Shortcut", "name": "x", "targetId": "1"}, "targetId"),
        ("children", {"entryType": "Folder", "name": "x", "folderPath": ["a", "b"]}, "folderPath"),
        ("children", {"entryType": "Folder", "name": "x", "folderPath": 5}, "folderPath"),
        ("children", {"entryType": "Folder", "name": "x", "autoRename": "true"}, "autoRename"),
        ("copy", {"sourceId": "1", "name": "x"}, "sourceId"),
        ("copy", {"sourceId": None, "name": "x"}, "sourceId"),
        ("copy", {"sourceId": 1.0, "name": "x"}, "sourceId"),
        ("copy", {"sourceId": True, "name": "x"}, "sourceId"),
        ("copy", {"sourceId": 1}, "name"),
        ("copy", {"sourceId": 1, "name": "x", "autoRename": 1}, "autoRename"),
        ("patch", {"name": 5}, "name"),
        ("patch", {"parentId": "2"}, "parentId"),
        ("patch", {"parentId": False}, "parentId"),
        ("patch", {"autoRename": "no"}, "autoRename"),
        ("delete", {"auditReasonId": "1"}, "auditReasonId"),
        ("delete", {"auditReasonComment": 5}, "auditReasonComment"),
    ],
)
async def test_v2_wrong_types(env, route, body, field):
    v2 = v2_of(env.api)
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    targets = {
        "children": [("POST", f"/Entries/1/{V2_CHILDREN}")],
        "copy": [("POST", "/Entries/1/Folder/Copy"), ("POST", "/Entries/1/Folder/CopyAsync")],
        "patch": [("PATCH", f"/Entries/{real['id']}")],
        "delete": [("DELETE", f"/Entries/{real['id']}")],
    }[route]
    for method, path in targets:
        await assert_problem(await v2.request(method, path, json=body), 400, field)
    assert env.snapshot() == before


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, 2**31, -1])
async def test_v2_out_of_range_ids_in_bodies_are_400(env, value):
    v2 = v2_of(env.api)
    real = await env.api.by_path("\\real")
    before = env.snapshot()
    for method, path, body, field in (
        ("POST", "/Entries/1/Folder/Copy", {"sourceId": value, "name": "x"}, "sourceId"),
        ("POST", "/Entries/1/Folder/CopyAsync", {"sourceId": value, "name": "x"}, "sourceId"),
        ("POST", f"/Entries/1/{V2_CHILDREN}", _v2_child("x", "Shortcut", targetId=value), "targetId"),
        ("PATCH", f"/Entries/{real['id']}", {"parentId": value}, "parentId"),
        ("DELETE", f"/Entries/{real['id']}", {"auditReasonId": value}, "auditReasonId"),
    ):
        await assert_problem(await v2.request(method, path, json=body), 400, field)
    assert env.snapshot() == before


@pytest.mark.parametrize("raw", ["%2B1", "%201", "%D9%A1", "1_0", "0x1", "1.0", "-1", "2147483648"])
async def test_v2_ids_are_plain_ascii_digits(env, raw):
    v2 = v2_of(env.api)
    for suffix in ("", f"/{V2_CHILDREN}", f"/{V2_EDOC}", "/Fields"):
        await assert_problem(await v2.raw("GET", f"/Entries/{raw}{suffix}"), 400)


async def test_v2_paging_numbers_must_be_plain_digits(env):
    v2 = v2_of(env.api)
    for name in ("$skip", "$top"):
        for value in ("1_0", "-1", "+1", "\u0661"):
            await assert_problem(await v2.get(f"/Entries/1/{V2_CHILDREN}", params={name: value}), 400, name)


async def test_v2_error_never_leaks_storage_path(env):
    v2 = v2_of(env.api)
    probes = [
        await v2.get("/Entries/ByPath", params={"fullPath": "\\..\\..\\outside"}),
        await _v2_create(v2, 1, _v2_child("../x")),
        await _v2_create(v2, 1, _v2_child("x", folderPath="../x"), "true"),
        await _v2_import(v2, 1, b"x", {"name": "../x"}),
        await v2.get("/Entries/999999"),
        await v2.get(f"/Entries/999999/{V2_EDOC}"),
    ]
    for resp in probes:
        text = await resp.text()
        assert str(env.tmp) not in text
        assert "Traceback" not in text
        assert quote(str(env.tmp), safe="") not in resp.headers.get("X-APIServer-Error", "")


# --------------------------------------------------------------------------- Open Connectors bulk jobs
#
# Hostile CEQL (huge, nested, unicode, NUL, quotes, SQL that looks like injection), ids and object
# names on the job routes, Accept headers on the download, and `where` on the deliveries route: each
# answered 4xx problem+json (or, for a query that is valid however odd, a job whose records are
# only what is inside the root), never a 5xx, and nothing outside the store changed.

HUB_AUTH = {"Authorization": "User sandbox-user-secret, Element sandbox-element-token"}
PLATFORM_AUTH = {"Authorization": "User sandbox-user-secret, Organization sandbox-org-secret"}
BULK = "/elements/api-v2/hubs/documents/bulk"
DELIVERIES = "/elements/api-v2/notifications/subscriptions/deliveries"
ENDED = ("COMPLETED", "FAILED", "CANCELLED")


def _hub(env: Env) -> Api:
    """The hub's caller (User + Element), with the same raw-path sending as the bearer's."""
    return Api(env.api.client, "", base=BULK, extra_headers=HUB_AUTH)


async def _bulk_job(hub: Api, query: str) -> tuple[int, dict]:
    resp = await hub.post("/query", params={"q": query})
    assert resp.status == 200, await resp.text()
    job_id = (await resp.json())["id"]
    for _ in range(1500):
        resp = await hub.get(f"/{job_id}/status")
        status = await resp.json()
        assert resp.status == 200, status
        if status["status"] in ENDED:
            return job_id, status
        await asyncio.sleep(0.02)
    raise AssertionError(f"bulk job {job_id} did not end: {status}")


def _records_inside(env: Env, records: list[dict]) -> None:
    """Every record a job wrote is an entry inside the root, reached without passing a symlink."""
    for record in records:
        _assert_no_canary(json.dumps(record))
        if "path" not in record:
            continue
        p = env.root
        for part in [s for s in record["path"].split("/") if s]:
            assert part not in (".", ".."), record
            p = p / part
            assert not p.is_symlink(), f"a record through a symlink: {record}"
        assert p.exists() and (p.is_dir() == record.get("directory", p.is_dir())), record


async def _records(hub: Api, job_id: int, object_name: str) -> list[dict]:
    """The job's records in all three formats (which must agree), as the NDJSON has them."""
    resp = await hub.get(f"/{job_id}/{object_name}", headers={"Accept": "application/x-ndjson"})
    assert resp.status == 200, await resp.text()
    raw = await resp.read()
    _assert_no_canary(raw)
    records = [json.loads(line) for line in raw.splitlines()]
    resp = await hub.get(f"/{job_id}/{object_name}")
    assert resp.status == 200 and await resp.json() == records
    resp = await hub.get(f"/{job_id}/{object_name}", headers={"Accept": "text/csv"})
    text = await resp.text()
    assert resp.status == 200 and len(text.splitlines()) == len(records) + 1, text
    _assert_no_canary(text)
    return records


# (query, whether it is valid CEQL): the refused ones answer 400 and start nothing
HOSTILE_CEQL = [
    ("select * from files; drop table files", False),
    ("select * from files where name = '' or 1=1 --'", False),
    ("select * from files where name = 'x' union select * from folders", False),
    ("select * from files where name = 'x'; delete from bulk_jobs", False),
    ("select * from files where name = 'x' /* comment */", False),
    ("select * from sqlite_master", False),
    ("select * from ../files", False),
    ("select * from files where path = '/' || '/etc/passwd'", False),
    ('select * from files where name = "x"', False),
    ("select * from files where name = 'unterminated", False),
    ("select * from files where name = 'a\\' or 'b'", False),
    ("select * from files\x00 where size > 1", False),
    ("\x00", False),
    ("select \u212a from files", False),  # the Kelvin sign: no ASCII letter
    ("s\u0435lect * from files", False),  # a Cyrillic e
    ("select * from files where " + "(" * 33 + "size > 1" + ")" * 33, False),
    ("(" * 2000, False),
    ("select * from files where name = '" + "x" * 3990 + "'", False),  # over 4,000 characters
    ("select * from files where " + " and ".join(["size > 1"] * 400), False),  # over 4 KiB: 414
    ("select * from files where size > 1e999", False),
    ("select * from files where createdDate > '9999-99-99'", False),
    ("select * from files where name = '\x00'", True),
    ("select * from files where name = 'é😀\u202e'", True),
    ("select * from files where name = 'it''s'", True),
    ("select * from files where path = '../../outside/canary.txt'", True),
    ("select * from files where path like '%canary%' or name like '%..%'", True),
    ("select * from files where name like '" + "%_" * 600 + "x'", True),
    ("select * from files where " + "(" * 32 + "size > 1" + ")" * 32, True),
    ("select * from files where size > 99999999999999999999999999999999999999", True),
    ("select * from files limit 99999999999999999999999999999", True),
    ("SELECT * FROM FOLDERS WHERE PATH LIKE '%' ORDER BY PATH DESC", True),
]


@pytest.mark.parametrize(("query", "valid"), HOSTILE_CEQL, ids=[f"q{i}" for i in range(len(HOSTILE_CEQL))])
async def test_hostile_ceql_is_refused_or_reads_only_the_root(env, query, valid):
    hub = _hub(env)
    before = env.snapshot()
    if not valid:
        resp = await hub.post("/query", params={"q": query})
        problem = await assert_problem(resp, (400, 414))
        _assert_no_canary(json.dumps(problem))
        resp = await hub.get("/jobs")
        assert await resp.json() == [], "a refused query started a job"
    else:
        job_id, status = await _bulk_job(hub, query)
        assert status["status"] == "COMPLETED", status
        records = await _records(hub, job_id, status["objectName"])
        assert len(records) == status["recordsCount"]
        _records_inside(env, records)
    assert env.snapshot() == before
    env.assert_canary_intact()


async def test_bulk_jobs_never_walk_symlinks_or_special_files(links):
    env = links
    hub = _hub(env)
    before = env.snapshot()
    found = {}
    for object_name in ("files", "folders"):
        job_id, status = await _bulk_job(hub, f"select * from {object_name}")
        assert status["status"] == "COMPLETED", status
        records = await _records(hub, job_id, object_name)
        _records_inside(env, records)
        found[object_name] = sorted(r["path"] for r in records)
    assert found == {"files": ["/real/r.txt", "/top.txt"], "folders": ["/real"]}
    assert env.snapshot() == before
    env.assert_canary_intact()


HOSTILE_JOB_IDS = [
    "0",
    "-1",
    "+1",
    "%201",
    "1.0",
    "1e0",
    "0x1",
    "1_0",
    "%D9%A1",
    "2147483648",
    "99999999999999999999",
    "%00",
    "1%00",
    "..",
    "%2e%2e",
    "..%2f..",
    "%2F",
    "%5C..%5C..",
    "jobs",
    "query",
]
HOSTILE_OBJECT_NAMES = [
    "folders",
    "FILES",
    "files%00",
    "files%20",
    "files.ndjson",
    "..",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2foutside%2fcanary.txt",
    "..%5C..%5Coutside%5Ccanary.txt",
    "%2e%2e%2f.sandbox",
    "%2fetc%2fpasswd",
    "files%2f..",
    "%E2%80%AEselif",
    "%ff",
]


async def test_hostile_job_ids_and_object_names(env):
    hub = _hub(env)
    job_id, _ = await _bulk_job(hub, "select * from files")
    # the job's own file, named in the store: still no way to it through the route
    results = sorted(p.name for p in (env.root / HIDDEN).rglob("*.ndjson"))
    assert len(results) == 1, results
    before = env.snapshot()
    for raw in HOSTILE_JOB_IDS:
        for suffix in ("/status", "/errors", "/files", "/cancel"):
            method = "PUT" if suffix == "/cancel" else "GET"
            resp = await hub.raw(method, f"/{raw}{suffix}")
            _assert_no_canary(await resp.read())
            assert resp.status < 500, (raw, suffix, resp.status)
            if raw not in ("jobs", "query"):  # (those are other routes: 404, 405)
                await assert_problem(resp, (400, 404))
    for name in [*HOSTILE_OBJECT_NAMES, results[0], quote(results[0])]:
        for method in ("GET", "HEAD"):
            resp = await hub.raw(method, f"/{job_id}/{name}")
            _assert_no_canary(await resp.read())
            assert resp.status in (400, 404), (name, method, resp.status)
    assert env.snapshot() == before
    env.assert_canary_intact()


HOSTILE_ACCEPTS = [
    ("", 200),
    ("*/*", 200),
    ("*/*;q=0", 406),
    ("application/json;q=0", 406),
    ("application/json;q=abc", 406),
    ("application/json;q=nan", 406),
    ("application/json;q=-1", 406),
    ("application/json;q=1e400", 406),  # (not a weight, RFC 9110's 0 to 1: counts as 0)
    ("application/json; charset=utf-8", 200),
    ("APPLICATION/X-NDJSON", 200),
    ("text/*", 200),
    ("application/*", 200),
    (",,,,;;;;", 406),
    ("application/json" + ";q=1" * 300, 200),
    (", ".join(["text/html"] * 300) + ", text/csv", 200),
    ("image/png, application/pdf", 406),
    ("application/x-ndjson;q=0.1, text/csv;q=0.9", 200),
    ("\u00e9/\u00e9", 406),
    ("a" * 5000, 431),
]


@pytest.mark.parametrize(
    ("accept", "status"), HOSTILE_ACCEPTS, ids=[f"a{i}" for i in range(len(HOSTILE_ACCEPTS))]
)
async def test_hostile_accept_headers_on_the_download(env, accept, status):
    hub = _hub(env)
    job_id, _ = await _bulk_job(hub, "select * from files")
    resp = await hub.get(f"/{job_id}/files", headers={"Accept": accept})
    raw = await resp.read()
    _assert_no_canary(raw)
    assert resp.status == status, (accept[:80], resp.status, raw[:300])
    if status == 200:
        assert resp.content_type in ("application/json", "application/x-ndjson", "text/csv")
        assert b"top.txt" in raw and b"r.txt" in raw
    else:
        await assert_problem(resp, status)


# (where, the status it answers): a refused one redelivers nothing
HOSTILE_WHERES = [
    ("status='queued' or 1=1", 400),
    ("status='queued' or status='delivered'", 400),
    ("status='queued'; drop table deliveries", 400),
    ("status='queued' --", 400),
    ("status='queued' and", 400),
    ("and", 400),
    ("status=''", 400),
    ("status='QUEUED'", 400),
    ("STATUS='queued'", 400),
    ("status=queued", 400),
    ('status="queued"', 400),
    ("status='que''ued'", 400),
    ("status='queued\x00'", 400),
    ("status='qu\u00e9ued'", 400),
    ("status in ('queued')", 400),
    ("status like '%'", 400),
    ("notificationId=1 or 1=1", 400),
    ("notificationId=-1", 400),
    ("notificationId=1e3", 400),
    ("notificationId=0x1", 400),
    ("notificationId=\u0661", 400),
    ("notificationId=9999999999999999999", 400),  # 19 digits
    ("notificationId='1'", 400),
    ("eventId=(select 1)", 400),
    ("sessionId='x'", 400),
    ("eventId=0" + " and status='queued'" * 250, 400),  # (over 4 KiB: 414)
    ("notificationId=999999999999999999", 200),  # valid: selects nothing
    ("eventId=0 and status='delivered'", 200),
]


async def test_hostile_where_on_the_deliveries_route(env, receivers):
    rx = await receivers(fail_first=1000)
    client = env.api.client
    resp = await client.patch(
        "/elements/api-v2/instances/1",
        json={"configuration": {"notification.webhook.failure.policy": "queue"}},
        headers=PLATFORM_AUTH,
    )
    assert resp.status == 200, await resp.text()
    hub = _hub(env)
    resp = await hub.post(
        "/query", params={"q": "select * from files"}, headers={"Elements-Async-Callback-URL": rx.url}
    )
    assert resp.status == 200, await resp.text()
    queued = {"where": "status='queued'"}
    for _ in range(500):
        resp = await client.get(DELIVERIES, params=queued, headers=HUB_AUTH)
        listed = await resp.json()
        if listed:
            break
        await asyncio.sleep(0.02)
    [delivery] = listed
    before = env.snapshot()
    for where, status in HOSTILE_WHERES:
        expected = (status, 414) if status == 400 else (status,)
        for method in ("GET", "PUT"):
            resp = await client.request(method, DELIVERIES, params={"where": where}, headers=HUB_AUTH)
            raw = await resp.read()
            assert resp.status in expected, (where[:80], method, resp.status, raw[:300])
            if resp.status == 200:
                assert json.loads(raw) == [], (where, raw[:300])
            else:
                await assert_problem(resp, resp.status)
    # nothing was sent again: the one delivery is still queued after its one attempt
    resp = await client.get(DELIVERIES, params=queued, headers=HUB_AUTH)
    assert await resp.json() == [delivery]
    assert len(rx.requests) == 1
    assert env.snapshot() == before
