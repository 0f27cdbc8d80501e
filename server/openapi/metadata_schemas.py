"""The metadata routes' schemas in both Laserfiche dialects (see `metadata`): v2's as the v2
client's models, v1's as the v1 client's `W…Info` ones, over members both share."""

from __future__ import annotations

from typing import Any

from ..metadata.catalog import AUDIT_EVENT_TYPES
from ..metadata.values import FIELD_TYPES
from .parts import (
    ERRORS,
    errors,
    problem,
    ref,
)

BOOLEAN = {"type": "boolean"}
INTEGER = {"type": "integer"}
STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
# (a catalog's ids are 1 to 999999; tags the Elements hub names first get ids above)
ID = {"type": "integer", "minimum": 1}
URI = {"type": "string", "format": "uri"}
# the properties of a link, or a request's: names to text
PROPERTIES = {"type": "object", "additionalProperties": STRING}

METADATA_ERRORS = {
    **ERRORS,
    "400": problem("A malformed request or a value the catalog refuses; the detail names the field."),
    "404": problem("Unknown repository or entry."),
}


def _errors(*codes: str, not_found: str = "") -> dict[str, Any]:
    found = errors(*codes, table=METADATA_ERRORS)
    if not_found:
        found["404"] = problem(not_found)
    return found


# ---- schemas ---------------------------------------------------------------------------------

# each schema's members, by its name (the schema: those members, no others)
MEMBERS: dict[str, dict[str, Any]] = {}


def _object(members: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An object of these members and no others, every one of them present."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(members),
        "additionalProperties": False,
        "properties": members,
    }
    return schema | ({"description": description} if description else {})


def _selectable(name: str, members: dict[str, Any], description: str) -> dict[str, Any]:
    """A listing's item: these members and no others, as `$select` leaves them (all without one)."""
    MEMBERS[name] = members
    return {
        "type": "object",
        "description": description + " In a listing `$select` keeps only the members it names.",
        "additionalProperties": False,
        "properties": members,
    }


def whole(name: str) -> dict[str, Any]:
    """An item of schema `name` with every member present (not cut by `$select`)."""
    return {"allOf": [ref(name), {"required": list(MEMBERS[name])}]}


FIELD_TYPE = {"type": "string", "enum": list(FIELD_TYPES)}

# what a field definition has in both dialects (v2's FieldDefinition, v1's WFieldInfo)
FIELD_DEFINITION: dict[str, Any] = {
    "id": ID,
    "name": STRING,
    "displayName": STRING,
    "description": STRING,
    "fieldType": FIELD_TYPE,
    "length": {
        "type": "integer",
        "minimum": 0,
        "description": "A String's most characters (0: other types).",
    },
    "defaultValue": STRING,
    "isMultiValue": BOOLEAN,
    "isRequired": {
        "type": "boolean",
        "description": "False: being required is a template's rule (see its field definitions).",
    },
    "constraint": {"type": "string", "description": "A String's regular expression, matched whole."},
    "constraintError": STRING,
    "listValues": {**STRINGS, "description": "A List's choices."},
    "format": {"type": "string", "description": "`None` here (no display format)."},
    "currency": STRING,
    "formatPattern": STRING,
}
V2_FIELD_DEFINITION = FIELD_DEFINITION | {
    "isIndexed": BOOLEAN,
    "isIndexedForReporting": BOOLEAN,
    "warnIfBlank": BOOLEAN,
    "hideListValues": BOOLEAN,
    "autoExtract": BOOLEAN,
}
# and a template's field definition: with the template's own rules
TEMPLATE_FIELD = {
    "isRequired": {"type": "boolean", "description": "Whether the template requires a value."},
    "rule": {
        "type": "object",
        "required": ["ancestors"],
        "additionalProperties": False,
        "properties": {"ancestors": {"type": "array", "items": {"type": "object"}}},
    },
    "groupId": INTEGER,
    "groupName": STRING,
}
TEMPLATE_DEFINITION: dict[str, Any] = {
    "id": ID,
    "name": STRING,
    "displayName": STRING,
    "description": STRING,
    "color": ref("LFColor"),
    "fieldCount": {"type": "integer", "minimum": 0},
}
TAG_DEFINITION: dict[str, Any] = {
    "id": ID,
    "name": STRING,
    "displayName": STRING,
    "description": STRING,
    "isSecure": BOOLEAN,
}
# (the clients' enum: the middle is DeadCenter)
WATERMARK_POSITION = {
    "type": "string",
    "enum": [
        "TopLeft",
        "TopCenter",
        "TopRight",
        "MiddleLeft",
        "DeadCenter",
        "MiddleRight",
        "BottomLeft",
        "BottomCenter",
        "BottomRight",
    ],
}
PERCENT = {"type": "integer", "minimum": 0, "maximum": 100}
# the ends of a link, as both dialects show them (a path is null for an end no longer there)
LINK_ENDS: dict[str, Any] = {
    "sourceId": INTEGER,
    "sourceFullPath": {"type": ["string", "null"]},
    "sourceLabel": STRING,
    "sourceLink": {**URI, "description": "The source entry's URL."},
    "targetId": INTEGER,
    "targetFullPath": {"type": ["string", "null"]},
    "targetLabel": STRING,
    "targetLink": {**URI, "description": "The target entry's URL."},
    "description": STRING,
}
# what an entry's field has in both dialects (v2's Field, v1's FieldValue and EntryFieldValue)
FIELD_VALUES: dict[str, Any] = {
    "fieldType": FIELD_TYPE,
    "isMultiValue": BOOLEAN,
    "isRequired": {"type": "boolean", "description": "Whether the entry's template requires it."},
    "hasMoreValues": BOOLEAN,
}
V1_VALUES = {"type": "array", "items": ref("ValueWrapper"), "description": "In position order."}
V1_FIELD_VALUE = {"fieldId": ID, "fieldName": STRING, "values": V1_VALUES, **FIELD_VALUES}
ATTRIBUTE = {"key": STRING, "value": STRING}

# request bodies: a field's values as v2 and v1 give them
V2_FIELD_TO_SET = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "description": "A field definition's name (in any case)."},
        "values": {**STRINGS, "description": "None or empty: no value. More than one: a multi-value field."},
    },
}

SCHEMAS: dict[str, Any] = {
    # -- shared
    "LFColor": _object({channel: {"type": "integer", "minimum": 0, "maximum": 255} for channel in "argb"}),
    "Attribute": _selectable("Attribute", ATTRIBUTE, "An attribute: a key and its value."),
    # -- v2
    "V2FieldDefinition": _selectable("V2FieldDefinition", V2_FIELD_DEFINITION, "A field definition."),
    "V2TemplateDefinition": _selectable(
        "V2TemplateDefinition",
        TEMPLATE_DEFINITION | {"isAutoAssignable": BOOLEAN},
        "A template definition.",
    ),
    "V2TemplateFieldDefinition": _selectable(
        "V2TemplateFieldDefinition",
        V2_FIELD_DEFINITION | TEMPLATE_FIELD | {"localDescription": STRING},
        "A field of a template.",
    ),
    "V2TagDefinition": _selectable(
        "V2TagDefinition",
        TAG_DEFINITION | {"watermark": {"oneOf": [ref("V2Watermark"), {"type": "null"}]}},
        "A tag definition, or a tag of an entry.",
    ),
    "V2Watermark": _object(
        {
            "text": STRING,
            "pageSpanPercentage": PERCENT,
            "position": WATERMARK_POSITION,
            "rotationAngle": INTEGER,
            "isMandatory": BOOLEAN,
            "opacity": PERCENT,
        }
    ),
    "V2LinkDefinition": _selectable(
        "V2LinkDefinition",
        {"id": ID, "sourceLabel": STRING, "targetLabel": STRING, "description": STRING},
        "A link definition (a link type).",
    ),
    "V2Field": _selectable(
        "V2Field",
        {
            "id": ID,
            "name": STRING,
            "values": {**STRINGS, "description": "Empty: a field of the entry's template with no value."},
            **FIELD_VALUES,
            "groupId": {"type": "null"},
        },
        "A field of an entry and its values: the template's fields first, then the others with values.",
    ),
    "V2Link": _selectable(
        "V2Link",
        {
            "id": INTEGER,
            **LINK_ENDS,
            "linkDefinitionId": ID,
            "linkDefinitionDescription": STRING,
            "customProperties": PROPERTIES,
        },
        "A link the entry is an end of.",
    ),
    "V2AuditReason": _selectable(
        "V2AuditReason",
        {"id": ID, "name": STRING, "auditEventType": {"type": "string", "enum": list(AUDIT_EVENT_TYPES)}},
        "An audit reason.",
    ),
    "V2SetFieldsRequest": {
        "type": "object",
        "description": "The entry's field values, all of them: a field left out loses its values.",
        "properties": {"fields": {"type": "array", "items": V2_FIELD_TO_SET}},
    },
    "V2SetTagsRequest": {
        "type": "object",
        "description": "The entry's tags, all of them (names of tag definitions).",
        "properties": {"tags": STRINGS},
    },
    "V2SetLinksRequest": {
        "type": "object",
        "description": "The links the entry is an end of, all of them.",
        "properties": {
            "links": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["linkDefinitionId", "otherEntryId"],
                    "properties": {
                        "linkDefinitionId": ID,
                        "otherEntryId": {"type": "integer", "minimum": 1, "description": "Not the entry."},
                        "isSource": {"type": "boolean", "description": "Default: true."},
                        "customProperties": PROPERTIES,
                    },
                },
            }
        },
    },
    "V2SetTemplateRequest": {
        "type": "object",
        "required": ["templateName"],
        "description": "Give the entry a template, and values to fields (which replace theirs).",
        "properties": {
            "templateName": STRING,
            "fields": {"type": "array", "items": V2_FIELD_TO_SET},
        },
    },
    # -- v1
    "WFieldInfo": _selectable("WFieldInfo", FIELD_DEFINITION, "A field definition."),
    "WTemplateInfo": _selectable("WTemplateInfo", TEMPLATE_DEFINITION, "A template definition."),
    "TemplateFieldInfo": _selectable(
        "TemplateFieldInfo", FIELD_DEFINITION | TEMPLATE_FIELD, "A field of a template."
    ),
    "WTagInfo": _selectable(
        "WTagInfo",
        TAG_DEFINITION | {"watermark": {"oneOf": [ref("Watermark"), {"type": "null"}]}},
        "A tag definition, or a tag of an entry.",
    ),
    "Watermark": _object(
        {
            "watermarkText": STRING,
            "watermarkTextSize": PERCENT,
            "watermarkPosition": WATERMARK_POSITION,
            "watermarkRotationAngle": INTEGER,
            "isWatermarkMandatory": BOOLEAN,
            "watermarkIntensity": PERCENT,
        }
    ),
    "EntryLinkTypeInfo": _selectable(
        "EntryLinkTypeInfo",
        {"linkTypeId": ID, "sourceLabel": STRING, "targetLabel": STRING, "linkTypeDescription": STRING},
        "A link type.",
    ),
    "WEntryLinkInfo": _selectable(
        "WEntryLinkInfo",
        {
            "linkId": INTEGER,
            **LINK_ENDS,
            "linkTypeId": ID,
            "linkTypeDescription": STRING,
            "linkProperties": PROPERTIES,
        },
        "A link the entry is an end of.",
    ),
    "ValueWrapper": _object({"value": STRING, "position": {"type": "integer", "minimum": 1}}),
    "FieldValue": _selectable(
        "FieldValue",
        V1_FIELD_VALUE | {"groupId": {"type": "null"}},
        "A field of an entry and its values: the template's fields first, then the others with values.",
    ),
    "EntryFieldValue": _object(
        V1_FIELD_VALUE, "A field of an entry and its values (in an entry's `fields`)."
    ),
    "WAuditReason": _object({"id": ID, "name": STRING}),
    "AuditReasons": _object(
        {
            "deleteEntry": {"type": "array", "items": ref("WAuditReason")},
            "exportDocument": {"type": "array", "items": ref("WAuditReason")},
        },
        "The audit reasons, by the kind of event they are for.",
    ),
    "FieldsToUpdate": {
        "type": "object",
        "description": "Field name (in any case) -> its values.",
        "additionalProperties": ref("FieldToUpdate"),
    },
    "FieldToUpdate": {
        "type": "object",
        "required": ["values"],
        "properties": {
            "values": {
                "type": "array",
                "description": "Empty: no value. More than one: a multi-value field.",
                "items": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {
                        "value": STRING,
                        "position": {"type": "integer", "description": "Its order (default: as given)."},
                    },
                },
            }
        },
    },
    "PutTagRequest": {
        "type": "object",
        "description": "The entry's tags, all of them (names of tag definitions).",
        "properties": {"tags": STRINGS},
    },
    "PutLinksRequest": {
        "type": "array",
        "description": "The links the entry is the source of; they replace every link it is an end of.",
        "items": {
            "type": "object",
            "required": ["targetId", "linkTypeId"],
            "properties": {
                "targetId": {"type": "integer", "minimum": 1, "description": "Not the entry."},
                "linkTypeId": ID,
                "customProperties": PROPERTIES,
            },
        },
    },
    "PutTemplateRequest": {
        "type": "object",
        "required": ["templateName"],
        "description": "Give the entry a template, and values to fields (which replace theirs).",
        "properties": {"templateName": STRING, "fields": ref("FieldsToUpdate")},
    },
}
