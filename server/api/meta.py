"""Routes about the server itself: liveness, the OpenAPI description, and the API reference that
renders it (`/docs`: Swagger UI, whose files come from the openapi-ui-bundles package, so the page
needs nothing from any other host)."""

from __future__ import annotations

from aiohttp import web
from openapi_ui_bundles import swagger_ui

from .. import __version__
from ..openapi import document
from .common import json, public

routes = web.RouteTableDef()

# the files of Swagger UI the page uses, and as what (nothing else of the package is reachable)
DOCS_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# always revalidated (cheaply: the files answer If-None-Match), so an upgrade is seen at once
_NO_CACHE = {"Cache-Control": "no-cache"}
# no online validator badge (validatorUrl): the page asks nothing of any other host
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Document operations sandbox: API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<style>body { margin: 0; background: #fafafa; }</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
</script>
</body>
</html>
"""


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    return json({"status": "ok"})


@routes.get("/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    return json(document(__version__))


@routes.get("/docs")
@public
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html", charset="utf-8", headers=_NO_CACHE)


@routes.get("/docs/assets/{name}")
@public
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in DOCS_ASSETS:
        raise web.HTTPNotFound(text=f"No API reference file {name!r}.")
    # (FileResponse reads the file off the event loop, and answers ranges and revalidations)
    return web.FileResponse(
        swagger_ui.static_path / name, headers={"Content-Type": DOCS_ASSETS[name], **_NO_CACHE}
    )
