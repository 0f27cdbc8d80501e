"""Metadata in both Laserfiche dialects: an entry's fields, tags, links and template
(`api/v2/metadata.py`, `api/laserfiche_metadata.py`), and the catalog's definitions, audit reasons
and attributes (`api/definitions.py`). Shapes as `api/metadata_shapes.py` writes them: v2's as the
v2 client's models, v1's as the v1 client's `W…Info` ones, over members both share.

Every listing is an OData page (`$select`, `$orderby`, `$top`, `$skip`, `$count`, `Prefer:
maxpagesize`) whose `$select` keeps only the members it names: a listing's items declare their
members, an answer of one item (and v1's answers to a PUT, which are not paged) declares them all
required."""

from __future__ import annotations

from typing import Any

from ..metadata.catalog import AUDIT_EVENT_TYPES
from ..metadata.values import FIELD_TYPES
from .parts import (
    ENTRY_ID,
    ERRORS,
    ODATA_PAGING,
    REPO_ID,
    body,
    errors,
    json_response,
    operation,
    param,
    problem,
    ref,
)

V1 = "/v1/Repositories/{repoId}"
V2 = "/v2/Repositories/{repoId}"

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

# ---- routes ----------------------------------------------------------------------------------

SELECT = param(
    "$select",
    "query",
    STRING,
    description="Comma-separated members of the items to keep; one no item has is 400.",
)
ORDERBY = param(
    "$orderby",
    "query",
    STRING,
    description="e.g. `name desc, id`: members of the items that are text or numbers (text in any "
    "case); one no item has is 400.",
)
PAGING = [SELECT, ORDERBY, *ODATA_PAGING]
PREFERENCE_APPLIED = {"Preference-Applied": {"description": "The preference taken.", "schema": STRING}}


def page_of(name: str) -> dict[str, Any]:
    """A page of a listing of items of schema `name`."""
    return {
        "type": "object",
        "required": ["@odata.context", "value"],
        "additionalProperties": False,
        "properties": {
            "@odata.context": URI,
            "value": {"type": "array", "items": ref(name)},
            "@odata.nextLink": {**URI, "description": "The next page, while more remain."},
            "@odata.count": {"type": "integer", "description": "All items, with ?$count=true."},
        },
    }


def listing(name: str, description: str, not_found: str = "") -> dict[str, Any]:
    """The answers of a paged listing of items of schema `name`."""
    return {
        "200": json_response(page_of(name), description) | {"headers": PREFERENCE_APPLIED},
        **_errors("400", "401", "404", not_found=not_found),
    }


def values_of(name: str) -> dict[str, Any]:
    """v1's answer to a PUT: every item, unpaged."""
    return _object({"value": {"type": "array", "items": whole(name)}})


def _path_id(name: str) -> dict[str, Any]:
    return param(name, "path", ID, True)


TEMPLATE_ID = _path_id("templateId")
TEMPLATE_NAME = param(
    "templateName", "query", STRING, description="Only the template of this name (any case)."
)
EVERYONE = param(
    "everyone",
    "query",
    BOOLEAN,
    description="The attributes for everyone; default: the signed-in user's own.",
)
UNKNOWN_TEMPLATE = "Unknown repository, or no template has that id or name."
REPLACE = {
    "fields": "Replace an entry's field values (a field left out loses its values)",
    "tags": "Replace an entry's tags",
    "links": "Replace the links an entry is an end of",
}


def entry_values(base: str, v2: bool) -> dict[str, Any]:
    """An entry's fields, tags, links and template in one dialect (`base`: its repository)."""
    names = (
        {"Fields": "V2Field", "Tags": "V2TagDefinition", "Links": "V2Link", "Template": "V2Entry"}
        if v2
        else {"fields": "FieldValue", "tags": "WTagInfo", "links": "WEntryLinkInfo", "template": "Entry"}
    )
    requests = (
        {"Fields": "V2SetFieldsRequest", "Tags": "V2SetTagsRequest", "Links": "V2SetLinksRequest"}
        if v2
        else {"fields": "FieldsToUpdate", "tags": "PutTagRequest", "links": "PutLinksRequest"}
    )
    entry = base + "/Entries/{entryId}/"
    paths: dict[str, Any] = {}
    for kind, request in requests.items():
        what = kind.lower()
        # v2 answers a PUT as it does a GET (a page); v1 with every item, unpaged
        put_answer: dict[str, Any] = (
            listing(names[kind], f"The entry's {what} after the change.")
            if v2
            else {
                "200": json_response(values_of(names[kind]), f"The entry's {what} after the change."),
                **_errors("400", "401", "404"),
            }
        )
        paths[entry + kind] = {
            "get": operation(
                f"An entry's {what}",
                [REPO_ID, ENTRY_ID, *PAGING],
                listing(names[kind], f"A page of the entry's {what}."),
            ),
            "put": operation(
                REPLACE[what],
                [REPO_ID, ENTRY_ID, *(PAGING if v2 else [])],
                put_answer,
                body(ref(request)),
            ),
        }
    template = "Template" if v2 else "template"
    answer = json_response(ref(names[template]), "The entry.")
    paths[entry + template] = {
        "put": operation(
            "Give an entry a template (and field values)",
            [REPO_ID, ENTRY_ID],
            {
                "200": answer,
                **_errors("401", "404"),
                "400": problem(
                    "A malformed request, a template that does not exist, a value the field refuses "
                    "or a required field left empty; the detail names it."
                ),
            },
            body(ref("V2SetTemplateRequest" if v2 else "PutTemplateRequest")),
        ),
        "delete": operation(
            "Take an entry's template away, with the values of its fields",
            [REPO_ID, ENTRY_ID],
            {"200": answer, **_errors("400", "401", "404")},
        ),
    }
    return paths


def definitions(base: str, v2: bool) -> dict[str, Any]:
    """The catalog's definitions, audit reasons and attributes in one dialect."""
    field, template, template_field, tag, link = (
        (
            "V2FieldDefinition",
            "V2TemplateDefinition",
            "V2TemplateFieldDefinition",
            "V2TagDefinition",
            "V2LinkDefinition",
        )
        if v2
        else ("WFieldInfo", "WTemplateInfo", "TemplateFieldInfo", "WTagInfo", "EntryLinkTypeInfo")
    )
    # (v1 names a template's fields `Fields`, and its Java client `fields`: both are served)
    spellings = ("FieldDefinitions",) if v2 else ("Fields", "fields")

    def one(name: str, what: str, not_found: str) -> dict[str, Any]:
        return {"200": json_response(whole(name), what), **_errors("400", "401", "404", not_found=not_found)}

    audit_reasons = (
        listing("V2AuditReason", "A page of the audit reasons.")
        if v2
        else {"200": json_response(ref("AuditReasons"), "The audit reasons."), **_errors("401", "404")}
    )
    return {
        base + "/FieldDefinitions": {
            "get": operation("Field definitions", [REPO_ID, *PAGING], listing(field, "A page of them."))
        },
        base + "/FieldDefinitions/{fieldId}": {
            "get": operation(
                "A field definition",
                [REPO_ID, _path_id("fieldId")],
                one(field, "The field definition.", "Unknown repository or field definition."),
            )
        },
        base + "/TemplateDefinitions": {
            "get": operation(
                "Template definitions (or the one named)",
                [REPO_ID, TEMPLATE_NAME, *PAGING],
                listing(template, "A page of them.", not_found=UNKNOWN_TEMPLATE),
            )
        },
        base + "/TemplateDefinitions/{templateId}": {
            "get": operation(
                "A template definition",
                [REPO_ID, TEMPLATE_ID],
                one(template, "The template definition.", UNKNOWN_TEMPLATE),
            )
        },
        **{
            path: item
            for spelling in spellings
            for path, item in {
                base + f"/TemplateDefinitions/{{templateId}}/{spelling}": {
                    "get": operation(
                        "A template's field definitions, in its order",
                        [REPO_ID, TEMPLATE_ID, *PAGING],
                        listing(template_field, "A page of them.", not_found=UNKNOWN_TEMPLATE),
                    )
                },
                base + f"/TemplateDefinitions/{spelling}": {
                    "get": operation(
                        "A template's field definitions, by the template's name, in its order",
                        [
                            REPO_ID,
                            param("templateName", "query", STRING, True, "The template's name (any case)."),
                            *PAGING,
                        ],
                        listing(template_field, "A page of them.", not_found=UNKNOWN_TEMPLATE),
                    )
                },
            }.items()
        },
        base + "/TagDefinitions": {
            "get": operation("Tag definitions", [REPO_ID, *PAGING], listing(tag, "A page of them."))
        },
        base + "/TagDefinitions/{tagId}": {
            "get": operation(
                "A tag definition",
                [REPO_ID, _path_id("tagId")],
                one(tag, "The tag definition.", "Unknown repository or tag definition."),
            )
        },
        base + "/LinkDefinitions": {
            "get": operation("Link definitions", [REPO_ID, *PAGING], listing(link, "A page of them."))
        },
        base + "/LinkDefinitions/{linkDefinitionId}": {
            "get": operation(
                "A link definition",
                [REPO_ID, _path_id("linkDefinitionId")],
                one(link, "The link definition.", "Unknown repository or link definition."),
            )
        },
        base + "/AuditReasons": {
            "get": operation(
                "Audit reasons (a delete's auditReasonId must name a DeleteEntry one)",
                [REPO_ID, *(PAGING if v2 else [])],
                audit_reasons,
            )
        },
        base + "/Attributes": {
            "get": operation(
                "Attributes: the signed-in user's, or (?everyone=true) everyone's",
                [REPO_ID, EVERYONE, *PAGING],
                listing("Attribute", "A page of them."),
            )
        },
        base + "/Attributes/{attributeKey}": {
            "get": operation(
                "An attribute",
                [REPO_ID, param("attributeKey", "path", {"type": "string", "minLength": 1}, True), EVERYONE],
                one("Attribute", "The attribute.", "Unknown repository, or no attribute has that key."),
            )
        },
    }


PATHS: dict[str, Any] = (
    entry_values(V1, v2=False)
    | definitions(V1, v2=False)
    | entry_values(V2, v2=True)
    | definitions(V2, v2=True)
)
