"""The API reference at `/docs`: Swagger UI over `/openapi.json`, its files served by the sandbox
itself (from the openapi-ui-bundles package), so that it renders with no network beyond the server.

Over real sockets: the page and its files through the in-process server, and the page rendered in
the system's headless Chromium against a `python -m server` with every request to another host
refused (skipped where Chromium or Playwright is missing, as tests/test_dashboard.py is).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ServerFactory
from yarl import URL

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 30_000
# what each kind of file the page references must be served as
TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
_REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_the_page_references_only_the_servers_own_files(client):
    resp = await client.get("/docs")  # (no credentials: like /openapi.json)
    page = await resp.text()
    assert resp.status == 200, page
    assert resp.content_type == "text/html"
    referenced = _REFERENCE.findall(page)
    assert len(referenced) >= 3, referenced
    # nothing from another host, by any spelling (absolute, protocol-relative, or in the script)
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in referenced), referenced
    assert not re.search(r"https?:|//", page), "a URL with a host in the page"
    assert '"/openapi.json"' in page
    for ref in referenced:
        asset = await client.get(ref)
        body = await asset.read()
        assert asset.status == 200, ref
        assert asset.content_type == TYPES[Path(ref).suffix], (ref, asset.content_type)
        assert len(body) == int(asset.headers["Content-Length"]) > 0, ref
        # revalidated, not fetched again
        again = await client.get(ref, headers={"If-None-Match": asset.headers["ETag"]})
        assert again.status == 304, ref
    bundle = next(ref for ref in referenced if ref.endswith("bundle.js"))
    resp = await client.get(bundle)
    assert b"SwaggerUIBundle" in await resp.read()


async def test_only_the_listed_files_are_served(client):
    for name in ("index.html", "swagger-ui-standalone-preset.js", "..%2F__init__.py", "%2E%2E", "nothing"):
        resp = await client.get(URL(f"/docs/assets/{name}", encoded=True))
        text = await resp.text()
        assert resp.status == 404, (name, text)
        assert resp.content_type == "application/problem+json", (name, text)
    resp = await client.get("/docs/")
    assert resp.status == 404


# --------------------------------------------------------------------------- in a browser


@pytest.fixture
async def page() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    async_api = pytest.importorskip(
        "playwright.async_api", reason="the 'playwright' package is not installed"
    )
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert not errors, f"uncaught errors in the page: {errors}"
        finally:
            await browser.close()


async def test_the_reference_renders_offline_in_a_browser(server_factory: ServerFactory, tmp_path, page):
    from playwright.async_api import expect

    root = tmp_path / "root"
    root.mkdir()
    server = server_factory.start(root)
    origin = URL(server.base_url)
    served: list[str] = []
    refused: list[str] = []

    async def only_the_sandbox(route: Any, request: Any) -> None:
        url = URL(request.url)
        if url.scheme in ("data", "blob") or (url.host, url.port) == (origin.host, origin.port):
            served.append(url.path)
            await route.continue_()
        else:
            refused.append(request.url)
            await route.abort()

    await page.route("**/*", only_the_sandbox)
    await page.goto(f"{server.base_url}/docs")
    # the operations are rendered from /openapi.json: a summary of each part of the API
    for summary in (
        "Liveness check",
        "Deliver to a webhook inbox (no credentials): anything is recorded, its signatures checked",
        "The armed faults the caller can see",
    ):
        await expect(page.get_by_text(summary, exact=True).first).to_be_visible()
    await expect(page.locator(".opblock").first).to_be_visible()
    assert await page.locator(".opblock").count() > 100
    # an operation opens, with its parameters
    await page.get_by_text("A webhook inbox's deliveries, oldest first (the last 1000)", exact=True).click()
    await expect(page.locator(".parameters").get_by_text("wait", exact=True).first).to_be_visible()
    await page.screenshot(path=str(tmp_path / "docs.png"))

    assert refused == [], f"the page asked another host: {refused}"
    assert {
        "/docs",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/openapi.json",
    } <= set(served), served
    # (and the server is still the one that answered)
    async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/healthz") as resp:
        assert resp.status == 200
