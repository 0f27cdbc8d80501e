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

from .metadata_schemas import (
    BOOLEAN,
    ID,
    STRING,
    URI,
    _errors,
    _object,
    whole,
)
from .parts import (
    ENTRY_ID,
    ODATA_PAGING,
    REPO_ID,
    body,
    json_response,
    operation,
    param,
    problem,
    ref,
)

V1 = "/v1/Repositories/{repoId}"
V2 = "/v2/Repositories/{repoId}"

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
