"""The catalog's definitions, audit reasons and attributes, as both Laserfiche dialects serve them
(the same routes but for a few names, each in its own shapes), and the paging of collections held
in memory that the metadata routes share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from ..errors import BadRequest, NotFound
from ..keys import metadata_key
from ..metadata.catalog import Catalog, TemplateDefinition
from . import metadata_shapes as shapes
from . import odata
from .common import bool_param, int_param, json, session_of


def page(request: web.Request, items: Sequence[dict[str, Any]], element_type: str, size: int) -> web.Response:
    """A collection at hand, paged as OData, with `$orderby` and `$select` on its items' members."""
    paging = odata.Paging(request, size)
    known = {key for item in items for key in item}
    chosen = odata.select(request, known, ())
    shown = odata.order_items(request, list(items))[paging.skip : paging.stop]
    if chosen is not None:
        shown = [{k: v for k, v in item.items() if k in chosen} for item in shown]
    return paging.response(shown, len(items), f"Laserfiche.Repository.{element_type}")


def _catalog(request: web.Request) -> Catalog:
    return request.app[metadata_key].catalog


def _id(request: web.Request, name: str) -> int:
    return int_param(request.match_info[name], name)


def _one(items: Sequence[dict[str, Any]], wanted: int, key: str, what: str) -> web.Response:
    for item in items:
        if item[key] == wanted:
            return json(item)
    raise NotFound(f"No {what} has the id {wanted}.")


def _template_named(request: web.Request, name: str) -> TemplateDefinition:
    template = _catalog(request).template_named(name)
    if template is None:
        raise NotFound(f"No template is named {name!r}.")
    return template


def _template_by_id(request: web.Request) -> TemplateDefinition:
    template_id = _id(request, "templateId")
    template = _catalog(request).template(template_id)
    if template is None:
        raise NotFound(f"No template definition has the id {template_id}.")
    return template


def _attributes(request: web.Request) -> dict[str, str]:
    """`?everyone=true`: the attributes for everyone; else the signed-in user's own."""
    catalog = _catalog(request)
    if bool_param(request, "everyone"):
        return dict(catalog.attributes)
    return dict(catalog.user_attributes.get(session_of(request).user, {}))


# what lists one kind of definition, as a dialect shows it
Items = Callable[[web.Request], list[dict[str, Any]]]


def definition_routes(base: str, v2: bool) -> web.RouteTableDef:
    """The routes of one dialect (`base`: its repository's path)."""
    routes = web.RouteTableDef()
    size = odata.DEFAULT_PAGE_SIZE
    # v1 names a template's fields `Fields` and a link definition's id `linkTypeId`
    template_fields = "FieldDefinitions" if v2 else "Fields"
    link_key = "id" if v2 else "linkTypeId"
    names = {
        "field": "FieldDefinition" if v2 else "WFieldInfo",
        "tag": "TagDefinition" if v2 else "WTagInfo",
        "link": "LinkDefinition" if v2 else "EntryLinkTypeInfo",
        "template": "TemplateDefinition" if v2 else "WTemplateInfo",
        "template field": "TemplateFieldDefinition" if v2 else "TemplateFieldInfo",
    }

    def fields(request: web.Request) -> list[dict[str, Any]]:
        return [shapes.field_definition(d, v2) for d in _catalog(request).fields]

    def tags(request: web.Request) -> list[dict[str, Any]]:
        return [shapes.tag(d, v2) for d in request.app[metadata_key].tag_definitions()]

    def links(request: web.Request) -> list[dict[str, Any]]:
        return [shapes.link_definition(d, v2) for d in _catalog(request).links]

    def listed_and_by_id(path: str, id_param: str, key: str, what: str, items: Items) -> None:
        """`path` lists the definitions `items` gives, `path/{id_param}` answers one (by `key`)."""

        async def listing(request: web.Request) -> web.Response:
            return page(request, items(request), names[what], size)

        async def one(request: web.Request) -> web.Response:
            return _one(items(request), _id(request, id_param), key, f"{what} definition")

        routes.get(f"{base}/{path}")(listing)
        routes.get(f"{base}/{path}/{{{id_param}}}")(one)

    listed_and_by_id("FieldDefinitions", "fieldId", "id", "field", fields)
    listed_and_by_id("TagDefinitions", "tagId", "id", "tag", tags)
    listed_and_by_id("LinkDefinitions", "linkDefinitionId", link_key, "link", links)

    @routes.get(base + "/TemplateDefinitions")
    async def list_template_definitions(request: web.Request) -> web.Response:
        name = request.query.get("templateName")
        templates = [_template_named(request, name)] if name is not None else _catalog(request).templates
        items = [shapes.template_definition(t, v2) for t in templates]
        return page(request, items, names["template"], size)

    async def list_template_fields_by_name(request: web.Request) -> web.Response:
        name = request.query.get("templateName")
        if name is None:
            raise BadRequest("The parameter 'templateName' is required.")
        items = shapes.template_fields(_catalog(request), _template_named(request, name), v2)
        return page(request, items, names["template field"], size)

    async def list_template_fields(request: web.Request) -> web.Response:
        items = shapes.template_fields(_catalog(request), _template_by_id(request), v2)
        return page(request, items, names["template field"], size)

    # (v1's clients spell it both ways: `Fields` in JavaScript, `fields` in Java)
    for spelling in (template_fields,) if v2 else (template_fields, template_fields.lower()):
        routes.get(base + f"/TemplateDefinitions/{spelling}")(list_template_fields_by_name)
        routes.get(base + f"/TemplateDefinitions/{{templateId}}/{spelling}")(list_template_fields)

    @routes.get(base + "/TemplateDefinitions/{templateId}")
    async def get_template_definition(request: web.Request) -> web.Response:
        return json(shapes.template_definition(_template_by_id(request), v2))

    @routes.get(base + "/AuditReasons")
    async def list_audit_reasons(request: web.Request) -> web.Response:
        catalog = _catalog(request)
        if v2:
            items = [shapes.audit_reason(r, v2) for r in catalog.audit_reasons]
            return page(request, items, "AuditReason", size)
        # v1: one list per kind of audited event
        by_kind = {"deleteEntry": "DeleteEntry", "exportDocument": "ExportDocument"}
        return json(
            {
                key: [shapes.audit_reason(r, v2) for r in catalog.audit_reasons if r.event_type == kind]
                for key, kind in by_kind.items()
            }
        )

    @routes.get(base + "/Attributes")
    async def list_attributes(request: web.Request) -> web.Response:
        items = [{"key": key, "value": value} for key, value in _attributes(request).items()]
        return page(request, items, "Attribute", size)

    @routes.get(base + "/Attributes/{attributeKey}")
    async def get_attribute(request: web.Request) -> web.Response:
        key = request.match_info["attributeKey"]
        value = _attributes(request).get(key)
        if value is None:
            raise NotFound(f"No attribute has the key {key!r}.")
        return json({"key": key, "value": value})

    return routes
