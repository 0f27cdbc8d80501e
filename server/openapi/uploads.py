"""v2 uploads in parts (api/v2/uploads.py): the upload URLs, the parts' PUT (credential in the URL,
no bearer), and the two tasks that assemble the parts into a document."""

from __future__ import annotations

from typing import Any

from .laserfiche_v2 import AUTO_CREATE, STARTED, V2, V2_ERRORS
from .metadata_schemas import V2_FIELD_TO_SET
from .parts import ENTRY_ID, PACE, REPO_ID, body, errors, json_response, operation, param, problem, ref

STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
STRINGS = {"type": "array", "items": STRING}


def _errors(*codes: str) -> dict[str, Any]:
    return errors(*codes, table=V2_ERRORS)


_METADATA = {
    "type": "object",
    "description": "Metadata for the document, checked by the task before anything is assembled (a "
    "value that does not fit fails the task, and no document appears).",
    "properties": {
        "templateName": STRING,
        "fields": {"type": "array", "items": V2_FIELD_TO_SET},
        "tags": STRINGS,
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["linkDefinitionId", "otherEntryId"],
                "properties": {
                    "linkDefinitionId": {"type": "integer"},
                    "otherEntryId": {"type": "integer"},
                    "isSource": {"type": "boolean", "description": "Default: true."},
                    "customProperties": {"type": "object", "additionalProperties": STRING},
                },
            },
        },
    },
}
_PARTS = {
    "uploadId": {"type": "string", "description": "From CreateMultipartUploadUrls."},
    "partETags": {
        "type": "array",
        "items": STRING,
        "minItems": 1,
        "description": "The ETag each PUT answered, in the order of the upload's URLs.",
    },
    "metadata": _METADATA,
}

SCHEMAS: dict[str, Any] = {
    "V2CreateMultipartUploadUrlsRequest": {
        "type": "object",
        "required": ["numberOfParts", "fileName", "mimeType"],
        "properties": {
            "uploadId": {
                "type": ["string", "null"],
                "description": "None for the first batch of URLs; then the one it returned.",
            },
            "startingPartNumber": {"type": "integer", "minimum": 1, "default": 1},
            "numberOfParts": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "description": "startingPartNumber + numberOfParts is at most 1001.",
            },
            "fileName": {"type": "string", "minLength": 1},
            "mimeType": STRING,
        },
    },
    "V2CreateMultipartUploadUrlsResponse": {
        "type": "object",
        "required": ["uploadId", "urls"],
        "properties": {
            "uploadId": STRING,
            "urls": {
                "type": "array",
                "items": {"type": "string", "format": "uri"},
                "description": "One per part, absolute, each carrying its own credential; they expire "
                "after --upload-ttl-s (15 minutes) from the upload's last batch.",
            },
        },
    },
    "V2ImportUploadedPartsRequest": {
        "type": "object",
        "required": ["uploadId", "partETags", "name"],
        "properties": {
            **_PARTS,
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "autoRename": BOOLEAN,
            "folderPath": {"type": "string", "description": "As for creating an entry."},
        },
    },
    "V2UpdateUploadedPartsRequest": {
        "type": "object",
        "required": ["uploadId", "partETags"],
        "properties": _PARTS,
    },
}

_PART_NUMBER = param("partNumber", "path", {"type": "integer", "minimum": 1, "maximum": 1000}, True)
_UPLOAD_ID = param("uploadId", "path", STRING, True)
_KEY = param(
    "key",
    "query",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
    True,
    "The credential the URL came with.",
)

PATHS: dict[str, Any] = {
    V2 + "/Entries/CreateMultipartUploadUrls": {
        "post": operation(
            "URLs to PUT the parts of a large file to (a new upload, or more of one)",
            [REPO_ID],
            {
                "200": json_response(ref("V2CreateMultipartUploadUrlsResponse"), "The upload and its URLs."),
                **_errors("400", "401", "404"),
            },
            body(ref("V2CreateMultipartUploadUrlsRequest")),
        )
    },
    V2 + "/Uploads/{uploadId}/{partNumber}": {
        "put": operation(
            "Upload one part: its raw bytes (at most 5 GiB; all but the last at least 5 MiB)",
            [REPO_ID, _UPLOAD_ID, _PART_NUMBER, _KEY],
            {
                "200": {
                    "description": "Stored; the ETag is the part's MD5 in quotes, for partETags.",
                    "headers": {"ETag": {"required": True, "schema": STRING}},
                },
                "400": problem(
                    "A part number that is no number, or a body that could not be read to its end."
                ),
                "401": problem(
                    "No such URL: no credential, a wrong one, an unknown part or upload, or the upload's "
                    "URLs have expired (or it is being assembled)."
                ),
                "413": problem("The part is over 5 GiB."),
            },
            {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            security=[],  # (the URL's `key` is its credential)
        )
    },
    V2 + "/Entries/{entryId}/Folder/ImportUploadedParts": {
        "post": operation(
            "Assemble an upload's parts into a new document in this folder (a task)",
            [REPO_ID, ENTRY_ID, AUTO_CREATE, PACE],
            {"202": STARTED, **_errors("400", "401", "404", "429", "503")},
            body(ref("V2ImportUploadedPartsRequest")),
        )
    },
    V2 + "/Entries/{entryId}/Document/UpdateUploadedParts": {
        "post": operation(
            "Replace a document's bytes by an upload's parts (a task; taskType ImportUploadedParts)",
            [REPO_ID, ENTRY_ID, PACE],
            {"202": STARTED, **_errors("400", "401", "404", "429", "503")},
            body(ref("V2UpdateUploadedPartsRequest")),
        )
    },
}
