"""The Laserfiche Repository API v1 dialect: sign-in, entries, documents and long operations."""

from __future__ import annotations

from typing import Any

from .parts import (
    AUTO_RENAME,
    DOWNLOAD,
    ENTRY_ID,
    ERROR_ITEMS,
    ODATA,
    OPERATION_STATUS,
    OPERATION_TYPE,
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

LF = "/v1/Repositories/{repoId}"
TOKEN = param("operationToken", "path", {"type": "string"}, True, "The token a start returned.")
WAIT = param(
    "wait",
    "query",
    {"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,9})?$"},
    description="Sandbox long poll: answer once the operation has ended, or after this many seconds "
    "(at most 60).",
)

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
    "fields": {
        "type": "array",
        "items": ref("EntryFieldValue"),
        "description": "The fields with values (in a listing: those ?fields= names).",
    },
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
    # a shortcut's (with extension, above)
    "targetId": {"type": "integer"},
    "targetType": {"type": "string", "enum": ["Folder", "Document", "Shortcut"]},
}

SCHEMAS: dict[str, Any] = {
    "Entry": {"type": "object", "required": ["id", "entryType"], "properties": ENTRY_PROPERTIES},
    "FindEntryResult": {
        "type": "object",
        "required": ["entry", "ancestorEntry"],
        "properties": {
            "entry": {"oneOf": [ref("Entry"), {"type": "null"}]},
            "ancestorEntry": {"oneOf": [ref("Entry"), {"type": "null"}]},
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
        "description": "Create a folder ({entryType: 'Folder', name}) or a shortcut ({entryType: "
        "'Shortcut', name, targetId}), or copy ({sourceId, name}).",
        "required": ["name"],
        "properties": {
            "entryType": {"type": "string", "enum": ["Folder", "Shortcut"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "targetId": {"type": "integer"},
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

# a listing's `?fields=Vendor&fields=Amount`: each entry's `fields` holds the values of these
FIELDS = param(
    "fields",
    "query",
    {"type": "array", "items": {"type": "string"}},
    description="Repeated: field names whose values each entry's `fields` holds (default: none).",
) | {"style": "form", "explode": True}

# what starting a long operation answers, by profile
STARTED = {
    "201": json_response(ref("AcceptedOperation"), "Accepted (sdk profile); Location: the Tasks URL."),
    "202": json_response(ref("AcceptedOperation"), "Accepted (docs profile); Location: the Tasks URL."),
}

PATHS: dict[str, Any] = {
    LF + "/Token": {
        "post": operation(
            "Sign in (password grant); the access token is a session",
            [REPO_ID],
            {"200": json_response(ref("SessionKeyInfo"), "Signed in."), **errors("400", "401", "404")},
            body(
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
            security=[],
        )
    },
    LF + "/Entries/ByPath": {
        "get": operation(
            "Entry by path",
            [
                REPO_ID,
                param("fullPath", "query", {"type": "string"}, True, "Backslash path, e.g. `\\A\\B`"),
                param("fallbackToClosestAncestor", "query", {"type": "boolean"}),
                SELECT,
            ],
            {"200": json_response(ref("FindEntryResult"), "Found."), **errors("400", "401", "404")},
        )
    },
    LF + "/Entries/{entryId}": {
        "get": operation(
            "Entry",
            [REPO_ID, ENTRY_ID, SELECT],
            {"200": json_response(ref("Entry"), "The entry."), **errors("400", "401", "404")},
        ),
        "patch": operation(
            "Move and/or rename an entry",
            [REPO_ID, ENTRY_ID, AUTO_RENAME],
            {"200": json_response(ref("Entry"), "Moved."), **errors("400", "401", "404", "409")},
            body(ref("PatchEntryRequest")),
        ),
        "delete": operation(
            "Delete an entry (a long operation): returns a token",
            [REPO_ID, ENTRY_ID, PACE],
            {**STARTED, **errors("400", "401", "404", "429", "503")},
            {
                "required": False,
                "content": {"application/json": {"schema": ref("DeleteEntryWithAuditReason")}},
            },
        ),
    },
    **{
        LF + "/Entries/{entryId}/Laserfiche.Repository.Folder" + route: {
            "post": operation(
                "Copy an entry into this folder (a long operation): returns a token",
                [REPO_ID, ENTRY_ID, AUTO_RENAME, PACE],
                {**STARTED, **errors("400", "401", "404", "409", "429", "503")},
                body(ref("CopyAsyncRequest")),
            )
        }
        for route in ("/CopyAsync", "/children/CopyAsync")
    },
    LF + "/Tasks/{operationToken}": {
        "get": operation(
            "An operation's progress; a completed copy redirects to its new entry",
            [REPO_ID, TOKEN, WAIT],
            {
                "200": json_response(
                    ref("OperationProgress"), "Ended: a delete completed, failed or cancelled."
                ),
                "201": json_response(
                    ref("OperationProgress"), "A completed copy (sdk profile); Location: the entry."
                ),
                "202": json_response(ref("OperationProgress"), "Not started or in progress; Retry-After."),
                "302": json_response(
                    ref("OperationProgress"), "A completed copy (docs profile); Location: the entry."
                ),
                **errors("400", "401", "404"),
            },
        ),
        "delete": operation(
            "Cancel a running or waiting operation (what was done stays)",
            [REPO_ID, TOKEN],
            {
                "204": {"description": "Cancelled."},
                "400": problem("Cannot cancel ended operation."),
                **errors("401", "404"),
            },
        ),
    },
    LF + "/Tasks/{operationToken}/status": {
        "get": operation(
            "Status monitor (Operation-Location) in the REST-guidelines vocabulary",
            [REPO_ID, TOKEN, WAIT],
            {
                "200": json_response(ref("OperationStatusMonitor"), "The status."),
                **errors("400", "401", "404"),
            },
        )
    },
    LF + "/Entries/{entryId}/Laserfiche.Repository.Folder/children": {
        "get": operation(
            "List a folder's children",
            [REPO_ID, ENTRY_ID, *ODATA, FIELDS],
            {
                "200": json_response(collection(ref("Entry")), "A page of children."),
                **errors("400", "401", "404"),
            },
        ),
        "post": operation(
            "Create a folder, or copy an entry synchronously",
            [REPO_ID, ENTRY_ID, AUTO_RENAME, PACE],
            {"201": json_response(ref("Entry"), "Created."), **errors("400", "401", "404", "409")},
            body(ref("PostEntryChildrenRequest")),
        ),
    },
    LF + "/Entries/{entryId}/{fileName}": {
        "post": operation(
            "Import a document (multipart: electronicDocument, request)",
            [REPO_ID, ENTRY_ID, param("fileName", "path", {"type": "string"}, True), AUTO_RENAME],
            {
                "201": json_response(ref("CreateEntryResult"), "Imported."),
                "400": {
                    "description": "An empty document (the result, with its exception), or a problem.",
                    "content": {
                        "application/json": {"schema": ref("CreateEntryResult")},
                        "application/problem+json": {"schema": ref("ProblemDetails")},
                    },
                },
                **errors("401", "404", "409", "413"),
            },
            body(
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
        method: operation(
            "Download a document (GET) or its headers (HEAD); honours one Range",
            [REPO_ID, ENTRY_ID, param("Range", "header", {"type": "string"})],
            {**DOWNLOAD, **errors("400", "401", "404")},
        )
        for method in ("get", "head")
    },
}
