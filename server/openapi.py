"""The OpenAPI 3.1 description of the routes this server has (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

LF = "/v1/Repositories/{repoId}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("ProblemDetails")}},
    }


ERRORS = {
    "400": _problem("Malformed request; the detail names the field."),
    "401": _problem("Missing, invalid or expired access token."),
    "404": _problem("Unknown repository or entry."),
    "429": _problem("The session already runs a long operation; the body names it (operationToken)."),
    "503": _problem("The server is shutting down."),
}


def _param(
    name: str, where: str, schema: dict[str, Any], required: bool = False, description: str = ""
) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        param["description"] = description
    return param


REPO_ID = _param("repoId", "path", {"type": "string"}, True, "The repository id (see --repository-id).")
TOKEN = _param("operationToken", "path", {"type": "string"}, True, "The token a start returned.")
ENTRY_ID = _param("entryId", "path", {"type": "integer", "minimum": 1}, True)
AUTO_RENAME = _param(
    "autoRename",
    "query",
    {"type": "boolean"},
    description="On a name conflict pick `name (2)`… instead of answering 409.",
)
SELECT = _param("$select", "query", {"type": "string"}, description="Comma-separated entry fields.")
WAIT = _param(
    "wait",
    "query",
    {"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,9})?$"},
    description="Sandbox long poll: answer once the operation has ended, or after this many seconds "
    "(at most 60).",
)
PACE = _param(
    "Sandbox-Pace-Ms",
    "header",
    {"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,9})?$"},
    description="Sandbox: milliseconds added per entry copied or deleted (0 to 60000), for this operation.",
)
ODATA = [
    SELECT,
    _param("$orderby", "query", {"type": "string"}, description="e.g. `name desc, creationTime`"),
    _param("$top", "query", {"type": "integer", "minimum": 0}),
    _param("$skip", "query", {"type": "integer", "minimum": 0}),
    _param("$count", "query", {"type": "boolean"}),
    _param("Prefer", "header", {"type": "string"}, description="`maxpagesize=N` sets the page size."),
]


def _op(
    summary: str,
    params: list[dict[str, Any]],
    responses: dict[str, Any],
    body: dict[str, Any] | None = None,
    secure: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params, "responses": responses}
    if body is not None:
        op["requestBody"] = body
    if not secure:
        op["security"] = []
    return op


def _errors(*codes: str, table: dict[str, Any] = ERRORS) -> dict[str, Any]:
    return {code: table.get(code) or _problem("Error.") for code in codes}


def _collection(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "array", "items": item},
            "@odata.nextLink": {"type": "string", "format": "uri"},
            "@odata.count": {"type": "integer"},
        },
    }


ENTRY_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "name": {"type": "string"},
    "parentId": {"type": "integer"},
    "fullPath": {"type": "string"},
    "folderPath": {"type": "string"},
    "creator": {"type": "string"},
    "creationTime": {"type": "string", "format": "date-time"},
    "lastModifiedTime": {"type": "string", "format": "date-time"},
    "entryType": {"type": "string", "enum": ["Folder", "Document", "Shortcut", "RecordSeries"]},
    "isContainer": {"type": "boolean"},
    "isLeaf": {"type": "boolean"},
    "templateName": {"type": "string"},
    "templateId": {"type": "integer"},
    "templateFieldNames": {"type": "array", "items": {"type": "string"}},
    "volumeName": {"type": "string"},
    "rowNumber": {"type": "integer"},
    "fields": {"type": "array"},
    "isRecordFolder": {"type": "boolean"},
    "isUnderRecordSeries": {"type": "boolean"},
    "elecDocumentSize": {"type": "integer"},
    "extension": {"type": "string"},
    "mimeType": {"type": "string"},
    "isElectronicDocument": {"type": "boolean"},
    "pageCount": {"type": "integer"},
    "isCheckedOut": {"type": "boolean"},
    "isUnderVersionControl": {"type": "boolean"},
    "isRecord": {"type": "boolean"},
}

# an operation's states, and its errors (Laserfiche's OperationProgress)
OPERATION_STATUS = {
    "type": "string",
    "enum": ["NotStarted", "InProgress", "Completed", "Failed", "Cancelled"],
}
OPERATION_TYPE = {"type": "string", "enum": ["CopyEntry", "DeleteEntry"]}
DELIVERY_STATUS = {"type": "string", "enum": ["pending", "delivering", "delivered", "queued"]}
ERROR_ITEMS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"objectId": {"type": "integer"}, "errorMessage": {"type": "string"}},
    },
}

SCHEMAS: dict[str, Any] = {
    "Entry": {"type": "object", "required": ["id", "entryType"], "properties": ENTRY_PROPERTIES},
    "FindEntryResult": {
        "type": "object",
        "required": ["entry", "ancestorEntry"],
        "properties": {
            "entry": {"oneOf": [_ref("Entry"), {"type": "null"}]},
            "ancestorEntry": {"oneOf": [_ref("Entry"), {"type": "null"}]},
        },
    },
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
    "CreateEntryResult": {
        "type": "object",
        "required": ["operations"],
        "properties": {
            "operations": {
                "type": "object",
                "properties": {
                    "entryCreate": {
                        "type": "object",
                        "properties": {
                            "entryId": {"type": "integer"},
                            "exceptions": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                },
            },
            "documentLink": {"type": ["string", "null"]},
        },
    },
    "PostEntryChildrenRequest": {
        "type": "object",
        "description": "Create a folder ({entryType: 'Folder', name}) or copy ({sourceId, name}).",
        "required": ["name"],
        "properties": {
            "entryType": {"type": "string", "enum": ["Folder"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "sourceId": {"type": "integer"},
        },
    },
    "PatchEntryRequest": {
        "type": "object",
        "properties": {
            "parentId": {"type": "integer"},
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
        },
    },
    "CopyAsyncRequest": {
        "type": "object",
        "required": ["sourceId", "name"],
        "properties": {
            "sourceId": {"type": "integer"},
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
        },
    },
    "DeleteEntryWithAuditReason": {
        "type": "object",
        "properties": {"auditReasonId": {"type": "integer"}, "comment": {"type": "string"}},
    },
    "AcceptedOperation": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string"}},
    },
    "OperationProgress": {
        "type": "object",
        "required": ["operationToken", "operationType", "percentComplete", "status", "errors"],
        "properties": {
            "operationToken": {"type": "string"},
            "operationType": OPERATION_TYPE,
            "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
            "status": OPERATION_STATUS,
            "errors": ERROR_ITEMS,
            "redirectUri": {"type": ["string", "null"]},
            "entryId": {"type": "integer"},
            "startTimestamp": {"type": ["string", "null"], "format": "date-time"},
            "statusTimestamp": {"type": "string", "format": "date-time"},
        },
    },
    "OperationStatusMonitor": {
        "type": "object",
        "description": "The REST-guidelines status monitor (Operation-Location) for generic pollers.",
        "required": ["id", "status", "percentComplete"],
        "properties": {
            "id": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["NotStarted", "Running", "Succeeded", "Failed", "Canceled"],
            },
            "percentComplete": {"type": "integer"},
            "error": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "resourceLocation": {"type": "string", "format": "uri"},
        },
    },
    "SessionKeyInfo": {
        "type": "object",
        "required": ["access_token", "expires_in", "token_type"],
        "properties": {
            "access_token": {"type": "string"},
            "expires_in": {"type": "integer"},
            "token_type": {"type": "string"},
        },
    },
}


def _body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


# what a download answers (one Range honoured)
DOWNLOAD = {
    # (as the document's own type: text/plain, image/png…)
    "200": {"description": "The bytes.", "content": {"*/*": {"schema": {}}}},
    "206": {"description": "The requested range.", "content": {"*/*": {"schema": {}}}},
    "416": _problem("Range not satisfiable."),
}

# what starting a long operation answers, by profile
STARTED = {
    "201": _json(_ref("AcceptedOperation"), "Accepted (sdk profile); Location: the Tasks URL."),
    "202": _json(_ref("AcceptedOperation"), "Accepted (docs profile); Location: the Tasks URL."),
}

PATHS: dict[str, Any] = {
    "/healthz": {"get": _op("Liveness check", [], {"200": _json({"type": "object"}, "Up.")}, secure=False)},
    "/openapi.json": {
        "get": _op("This description", [], {"200": _json({"type": "object"}, "OK")}, secure=False)
    },
    LF + "/Token": {
        "post": _op(
            "Sign in (password grant); the access token is a session",
            [REPO_ID],
            {"200": _json(_ref("SessionKeyInfo"), "Signed in."), **_errors("400", "401", "404")},
            _body(
                {
                    "type": "object",
                    "required": ["grant_type", "username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                    },
                },
                "application/x-www-form-urlencoded",
            ),
            secure=False,
        )
    },
    LF + "/Entries/ByPath": {
        "get": _op(
            "Entry by path",
            [
                REPO_ID,
                _param("fullPath", "query", {"type": "string"}, True, "Backslash path, e.g. `\\A\\B`"),
                _param("fallbackToClosestAncestor", "query", {"type": "boolean"}),
                SELECT,
            ],
            {"200": _json(_ref("FindEntryResult"), "Found."), **_errors("400", "401", "404")},
        )
    },
    LF + "/Entries/{entryId}": {
        "get": _op(
            "Entry",
            [REPO_ID, ENTRY_ID, SELECT],
            {"200": _json(_ref("Entry"), "The entry."), **_errors("400", "401", "404")},
        ),
        "patch": _op(
            "Move and/or rename an entry",
            [REPO_ID, ENTRY_ID, AUTO_RENAME],
            {"200": _json(_ref("Entry"), "Moved."), **_errors("400", "401", "404", "409")},
            _body(_ref("PatchEntryRequest")),
        ),
        "delete": _op(
            "Delete an entry (a long operation): returns a token",
            [REPO_ID, ENTRY_ID, PACE],
            {**STARTED, **_errors("400", "401", "404", "429", "503")},
            {
                "required": False,
                "content": {"application/json": {"schema": _ref("DeleteEntryWithAuditReason")}},
            },
        ),
    },
    **{
        LF + "/Entries/{entryId}/Laserfiche.Repository.Folder" + route: {
            "post": _op(
                "Copy an entry into this folder (a long operation): returns a token",
                [REPO_ID, ENTRY_ID, AUTO_RENAME, PACE],
                {**STARTED, **_errors("400", "401", "404", "409", "429", "503")},
                _body(_ref("CopyAsyncRequest")),
            )
        }
        for route in ("/CopyAsync", "/children/CopyAsync")
    },
    LF + "/Tasks/{operationToken}": {
        "get": _op(
            "An operation's progress; a completed copy redirects to its new entry",
            [REPO_ID, TOKEN, WAIT],
            {
                "200": _json(_ref("OperationProgress"), "Ended: a delete completed, failed or cancelled."),
                "201": _json(
                    _ref("OperationProgress"), "A completed copy (sdk profile); Location: the entry."
                ),
                "202": _json(_ref("OperationProgress"), "Not started or in progress; Retry-After."),
                "302": _json(
                    _ref("OperationProgress"), "A completed copy (docs profile); Location: the entry."
                ),
                **_errors("400", "401", "404"),
            },
        ),
        "delete": _op(
            "Cancel an operation (what was done stays); idempotent",
            [REPO_ID, TOKEN],
            {"204": {"description": "Cancelled, or had already ended."}, **_errors("401", "404")},
        ),
    },
    LF + "/Tasks/{operationToken}/status": {
        "get": _op(
            "Status monitor (Operation-Location) in the REST-guidelines vocabulary",
            [REPO_ID, TOKEN, WAIT],
            {"200": _json(_ref("OperationStatusMonitor"), "The status."), **_errors("400", "401", "404")},
        )
    },
    LF + "/Entries/{entryId}/Laserfiche.Repository.Folder/children": {
        "get": _op(
            "List a folder's children",
            [REPO_ID, ENTRY_ID, *ODATA],
            {
                "200": _json(_collection(_ref("Entry")), "A page of children."),
                **_errors("400", "401", "404"),
            },
        ),
        "post": _op(
            "Create a folder, or copy an entry synchronously",
            [REPO_ID, ENTRY_ID, AUTO_RENAME, PACE],
            {"201": _json(_ref("Entry"), "Created."), **_errors("400", "401", "404", "409")},
            _body(_ref("PostEntryChildrenRequest")),
        ),
    },
    LF + "/Entries/{entryId}/{fileName}": {
        "post": _op(
            "Import a document (multipart: electronicDocument, request)",
            [REPO_ID, ENTRY_ID, _param("fileName", "path", {"type": "string"}, True), AUTO_RENAME],
            {
                "201": _json(_ref("CreateEntryResult"), "Imported."),
                "400": {
                    "description": "An empty document (the result, with its exception), or a problem.",
                    "content": {
                        "application/json": {"schema": _ref("CreateEntryResult")},
                        "application/problem+json": {"schema": _ref("ProblemDetails")},
                    },
                },
                **_errors("401", "404", "409", "413"),
            },
            _body(
                {
                    "type": "object",
                    "required": ["electronicDocument"],
                    "properties": {
                        "electronicDocument": {"type": "string", "format": "binary"},
                        "request": {"type": "string"},
                    },
                },
                "multipart/form-data",
            ),
        )
    },
    LF + "/Entries/{entryId}/Laserfiche.Repository.Document/edoc": {
        method: _op(
            "Download a document (GET) or its headers (HEAD); honours one Range",
            [REPO_ID, ENTRY_ID, _param("Range", "header", {"type": "string"})],
            {**DOWNLOAD, **_errors("400", "401", "404")},
        )
        for method in ("get", "head")
    },
    **{
        LF + "/Entries/{entryId}/" + kind: {
            "get": _op(
                f"An entry's {kind} (always empty here)",
                [REPO_ID, ENTRY_ID, *ODATA],
                {
                    "200": _json(_collection({"type": "object"}), "Empty."),
                    **_errors("400", "401", "404"),
                },
            )
        }
        for kind in ("fields", "links", "tags")
    },
}

# ---- the Elements dialect -----------------------------------------------------------------

EL = "/elements/api-v2"
HUB = EL + "/hubs/documents"
# hub routes: User + Element; instances: User + Organization; events: either
ELEMENTS_AUTH: list[dict[str, list[str]]] = [{"elements": []}]
EL_ERRORS = {
    **ERRORS,
    "401": _problem("Missing or wrong User / Organization / Element credentials."),
    "404": _problem("No entry, instance or event there."),
    "409": _problem("The name is taken, or (redeliver) the webhook is under way."),
    "429": _problem("The session already runs an asynchronous request; the body names it (eventId)."),
}
PATH_Q = _param("path", "query", {"type": "string"}, True, "`/`-separated, e.g. `/Folder/file.txt`.")
ID_P = _param("id", "path", {"type": "string", "pattern": "^[0-9]+$"}, True, "An entry id.")
ASYNC_HEADERS = [
    _param(
        "Elements-Async-Request", "header", {"type": "string", "enum": ["true", "false", "True", "False"]}
    ),
    _param("Elements-Async-Callback-URL", "header", {"type": "string", "format": "uri"}),
    PACE,
]
PAGING = [
    _param("page", "query", {"type": "integer", "minimum": 1}),
    _param("nextPage", "query", {"type": "string"}, description="Elements-Next-Page-Token of the last page."),
    _param("pageSize", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
]


def _el(
    summary: str, params: list[dict[str, Any]], responses: dict[str, Any], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    return _op(summary, params, responses, body) | {"security": ELEMENTS_AUTH}


def _el_errors(*codes: str) -> dict[str, Any]:
    return _errors(*codes, table=EL_ERRORS)


def _both(suffix: str, id_suffix: str, methods: dict[str, Any]) -> dict[str, Any]:
    """A hub route in its `?path=` and `/{id}` forms: `methods` maps a method to (summary,
    extra params, responses, body)."""
    paths = {}
    for route, param in ((HUB + suffix, PATH_Q), (HUB + id_suffix, ID_P)):
        paths[route] = {
            method: _el(summary, [param, *extra], responses, body)
            for method, (summary, extra, responses, body) in methods.items()
        }
    return paths


def _copy_body(name: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "path": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    }
    if name:
        properties["name"] = {"type": "string"}
    return _body({"type": "object", "required": ["path"], "properties": properties})


EL_ENTRY = _json(_ref("ElementsEntry"), "The entry.")
DISPATCHED = _json(_ref("Dispatched"), "Asynchronous: started; a webhook reports the end.")
REMOVED = _json(_ref("ElementsResult"), "Synchronous: removed; one event per entry.")
COPY_ERRORS = ("400", "401", "404", "409", "429", "503")
METADATA_BODY = _body(
    {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "Move to this path (its parent folder, its last segment).",
            },
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
)


def _hub_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for kind in ("folders", "files"):
        paths |= _both(
            f"/{kind}/metadata",
            f"/{kind}/{{id}}/metadata",
            {
                "get": ("Metadata", [], {"200": EL_ENTRY, **_el_errors("400", "401", "404")}, None),
                "patch": (
                    "Rename, move, or set tags",
                    [],
                    {"200": EL_ENTRY, **_el_errors("400", "401", "404", "409")},
                    METADATA_BODY,
                ),
            },
        )
        paths |= _both(
            f"/{kind}/copy",
            f"/{kind}/{{id}}/copy",
            {
                "post": (
                    "Copy into the parent folder of body `path`, named `name` or its last segment",
                    ASYNC_HEADERS,
                    {"200": _json(_ref("ElementsEntry"), "Synchronous: the copy."), "202": DISPATCHED}
                    | _el_errors(*COPY_ERRORS),
                    _copy_body(name=True),
                )
            },
        )
        delete_params = ASYNC_HEADERS + (
            [_param("emptyTrash", "query", {"type": "boolean"})] if kind == "folders" else []
        )
        methods: dict[str, Any] = {
            "delete": (
                "Delete",
                delete_params,
                {"200": REMOVED, "202": DISPATCHED} | _el_errors(*COPY_ERRORS),
                None,
            )
        }
        if kind == "files":
            methods["get"] = (
                "Download a file; honours one Range",
                [_param("Range", "header", {"type": "string"})],
                {**DOWNLOAD, **_el_errors("400", "401", "404")},
                None,
            )
        paths |= _both(f"/{kind}", f"/{kind}/{{id}}", methods)
    paths |= _both(
        "/folders/contents",
        "/folders/{id}/contents",
        {
            "get": (
                "List a folder (Elements-Total-Count, Elements-Next-Page-Token)",
                PAGING,
                {"200": _json({"type": "array", "items": _ref("ElementsEntry")}, "A page.")}
                | _el_errors("400", "401", "404"),
                None,
            )
        },
    )
    paths[HUB + "/files"] |= {
        "post": _el(
            "Upload a file to `path` (multipart part `file`)",
            [PATH_Q, _param("overwrite", "query", {"type": "boolean"})],
            {"200": EL_ENTRY, **_el_errors("400", "401", "404", "409", "413")},
            _body(
                {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                },
                "multipart/form-data",
            ),
        ),
    }
    paths[HUB + "/folders"] = {
        "post": _el(
            "Create a folder at `path` (or in its parent, named `name`)",
            [_param("path", "query", {"type": "string"})],
            {"200": EL_ENTRY, **_el_errors("400", "401", "404", "409")},
            _copy_body(name=True),
        ),
        **paths[HUB + "/folders"],
    }
    return paths


INSTANCE_ID = _param("instanceId", "path", {"type": "integer", "minimum": 1}, True)
EVENT_ID = _param("eventId", "path", {"type": "integer", "minimum": 1}, True)
INSTANCE = _json(_ref("Instance"), "The instance.")
EVENT = _json(_ref("Event"), "The event, with its delivery attempts.")
INSTANCE_BODY = _body(
    {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "element": {"type": "object", "properties": {"key": {"type": "string", "enum": ["documents"]}}},
            "configuration": {"type": "object"},
        },
    }
)

PATHS |= _hub_paths() | {
    EL + "/instances": {
        "post": _el(
            "Create an instance (a new Element token)",
            [],
            {"200": INSTANCE, **_el_errors("400", "401")},
            INSTANCE_BODY,
        ),
        "get": _el(
            "List instances",
            [],
            {"200": _json({"type": "array", "items": _ref("Instance")}, "All."), **_el_errors("401")},
        ),
    },
    EL + "/instances/{instanceId}": {
        "get": _el("An instance", [INSTANCE_ID], {"200": INSTANCE, **_el_errors("400", "401", "404")}),
        "patch": _el(
            "Rename an instance or merge configuration keys",
            [INSTANCE_ID],
            {"200": INSTANCE, **_el_errors("400", "401", "404")},
            INSTANCE_BODY,
        ),
        "delete": _el(
            "Delete an instance (not the default one)",
            [INSTANCE_ID],
            {"204": {"description": "Deleted."}, **_el_errors("400", "401", "404")},
        ),
    },
    EL + "/instances/events": {
        "get": _el(
            "Events of asynchronous requests, newest first",
            PAGING,
            {
                "200": _json({"type": "array", "items": _ref("Event")}, "A page."),
                **_el_errors("400", "401"),
            },
        )
    },
    EL + "/instances/events/{eventId}": {
        "get": _el(
            "An event and its webhook's delivery attempts",
            [EVENT_ID],
            {"200": EVENT, **_el_errors("400", "401", "404")},
        ),
        "delete": _el(
            "Cancel the event's operation (what was done stays)",
            [EVENT_ID],
            {"200": EVENT, **_el_errors("400", "401", "404")},
        ),
    },
    EL + "/instances/events/{eventId}/redeliver": {
        "post": _el(
            "Send a queued (or delivered) webhook again",
            [EVENT_ID],
            {"202": EVENT, **_el_errors("400", "401", "404", "409")},
        )
    },
}

EVENT_OBJECT = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["folder", "file"]},
            },
        },
    },
}
SCHEMAS |= {
    "ElementsEntry": {
        "type": "object",
        "required": ["id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "path": {"type": "string"},
            "directory": {"type": "boolean"},
            "size": {"type": "integer"},
            "createdDate": {"type": "string", "format": "date-time"},
            "modifiedDate": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Dispatched": {
        "type": "object",
        "required": ["eventId", "eventStatus"],
        "properties": {
            "eventId": {"type": "integer"},
            "eventStatus": {"type": "string", "enum": ["dispatched"]},
        },
    },
    "ElementsResult": {
        "type": "object",
        "description": "The webhook's `response`: one event per entry made or removed; `error` if it failed.",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": EVENT_OBJECT},
            "error": {
                "type": "object",
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            },
        },
    },
    "Instance": {
        "type": "object",
        "required": ["id", "name", "token", "element", "configuration"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "token": {"type": "string"},
            "element": {"type": "object"},
            "configuration": {"type": "object"},
            "createdDate": {"type": "string", "format": "date-time"},
            "disabled": {"type": "boolean"},
            "tags": {"type": "array"},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "eventId", "instanceId", "eventStatus", "deliveries"],
        "properties": {
            "id": {"type": "integer"},
            "eventId": {"type": "integer"},
            "instanceId": {"type": "integer"},
            "eventStatus": {
                "type": "string",
                "enum": ["dispatched", "processing", "completed", "failed", "cancelled"],
            },
            "createdDate": {"type": "string", "format": "date-time"},
            "updatedDate": {"type": "string", "format": "date-time"},
            "callbackUrl": {"type": "string"},
            "request": {"type": "object"},
            "response": {"oneOf": [_ref("ElementsResult"), {"type": "null"}]},
            "deliveries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "notificationId": {"type": "integer"},
                        "status": DELIVERY_STATUS,
                        "attempts": {"type": "array", "items": {"type": "object"}},
                        "nextAttemptDate": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
            },
        },
    },
}


# ---- the sandbox's own routes --------------------------------------------------------------

# /sandbox/* takes either dialect's credentials
EITHER_AUTH: list[dict[str, list[str]]] = [{"bearer": []}, {"elements": []}]
SANDBOX_ERRORS = {
    **ERRORS,
    "401": _problem("Missing or invalid credentials (a Laserfiche bearer, or Elements User and Element)."),
    "404": _problem("Nothing there that the caller may see."),
    "409": _problem("The operation is still running (its token cannot expire yet)."),
}
OP_TOKEN = _param("operationToken", "path", {"type": "string"}, True)
SCHEMAS |= {
    "SandboxOperation": {
        "type": "object",
        "required": ["operationToken", "operationType", "status", "percentComplete", "sessionId", "user"],
        "properties": {
            "operationToken": {"type": "string"},
            "operationType": OPERATION_TYPE,
            "status": OPERATION_STATUS,
            "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
            "entriesDone": {"type": "integer"},
            "entriesTotal": {"type": "integer"},
            "paceMs": {"type": "number"},
            "sessionId": {"type": "string"},
            "user": {"type": "string"},
            "entryId": {"type": "integer"},
            "label": {"type": "string"},
            "eventId": {"type": ["integer", "null"]},
            "errors": ERROR_ITEMS,
            "createdTimestamp": {"type": "string", "format": "date-time"},
            "startTimestamp": {"type": ["string", "null"], "format": "date-time"},
            "statusTimestamp": {"type": "string", "format": "date-time"},
        },
    },
    "SandboxDelivery": {
        "type": "object",
        "required": ["notificationId", "eventId", "url", "status", "attempts"],
        "properties": {
            "notificationId": {"type": "integer"},
            "eventId": {"type": "integer"},
            "instanceId": {"type": "integer"},
            "url": {"type": "string"},
            "status": DELIVERY_STATUS,
            "sessionId": {"type": "string"},
            "attempts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "number": {"type": "integer"},
                        "startedTimestamp": {"type": "string", "format": "date-time"},
                        "durationMs": {"type": "number"},
                        "statusCode": {"type": ["integer", "null"]},
                        "error": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
    "FaultRequest": {
        "type": "object",
        "description": "operation-failure: the session's next operation(s) fail after afterEntries "
        "entries; webhook-failure: attempts to url fail unsent with status; webhook-delay: deliveries "
        "to url are held delayMs; expire-token: an ended operation's token (operationToken), or the "
        "session's access token, expires now.",
        "required": ["kind"],
        "properties": {
            "kind": {
                "type": "string",
                "enum": ["operation-failure", "webhook-failure", "webhook-delay", "expire-token"],
            },
            "times": {"type": "integer", "minimum": 1, "maximum": 1000},
            "sessionId": {"type": "string"},
            "afterEntries": {"type": "integer", "minimum": 0},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "message": {"type": "string", "minLength": 1, "maxLength": 1000},
            "operationType": OPERATION_TYPE,
            "url": {"type": "string", "format": "uri"},
            "delayMs": {"type": "number", "exclusiveMinimum": 0, "maximum": 600000},
            "operationToken": {"type": "string"},
        },
    },
    "Fault": {
        "type": "object",
        "required": ["id", "kind", "sessionId", "user", "remaining"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["operation-failure", "webhook-failure", "webhook-delay"]},
            "sessionId": {"type": "string"},
            "user": {"type": "string"},
            "remaining": {"type": "integer"},
            "created": {"type": "string", "format": "date-time"},
            "afterEntries": {"type": "integer"},
            "status": {"type": "integer"},
            "message": {"type": "string"},
            "operationType": {"type": ["string", "null"]},
            "url": {"type": "string"},
            "delayMs": {"type": "number"},
        },
    },
}


def _sandbox(
    summary: str, params: list[dict[str, Any]], responses: dict[str, Any], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    return _op(summary, params, responses, body) | {"security": EITHER_AUTH}


def _sandbox_errors(*codes: str) -> dict[str, Any]:
    return _errors(*codes, table=SANDBOX_ERRORS)


TOP = _param("$top", "query", {"type": "integer", "minimum": 1}, description="At most this many (1000).")
NO_CONTENT = {"204": {"description": "Done."}}
PATHS |= {
    "/": {
        "get": _op(
            "The dashboard (HTML)",
            [],
            {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
            secure=False,
        )
    },
    "/dashboard/{name}": {
        "get": _op(
            "The dashboard's script and style",
            [_param("name", "path", {"type": "string", "enum": ["dashboard.js", "dashboard.css"]}, True)],
            {"200": {"description": "The file."}, **_errors("404")},
            secure=False,
        )
    },
    "/sandbox/faults": {
        "get": _sandbox(
            "The armed faults the caller can see",
            [],
            {
                "200": _json(_collection(_ref("Fault")), "Armed faults, oldest first."),
                **_sandbox_errors("401"),
            },
        ),
        "post": _sandbox(
            "Arm a fault (201), or expire a token now (200)",
            [],
            {
                "200": _json({"type": "object"}, "Expired."),
                "201": _json(_ref("Fault"), "Armed."),
                **_sandbox_errors("400", "401", "404", "409"),
            },
            _body(_ref("FaultRequest")),
        ),
        "delete": _sandbox(
            "Disarm every fault the caller can see", [], {**NO_CONTENT, **_sandbox_errors("401")}
        ),
    },
    "/sandbox/faults/{faultId}": {
        "delete": _sandbox(
            "Disarm a fault",
            [_param("faultId", "path", {"type": "string"}, True)],
            {**NO_CONTENT, **_sandbox_errors("401", "404")},
        )
    },
    "/sandbox/operations": {
        "get": _sandbox(
            "Operations (of the caller's user; an admin: all), newest first",
            [
                _param("sessionId", "query", {"type": "string"}),
                _param("user", "query", {"type": "string"}),
                _param("status", "query", OPERATION_STATUS),
                _param("type", "query", OPERATION_TYPE),
                TOP,
            ],
            {
                "200": _json(_collection(_ref("SandboxOperation")), "The operations."),
                **_sandbox_errors("400", "401"),
            },
        )
    },
    "/sandbox/operations/{operationToken}": {
        "get": _sandbox(
            "One operation",
            [OP_TOKEN],
            {"200": _json(_ref("SandboxOperation"), "The operation."), **_sandbox_errors("401", "404")},
        )
    },
    "/sandbox/operations/{operationToken}/cancel": {
        "post": _sandbox(
            "Cancel an operation of any of the caller's sessions",
            [OP_TOKEN],
            {"200": _json(_ref("SandboxOperation"), "As it ended."), **_sandbox_errors("401", "404")},
        )
    },
    "/sandbox/deliveries": {
        "get": _sandbox(
            "Webhook deliveries with their attempts, newest first",
            [
                _param("eventId", "query", {"type": "integer", "minimum": 1}),
                _param("status", "query", DELIVERY_STATUS),
                TOP,
            ],
            {
                "200": _json(_collection(_ref("SandboxDelivery")), "The deliveries."),
                **_sandbox_errors("400", "401"),
            },
        )
    },
    "/sandbox/stats": {
        "get": _sandbox(
            "The process's tasks, open files, threads and RSS (admins only)",
            [],
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            name: {"type": "integer"}
                            for name in (
                                "asyncioTasks",
                                "openFiles",
                                "threads",
                                "rssBytes",
                                "operations",
                                "runningOperations",
                                "feedSubscribers",
                                "pendingDeliveries",
                            )
                        },
                    },
                    "The counts.",
                ),
                **_sandbox_errors("401", "404"),
            },
        )
    },
    "/sandbox/events": {
        "get": _sandbox(
            "Server-sent events: `operation` (progress, in order, the terminal one last) and `delivery`",
            [
                _param("operationToken", "query", {"type": "string"}, description="Only this operation."),
                _param("Last-Event-ID", "header", {"type": "string"}, description="Replay after this id."),
            ],
            {
                "200": {
                    "description": "The stream; ends when the server stops.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_sandbox_errors("401"),
            },
        )
    },
}


# what any route may answer before its handler runs (see api/common.py): documented on all
ANY_ROUTE = {
    "414": _problem("The query string is over 4 KiB."),
    "431": _problem("A request header is over 4 KiB."),
}
# and a request aiohttp's HTTP parser itself refuses (a header with bytes no header may hold, a line
# over 8 KiB) is answered 400 in plain text, before the application sees it
PARSER_400 = {"text/plain": {"schema": {"type": "string"}}}


def _with_limits(paths: dict[str, Any]) -> dict[str, Any]:
    def limited(responses: dict[str, Any]) -> dict[str, Any]:
        bad = responses.get("400", {"description": "The request could not be parsed.", "content": {}})
        bad = bad | {"content": {**bad.get("content", {}), **PARSER_400}}
        return {**responses, "400": bad, **ANY_ROUTE}

    return {
        path: {method: op | {"responses": limited(op["responses"])} for method, op in methods.items()}
        for path, methods in paths.items()
    }


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Document operations sandbox",
            "version": version,
            "description": "A local stand-in for the Laserfiche Repository API v1 and the Cloud Elements "
            "documents hub (asynchronous requests, signed webhooks) over a folder on disk.",
        },
        "paths": _with_limits(PATHS),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "elements": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "User <user secret>, Organization <org secret>, Element <instance token>",
                },
            },
        },
        "security": [{"bearer": []}],
    }
