"""The dashboard: one page, its style and its script (an ES module importing one module per panel
from `js/`), served as they are (no build step)."""

from __future__ import annotations

import asyncio
import functools
import html
from pathlib import Path

from aiohttp import web

from ..keys import settings_key
from .common import public

routes = web.RouteTableDef()

PAGES = Path(__file__).resolve().parent.parent / "dashboard"
# what the page's folder serves, and as what (nothing else in it is reachable)
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# the script's modules: whatever js/ holds as the package was installed (read once, at import)
MODULES = frozenset(path.name for path in (PAGES / "js").glob("*.js"))
# the page is small: always fetched afresh, so an upgraded server never runs with a stale script
_NO_STORE = {"Cache-Control": "no-cache"}


@functools.cache
def _read(name: str) -> bytes:
    return (PAGES / name).read_bytes()


@routes.get("/")
@public
async def page(request: web.Request) -> web.Response:
    repository_id = html.escape(request.app[settings_key].repository_id, quote=True)
    body = (await asyncio.to_thread(_read, "index.html")).replace(
        b"{{REPOSITORY_ID}}", repository_id.encode()
    )
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers=_NO_STORE)


@routes.get("/dashboard/{name}")
@public
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(text=f"No dashboard file {name!r}.")
    return await _file(name, ASSETS[name])


@routes.get("/dashboard/js/{name}")
@public
async def module(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in MODULES:
        raise web.HTTPNotFound(text=f"No dashboard module {name!r}.")
    return await _file(f"js/{name}", "text/javascript")


async def _file(name: str, content_type: str) -> web.Response:
    return web.Response(
        body=await asyncio.to_thread(_read, name),
        content_type=content_type,
        charset="utf-8",
        headers=_NO_STORE,
    )
