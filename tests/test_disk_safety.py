"""The disk under pressure: folders swapped for symlinks mid-request, trees deeper than PATH_MAX,
folders swapped by hand, names that differ only in case, and what a disk error becomes."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time

import pytest
from conftest import EDOC, assert_problem

from server.errors import from_os_error

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
