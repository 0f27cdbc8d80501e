"""What the dashboard's detail view reads (issue 16, item 7), over real sockets: an operation's
timeline of status changes (`/sandbox/operations`), kept as it runs and, after a restart, made from
its times; and one webhook delivery with its body and the headers each attempt was sent with
(`GET /sandbox/deliveries/{notificationId}`), equal to what a real receiver got."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import aiohttp
from conftest import BASE, make_settings, sign_in
from webhook_receiver import ELEMENTS_SETTINGS, HUB, hub_auth

from server.app import create_app

KEY = "details-signature-key"
TERMINAL = ("Completed", "Failed", "Cancelled")


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def _operation(client, auth: dict[str, str], token: str, ended: bool = True) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        resp = await client.get(f"/sandbox/operations/{token}", headers=auth)
        assert resp.status == 200, await resp.text()
        op = await resp.json()
        if not ended or op["status"] in TERMINAL:
            return op
        assert time.monotonic() < deadline, op
        await asyncio.sleep(0.02)


async def _copy(client, auth: dict[str, str], name: str, pace_ms: int) -> str:
    found = await (
        await client.get(f"{BASE}/Entries/ByPath", params={"fullPath": "\\Src"}, headers=auth)
    ).json()
    resp = await client.post(
        f"{BASE}/Entries/1/Laserfiche.Repository.Folder/CopyAsync",
        json={"sourceId": found["entry"]["id"], "name": name},
        headers={**auth, "Sandbox-Pace-Ms": str(pace_ms)},
    )
    assert resp.status in (201, 202), await resp.text()
    return str((await resp.json())["token"])


def _files(root, count: int) -> None:
    (root / "Src").mkdir()
    for n in range(count):
        (root / "Src" / f"f{n:02}.txt").write_text(f"{n}\n")


async def test_the_timeline_records_each_change_with_its_percent(aiohttp_client, storage_root):
    _files(storage_root, 20)
    client = await aiohttp_client(create_app(make_settings(storage_root, copy_processes=0)))
    auth = {"Authorization": f"Bearer {await sign_in(client)}"}

    done = await _operation(client, auth, await _copy(client, auth, "Done", 0))
    assert [c["status"] for c in done["timeline"]] == ["NotStarted", "InProgress", "Completed"]
    assert [c["percentComplete"] for c in done["timeline"]] == [0, 0, 100]
    stamps = [_when(c["timestamp"]) for c in done["timeline"]]
    assert stamps == sorted(stamps)
    assert done["timeline"][0]["timestamp"] == done["createdTimestamp"]
    assert done["timeline"][1]["timestamp"] == done["startTimestamp"]
    assert done["timeline"][-1]["timestamp"] == done["statusTimestamp"]

    # cancelled half way: the last change says how far it had come
    token = await _copy(client, auth, "Half", 50)
    while (await _operation(client, auth, token, ended=False))["percentComplete"] < 20:
        await asyncio.sleep(0.02)
    resp = await client.post(f"/sandbox/operations/{token}/cancel", headers=auth)
    assert resp.status == 200, await resp.text()
    cancelled = await _operation(client, auth, token)
    assert [c["status"] for c in cancelled["timeline"]] == ["NotStarted", "InProgress", "Cancelled"]
    assert 20 <= cancelled["timeline"][-1]["percentComplete"] == cancelled["percentComplete"] < 100
    # the listing says the same
    resp = await client.get("/sandbox/operations", headers=auth)
    listed = {op["operationToken"]: op for op in (await resp.json())["value"]}
    assert listed[token]["timeline"] == cancelled["timeline"]


async def test_the_timeline_after_a_restart_is_made_from_the_times(server_factory, tmp_path, storage_root):
    _files(storage_root, 3)
    server = server_factory.start(storage_root)
    async with aiohttp.ClientSession(server.base_url) as client:
        auth = {"Authorization": f"Bearer {await sign_in(client)}"}
        before = await _operation(client, auth, await _copy(client, auth, "Copy", 0))
    assert server.stop() == 0
    server = server_factory.start(storage_root)
    async with aiohttp.ClientSession(server.base_url) as client:
        auth = {"Authorization": f"Bearer {await sign_in(client)}"}
        after = await _operation(client, auth, before["operationToken"])
    assert [c["status"] for c in after["timeline"]] == ["NotStarted", "InProgress", "Completed"]
    assert [c["timestamp"] for c in after["timeline"]] == [
        before["createdTimestamp"],
        before["startTimestamp"],
        before["statusTimestamp"],
    ]
    assert after["timeline"][-1]["percentComplete"] == 100


async def test_a_delivery_with_its_body_and_each_attempts_headers(aiohttp_client, storage_root, receivers):
    _files(storage_root, 2)
    settings = make_settings(
        storage_root,
        **ELEMENTS_SETTINGS,
        signature_key=KEY,
        webhook_retries=1,
        webhook_backoff_s=1.1,  # (the two attempts are signed in different seconds)
        webhook_timeout_s=2.0,
        copy_processes=0,
    )
    client = await aiohttp_client(create_app(settings))
    auth = {"Authorization": f"Bearer {await sign_in(client)}"}
    rx = await receivers(fail_first=1)
    headers = {**hub_auth(), "Elements-Async-Request": "True", "Elements-Async-Callback-Url": rx.url}
    resp = await client.post(
        f"{HUB}/folders/copy", params={"path": "/Src"}, json={"path": "/Dst"}, headers=headers
    )
    assert resp.status == 202, await resp.text()
    event = (await resp.json())["eventId"]
    await rx.wait_delivered(1, timeout=10)
    first, second = rx.requests[:2]

    listed = await (await client.get("/sandbox/deliveries", params={"eventId": event}, headers=auth)).json()
    [delivery] = listed["value"]
    deadline = time.monotonic() + 5
    while True:
        resp = await client.get(f"/sandbox/deliveries/{delivery['notificationId']}", headers=auth)
        assert resp.status == 200, await resp.text()
        sent = await resp.json()
        if sent["status"] == "delivered":
            break
        assert time.monotonic() < deadline, sent
        await asyncio.sleep(0.02)

    assert sent["body"] == first.body.decode()
    assert sent["payload"] == json.loads(first.body) and sent["payload"]["eventId"] == event
    assert [a["statusCode"] for a in sent["attempts"]] == [500, 200]
    # each attempt's headers as that attempt sent them (signed at its own time)
    for attempt, received in zip(sent["attempts"], (first, second), strict=True):
        for name, value in attempt["headers"].items():
            assert received.headers[name] == value, name
        assert {"Elements-Webhook-Signature", "webhook-signature", "webhook-timestamp"} <= set(
            attempt["headers"]
        )
    assert (
        sent["attempts"][0]["headers"]["webhook-signature"]
        != sent["attempts"][1]["headers"]["webhook-signature"]
    )
    assert sent["headers"] == sent["attempts"][-1]["headers"]

    # what is not there, or not a number, and a caller without credentials
    for wrong, status in (("999999", 404), ("abc", 400), ("0", 400)):
        resp = await client.get(f"/sandbox/deliveries/{wrong}", headers=auth)
        assert resp.status == status, (wrong, await resp.text())
        assert resp.content_type == "application/problem+json"
    resp = await client.get(f"/sandbox/deliveries/{delivery['notificationId']}")
    assert resp.status == 401
