"""Issue 16, item 7: the dashboard's faults panel and webhook inbox panel in a real headless
Chromium against a real `python -m server`: arming each kind of fault from the form (the server's
refusal shown as it says it), a fault used up by the operation it fails, disarming; and the inbox's
deliveries arriving live, newest first, each with its verdict per signature scheme, its headers and
its body. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import base64
import json
import time

from dashboard_kit import (
    NEEDS_CHROMIUM,
    Client,
    elements_copy,
    expect,
    make_files,
    screenshots,
    sign_in_page,
    start_server,
)

from server.config import SIGNATURE_KEY
from server.webhooks import headers_for

pytestmark = NEEDS_CHROMIUM
pytest_plugins = ["dashboard_fixtures"]


async def page_client(page, http, base: str) -> Client:
    """A client with the page's own bearer (the session its faults are armed for)."""
    client = Client(http, base)
    client.token = await page.evaluate("JSON.parse(sessionStorage.getItem(sessionStorage.key(0))).token")
    return client


async def test_faults_panel_arms_each_kind_shows_refusals_and_disarms(server_factory, tmp_path, page, http):
    root = tmp_path / "root"
    make_files(root / "Big", 30)
    (root / "Target").mkdir()
    base = start_server(server_factory, root)
    await sign_in_page(page, base)
    client = await page_client(page, http, base)
    faults = page.locator("#faults li.fault")
    await expect(page.locator("#faults-empty")).to_be_visible()
    await expect(page.locator("#faults-clear")).to_be_hidden()

    # an operation failure for this dashboard's session: listed, and on the server
    await expect(page.locator("#fault-url")).to_be_hidden()
    await page.fill("#fault-after", "3")
    await page.select_option("#fault-op-type", "CopyEntry")
    await page.fill("#fault-message", "boom from the dashboard")
    await page.fill("#fault-status", "507")
    await page.click("#fault-form button[type=submit]")
    await expect(page.locator("#fault-ok")).to_contain_text("Armed operation-failure")
    await expect(faults).to_have_count(1)
    await expect(faults.locator(".fault-what")).to_have_text(
        "CopyEntry fails after 3 entries · status 507 · “boom from the dashboard”"
    )
    await expect(faults.locator(".meta")).to_contain_text("1 use left · admin's session")
    await expect(page.locator("#faults-count")).to_have_text("1 armed")
    [armed] = (await client.sandbox("GET", "/sandbox/faults"))["value"]
    assert (armed["afterEntries"], armed["status"], armed["operationType"]) == (3, 507, "CopyEntry")

    # the dashboard's next copy takes it: the copy fails with its message, and the fault is used up
    await page.fill("#copy-source", "\\Big")
    await page.fill("#copy-dest", "\\Target")
    await page.fill("#copy-pace", "20")
    await page.click("#copy-form button[type=submit]")
    failed = page.locator('#operations tr[data-kind="CopyEntry"]')
    await expect(failed.locator(".status")).to_have_text("Failed")
    await expect(failed.locator(".err")).to_have_text("boom from the dashboard")
    await expect(faults).to_have_count(0)
    await expect(page.locator("#faults-empty")).to_be_visible()
    await failed.locator("button.open").click()
    await expect(page.locator("#detail-errors li")).to_contain_text(["boom from the dashboard"])
    await expect(page.locator("#detail-errors-empty")).to_be_hidden()
    await expect(page.locator("#detail-timeline li .status").last).to_have_text("Failed")

    # a refusal is the server's problem, shown as it says it; nothing is armed
    await page.select_option("#fault-kind", "webhook-delay")
    await expect(page.locator("#fault-after")).to_be_hidden()
    await expect(page.locator("#fault-status")).to_be_hidden()
    await page.fill("#fault-url", "http://127.0.0.1:9/hook")
    await page.fill("#fault-delay", "0")
    await page.click("#fault-form button[type=submit]")
    await expect(page.locator("#fault-error")).to_contain_text("delayMs")
    await expect(page.locator("#fault-ok")).to_be_hidden()
    assert (await client.sandbox("GET", "/sandbox/faults"))["value"] == []

    # a late webhook and a failing one; then Disarm one, and Disarm all
    await page.fill("#fault-delay", "1500")
    await page.click("#fault-form button[type=submit]")
    await expect(faults).to_have_count(1)
    await expect(page.locator("#fault-error")).to_be_hidden()
    await page.select_option("#fault-kind", "webhook-failure")
    await expect(page.locator("#fault-delay")).to_be_hidden()
    await page.fill("#fault-url", "http://127.0.0.1:9/other")
    await page.fill("#fault-status", "502")
    await page.fill("#fault-times", "2")
    await page.click("#fault-form button[type=submit]")
    await expect(faults).to_have_count(2)
    await expect(faults.locator(".fault-what")).to_have_text(
        [
            "webhooks to http://127.0.0.1:9/hook held 1500 ms",
            "webhooks to http://127.0.0.1:9/other fail with 502",
        ]
    )
    await expect(faults.nth(1).locator(".meta")).to_contain_text("2 uses left")
    await screenshots(page, tmp_path, "faults")

    await faults.first.locator("button.disarm").click()
    await expect(faults).to_have_count(1)
    await expect(faults.first).to_have_attribute("data-kind", "webhook-failure")
    left = (await client.sandbox("GET", "/sandbox/faults"))["value"]
    assert [f["kind"] for f in left] == ["webhook-failure"]
    await page.click("#faults-clear")
    await expect(faults).to_have_count(0)
    await expect(page.locator("#faults-count")).to_have_text("")
    assert (await client.sandbox("GET", "/sandbox/faults"))["value"] == []


async def post(http, url: str, body: bytes, headers: dict[str, str]) -> int:
    async with http.post(url, data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["id"])


async def test_inbox_panel_shows_deliveries_live_with_verdicts_headers_and_bodies(
    server_factory, tmp_path, page, http
):
    root = tmp_path / "root"
    make_files(root / "Src", 3)
    base = start_server(server_factory, root)
    await sign_in_page(page, base)
    inbox = f"{base}/sandbox/inbox/demo"
    await expect(page.locator("#inboxes-empty")).to_be_visible()

    # opened before anything arrived
    await page.fill("#inbox-name", "demo")
    await page.click("#inbox-form button[type=submit]")
    await expect(page.locator("#inbox-view")).to_be_visible()
    await expect(page.locator("#inbox-url")).to_have_text(inbox)
    await expect(page.locator("#inbox-empty")).to_be_visible()
    arrived = page.locator("#inbox-deliveries li.inbox-delivery")

    # the seed's example: an Elements copy whose callback is the inbox, both signatures verified
    await elements_copy(http, base, "/Src", "/Src copy", inbox)
    await expect(arrived).to_have_count(1)
    signed = arrived.and_(page.locator('[data-id="1"]'))
    await expect(signed).to_have_attribute("data-verified", "true")
    await expect(signed.locator(".verdict")).to_have_text("verified")
    await expect(signed.locator(".scheme")).to_have_text(["Elements HMAC: valid", "Standard Webhooks: valid"])
    await expect(signed.locator(".method")).to_have_text("POST")

    # a forged signature, then something unsigned that is not even UTF-8
    forged = json.dumps({"instanceId": 1, "forged": True}).encode()
    await post(http, inbox, forged, {"Elements-Webhook-Signature": "sha256=AAAA"})
    raw = b"\xff\xfe not text"
    await post(http, inbox, raw, {"Content-Type": "application/octet-stream"})
    # and one signed as the platform signs, by hand
    body = json.dumps({"instanceId": 1, "by": "hand"}).encode()
    await post(http, inbox, body, headers_for(77, SIGNATURE_KEY, body, int(time.time())))
    await expect(arrived).to_have_count(4)
    assert await arrived.evaluate_all("lis => lis.map(li => li.dataset.id)") == ["4", "3", "2", "1"]
    verdicts = ["verified", "unsigned", "not verified", "verified"]
    await expect(arrived.locator(".verdict")).to_have_text(verdicts)
    await expect(arrived.nth(2).locator(".scheme")).to_have_text(
        ["Elements HMAC: invalid", "Standard Webhooks: absent"]
    )
    await expect(arrived.nth(1).locator(".scheme")).to_have_text(
        ["Elements HMAC: absent", "Standard Webhooks: absent"]
    )

    # a delivery opened: its headers and its body (JSON laid out; bytes that are not text as base64)
    await signed.locator("summary").click()
    headers = signed.locator("table.headers tr")
    names = await headers.locator("th").all_text_contents()
    signatures = {"Elements-Webhook-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"}
    assert signatures <= set(names), names
    shown = json.loads(await signed.locator("pre.payload").text_content() or "")
    async with http.get(inbox, headers=(await page_client(page, http, base)).auth) as resp:
        listed = (await resp.json())["deliveries"]
    assert listed[0]["id"] == 1
    assert shown == listed[0]["json"] and shown["eventId"] and shown["instanceId"] == 1
    unsigned = arrived.nth(1)
    await unsigned.locator("summary").click()
    await expect(unsigned.locator("h4").nth(1)).to_have_text("Body (base64: not UTF-8)")
    await expect(unsigned.locator("pre.payload")).to_have_text(base64.b64encode(raw).decode())

    # the list of inboxes follows, live; the view stays on its inbox
    await post(http, f"{base}/sandbox/inbox/other", b"{}", {})
    boxes = page.locator("#inboxes button.inbox")
    await expect(boxes).to_have_count(2)
    demo = page.locator('#inboxes button.inbox[data-name="demo"]')
    await expect(demo.locator(".meta")).to_contain_text("4 deliveries")
    await expect(demo).to_have_attribute("aria-current", "true")
    await expect(arrived).to_have_count(4)
    await screenshots(page, tmp_path, "inbox")

    # emptied: it numbers from 1 again, and what comes next is shown
    await page.click("#inbox-clear")
    await expect(arrived).to_have_count(0)
    await expect(page.locator("#inbox-empty")).to_be_visible()
    await post(http, inbox, forged, {})
    await expect(arrived).to_have_count(1)
    await expect(arrived.first).to_have_attribute("data-id", "1")

    # another inbox, picked from the list
    await page.locator('#inboxes button.inbox[data-name="other"]').click()
    await expect(page.locator("#inbox-url")).to_have_text(f"{base}/sandbox/inbox/other")
    await expect(arrived).to_have_count(1)
    await expect(arrived.first.locator(".verdict")).to_have_text("unsigned")


async def test_a_reset_empties_what_the_page_shows(server_factory, tmp_path, page, http):
    """`POST /sandbox/reset` ends the event stream; the page reconnects and reads its snapshots
    again, and what the reset took away (operations, deliveries, the inbox's deliveries, faults)
    goes from the page too."""
    root = tmp_path / "root"
    make_files(root / "Src", 3)
    base = start_server(server_factory, root)
    await sign_in_page(page, base)
    client = await page_client(page, http, base)
    inbox = f"{base}/sandbox/inbox/demo"
    await page.fill("#inbox-name", "demo")
    await page.click("#inbox-form button[type=submit]")
    await elements_copy(http, base, "/Src", "/Src copy", inbox)
    await client.sandbox("POST", "/sandbox/faults", json={"kind": "webhook-failure", "url": inbox})
    await page.reload()  # (the fault is listed with the snapshots)
    await expect(page.locator("#stream-state")).to_have_text("live")
    await page.fill("#inbox-name", "demo")
    await page.click("#inbox-form button[type=submit]")
    await expect(page.locator("#operations tr[data-token]")).to_have_count(1)
    await expect(page.locator("#deliveries tr[data-notification]")).to_have_count(1)
    await expect(page.locator("#inbox-deliveries li")).to_have_count(1)
    await expect(page.locator("#faults li.fault")).to_have_count(1)
    await page.locator("#operations button.open").click()
    await expect(page.locator("#detail")).to_be_visible()

    await client.sandbox("POST", "/sandbox/reset")
    await expect(page.locator("#operations tr[data-token]")).to_have_count(0)
    await expect(page.locator("#ops-empty")).to_be_visible()
    await expect(page.locator("#ops-count")).to_have_text("0 operations")
    await expect(page.locator("#detail")).to_be_hidden()
    await expect(page.locator("#deliveries tr[data-notification]")).to_have_count(0)
    await expect(page.locator("#deliveries-empty")).to_be_visible()
    await expect(page.locator("#inbox-deliveries li")).to_have_count(0)
    await expect(page.locator("#inbox-empty")).to_be_visible()
    await expect(page.locator("#faults li.fault")).to_have_count(0)
    await expect(page.locator("#stream-state")).to_have_text("live")

    # and what happens next is shown as before
    await post(http, inbox, b"{}", {})
    await expect(page.locator("#inbox-deliveries li")).to_have_count(1)
    await expect(page.locator("#inbox-deliveries li").first).to_have_attribute("data-id", "1")
