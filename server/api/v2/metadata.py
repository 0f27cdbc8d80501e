"""v2 metadata: an entry's fields, tags, links and template. Thin handlers over `metadata.model`;
the definitions are in `definitions`."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ...errors import BadRequest
from ...keys import metadata_key
from ...metadata.model import FieldUpdate, Link, LinkToSet, Metadata
from .. import metadata_shapes as shapes
from ..common import field, json, read_json
from ..definitions import definition_routes, page
from ..laserfiche_common import look
from . import render
from .entries import METADATA_PAGE_SIZE, entry_id_param
from .render import BASE

routes = web.RouteTableDef()
# the definitions, audit reasons and attributes
DEFINITIONS = definition_routes(BASE, v2=True)


def _metadata(request: web.Request) -> Metadata:
    return request.app[metadata_key]


def updates_of(body: dict[str, Any], name: str = "fields") -> list[FieldUpdate]:
    """`fields: [{name, values: [strings]}]` of a v2 request."""
    raw = field(body, name, list) or []
    updates: list[FieldUpdate] = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest(f"Each of '{name}' must be an object {{name, values}}.")
        field_name = field(item, "name", str, required=True)
        values = item.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadRequest(f"The values of field {field_name!r} must be an array of strings.")
        assert field_name is not None
        updates.append((field_name, values))
    return updates


def _strings(body: dict[str, Any], name: str) -> list[str]:
    values = field(body, name, list) or []
    if not all(isinstance(v, str) for v in values):
        raise BadRequest(f"The field '{name}' must be an array of strings.")
    return values


def properties_of(item: dict[str, Any], name: str) -> dict[str, str]:
    raw = item.get(name) or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise BadRequest(f"The field '{name}' must be an object of strings.")
    return dict(raw)


# ---- an entry's metadata ---------------------------------------------------------------------


@routes.get(BASE + "/Entries/{entryId}/Fields")
async def list_fields(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(_metadata(request).fields, entry_id_param(request))
    items = [shapes.field_values(f, v2=True) for f in found]
    return page(request, items, "Field", METADATA_PAGE_SIZE)


@routes.put(BASE + "/Entries/{entryId}/Fields")
async def set_fields(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    updates = updates_of(await read_json(request))
    found = await asyncio.to_thread(_metadata(request).set_fields, entry_id, updates)
    items = [shapes.field_values(f, v2=True) for f in found]
    return page(request, items, "Field", METADATA_PAGE_SIZE)


@routes.get(BASE + "/Entries/{entryId}/Tags")
async def list_tags(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(_metadata(request).tags, entry_id_param(request))
    return page(request, [shapes.tag(d, v2=True) for d in found], "Tag", METADATA_PAGE_SIZE)


@routes.put(BASE + "/Entries/{entryId}/Tags")
async def set_tags(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    names = _strings(await read_json(request), "tags")
    found = await asyncio.to_thread(_metadata(request).set_tags, entry_id, names)
    return page(request, [shapes.tag(d, v2=True) for d in found], "Tag", METADATA_PAGE_SIZE)


def _links(request: web.Request, links: list[Link]) -> web.Response:
    items = [shapes.link(k, True, lambda i: render.entry_url(request, i)) for k in links]
    return page(request, items, "Link", METADATA_PAGE_SIZE)


@routes.get(BASE + "/Entries/{entryId}/Links")
async def list_links(request: web.Request) -> web.Response:
    return _links(request, await asyncio.to_thread(_metadata(request).links, entry_id_param(request)))


@routes.put(BASE + "/Entries/{entryId}/Links")
async def set_links(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    body = await read_json(request)
    links = []
    for item in field(body, "links", list) or []:
        if not isinstance(item, dict):
            raise BadRequest("Each of 'links' must be an object {linkDefinitionId, otherEntryId, isSource}.")
        definition_id = field(item, "linkDefinitionId", int, required=True)
        other_id = field(item, "otherEntryId", int, required=True)
        is_source = field(item, "isSource", bool)
        assert definition_id is not None and other_id is not None
        properties = properties_of(item, "customProperties")
        links.append(LinkToSet(definition_id, other_id, is_source is not False, properties))
    return _links(request, await asyncio.to_thread(_metadata(request).set_links, entry_id, links))


@routes.put(BASE + "/Entries/{entryId}/Template")
async def set_template(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    body = await read_json(request)
    name = field(body, "templateName", str, required=True)
    assert name is not None
    updates = updates_of(body)
    entry = await asyncio.to_thread(_metadata(request).set_template, entry_id, name, updates)
    return json(render.render(entry, look(request)))


@routes.delete(BASE + "/Entries/{entryId}/Template")
async def remove_template(request: web.Request) -> web.Response:
    entry = await asyncio.to_thread(_metadata(request).remove_template, entry_id_param(request))
    return json(render.render(entry, look(request)))
