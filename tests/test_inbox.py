"""The webhook inbox (`/sandbox/inbox/{name}`), over real sockets.

The server posts its webhooks to its own inbox (the in-process server of `aiohttp_client`, or a
`python -m server` subprocess), or a test posts to it by hand with signatures it computes itself:
the Elements one with hmac (tests/webhook_receiver.py) and the Standard Webhooks one with the
reference package, so that "verified" means what a real receiver would conclude.

Sources: CONTRACT.md "Sandbox extras", issue 16 item 3.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import standardwebhooks
from conftest import PROBLEM_KEYS, ServerFactory, make_settings, sign_in
from sse_client import open_stream
from test_webhooks import FAST, KEY, SEED_BODY, SEED_EVENTS, El, dispatched
from webhook_receiver import (
    ELEMENT_TOKEN,
    ELEMENTS_SETTINGS,
    HUB,
    USER_SECRET,
    elements_signature,
)

from server.app import create_app
from server.inbox import MAX_HELD_BYTES, MAX_INBOXES, MAX_PER_INBOX
from server.keys import inbox_key

DELIVERY_KEYS = {
    "id",
    "receivedAt",
    "method",
    "headers",
    "body",
    "bodyEncoding",
    "json",
    "instanceId",
    "answeredStatus",
    "verified",
    "signatures",
}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
USERS = (("admin", "admin"), ("alice", "alice"))


@dataclass
class Env:
    client: Any  # aiohttp's TestClient
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def el(self) -> El:
        return El(self.client.session, str(self.client.make_url("/")).rstrip("/"))

    def url(self, name: str, query: str = "") -> str:
        return str(self.client.make_url(f"/sandbox/inbox/{name}")) + query

    async def post(
        self, name: str, body: bytes = b"{}", headers: dict[str, str] | None = None, **params: str
    ):
        resp = await self.client.post(
            f"/sandbox/inbox/{name}", data=body, headers=headers or {}, params=params
        )
        await resp.read()
        return resp

    async def read(self, name: str, **params: str) -> list[dict[str, Any]]:
        resp = await self.client.get(f"/sandbox/inbox/{name}", headers=self.auth, params=params)
        text = await resp.text()
        assert resp.status == 200, text
        answer = json.loads(text)
        assert answer["name"] == name
        for delivery in answer["deliveries"]:
            assert set(delivery) == DELIVERY_KEYS, delivery
            assert ISO_UTC.fullmatch(delivery["receivedAt"]), delivery
        return list(answer["deliveries"])

    async def problem(self, method: str, path: str, status: int = 400, **kw: Any) -> dict[str, Any]:
        resp = await self.client.request(method, path, headers=kw.pop("headers", self.auth), **kw)
        text = await resp.text()
        assert resp.status == status, text
        assert resp.content_type == "application/problem+json", text
        body = json.loads(text)
        assert PROBLEM_KEYS <= set(body) and body["status"] == status, body
        return dict(body)


async def open_env(aiohttp_client, storage_root: Path, **overrides: Any) -> Env:
    settings = make_settings(storage_root, users=USERS, **{**ELEMENTS_SETTINGS, **FAST, **overrides})
    client = await aiohttp_client(create_app(settings))
    return Env(client, await sign_in(client))


def signed(body: bytes, key: str = KEY, message_id: str = "msg_1", at: float | None = None) -> dict[str, str]:
    """Both schemes' headers for `body`, computed here (hmac, and the reference package)."""
    stamp = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return {
        "Content-Type": "application/json",
        "Elements-Webhook-Signature": elements_signature(key, body),
        "webhook-id": message_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(key.encode()).sign(message_id, stamp, body),
    }


def verdict(delivery: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
    """verified, and (present, valid) of each scheme."""
    sigs = delivery["signatures"]
    return (
        delivery["verified"],
        sigs["elements"]["present"],
        sigs["elements"]["valid"],
        sigs["standard"]["present"],
        sigs["standard"]["valid"],
    )


def seed_root(storage_root: Path) -> bytes:
    """The seed's source folder in the storage root; its file's bytes."""
    source = storage_root / "TestFolderCreate"
    source.mkdir()
    content = b"This is a test upload file.\n"
    (source / "testUploadFile.txt").write_bytes(content)
    return content


async def seed_copy(el: El, callback: str, token: str = ELEMENT_TOKEN) -> int:
    """The seed's asynchronous copy, as written; its eventId."""
    r = await el.call(
        "POST",
        HUB + "/folders/copy",
        auth={"Authorization": f"User {USER_SECRET}, Element {token}"},
        params={"path": "/TestFolderCreate"},
        headers={
            "Content-Type": "application/json",
            "Elements-Async-Request": "True",
            **({"Elements-Async-Callback-Url": callback} if callback else {}),
        },
        body=SEED_BODY,
    )
    return dispatched(r)


def assert_really_signed(delivery: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    """The recorded body and headers verify here too (so the inbox kept them byte for byte)."""
    assert delivery["bodyEncoding"] == "utf-8"
    raw = delivery["body"].encode()
    headers = delivery["headers"]
    assert headers["Elements-Webhook-Signature"] == elements_signature(key, raw)
    payload = standardwebhooks.Webhook(key.encode()).verify(raw, headers)
    assert payload == delivery["json"] == json.loads(raw)
    return dict(payload)


# --------------------------------------------------------------------------- the seed's example


async def test_seed_example_lands_in_the_inbox_with_both_signatures_verified(aiohttp_client, storage_root):
    content = seed_root(storage_root)
    env = await open_env(aiohttp_client, storage_root)
    # the server reports to itself: its own inbox is the callback
    event_id = await seed_copy(env.el, env.url("demo"))

    [delivery] = await env.read("demo", wait="10")
    assert delivery["id"] == 1
    assert delivery["method"] == "POST"
    assert delivery["answeredStatus"] == 200
    assert delivery["instanceId"] == 1
    assert verdict(delivery) == (True, True, True, True, True)
    payload = assert_really_signed(delivery)
    assert payload["eventId"] == event_id
    assert payload["response"] == {"events": SEED_EVENTS}
    assert delivery["headers"]["Elements-Webhook-Id"] == str(payload["notificationId"])
    assert (storage_root / "TestFolderCopy" / "testUploadFile.txt").read_bytes() == content

    # the platform saw its webhook answered 200 by the inbox
    ev = await env.el.wait_event(
        event_id, lambda e: e["deliveries"] and e["deliveries"][-1]["status"] == "delivered", "delivered"
    )
    assert [a["statusCode"] for a in ev["deliveries"][-1]["attempts"]] == [200]


def test_seed_example_against_python_m_server_with_its_defaults(server_factory: ServerFactory, tmp_path):
    """The README's way: a real server on its default credentials and key, the inbox as callback."""
    root = tmp_path / "root"
    root.mkdir()
    seed_root(root)
    server = server_factory.start(root, "--copy-processes", "0")
    hub = {"Authorization": "User sandbox-user-secret, Element sandbox-element-token"}

    async def run() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            token = await _token(http, server.base_url)
            async with http.post(
                f"{server.base_url}{HUB}/folders/copy",
                params={"path": "/TestFolderCreate"},
                json=SEED_BODY,
                headers={
                    **hub,
                    "Elements-Async-Request": "True",
                    "Elements-Async-Callback-Url": f"{server.base_url}/sandbox/inbox/demo",
                },
            ) as resp:
                assert resp.status == 202, await resp.text()
            url = f"{server.base_url}/sandbox/inbox/demo?wait=10"
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200, await resp.text()
                return dict(await resp.json())

    answer = asyncio.run(run())
    [delivery] = answer["deliveries"]
    assert verdict(delivery) == (True, True, True, True, True)
    assert_really_signed(delivery, key="sandbox-signature-key")
    assert server.stop() == 0


async def _token(http: aiohttp.ClientSession, base_url: str) -> str:
    form = {"grant_type": "password", "username": "admin", "password": "admin"}
    async with http.post(f"{base_url}/v1/Repositories/r-sandbox/Token", data=form) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["access_token"])


# --------------------------------------------------------------------------- verdicts


async def test_signatures_tampered_wrong_key_missing_stale_and_partial(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    body = b'{"eventId": 7, "response": {"events": []}}'
    cases: list[tuple[str, bytes, dict[str, str], tuple[Any, ...]]] = [
        ("signed", body, signed(body), (True, True, True, True, True)),
        ("tampered", body.replace(b"7", b"8"), signed(body), (False, True, False, True, False)),
        ("wrong key", body, signed(body, key="not-the-key"), (False, True, False, True, False)),
        ("unsigned", body, {"Content-Type": "application/json"}, (None, False, None, False, None)),
        # one scheme alone decides; one bad scheme beside a good one fails the whole
        (
            "elements only",
            body,
            {"Elements-Webhook-Signature": elements_signature(KEY, body)},
            (True, True, True, False, None),
        ),
        (
            "standard only",
            body,
            {k: v for k, v in signed(body).items() if k.startswith("webhook-")},
            (True, False, None, True, True),
        ),
        (
            "good elements, bad standard",
            body,
            signed(body) | {"webhook-id": "another-id"},
            (False, True, True, True, False),
        ),
        # a replay: a right signature over a timestamp ten minutes old
        ("stale", body, signed(body, at=time.time() - 600), (False, True, True, True, False)),
        ("future", body, signed(body, at=time.time() + 600), (False, True, True, True, False)),
        (
            "several signatures, one right",
            body,
            signed(body)
            | {"webhook-signature": "v1,bm90LWl0 " + signed(body)["webhook-signature"] + " v2,whatever"},
            (True, True, True, True, True),
        ),
        (
            "unreadable timestamp",
            body,
            signed(body) | {"webhook-timestamp": "soon"},
            (False, True, True, True, False),
        ),
    ]
    for label, sent, headers, _ in cases:
        resp = await env.post("checks", sent, headers)
        assert resp.status == 200, label
    found = await env.read("checks")
    assert [d["id"] for d in found] == list(range(1, len(cases) + 1))
    for (label, sent, _, expected), delivery in zip(cases, found, strict=True):
        assert verdict(delivery) == expected, (label, delivery)
        assert delivery["body"].encode() == sent, label
        assert delivery["json"] == json.loads(sent), label
        assert delivery["instanceId"] is None, label


async def test_bodies_that_are_not_json_or_not_text(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    binary = bytes(range(256))
    await env.post("raw", binary, signed(binary))
    await env.post("raw", b"plain words", {"Content-Type": "text/plain"})
    await env.post("raw", b"")
    await env.post("raw", b'[1, "two", {"instanceId": 2}]')
    first, text, empty, array = await env.read("raw")
    assert first["bodyEncoding"] == "base64"
    assert base64.b64decode(first["body"]) == binary
    assert first["json"] is None
    assert verdict(first) == (True, True, True, True, True)  # signatures are over bytes, not text
    assert (text["body"], text["bodyEncoding"], text["json"]) == ("plain words", "utf-8", None)
    assert (empty["body"], empty["json"], empty["verified"]) == ("", None, None)
    # instanceId is read from an object only
    assert array["json"] == [1, "two", {"instanceId": 2}] and array["instanceId"] is None
    assert text["headers"]["Content-Type"] == "text/plain"


async def test_a_non_default_instance_is_checked_with_its_own_key(aiohttp_client, storage_root):
    seed_root(storage_root)
    env = await open_env(aiohttp_client, storage_root)
    other = "another-instance-key"
    created = (await env.el.create_instance("mine", env.url("mine"), other)).json()
    assert created["id"] != 1

    # its webhook (to its configured URL: no callback header), signed with its key
    event_id = await seed_copy(env.el, "", token=created["token"])
    [delivery] = await env.read("mine", wait="10")
    assert delivery["instanceId"] == created["id"]
    assert verdict(delivery) == (True, True, True, True, True)
    assert assert_really_signed(delivery, key=other)["eventId"] == event_id

    # a body naming that instance is checked against its key, not the default one's
    body = json.dumps({"instanceId": created["id"], "eventId": 1}).encode()
    await env.post("mine", body, signed(body, key=other))
    await env.post("mine", body, signed(body, key=KEY))
    # an instance that does not exist has no key: nothing verifies
    ghost = json.dumps({"instanceId": 999, "eventId": 1}).encode()
    await env.post("mine", ghost, signed(ghost, key=KEY))
    # a body naming the default instance, or none, or not as an integer: the default key
    for named in ({"instanceId": 1}, {}, {"instanceId": "2"}, {"instanceId": True}):
        plain = json.dumps(named).encode()
        await env.post("mine", plain, signed(plain, key=KEY))
    own, default, ghosted, *defaults = await env.read("mine", after="1")
    assert (own["instanceId"], own["verified"]) == (created["id"], True)
    assert (default["instanceId"], default["verified"]) == (created["id"], False)
    assert (ghosted["instanceId"], ghosted["verified"]) == (999, False)
    assert [(d["instanceId"], d["verified"]) for d in defaults] == [
        (1, True),
        (None, True),
        (None, True),
        (None, True),
    ]


# --------------------------------------------------------------------------- reading


async def test_wait_holds_until_a_delivery_and_after_lists_only_newer(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    loop = asyncio.get_running_loop()

    # nothing there: held for the time asked, then empty
    started = loop.time()
    assert await env.read("later", wait="0.5") == []
    assert loop.time() - started >= 0.45

    # held, and woken by a delivery (well before its 20 s)
    started = loop.time()
    reader = asyncio.create_task(env.read("later", wait="20"))
    await asyncio.sleep(0.3)
    assert not reader.done()
    await env.post("elsewhere", b'{"n": 0}')  # (another inbox wakes nobody here)
    await asyncio.sleep(0.2)
    assert not reader.done()
    resp = await env.post("later", b'{"n": 1}')
    assert resp.status == 200
    [first] = await asyncio.wait_for(reader, 5)
    assert first["json"] == {"n": 1} and loop.time() - started < 5

    for n in (2, 3, 4):
        await env.post("later", json.dumps({"n": n}).encode())
    assert [d["json"]["n"] for d in await env.read("later", after="2")] == [3, 4]
    assert [d["id"] for d in await env.read("later", after="0")] == [1, 2, 3, 4]
    assert await env.read("later", after="4") == []

    # waiting after the newest: held until a newer one, which alone is listed
    reader = asyncio.create_task(env.read("later", after="4", wait="20"))
    await asyncio.sleep(0.2)
    assert not reader.done()
    await env.post("later", b'{"n": 5}')
    assert [d["id"] for d in await asyncio.wait_for(reader, 5)] == [5]
    # something there already: no wait at all
    started = loop.time()
    assert len(await env.read("later", wait="20")) == 5
    assert loop.time() - started < 2


async def test_list_delete_unknown_and_credentials(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    assert await env.read("never-used") == []
    for name in ("a", "b", "a"):
        assert (await env.post(name)).status == 200
    resp = await env.client.get("/sandbox/inbox", headers=env.auth)
    listing = (await resp.json())["value"]
    assert [(i["name"], i["count"]) for i in listing] == [("b", 1), ("a", 2)]
    assert all(ISO_UTC.fullmatch(i["lastReceivedAt"]) for i in listing)

    # emptied: gone from the list, and it numbers from 1 again
    resp = await env.client.delete("/sandbox/inbox/a", headers=env.auth)
    assert resp.status == 204
    assert await env.read("a") == []
    resp = await env.client.get("/sandbox/inbox", headers=env.auth)
    assert [i["name"] for i in (await resp.json())["value"]] == ["b"]
    resp = await env.post("a")
    assert await resp.json() == {"id": 1}
    # (and deleting an unknown one is no error)
    assert (await env.client.delete("/sandbox/inbox/nothing", headers=env.auth)).status == 204

    # delivering needs no credentials; reading, listing and emptying do (any signed-in user)
    for method, path in (
        ("GET", "/sandbox/inbox/a"),
        ("DELETE", "/sandbox/inbox/a"),
        ("GET", "/sandbox/inbox"),
    ):
        await env.problem(method, path, 401, headers={})
    alice = await sign_in(env.client, "alice", "alice")
    resp = await env.client.get("/sandbox/inbox/a", headers={"Authorization": f"Bearer {alice}"})
    assert resp.status == 200 and len((await resp.json())["deliveries"]) == 1
    assert len(await env.read("a")) == 1


async def test_bad_names_and_parameters_are_400s_that_change_nothing(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    await env.post("ok")
    bad_names = ["x" * 65, "a%20b", "caf%C3%A9", "a%2Fb", "a%00", "%2A"]
    for name in bad_names:
        for method in ("POST", "GET", "DELETE"):
            body = await env.problem(method, f"/sandbox/inbox/{name}")
            assert "name" in body["detail"], body
    # the longest name there may be is fine
    assert (await env.post("x" * 64)).status == 200
    for params in (
        {"wait": "61"},
        {"wait": "-1"},
        {"wait": "soon"},
        {"wait": "1e3"},
        {"after": "-1"},
        {"after": "x"},
    ):
        body = await env.problem("GET", "/sandbox/inbox/ok", params=params)
        assert next(iter(params)) in body["detail"], body
    for status in ("199", "600", "2000", "abc", "", "-200", "+200"):
        body = await env.problem("POST", "/sandbox/inbox/ok", params={"status": status}, headers={})
        assert "status" in body["detail"], body
    # none of those was recorded
    assert [d["id"] for d in await env.read("ok")] == [1]
    resp = await env.client.get("/sandbox/inbox", headers=env.auth)
    assert sorted(i["name"] for i in (await resp.json())["value"]) == ["ok", "x" * 64]


async def test_a_body_over_one_mib_is_413_and_not_recorded(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    limit = 1024 * 1024
    over = io.BytesIO(b"x" * (limit + 1))  # (a stream: aiohttp warns of large raw bytes)
    await env.problem("POST", "/sandbox/inbox/big", 413, data=over, headers={})

    async def chunked():  # (no Content-Length: found too large as it is read)
        for _ in range(2):
            yield b"x" * (limit // 2 + 1)

    await env.problem("POST", "/sandbox/inbox/big", 413, data=chunked(), headers={})
    assert await env.read("big") == []
    whole = json.dumps({"pad": "y" * (limit - 20)}).encode()
    assert len(whole) <= limit
    resp = await env.post("big", whole, signed(whole))
    assert resp.status == 200
    [delivery] = await env.read("big")
    # (examined off the event loop, and verified all the same)
    assert len(delivery["body"]) == len(whole) and delivery["verified"] is True


# --------------------------------------------------------------------------- answering as asked


async def test_status_answers_as_asked_and_the_platform_retries_into_the_inbox(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root, webhook_retries=2, webhook_backoff_s=0.05)
    # by hand: each status answered, and recorded
    resp = await env.post("asked", b"{}", status="202")
    assert (resp.status, await resp.json()) == (202, {"id": 1})
    resp = await env.post("asked", b"{}", status="204")
    assert resp.status == 204 and await resp.read() == b""
    resp = await env.post("asked", b"{}", status="503")
    assert resp.status == 503 and resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["id"] == 3 and problem["status"] == 503 and PROBLEM_KEYS <= set(problem)
    assert [d["answeredStatus"] for d in await env.read("asked")] == [202, 204, 503]

    # the platform's webhook, refused with 503 each time: retried, then queued; the inbox saw each try
    seed_root(storage_root)
    event_id = await seed_copy(env.el, env.url("retry", "?status=503"))
    ev = await env.el.wait_event(
        event_id, lambda e: e["deliveries"] and e["deliveries"][-1]["status"] == "queued", "queued"
    )
    attempts = ev["deliveries"][-1]["attempts"]
    assert [a["statusCode"] for a in attempts] == [503, 503, 503]
    tries = await env.read("retry")
    assert [d["answeredStatus"] for d in tries] == [503, 503, 503]
    assert all(d["verified"] is True for d in tries)
    # the same notification each time, signed anew for each attempt
    assert len({d["headers"]["webhook-id"] for d in tries}) == 1
    assert all(assert_really_signed(d)["eventId"] == event_id for d in tries)


# --------------------------------------------------------------------------- bounds and the feed


async def test_bounds_on_deliveries_inboxes_and_bytes(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    inbox = env.client.server.app[inbox_key]
    for n in range(MAX_PER_INBOX + 5):
        assert (await env.post("many", json.dumps({"n": n}).encode())).status == 200
    kept = await env.read("many")
    assert len(kept) == MAX_PER_INBOX
    assert [d["json"]["n"] for d in kept] == list(range(5, MAX_PER_INBOX + 5))
    assert (kept[0]["id"], kept[-1]["id"]) == (6, MAX_PER_INBOX + 5)

    # a hundred inboxes: a new one drops the one that heard nothing for longest ("many" is heard
    # from again, so "box-0" goes first)
    for i in range(MAX_INBOXES - 1):
        await env.post(f"box-{i}")
    await env.post("many")
    await env.post("one-more")
    resp = await env.client.get("/sandbox/inbox", headers=env.auth)
    names = [i["name"] for i in (await resp.json())["value"]]
    assert len(names) == MAX_INBOXES and "box-0" not in names and "box-1" in names
    assert names[-2:] == ["many", "one-more"]
    assert await env.read("box-0") == []

    # the bytes held: the oldest deliveries of all go first
    inbox.clear()
    assert inbox.held_bytes == 0
    big = b"[" + b"1," * (512 * 1024 - 2) + b"1]"  # (just under) 1 MiB of JSON
    count = MAX_HELD_BYTES // len(big) + 3
    for i in range(count):
        await env.post(f"heavy-{i % 2}", big)
    assert inbox.held_bytes <= MAX_HELD_BYTES
    held = [d["id"] for d in await env.read("heavy-0")] + [d["id"] for d in await env.read("heavy-1")]
    assert MAX_HELD_BYTES // len(big) - 1 <= len(held) < count
    # (the first two of "heavy-0", the oldest of all, went)
    assert (await env.read("heavy-0"))[0]["id"] > 1


async def test_clear_empties_every_inbox(aiohttp_client, storage_root):
    """What `POST /sandbox/reset` calls: every inbox empty, numbering from 1 again."""
    env = await open_env(aiohttp_client, storage_root)
    for name in ("one", "two", "two"):
        await env.post(name)
    env.client.server.app[inbox_key].clear()
    assert await env.read("one") == [] and await env.read("two") == []
    resp = await env.client.get("/sandbox/inbox", headers=env.auth)
    assert (await resp.json())["value"] == []
    assert await (await env.post("two")).json() == {"id": 1}


async def test_each_arrival_is_an_inbox_event_on_the_stream_for_every_user(aiohttp_client, storage_root):
    env = await open_env(aiohttp_client, storage_root)
    alice = await sign_in(env.client, "alice", "alice")
    body = b'{"hello": "stream"}'
    async with (
        open_stream(env.client, env.auth) as admin_stream,
        open_stream(env.client, {"Authorization": f"Bearer {alice}"}) as alice_stream,
    ):
        await env.post("live", body, signed(body))
        await env.post("live", body)
        for stream in (admin_stream, alice_stream):
            seen = await stream.until(
                lambda m: m.event == "inbox" and m.data["id"] == 2, "the second arrival"
            )
            inbox_events = [m.data for m in seen if m.event == "inbox"]
            assert inbox_events == [
                {"name": "live", "id": 1, "verified": True},
                {"name": "live", "id": 2, "verified": None},
            ]


# --------------------------------------------------------------------------- stopping


def test_a_held_reader_is_answered_when_the_server_stops(server_factory: ServerFactory, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    server = server_factory.start(root)

    async def run() -> tuple[int, dict[str, Any], float]:
        async with aiohttp.ClientSession() as http:
            token = await _token(http, server.base_url)
            url = f"{server.base_url}/sandbox/inbox/quiet?wait=60"

            async def read() -> tuple[int, dict[str, Any]]:
                async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                    return resp.status, dict(await resp.json())

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.5)
            assert not reader.done()
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            status, body = await asyncio.wait_for(reader, 10)
            return status, body, time.monotonic() - started

    status, body, took = asyncio.run(run())
    assert (status, body) == (200, {"name": "quiet", "deliveries": []})
    assert took < 3, took
    assert server.proc.wait(timeout=10) == 0  # (one signal: a second one means "exit at once")


@pytest.mark.parametrize("name", ["demo", "A.b_c-9", "..."])
async def test_names_of_every_allowed_character(aiohttp_client, storage_root, name):
    env = await open_env(aiohttp_client, storage_root)
    resp = await env.client.post(f"/sandbox/inbox/{name}", data=b"{}")
    assert resp.status == 200, await resp.text()
    assert len(await env.read(name)) == 1
