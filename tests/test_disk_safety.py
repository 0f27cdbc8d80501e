"""The disk under pressure: folders swapped for symlinks mid-request, trees deeper than PATH_MAX,
folders swapped by hand, names that differ only in case, and what a disk error becomes."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import threading
import time

import pytest
from conftest import EDOC, assert_problem

from server.errors import from_os_error
from server.store import Store, StoreUnusable

LIST = "Laserfiche.Repository.Folder/children"
SECRET = b"outside the storage root"


def _swapper(root, outside, stop: threading.Event) -> None:
    """Swap root/S between a real folder and a symlink to `outside`, as fast as possible."""
    real, link, spare = root / "S", root / "S.link", root / "S.real"
    while not stop.is_set():
        os.rename(real, spare)
        os.rename(link, real)  # S is now the symlink
        time.sleep(0.0005)
        os.rename(real, link)
        os.rename(spare, real)  # S is the real folder again
        time.sleep(0.0005)


async def test_folder_swapped_for_a_symlink_mid_request_never_leads_outside(api, storage_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "doc.txt").write_bytes(SECRET)
    (storage_root / "S").mkdir()
    (storage_root / "S" / "doc.txt").write_bytes(b"inside")
    os.symlink(outside, storage_root / "S.link")
    before = sorted(os.listdir(outside))

    stop = threading.Event()
    swapper = threading.Thread(target=_swapper, args=(storage_root, outside, stop), daemon=True)
    swapper.start()
    served = created = 0
    try:
        deadline = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < deadline:
            n += 1
            # look the entries up afresh: each swap the server sees makes them new entries
            found = await api.get("/Entries/ByPath", params={"fullPath": "\\S\\doc.txt"})
            if found.status == 200:
                doc = (await found.json())["entry"]
                assert doc["fullPath"] == "\\S\\doc.txt"
                resp = await api.get(f"/Entries/{doc['id']}/{EDOC}")
                body = await resp.read()
                assert resp.status < 500, body
                assert SECRET not in body
                served += resp.status == 200
            found = await api.get("/Entries/ByPath", params={"fullPath": "\\S"})
            if found.status == 200:
                folder = (await found.json())["entry"]
                resp = await api.post(
                    f"/Entries/{folder['id']}/{LIST}", json={"entryType": "Folder", "name": f"n{n}"}
                )
                assert resp.status < 500, await resp.text()
                created += resp.status == 201
                resp = await api.get(f"/Entries/{folder['id']}/{LIST}")
                assert resp.status < 500
                assert SECRET not in await resp.read()
    finally:
        stop.set()
        swapper.join()
    # nothing was written outside, and the race was real: requests went through in between
    assert sorted(os.listdir(outside)) == before
    assert (outside / "doc.txt").read_bytes() == SECRET
    assert served + created > 0


async def test_tree_deeper_than_path_max_works(api, storage_root):
    """Every disk operation is relative to an open folder, so depth is not limited by PATH_MAX."""
    parent = 1
    names = [f"{i:02d}" + "d" * 200 for i in range(25)]  # 25 x 203 bytes > 4096
    for name in names:
        resp = await api.post(f"/Entries/{parent}/{LIST}", json={"entryType": "Folder", "name": name})
        assert resp.status == 201, await resp.text()
        parent = (await resp.json())["id"]
    eid = await api.upload(parent, "deep.txt", b"deep bytes")
    entry = await api.entry(eid)
    assert entry["fullPath"] == "\\" + "\\".join([*names, "deep.txt"])
    assert await (await api.download(eid)).read() == b"deep bytes"
    assert [e["name"] for e in await api.children(parent)] == ["deep.txt"]
    # a move of the deep chain under another folder keeps every entry reachable
    other = await api.mkdir(1, "other")
    top = await api.by_path("\\" + names[0])
    resp = await api.patch(f"/Entries/{top['id']}", json={"parentId": other["id"]})
    assert resp.status == 200, await resp.text()
    assert (await api.entry(eid))["fullPath"].startswith("\\other\\" + names[0])
    assert await (await api.download(eid)).read() == b"deep bytes"


async def test_folder_replaced_by_hand_with_same_mtime_is_rescanned(api, storage_root):
    a, b = storage_root / "A", storage_root / "B"
    a.mkdir()
    b.mkdir()
    (a / "a1").write_bytes(b"a")
    (b / "b1").write_bytes(b"b")
    for d in (a, b):
        os.utime(d, (1_577_836_800, 1_577_836_800))  # 2020-01-01, same mtime for both
    folder = await api.by_path("\\A")
    assert await api.child_names(folder["id"]) == {"a1"}
    os.rename(a, storage_root / "A.old")
    os.rename(b, a)
    resp = await api.get(f"/Entries/{folder['id']}/{LIST}", params={"$count": "true"})
    body = await resp.json()
    assert [e["name"] for e in body["value"]] == ["b1"]
    assert body["@odata.count"] == 1


async def test_names_are_case_insensitive_like_laserfiche(api, storage_root):
    upper = await api.mkdir(1, "Reports")
    await assert_problem(
        await api.post(f"/Entries/1/{LIST}", json={"entryType": "Folder", "name": "REPORTS"}), 409
    )
    resp = await api.post(
        f"/Entries/1/{LIST}?autoRename=true", json={"entryType": "Folder", "name": "reports"}
    )
    assert (await resp.json())["name"] == "reports (2)"
    assert (await api.by_path("\\REPORTS"))["id"] == upper["id"]
    # a document may not take a folder's name in another case either
    resp = await api.import_doc(1, "reports", b"x")
    assert resp.status == 409
    # an entry may change the case of its own name
    resp = await api.patch(f"/Entries/{upper['id']}", json={"name": "REPORTS"})
    assert resp.status == 200
    assert (await resp.json())["id"] == upper["id"]
    assert sorted(os.listdir(storage_root)) == sorted([".sandbox", "REPORTS", "reports (2)"])


async def test_rename_to_a_name_with_an_extension_drops_the_kept_one(api):
    resp = await api.import_doc(1, "lf doc", b"%PDF", filename="File.pdf")
    eid = (await resp.json())["operations"]["entryCreate"]["entryId"]
    assert (await api.entry(eid))["extension"] == "pdf"
    resp = await api.patch(f"/Entries/{eid}", json={"name": "renamed"})
    assert (await resp.json())["extension"] == "pdf"  # still no extension of its own
    resp = await api.patch(f"/Entries/{eid}", json={"name": "report.txt"})
    assert (await resp.json())["extension"] == "txt"
    dl = await api.download(eid)
    assert "report.txt" in dl.headers["Content-Disposition"]
    assert "report.txt.pdf" not in dl.headers["Content-Disposition"]


async def test_many_downloads_leave_no_descriptors_open(api, storage_root):
    (storage_root / "f.txt").write_bytes(b"0123456789")
    doc = await api.by_path("\\f.txt")
    before = len(os.listdir("/proc/self/fd"))
    for i in range(60):
        headers = {"Range": "bytes=2-5"} if i % 2 else None
        resp = await api.download(doc["id"], headers=headers)
        await resp.read()
        await api.head(f"/Entries/{doc['id']}/{EDOC}")
    await asyncio.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= before + 2


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (errno.EACCES, 403),
        (errno.EROFS, 403),
        (errno.ENOSPC, 507),
        (errno.ENAMETOOLONG, 400),
        (errno.ENOENT, 404),
        (errno.EIO, 500),
    ],
)
def test_disk_errors_map_to_statuses_without_paths(code, status):
    error = from_os_error(OSError(code, os.strerror(code), "/secret/path/outside"))
    assert error.status == status
    assert "/secret" not in error.detail


# ---- the store folder ------------------------------------------------------------------------


def test_store_folder_swapped_for_a_symlink_is_refused_and_never_followed(tmp_path):
    root, victim = tmp_path / "root", tmp_path / "victim"
    root.mkdir()
    (victim / "tmp").mkdir(parents=True)
    (victim / "tmp" / "important.txt").write_bytes(b"keep me")
    os.symlink(victim, root / ".sandbox")
    with pytest.raises(StoreUnusable):
        Store(root).open("admin", time.time_ns())
    assert (victim / "tmp" / "important.txt").read_bytes() == b"keep me"
    assert sorted(os.listdir(victim)) == ["tmp"]


@pytest.mark.parametrize("name", ["lock", "sandbox.db", "sandbox.db-wal", "tmp"])
def test_store_files_swapped_for_symlinks_are_refused_or_dropped(tmp_path, name):
    root, outside = tmp_path / "root", tmp_path / "outside.txt"
    (root / ".sandbox").mkdir(parents=True)
    outside.write_bytes(b"outside")
    os.symlink(outside, root / ".sandbox" / name)
    store = Store(root)
    try:
        store.open("admin", time.time_ns())
    except StoreUnusable:
        pass
    else:
        # only the crash-debris folder may be replaced: the link is removed, never followed
        assert name == "tmp"
        assert (root / ".sandbox" / "tmp").is_dir() and not (root / ".sandbox" / "tmp").is_symlink()
    finally:
        store.close()
    assert outside.read_bytes() == b"outside"


async def test_store_folder_in_another_case_is_invisible(api, storage_root):
    (storage_root / ".SANDBOX").mkdir()
    (storage_root / ".SANDBOX" / "x.txt").write_bytes(b"x")
    assert ".SANDBOX" not in await api.child_names(1)
    resp = await api.get("/Entries/ByPath", params={"fullPath": "\\.SANDBOX\\x.txt"})
    assert resp.status == 404
    await assert_problem(
        await api.post(f"/Entries/1/{LIST}", json={"entryType": "Folder", "name": ".Sandbox"}), 400
    )


# ---- copies, twins, mtimes and bodies -------------------------------------------------------


@pytest.fixture
def deep_tree(storage_root):
    """A chain of 1,100 nested folders `d` made by hand; removed afterwards without recursion
    (pytest's own cleanup would hit the recursion limit)."""
    depth = 1100
    fd = os.open(storage_root, os.O_RDONLY)
    for _ in range(depth):  # one level at a time, relative to the last
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    yield depth
    for top in (storage_root / "d", storage_root / "copy"):
        if top.exists():
            _remove_chain(top)


async def test_copy_of_a_tree_deeper_than_the_recursion_limit(api, storage_root, deep_tree):
    """A tree made by hand deeper than Python's recursion limit: a copy measures it without
    recursing (and stops counting past MAX_DEPTH), refuses it clearly and makes nothing."""
    source = await api.by_path("\\d")
    resp = await api.post(f"/Entries/1/{LIST}", json={"sourceId": source["id"], "name": "copy"})
    assert resp.status == 400, await resp.text()
    assert "levels below the root" in (await resp.json())["detail"]
    assert not (storage_root / "copy").exists()


def _remove_chain(top):
    """Remove a chain of nested `d` folders deeper than rmtree's recursion can go: lift the chain
    one level at a time."""
    spare = top.with_name(top.name + ".up")
    while (top / "d").exists():
        os.rename(top / "d", spare)
        os.rmdir(top)
        os.rename(spare, top)
    os.rmdir(top)


async def test_copy_of_a_folder_holding_case_twins_completes(api, storage_root):
    (storage_root / "src").mkdir()
    (storage_root / "src" / "a.txt").write_bytes(b"lower")
    (storage_root / "src" / "A.txt").write_bytes(b"upper")
    source = await api.by_path("\\src")
    resp = await api.post(f"/Entries/1/{LIST}", json={"sourceId": source["id"], "name": "dst"})
    assert resp.status == 201, await resp.text()
    copied = {p.name: p.read_bytes() for p in (storage_root / "dst").iterdir()}
    assert sorted(copied.values()) == [b"lower", b"upper"]
    assert len({name.casefold() for name in copied}) == 2


async def test_case_twin_only_on_disk_blocks_a_new_name(api, storage_root):
    folder = await api.mkdir(1, "F")
    (storage_root / "F" / "report.pdf").write_bytes(b"by hand")  # never listed
    resp = await api.import_doc(folder["id"], "REPORT.pdf", b"x")
    assert resp.status == 409, await resp.text()
    (storage_root / "F" / "Hand").mkdir()  # never listed either
    assert (await api.by_path("\\F\\hand"))["name"] == "Hand"


async def test_listing_sees_a_file_added_by_hand_when_the_mtime_is_put_back(api, storage_root):
    folder = storage_root / "F"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    old = folder.stat().st_mtime_ns - 10_000_000_000
    os.utime(folder, ns=(old, old))
    entry = await api.by_path("\\F")
    assert await api.child_names(entry["id"]) == {"a.txt"}
    (folder / "b.txt").write_bytes(b"b")
    os.utime(folder, ns=(old, old))  # what rsync -a, cp -a and tar do
    assert await api.child_names(entry["id"]) == {"a.txt", "b.txt"}


async def test_copy_named_with_its_own_extension_drops_the_kept_one(api):
    resp = await api.import_doc(1, "Invoice 123", b"%PDF", filename="scan.pdf")
    eid = (await resp.json())["operations"]["entryCreate"]["entryId"]
    resp = await api.post(f"/Entries/1/{LIST}", json={"sourceId": eid, "name": "copy.txt"})
    assert (await resp.json())["extension"] == "txt"


async def test_bodies_that_do_not_match_their_headers_are_400(api, client):
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    resp = await client.post(
        f"{api.url('/Entries/1/' + LIST)}",
        data=b"this is not gzip",
        headers=headers | {"Content-Encoding": "gzip"},
    )
    await assert_problem(resp, 400)
    bad_part = b"--XX\r\nbadheader\r\n\r\nbody\r\n--XX--\r\n"
    resp = await client.post(
        api.url("/Entries/1/x.bin"),
        data=bad_part,
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "multipart/form-data; boundary=XX"},
    )
    await assert_problem(resp, 400)


async def test_failed_precondition_and_empty_suffix_are_problems(api, storage_root):
    (storage_root / "f.txt").write_bytes(b"0123456789")
    doc = await api.by_path("\\f.txt")
    await assert_problem(await api.download(doc["id"], headers={"If-Match": '"nope"'}), 412)
    resp = await api.download(doc["id"], headers={"Range": "bytes=-0"})
    await assert_problem(resp, 416)


@pytest.fixture
def mounted_folder(storage_root):
    """A tmpfs mounted at storage_root/M: a folder on another filesystem than the store's."""
    target = storage_root / "M"
    target.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "sandbox-test", str(target)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or done.returncode})")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


async def test_imports_and_copies_into_a_folder_on_another_filesystem(api, storage_root, mounted_folder):
    folder = await api.by_path("\\M")
    eid = await api.upload(folder["id"], "doc.txt", b"across filesystems")
    assert (mounted_folder / "doc.txt").read_bytes() == b"across filesystems"
    (storage_root / "src.txt").write_bytes(b"copied across")
    src = await api.by_path("\\src.txt")
    resp = await api.post(f"/Entries/{folder['id']}/{LIST}", json={"sourceId": src["id"], "name": "c.txt"})
    assert resp.status == 201, await resp.text()
    assert (mounted_folder / "c.txt").read_bytes() == b"copied across"
    # no partial files left beside them, none listed
    assert sorted(os.listdir(mounted_folder)) == ["c.txt", "doc.txt"]
    assert await api.child_names(folder["id"]) == {"c.txt", "doc.txt"}
    # a move across the mount is refused clearly, and nothing moves
    resp = await api.patch(f"/Entries/{eid}", json={"parentId": 1})
    await assert_problem(resp, 400)
    assert (mounted_folder / "doc.txt").exists() and not (storage_root / "doc.txt").exists()


async def test_hand_change_right_after_an_own_change_is_still_seen(api, storage_root):
    """The server skips rescanning a folder that changed only by its own last change; a change
    by hand after that must still count."""
    folder = await api.mkdir(1, "F")
    for i in range(3):
        await api.upload(folder["id"], f"own{i}.txt", b"x")
    (storage_root / "F" / "b.txt").write_bytes(b"by hand")
    resp = await api.import_doc(folder["id"], "B.TXT", b"x")
    assert resp.status == 409, await resp.text()
    assert await api.child_names(folder["id"]) == {"own0.txt", "own1.txt", "own2.txt", "b.txt"}
