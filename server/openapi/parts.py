"""What every part of the description shares: how a response, a problem, a parameter and an
operation are written, the problem details schema, and the parameters both Laserfiche dialects take."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": ref("ProblemDetails")}},
    }


ERRORS = {
    "400": problem("Malformed request; the detail names the field."),
    "401": problem("Missing, invalid or expired access token."),
    "404": problem("Unknown repository or entry."),
    "429": problem("The session already runs a long operation; the body names it (operationToken)."),
    "503": problem("The server is shutting down."),
}


def param(
    name: str, where: str, schema: dict[str, Any], required: bool = False, description: str = ""
) -> dict[str, Any]:
    described: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        described["description"] = description
    return described


def operation(
    summary: str,
    params: list[dict[str, Any]],
    responses: dict[str, Any],
    request_body: dict[str, Any] | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    """An operation, with the credentials it takes where they are not the document's default (a
    bearer); `security=[]` for a public one."""
    op: dict[str, Any] = {"summary": summary, "parameters": params, "responses": responses}
    if request_body is not None:
        op["requestBody"] = request_body
    if security is not None:
        op["security"] = security
    return op


def errors(*codes: str, table: dict[str, Any] = ERRORS) -> dict[str, Any]:
    return {code: table.get(code) or problem("Error.") for code in codes}


def collection(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "array", "items": item},
            "@odata.nextLink": {"type": "string", "format": "uri"},
            "@odata.count": {"type": "integer"},
        },
    }


def body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


# both Laserfiche dialects' path and query parameters
REPO_ID = param("repoId", "path", {"type": "string"}, True, "The repository id (see --repository-id).")
ENTRY_ID = param("entryId", "path", {"type": "integer", "minimum": 1}, True)
AUTO_RENAME = param(
    "autoRename",
    "query",
    {"type": "boolean"},
    description="On a name conflict pick `name (2)`… instead of answering 409.",
)
SELECT = param("$select", "query", {"type": "string"}, description="Comma-separated entry fields.")
PACE = param(
    "Sandbox-Pace-Ms",
    "header",
    {"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,9})?$"},
    description="Sandbox: milliseconds added per entry copied or deleted (0 to 60000), for this operation.",
)
# OData paging of a collection: `$skip`, `$top`, `$count` and `Prefer: maxpagesize`
ODATA_PAGING = [
    param("$top", "query", {"type": "integer", "minimum": 0}),
    param("$skip", "query", {"type": "integer", "minimum": 0}),
    param("$count", "query", {"type": "boolean"}),
    param("Prefer", "header", {"type": "string"}, description="`maxpagesize=N` sets the page size."),
]
ODATA = [
    SELECT,
    param("$orderby", "query", {"type": "string"}, description="e.g. `name desc, creationTime`"),
    *ODATA_PAGING,
]

# an operation's states, and its errors (Laserfiche's OperationProgress)
OPERATION_STATUS = {
    "type": "string",
    "enum": ["NotStarted", "InProgress", "Completed", "Failed", "Cancelled"],
}
# (a v2 test task, read through v1 or /sandbox/, says TestTask; v2's other long operations say
# what they are, as the engine's Kind does)
OPERATION_TYPE = {
    "type": "string",
    "enum": [
        "CopyEntry",
        "DeleteEntry",
        "TestTask",
        "SearchEntry",
        "ExportEntry",
        "ImportUploadedParts",
        "UpdateUploadedParts",
    ],
}
DELIVERY_STATUS = {"type": "string", "enum": ["pending", "delivering", "delivered", "queued"]}
ERROR_ITEMS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"objectId": {"type": "integer"}, "errorMessage": {"type": "string"}},
    },
}

# what a download answers (one Range honoured)
DOWNLOAD = {
    # (as the document's own type: text/plain, image/png…)
    "200": {"description": "The bytes.", "content": {"*/*": {"schema": {}}}},
    "206": {"description": "The requested range.", "content": {"*/*": {"schema": {}}}},
    "416": problem("Range not satisfiable."),
}

SCHEMAS: dict[str, Any] = {
    "ProblemDetails": {
        "type": "object",
        "required": ["title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "operationId": {"type": "string"},
            "errorSource": {"type": "string"},
            "errorCode": {"type": "integer"},
            "traceId": {"type": "string"},
        },
    },
}


# what any route may answer before its handler runs (see api/common.py): documented on all
ANY_ROUTE = {
    "414": problem("The query string is over 4 KiB."),
    "431": problem("A request header is over 4 KiB."),
}
# and a request aiohttp's HTTP parser itself refuses (a header with bytes no header may hold, a line
# over 8 KiB) is answered 400 in plain text, before the application sees it
PARSER_400 = {"text/plain": {"schema": {"type": "string"}}}


# a route that reads a body reads at most 1 MiB of JSON or form (app.MAX_JSON_BODY; documents
# stream, under a limit of their own)
ANY_BODY = {"413": problem("The request body is over 1 MiB (refused unread if its Content-Length says so).")}


def with_limits(paths: dict[str, Any]) -> dict[str, Any]:
    """`paths` with what any route may answer added to every operation."""

    def limited(op: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, Any] = op["responses"]
        bad = responses.get("400", {"description": "The request could not be parsed.", "content": {}})
        bad = bad | {"content": {**bad.get("content", {}), **PARSER_400}}
        # (a route's own 413, where it has one, says more)
        too_large = ANY_BODY if "requestBody" in op and "413" not in responses else {}
        return {**responses, **too_large, "400": bad, **ANY_ROUTE}

    return {
        path: {method: op | {"responses": limited(op)} for method, op in methods.items()}
        for path, methods in paths.items()
    }
