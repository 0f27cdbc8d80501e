"""The dashboard tests' fixtures (a plugin: `pytest_plugins = ["dashboard_fixtures"]`, so that test
modules need not import them): a real headless Chromium, the system's /usr/bin/chromium (which
.ci/run installs); a page that fails its test on any uncaught script error; an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from dashboard_kit import CHROMIUM, WAIT_MS, async_api


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(WAIT_MS)
    yield page
    await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
