"""Issue 16, item 7: the dashboard's operations in a real headless Chromium against a real
`python -m server`: each one's start, duration and estimate of what is left; the detail view (its
timeline of status changes, errors, and its webhook's payload, headers and attempts, with
Redeliver); v2's long operations and bulk jobs listed like copies; and a phone-sized layout that
keeps Cancel in reach. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import json
import re
import time

from conftest import REPO_ID
from dashboard_kit import (
    HUB,
    HUB_AUTH,
    NEEDS_CHROMIUM,
    PHONE,
    Client,
    elements_copy,
    expect,
    make_files,
    page_width,
    row,
    screenshots,
    seconds_of,
    sign_in_page,
    start_server,
)

pytestmark = NEEDS_CHROMIUM
pytest_plugins = ["dashboard_fixtures"]

CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")
ETA = re.compile(r"^~(\d+(\.\d)? (ms|s)|\d+ min \d\d s|\d+ h \d\d min) left$")
V2 = f"/v2/Repositories/{REPO_ID}"


def fact(page, name: str):
    return page.locator(f'#detail-facts tr[data-name="{name}"] td')


def timeline(page):
    return page.locator("#detail-timeline li")


async def test_times_estimate_timeline_and_cancel_in_the_detail_view(server_factory, tmp_path, page, http):
    root = tmp_path / "root"
    make_files(root / "Big", 40)
    (root / "Target").mkdir()
    base = start_server(server_factory, root)
    client = await Client(http, base).sign_in()
    big, target = await client.entry_id("\\Big"), await client.entry_id("\\Target")
    await sign_in_page(page, base)

    token = await client.copy_async(big, target, "Big copy", pace_ms=150)
    op = row(page, token)
    await page.wait_for_function(
        """(token) => {
            const row = document.querySelector(`#operations tr[data-token="${token}"]`);
            return row?.dataset.status === 'InProgress'
                && Number(row.querySelector('.bar').getAttribute('aria-valuenow')) > 0;
        }""",
        arg=token,
    )
    # when it started, how long it has run, and what is left, from percentComplete and the time so far
    await expect(op.locator(".started")).to_have_text(CLOCK)
    await expect(op.locator(".eta")).to_have_text(ETA)
    took = await op.locator(".duration").text_content()
    await expect(op.locator(".duration")).not_to_have_text(took or "")  # the clock goes on between messages

    # the detail view, opened from the row
    await op.locator("button.open").click()
    detail = page.locator("#detail")
    await expect(detail).to_be_visible()
    await expect(detail).to_have_attribute("data-token", token)
    await expect(page.locator("#detail-title")).to_be_focused()
    await expect(page.locator("#detail-label")).to_contain_text("Big")
    await expect(page.locator("#detail-status")).to_have_text("InProgress")
    await expect(fact(page, "Type")).to_have_text("CopyEntry")
    await expect(fact(page, "Started")).to_have_text(CLOCK)
    await expect(fact(page, "Left")).to_have_text(re.compile(r"^~"))
    await expect(fact(page, "Token")).to_have_text(token)
    await expect(timeline(page).locator(".status")).to_have_text(["NotStarted", "InProgress"])
    await expect(page.locator("#detail-errors-empty")).to_be_visible()
    await expect(page.locator("#detail-webhook-note")).to_contain_text("only the Elements dialect")
    await screenshots(page, tmp_path, "detail-running")

    await page.click("#detail-cancel")
    await expect(page.locator("#detail-status")).to_have_text("Cancelled")
    await expect(timeline(page).locator(".status")).to_have_text(["NotStarted", "InProgress", "Cancelled"])
    await expect(page.locator("#detail-cancel")).to_be_hidden()
    await expect(fact(page, "Left")).to_have_count(0)
    await expect(fact(page, "Ended")).to_have_text(CLOCK)
    await expect(op.locator(".eta")).to_be_hidden()
    await expect(op.locator(".cancel")).to_be_hidden()

    # what the page shows is what the server recorded
    listed = await client.sandbox("GET", f"/sandbox/operations/{token}")
    assert [c["status"] for c in listed["timeline"]] == ["NotStarted", "InProgress", "Cancelled"]
    cancelled = listed["timeline"][-1]
    assert 0 < cancelled["percentComplete"] < 100
    await expect(timeline(page).last.locator(".pct")).to_have_text(f"{cancelled['percentComplete']}%")
    ran = seconds_of(await fact(page, "Took").text_content() or "")
    start_s = time.mktime(time.strptime(listed["startTimestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
    end_s = time.mktime(time.strptime(listed["statusTimestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(ran - (end_s - start_s)) <= 1.5, (ran, listed)
    assert seconds_of(await op.locator(".duration").text_content() or "") == ran
    await screenshots(page, tmp_path, "detail-cancelled")

    await page.click("#detail-close")
    await expect(detail).to_be_hidden()


async def test_detail_shows_the_webhook_payload_headers_attempts_and_redelivers(
    server_factory, tmp_path, page, http, receivers
):
    root = tmp_path / "root"
    make_files(root / "Src", 3)
    # (no retries: the refused webhook is queued at once)
    base = start_server(server_factory, root, "--webhook-retries", "0")
    rx = await receivers(fail_first=1)
    event = await elements_copy(http, base, "/Src", "/Src copy", rx.url)
    [refused] = await rx.wait_requests(1)
    await sign_in_page(page, base)

    op = page.locator('#operations tr[data-kind="CopyEntry"]')
    await expect(op.locator(".status")).to_have_text("Completed")
    await op.locator("button.open").click()
    await expect(fact(page, "Event")).to_have_text(str(event))
    await expect(fact(page, "User")).to_have_text("elements")
    hook = page.locator("#detail-webhooks article.webhook")
    await expect(hook).to_have_count(1)
    notification = await hook.get_attribute("data-notification")
    await expect(hook.locator(".status")).to_have_text("queued")
    await expect(hook.locator(".url")).to_have_text(rx.url)
    await expect(hook.locator(".attempts li")).to_have_count(1)
    await expect(hook.locator(".attempts li.failed")).to_contain_text("#1 · 500")
    await expect(hook.locator("h4").nth(1)).to_have_text("Headers of attempt #1")

    # the headers and the payload as the receiver got them
    async def shown_headers() -> dict[str, str]:
        rows = hook.locator("table.headers tr")
        names = await rows.locator("th").all_text_contents()
        values = await rows.locator("td").all_text_contents()
        return dict(zip(names, values, strict=True))

    signed = ("Elements-Webhook-Id", "Elements-Webhook-Signature", "webhook-id", "webhook-timestamp")
    headers = await shown_headers()
    assert headers["Elements-Webhook-Id"] == notification
    for name in (*signed, "webhook-signature"):
        assert headers[name] == refused.headers[name], name
    assert headers["Elements-Webhook-Signature"].startswith("sha256=")
    payload = await hook.locator("pre.payload").text_content()
    assert payload is not None and payload.startswith("{\n")  # (laid out to be read)
    assert json.loads(payload) == refused.json()
    await screenshots(page, tmp_path, "detail-webhook-queued")

    # Redeliver from the detail view: sent again (same notificationId), and the view follows
    await hook.locator("button.redeliver").click()
    [delivered] = await rx.wait_delivered(1)
    assert delivered.headers["Elements-Webhook-Id"] == notification
    await expect(hook.locator(".status")).to_have_text("delivered")
    await expect(hook.locator(".attempts li")).to_have_count(2)
    await expect(hook.locator(".attempts li").nth(1)).to_contain_text("#2 · 200")
    await expect(hook.locator("h4").nth(1)).to_have_text("Headers of attempt #2")
    headers = await shown_headers()
    for name in (*signed, "webhook-signature"):
        assert headers[name] == delivered.headers[name], name
    await expect(page.locator("#queue tr[data-notification]")).to_have_count(0)
    await expect(page.locator("#detail-webhook-error")).to_be_hidden()
    await screenshots(page, tmp_path, "detail-webhook-delivered")


async def _v2(http, client: Client, method: str, path: str, headers: dict | None = None, **kw) -> dict:
    url = client.base_url + V2 + path
    async with http.request(method, url, headers={**client.auth, **(headers or {})}, **kw) as resp:
        assert resp.status < 300, f"{path}: {resp.status} {await resp.text()}"
        return await resp.json()


async def _start_v2_kinds(http, client: Client) -> None:
    """A search, an export, an import of uploaded parts and a test task of half a minute."""
    pace = {"Sandbox-Pace-Ms": "20"}
    await _v2(http, client, "POST", "/Searches/SearchAsync", json={"searchCommand": '{LF:Name="note-*"}'})
    found = await _v2(http, client, "GET", "/Entries/ByPath", params={"fullPath": "\\Docs\\note-00.txt"})
    entry = found["entry"]["id"]
    await _v2(http, client, "POST", f"/Entries/{entry}/ExportAsync", json={"part": "Edoc"}, headers=pace)
    made = await _v2(
        http,
        client,
        "POST",
        "/Entries/CreateMultipartUploadUrls",
        json={"numberOfParts": 1, "fileName": "small.txt", "mimeType": "text/plain"},
    )
    async with http.put(made["urls"][0], data=b"a small upload\n", headers=client.auth) as put:
        assert put.status == 200, await put.text()
        etag = put.headers["ETag"]
    body = {"uploadId": made["uploadId"], "partETags": [etag], "name": "small.txt"}
    await _v2(http, client, "POST", "/Entries/1/Folder/ImportUploadedParts", json=body)
    await _v2(http, client, "POST", "/Tasks/StartTestTaskAsync", params={"operationTime": "30"})


async def test_v2_kinds_and_bulk_jobs_are_listed_like_copies_and_fit_a_phone(
    server_factory, tmp_path, page, http
):
    root = tmp_path / "root"
    (root / "Docs").mkdir(parents=True)
    for n in range(20):
        (root / "Docs" / f"note-{n:02d}.txt").write_text(f"note {n}\n")
    # (v2 runs a session's tasks side by side: the test task does not hold up the others)
    base = start_server(server_factory, root, "--v2-running-per-session", "8")
    client = await Client(http, base).sign_in()
    await page.set_viewport_size(PHONE)
    await sign_in_page(page, base)

    await _start_v2_kinds(http, client)
    headers = {**HUB_AUTH, "Elements-Async-Callback-URL": f"{base}/sandbox/inbox/bulk"}
    query = "select name from files where path like '/Docs/%'"
    async with http.post(f"{base}{HUB}/bulk/query", params={"q": query}, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        job = int((await resp.json())["id"])

    for kind, shown in (
        ("SearchEntry", "SearchEntry"),
        ("ExportEntry", "ExportEntry"),
        ("ImportUploadedParts", "ImportUploadedParts"),
        ("BulkQuery", "Bulk query"),
    ):
        listed = page.locator(f'#operations tr[data-kind="{kind}"]')
        await expect(listed).to_have_count(1)
        await expect(listed.locator(".type")).to_have_text(shown)
        await expect(listed.locator(".status")).to_have_text("Completed")
        await expect(listed.locator(".started")).to_have_text(CLOCK)
        await expect(listed.locator(".duration")).to_have_text(re.compile(r"\d"))
        await expect(listed.locator(".cancel")).to_be_hidden()
    await expect(page.locator('#operations tr[data-kind="SearchEntry"] .label')).to_contain_text("note-*")
    await expect(page.locator('#operations tr[data-kind="BulkQuery"] .meta')).to_have_text(
        f"20 records · job {job}"
    )

    # the test task runs on: at the phone's width its row is a stacked card, Cancel within the screen
    task = page.locator('#operations tr[data-kind="TestTask"]')
    await expect(task.locator(".status")).to_have_text("InProgress")
    await expect(task.locator(".eta")).to_have_text(ETA)
    assert await page.locator("table.ops thead").is_hidden()
    assert await page_width(page) <= PHONE["width"]
    cancel = task.locator(".cancel")
    await cancel.scroll_into_view_if_needed()
    box = await cancel.bounding_box()
    assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
    await screenshots(page, tmp_path, "kinds-running", then=PHONE)
    await cancel.click()
    await expect(task.locator(".status")).to_have_text("Cancelled")
    await expect(cancel).to_be_hidden()

    # the bulk job in detail: its records, and its callback delivered to the inbox
    bulk = page.locator('#operations tr[data-kind="BulkQuery"]')
    await bulk.locator("button.open").click()
    await expect(fact(page, "Records")).to_have_text("20 records")
    await expect(fact(page, "Event")).to_have_text(str(job))
    hook = page.locator("#detail-webhooks article.webhook")
    await expect(hook.locator(".status")).to_have_text("delivered")
    await expect(hook.locator(".url")).to_have_text(f"{base}/sandbox/inbox/bulk")
    assert await page_width(page) <= PHONE["width"]
    await screenshots(page, tmp_path, "kinds-detail", then=PHONE)
