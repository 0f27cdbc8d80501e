"""Elements dialect: asynchronous copy and delete with signed webhooks, over real sockets.

Every test runs the server on 127.0.0.1 (in process through `aiohttp_client`, or as a
`python -m server` subprocess for the restart test) and a real webhook receiver
(tests/webhook_receiver.py) that records each request's raw body and headers and answers as told:
an error for its first N requests, a hang, or no listener at all (a closed port).

Sources: CONTRACT.md "Elements dialect", seeds/000 (the asynchronous copy example, reproduced as
written), and the implementation's decisions (signature vector, settings, event record shape).
Timings are configured short (backoff 0.05-0.2 s, timeout 0.5 s); every wait is a poll with a
deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import standardwebhooks
from conftest import PROBLEM_KEYS, disk_tree, make_settings, part_files, tree_snapshot
from multidict import CIMultiDictProxy
from webhook_receiver import (
    ELEMENT_TOKEN,
    ELEMENTS,
    ELEMENTS_SETTINGS,
    HUB,
    ORG_SECRET,
    USER_SECRET,
    Received,
    closed_port,
    elements_signature,
    hub_auth,
    platform_auth,
    wait_for,
)

from server.app import create_app

KEY = "test-signature-key"
# short timings for in-process servers; tests override what they exercise
FAST: dict[str, Any] = {
    "webhook_retries": 2,
    "webhook_backoff_s": 0.05,
    "webhook_timeout_s": 0.5,
    "copy_processes": 0,
    "signature_key": KEY,
}
# how long a test watches for a webhook that must NOT come
QUIET_S = 0.3
ASYNC = {"Elements-Async-Request": "True"}
WEBHOOK_KEYS = {"eventId", "instanceId", "response", "notificationId"}
EVENT_KEYS = {
    "id",
    "eventId",
    "instanceId",
    "eventStatus",
    "createdDate",
    "updatedDate",
    "callbackUrl",
    "request",
    "response",
    "deliveries",
}
ATTEMPT_KEYS = {"attempt", "date", "statusCode", "error", "durationMs"}
ENTRY_KEYS = {"id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags"}
SEED_BODY = {"path": "/testfoldercopy", "tags": ["TestFolderCopy"], "name": "TestFolderCopy"}
SEED_EVENTS = [
    {
        "path": "/testfoldercopy",
        "metadata": {"path": "/TestFolderCopy", "name": "TestFolderCopy", "type": "folder"},
    },
    {
        "path": "/testfoldercopy/testuploadfile.txt",
        "metadata": {
            "path": "/TestFolderCopy/testUploadFile.txt",
            "name": "testUploadFile.txt",
            "type": "file",
        },
    },
]


# --------------------------------------------------------------------------- a small Elements client


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    text: str
    content_type: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class El:
    """Requests to one server's Elements base, read in full (so no connection is left open)."""

    session: aiohttp.ClientSession
    origin: str  # http://127.0.0.1:port

    async def call(
        self,
        method: str,
        path: str,
        *,
        auth: dict[str, str],
        params: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        kw: dict[str, Any] = {"params": params or {}, "headers": {**auth, **(headers or {})}}
        if body is not None:
            kw["json"] = body
        async with self.session.request(method, self.origin + path, **kw) as resp:
            text = await resp.text()
            return Reply(resp.status, resp.headers, text, resp.content_type)

    async def hub(self, method: str, path: str, *, token: str = ELEMENT_TOKEN, **kw: Any) -> Reply:
        return await self.call(method, HUB + path, auth=hub_auth(token), **kw)

    async def platform(self, method: str, path: str, **kw: Any) -> Reply:
        return await self.call(method, ELEMENTS + path, auth=platform_auth(), **kw)

    async def create_instance(self, name: str, url: str, key: str, enabled: Any = True) -> Reply:
        configuration = {
            "event.notification.enabled": enabled,
            "event.notification.callback.url": url,
            "event.notification.signature.key": key,
        }
        body = {"name": name, "element": {"key": "documents"}, "configuration": configuration}
        r = await self.platform("POST", "/instances", body=body)
        assert r.status == 200, r.text
        return r

    async def event(self, event_id: int) -> dict:
        r = await self.platform("GET", f"/instances/events/{event_id}")
        assert r.status == 200, r.text
        ev = r.json()
        assert EVENT_KEYS <= set(ev), ev
        return ev

    async def wait_event(self, event_id: int, cond, what: str, timeout: float = 5.0) -> dict:
        last: dict = {}

        async def check() -> dict | None:
            nonlocal last
            last = await self.event(event_id)
            return last if cond(last) else None

        try:
            return await wait_for(check, what, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast event record: {json.dumps(last, indent=1)}") from None

    async def start(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        callback: str | None = None,
        token: str = ELEMENT_TOKEN,
    ) -> int:
        """Start an asynchronous request; check the immediate 202 answer; its eventId."""
        headers = dict(ASYNC)
        if callback is not None:
            headers["Elements-Async-Callback-Url"] = callback
        r = await self.hub(method, path, params=params, body=body, headers=headers, token=token)
        return dispatched(r)


def dispatched(r: Reply) -> int:
    """The eventId of the immediate answer to an asynchronous request, checked as the seed shows it."""
    assert r.status == 202, r.text
    answer = r.json()
    assert set(answer) == {"eventId", "eventStatus"}, answer
    assert isinstance(answer["eventId"], int)
    assert not isinstance(answer["eventId"], bool)
    assert answer["eventStatus"] == "dispatched"
    return int(answer["eventId"])


async def open_elements(aiohttp_client, storage_root: Path, **overrides: Any) -> El:
    settings = make_settings(storage_root, **{**ELEMENTS_SETTINGS, **FAST, **overrides})
    client = await aiohttp_client(create_app(settings))
    return El(client.session, str(client.make_url("/")).rstrip("/"))


def assert_problem(r: Reply, status: int) -> dict:
    assert r.status == status, f"expected {status}, got {r.status}: {r.text[:500]}"
    assert r.content_type == "application/problem+json", (r.content_type, r.text[:300])
    assert "X-RequestId" in r.headers
    body = r.json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status
    return body


def delivery(ev: dict, index: int = 0) -> dict:
    return ev["deliveries"][index]


def delivered_ok(ev: dict) -> bool:
    return bool(ev["deliveries"]) and ev["deliveries"][-1]["status"] == "delivered"


def status_codes(d: dict) -> list[int | None]:
    return [a["statusCode"] for a in d["attempts"]]


def is_2xx(code: Any) -> bool:
    return isinstance(code, int) and 200 <= code < 300


def check_webhook(rec: Received, key: str = KEY) -> dict:
    """A webhook request as the contract describes it: JSON, signed both ways, ids matching."""
    assert rec.method == "POST"
    assert rec.headers["Content-Type"].split(";")[0].strip() == "application/json"
    body = rec.json()
    assert set(body) == WEBHOOK_KEYS, body
    for name in ("eventId", "instanceId", "notificationId"):
        assert isinstance(body[name], int), body
        assert not isinstance(body[name], bool), body
    assert isinstance(body["response"], dict)
    assert isinstance(body["response"]["events"], list)
    # the Elements signature, computed here with hmac/hashlib over the raw body bytes
    assert rec.headers["Elements-Webhook-Signature"] == elements_signature(key, rec.body)
    assert rec.headers["Elements-Webhook-Id"] == str(body["notificationId"])
    # the Standard Webhooks headers, verified by the reference package
    assert rec.headers["webhook-id"] == str(body["notificationId"])
    verified = standardwebhooks.Webhook(key.encode()).verify(rec.body, dict(rec.headers))
    assert verified == body
    return body


def event_triples(events: list[dict]) -> set[tuple[str, str, str, str]]:
    out = set()
    for e in events:
        assert set(e) == {"path", "metadata"}, e
        assert set(e["metadata"]) >= {"path", "name", "type"}, e
        m = e["metadata"]
        assert e["path"] == m["path"].lower(), e
        out.add((e["path"], m["path"], m["name"], m["type"]))
    return out


def make_files(folder: Path, n: int) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    files = {f"f{i:02d}.txt": f"file {i}\n".encode() * (i + 1) for i in range(n)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def files_in(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {n for n in os.listdir(folder) if not n.startswith(".")}


# --------------------------------------------------------------------------- 1. the signature


def test_sign_known_vector():
    from server.webhooks import sign

    expected = "sha256=jHdbRx5EZAsOfTwAPJOGkNUzQMVVdu5VJlxcsk+G6jQ="
    body = b"<INSERT_EVENT_NOTIFICATION_RESPONSE_BODY>"
    assert sign("MySecretEventSignatureKey", body) == expected
    # and the independent computation agrees, so the other tests' checks mean the same thing
    assert elements_signature("MySecretEventSignatureKey", body) == expected


# --------------------------------------------------------------------------- 2. the seed's example


async def test_seed_async_copy_example(aiohttp_client, storage_root, receivers):
    source = storage_root / "TestFolderCreate"
    source.mkdir()
    content = b"This is a test upload file.\n"
    (source / "testUploadFile.txt").write_bytes(content)
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root)

    # the seed's curl request, base URL swapped
    r = await el.call(
        "POST",
        HUB + "/folders/copy",
        auth={"Authorization": f"User {USER_SECRET}, Element {ELEMENT_TOKEN}"},
        params={"path": "/TestFolderCreate"},
        headers={
            "Content-Type": "application/json",
            "Elements-Async-Request": "True",
            "Elements-Async-Callback-Url": rx.url,
        },
        body=SEED_BODY,
    )
    event_id = dispatched(r)

    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["eventId"] == event_id
    assert body["instanceId"] == 1  # the default instance
    assert body["response"] == {"events": SEED_EVENTS}
    assert rec.path == "/hook"

    # the copy is on disk, the source untouched
    assert (storage_root / "TestFolderCopy" / "testUploadFile.txt").read_bytes() == content
    assert (source / "testUploadFile.txt").read_bytes() == content
    assert files_in(storage_root / "TestFolderCopy") == {"testUploadFile.txt"}

    # the event record, readable with User+Organization and with User+Element
    ev = await el.wait_event(event_id, delivered_ok, "the delivery to be recorded")
    assert ev["eventId"] == event_id
    assert ev["eventStatus"] == "completed"
    assert ev["instanceId"] == 1
    assert ev["callbackUrl"] == rx.url
    assert ev["response"] == body["response"]
    [d] = ev["deliveries"]
    assert d["notificationId"] == body["notificationId"]
    assert d["status"] == "delivered"
    [attempt] = d["attempts"]
    assert ATTEMPT_KEYS <= set(attempt), attempt
    assert attempt["attempt"] == 1
    assert attempt["statusCode"] == 200
    assert attempt["error"] is None
    datetime.fromisoformat(attempt["date"].replace("Z", "+00:00"))
    r = await el.call("GET", f"{ELEMENTS}/instances/events/{event_id}", auth=hub_auth())
    assert r.status == 200, r.text
    assert r.json()["eventId"] == event_id

    # the API sees the copy too
    r = await el.hub("GET", "/folders/contents", params={"path": "/TestFolderCopy"})
    assert r.status == 200, r.text
    assert [e["name"] for e in r.json()] == ["testUploadFile.txt"]

    # exactly one webhook
    await asyncio.sleep(QUIET_S)
    assert len(rx.requests) == 1


# --------------------------------------------------------------------------- 3. the callback URL


@pytest.mark.parametrize("op", ["copy", "delete"])
async def test_no_callback_url_is_400_and_starts_nothing(aiohttp_client, storage_root, op):
    make_files(storage_root / "Src", 3)
    el = await open_elements(aiohttp_client, storage_root)  # default instance: no callback URL
    before = tree_snapshot(storage_root, exclude_hidden_of=storage_root)
    if op == "copy":
        r = await el.hub(
            "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/SrcCopy"}, headers=ASYNC
        )
    else:
        r = await el.hub("DELETE", "/folders", params={"path": "/Src"}, headers=ASYNC)
    assert_problem(r, 400)
    await asyncio.sleep(QUIET_S)
    assert tree_snapshot(storage_root, exclude_hidden_of=storage_root) == before


async def test_instance_callback_url_used_without_header(aiohttp_client, storage_root, receivers):
    make_files(storage_root / "Src", 2)
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root, callback_url=rx.url)
    event_id = await el.start("POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"})
    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["eventId"] == event_id
    assert event_triples(body["response"]["events"]) == {
        ("/dst", "/Dst", "Dst", "folder"),
        ("/dst/f00.txt", "/Dst/f00.txt", "f00.txt", "file"),
        ("/dst/f01.txt", "/Dst/f01.txt", "f01.txt", "file"),
    }
    assert files_in(storage_root / "Dst") == {"f00.txt", "f01.txt"}


async def test_header_callback_wins_over_instance_url(aiohttp_client, storage_root, receivers):
    make_files(storage_root / "Src", 2)
    instance_rx = await receivers()
    header_rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root, callback_url=instance_rx.url)
    event_id = await el.start(
        "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"}, callback=header_rx.url
    )
    [rec] = await header_rx.wait_delivered(1)
    assert check_webhook(rec)["eventId"] == event_id
    ev = await el.wait_event(event_id, delivered_ok, "the delivery to be recorded")
    assert ev["callbackUrl"] == header_rx.url
    await asyncio.sleep(QUIET_S)
    assert instance_rx.requests == []
    assert len(header_rx.requests) == 1


@pytest.mark.parametrize(
    "header",
    [
        {"Elements-Async-Callback-Url": "ftp://127.0.0.1/hook"},
        {"Elements-Async-Callback-Url": "/hook"},
        {"Elements-Async-Callback-Url": "not a url"},
        {"Elements-Async-Callback-Url": "javascript:alert(1)"},
        {"Elements-Async-Callback-Url": "http://127.0.0.1:99999/hook"},
        {"Elements-Async-Callback-Url": "http://[::1/hook"},
        {"Elements-Async-Callback-Url": "http://127.0.0.1:0/hook"},
        {"Elements-Async-Callback-Url": "http://xn--a.b/hook"},
        {"Elements-Async-Request": "maybe"},
    ],
    ids=["ftp", "relative", "garbage", "javascript", "port", "ipv6", "port-0", "idna", "bad-async-value"],
)
async def test_bad_async_headers_are_400(aiohttp_client, storage_root, receivers, header):
    make_files(storage_root / "Src", 2)
    rx = await receivers()
    # the instance has a good URL: a bad header is refused, not ignored in favour of it
    el = await open_elements(aiohttp_client, storage_root, callback_url=rx.url)
    before = tree_snapshot(storage_root, exclude_hidden_of=storage_root)
    r = await el.hub(
        "POST",
        "/folders/copy",
        params={"path": "/Src"},
        body={"path": "/Dst"},
        headers={**ASYNC, **header},
    )
    assert_problem(r, 400)
    await asyncio.sleep(QUIET_S)
    assert tree_snapshot(storage_root, exclude_hidden_of=storage_root) == before
    assert rx.requests == []


@pytest.mark.parametrize("enabled", [False, "false"])
async def test_disabled_instance_callback_is_not_used(aiohttp_client, storage_root, receivers, enabled):
    make_files(storage_root / "Src", 1)
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root)
    r = await el.create_instance("disabled", rx.url, KEY, enabled)
    token = r.json()["token"]
    r = await el.hub(
        "POST",
        "/folders/copy",
        params={"path": "/Src"},
        body={"path": "/Dst"},
        headers=ASYNC,
        token=token,
    )
    assert_problem(r, 400)
    await asyncio.sleep(QUIET_S)
    assert not (storage_root / "Dst").exists()
    assert rx.requests == []


# --------------------------------------------------------------------------- 4-6. delivery


async def test_retries_until_2xx_with_doubling_backoff(aiohttp_client, storage_root, receivers):
    make_files(storage_root / "Src", 2)
    rx = await receivers(fail_first=2)
    backoff = 0.1
    el = await open_elements(aiohttp_client, storage_root, webhook_retries=3, webhook_backoff_s=backoff)
    event_id = await el.start(
        "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"}, callback=rx.url
    )
    await rx.wait_delivered(1)
    first, second, third = rx.requests
    assert [r.answered for r in rx.requests] == [500, 500, 200]
    # the same notification each time (the body byte for byte), each attempt signed
    assert first.body == second.body == third.body
    bodies = [check_webhook(r) for r in rx.requests]
    assert bodies[0]["eventId"] == event_id
    assert len({r.headers["Elements-Webhook-Id"] for r in rx.requests}) == 1
    # first retry after the backoff, the second after twice that (a little slack for clocks)
    assert second.at - first.at >= backoff * 0.8, second.at - first.at
    assert third.at - second.at >= 2 * backoff * 0.8, third.at - second.at

    ev = await el.wait_event(event_id, delivered_ok, "the delivery to be recorded")
    assert ev["eventStatus"] == "completed"
    [d] = ev["deliveries"]
    assert d["notificationId"] == bodies[0]["notificationId"]
    assert d["status"] == "delivered"
    assert [a["attempt"] for a in d["attempts"]] == [1, 2, 3]
    codes = status_codes(d)
    assert codes[:2] == [500, 500]
    assert is_2xx(codes[2]), codes
    assert d["attempts"][2]["error"] is None
    for a in d["attempts"]:
        assert ATTEMPT_KEYS <= set(a), a
    assert d["nextAttemptDate"] is None
    await asyncio.sleep(QUIET_S)
    assert len(rx.requests) == 3


async def test_receiver_down_then_queued_then_redeliver(aiohttp_client, storage_root, receivers):
    make_files(storage_root / "Src", 2)
    port = closed_port()
    url = f"http://127.0.0.1:{port}/hook"
    el = await open_elements(aiohttp_client, storage_root, webhook_retries=2, webhook_backoff_s=0.05)
    event_id = await el.start(
        "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"}, callback=url
    )
    ev = await el.wait_event(
        event_id,
        lambda e: e["deliveries"] and delivery(e)["status"] == "queued",
        "the delivery to be queued after its retries",
    )
    assert ev["eventStatus"] == "completed"  # the copy itself succeeded
    assert files_in(storage_root / "Dst") == {"f00.txt", "f01.txt"}
    [d] = ev["deliveries"]
    assert len(d["attempts"]) == 1 + 2
    for a in d["attempts"]:
        assert a["statusCode"] is None, a
        assert isinstance(a["error"], str), a
        assert a["error"], a
    assert d["nextAttemptDate"] is None
    notification_id = d["notificationId"]

    # the receiver comes up on that port; a redelivery sends the same notification once
    rx = await receivers(port=port)
    r = await el.platform("POST", f"/instances/events/{event_id}/redeliver")
    assert r.status == 202, r.text
    assert r.json()["eventId"] == event_id
    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["notificationId"] == notification_id
    assert body["eventId"] == event_id
    assert body["response"] == ev["response"]
    assert event_triples(body["response"]["events"]) == {
        ("/dst", "/Dst", "Dst", "folder"),
        ("/dst/f00.txt", "/Dst/f00.txt", "f00.txt", "file"),
        ("/dst/f01.txt", "/Dst/f01.txt", "f01.txt", "file"),
    }
    ev = await el.wait_event(
        event_id,
        lambda e: any(
            x["notificationId"] == notification_id and x["status"] == "delivered" for x in e["deliveries"]
        ),
        "the redelivery to be recorded",
    )
    await asyncio.sleep(QUIET_S)
    assert len(rx.requests) == 1


async def test_hanging_receiver_times_out_and_api_stays_responsive(aiohttp_client, storage_root, receivers):
    make_files(storage_root / "Src", 2)
    rx = await receivers(hang=True)
    timeout = 0.5
    el = await open_elements(
        aiohttp_client, storage_root, webhook_timeout_s=timeout, webhook_retries=1, webhook_backoff_s=0.2
    )
    event_id = await el.start(
        "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"}, callback=rx.url
    )
    await rx.wait_requests(1)
    # the receiver holds the webhook open; the API answers promptly meanwhile
    t0 = time.monotonic()
    r = await el.hub("GET", "/folders/contents", params={"path": "/"})
    assert r.status == 200, r.text
    assert {e["name"] for e in r.json()} == {"Src", "Dst"}
    ev = await el.event(event_id)
    assert time.monotonic() - t0 < 1.0
    assert delivery(ev)["status"] in ("pending", "delivering"), ev

    ev = await el.wait_event(
        event_id,
        lambda e: e["deliveries"] and delivery(e)["attempts"] and delivery(e)["attempts"][0]["error"],
        "the first attempt to time out",
    )
    first = delivery(ev)["attempts"][0]
    assert first["statusCode"] is None, first
    assert isinstance(first["error"], str), first
    assert timeout * 0.8 * 1000 <= first["durationMs"] < timeout * 1000 + 2000, first

    ev = await el.wait_event(
        event_id, lambda e: delivery(e)["status"] == "queued", "the delivery to be queued"
    )
    assert len(delivery(ev)["attempts"]) == 2
    assert all(a["statusCode"] is None and a["error"] for a in delivery(ev)["attempts"])
    assert ev["eventStatus"] == "completed"
    assert len(rx.requests) == 2
    assert rx.delivered == []


# --------------------------------------------------------------------------- 7. restart


def _flags(callback: str, backoff: float) -> list[str]:
    return [
        "--elements-user-secret",
        USER_SECRET,
        "--elements-org-secret",
        ORG_SECRET,
        "--elements-token",
        ELEMENT_TOKEN,
        "--callback-url",
        callback,
        "--signature-key",
        KEY,
        "--webhook-retries",
        "3",
        "--webhook-backoff-s",
        str(backoff),
        "--webhook-timeout-s",
        "1",
        "--copy-processes",
        "0",
    ]


async def test_delivery_survives_restart_between_attempts(storage_root, server_factory, receivers):
    make_files(storage_root / "Src", 2)
    rx = await receivers(fail_first=1)  # refuses the first attempt, accepts after
    # the backoff is long enough to stop the server between the first attempt and the retry
    flags = _flags(rx.url, backoff=3.0)
    first = await asyncio.to_thread(server_factory.start, storage_root, *flags)
    async with aiohttp.ClientSession() as session:
        el = El(session, first.base_url)
        event_id = await el.start("POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"})
        await rx.wait_requests(1)
        assert rx.requests[0].answered == 500
        ev = await el.wait_event(
            event_id, lambda e: e["deliveries"] and delivery(e)["attempts"], "the first attempt recorded"
        )
        assert ev["eventStatus"] == "completed"
        t0 = time.monotonic()
        rc = await asyncio.to_thread(first.stop, signal.SIGTERM)
        assert rc == 0, first.stderr()
        assert time.monotonic() - t0 < 6.0, "a pending retry held up the shutdown"
        assert len(rx.requests) == 1, "the retry went out before the server stopped"
        assert files_in(storage_root / "Dst") == {"f00.txt", "f01.txt"}
        # the banner told how the server was configured, with a ready asynchronous curl line
        banner = first.stdout()
        assert rx.url in banner
        assert "Elements-Async-Request: True" in banner
        # (the credentials set by flags are the user's own: the banner does not repeat them)
        assert "User <user secret>, Element <element token>" in banner
        assert USER_SECRET not in banner and ELEMENT_TOKEN not in banner and KEY not in banner

        second = await asyncio.to_thread(server_factory.start, storage_root, *flags)
        el = El(session, second.base_url)
        await rx.wait_delivered(1, timeout=10.0)
        ev = await el.wait_event(event_id, delivered_ok, "the delivery to be recorded after the restart")
        await asyncio.sleep(QUIET_S)

    assert len(rx.requests) == 2
    bodies = [check_webhook(r) for r in rx.requests]
    # the very same notification, before and after the restart
    assert rx.requests[0].body == rx.requests[1].body
    assert bodies[1]["eventId"] == event_id
    ok_ids = Counter(r.headers["Elements-Webhook-Id"] for r in rx.delivered)
    assert ok_ids == {str(bodies[0]["notificationId"]): 1}
    assert ev["eventStatus"] == "completed"
    [d] = ev["deliveries"]
    assert d["notificationId"] == bodies[0]["notificationId"]
    assert [a["attempt"] for a in d["attempts"]] == [1, 2]
    codes = status_codes(d)
    assert codes[0] == 500
    assert is_2xx(codes[1]), codes
    assert await asyncio.to_thread(second.stop, signal.SIGTERM) == 0, second.stderr()


# --------------------------------------------------------------------------- 8-9. cancel, delete


async def test_cancel_paced_copy_reports_what_was_done(aiohttp_client, storage_root, receivers):
    source = make_files(storage_root / "Big", 20)
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root, pace_ms=100)
    copy = storage_root / "BigCopy"
    event_id = await el.start(
        "POST", "/folders/copy", params={"path": "/Big"}, body={"path": "/BigCopy"}, callback=rx.url
    )
    await wait_for(lambda: len(files_in(copy)) >= 3, "a few files to be copied")
    r = await el.platform("DELETE", f"/instances/events/{event_id}")
    assert r.status == 200, r.text
    assert r.json()["eventStatus"] == "cancelled"

    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["eventId"] == event_id
    response = body["response"]
    assert set(response) == {"events", "error"}, response
    error = response["error"]
    assert set(error) == {"status", "message"}, error
    assert error["status"] == 499
    assert isinstance(error["message"], str)
    assert error["message"]
    events = response["events"]
    assert events[0] == {
        "path": "/bigcopy",
        "metadata": {"path": "/BigCopy", "name": "BigCopy", "type": "folder"},
    }
    listed = set()
    for e in events[1:]:
        m = e["metadata"]
        assert m["type"] == "file", e
        assert m["path"] == f"/BigCopy/{m['name']}", e
        assert e["path"] == m["path"].lower(), e
        listed.add(m["name"])
    assert len(listed) == len(events) - 1, "an entry listed twice"
    assert 3 <= len(listed) < 20, listed
    # what is listed exists (whole), what is not listed does not
    assert files_in(copy) == listed
    for name in listed:
        assert (copy / name).read_bytes() == source[name]
    assert part_files(storage_root) == []
    await asyncio.sleep(QUIET_S)
    assert files_in(copy) == listed, "the copy went on after the cancel"
    assert len(rx.requests) == 1

    ev = await el.wait_event(event_id, delivered_ok, "the delivery to be recorded")
    assert ev["eventStatus"] == "cancelled"
    assert ev["response"] == response


@pytest.mark.parametrize("form", ["path", "id"])
async def test_async_folder_delete_reports_every_removed_entry(aiohttp_client, storage_root, receivers, form):
    doomed = storage_root / "Doomed"
    (doomed / "Sub").mkdir(parents=True)
    (doomed / "Empty").mkdir()
    (doomed / "a.txt").write_bytes(b"a")
    (doomed / "Sub" / "B.txt").write_bytes(b"bb")
    (doomed / "Sub" / "c.txt").write_bytes(b"ccc")
    (storage_root / "Keep.txt").write_bytes(b"keep")
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root)
    if form == "path":
        event_id = await el.start("DELETE", "/folders", params={"path": "/Doomed"}, callback=rx.url)
    else:
        r = await el.hub("GET", "/folders/metadata", params={"path": "/Doomed"})
        assert r.status == 200, r.text
        folder_id = r.json()["id"]
        assert isinstance(folder_id, str)
        event_id = await el.start("DELETE", f"/folders/{folder_id}", callback=rx.url)

    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["eventId"] == event_id
    assert "error" not in body["response"], body
    events = body["response"]["events"]
    assert len(events) == 6, events
    assert event_triples(events) == {
        ("/doomed", "/Doomed", "Doomed", "folder"),
        ("/doomed/empty", "/Doomed/Empty", "Empty", "folder"),
        ("/doomed/sub", "/Doomed/Sub", "Sub", "folder"),
        ("/doomed/a.txt", "/Doomed/a.txt", "a.txt", "file"),
        ("/doomed/sub/b.txt", "/Doomed/Sub/B.txt", "B.txt", "file"),
        ("/doomed/sub/c.txt", "/Doomed/Sub/c.txt", "c.txt", "file"),
    }
    assert not doomed.exists()
    assert disk_tree(storage_root).get("Keep.txt") == b"keep"
    r = await el.hub("GET", "/folders/metadata", params={"path": "/Doomed"})
    assert_problem(r, 404)
    ev = await el.wait_event(event_id, delivered_ok, "the delivery to be recorded")
    assert ev["eventStatus"] == "completed"


async def test_async_file_copy_and_delete(aiohttp_client, storage_root, receivers):
    (storage_root / "Docs").mkdir()
    (storage_root / "Docs" / "Report.TXT").write_bytes(b"report")
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root)
    copy_id = await el.start(
        "POST",
        "/files/copy",
        params={"path": "/Docs/Report.TXT"},
        body={"path": "/Docs/Copy.TXT"},
        callback=rx.url,
    )
    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert body["eventId"] == copy_id
    assert body["response"] == {
        "events": [
            {
                "path": "/docs/copy.txt",
                "metadata": {"path": "/Docs/Copy.TXT", "name": "Copy.TXT", "type": "file"},
            }
        ]
    }
    assert (storage_root / "Docs" / "Copy.TXT").read_bytes() == b"report"
    await el.wait_event(copy_id, delivered_ok, "the copy's delivery to be recorded")

    # paths match case-insensitively; the event reports the path as stored
    delete_id = await el.start("DELETE", "/files", params={"path": "/docs/report.txt"}, callback=rx.url)
    await rx.wait_delivered(2)
    body = check_webhook(rx.delivered[1])
    assert body["eventId"] == delete_id
    assert body["response"] == {
        "events": [
            {
                "path": "/docs/report.txt",
                "metadata": {"path": "/Docs/Report.TXT", "name": "Report.TXT", "type": "file"},
            }
        ]
    }
    assert files_in(storage_root / "Docs") == {"Copy.TXT"}
    assert rx.requests[0].headers["Elements-Webhook-Id"] != rx.requests[1].headers["Elements-Webhook-Id"]


# --------------------------------------------------------------------------- 10. one per session


async def test_one_async_operation_per_session(aiohttp_client, storage_root, receivers):
    make_files(storage_root / "Big", 20)
    (storage_root / "small.txt").write_bytes(b"small")
    rx = await receivers()
    rx2 = await receivers()
    el = await open_elements(aiohttp_client, storage_root, pace_ms=100)
    first = await el.start(
        "POST", "/folders/copy", params={"path": "/Big"}, body={"path": "/Copy1"}, callback=rx.url
    )

    # a second asynchronous start in the same session (User secret + Element token): 429
    r = await el.hub(
        "POST",
        "/folders/copy",
        params={"path": "/Big"},
        body={"path": "/Copy2"},
        headers={**ASYNC, "Elements-Async-Callback-Url": rx.url},
    )
    problem = assert_problem(r, 429)
    assert "Retry-After" in r.headers
    assert problem["eventId"] == first
    r = await el.hub(
        "DELETE",
        "/files",
        params={"path": "/small.txt"},
        headers={**ASYNC, "Elements-Async-Callback-Url": rx.url},
    )
    assert_problem(r, 429)
    assert not (storage_root / "Copy2").exists()
    assert (storage_root / "small.txt").exists()

    # synchronous requests are not counted
    r = await el.hub("POST", "/files/copy", params={"path": "/small.txt"}, body={"path": "/small2.txt"})
    assert r.status == 200, r.text
    assert (storage_root / "small2.txt").read_bytes() == b"small"

    # another instance is another session
    r = await el.create_instance("second", rx2.url, "second-key")
    instance = r.json()
    assert isinstance(instance["id"], int)
    assert instance["id"] != 1
    token2 = instance["token"]
    assert isinstance(token2, str)
    assert token2
    assert token2 != ELEMENT_TOKEN
    second = await el.start(
        "POST", "/folders/copy", params={"path": "/Big"}, body={"path": "/Copy3"}, token=token2
    )
    assert second != first
    # an instance sees its own events only
    r = await el.call("GET", f"{ELEMENTS}/instances/events/{first}", auth=hub_auth(token2))
    assert_problem(r, 404)
    r = await el.call("GET", f"{ELEMENTS}/instances/events/{second}", auth=hub_auth(token2))
    assert r.status == 200, r.text

    for event_id in (first, second):
        r = await el.platform("DELETE", f"/instances/events/{event_id}")
        assert r.status == 200, r.text
        assert r.json()["eventStatus"] == "cancelled"
    [rec] = await rx.wait_delivered(1)
    body = check_webhook(rec)
    assert (body["eventId"], body["instanceId"]) == (first, 1)
    [rec2] = await rx2.wait_delivered(1)
    body2 = check_webhook(rec2, key="second-key")
    assert (body2["eventId"], body2["instanceId"]) == (second, instance["id"])

    # once the first has ended, its session may start another
    third = await el.start("DELETE", "/files", params={"path": "/small2.txt"}, callback=rx.url)
    await rx.wait_delivered(2)
    assert check_webhook(rx.delivered[1])["eventId"] == third
    assert not (storage_root / "small2.txt").exists()


# --------------------------------------------------------------------------- 11. synchronous


@pytest.mark.parametrize("async_header", [None, "false"], ids=["no-header", "false"])
async def test_sync_copy_and_delete_answer_directly(aiohttp_client, storage_root, receivers, async_header):
    make_files(storage_root / "Src" / "Inner", 2)
    (storage_root / "Src" / "top.txt").write_bytes(b"top")
    rx = await receivers()
    # the instance has a callback URL: a synchronous request must still not use it
    el = await open_elements(aiohttp_client, storage_root, callback_url=rx.url)
    headers = {} if async_header is None else {"Elements-Async-Request": async_header}

    r = await el.hub(
        "POST",
        "/folders/copy",
        params={"path": "/Src"},
        body={"path": "/SrcCopy", "tags": ["t1"]},
        headers=headers,
    )
    assert r.status == 200, r.text
    entry = r.json()
    assert set(entry) == ENTRY_KEYS, entry
    assert entry["name"] == "SrcCopy"
    assert entry["path"] == "/SrcCopy"
    assert entry["directory"] is True
    assert entry["tags"] == ["t1"]
    assert isinstance(entry["id"], str)
    assert disk_tree(storage_root / "SrcCopy") == disk_tree(storage_root / "Src")

    r = await el.hub("DELETE", "/folders", params={"path": "/SrcCopy"}, headers=headers)
    assert r.status == 200, r.text
    result = r.json()
    assert set(result) == {"events"}, result
    assert event_triples(result["events"]) == {
        ("/srccopy", "/SrcCopy", "SrcCopy", "folder"),
        ("/srccopy/top.txt", "/SrcCopy/top.txt", "top.txt", "file"),
        ("/srccopy/inner", "/SrcCopy/Inner", "Inner", "folder"),
        ("/srccopy/inner/f00.txt", "/SrcCopy/Inner/f00.txt", "f00.txt", "file"),
        ("/srccopy/inner/f01.txt", "/SrcCopy/Inner/f01.txt", "f01.txt", "file"),
    }
    assert not (storage_root / "SrcCopy").exists()
    assert (storage_root / "Src" / "top.txt").exists()

    await asyncio.sleep(QUIET_S)
    assert rx.requests == []


# --------------------------------------------------------------------------- crash mid-operation


async def test_kill_9_mid_copy_still_sends_the_webhook_after_restart(storage_root, server_factory, receivers):
    """A copy cut off by kill -9 ends when the server comes back: Failed (interrupted), and its
    webhook lists exactly what the disk shows was copied, with the error."""
    make_files(storage_root / "Src", 12)
    rx = await receivers()
    flags = [*_flags(rx.url, backoff=0.2), "--pace-ms", "150"]
    first = await asyncio.to_thread(server_factory.start, storage_root, *flags)
    async with aiohttp.ClientSession() as session:
        el = El(session, first.base_url)
        event_id = await el.start("POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"})
        await wait_for(lambda: len(files_in(storage_root / "Dst")) >= 3, "three files copied", timeout=10.0)
        first.proc.kill()
        first.proc.wait(timeout=5)
        assert rx.requests == [], "a webhook went out before the operation ended"

        second = await asyncio.to_thread(server_factory.start, storage_root, *flags)
        el = El(session, second.base_url)
        await rx.wait_delivered(1, timeout=10.0)
        ev = await el.wait_event(event_id, delivered_ok, "the delivery after the restart")
        await asyncio.sleep(QUIET_S)

    [request] = rx.requests
    body = check_webhook(request)
    copied = files_in(storage_root / "Dst")
    assert 3 <= len(copied) < 12
    paths = [e["metadata"]["path"] for e in body["response"]["events"]]
    assert paths == ["/Dst", *(f"/Dst/{name}" for name in sorted(copied))]
    error = body["response"]["error"]
    assert error["status"] == 503 and "interrupted" in error["message"]
    assert ev["eventStatus"] == "failed"
    assert ev["response"] == body["response"]
    assert await asyncio.to_thread(second.stop, signal.SIGTERM) == 0, second.stderr()


async def test_many_hanging_webhooks_do_not_hold_up_another_receiver(aiohttp_client, storage_root, receivers):
    """More webhooks hang at one receiver than the server sends at once to all receivers: the
    hanging ones fill that receiver's places only, and another receiver's webhook goes at once."""
    make_files(storage_root / "Src", 1)
    stuck = await receivers(hang=True)
    healthy = await receivers()
    el = await open_elements(
        aiohttp_client, storage_root, session_concurrency="queue", webhook_timeout_s=30.0, webhook_retries=0
    )
    hanging = 70  # more than the 64 attempts that once ran at a time, across all receivers
    for n in range(hanging):
        await el.start(
            "POST", "/folders/copy", params={"path": "/Src"}, body={"path": f"/Out{n}"}, callback=stuck.url
        )
    await stuck.wait_requests(16, timeout=10.0)
    t0 = time.monotonic()
    await el.start(
        "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Late"}, callback=healthy.url
    )
    await healthy.wait_delivered(1, timeout=5.0)
    assert time.monotonic() - t0 < 3.0
    await asyncio.sleep(QUIET_S)
    # one receiver gets no more than its share at once, however many are waiting for it
    assert len(stuck.requests) == 16


async def test_delivered_events_are_dropped_a_day_later(storage_root, server_factory, receivers):
    make_files(storage_root / "Src", 1)
    rx = await receivers()
    flags = _flags(rx.url, backoff=0.2)
    first = await asyncio.to_thread(server_factory.start, storage_root, *flags)
    async with aiohttp.ClientSession() as session:
        el = El(session, first.base_url)
        old = await el.start("POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Old"})
        await el.wait_event(old, delivered_ok, "delivered")
        recent = await el.start("POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Recent"})
        await el.wait_event(recent, delivered_ok, "delivered")
        assert await asyncio.to_thread(first.stop, signal.SIGTERM) == 0
        # the first event ended two days ago, as far as the store can tell
        with sqlite3.connect(storage_root / ".sandbox" / "sandbox.db") as db:
            db.execute("UPDATE events SET updated_ns = updated_ns - ? WHERE id = ?", (2 * 86400 * 10**9, old))
        second = await asyncio.to_thread(server_factory.start, storage_root, *flags)
        el = El(session, second.base_url)
        assert (await el.platform("GET", f"/instances/events/{old}")).status == 404
        assert (await el.platform("GET", f"/instances/events/{recent}")).status == 200
    assert await asyncio.to_thread(second.stop, signal.SIGTERM) == 0


# --------------------------------------------------------------------------- found in review


async def test_bad_callback_url_in_instance_configuration_is_400(aiohttp_client, storage_root):
    el = await open_elements(aiohttp_client, storage_root)
    for url in ("http://[::1/x", "http://127.0.0.1:70000/x", "http://"):
        body = {"configuration": {"event.notification.callback.url": url}}
        r = await el.platform("PATCH", "/instances/1", body=body)
        assert_problem(r, 400)
        assert "callback" in r.json()["detail"]


async def test_instances_deleted_concurrently_answer_204_once(aiohttp_client, storage_root):
    el = await open_elements(aiohttp_client, storage_root)
    r = await el.create_instance("doomed", "http://127.0.0.1:9/hook", KEY)
    instance_id, token = r.json()["id"], r.json()["token"]
    replies = await asyncio.gather(
        *(el.platform("DELETE", f"/instances/{instance_id}") for _ in range(4)),
        *(el.platform("PATCH", f"/instances/{instance_id}", body={"name": f"n{n}"}) for n in range(4)),
    )
    deletes = sorted(r.status for r in replies[:4])
    assert deletes == [204, 404, 404, 404], [r.text for r in replies]
    assert all(r.status in (200, 404) for r in replies[4:])
    # whatever order they ran in, the deleted instance stays deleted
    assert (await el.hub("GET", "/folders/contents", params={"path": "/"}, token=token)).status == 401
    assert (await el.platform("GET", f"/instances/{instance_id}")).status == 404


async def test_tagged_copy_deleted_while_it_runs_still_ends_its_event(
    aiohttp_client, storage_root, receivers
):
    make_files(storage_root / "Src", 10)
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root, pace_ms=100)
    body = {"path": "/Dst", "tags": ["t"]}
    event_id = await el.start("POST", "/folders/copy", params={"path": "/Src"}, body=body, callback=rx.url)
    await wait_for(lambda: len(files_in(storage_root / "Dst")) >= 2, "two files copied", timeout=10.0)
    r = await el.hub("DELETE", "/folders", params={"path": "/Dst"})
    assert r.status in (200, 409), r.text  # (a folder refilled behind the delete is a 409)
    [request] = await rx.wait_delivered(1, timeout=10.0)
    ev = await el.wait_event(event_id, delivered_ok, "the event's end recorded")
    # the copy's folder gone under it: it failed, and says so; refilled behind the delete (409): it
    # went on and completed
    removed = r.status == 200
    assert ev["eventStatus"] == ("failed" if removed else "completed"), ev
    assert ("error" in ev["response"]) == removed, ev["response"]
    assert ev["response"] == request.json()["response"]


async def test_clean_stop_waits_for_a_webhook_under_way(storage_root, server_factory, receivers):
    """SIGTERM while a receiver takes its time answering: the attempt ends and is recorded
    before the server exits, so the next start does not send it again."""
    make_files(storage_root / "Src", 1)
    rx = await receivers()
    flags = _flags(rx.url, backoff=0.2)
    first = await asyncio.to_thread(server_factory.start, storage_root, *flags)
    async with aiohttp.ClientSession() as session:
        el = El(session, first.base_url)
        rx.hang = True
        event_id = await el.start("POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"})
        await rx.wait_requests(1)
        first.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        rx.release()  # answered 200 half a second into the stop
        assert await asyncio.to_thread(first.proc.wait, 10) == 0, first.stderr()

        second = await asyncio.to_thread(server_factory.start, storage_root, *flags)
        el = El(session, second.base_url)
        ev = await el.wait_event(event_id, delivered_ok, "delivered, as recorded before the stop")
        await asyncio.sleep(QUIET_S + 0.5)
    assert len(rx.requests) == 1
    assert [a["statusCode"] for a in delivery(ev)["attempts"]] == [200]
    assert await asyncio.to_thread(second.stop, signal.SIGTERM) == 0


async def test_slow_name_lookups_hold_up_nothing_but_their_webhooks(
    aiohttp_client, storage_root, receivers, monkeypatch
):
    """A receiver whose host name takes seconds to look up: the API goes on answering at once
    (the lookups have threads of their own, not those the store calls use)."""
    real = socket.getaddrinfo

    def slow_for_slow_hosts(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".slow.test"):
            time.sleep(3)
            raise socket.gaierror(socket.EAI_NONAME, "no such host")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_for_slow_hosts)
    make_files(storage_root / "Src", 1)
    el = await open_elements(aiohttp_client, storage_root, session_concurrency="queue")
    for n in range(8):
        callback = f"http://h{n}.slow.test/hook"
        await el.start(
            "POST", "/folders/copy", params={"path": "/Src"}, body={"path": f"/D{n}"}, callback=callback
        )
    await asyncio.sleep(0.5)  # the lookups are under way
    t0 = time.monotonic()
    for _ in range(5):
        assert (await el.hub("GET", "/folders/contents", params={"path": "/"})).status == 200
    assert time.monotonic() - t0 < 1.0


async def test_an_instance_without_a_signature_key_sends_unsigned_webhooks(
    aiohttp_client, storage_root, receivers
):
    make_files(storage_root / "Src", 1)
    rx = await receivers()
    el = await open_elements(aiohttp_client, storage_root, signature_key="")
    event_id = await el.start(
        "POST", "/folders/copy", params={"path": "/Src"}, body={"path": "/Dst"}, callback=rx.url
    )
    [request] = await rx.wait_delivered(1)
    body = request.json()
    assert body["eventId"] == event_id
    assert request.headers["Elements-Webhook-Id"] == str(body["notificationId"])
    for header in ("Elements-Webhook-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"):
        assert header not in request.headers, header
