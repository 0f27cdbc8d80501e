"""Import (multipart POST /Entries/{parentId}/{fileName}) and download (edoc GET/HEAD, Range)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from urllib.parse import unquote

import pytest
from conftest import EDOC, Api, assert_entry_shape, assert_problem, make_settings, multipart, sign_in
from yarl import URL

from server.app import create_app


def _visible(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".sandbox")


# --------------------------------------------------------------------------- import


async def test_import_document(api, client, storage_root):
    data = b"Hello import\n" * 10
    resp = await api.import_doc(1, "hello.txt", data)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    create = body["operations"]["entryCreate"]
    assert create["exceptions"] == []
    entry_id = create["entryId"]
    assert isinstance(entry_id, int) and entry_id > 1
    link = URL(body["documentLink"])
    assert link.is_absolute()
    assert (link.host, link.port) == (client.host, client.port)
    # the v1 import guide's documentLink is the new entry's URL
    assert link.path.endswith(f"/Entries/{entry_id}")
    assert (storage_root / "hello.txt").read_bytes() == data
    assert _visible(storage_root) == ["hello.txt"]  # no temporary file left behind
    e = await api.entry(entry_id)
    assert_entry_shape(e)
    assert e["name"] == "hello.txt"
    assert e["elecDocumentSize"] == len(data)
    assert e["extension"] == "txt"
    assert e["mimeType"].startswith("text/plain")
    assert e["parentId"] == 1
    linked = await api.absolute("GET", body["documentLink"])
    assert linked.status == 200
    assert (await linked.json())["id"] == entry_id
    dl = await api.download(entry_id)
    assert await dl.read() == data


async def test_import_keeps_the_files_extension_for_a_name_without_one(api, storage_root):
    """The v1 import guide imports `lfapi created doc` from File.pdf: a pdf document whose
    name has no extension. The disk holds the name; the extension and type come from the upload."""
    resp = await api.import_doc(1, "lfapi created doc", b"%PDF-1.4 fake", filename="File.pdf")
    assert resp.status == 201, await resp.text()
    entry_id = (await resp.json())["operations"]["entryCreate"]["entryId"]
    e = await api.entry(entry_id)
    assert (e["name"], e["extension"], e["mimeType"]) == ("lfapi created doc", "pdf", "application/pdf")
    assert (storage_root / "lfapi created doc").read_bytes() == b"%PDF-1.4 fake"
    dl = await api.download(entry_id)
    assert dl.headers["Content-Type"] == "application/pdf"
    assert "lfapi created doc.pdf" in unquote(dl.headers["Content-Disposition"])
    # a copy keeps it too
    copy = await api.post(
        "/Entries/1/Laserfiche.Repository.Folder/children", json={"sourceId": entry_id, "name": "copy"}
    )
    assert copy.status == 201
    assert (await copy.json())["extension"] == "pdf"


async def test_import_into_subfolder(api, storage_root):
    sub = await api.mkdir(1, "inbox")
    eid = await api.upload(sub["id"], "scan.pdf", b"%PDF-1.4 fake")
    e = await api.entry(eid)
    assert e["fullPath"] == "\\inbox\\scan.pdf"
    assert e["extension"] == "pdf"
    assert e["mimeType"] == "application/pdf"
    assert (storage_root / "inbox" / "scan.pdf").read_bytes() == b"%PDF-1.4 fake"
    assert _visible(storage_root / "inbox") == ["scan.pdf"]


async def test_import_unicode_name(api, storage_root):
    name = "Ünïcödé rapport 2026.txt"
    eid = await api.upload(1, name, b"u")
    assert (await api.entry(eid))["name"] == name
    assert (storage_root / name).read_bytes() == b"u"


async def test_import_auto_rename(api, storage_root):
    a = await api.upload(1, "a.txt", b"one")
    b = await api.upload(1, "a.txt", b"two", auto_rename=True)
    c = await api.upload(1, "a.txt", b"three", auto_rename=True)
    assert [(await api.entry(i))["name"] for i in (a, b, c)] == ["a.txt", "a (2).txt", "a (3).txt"]
    assert (storage_root / "a.txt").read_bytes() == b"one"
    assert (storage_root / "a (2).txt").read_bytes() == b"two"
    assert (storage_root / "a (3).txt").read_bytes() == b"three"
    assert len({a, b, c}) == 3


async def test_import_auto_rename_without_extension(api, storage_root):
    await api.upload(1, "README", b"1")
    b = await api.upload(1, "README", b"2", auto_rename=True)
    assert (await api.entry(b))["name"] == "README (2)"
    assert (storage_root / "README (2)").read_bytes() == b"2"


async def test_import_conflict_without_auto_rename_keeps_original(api, storage_root):
    await api.upload(1, "keep.txt", b"original")
    resp = await api.import_doc(1, "keep.txt", b"intruder")
    assert resp.status in (400, 409), await resp.text()
    assert (storage_root / "keep.txt").read_bytes() == b"original"
    assert _visible(storage_root) == ["keep.txt"]


async def test_import_conflict_with_folder(api, storage_root):
    await api.mkdir(1, "x.txt")
    resp = await api.import_doc(1, "x.txt", b"data")
    assert resp.status in (400, 409), await resp.text()
    assert (storage_root / "x.txt").is_dir()
    assert _visible(storage_root) == ["x.txt"]


async def test_import_empty_file_is_400(api, storage_root):
    resp = await api.import_doc(1, "empty.txt", b"")
    assert resp.status == 400, await resp.text()
    assert "X-RequestId" in resp.headers
    body = await resp.json(content_type=None)
    exceptions = body["operations"]["entryCreate"]["exceptions"]
    assert len(exceptions) == 1
    assert isinstance(exceptions[0]["message"], str) and exceptions[0]["message"]
    assert _visible(storage_root) == []


async def test_import_without_document_part_is_400(api, storage_root):
    form = multipart(None, request_json="{}")
    resp = await api.raw("POST", "/Entries/1/nodoc.txt", data=form)
    await assert_problem(resp, 400, "electronicDocument")
    assert _visible(storage_root) == []


async def test_import_not_multipart_is_400(api, storage_root):
    resp = await api.raw(
        "POST",
        "/Entries/1/plain.txt",
        data=b"just bytes",
        headers={"Content-Type": "application/octet-stream"},
    )
    await assert_problem(resp, (400, 415))
    assert _visible(storage_root) == []


async def test_import_bad_request_part_is_400(api, storage_root):
    resp = await api.import_doc(1, "r.txt", b"data", request_json="{not json")
    await assert_problem(resp, 400, "request")
    assert _visible(storage_root) == []


async def test_import_into_unknown_parent_is_404(api, storage_root):
    resp = await api.import_doc(424242, "x.txt", b"data")
    assert resp.status == 404, await resp.text()
    assert _visible(storage_root) == []


async def test_import_into_document_is_problem(api, storage_root):
    (storage_root / "d.txt").write_bytes(b"d")
    doc = await api.by_path("\\d.txt")
    resp = await api.import_doc(doc["id"], "x.txt", b"data")
    assert resp.status in (400, 404, 409), await resp.text()
    assert _visible(storage_root) == ["d.txt"]
    assert (storage_root / "d.txt").read_bytes() == b"d"


async def test_import_over_size_limit_is_refused(aiohttp_client, storage_root):
    client = await aiohttp_client(create_app(make_settings(storage_root, max_document_bytes=1000)))
    api = Api(client, await sign_in(client))
    resp = await api.import_doc(1, "big.bin", os.urandom(5000))
    assert resp.status in (400, 413), await resp.text()
    assert _visible(storage_root) == []
    assert (await api.import_doc(1, "small.bin", b"s" * 500)).status == 201
    assert _visible(storage_root) == ["small.bin"]


async def test_an_import_cut_off_never_shows_under_its_name(api, client, storage_root):
    """The document streams into a temporary file inside the store; a client that goes away
    mid-body leaves neither its name nor the temporary file behind."""
    boundary = "cutoffboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="electronicDocument"; '
        'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    promised = 64 * 1024 * 1024
    path = f"{api.base}/Entries/1/big.bin"
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
            f"Authorization: Bearer {api.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {promised}\r\n\r\n"
        ).encode()
        + head
    )
    chunk = os.urandom(1024 * 1024)
    for _ in range(4):
        writer.write(chunk)
    await writer.drain()
    tmp = storage_root / ".sandbox" / "tmp"

    def written() -> int:
        return sum(f.stat().st_size for f in tmp.iterdir())

    deadline = asyncio.get_running_loop().time() + 10
    while written() < 1024 * 1024:  # it streams to a temporary file, not under its name
        assert asyncio.get_running_loop().time() < deadline, "the upload never reached the disk"
        assert not (storage_root / "big.bin").exists()
        await asyncio.sleep(0.01)
    writer.close()
    await writer.wait_closed()
    deadline = asyncio.get_running_loop().time() + 10
    while list(tmp.iterdir()):
        assert asyncio.get_running_loop().time() < deadline, list(tmp.iterdir())
        await asyncio.sleep(0.01)
    assert _visible(storage_root) == []
    # and the server goes on
    assert (await api.import_doc(1, "big.bin", b"whole")).status == 201
    assert (storage_root / "big.bin").read_bytes() == b"whole"


async def test_import_5_mib_byte_exact(api, storage_root):
    data = os.urandom(5 * 1024 * 1024)
    eid = await api.upload(1, "big.bin", data)
    e = await api.entry(eid)
    assert e["elecDocumentSize"] == len(data)
    on_disk = (storage_root / "big.bin").read_bytes()
    assert hashlib.sha256(on_disk).digest() == hashlib.sha256(data).digest()
    resp = await api.download(eid)
    assert resp.status == 200
    got = await resp.read()
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert _visible(storage_root) == ["big.bin"]


# --------------------------------------------------------------------------- download


@pytest.fixture
async def doc(api, storage_root):
    data = bytes(range(256)) * 4  # 1024 bytes
    (storage_root / "bytes.bin").write_bytes(data)
    e = await api.by_path("\\bytes.bin")
    return e["id"], data


async def test_download_full(api, doc):
    eid, data = doc
    resp = await api.download(eid)
    assert resp.status == 200
    assert await resp.read() == data
    assert int(resp.headers["Content-Length"]) == len(data)
    assert "bytes.bin" in resp.headers["Content-Disposition"]
    assert "X-RequestId" in resp.headers


@pytest.mark.parametrize(
    ("rng", "start", "end"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=0-0", 0, 0),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),
    ],
)
async def test_download_range(api, doc, rng, start, end):
    eid, data = doc
    resp = await api.download(eid, headers={"Range": rng})
    assert resp.status == 206, await resp.text()
    body = await resp.read()
    assert body == data[start : end + 1]
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert int(resp.headers["Content-Length"]) == end - start + 1


async def test_download_unsatisfiable_range(api, doc):
    eid, _ = doc
    resp = await api.download(eid, headers={"Range": "bytes=5000-6000"})
    assert resp.status == 416
    await resp.read()
    assert resp.headers.get("Content-Range") == "bytes */1024"
    assert "X-RequestId" in resp.headers


@pytest.mark.parametrize("value", ["bytes=5000-6000", "bytes=abc", "bytes=5-1", "bytes=0-1,5-6"])
async def test_unsatisfiable_range_is_a_problem(api, doc, value):
    """416 is an error response: problem+json with X-APIServer-Error, like every other error,
    and Content-Range names the document's length (RFC 9110)."""
    eid, data = doc
    resp = await api.download(eid, headers={"Range": value})
    await assert_problem(resp, 416)
    assert resp.headers["Content-Range"] == f"bytes */{len(data)}"


async def test_suffix_range_is_byte_exact(api, doc):
    eid, data = doc
    resp = await api.download(eid, headers={"Range": "bytes=-100"})
    assert resp.status == 206
    assert await resp.read() == data[-100:]


async def test_head_download(api, doc):
    eid, data = doc
    resp = await api.head(f"/Entries/{eid}/{EDOC}")
    assert resp.status == 200
    assert int(resp.headers["Content-Length"]) == len(data)
    assert await resp.read() == b""
    assert "bytes.bin" in resp.headers.get("Content-Disposition", "")
    assert "X-RequestId" in resp.headers


async def test_head_error_has_headers_and_no_body(api):
    resp = await api.head(f"/Entries/989898/{EDOC}")
    assert resp.status == 404
    assert await resp.read() == b""
    assert "X-RequestId" in resp.headers
    assert "X-APIServer-Error" in resp.headers


async def test_content_disposition_non_ascii(api, storage_root):
    name = "résumé été.txt"
    eid = await api.upload(1, name, b"cv")
    resp = await api.download(eid)
    assert resp.status == 200
    assert await resp.read() == b"cv"
    assert name in unquote(resp.headers["Content-Disposition"])


async def test_download_folder_is_400(api):
    d = await api.mkdir(1, "folder")
    await assert_problem(await api.download(d["id"]), 400)


async def test_download_unknown_is_404(api):
    await assert_problem(await api.download(313131), 404)


async def test_download_reflects_disk(api, storage_root):
    eid = await api.upload(1, "live.txt", b"v1")
    (storage_root / "live.txt").write_bytes(b"version two")
    resp = await api.download(eid)
    assert await resp.read() == b"version two"
    assert (await api.entry(eid))["elecDocumentSize"] == len(b"version two")


# --------------------------------------------------------------------------- fields, links, tags


@pytest.mark.parametrize("what", ["fields", "links", "tags"])
async def test_fields_links_tags_are_empty(api, storage_root, what):
    (storage_root / "d.txt").write_bytes(b"d")
    d = await api.by_path("\\d.txt")
    for eid in (1, d["id"]):
        resp = await api.get(f"/Entries/{eid}/{what}")
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["value"] == []
    await assert_problem(await api.get(f"/Entries/565656/{what}"), 404)


@pytest.mark.parametrize(
    "name", ["fields", "links", "tags", "100% done.txt", "a+b=c&d.txt", "semi;colon #1.txt", "q=1 ~tilde.txt"]
)
async def test_import_names_that_look_like_routes_or_escapes(api, storage_root, name):
    eid = await api.upload(1, name, b"data")
    e = await api.entry(eid)
    assert e["name"] == name
    assert (storage_root / name).read_bytes() == b"data"
    assert _visible(storage_root) == [name]


async def test_head_folder_edoc_is_400_without_body(api):
    d = await api.mkdir(1, "folder")
    resp = await api.head(f"/Entries/{d['id']}/{EDOC}")
    assert resp.status == 400
    assert await resp.read() == b""
    assert "X-RequestId" in resp.headers
    assert "X-APIServer-Error" in resp.headers
