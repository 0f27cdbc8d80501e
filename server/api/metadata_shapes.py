"""Metadata as each Laserfiche dialect shows it: definitions and an entry's values, in v2's shapes
(the v2 client's models) and v1's (the v1 client's `W…Info` models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..metadata.catalog import (
    AuditReason,
    Catalog,
    FieldDefinition,
    LinkDefinition,
    TagDefinition,
    TemplateDefinition,
)
from ..metadata.model import FieldValues, Link

# the end of a link as a path for people (None: an end no longer in the store)
EntryUrl = Callable[[int], str]


def _path(parts: tuple[str, ...] | None) -> str | None:
    return None if parts is None else "\\" + "\\".join(parts)


def field_definition(d: FieldDefinition, v2: bool) -> dict[str, Any]:
    body = {
        "id": d.id,
        "name": d.name,
        "displayName": d.name,
        "description": d.description,
        "fieldType": d.type,
        "length": d.length,
        "defaultValue": d.default_value,
        "isMultiValue": d.is_multi_value,
        "isRequired": False,  # (required is a template's rule: see the template's fields)
        "constraint": d.constraint,
        "constraintError": d.constraint_error,
        "listValues": list(d.list_values),
        "format": "None",
        "currency": "",
        "formatPattern": "",
    }
    if v2:
        body |= {
            "isIndexed": False,
            "isIndexedForReporting": False,
            "warnIfBlank": False,
            "hideListValues": False,
            "autoExtract": False,
        }
    return body


def template_definition(t: TemplateDefinition, v2: bool) -> dict[str, Any]:
    red, green, blue = t.color
    body = {
        "id": t.id,
        "name": t.name,
        "displayName": t.name,
        "description": t.description,
        "color": {"a": 255, "r": red, "g": green, "b": blue},
        "fieldCount": len(t.fields),
    }
    return body | ({"isAutoAssignable": False} if v2 else {})


def template_fields(catalog: Catalog, t: TemplateDefinition, v2: bool) -> list[dict[str, Any]]:
    """A template's field definitions, with its own rules (required or not)."""
    shown = []
    for d in catalog.template_fields(t):
        body = field_definition(d, v2) | {
            "isRequired": d.id in t.required,
            "rule": {"ancestors": []},
            "groupId": 0,
            "groupName": "",
        }
        if v2:
            body["localDescription"] = ""
        shown.append(body)
    return shown


def tag(d: TagDefinition, v2: bool) -> dict[str, Any]:
    """A tag definition (v2's Tag and TagDefinition, v1's WTagInfo)."""
    watermark: dict[str, Any] | None = None
    if d.watermark and v2:
        watermark = {
            "text": d.watermark,
            "pageSpanPercentage": 50,
            "position": "DeadCenter",
            "rotationAngle": 45,
            "isMandatory": True,
            "opacity": 50,
        }
    elif d.watermark:
        watermark = {
            "watermarkText": d.watermark,
            "watermarkTextSize": 50,
            "watermarkPosition": "DeadCenter",
            "watermarkRotationAngle": 45,
            "isWatermarkMandatory": True,
            "watermarkIntensity": 50,
        }
    return {
        "id": d.id,
        "name": d.name,
        "displayName": d.name,
        "description": d.description,
        "isSecure": d.is_secure,
        "watermark": watermark,
    }


def link_definition(d: LinkDefinition, v2: bool) -> dict[str, Any]:
    if v2:
        return {
            "id": d.id,
            "sourceLabel": d.source_label,
            "targetLabel": d.target_label,
            "description": d.description,
        }
    return {
        "linkTypeId": d.id,
        "sourceLabel": d.source_label,
        "targetLabel": d.target_label,
        "linkTypeDescription": d.description,
    }


def audit_reason(r: AuditReason, v2: bool) -> dict[str, Any]:
    return {"id": r.id, "name": r.name} | ({"auditEventType": r.event_type} if v2 else {})


def field_values(f: FieldValues, v2: bool) -> dict[str, Any]:
    """One field of an entry (v2's Field, v1's FieldValue)."""
    d = f.definition
    common = {
        "fieldType": d.type,
        "isMultiValue": d.is_multi_value,
        "isRequired": f.is_required,
        "hasMoreValues": False,
        "groupId": None,
    }
    if v2:
        return {"id": d.id, "name": d.name, "values": list(f.values)} | common
    values = [{"value": value, "position": position} for position, value in enumerate(f.values, 1)]
    return {"fieldId": d.id, "fieldName": d.name, "values": values} | common


def entry_field_value(f: FieldValues) -> dict[str, Any]:
    """One of the `fields` of a v1 entry (an EntryFieldValue: a FieldValue without its group)."""
    body = field_values(f, v2=False)
    del body["groupId"]
    return body


def link(k: Link, v2: bool, entry_url: EntryUrl) -> dict[str, Any]:
    """One link of an entry (v2's Link, v1's WEntryLinkInfo)."""
    d = k.definition
    ends = {
        "sourceId": k.source_id,
        "sourceFullPath": _path(k.source_parts),
        "sourceLabel": d.source_label,
        "sourceLink": entry_url(k.source_id),
        "targetId": k.target_id,
        "targetFullPath": _path(k.target_parts),
        "targetLabel": d.target_label,
        "targetLink": entry_url(k.target_id),
        "description": d.description,
    }
    if v2:
        return {
            "id": k.id,
            **ends,
            "linkDefinitionId": d.id,
            "linkDefinitionDescription": d.description,
            "customProperties": dict(k.properties),
        }
    return {
        "linkId": k.id,
        **ends,
        "linkTypeId": d.id,
        "linkTypeDescription": d.description,
        "linkProperties": dict(k.properties),
    }
