"""The dashboard (GET /) in a real headless Chromium, against a real `python -m server`.

The browser is the system's Chromium (/usr/bin/chromium, which .ci/run installs); the tests are
skipped with a visible reason where it is missing. Everything waits with Playwright's auto-waiting
`expect` / `wait_for_function`, never with fixed sleeps. The fixtures and helpers are
`dashboard_kit`'s; issue 16's views are tested in test_dashboard_operations.py and
test_dashboard_panels.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import time
from pathlib import Path

import aiohttp
from conftest import REPO_ID
from dashboard_kit import (
    NEEDS_CHROMIUM,
    WAIT_MS,
    Client,
    expect,
    make_files,
    row,
    sign_in_page,
    start_server,
)

pytestmark = NEEDS_CHROMIUM
pytest_plugins = ["dashboard_fixtures"]

# --------------------------------------------------------------------------- tests


async def test_the_page_is_served_with_the_repository_id(server_factory, tmp_path, http):
    root = tmp_path / "root"
    root.mkdir()
    base = start_server(server_factory, root, "--repository-id", "r-<dash>")
    async with http.get(base + "/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        text = await resp.text()
    assert '<meta name="repository-id" content="r-&lt;dash&gt;">' in text
    assert "{{REPOSITORY_ID}}" not in text
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        async with http.get(f"{base}/dashboard/{asset}") as resp:
            assert resp.status == 200
            assert resp.content_type == kind
    # the script's modules, one per panel, and nothing else of the folder
    async with http.get(f"{base}/dashboard/dashboard.js") as resp:
        script = await resp.text()
    modules = re.findall(r'from "\./js/([a-z]+\.js)"|import "\./js/([a-z]+\.js)"', script)
    assert len(modules) >= 5, script[:500]
    for name in {a or b for a, b in modules}:
        async with http.get(f"{base}/dashboard/js/{name}") as resp:
            assert resp.status == 200, name
            assert resp.content_type == "text/javascript"
    for wrong in ("js/nope.js", "js/..%2Fdashboard.css", "js/%2E%2E%2Findex.html", "index.html"):
        async with http.get(f"{base}/dashboard/{wrong}") as resp:
            assert resp.status == 404, wrong


async def test_sign_in_failure_shows_the_error_and_a_401_signs_out(server_factory, tmp_path, page, http):
    root = tmp_path / "root"
    (root / "Docs").mkdir(parents=True)
    base = start_server(server_factory, root)

    await page.goto(base + "/")
    await page.fill("#username", "admin")
    await page.fill("#password", "wrong")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#signin-error")).to_be_visible()
    await expect(page.locator("#signin-error")).to_contain_text("incorrect")
    await expect(page.locator("#app")).to_be_hidden()

    await sign_in_page(page, base)
    assert await page.evaluate("sessionStorage.length") == 1
    # the page's own token expires: its next request answers 401 and the page asks to sign in again
    token = await page.evaluate("JSON.parse(sessionStorage.getItem(sessionStorage.key(0))).token")
    async with http.post(
        f"{base}/sandbox/faults", json={"kind": "expire-token"}, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
    await page.click("#tree-refresh")
    await expect(page.locator("#signin-form")).to_be_visible()
    await expect(page.locator("#signin-error")).to_contain_text("expired")
    assert await page.evaluate("sessionStorage.length") == 0

    # and signing out by hand
    await sign_in_page(page, base)
    await page.click("#signout")
    await expect(page.locator("#signin-form")).to_be_visible()
    await expect(page.locator("#signin-error")).to_be_hidden()


async def test_tree_lists_the_root_and_expands_a_folder(server_factory, tmp_path, page):
    root = tmp_path / "root"
    (root / "Alpha" / "Deep").mkdir(parents=True)
    (root / "Alpha" / "inner.txt").write_bytes(b"x" * 2048)
    (root / "Beta").mkdir()
    (root / "top.txt").write_text("top")
    base = start_server(server_factory, root)
    await sign_in_page(page, base)

    tree = page.locator("#tree")
    names = tree.locator(":scope > li > ul > li > .node > .name")
    await expect(names).to_have_text(["Alpha", "Beta", "top.txt"])  # folders first
    alpha = tree.locator('li[data-path="\\\\Alpha"]')
    twisty = alpha.locator(":scope > .node > .twisty")
    await expect(twisty).to_have_attribute("aria-expanded", "false")
    await expect(alpha.locator(":scope > ul")).to_be_hidden()

    await twisty.click()
    await expect(twisty).to_have_attribute("aria-expanded", "true")
    await expect(alpha.locator(":scope > ul > li > .node > .name")).to_have_text(["Deep", "inner.txt"])
    await expect(alpha.locator('li[data-path="\\\\Alpha\\\\inner.txt"] .size')).to_have_text("2.0 KB")

    # clicking entries fills the copy form
    await alpha.locator('li[data-path="\\\\Alpha\\\\inner.txt"] .name').click()
    await expect(page.locator("#copy-source")).to_have_value("\\Alpha\\inner.txt")
    beta = tree.locator('li[data-path="\\\\Beta"]')
    await beta.locator(".node").hover()
    await beta.locator(".dest").click()
    await expect(page.locator("#copy-dest")).to_have_value("\\Beta")

    await twisty.click()
    await expect(alpha.locator(":scope > ul")).to_be_hidden()


async def test_paced_copy_from_the_form_shows_progress_and_cancels(server_factory, tmp_path, page):
    root = tmp_path / "root"
    make_files(root / "Big", 30)
    (root / "Target").mkdir()
    base = start_server(server_factory, root)
    await sign_in_page(page, base)

    # a path typed with slashes is fine too
    await page.fill("#copy-source", "/Big")
    await page.fill("#copy-dest", "\\Target")
    await page.fill("#copy-name", "Big copy")
    await page.fill("#copy-pace", "150")
    await page.click("#copy-form button[type=submit]")
    await expect(page.locator("#copy-error")).to_be_hidden()
    await expect(page.locator("#copy-ok")).to_be_visible()

    rows = page.locator("#operations tr[data-token]")
    await expect(rows).to_have_count(1)
    op = rows.first
    await expect(op.locator("td").first).to_contain_text("Big")
    await expect(op.locator("td").nth(1)).to_have_text("CopyEntry")
    token = await op.get_attribute("data-token")
    assert token == await page.get_attribute("#copy-form", "data-last-token")

    # the bar advances while the copy runs
    await page.wait_for_function(
        """(token) => {
            const row = document.querySelector(`#operations tr[data-token="${token}"]`);
            const bar = row?.querySelector('.bar[role="progressbar"]');
            return row?.querySelector('.status').textContent === 'InProgress'
                && Number(bar.getAttribute('aria-valuenow')) > 0;
        }""",
        arg=token,
        timeout=WAIT_MS,
    )
    pct = int(await op.locator(".bar").get_attribute("aria-valuenow"))
    assert 0 < pct < 100
    await expect(op.locator(".cancel")).to_be_visible()

    await op.locator(".cancel").click()
    await expect(op.locator(".status")).to_have_text("Cancelled")
    await expect(op.locator(".cancel")).to_be_hidden()
    assert int(await op.locator(".bar").get_attribute("aria-valuenow")) < 100
    assert (root / "Target" / "Big copy").is_dir()

    # the tree refreshes when an operation ends: open Target and see the partial copy
    target = page.locator('#tree li[data-path="\\\\Target"]')
    await target.locator(":scope > .node > .twisty").click()
    await expect(target.locator(":scope > ul > li > .node > .name")).to_have_text(["Big copy"])

    shot = tmp_path / "dashboard.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 0


async def test_two_hundred_operations_and_rows_updated_in_place(server_factory, tmp_path, page, http):
    root = tmp_path / "root"
    (root / "Copies").mkdir(parents=True)
    (root / "one.txt").write_text("one")
    make_files(root / "Small", 6, per_folder=3)
    base = start_server(server_factory, root, "--session-concurrency", "queue")

    client = await Client(http, base).sign_in()
    one = await client.entry_id("\\one.txt")
    copies = await client.entry_id("\\Copies")
    deadline = time.monotonic() + 90
    for batch in range(4):
        # (in batches: a session may have at most 100 operations waiting, and a loaded machine
        # starts them slower than they are asked for)
        for i in range(batch * 50, batch * 50 + 50):
            await client.copy_async(one, copies, f"c{i}.txt")
        while True:
            ops = await client.operations()
            if len(ops) == batch * 50 + 50 and all(o["status"] == "Completed" for o in ops):
                break
            assert time.monotonic() < deadline, "the 200 tiny copies did not finish"
            await asyncio.sleep(0.1)

    await sign_in_page(page, base)
    rows = page.locator("#operations tr[data-token]")
    await expect(rows).to_have_count(200, timeout=WAIT_MS)
    await expect(page.locator('#operations tr[data-status="Completed"]')).to_have_count(200)
    # newest on top (operations started in the same millisecond: by token)
    tokens = await rows.evaluate_all("rows => rows.map(r => r.dataset.token)")
    newest = sorted(ops, key=lambda o: (o["createdTimestamp"], o["operationToken"]), reverse=True)
    assert tokens == [o["operationToken"] for o in newest]

    await page.evaluate(
        """() => {
            const tbody = document.getElementById('operations');
            window.__rows = [...tbody.querySelectorAll('tr[data-token]')];
            window.__rows.forEach((row, i) => { row.__mark = i; });
            window.__added = [];
            window.__removed = [];
            new MutationObserver((records) => {
                for (const r of records) {
                    for (const n of r.addedNodes) window.__added.push(n.dataset?.token ?? n.nodeName);
                    for (const n of r.removedNodes) window.__removed.push(n.dataset?.token ?? n.nodeName);
                }
            }).observe(tbody, { childList: true });
        }"""
    )

    small = await client.entry_id("\\Small")
    token = await client.copy_async(small, copies, "Small copy", pace_ms=60)
    new_row = row(page, token)
    await expect(new_row).to_have_attribute("data-status", "Completed", timeout=WAIT_MS)
    await expect(new_row.locator(".bar")).to_have_attribute("aria-valuenow", "100")
    await expect(new_row.locator(".status")).to_have_text("Completed")
    await expect(rows).to_have_count(201)

    result = await page.evaluate(
        """(token) => {
            const rows = [...document.querySelectorAll('#operations tr[data-token]')];
            return {
                first: rows[0].dataset.token,
                same: rows.slice(1).every((row, i) => row === window.__rows[i] && row.__mark === i),
                connected: window.__rows.every((row) => row.isConnected),
                added: window.__added,
                removed: window.__removed,
            };
        }""",
        token,
    )
    assert result["first"] == token
    assert result["same"] and result["connected"], "earlier rows were re-created or moved"
    assert result["added"] == [token]
    assert result["removed"] == []


def fake_op(token: str, status: str, percent: int, second: int) -> dict[str, object]:
    """An operation the server does not have, in the shape /sandbox/operations gives."""
    created = f"2030-01-01T00:00:{second:02}Z"
    return {
        "operationToken": token, "operationType": "CopyEntry", "status": status,
        "percentComplete": percent, "entriesDone": percent, "entriesTotal": 100, "paceMs": 0,
        "sessionId": "s", "user": "admin", "entryId": 2, "label": f"Copy {token}", "eventId": None,
        "errors": [], "createdTimestamp": created, "startTimestamp": created, "statusTimestamp": created,
    }  # fmt: skip


def op_message(event_id: int, token: str, status: str, percent: int, second: int, eol: str = "\n") -> str:
    """One `operation` message of a scripted stream."""
    op = fake_op(token, status, percent, second)
    # indented JSON: its lines become several `data:` lines, joined again with newlines
    data = json.dumps(op, indent=1).replace("\n", f"{eol}data: ")
    return f"id: {event_id}{eol}event: operation{eol}data: {data}{eol}{eol}"


async def test_stream_parsing_merging_and_reconnecting_with_last_event_id(server_factory, tmp_path, page):
    """A scripted stream (the browser's request answered by the test): CRLF and LF lines, comments,
    data split over lines, messages out of order; then the stream ends and the page comes back
    with Last-Event-ID, and reads the operations' listing again."""
    root = tmp_path / "root"
    root.mkdir()
    base = start_server(server_factory, root)
    one, two = "fake-1", "fake-2"
    script = (
        "retry: 1000\r\n\r\n"
        + op_message(7, one, "InProgress", 50, 1, eol="\r\n")
        + ": keepalive\n\n"
        + op_message(8, one, "InProgress", 30, 1)  # late: the percent does not go back
        + op_message(9, one, "Cancelled", 55, 1)
        + op_message(10, one, "InProgress", 60, 1)  # late: a terminal status stays
        + op_message(11, two, "NotStarted", 0, 2)
        + 'id: 12\nevent: operation\ndata: {"unfinished'  # cut off: never dispatched
    )
    seen: list[str | None] = []

    async def events(route, request):
        seen.append(request.headers.get("last-event-id"))
        body = script if len(seen) == 1 else ": keepalive\n\n"
        await route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    def reconnect(request) -> bool:
        return request.url.endswith("/sandbox/events") and request.headers.get("last-event-id") == "11"

    # after the reconnect, the page reads the listing again and keeps only what it lists: here, the
    # scripted operations, as a listing taken a while ago would have them (which takes nothing back)
    listings: list[str] = []

    async def operations(route, request):
        listings.append(request.url)
        if len(listings) == 1:
            await route.continue_()
            return
        stale = [fake_op(two, "NotStarted", 0, 2), fake_op(one, "InProgress", 10, 1)]
        await route.fulfill(status=200, json={"value": stale})

    await page.route("**/sandbox/operations?*", operations)
    await page.route("**/sandbox/events*", events)
    await page.goto(base + "/")
    await page.fill("#username", "admin")
    await page.fill("#password", "admin")
    async with page.expect_request(reconnect):
        await page.click("#signin-form button[type=submit]")
    deadline = time.monotonic() + 10
    while len(listings) < 2:  # (the listing read again after the reconnect)
        assert time.monotonic() < deadline, listings
        await asyncio.sleep(0.02)

    first = row(page, one)
    await expect(first.locator(".status")).to_have_text("Cancelled")
    await expect(first.locator(".bar")).to_have_attribute("aria-valuenow", "55")
    await expect(first.locator(".cancel")).to_be_hidden()
    await expect(row(page, two).locator(".status")).to_have_text("NotStarted")
    rows = page.locator("#operations tr[data-token]")
    assert await rows.evaluate_all("rs => rs.map(r => r.dataset.token)") == [two, one]  # newest on top
    assert seen[0] is None


async def test_delivery_log_and_copy_errors(server_factory, tmp_path, page, http):
    root = tmp_path / "root"
    (root / "Src").mkdir(parents=True)
    (root / "Src" / "a.txt").write_text("a")
    base = start_server(server_factory, root, "--webhook-retries", "1", "--webhook-backoff-s", "0.1")
    await sign_in_page(page, base)

    # a path that does not exist: the problem's title and detail, inline
    await page.fill("#copy-source", "\\Nope")
    await page.fill("#copy-dest", "\\")
    await page.click("#copy-form button[type=submit]")
    await expect(page.locator("#copy-error")).to_contain_text("Source:")
    await expect(page.locator("#copy-error")).to_contain_text("Nope")
    await expect(page.locator("#operations tr[data-token]")).to_have_count(0)

    # an Elements copy whose webhook cannot be delivered: each attempt listed in one row
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/webhook"
    headers = {
        "Authorization": "User sandbox-user-secret, Element sandbox-element-token",
        "Elements-Async-Request": "True",
        "Elements-Async-Callback-Url": dead,
    }
    url = f"{base}/elements/api-v2/hubs/documents/folders/copy"
    async with http.post(url, params={"path": "/Src"}, json={"path": "/Src copy"}, headers=headers) as resp:
        assert resp.status == 202, await resp.text()
    deliveries = page.locator("#deliveries tr[data-notification]")
    await expect(deliveries).to_have_count(1)
    delivery = deliveries.first
    await expect(delivery.locator(".status")).to_have_text("queued")
    await expect(delivery.locator(".attempts li")).to_have_count(2)
    await expect(delivery.locator(".attempts li").first).to_contain_text("#1")
    await expect(delivery.locator(".url")).to_have_text(dead)
    # the Elements operation is listed too (the admin sees every user's)
    await expect(page.locator('#operations tr[data-status="Completed"] td.user')).to_have_text("elements")


HUB_AUTH = {"Authorization": "User sandbox-user-secret, Element sandbox-element-token"}
BULK = "/elements/api-v2/hubs/documents/bulk"


async def bulk_job(http: aiohttp.ClientSession, base: str, query: str, callback: str) -> int:
    """Start a bulk job whose callback goes to `callback`, and wait for it to complete."""
    headers = {**HUB_AUTH, "Elements-Async-Callback-URL": callback}
    async with http.post(f"{base}{BULK}/query", params={"q": query}, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        job = int((await resp.json())["id"])
    deadline = time.monotonic() + 30
    while True:
        async with http.get(f"{base}{BULK}/{job}/status", headers=HUB_AUTH) as resp:
            status = await resp.json()
        if status["status"] == "COMPLETED":
            return job
        assert status["status"] in ("CREATED", "RUNNING") and time.monotonic() < deadline, status
        await asyncio.sleep(0.02)


async def test_bulk_jobs_and_the_delivery_queue_with_redeliver(
    server_factory, tmp_path, page, http, receivers
):
    """Bulk jobs are listed as operations, by their query and records; their callbacks, refused, wait
    in the delivery queue (loaded with the page, and as they fail) until Redeliver sends them."""
    root = tmp_path / "root"
    make_files(root / "Docs", 12, per_folder=4)
    # (no retries: a refused webhook is queued at once)
    base = start_server(server_factory, root, "--webhook-retries", "0")
    rx = await receivers(fail_first=2)

    # one job's callback refused before the page is open: the queue's snapshot has it
    files_query = "select name, size from files where path like '/docs/%' order by name"
    first = await bulk_job(http, base, files_query, rx.url)
    await rx.wait_requests(1)
    await sign_in_page(page, base)
    queue = page.locator("#queue tr[data-notification]")
    await expect(queue).to_have_count(1)
    await expect(queue.first.locator(".eid")).to_have_text(str(first))

    # the other's while the page watches
    second = await bulk_job(http, base, "select * from folders", rx.url)
    await expect(queue).to_have_count(2)
    await expect(page.locator("#queue-count")).to_have_text("2 queued")
    assert await queue.evaluate_all("rows => rows.map(r => r.querySelector('.eid').textContent)") == [
        str(second),
        str(first),
    ]  # newest on top
    queued = queue.first
    await expect(queued.locator(".url")).to_have_text(rx.url)
    await expect(queued.locator(".last")).to_contain_text("1 attempt, last #1 · 500")

    # both jobs are listed among the operations, recognisably
    jobs = page.locator('#operations tr[data-kind="BulkQuery"]')
    await expect(jobs).to_have_count(2)
    for job, query, records in ((second, "select * from folders", 4), (first, files_query, 12)):
        job_row = jobs.filter(has_text=query)
        await expect(job_row.locator(".type")).to_have_text("Bulk query")
        await expect(job_row.locator(".label .text")).to_have_text(query)
        await expect(job_row.locator(".meta")).to_have_text(f"{records} records · job {job}")
        await expect(job_row.locator(".status")).to_have_text("Completed")
        await expect(job_row.locator(".cancel")).to_be_hidden()

    # Redeliver: the webhook goes again, with the same notificationId, and leaves the queue
    notification = await queued.get_attribute("data-notification")
    await queued.locator(".redeliver").click()
    await expect(queue).to_have_count(1)
    await expect(queue.first.locator(".eid")).to_have_text(str(first))
    [delivered] = await rx.wait_delivered(1)
    assert delivered.headers["Elements-Webhook-Id"] == notification
    assert delivered.json()["id"] == second and delivered.json()["status"] == "COMPLETED"
    log = page.locator(f'#deliveries tr[data-notification="{notification}"]')
    await expect(log.locator(".status")).to_have_text("delivered")
    await expect(log.locator(".attempts li")).to_have_count(2)

    await queue.first.locator(".redeliver").click()
    await expect(queue).to_have_count(0)
    await expect(page.locator("#queue-empty")).to_be_visible()
    await expect(page.locator("#queue-count")).to_have_text("")
    await rx.wait_delivered(2)
    assert await page.locator("#queue-error").is_hidden()


# --------------------------------------------------------------------------- the entry panel (issue 13)

SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "storage_root"
INVOICE = "\\Invoices\\2026\\INV-0001.txt"
AGREEMENT = "\\Contracts\\Acme Corp\\agreement.md"
AMENDMENT = "\\Contracts\\Acme Corp\\amendment-1.md"


def sample_root(tmp_path: Path) -> Path:
    """A copy of the sample repository (its catalog seeds the metadata on the first start)."""
    root = tmp_path / "root"
    shutil.copytree(SAMPLE_ROOT, root)
    return root


def tree_item(page, path: str):
    quoted = path.replace("\\", "\\\\").replace('"', '\\"')
    return page.locator(f'#tree li[data-path="{quoted}"]')


async def pick_in_tree(page, path: str) -> None:
    """Open the folders down to `path` in the tree and click its name."""
    parts = [p for p in path.split("\\") if p]
    for i in range(1, len(parts)):
        folder = tree_item(page, "\\" + "\\".join(parts[:i]))
        twisty = folder.locator(":scope > .node > .twisty")
        if await twisty.get_attribute("aria-expanded") != "true":
            await twisty.click()
    await tree_item(page, path).locator(":scope > .node > .name").click()


async def v2_put(http: aiohttp.ClientSession, client: Client, entry_id: int, what: str, body: dict) -> None:
    url = f"{client.base_url}/v2/Repositories/{REPO_ID}/Entries/{entry_id}/{what}"
    async with http.put(url, json=body, headers=client.auth) as resp:
        assert resp.status == 200, await resp.text()


async def expect_entry(page, path: str, template: str) -> None:
    await expect(page.locator("#entry-details")).to_be_visible()
    await expect(page.locator("#entry-path")).to_have_text(path)
    await expect(page.locator("#entry-template")).to_have_text(template)


async def test_entry_panel_shows_template_fields_tags_and_links(server_factory, tmp_path, page, http):
    base = start_server(server_factory, sample_root(tmp_path))
    await sign_in_page(page, base)
    await expect(page.locator("#entry-empty")).to_be_visible()
    await expect(page.locator("#entry-details")).to_be_hidden()

    # an entry picked in the tree: shown, marked in the tree, and still the copy source
    await pick_in_tree(page, INVOICE)
    await expect_entry(page, INVOICE, "Invoice")
    await expect(page.locator("#entry-name")).to_have_text("INV-0001.txt")
    await expect(page.locator("#entry-facts")).to_contain_text("Document")
    await expect(page.locator("#entry-input")).to_have_value(INVOICE)
    await expect(page.locator("#copy-source")).to_have_value(INVOICE)
    await expect(page.locator("#tree .node.selected .name")).to_have_text(["INV-0001.txt"])

    fields = page.locator("#entry-fields tr")
    names = ["Invoice Number", "Vendor", "Amount", "Invoice Date", "Status"]
    await expect(fields.locator(".fname-text")).to_have_text(names)
    await expect(fields.locator(".fvalue")).to_have_text(
        ["INV-0001", "Acme Corp", "1250.00", "2026-11-15", "Approved"]
    )
    # the required field is marked, and only it
    await expect(page.locator('#entry-fields tr[data-required="true"] .fname-text')).to_have_text(["Vendor"])
    await expect(fields.locator(".req")).to_have_count(1)
    await expect(page.locator('#entry-fields tr[data-field="Vendor"] .req')).to_be_visible()

    await expect(page.locator("#entry-tags .chip")).to_have_text(["Reviewed"])
    await expect(page.locator('#entry-tags .chip[data-secure="true"]')).to_have_count(0)
    links = page.locator("#entry-links li")
    await expect(links).to_have_text([f"Invoice → {AGREEMENT} (Supporting Document)"])

    # the other end of a link is one click away
    await links.first.locator("button.other").click()
    await expect_entry(page, AGREEMENT, "Contract")
    await expect(page.locator("#entry-input")).to_have_value(AGREEMENT)
    await expect(page.locator("#entry-name")).to_be_focused()
    await expect(page.locator("#tree .node.selected")).to_have_count(0)  # (its folder is not open)
    keywords = page.locator('#entry-fields tr[data-field="Keywords"] .fvalue')
    await expect(keywords).to_have_text("services, master agreement")  # a multi-value field, joined
    await expect(page.locator("#entry-tags .chip .chip-name")).to_have_text(["Reviewed", "Confidential"])
    secure = page.locator('#entry-tags .chip[data-secure="true"]')
    await expect(secure.locator(".chip-name")).to_have_text("Confidential")
    await expect(secure.locator(".badge")).to_have_text("secure")
    await expect(secure).to_have_attribute("title", "Security tag; watermark: CONFIDENTIAL")
    # a link read from either end: this entry's label first, then the other entry and its label
    await expect(links).to_have_text(
        [
            f"Supporting Document → {INVOICE} (Invoice)",
            f"Contract → {AMENDMENT} (Amendment)",
        ]
    )
    assert await links.evaluate_all("lis => lis.map(li => li.dataset.direction)") == ["in", "out"]

    await links.nth(1).locator("button.other").click()
    await expect_entry(page, AMENDMENT, "Contract")
    await expect(links).to_have_text([f"Amendment → {AGREEMENT} (Contract)"])
    await expect(page.locator("#entry-tags .chip")).to_have_count(0)
    await expect(page.locator("#entry-tags-empty")).to_be_visible()

    # back in the tree, a folder: no metadata at all
    await tree_item(page, "\\Contracts").locator(":scope > .node > .name").click()
    await expect_entry(page, "\\Contracts", "None")
    await expect(page.locator("#entry-details")).to_have_attribute("data-type", "Folder")
    for section in ("fields", "tags", "links"):
        await expect(page.locator(f"#entry-{section}-empty")).to_be_visible()
    await expect(page.locator("#entry-fields tr")).to_have_count(0)


async def test_entry_box_takes_an_id_or_a_path_refreshes_and_reports_errors(
    server_factory, tmp_path, page, http
):
    base = start_server(server_factory, sample_root(tmp_path))
    client = await Client(http, base).sign_in()
    invoices = await client.entry_id("\\Invoices")
    await sign_in_page(page, base)

    # a path typed with slashes; a template field without a value is listed, empty
    await page.fill("#entry-input", "/Welcome.txt")
    await page.click("#entry-form button[type=submit]")
    await expect_entry(page, "\\Welcome.txt", "General")
    await expect(page.locator("#entry-fields tr .fname-text")).to_have_text(["Keywords", "Notes"])
    await expect(page.locator('#entry-fields tr[data-field="Keywords"] .fvalue')).to_have_text("")
    await expect(page.locator('#entry-fields tr[data-field="Notes"] .fvalue')).to_contain_text("Start here")
    await expect(page.locator("#entry-links-empty")).to_be_visible()
    await expect(page.locator("#tree .node.selected .name")).to_have_text(["Welcome.txt"])

    # an id
    await page.fill("#entry-input", str(invoices))
    await page.press("#entry-input", "Enter")
    await expect_entry(page, "\\Invoices", "None")
    await expect(page.locator("#entry-template")).to_have_class("entry-template none")

    # changed elsewhere, read again with Refresh
    await v2_put(http, client, invoices, "Tags", {"tags": ["Archived", "Confidential"]})
    await v2_put(http, client, invoices, "Template", {"templateName": "General"})
    await page.click("#entry-refresh")
    await expect(page.locator("#entry-template")).to_have_text("General")
    await expect(page.locator("#entry-tags .chip .chip-name")).to_have_text(["Archived", "Confidential"])
    await expect(page.locator("#entry-fields tr .fname-text")).to_have_text(["Keywords", "Notes"])

    # what is not there: the server's problem, inline, and nothing stale shown
    for wrong, said in (("\\Nope", "Nope"), ("99999", "99999")):
        await page.fill("#entry-input", wrong)
        await page.click("#entry-form button[type=submit]")
        await expect(page.locator("#entry-error")).to_contain_text(said)
        await expect(page.locator("#entry-details")).to_be_hidden()
        await expect(page.locator("#entry-refresh")).to_be_hidden()
    await pick_in_tree(page, "\\Welcome.txt")
    await expect_entry(page, "\\Welcome.txt", "General")
    await expect(page.locator("#entry-error")).to_be_hidden()

    # signing out forgets the entry
    await page.click("#signout")
    await sign_in_page(page, base)
    await expect(page.locator("#entry-details")).to_be_hidden()
    await expect(page.locator("#entry-input")).to_have_value("")
    await expect(page.locator("#entry-empty")).to_be_visible()


async def test_entry_panel_follows_pages_escapes_text_and_fits_390_px(server_factory, tmp_path, page, http):
    base = start_server(server_factory, sample_root(tmp_path))
    client = await Client(http, base).sign_in()
    welcome = await client.entry_id("\\Welcome.txt")
    agreement = await client.entry_id(AGREEMENT)
    trap = '<img src=x onerror="window.__pwned = 1">'
    fields = [
        {"name": "Notes", "values": [trap]},
        {"name": "Keywords", "values": ["<b>one</b>", "two & three"]},
    ]
    await v2_put(http, client, welcome, "Fields", {"fields": fields})

    # the server pages every collection one item at a time: the panel follows each nextLink
    next_pages: list[str] = []

    async def one_per_page(route, request):
        if "skip=" in request.url:
            next_pages.append(request.url)
        await route.continue_(headers={**request.headers, "prefer": "maxpagesize=1"})

    await page.route("**/v2/Repositories/*/Entries/*/*", one_per_page)
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in_page(page, base)

    await pick_in_tree(page, "\\Welcome.txt")
    await expect_entry(page, "\\Welcome.txt", "General")
    await expect(page.locator('#entry-fields tr[data-field="Notes"] .fvalue')).to_have_text(trap)
    await expect(page.locator('#entry-fields tr[data-field="Keywords"] .fvalue')).to_have_text(
        "<b>one</b>, two & three"
    )
    await expect(page.locator("#entry img, #entry b")).to_have_count(0)
    assert await page.evaluate("window.__pwned") is None

    await page.fill("#entry-input", AGREEMENT)
    await page.click("#entry-form button[type=submit]")
    await expect_entry(page, AGREEMENT, "Contract")
    await expect(page.locator("#entry-fields tr")).to_have_count(4)
    await expect(page.locator("#entry-tags .chip")).to_have_count(2)
    await expect(page.locator("#entry-links li")).to_have_count(2)
    # (Fields 4 pages, Tags 2, Links 2: the first page of each asked for, the others followed)
    followed = [u for u in next_pages if f"/Entries/{agreement}/" in u]
    assert len(followed) >= 5, next_pages

    # nothing wider than the phone's screen
    widest = await page.evaluate(
        """() => Math.max(document.documentElement.scrollWidth,
            ...[...document.querySelectorAll('#entry *')].map((n) => n.getBoundingClientRect().right))"""
    )
    assert widest <= 390, f"the page is {widest}px wide at 390px"
    shot = tmp_path / "entry-390.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 0
