"""The Laserfiche Repository API v2 dialect (api/v2/): entries, documents, and tasks on the same
operations engine as v1's long operations. Shapes as `api/v2/render.py` writes them, statuses as the
published v2 client accepts them (one success status per call: 201 create, copy and import; 202 task
starts; 200 the rest)."""

from __future__ import annotations

from typing import Any

from .metadata_schemas import whole
from .parts import (
    AUTO_RENAME,
    DOWNLOAD,
    ENTRY_ID,
    ERRORS,
    ODATA_PAGING,
    OPERATION_STATUS,
    PACE,
    REPO_ID,
    SELECT,
    body,
    collection,
    errors,
    json_response,
    operation,
    param,
    problem,
    ref,
)

V2 = "/v2/Repositories/{repoId}"

V2_ERRORS = {
    **ERRORS,
    "404": problem("Unknown repository, entry or task (another access token's tasks are unknown here)."),
    "409": problem("An entry of that name is there already (and autoRename is false)."),
    "413": problem(
        "The file is over the server's limit (--max-document-bytes), or the request part over 1 MiB."
    ),
    "429": problem(
        "The access token has as many tasks waiting as it may (100); the body names the running one "
        "(operationToken), Retry-After says when to try again."
    ),
}


def _errors(*codes: str) -> dict[str, Any]:
    return errors(*codes, table=V2_ERRORS)


def _with_location(response: dict[str, Any], what: str) -> dict[str, Any]:
    location = {"description": what, "required": True, "schema": {"type": "string", "format": "uri"}}
    return response | {"headers": {"Location": location}}


BOOLEAN = {"type": "boolean"}
INTEGER = {"type": "integer"}
STRING = {"type": "string"}
NAME = {"type": "string", "minLength": 1, "maxLength": 255}
ENTRY_TYPES = ["Folder", "Document", "Shortcut"]
# what `taskType` can say (the client's enum); this server's tasks are copies and deletes (and the
# test task, which reads as a copy)
TASK_TYPE = {
    "type": "string",
    "enum": ["CopyEntry", "DeleteEntry", "ExportEntry", "ImportUploadedParts", "SearchEntry"],
}

# ---- entries ---------------------------------------------------------------------------------

# what every entry carries (`$select` may leave out all but id, name and entryType)
COMMON_MEMBERS: dict[str, Any] = {
    "id": INTEGER,
    "name": STRING,
    "parentId": {"type": "integer", "description": "0 for the root folder."},
    "fullPath": STRING,
    "folderPath": STRING,
    "creator": STRING,
    "creationTime": {"type": "string", "format": "date-time"},
    "lastModifiedTime": {"type": "string", "format": "date-time"},
    "isContainer": BOOLEAN,
    "isLeaf": BOOLEAN,
    "templateName": STRING,
    "templateId": INTEGER,
    "templateFieldNames": {"type": "array", "items": STRING},
    "volumeName": STRING,
    "rowNumber": {"type": "integer", "description": "In a listing: the entry's place in it, from 1."},
    "fields": {
        "type": "array",
        "items": whole("V2Field"),
        "description": "In a listing with ?fields=: the values of the fields it names (those with values).",
    },
}
CHILD_INFO = {
    "type": "object",
    "description": "Only with ?includeChildInfo=true.",
    "required": ["hasChildren", "childCount", "folderCount", "documentCount", "shortcutCount"],
    "additionalProperties": False,
    "properties": {
        "hasChildren": BOOLEAN,
        "childCount": INTEGER,
        "folderCount": INTEGER,
        "documentCount": INTEGER,
        "shortcutCount": INTEGER,
    },
}
MEMBERS_OF: dict[str, dict[str, Any]] = {
    "Folder": {"isRecordFolder": BOOLEAN, "isUnderRecordSeries": BOOLEAN, "childInfo": CHILD_INFO},
    "Document": {
        "electronicDocumentSize": INTEGER,
        "extension": STRING,
        "isElectronicDocument": BOOLEAN,
        "isRecord": BOOLEAN,
        "mimeType": STRING,
        "pageCount": INTEGER,
        "isCheckedOut": BOOLEAN,
        "isUnderVersionControl": BOOLEAN,
        "totalDocumentSize": {"type": "integer", "description": "Only with ?includeTotalSize=true."},
    },
    "Shortcut": {
        "targetId": INTEGER,
        "targetType": {"type": "string", "enum": ENTRY_TYPES, "description": "As it was when made."},
        "extension": STRING,
    },
}


def _entry_of(entry_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "name", "entryType"],
        "additionalProperties": False,
        "properties": COMMON_MEMBERS | {"entryType": {"const": entry_type}} | MEMBERS_OF[entry_type],
    }


def _only(member: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [member],
        "additionalProperties": False,
        "properties": {member: ref("V2Entry")},
    }


ENTRY_SCHEMAS: dict[str, Any] = {f"V2{entry_type}": _entry_of(entry_type) for entry_type in ENTRY_TYPES} | {
    "V2Entry": {
        "description": "A folder, document or shortcut, by its entryType.",
        "oneOf": [ref(f"V2{entry_type}") for entry_type in ENTRY_TYPES],
        "discriminator": {
            "propertyName": "entryType",
            "mapping": {t: f"#/components/schemas/V2{t}" for t in ENTRY_TYPES},
        },
    },
    "V2FindEntryResult": {
        "description": "The entry at the path, or (?fallbackToClosestAncestor=true) its closest ancestor.",
        "oneOf": [_only("entry"), _only("ancestorEntry")],
    },
    "V2Repository": {
        "type": "object",
        "required": ["id", "name", "webClientUrl"],
        "additionalProperties": False,
        "properties": {"id": STRING, "name": STRING, "webClientUrl": {"type": "string", "format": "uri"}},
    },
    "V2CreateEntryRequest": {
        "type": "object",
        "required": ["entryType", "name"],
        "properties": {
            "entryType": {"type": "string", "enum": ["Folder", "Shortcut"]},
            "name": NAME,
            "autoRename": BOOLEAN,
            "targetId": {"type": "integer", "description": "A shortcut's target (required for one)."},
            "folderPath": {
                "type": "string",
                "description": "Folders below the route's folder to create the entry in, `/` or `\\` "
                "between names (created with ?autoCreateFolderPath=true); `..`, `.` or an empty "
                "name is 400.",
            },
        },
    },
    "V2CopyEntryRequest": {
        "type": "object",
        "required": ["sourceId", "name"],
        "properties": {"sourceId": INTEGER, "name": NAME, "autoRename": BOOLEAN},
    },
    "V2UpdateEntryRequest": {
        "type": "object",
        "description": "Move (parentId) and/or rename (name).",
        "properties": {"parentId": INTEGER, "name": NAME, "autoRename": BOOLEAN},
    },
    "V2DeleteEntryRequest": {
        "type": "object",
        "properties": {"auditReasonId": INTEGER, "auditReasonComment": STRING},
    },
    "V2ImportEntryRequest": {
        "type": "object",
        "description": "The `request` part (JSON text). Other members are taken and ignored.",
        "properties": {
            "name": {**NAME, "description": "Default: the file part's file name."},
            "autoRename": BOOLEAN,
            "folderPath": {"type": "string", "description": "As for creating an entry."},
        },
    },
}

# ---- tasks -----------------------------------------------------------------------------------

TASK_SCHEMAS: dict[str, Any] = {
    "StartTaskResponse": {
        "type": "object",
        "required": ["taskId"],
        "additionalProperties": False,
        "properties": {"taskId": {"type": "string", "minLength": 1}},
    },
    "TaskProgress": {
        "type": "object",
        "required": [
            "id",
            "taskType",
            "percentComplete",
            "status",
            "errors",
            "result",
            "startTime",
            "lastUpdateTime",
        ],
        "additionalProperties": False,
        "properties": {
            "id": STRING,
            "taskType": TASK_TYPE,
            "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
            "status": OPERATION_STATUS,
            "errors": {"type": "array", "items": ref("ProblemDetails")},
            "result": {
                "description": "A copy: the new entry (entryId, uri); a delete: the entry (entryId); a "
                "test task asked for hasRedirectUri: uri.",
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"entryId": INTEGER, "uri": {"type": "string", "format": "uri"}},
                    },
                    {"type": "null"},
                ],
            },
            "startTime": {"type": ["string", "null"], "format": "date-time"},
            "lastUpdateTime": {"type": "string", "format": "date-time"},
        },
    },
    "TaskCollectionResponse": {
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {"value": {"type": "array", "items": ref("TaskProgress")}},
    },
    "CancelTasksResponse": {
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {
            "value": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "taskType", "result"],
                    "additionalProperties": False,
                    "properties": {
                        "id": STRING,
                        "taskType": TASK_TYPE,
                        "result": {
                            "type": "boolean",
                            "description": "Whether it was running or waiting (and is now Cancelled).",
                        },
                    },
                },
            }
        },
    },
}

SCHEMAS: dict[str, Any] = ENTRY_SCHEMAS | TASK_SCHEMAS

# ---- routes ----------------------------------------------------------------------------------

ODATA = [
    SELECT,
    param(
        "$orderby",
        "query",
        STRING,
        description="e.g. `name desc, creationTime`: name, id, creationTime, lastModifiedTime, "
        "entryType, electronicDocumentSize, creator, extension.",
    ),
    *ODATA_PAGING,
]
# a listing's `?fields=Vendor&fields=Amount`: each entry's `fields` holds the values of these
FIELDS = param(
    "fields",
    "query",
    {"type": "array", "items": STRING},
    description="Repeated: field names whose values each entry's `fields` holds (default: no `fields`).",
) | {"style": "form", "explode": True}
AUTO_CREATE = param(
    "autoCreateFolderPath",
    "query",
    BOOLEAN,
    description="Create the folders `folderPath` names that are missing (otherwise: 404).",
)
TASK_IDS = param(
    "taskIds",
    "query",
    {"type": "array", "items": STRING},
    description="Repeated, or comma-separated. None: every task of this access token.",
) | {"style": "form", "explode": True}
PREFERENCE_APPLIED = {
    "Preference-Applied": {"description": "The preference taken.", "schema": STRING},
}

ENTRY = json_response(ref("V2Entry"), "The entry.")
CREATED = _with_location(json_response(ref("V2Entry"), "Created."), "The new entry.")
STARTED = _with_location(json_response(ref("StartTaskResponse"), "Started."), "The task's progress.")
# (optional: none, or an empty one, is as good as `{}`)
AUDIT_BODY = {"required": False, "content": {"application/json": {"schema": ref("V2DeleteEntryRequest")}}}

PATHS: dict[str, Any] = {
    "/v2/Repositories": {
        "get": operation(
            "The repositories (this one); no access token needed",
            [],
            {"200": json_response(collection(ref("V2Repository")), "The repositories.")},
            security=[],
        )
    },
    V2 + "/Entries/ByPath": {
        "get": operation(
            "Entry by path",
            [
                REPO_ID,
                param("fullPath", "query", STRING, True, "Backslash path, with or without the first `\\`."),
                param("fallbackToClosestAncestor", "query", BOOLEAN),
            ],
            {"200": json_response(ref("V2FindEntryResult"), "Found."), **_errors("400", "401", "404")},
        )
    },
    V2 + "/Entries/{entryId}": {
        "get": operation(
            "Entry",
            [
                REPO_ID,
                ENTRY_ID,
                param("includeChildInfo", "query", BOOLEAN, description="A folder's childInfo."),
                param("includeTotalSize", "query", BOOLEAN, description="A document's totalDocumentSize."),
                SELECT,
            ],
            {"200": ENTRY, **_errors("400", "401", "404")},
        ),
        "patch": operation(
            "Move and/or rename an entry",
            [REPO_ID, ENTRY_ID, AUTO_RENAME],
            {"200": ENTRY, **_errors("400", "401", "404", "409")},
            body(ref("V2UpdateEntryRequest")),
        ),
        "delete": operation(
            "Delete an entry (a task)",
            [REPO_ID, ENTRY_ID, PACE],
            {"202": STARTED, **_errors("400", "401", "404", "429", "503")},
            AUDIT_BODY,
        ),
    },
    V2 + "/Entries/{entryId}/Folder/Children": {
        "get": operation(
            "List a folder's children",
            [REPO_ID, ENTRY_ID, *ODATA, FIELDS],
            {
                "200": json_response(collection(ref("V2Entry")), "A page of children.")
                | {"headers": PREFERENCE_APPLIED},
                **_errors("400", "401", "404"),
            },
        ),
        "post": operation(
            "Create a folder or a shortcut",
            [REPO_ID, ENTRY_ID, AUTO_CREATE, AUTO_RENAME],
            {"201": CREATED, **_errors("400", "401", "404", "409")},
            body(ref("V2CreateEntryRequest")),
        ),
    },
    V2 + "/Entries/{entryId}/Folder/Copy": {
        "post": operation(
            "Copy an entry into this folder, in the request (a shortcut copies as a shortcut)",
            [REPO_ID, ENTRY_ID, AUTO_RENAME, PACE],
            {"201": CREATED, **_errors("400", "401", "404", "409", "503")},
            body(ref("V2CopyEntryRequest")),
        )
    },
    V2 + "/Entries/{entryId}/Folder/CopyAsync": {
        "post": operation(
            "Copy an entry into this folder (a task)",
            [REPO_ID, ENTRY_ID, AUTO_RENAME, PACE],
            {"202": STARTED, **_errors("400", "401", "404", "409", "429", "503")},
            body(ref("V2CopyEntryRequest")),
        )
    },
    V2 + "/Entries/{entryId}/Folder/Import": {
        "post": operation(
            "Import a document (multipart: file, request)",
            [REPO_ID, ENTRY_ID, AUTO_CREATE, AUTO_RENAME],
            {
                "201": CREATED,
                "400": problem("Malformed request, or an empty file."),
                **_errors("401", "404", "409", "413"),
            },
            {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "request": ref("V2ImportEntryRequest"),
                            },
                        },
                        "encoding": {"request": {"contentType": "application/json, text/plain"}},
                    }
                },
            },
        )
    },
    V2 + "/Entries/{entryId}/Document/Edoc": {
        method: operation(
            "Download a document (GET) or its headers (HEAD); honours one Range; through a shortcut, "
            "its target's",
            [REPO_ID, ENTRY_ID, param("Range", "header", STRING)],
            {**DOWNLOAD, **_errors("400", "401", "404")},
        )
        for method in ("get", "head")
    },
    V2 + "/Tasks": {
        "get": operation(
            "Tasks' progress; while none of them has ended, the answer waits (long polling) until one "
            "does, at most --task-wait-s (60 s) or what `Prefer: wait=N` asks",
            [
                REPO_ID,
                TASK_IDS,
                param("Prefer", "header", STRING, description="`wait=N`: wait at most N seconds (RFC 7240)."),
            ],
            {
                "200": json_response(ref("TaskCollectionResponse"), "The tasks found (others left out).")
                | {"headers": PREFERENCE_APPLIED},
                **_errors("401", "404"),
            },
        ),
        "delete": operation(
            "Cancel tasks (what was done stays); answers once they have stopped",
            [REPO_ID, TASK_IDS],
            {
                "200": json_response(ref("CancelTasksResponse"), "The tasks found (others left out)."),
                **_errors("401", "404"),
            },
        ),
    },
    V2 + "/Tasks/StartTestTaskAsync": {
        "post": operation(
            "Start a test task: rising progress for operationTime seconds, then Completed or Failed",
            [
                REPO_ID,
                param("operationTime", "query", {"type": "integer", "minimum": 0, "maximum": 3600}),
                param("hasRedirectUri", "query", BOOLEAN, description="Completed with result.uri."),
                param("hasError", "query", BOOLEAN, description="Failed, with an error."),
            ],
            {
                "200": _with_location(json_response(ref("StartTaskResponse"), "Started."), "Its progress."),
                **_errors("400", "401", "404", "429", "503"),
            },
        )
    },
}
