"""Robustness found by probing from outside (issue 16, item 8), each over a real socket:

- an id of thousands of digits is a 400 on every route, never a 500 (int() refuses over 4,300);
- a percent-encoded sequence that is not UTF-8, in a path, a query or a part's filename*, is a 400
  and creates nothing (it used to create a file under another name);
- a client that sends no complete request headers in time, or idles on a kept-alive connection, is
  disconnected, while long polls and slow uploads whose headers arrived are not;
- a declared Content-Length over the route's limit is a 413 before any of the body is read.

(test_hostile.py covers names, paths and out-of-range ids of ordinary length.)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import (
    BASE,
    CHILDREN,
    REPO_ID,
    V2BASE,
    Api,
    assert_problem,
    make_settings,
    sign_in,
    tree_snapshot,
)
from yarl import URL

from server.app import create_app
from server.openapi import document

HUB_PAIR = "User sandbox-user-secret, Element sandbox-element-token"
PLATFORM_PAIR = "User sandbox-user-secret, Organization sandbox-org-secret"
HUB = "/elements/api-v2/hubs/documents"
# past the 4,300 digits int() takes, and still a request line aiohttp reads (8 KiB)
DIGITS = "9" * 5000
MiB = 1024 * 1024


@pytest.fixture
async def api(aiohttp_client, storage_root: Path) -> Api:
    (storage_root / "Docs").mkdir()
    (storage_root / "Docs" / "a.txt").write_bytes(b"alpha")
    client = await aiohttp_client(create_app(make_settings(storage_root, max_document_bytes=10 * MiB)))
    return Api(client, await sign_in(client))


def _auth(path: str, bearer: str) -> str:
    if path.startswith(HUB):
        return HUB_PAIR
    if path.startswith("/elements/"):
        return PLATFORM_PAIR  # (instances, their events and deliveries: the organization sees all)
    return f"Bearer {bearer}"


# --------------------------------------------------------------------------- thousands of digits


async def test_an_id_of_thousands_of_digits_is_a_400_on_every_route(api: Api, storage_root: Path):
    """Every described route with a path parameter, each parameter in turn 5,000 digits long (the
    others 1): a problem naming it (400), or a 404 where it is a name or token that does not exist;
    never a 500."""
    before = tree_snapshot(storage_root, exclude_hidden_of=storage_root)
    answered: dict[int, int] = {}
    for path, methods in document("test")["paths"].items():
        params = [p for p in re.findall(r"\{(\w+)\}", path) if p != "repoId"]
        for param in params:
            values = {p: "1" for p in params} | {param: DIGITS, "repoId": REPO_ID}
            concrete = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], path)
            query = "?key=" + "k" * 43 if "/Uploads/" in path else ""  # (a part URL's own credential)
            for method in set(methods) - {"head"}:  # (HEAD answers as GET does, without a body)
                headers = {"Authorization": _auth(path, api.token), "Content-Type": "application/json"}
                resp = await api.client.request(method.upper(), concrete + query, data=b"{}", headers=headers)
                where = f"{method.upper()} {path} ({param})"
                # (an upload that does not exist refuses its part URLs, as S3 refuses a stale one)
                allowed = (400, 401, 404) if param == "uploadId" else (400, 404)
                assert resp.status in allowed, (where, resp.status, (await resp.text())[:300])
                body = await assert_problem(resp, allowed)
                if resp.status == 400:
                    assert param in body["detail"] or "name" in body["detail"].lower(), (where, body)
                answered[resp.status] = answered.get(resp.status, 0) + 1
    assert answered.get(400, 0) >= 60, answered
    assert tree_snapshot(storage_root, exclude_hidden_of=storage_root) == before


@pytest.mark.parametrize(
    "path, auth, name",
    [
        (f"{BASE}/Entries/{DIGITS}", "bearer", "entryId"),
        (f"{V2BASE}/Entries/{DIGITS}", "bearer", "entryId"),
        (f"{HUB}/files/{DIGITS}", "hub", "id"),
        (f"{HUB}/folders/{DIGITS}/contents", "hub", "id"),
        (f"{BASE}/Entries/{'0' * 4990}1", "bearer", None),  # leading zeros: just the id 1
    ],
    ids=["v1-entry", "v2-entry", "hub-file", "hub-folder-contents", "zeros-then-1"],
)
async def test_the_named_forms(api: Api, path: str, auth: str, name: str | None):
    headers = {"Authorization": HUB_PAIR if auth == "hub" else f"Bearer {api.token}"}
    resp = await api.client.get(path, headers=headers)
    if name is None:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["id"] == 1
        return
    body = await assert_problem(resp, 400, name)
    assert "2147483647" in body["detail"], body


async def test_thousands_of_digits_in_a_query_or_a_body_are_400(api: Api, storage_root: Path):
    digits = "9" * 4000  # (a query string over 4 KiB is a 414 before anything reads it)
    await assert_problem(await api.get(f"/Entries/1/{CHILDREN}", params={"$skip": digits}), 400, "$skip")
    await assert_problem(await api.get(f"/Entries/1/{CHILDREN}", params={"$top": digits}), 400, "$top")
    body = b'{"sourceId": ' + DIGITS.encode() + b', "name": "copy"}'
    resp = await api.post(f"/Entries/1/{CHILDREN}", data=body, headers={"Content-Type": "application/json"})
    await assert_problem(resp, 400)
    assert sorted(p.name for p in storage_root.iterdir()) == [".sandbox", "Docs"]


# --------------------------------------------------------------------------- percent-encoded non-UTF-8


# (%FF is never UTF-8; %C0%AE is an overlong ".", %ED%A0%80 a surrogate, %E2%82 a cut-off sequence)
NOT_UTF8 = ["a%FFb.txt", "%C0%AE%C0%AE", "x%ED%A0%80.txt", "end%E2%82"]


@pytest.mark.parametrize("encoded", NOT_UTF8)
async def test_a_name_not_utf8_is_a_400_and_creates_nothing(api: Api, storage_root: Path, encoded: str):
    before = tree_snapshot(storage_root, exclude_hidden_of=storage_root)
    # in a path segment (v1's import names the document in its URL)
    await assert_problem(await api.import_doc(1, "", b"data", encoded_name=encoded), 400, "UTF-8")
    # in a query: a path by name, in both dialects
    v2 = Api(api.client, api.token, base=V2BASE)
    await assert_problem(await v2.raw("GET", f"/Entries/ByPath?fullPath=%5C{encoded}"), 400, "UTF-8")
    await assert_problem(await api.raw("GET", f"/Entries/ByPath?fullPath=%5CDocs%5C{encoded}"), 400, "UTF-8")
    hub = Api(api.client, "", base=HUB, extra_headers={"Authorization": HUB_PAIR})
    await assert_problem(await hub.raw("POST", f"/files?path=/{encoded}", data=_file_form()), 400, "UTF-8")
    await assert_problem(await hub.raw("GET", f"/folders/contents?path=/{encoded}"), 400, "UTF-8")
    assert tree_snapshot(storage_root, exclude_hidden_of=storage_root) == before


def _file_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(b"data"), filename="f.txt", content_type="text/plain")
    return form


def _part_with(disposition: str) -> tuple[bytes, str]:
    """A v2 import body whose file part has this Content-Disposition (raw, as a client sends it)."""
    body = (
        f"--bb\r\nContent-Disposition: {disposition}\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        '--bb\r\nContent-Disposition: form-data; name="request"\r\n\r\n{}\r\n--bb--\r\n'
    ).encode()
    return body, "multipart/form-data; boundary=bb"


@pytest.mark.parametrize(
    "disposition",
    [
        "form-data; name=\"file\"; filename*=UTF-8''a%FFb.txt",
        # (aiohttp would take the plain filename instead, and save the document as cd.txt)
        'form-data; name="file"; filename*=UTF-8\'\'c%FFd.txt; filename="cd.txt"',
        "form-data; name=\"file\"; filename*=UTF-8''cut%E2%82.txt",
        "form-data; name=\"file\"; filename*=no-such-charset''caf%E9.txt",
        'form-data; name="file"; filename*=x.txt',
    ],
)
async def test_a_file_name_that_does_not_decode_is_a_400(api: Api, storage_root: Path, disposition: str):
    before = tree_snapshot(storage_root, exclude_hidden_of=storage_root)
    body, content_type = _part_with(disposition)
    v2 = Api(api.client, api.token, base=V2BASE)
    resp = await v2.post("/Entries/1/Folder/Import", data=body, headers={"Content-Type": content_type})
    await assert_problem(resp, 400, "filename*")
    assert tree_snapshot(storage_root, exclude_hidden_of=storage_root) == before


async def test_utf8_names_still_pass(api: Api, storage_root: Path):
    """The checks refuse only what is not UTF-8: é percent-encoded, in a path, a query and a filename*."""
    assert (await api.import_doc(1, "", b"one", encoded_name="caf%C3%A9.txt")).status == 201
    assert (storage_root / "café.txt").read_bytes() == b"one"
    resp = await api.raw("GET", "/Entries/ByPath?fullPath=%5Ccaf%C3%A9.txt")
    assert resp.status == 200 and (await resp.json())["entry"]["name"] == "café.txt"
    body, content_type = _part_with("form-data; name=\"file\"; filename*=UTF-8''na%C3%AFve.txt")
    v2 = Api(api.client, api.token, base=V2BASE)
    resp = await v2.post("/Entries/1/Folder/Import", data=body, headers={"Content-Type": content_type})
    assert resp.status == 201, await resp.text()
    assert (storage_root / "naïve.txt").read_bytes() == b"hello"


# --------------------------------------------------------------------------- declared Content-Length


async def _declare(api: Api, method: str, path: str, length: int, content_type: str, auth: str) -> bytes:
    """Send only the headers of a request declaring `length` bytes of body: what the server answers
    within 5 s (b"" if nothing)."""
    reader, writer = await asyncio.open_connection(api.client.host, api.client.port)
    writer.write(
        (
            f"{method} {path} HTTP/1.1\r\nHost: sandbox\r\nAuthorization: {auth}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        size = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        return head + await asyncio.wait_for(reader.readexactly(size), 5)
    except TimeoutError:
        return b""
    finally:
        writer.close()


def _status_of(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/problem+json" in head, answer[:300]
    return int(head.split()[1]), json.loads(body)


async def test_a_declared_length_over_the_limit_is_413_before_the_body(api: Api, storage_root: Path):
    bearer = f"Bearer {api.token}"
    multi = "multipart/form-data; boundary=bb"
    too_much = [
        # a JSON route: the app's 1 MiB
        ("POST", f"{BASE}/Entries/1/{CHILDREN}", 2 * MiB, "application/json", bearer),
        ("PATCH", f"{V2BASE}/Entries/1", 10**15, "application/json", bearer),
        # the imports: --max-document-bytes (10 MiB here) and room for the metadata part
        ("POST", f"{BASE}/Entries/1/big.bin", 20 * MiB, multi, bearer),
        ("POST", f"{V2BASE}/Entries/1/Folder/Import", 20 * MiB, multi, bearer),
        ("POST", f"{HUB}/files?path=/big.bin", 20 * MiB, multi, HUB_PAIR),
        # a route that takes no body at all
        ("GET", "/healthz", 2 * MiB, "application/json", bearer),
    ]
    for method, path, length, content_type, auth in too_much:
        started = time.monotonic()
        answer = await _declare(api, method, path, length, content_type, auth)
        assert answer, f"{method} {path}: no answer without the body"
        assert time.monotonic() - started < 3
        status, body = _status_of(answer)
        assert status == 413, (method, path, body)
        assert str(length) in body["detail"], body
    # under the import's limit, the same 2 MiB is read: the server waits for the body
    assert await _declare(api, "POST", f"{BASE}/Entries/1/big.bin", 2 * MiB, multi, bearer) == b""
    assert sorted(p.name for p in storage_root.iterdir()) == [".sandbox", "Docs"]


# --------------------------------------------------------------------------- connections
#
# Through `python -m server`: its runner is the one with the header timeout (the in-process test
# server's is aiohttp's own).


def _address(server) -> tuple[str, int]:
    url = URL(server.base_url)
    assert url.host is not None and url.port is not None
    return url.host, url.port


async def _closed_after(address: tuple[str, int], first: bytes = b"", trickle: bytes = b"") -> float:
    """Open a connection, send `first`, then `trickle` a byte every 0.2 s: the seconds until the
    server closes it (it must, within 10 s)."""
    reader, writer = await asyncio.open_connection(*address)
    started = time.monotonic()
    writer.write(first)

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in trickle:
                await asyncio.sleep(0.2)
                writer.write(bytes([byte]))
                await writer.drain()

    dribbling = asyncio.ensure_future(dribble())
    try:
        assert await asyncio.wait_for(reader.read(), 10) == b""
        return time.monotonic() - started
    finally:
        dribbling.cancel()
        writer.close()


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    """One GET on a kept-alive connection: its answer's body."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: sandbox\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head, head
    size = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    return await asyncio.wait_for(reader.readexactly(size), 5)


async def test_a_client_without_complete_headers_is_disconnected(server_factory, tmp_path: Path):
    # (a keep-alive timeout of 60 s: what closes these is the header timeout)
    server = server_factory.start(tmp_path / "root", "--header-timeout-s", "1", "--keepalive-timeout-s", "60")
    address = _address(server)
    silent, half_line, trickled = await asyncio.gather(
        _closed_after(address),
        _closed_after(address, b"GET /heal"),
        # headers a byte every 0.2 s: each byte is progress, but the request is never complete
        _closed_after(
            address, b"GET /healthz HTTP/1.1\r\n", trickle=b"Host: sandbox\r\nX-Slow: " + b"y" * 60
        ),
    )
    for took in (silent, half_line, trickled):
        assert 0.9 <= took < 4, (silent, half_line, trickled)
    # on a kept-alive connection: idle is no fault, the next request's headers have a second
    reader, writer = await asyncio.open_connection(*address)
    assert await _request(reader, writer, "/healthz")
    await asyncio.sleep(1.5)
    assert await _request(reader, writer, "/healthz")
    writer.write(b"GET /healthz HTTP/1.1\r\nHo")
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    assert 0.9 <= time.monotonic() - started < 4
    writer.close()
    # the server itself is fine
    reader, writer = await asyncio.open_connection(*address)
    assert await _request(reader, writer, "/healthz")
    writer.close()
    assert "no complete request headers within 1 s" in server.stderr()


async def test_an_idle_kept_alive_connection_is_closed(server_factory, tmp_path: Path):
    server = server_factory.start(tmp_path / "root", "--header-timeout-s", "60", "--keepalive-timeout-s", "1")
    reader, writer = await asyncio.open_connection(*_address(server))
    assert await _request(reader, writer, "/healthz")
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    assert 0.9 <= time.monotonic() - started < 4
    writer.close()


async def test_long_polls_streams_and_slow_uploads_are_not_cut(server_factory, tmp_path: Path):
    """Both timeouts at a second, and requests whose headers arrived run for three: a v2 long poll,
    the event stream, an upload whose body takes three seconds to arrive."""
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    for i in range(20):
        (root / "src" / f"doc-{i:02d}.txt").write_bytes(b"x")
    server = server_factory.start(
        root, "--header-timeout-s", "1", "--keepalive-timeout-s", "1", "--sse-keepalive-s", "0.5"
    )
    async with aiohttp.ClientSession(base_url=server.base_url) as session:
        api = Api(session, await sign_in(session))
        v2 = Api(session, api.token, base=V2BASE)
        src = await api.by_path("\\src")
        # a copy paced to last 10 s: the long poll holds its answer for 3 of them
        resp = await v2.post(
            "/Entries/1/Folder/CopyAsync",
            json={"sourceId": src["id"], "name": "copy"},
            headers={"Sandbox-Pace-Ms": "500"},
        )
        assert resp.status == 202, await resp.text()
        task_id = (await resp.json())["taskId"]

        async def long_poll() -> float:
            started = time.monotonic()
            resp = await v2.get("/Tasks", params={"taskIds": task_id}, headers={"Prefer": "wait=3"})
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["value"][0]["status"] in ("NotStarted", "InProgress")
            return time.monotonic() - started

        async def event_stream() -> int:
            reader, writer = await asyncio.open_connection(*_address(server))
            auth = f"Authorization: Bearer {api.token}"
            writer.write(f"GET /sandbox/events HTTP/1.1\r\nHost: sandbox\r\n{auth}\r\n\r\n".encode())
            lines, deadline = 0, time.monotonic() + 3
            while time.monotonic() < deadline:
                line = await asyncio.wait_for(reader.readline(), 2)
                assert line, "the event stream was cut"
                lines += 1
            writer.close()
            return lines

        async def slow_upload() -> bytes:
            boundary = "slowboundary"
            body = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="electronicDocument"; '
                    f'filename="slow.txt"\r\nContent-Type: text/plain\r\n\r\n'
                ).encode()
                + b"s" * 600
                + f"\r\n--{boundary}--\r\n".encode()
            )
            reader, writer = await asyncio.open_connection(*_address(server))
            writer.write(
                (
                    f"POST {BASE}/Entries/1/slow.txt HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n"
                    f"Authorization: Bearer {api.token}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
            )
            for start in range(0, len(body), len(body) // 6 + 1):
                await asyncio.sleep(0.5)
                writer.write(body[start : start + len(body) // 6 + 1])
                await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer

        held, lines, answer = await asyncio.gather(long_poll(), event_stream(), slow_upload())
        assert 2.5 <= held < 6, held
        assert lines >= 4, lines
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        assert (root / "slow.txt").read_bytes() == b"s" * 600
        # (cancelled, through v1: either dialect cancels the other's)
        resp = await api.request("DELETE", f"/Tasks/{task_id}")
        assert resp.status == 204, await resp.text()


async def test_a_file_name_that_does_not_decode_is_a_400_in_the_server_too(server_factory, tmp_path: Path):
    """As `python -m server` runs (aiohttp only warns of the filename*, and drops it): no file."""
    root = tmp_path / "root"
    server = server_factory.start(root)
    body, content_type = _part_with('form-data; name="file"; filename*=UTF-8\'\'c%FFd.txt; filename="cd.txt"')
    async with aiohttp.ClientSession(base_url=server.base_url) as session:
        v2 = Api(session, await sign_in(session), base=V2BASE)
        resp = await v2.post("/Entries/1/Folder/Import", data=body, headers={"Content-Type": content_type})
        await assert_problem(resp, 400, "filename*")
    assert sorted(p.name for p in root.iterdir()) == [".sandbox"]
