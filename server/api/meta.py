"""Routes about the server itself: liveness and the OpenAPI description."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from ..openapi import document
from .common import json, public

routes = web.RouteTableDef()


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    return json({"status": "ok"})


@routes.get("/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    return json(document(__version__))
