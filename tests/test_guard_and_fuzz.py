"""Hardening: every route is guarded, operations are isolated between users and sessions, and
generated hostile input (hypothesis) and schema-driven requests (schemathesis) never break the
server or reach outside its storage root.

1. The route table is read from `create_app(settings)` itself, so a route added later without a
   guard fails `test_every_route_is_guarded` (the public routes are an explicit allow-list, spec5).
2. `test_fuzz_*` run hypothesis properties over every name, path and id the two dialects take,
   against a `python -m server` subprocess whose storage root has symlinks pointing at a canary
   outside it. `SANDBOX_FUZZ_EXAMPLES` (default 300) is the total number of examples.
3. `test_schemathesis_*` runs schemathesis over `/openapi.json` of a live subprocess.
   `SANDBOX_SCHEMA_EXAMPLES` (default 20) is the number of examples per operation.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import string
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from conftest import (
    BASE,
    CHILDREN,
    PART_PREFIX,
    PROBLEM_KEYS,
    Api,
    ServerFactory,
    assert_problem,
    make_jail,
    make_settings,
    sign_in,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.app import create_app

# --------------------------------------------------------------------------- 1. guards

HUB_PAIR = "User sandbox-user-secret, Element sandbox-element-token"
PLATFORM_PAIR = "User sandbox-user-secret, Organization sandbox-org-secret"
BAD_HUB_PAIR = "User sandbox-user-secret, Element not-the-element-token"
BAD_USER_PAIR = "User not-the-user-secret, Element sandbox-element-token"

# spec5 "Public routes": (method, canonical path). HEAD is aiohttp's automatic twin of a GET.
PUBLIC = {
    ("POST", "/v1/Repositories/{repoId}/Token"),
    ("GET", "/healthz"),
    ("HEAD", "/healthz"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("GET", "/"),
    ("HEAD", "/"),
    ("GET", "/dashboard/{name}"),
    ("HEAD", "/dashboard/{name}"),
}

# plausible values for the path parameters (anything else: "x"); auth runs before any handler,
# so the value never decides between 401 and something else
PARAM_VALUES = {
    "repoId": "r-sandbox",
    "entryId": "1",
    "id": "1",
    "instanceId": "1",
    "eventId": "1",
    "operationToken": "x",
    "faultId": "x",
    "fileName": "x.txt",
    "name": "x",
}


def _routes(app) -> list[tuple[str, str, str]]:
    """(method, canonical, concrete path) for every route of the app."""
    out = []
    for route in app.router.routes():
        canonical = route.resource.canonical
        concrete = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: PARAM_VALUES.get(m.group(1), "x"), canonical)
        out.append((route.method, canonical, concrete))
    return out


def _wrong_dialects(canonical: str, bearer: str) -> list[tuple[str, str]]:
    """(label, Authorization) pairs that are valid somewhere, but not on this route."""
    forged = [
        ("forged bearer", "Bearer forged-token-0123456789abcdef0123456789abcdef"),
        ("wrong Element token", BAD_HUB_PAIR),
        ("wrong User secret", BAD_USER_PAIR),
    ]
    if canonical.startswith("/v1/"):
        return [("Elements hub pair", HUB_PAIR), ("Elements platform pair", PLATFORM_PAIR), *forged]
    if canonical.startswith("/elements/api-v2/hubs/"):
        return [("Laserfiche bearer", f"Bearer {bearer}"), ("platform pair", PLATFORM_PAIR), *forged]
    if canonical.startswith("/elements/api-v2/instances/events"):
        return [("Laserfiche bearer", f"Bearer {bearer}"), *forged]
    if canonical.startswith("/elements/api-v2/instances"):
        return [("Laserfiche bearer", f"Bearer {bearer}"), ("hub pair", HUB_PAIR), *forged]
    # /sandbox/* takes either dialect: only forged credentials are wrong there
    return forged


async def _assert_401(resp, what: str) -> None:
    body = await resp.read()
    assert resp.status == 401, f"{what}: expected 401, got {resp.status}: {body[:300]!r}"
    assert resp.content_type == "application/problem+json", f"{what}: {resp.content_type}"
    if resp.method != "HEAD":
        problem = json.loads(body)
        assert PROBLEM_KEYS <= set(problem), f"{what}: {problem}"
        assert problem["status"] == 401


async def test_every_route_is_guarded(aiohttp_client, storage_root):
    app = create_app(make_settings(storage_root))
    routes = _routes(app)
    client = await aiohttp_client(app)
    bearer = await sign_in(client)
    seen_public = set()
    guarded = 0
    for method, canonical, path in routes:
        if (method, canonical) in PUBLIC:
            seen_public.add((method, canonical))
            resp = await client.request(method, path)
            await resp.read()
            assert resp.status != 401, f"public {method} {canonical} answered 401"
            continue
        guarded += 1
        what = f"{method} {canonical} ({path})"
        await _assert_401(await client.request(method, path), f"{what} without credentials")
        for label, header in _wrong_dialects(canonical, bearer):
            resp = await client.request(method, path, headers={"Authorization": header})
            await _assert_401(resp, f"{what} with {label}")
    # the allow-list is not stale (a public route renamed would otherwise pass unnoticed)
    assert seen_public == PUBLIC, PUBLIC - seen_public
    # the walk saw the whole API (a router that lost its routes would pass trivially)
    assert guarded >= 60, guarded
    assert not storage_root.joinpath("x").exists()
    assert sorted(p.name for p in storage_root.iterdir()) == [".sandbox"]


async def test_guard_answers_before_the_body_is_read(aiohttp_client, storage_root):
    """An unauthenticated mutation with a well-formed body changes nothing on any write route."""
    client = await aiohttp_client(create_app(make_settings(storage_root)))
    writes = [
        ("POST", f"{BASE}/Entries/1/{CHILDREN}", {"entryType": "Folder", "name": "made"}),
        ("POST", "/elements/api-v2/hubs/documents/folders", {"path": "/made"}),
        ("PATCH", f"{BASE}/Entries/1", {"name": "made"}),
        ("POST", "/sandbox/faults", {"kind": "operation-failure"}),
        ("POST", "/elements/api-v2/instances", {"name": "made", "element": {"key": "documents"}}),
    ]
    bearer = await sign_in(client)
    for method, path, body in writes:
        await _assert_401(await client.request(method, path, json=body), f"{method} {path}")
        if path.startswith("/elements/"):  # a valid bearer is the wrong dialect there
            resp = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {bearer}"}
            )
            await _assert_401(resp, f"{method} {path} with a bearer")
    assert sorted(p.name for p in storage_root.iterdir()) == [".sandbox"]


# --------------------------------------------------------------------------- 1b. isolation


def _masked(problem: dict, token: str) -> dict:
    """The problem with the token text (and the request id fields) taken out."""
    out = {k: v for k, v in problem.items() if k not in ("operationId", "traceId")}
    return json.loads(json.dumps(out).replace(token, "<TOKEN>"))


UNKNOWN_TOKEN = "0" * 32


@pytest.fixture
async def two_users(aiohttp_client, storage_root):
    """alice and bob (not admins) and admin, with a paced copy of alice's running."""
    src = storage_root / "src"
    src.mkdir()
    for i in range(4):
        (src / f"f{i}.txt").write_bytes(b"x" * 10)
    settings = make_settings(storage_root, users=(("admin", "admin"), ("alice", "a"), ("bob", "b")))
    client = await aiohttp_client(create_app(settings))
    alice = Api(client, await sign_in(client, "alice", "a"))
    alice2 = Api(client, await sign_in(client, "alice", "a"))
    bob = Api(client, await sign_in(client, "bob", "b"))
    admin = Api(client, await sign_in(client, "admin", "admin"))
    src_id = (await alice.by_path("\\src"))["id"]
    resp = await alice.post(
        f"/Entries/1/{CHILDREN}/CopyAsync",
        json={"sourceId": src_id, "name": "copy"},
        headers={"Sandbox-Pace-Ms": "5000"},
    )
    assert resp.status in (201, 202), await resp.text()
    token = (await resp.json())["token"]
    yield client, alice, alice2, bob, admin, token
    await alice.request("DELETE", f"/Tasks/{token}")


async def _problem_of(resp) -> dict:
    return await assert_problem(resp, 404)


async def _laserfiche_probes(api: Api, token: str) -> list[tuple[str, dict]]:
    """What a session hears about `token` on the three Tasks routes (and the long poll)."""
    out = []
    for label, method, path in (
        ("read", "GET", f"/Tasks/{token}"),
        ("poll", "GET", f"/Tasks/{token}/status"),
        ("poll-wait", "GET", f"/Tasks/{token}/status?wait=2"),
        ("cancel", "DELETE", f"/Tasks/{token}"),
    ):
        resp = await api.request(method, path)
        out.append((label, await _problem_of(resp)))
    return out


async def _sandbox_probes(client, headers: dict, token: str) -> list[tuple[str, dict]]:
    out = []
    for label, method, path in (
        ("sandbox read", "GET", f"/sandbox/operations/{token}"),
        ("sandbox cancel", "POST", f"/sandbox/operations/{token}/cancel"),
    ):
        resp = await client.request(method, path, headers=headers)
        out.append((label, await _problem_of(resp)))
    return out


def _assert_same_answers(theirs, unknown, token):
    for (label, problem), (label2, problem_unknown) in zip(theirs, unknown, strict=True):
        assert label == label2
        assert problem["title"] == problem_unknown["title"], (label, problem, problem_unknown)
        assert _masked(problem, token) == _masked(problem_unknown, UNKNOWN_TOKEN), (label, problem)


async def _status_of(api: Api, token: str) -> str:
    resp = await api.get(f"/Tasks/{token}/status")
    assert resp.status == 200, await resp.text()
    return (await resp.json())["status"]


async def _listed(client, headers: dict) -> set[str]:
    resp = await client.get("/sandbox/operations", headers=headers)
    assert resp.status == 200, await resp.text()
    return {op["operationToken"] for op in (await resp.json())["value"]}


async def test_other_user_cannot_see_poll_cancel_or_list(two_users):
    client, alice, _alice2, bob, admin, token = two_users
    assert await _status_of(alice, token) in ("NotStarted", "Running")
    theirs = await _laserfiche_probes(bob, token)
    unknown = await _laserfiche_probes(bob, UNKNOWN_TOKEN)
    _assert_same_answers(theirs, unknown, token)
    theirs = await _sandbox_probes(client, bob.headers, token)
    unknown = await _sandbox_probes(client, bob.headers, UNKNOWN_TOKEN)
    _assert_same_answers(theirs, unknown, token)
    assert token not in await _listed(client, bob.headers)
    # filtering by alice's name does not reveal it either
    resp = await client.get("/sandbox/operations", params={"user": "alice"}, headers=bob.headers)
    assert (await resp.json())["value"] == []
    # the Elements dialect is another user too
    hub = {"Authorization": HUB_PAIR}
    assert token not in await _listed(client, hub)
    theirs = await _sandbox_probes(client, hub, token)
    unknown = await _sandbox_probes(client, hub, UNKNOWN_TOKEN)
    _assert_same_answers(theirs, unknown, token)
    # none of it touched alice's operation
    assert await _status_of(alice, token) in ("NotStarted", "Running")
    assert token in await _listed(client, alice.headers)
    assert token in await _listed(client, admin.headers)


async def test_same_user_other_session_tasks_404_but_listed(two_users):
    client, alice, alice2, _bob, _admin, token = two_users
    theirs = await _laserfiche_probes(alice2, token)
    unknown = await _laserfiche_probes(alice2, UNKNOWN_TOKEN)
    _assert_same_answers(theirs, unknown, token)
    assert await _status_of(alice, token) in ("NotStarted", "Running")
    # /sandbox/ is per user: the other session sees it, and reads it
    assert token in await _listed(client, alice2.headers)
    resp = await client.get(f"/sandbox/operations/{token}", headers=alice2.headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["user"] == "alice"
    # the owner cancels it
    resp = await alice.request("DELETE", f"/Tasks/{token}")
    assert resp.status == 204, await resp.text()
    assert await _status_of(alice, token) == "Canceled"


# --------------------------------------------------------------------------- 2. hypothesis fuzz
#
# Properties run synchronously (hypothesis cannot drive an async test) against a `python -m server`
# subprocess started once per test, over http.client: the request target goes out byte for byte
# (no client-side normalisation of `..` or of percent-encoding).

CANARY = b"CANARY-fuzz-do-not-read-0xDEADBEEF"
FUZZ_TOTAL = int(os.environ.get("SANDBOX_FUZZ_EXAMPLES", "300"))
EL = "/elements/api-v2/hubs/documents"
# aiohttp's own request-line limit is 8190 bytes (beyond it: its plain-text 400, spec5): stay below
MAX_TARGET = 7000


@dataclass
class Reply:
    method: str
    target: str
    status: int
    content_type: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.target} -> {self.status} {self.content_type} {self.body[:400]!r}"


class Raw:
    """A keep-alive HTTP/1.1 client that sends the target exactly as given."""

    def __init__(self, base_url: str, authorization: str | None = None):
        u = urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.authorization = authorization
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.count = 0
        self.statuses: dict[int, int] = {}

    def request(self, method: str, target: str, body: bytes | None = None, headers: dict | None = None):
        all_headers = {"Authorization": self.authorization} if self.authorization else {}
        all_headers.update(headers or {})
        self.count += 1
        try:
            self.conn.request(method, target, body=body, headers=all_headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError) as exc:
            self.conn.close()
            raise AssertionError(f"{method} {target}: connection failed: {exc!r}") from exc
        self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
        return Reply(
            method,
            target,
            resp.status,
            resp.getheader("Content-Type", ""),
            {k.lower(): v for k, v in resp.getheaders()},
            data,
        )

    def json(self, method: str, target: str, obj, ensure_ascii: bool = True, headers=None):
        text = json.dumps(obj, ensure_ascii=ensure_ascii)
        body = text.encode("utf-8", "surrogatepass")
        return self.request(method, target, body, {"Content-Type": "application/json", **(headers or {})})

    def multipart(self, method: str, target: str, parts: list[tuple[str, str | None, bytes]]):
        boundary = "fuzz" + uuid.uuid4().hex
        chunks = []
        for name, filename, data in parts:
            disp = f'form-data; name="{name}"'
            if filename is not None:
                disp += f'; filename="{filename}"'
            chunks.append(
                f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogatepass")
                + data
                + b"\r\n"
            )
        chunks.append(f"--{boundary}--\r\n".encode())
        return self.request(
            method, target, b"".join(chunks), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )

    def close(self):
        self.conn.close()


# ---- encodings of a value in a URL


def enc_std(value: str, keep: str = "") -> str:
    return quote(value, safe=keep, errors="surrogatepass")


def enc_all(value: str) -> str:
    """Every byte percent-encoded, unreserved ones too: `..` -> `%2E%2E`."""
    return "".join(f"%{b:02X}" for b in value.encode("utf-8", "surrogatepass"))


def enc_all_lower(value: str) -> str:
    return enc_all(value).lower()


def enc_loose(value: str) -> str:
    """Separators and dots left as they are (the URL layer sees them)."""
    return quote(value, safe="/\\.:~", errors="surrogatepass").replace("%5C", "\\").replace("\\", "%5C")


ENCODERS = {"std": enc_std, "all": enc_all, "lower": enc_all_lower, "loose": enc_loose}


def fit(value: str, encode) -> str:
    """Shorten `value` until its encoded form leaves the request line under aiohttp's limit."""
    while len(encode(value)) > MAX_TARGET // 2 and value:
        value = value[: len(value) * 2 // 3]
    return value


# ---- the oracle: the README's naming rules, written independently of the server's code

_FORBIDDEN = set('/\\:*?"<>|')


def valid_name(name: str) -> bool:
    if name in ("", ".", ".."):
        return False
    if name.startswith(PART_PREFIX):
        return False
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate is no name
        return False
    if size > 255:
        return False
    return not any(c in _FORBIDDEN or unicodedata.category(c) == "Cc" for c in name)


# ---- strategies

SYMLINK_NAMES = [
    "link_out",
    "link_canary.txt",
    "link_rel",
    "inner",
    "inner_canary.txt",
    "LINK_OUT",
    "Link_Canary.TXT",
    "INNER",
]
REAL_NAMES = ["real", "top.txt", "src", "r.txt", "victim", "vdoc.txt", ".sandbox", "canary.txt", "outside"]
ATOMS = [
    "..",
    ".",
    "...",
    "",
    "/",
    "\\",
    "//",
    "\\\\",
    "%2e%2e",
    "%2E%2E",
    "%252e%252e",
    "..%2f",
    "..%5c",
    "%2f",
    "%5c",
    "..\\",
    "../",
    "\x00",
    "%00",
    "a\x00b",
    "\n",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2025",  # two dot leader
    "\uff0e\uff0e",  # fullwidth full stops
    "\u202e",  # right-to-left override
    "\ufeff",
    "\u0301",
    "\ud800",  # lone surrogates: JSON can carry them as escapes, UTF-8 cannot
    "\udfff",
    "\ud83d\ude00",  # a surrogate pair (valid once JSON-decoded)
    "%c0%ae%c0%ae",
    "C:",
    "~",
    "*",
    "?",
    ":",
    '"',
    "<>",
    "|",
    " ",
    ".sandbox",
    PART_PREFIX + "x",
    "con",
    "NUL",
    "😀",
    "é",
    "\u0000..",
    *SYMLINK_NAMES,
    *REAL_NAMES,
]


def names() -> st.SearchStrategy[str]:
    """A single name: mostly hostile, sometimes valid, sometimes long."""
    chars = st.one_of(
        st.characters(codec="utf-8"),
        st.characters(min_codepoint=0, max_codepoint=0x9F),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    )
    return st.one_of(
        st.sampled_from(ATOMS),
        st.text(chars, min_size=1, max_size=12),
        st.lists(st.one_of(st.sampled_from(ATOMS), st.text(chars, max_size=4)), min_size=1, max_size=5).map(
            "".join
        ),
        st.builds(
            lambda c, n: c * n, st.sampled_from(["x", "é", "€", "😀", ".", "/", "a/"]), st.integers(120, 300)
        ),
        st.text(string.ascii_letters + string.digits + " ._-()", min_size=1, max_size=40),
    )


def paths(sep: str, absolutes: list[str]) -> st.SearchStrategy[str]:
    """A path in a dialect whose separator is `sep`, with absolute OS paths and mixed separators."""
    seps = st.sampled_from([sep, sep, "/", "\\", "//", "%2f", "%5c", sep + ".." + sep])
    prefixes = st.sampled_from(["", sep, sep, sep * 2, "C:" + sep, "~" + sep, "/..", "\\..", "file://"])
    composed = st.builds(
        lambda prefix, parts, joiner: prefix + joiner.join(parts),
        prefixes,
        st.lists(st.one_of(st.sampled_from(REAL_NAMES + SYMLINK_NAMES), names()), min_size=0, max_size=6),
        seps,
    )
    # well-formed paths through the real tree and the symlinks in it (`/real/inner/canary.txt`)
    plausible = st.builds(
        lambda parts, fresh: sep + sep.join(parts + ([fresh] if fresh else [])),
        st.lists(st.sampled_from(REAL_NAMES + SYMLINK_NAMES), min_size=0, max_size=3),
        st.one_of(st.none(), st.text(string.ascii_letters + " ._-", min_size=1, max_size=12)),
    )
    return st.one_of(composed, composed, plausible, st.sampled_from(absolutes))


encoders = st.sampled_from(sorted(ENCODERS))


def server_view(value: str) -> str | None:
    """The text a JSON decoder makes of `value` sent as ASCII JSON (surrogate pairs join up); None
    when it holds a lone surrogate."""
    try:
        return value.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return None


def url_view(value: str) -> str:
    """The text the server decodes from `value` percent-encoded as UTF-8 bytes (invalid -> U+FFFD)."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


# CI generates the same examples every run (a failure there is then a regression, not luck);
# SANDBOX_FUZZ_RANDOM=1 explores new ones (with more examples, the long version)
DERANDOMIZE = os.environ.get("SANDBOX_FUZZ_RANDOM", "") != "1"


def fuzz_settings(examples: int):
    return hsettings(
        max_examples=max(3, examples),
        derandomize=DERANDOMIZE,
        deadline=None,
        database=None,  # nothing written into the work tree (.hypothesis/)
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


@dataclass
class FuzzEnv:
    tmp: Path
    root: Path
    outside: Path
    canary: Path
    http: Raw
    ids: dict[str, int]
    server: object
    canary_mtime: int = 0
    outside_before: list = field(default_factory=list)
    links_before: dict = field(default_factory=dict)
    absolutes: list[str] = field(default_factory=list)

    def outside_snapshot(self) -> list:
        """Everything under tmp_path except the storage root (and the server's own log files):
        kind, bytes or link target, and mtime of every file, folder and link."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.tmp, followlinks=False):
            d = Path(dirpath)
            if d == self.root:
                dirnames[:] = []
                continue
            st_ = os.lstat(d)
            out.append((str(d.relative_to(self.tmp)), "dir", None, st_.st_mtime_ns))
            for name in dirnames + filenames:
                p = d / name
                if p == self.root or (d == self.tmp and name.startswith("server-")):
                    continue
                if p.is_symlink():
                    out.append((str(p.relative_to(self.tmp)), "link", os.readlink(p), None))
                elif p.is_file():
                    out.append(
                        (str(p.relative_to(self.tmp)), "file", p.read_bytes(), os.lstat(p).st_mtime_ns)
                    )
        return sorted(out, key=lambda t: (t[0], t[1]))

    def planted_links(self) -> dict[str, str]:
        return {
            str(p.relative_to(self.root)): os.readlink(p)
            for p in (self.root / n for n in ("link_out", "link_canary.txt", "link_rel"))
            if p.is_symlink()
        } | {
            str(p.relative_to(self.root)): os.readlink(p)
            for p in (self.root / "real" / n for n in ("inner", "inner_canary.txt"))
            if p.is_symlink()
        }

    def freeze(self) -> None:
        self.canary_mtime = os.stat(self.canary).st_mtime_ns
        self.outside_before = self.outside_snapshot()
        self.links_before = self.planted_links()
        assert len(self.links_before) == 5

    def check_disk(self) -> None:
        assert self.canary.read_bytes() == CANARY, "the canary outside the root changed"
        assert os.stat(self.canary).st_mtime_ns == self.canary_mtime, "the canary's mtime changed"
        after = self.outside_snapshot()
        if after != self.outside_before:
            gone = [t[:2] for t in self.outside_before if t not in after]
            new = [t[:2] for t in after if t not in self.outside_before]
            raise AssertionError(f"outside the storage root changed: removed/changed {gone}, new {new}")
        assert self.planted_links() == self.links_before, "a symlink inside the root was replaced"

    def check(self, r: Reply, allowed: set[int] | None = None) -> Reply:
        assert r.status < 500, f"server error: {r}"
        assert CANARY not in r.body, f"the canary leaked: {r}"
        assert "x-requestid" in r.headers, str(r)
        if 400 <= r.status < 500:
            assert r.content_type.startswith("application/problem+json"), f"not problem+json: {r}"
            if r.method != "HEAD":
                problem = r.json()
                assert PROBLEM_KEYS <= set(problem), f"problem lacks keys: {r}"
                assert problem["status"] == r.status, str(r)
        if allowed is not None:
            assert r.status in allowed, f"unexpected status: {r}"
        return r

    def assert_inside(self, parts: list[str], is_dir: bool | None = None) -> None:
        """An entry the server reported is a real file or folder inside the root, reached without
        passing any symlink."""
        p = self.root
        for part in parts:
            assert part not in ("", ".", ".."), parts
            p = p / part
            assert not p.is_symlink(), f"served through a symlink: {p}"
        assert p.exists(), f"reported entry not on disk: {p}"
        if is_dir is not None:
            assert p.is_dir() == is_dir, p

    def lf_entry_inside(self, entry: dict) -> None:
        parts = [s for s in entry["fullPath"].split("\\") if s]
        self.assert_inside(parts, entry["entryType"] == "Folder")

    def el_entry_inside(self, entry: dict) -> None:
        parts = [s for s in entry["path"].split("/") if s]
        self.assert_inside(parts, entry["directory"])


@pytest.fixture
def fuzz_env(tmp_path, server_factory):
    root, outside, canary = make_jail(tmp_path, CANARY)
    (root / "src").mkdir()
    (root / "src" / "s1.txt").write_bytes(b"s1")
    (root / "src" / "s2.txt").write_bytes(b"s2")
    (root / "victim").mkdir()
    (root / "vdoc.txt").write_bytes(b"victim doc")
    os.symlink(outside, root / "link_out")
    os.symlink(canary, root / "link_canary.txt")
    os.symlink("../root2", root / "link_rel")
    os.symlink(outside, root / "real" / "inner")
    os.symlink(canary, root / "real" / "inner_canary.txt")
    server = server_factory.start(root, "--copy-processes", "0", "--token-ttl", "60")
    form = urlencode({"grant_type": "password", "username": "admin", "password": "admin"}).encode()
    anon = Raw(server.base_url)
    r = anon.request("POST", f"{BASE}/Token", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, str(r)
    anon.close()
    http_ = Raw(server.base_url, f"Bearer {r.json()['access_token']}")
    ids = {}
    for name in ("real", "top.txt", "src", "victim", "vdoc.txt"):
        r = http_.request("GET", f"{BASE}/Entries/ByPath?fullPath={enc_std(chr(92) + name)}")
        assert r.status == 200, str(r)
        ids[name] = r.json()["entry"]["id"]
    env = FuzzEnv(tmp_path, root, outside, canary, http_, ids, server)
    env.absolutes = [
        str(canary),
        str(outside),
        str(outside).replace("/", "\\"),
        str(canary).replace("/", "\\"),
        os.path.relpath(canary, root),
        os.path.relpath(canary, root).replace("/", "\\"),
        "/etc/passwd",
        "\\..\\root2\\canary.txt",
        "/../root2/canary.txt",
        "/link_out/canary.txt",
        "\\link_out\\canary.txt",
        "\\real\\inner\\canary.txt",
        "/real/inner/canary.txt",
        "/link_rel/canary.txt",
        "\\link_rel\\canary.txt",
        "/link_canary.txt",
        "\\real\\inner_canary.txt",
    ]
    env.freeze()
    yield env
    http_.close()
    err = server.stderr()
    assert "Traceback" not in err and "unhandled error" not in err, err[-3000:]


def _run_all(env: FuzzEnv, props, client: Raw) -> int:
    """Run each property (a hypothesis-wrapped callable), then the whole-run checks; return the
    number of requests made."""
    for prop in props:
        prop()
    env.check_disk()
    assert env.server.proc.poll() is None, "the server died"
    env.check(client.request("GET", "/healthz"), {200})
    return client.count


def _maybe(flag: str | None, name: str) -> str:
    return f"{name}={flag}" if flag else ""


def _query(*pieces: str) -> str:
    joined = "&".join(p for p in pieces if p)
    return "?" + joined if joined else ""


autos = st.sampled_from([None, "true", "false"])
ID_DECOR = [
    "1/..",
    "1/../2",
    "1%2f..",
    " 1",
    "+1",
    "-1",
    "0",
    "01",
    "0x1",
    "1.0",
    "1e3",
    "\u0967",  # Devanagari digit one
    "\u0661",  # Arabic-Indic digit one
    "2147483648",
    "99999999999999999999",
    "1;2",
    "1,2",
    "{entryId}",
    "ByPath",
    "%7B%7D",
]


def test_fuzz_laserfiche(fuzz_env):
    env, A, ids = fuzz_env, fuzz_env.http, fuzz_env.ids
    per = FUZZ_TOTAL // 12  # six Laserfiche properties, half the total
    s = fuzz_settings(per)

    @s
    @given(path=paths("\\", env.absolutes), enc=encoders, fallback=autos)
    def by_path(path, enc, fallback):
        e = ENCODERS[enc]
        path = fit(path, e)
        r = A.request(
            "GET",
            f"{BASE}/Entries/ByPath"
            + _query("fullPath=" + e(path), _maybe(fallback, "fallbackToClosestAncestor")),
        )
        env.check(r, {200, 400, 404, 414})
        if r.status == 200:
            body = r.json()
            for key in ("entry", "ancestorEntry"):
                if body.get(key):
                    env.lf_entry_inside(body[key])
        env.check_disk()

    id_values = st.one_of(
        names(),
        st.integers(-5, 2**40).map(str),
        st.sampled_from([*sorted(str(i) for i in ids.values()), "1"]),
        st.sampled_from(ID_DECOR),
    )
    suffixes = st.sampled_from(
        [
            "",
            "",
            f"/{CHILDREN}",
            "/Laserfiche.Repository.Document/edoc",
            "/fields",
            "/tags",
            "/links",
            "TASK",
            "TASK/status",
        ]
    )

    @s
    @given(value=id_values, enc=encoders, suffix=suffixes, method=st.sampled_from(["GET", "HEAD"]))
    def id_slot(value, enc, suffix, method):
        e = ENCODERS[enc]
        value = fit(value, e)
        if suffix.startswith("TASK"):
            target = f"{BASE}/Tasks/{e(value)}{suffix[4:]}"
        else:
            target = f"{BASE}/Entries/{e(value)}{suffix}"
        r = env.check(A.request(method, target))
        decoded = url_view(value)
        if 200 <= r.status < 300 and enc != "loose" and not suffix.startswith("TASK"):
            assert decoded.isascii() and decoded.isdigit(), f"a non-number id was served: {r}"
            if method == "GET" and suffix == "":
                env.lf_entry_inside(r.json())
        if suffix.startswith("TASK") and enc != "loose":
            assert r.status in (400, 404), f"a made-up operation token answered: {r}"
        env.check_disk()

    parents = st.sampled_from([1, ids["real"], ids["src"], ids["victim"], ids["vdoc.txt"], 999999])

    @s
    @given(name=names(), parent=parents, auto=autos, ascii_json=st.booleans())
    def create_folder(name, parent, auto, ascii_json):
        r = A.json(
            "POST",
            f"{BASE}/Entries/{parent}/{CHILDREN}{_query(_maybe(auto, 'autoRename'))}",
            {"entryType": "Folder", "name": name},
            ensure_ascii=ascii_json,
        )
        env.check(r, {201, 400, 404, 409})
        seen = server_view(name) if ascii_json or server_view(name) == name else None
        if seen is None or not valid_name(seen):
            assert r.status == 400, f"an invalid name was not refused with 400: {name!r}: {r}"
        if r.status == 201:
            env.lf_entry_inside(r.json())
        env.check_disk()

    @s
    @given(
        name=names(),
        upload_name=st.one_of(
            names(),
            st.sampled_from(
                ["x.pdf", "x.p\r\nX-Injected: 1", "x.\x00", "x./..", "x.\u202egpj", ".htaccess", "a.b.c.d"]
            ),
        ),
        parent=parents,
        auto=autos,
        enc=encoders,
    )
    def import_document(name, upload_name, parent, auto, enc):
        e = ENCODERS[enc]
        name = fit(name, e)
        payload = b"fuzz payload " + uuid.uuid4().hex.encode()
        upload_name = upload_name.replace('"', "'")[:300]
        r = A.multipart(
            "POST",
            f"{BASE}/Entries/{parent}/{e(name)}{_query(_maybe(auto, 'autoRename'))}",
            [("request", None, b"{}"), ("electronicDocument", upload_name, payload)],
        )
        env.check(r)
        seen = url_view(name)
        if enc != "loose" or not any(c in name for c in "/.%"):
            if not valid_name(seen):
                assert not 200 <= r.status < 300, f"an invalid name was imported: {seen!r}: {r}"
        if r.status == 201:
            entry_id = r.json()["operations"]["entryCreate"]["entryId"]
            got = env.check(A.request("GET", f"{BASE}/Entries/{entry_id}"), {200})
            env.lf_entry_inside(got.json())
            down = env.check(
                A.request("GET", f"{BASE}/Entries/{entry_id}/Laserfiche.Repository.Document/edoc")
            )
            assert down.status == 200 and down.body == payload, str(down)
        env.check_disk()

    move_parents = st.one_of(parents, st.integers(-3, 2**33), st.just(None))
    victims = st.sampled_from([ids["victim"], ids["vdoc.txt"]])

    @s
    @given(victim=victims, name=st.one_of(st.none(), names()), parent=move_parents, ascii_json=st.booleans())
    def patch(victim, name, parent, ascii_json):
        body = {}
        if name is not None:
            body["name"] = name
        if parent is not None:
            body["parentId"] = parent
        r = A.json("PATCH", f"{BASE}/Entries/{victim}", body, ensure_ascii=ascii_json)
        env.check(r, {200, 400, 404, 409})
        if name is not None:
            seen = server_view(name) if ascii_json or server_view(name) == name else None
            if seen is None or not valid_name(seen):
                assert r.status == 400, f"an invalid name was not refused with 400: {name!r}: {r}"
        if r.status == 200:
            env.lf_entry_inside(r.json())
        env.check_disk()

    copy_routes = st.sampled_from(
        [f"{CHILDREN}/CopyAsync", "Laserfiche.Repository.Folder/CopyAsync", CHILDREN]
    )

    @s
    @given(
        name=names(),
        parent=parents,
        auto=autos,
        route=copy_routes,
        source=st.sampled_from([ids["src"], ids["top.txt"], ids["real"]]),
    )
    def copy(name, parent, auto, route, source):
        r = A.json(
            "POST",
            f"{BASE}/Entries/{parent}/{route}{_query(_maybe(auto, 'autoRename'))}",
            {"sourceId": source, "name": name},
        )
        env.check(r, {201, 202, 400, 404, 409})
        seen = server_view(name)
        if seen is None or not valid_name(seen):
            assert r.status == 400, f"an invalid name was not refused with 400: {name!r}: {r}"
        if r.status in (201, 202) and "token" in r.json():
            token = r.json()["token"]
            done = env.check(A.request("GET", f"{BASE}/Tasks/{token}/status?wait=20"), {200})
            assert done.json()["status"] == "Succeeded", str(done)
            task = env.check(A.request("GET", f"{BASE}/Tasks/{token}"))
            entry_id = task.json()["entryId"]
            env.lf_entry_inside(env.check(A.request("GET", f"{BASE}/Entries/{entry_id}"), {200}).json())
        elif r.status == 201:
            env.lf_entry_inside(r.json())
        env.check_disk()

    count = _run_all(env, [by_path, id_slot, create_folder, import_document, patch, copy], A)
    print(f"\nlaserfiche fuzz: {count} requests, statuses {sorted(A.statuses.items())}")


def _el_segments_ok(path: str) -> bool:
    """Whether the hub may accept `path` (as the server decodes it): every `/` segment a name."""
    return all(valid_name(s) for s in path.split("/") if s)


def test_fuzz_elements(fuzz_env):
    env, ids = fuzz_env, fuzz_env.ids
    A = Raw(env.server.base_url, HUB_PAIR)
    per = FUZZ_TOTAL // 10  # five Elements properties, half the total
    s = fuzz_settings(per)
    el_paths = paths("/", env.absolutes)

    @s
    @given(
        path=el_paths,
        enc=encoders,
        route=st.sampled_from(["folders/contents", "folders/metadata", "files/metadata", "files", "files"]),
        method=st.sampled_from(["GET", "GET", "HEAD"]),
    )
    def read(path, enc, route, method):
        e = ENCODERS[enc]
        path = fit(path, e)
        r = env.check(A.request(method, f"{EL}/{route}?path={e(path)}"), {200, 400, 404, 414})
        if r.status == 200 and enc != "loose":
            assert _el_segments_ok(url_view(path)), f"an invalid path was served: {r}"
        if r.status == 200 and method == "GET":
            if route == "folders/contents":
                for entry in r.json():
                    env.el_entry_inside(entry)
            elif route.endswith("metadata"):
                env.el_entry_inside(r.json())
        env.check_disk()

    @s
    @given(path=el_paths, enc=encoders, overwrite=autos)
    def upload(path, enc, overwrite):
        e = ENCODERS[enc]
        path = fit(path, e)
        payload = b"hub payload " + uuid.uuid4().hex.encode()
        r = A.multipart(
            "POST",
            f"{EL}/files{_query('path=' + e(path), _maybe(overwrite, 'overwrite'))}",
            [("file", "upload.bin", payload)],
        )
        env.check(r, {200, 400, 404, 409, 414})
        if r.status == 200:
            if enc != "loose":
                assert _el_segments_ok(url_view(path)), f"an invalid path was written: {r}"
            entry = r.json()
            env.el_entry_inside(entry)
            down = env.check(A.request("GET", f"{EL}/files/{entry['id']}"), {200})
            assert down.body == payload, str(down)
        env.check_disk()

    @s
    @given(path=el_paths, name=st.one_of(st.none(), names()), ascii_json=st.booleans())
    def create_folder(path, name, ascii_json):
        body = {"path": path} if name is None else {"path": path, "name": name}
        r = A.json("POST", f"{EL}/folders", body, ensure_ascii=ascii_json)
        env.check(r, {200, 400, 404, 409})
        if r.status == 200:
            seen = server_view(path)
            assert seen is not None and _el_segments_ok(seen.rsplit("/", 1)[0] if name else seen), str(r)
            if name is not None:
                assert server_view(name) is not None and valid_name(server_view(name)), str(r)
            env.el_entry_inside(r.json())
        env.check_disk()

    @s
    @given(
        kind=st.sampled_from(["folders", "files"]),
        source=st.one_of(st.sampled_from(["/src", "/top.txt", "/real", "/real/r.txt"]), el_paths),
        enc=encoders,
        dest=el_paths,
        name=st.one_of(st.none(), names()),
    )
    def copy(kind, source, enc, dest, name):
        e = ENCODERS[enc]
        source = fit(source, e)
        body = {"path": dest} if name is None else {"path": dest, "name": name}
        r = A.json("POST", f"{EL}/{kind}/copy?path={e(source)}", body)
        env.check(r, {200, 400, 404, 409, 414})
        if r.status == 200:
            if name is not None:
                assert server_view(name) is not None and valid_name(server_view(name)), str(r)
            if enc != "loose":
                assert _el_segments_ok(url_view(source)), str(r)
            env.el_entry_inside(r.json())
        env.check_disk()

    @s
    @given(
        target=st.sampled_from([f"folders/{ids['victim']}", f"files/{ids['vdoc.txt']}"]),
        path=st.one_of(st.none(), el_paths),
        name=st.one_of(st.none(), names()),
        ascii_json=st.booleans(),
    )
    def patch(target, path, name, ascii_json):
        body = {k: v for k, v in (("path", path), ("name", name)) if v is not None}
        r = A.json("PATCH", f"{EL}/{target}/metadata", body, ensure_ascii=ascii_json)
        env.check(r, {200, 400, 404, 409})
        if r.status == 200:
            if name is not None:
                assert server_view(name) is not None and valid_name(server_view(name)), str(r)
            env.el_entry_inside(r.json())
        env.check_disk()

    try:
        count = _run_all(env, [read, upload, create_folder, copy, patch], A)
    finally:
        A.close()
    print(f"\nelements fuzz: {count} requests, statuses {sorted(A.statuses.items())}")


# --------------------------------------------------------------------------- 3. schemathesis
#
# One campaign per module over /openapi.json of a live subprocess; the tests below read its results.
# Checks run: not_a_server_error, status_code_conformance, content_type_conformance,
# response_schema_conformance, response_headers_conformance. Left out, and why:
# - positive_data_acceptance: a schema-valid request to a file server is legitimately 404 (no such
#   entry or token) or 409 (name taken) most of the time; the state decides, not the schema.
# - negative_data_rejection: a negative case is often still acceptable to a lenient server (unknown
#   query parameters and extra JSON fields are ignored, as the real APIs do).
# - use_after_free / ensure_resource_availability: stateful link checks; deletes here are long
#   operations (202 + token), so "gone right after DELETE" does not hold by design.
# - ignored_auth / missing_required_header: the guard test above covers auth on every route, both
#   dialects, more strictly; unsupported_method: aiohttp adds HEAD to every GET (undocumented but
#   correct); max_response_time: the machine is shared, timings are not a conformance property.

# examples per operation: two thirds schema-valid (positive), one third schema-invalid (negative)
SCHEMA_EXAMPLES = int(os.environ.get("SANDBOX_SCHEMA_EXAMPLES", "20"))
# known defects, (METHOD, path template, status, failure title), left out of the general
# conformance test until fixed (none now: the two found, below, were fixed in the description)
KNOWN_SCHEMA_DEFECTS: set[tuple[str, str, int, str]] = set()


@dataclass
class Campaign:
    cases: int = 0
    operations: int = 0
    statuses: dict = field(default_factory=dict)
    # (METHOD, path, status, failure title) -> (message, curl)
    failures: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    server_log_errors: list = field(default_factory=list)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    root = tmp / "root"
    (root / "Docs" / "Sub").mkdir(parents=True)
    (root / "Docs" / "a.txt").write_bytes(b"alpha")
    (root / "Docs" / "Sub" / "b.txt").write_bytes(b"beta")
    (root / "Welcome.txt").write_bytes(b"hello")
    factory = ServerFactory(tmp)
    try:
        result = _run_campaign(factory, root)
    finally:
        factory.cleanup()
    print(
        f"\nschemathesis: {result.cases} generated cases over {result.operations} operations "
        f"in {result.seconds:.1f}s; statuses {sorted(result.statuses.items())}; "
        f"{len(result.failures)} distinct failures; skipped {result.skipped}"
    )
    return result


def _run_campaign(factory: ServerFactory, root: Path) -> Campaign:
    import requests
    import schemathesis
    from hypothesis import Phase
    from hypothesis.reporting import with_reporter
    from schemathesis import GenerationMode
    from schemathesis import checks as sc
    from schemathesis.core.failures import FailureGroup

    server = factory.start(root, "--copy-processes", "0", "--token-ttl", "60")
    base = server.base_url
    session = requests.Session()
    token = {"value": ""}

    def sign_in_again():
        r = session.post(
            f"{base}{BASE}/Token", data={"grant_type": "password", "username": "admin", "password": "admin"}
        )
        assert r.status_code == 200, r.text
        token["value"] = r.json()["access_token"]

    def authorization(path: str) -> str:
        if path.startswith("/elements/api-v2/instances/events"):
            return HUB_PAIR
        if path.startswith("/elements/api-v2/instances"):
            return PLATFORM_PAIR
        if path.startswith("/elements/"):
            return HUB_PAIR
        return f"Bearer {token['value']}"  # Laserfiche and /sandbox/ (either dialect: the bearer)

    sign_in_again()
    # a second instance, so that DELETE /instances/{id} has something to remove (instance 1 is the
    # default one every hub request here signs in with: it is not deleted)
    session.post(
        f"{base}/elements/api-v2/instances",
        json={"name": "spare", "element": {"key": "documents"}},
        headers={"Authorization": PLATFORM_PAIR},
    ).raise_for_status()
    result = Campaign()
    checks = [
        sc.not_a_server_error,
        sc.status_code_conformance,
        sc.content_type_conformance,
        sc.response_schema_conformance,
        sc.response_headers_conformance,
    ]

    def make_run(method: str, path: str, strategy, examples: int):
        @hsettings(
            max_examples=examples,
            derandomize=DERANDOMIZE,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def run(case):
            headers = {"Authorization": authorization(path)}
            result.cases += 1
            try:
                response = case.call(base_url=base, session=session, headers=headers, timeout=30)
            except requests.RequestException as exc:
                result.failures[(method, path, 0, "Connection failed")] = (repr(exc), "")
                return
            result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    key = (method, path, response.status_code, failure.title)
                    if key not in result.failures:
                        result.failures[key] = (str(group)[:3000], case.as_curl_command(headers=headers))
            if response.status_code == 401 and "Bearer" in headers["Authorization"]:
                sign_in_again()  # a case may expire its own session (POST /sandbox/faults)

        return run

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    started = time.monotonic()
    for found in schema.get_all_operations():
        op = found.ok()
        method, path = op.method.upper(), op.path
        if path == "/sandbox/events":
            result.skipped.append(f"{method} {path} (an endless event stream)")
            continue
        result.operations += 1
        pinned = {"repoId": REPO_ID_FOR_SCHEMA} if "{repoId}" in path else {}
        if method == "DELETE" and path.endswith("/instances/{instanceId}"):
            pinned["instanceId"] = 2
        query = {"wait": "0.5"} if "/Tasks/" in path else None  # the long poll, bounded
        for mode, share in ((GenerationMode.POSITIVE, 2 / 3), (GenerationMode.NEGATIVE, 1 / 3)):
            strategy = op.as_strategy(generation_mode=mode, path_parameters=pinned or None, query=query)
            try:
                # (failures are collected by the run itself: hypothesis has nothing to report)
                with with_reporter(lambda _message: None):
                    make_run(method, path, strategy, max(2, round(SCHEMA_EXAMPLES * share)))()
            except Exception as exc:
                # nothing to generate for this mode (a negative case of a route without parameters)
                if "Unsatisfiable" not in type(exc).__name__:
                    raise
                result.skipped.append(f"{method} {path} {mode.value}: nothing to generate")
    result.seconds = time.monotonic() - started
    session.close()
    err = server.stderr()
    result.server_log_errors = [
        line for line in err.splitlines() if "unhandled error" in line or "Traceback" in line
    ]
    return result


REPO_ID_FOR_SCHEMA = "r-sandbox"


def _report(failures: dict) -> str:
    return "\n\n".join(f"{key}\n{message}\nreproduce: {curl}" for key, (message, curl) in failures.items())


def test_schemathesis_no_server_errors(campaign):
    server_side = ("Server error", "Connection failed")
    errors = {k: v for k, v in campaign.failures.items() if k[2] >= 500 or k[3] in server_side}
    print(f"\nschemathesis: {campaign.cases} generated cases, {len(errors)} server errors")
    assert campaign.cases >= campaign.operations * 2
    assert not errors, _report(errors)
    assert not campaign.server_log_errors, campaign.server_log_errors


def test_schemathesis_responses_conform(campaign):
    unknown = {k: v for k, v in campaign.failures.items() if k not in KNOWN_SCHEMA_DEFECTS}
    print(f"\nschemathesis: {campaign.cases} generated cases, {len(unknown)} new non-conforming responses")
    assert not unknown, _report(unknown)


IMPORT = "/v1/Repositories/{repoId}/Entries/{entryId}/{fileName}"
EDOC_ROUTE = "/v1/Repositories/{repoId}/Entries/{entryId}/Laserfiche.Repository.Document/edoc"
FILES = "/elements/api-v2/hubs/documents/files"
DOWNLOADS = (EDOC_ROUTE, FILES + "/{id}", FILES)


async def _declared(client, path: str, method: str, status: int) -> set[str]:
    spec = await (await client.get("/openapi.json")).json()
    return set(spec["paths"][path][method.lower()]["responses"][str(status)]["content"])


def _covers(declared: set[str], content_type: str) -> bool:
    """Whether one of the declared media ranges (`*/*`, `text/*`, `text/plain`) covers a type."""
    major = content_type.split("/")[0]
    return bool({content_type, f"{major}/*", "*/*"} & declared)


async def test_import_400_content_type_is_documented(api):
    """Deterministic reproduction of what schemathesis reports as ST105 on the import route."""
    resp = await api.import_doc(1, "a:b.txt", b"data")
    assert resp.status == 400
    assert _covers(await _declared(api.client, IMPORT, "POST", 400), resp.content_type), resp.content_type


async def test_download_content_type_is_documented(api):
    entry_id = await api.upload(1, "note.txt", b"hello")
    undocumented = []
    for method, url, template in (
        ("GET", api.url(f"/Entries/{entry_id}/Laserfiche.Repository.Document/edoc"), EDOC_ROUTE),
        ("GET", f"/elements/api-v2/hubs/documents/files/{entry_id}", DOWNLOADS[1]),
        ("GET", "/elements/api-v2/hubs/documents/files?path=/note.txt", DOWNLOADS[2]),
    ):
        headers = {"Authorization": HUB_PAIR if url.startswith("/elements") else f"Bearer {api.token}"}
        resp = await api.client.request(method, url, headers=headers)
        await resp.read()
        assert resp.status == 200
        if not _covers(await _declared(api.client, template, method, 200), resp.content_type):
            undocumented.append((method, url, resp.content_type))
    assert not undocumented, undocumented
