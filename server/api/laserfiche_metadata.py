"""v1 metadata: an entry's fields, tags, links and template, in the shapes of the published v1
client; the same model as v2's (the definitions are in `definitions`)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..errors import BadRequest
from ..keys import metadata_key
from ..metadata.model import FieldUpdate, Link, LinkToSet, Metadata
from . import metadata_shapes as shapes
from . import odata
from .common import field, json, read_json, read_json_value
from .definitions import definition_routes, page
from .laserfiche import BASE, entry_id_param, entry_url, render_for
from .v2.metadata import properties_of

routes = web.RouteTableDef()
# the definitions, audit reasons and attributes
DEFINITIONS = definition_routes(BASE, v2=False)


def _metadata(request: web.Request) -> Metadata:
    return request.app[metadata_key]


def updates_of(body: Any, what: str = "request body") -> list[FieldUpdate]:
    """v1's fields: an object of field name -> {values: [{value, position}]} (in position order)."""
    if not isinstance(body, dict):
        raise BadRequest(f"The {what} must be an object of field name -> {{values: [{{value, position}}]}}.")
    updates: list[FieldUpdate] = []
    for name, update in body.items():
        raw = update.get("values") if isinstance(update, dict) else None
        if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
            raise BadRequest(f"The field {name!r} must be {{values: [{{value, position}}]}}.")
        values = []
        for number, item in enumerate(raw, 1):
            value = item.get("value")
            position = item.get("position", number)
            if not isinstance(value, str) or isinstance(position, bool) or not isinstance(position, int):
                raise BadRequest(f"Each value of field {name!r} must be {{value: string, position: number}}.")
            values.append((position, value))
        updates.append((name, [value for _, value in sorted(values, key=lambda pair: pair[0])]))
    return updates


# ---- an entry's metadata ---------------------------------------------------------------------


@routes.get(BASE + "/Entries/{entryId}/fields")
async def list_fields(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(_metadata(request).fields, entry_id_param(request))
    return page(
        request, [shapes.field_values(f, v2=False) for f in found], "FieldValue", odata.DEFAULT_PAGE_SIZE
    )


@routes.put(BASE + "/Entries/{entryId}/fields")
async def set_fields(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    updates = updates_of(await read_json_value(request))
    found = await asyncio.to_thread(_metadata(request).set_fields, entry_id, updates)
    return json({"value": [shapes.field_values(f, v2=False) for f in found]})


@routes.get(BASE + "/Entries/{entryId}/tags")
async def list_tags(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(_metadata(request).tags, entry_id_param(request))
    return page(request, [shapes.tag(d, v2=False) for d in found], "WTagInfo", odata.DEFAULT_PAGE_SIZE)


@routes.put(BASE + "/Entries/{entryId}/tags")
async def set_tags(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    body = await read_json(request)
    names = field(body, "tags", list) or []
    if not all(isinstance(name, str) for name in names):
        raise BadRequest("The field 'tags' must be an array of strings.")
    found = await asyncio.to_thread(_metadata(request).set_tags, entry_id, names)
    return json({"value": [shapes.tag(d, v2=False) for d in found]})


def _links(request: web.Request, links: list[Link]) -> list[dict[str, Any]]:
    return [shapes.link(k, False, lambda i: entry_url(request, i)) for k in links]


@routes.get(BASE + "/Entries/{entryId}/links")
async def list_links(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(_metadata(request).links, entry_id_param(request))
    return page(request, _links(request, found), "WEntryLinkInfo", odata.DEFAULT_PAGE_SIZE)


@routes.put(BASE + "/Entries/{entryId}/links")
async def set_links(request: web.Request) -> web.Response:
    """v1 takes the links the entry is the source of: [{targetId, linkTypeId, customProperties}]."""
    entry_id = entry_id_param(request)
    body = await read_json_value(request)
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise BadRequest("The request body must be an array of {targetId, linkTypeId, customProperties}.")
    links = []
    for item in body:
        target_id = field(item, "targetId", int, required=True)
        type_id = field(item, "linkTypeId", int, required=True)
        assert target_id is not None and type_id is not None
        links.append(LinkToSet(type_id, target_id, True, properties_of(item, "customProperties")))
    found = await asyncio.to_thread(_metadata(request).set_links, entry_id, links)
    return json({"value": _links(request, found)})


@routes.put(BASE + "/Entries/{entryId}/template")
async def set_template(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    body = await read_json(request)
    name = field(body, "templateName", str, required=True)
    assert name is not None
    updates = updates_of(body.get("fields") or {}, "field 'fields'")
    entry = await asyncio.to_thread(_metadata(request).set_template, entry_id, name, updates)
    return json(render_for(request, entry))


@routes.delete(BASE + "/Entries/{entryId}/template")
async def remove_template(request: web.Request) -> web.Response:
    entry = await asyncio.to_thread(_metadata(request).remove_template, entry_id_param(request))
    return json(render_for(request, entry))
