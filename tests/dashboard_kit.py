"""What the dashboard's browser tests share (tests/test_dashboard*.py): a Laserfiche client to set
the scene beside the browser, signing the page in, and screenshots at desktop and phone sizes. The
fixtures (a real headless Chromium, a page that fails its test on any uncaught script error) are
`dashboard_fixtures`'s: a test module sets `pytest_plugins = ["dashboard_fixtures"]` and
`pytestmark = NEEDS_CHROMIUM`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import REPO_ID, ServerFactory

CHROMIUM = Path("/usr/bin/chromium")
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
)

async_api = pytest.importorskip("playwright.async_api", reason="the 'playwright' package is not installed")
expect = async_api.expect

WAIT_MS = 30_000  # generous: CI machines are slow, and nothing here waits longer than it must
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def start_server(server_factory: ServerFactory, root: Path, *extra: str) -> str:
    return server_factory.start(root, *extra).base_url


class Client:
    """A Laserfiche caller of the same server, to set the scene beside the browser."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str):
        self.http = http
        self.base_url = base_url
        self.api = f"{base_url}/v1/Repositories/{REPO_ID}"
        self.token = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def sign_in(self, user: str = "admin", password: str = "admin") -> Client:
        form = {"grant_type": "password", "username": user, "password": password}
        async with self.http.post(f"{self.api}/Token", data=form) as resp:
            assert resp.status == 200, await resp.text()
            self.token = (await resp.json())["access_token"]
        return self

    async def entry_id(self, path: str) -> int:
        url = f"{self.api}/Entries/ByPath"
        async with self.http.get(url, params={"fullPath": path}, headers=self.auth) as resp:
            assert resp.status == 200, await resp.text()
            return int((await resp.json())["entry"]["id"])

    async def copy_async(self, source_id: int, dest_id: int, name: str, pace_ms: int = 0) -> str:
        url = f"{self.api}/Entries/{dest_id}/Laserfiche.Repository.Folder/CopyAsync"
        headers = {**self.auth, "Sandbox-Pace-Ms": str(pace_ms)}
        body = {"sourceId": source_id, "name": name}
        async with self.http.post(url, params={"autoRename": "true"}, json=body, headers=headers) as resp:
            assert resp.status in (201, 202), await resp.text()
            return str((await resp.json())["token"])

    async def operations(self) -> list[dict[str, Any]]:
        return list((await self.sandbox("GET", "/sandbox/operations"))["value"])

    async def sandbox(self, method: str, path: str, **kw: Any) -> Any:
        """A /sandbox route with this client's bearer: its JSON (None if it has no body)."""
        async with self.http.request(method, self.base_url + path, headers=self.auth, **kw) as resp:
            assert resp.status < 300, f"{method} {path}: {resp.status} {await resp.text()}"
            return await resp.json() if resp.content_length != 0 and resp.status != 204 else None


async def sign_in_page(page, base_url: str, user: str = "admin", password: str = "admin") -> None:
    await page.goto(base_url + "/")
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#tree")).to_be_visible()
    await expect(page.locator("#stream-state")).to_have_text("live")


def row(page, token: str):
    return page.locator(f'#operations tr[data-token="{token}"]')


def make_files(folder: Path, count: int, per_folder: int = 10) -> None:
    """`count` small files spread over subfolders of `per_folder` files each."""
    for i in range(count):
        sub = folder / f"part{i // per_folder}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{i:03}.txt").write_text(f"file {i}\n")


async def page_width(page) -> int:
    """How wide the page is laid out: wider than the viewport means it scrolls sideways."""
    return int(await page.evaluate("document.documentElement.scrollWidth"))


async def screenshots(page, folder: Path, name: str, then: dict[str, int] = DESKTOP) -> list[Path]:
    """The page at desktop and at phone size (full length), into `folder` (a test's tmp_path); at
    the phone's width nothing may reach past the screen. The viewport is `then` afterwards."""
    shots = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        if size == "phone":
            width = await page_width(page)
            assert width <= PHONE["width"], f"the page is {width}px wide at {PHONE['width']}px"
        shot = folder / f"{name}-{size}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
        shots.append(shot)
    await page.set_viewport_size(then)
    return shots


def seconds_of(took: str) -> float:
    """What the dashboard's duration says, in seconds: "850 ms", "6.2 s", "3 min 05 s", "1 h 02 min"."""
    units = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}
    words = took.split()
    assert words and len(words) % 2 == 0, took
    return sum(float(words[i]) * units[words[i + 1]] for i in range(0, len(words), 2))


HUB = "/elements/api-v2/hubs/documents"
HUB_AUTH = {"Authorization": "User sandbox-user-secret, Element sandbox-element-token"}


async def elements_copy(
    http: aiohttp.ClientSession, base: str, source: str, target: str, callback: str, pace_ms: int = 0
) -> int:
    """An asynchronous Open Connectors folder copy whose webhook goes to `callback`: its event id."""
    headers = {
        **HUB_AUTH,
        "Elements-Async-Request": "True",
        "Elements-Async-Callback-Url": callback,
        "Sandbox-Pace-Ms": str(pace_ms),
    }
    url = f"{base}{HUB}/folders/copy"
    async with http.post(url, params={"path": source}, json={"path": target}, headers=headers) as resp:
        assert resp.status == 202, await resp.text()
        return int((await resp.json())["eventId"])
