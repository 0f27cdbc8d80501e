"""v2 exports (api/v2/exports.py): `ExportAsync` starts an export task; its `result.uri` downloads
what it exported until the task expires (served below both dialects' bases, as every result URI)."""

from __future__ import annotations

from typing import Any

from .laserfiche_v2 import STARTED, V2, _errors
from .parts import DOWNLOAD, ENTRY_ID, PACE, REPO_ID, body, operation, param, problem

STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
EXPORT_ID = param(
    "exportId", "path", {"type": "string"}, True, "What the task's result.uri ends with (24 hex digits)."
)
PAGE_RANGE = param(
    "pageRange",
    "query",
    STRING,
    description="Pages, like `1,3,4` or `1-3,5-7,9`; ignored for Edoc (no document here has pages).",
)

SCHEMAS: dict[str, Any] = {
    "StartExportEntryRequest": {
        "type": "object",
        "required": ["part"],
        "properties": {
            "part": {
                "type": "string",
                "enum": ["Edoc", "Image", "Text"],
                "description": "Edoc: the electronic document. Text: the text of a text-like document "
                "(txt, md, csv, json, xml, html), else 400. Image: 400 (this sandbox has no page images).",
            },
            "auditReasonId": {
                "type": "integer",
                "minimum": 0,
                "description": "One of the catalog's ExportDocument audit reasons (else 400).",
            },
            "auditReasonComment": STRING,
            "imageOptions": {
                "type": "object",
                "description": "Checked, and of no use to an Edoc or Text export.",
                "properties": {
                    "format": {
                        "type": "string",
                        "enum": ["MultiPageTIFF", "SinglePageTIFF", "PNG", "PDF", "JPEG"],
                    },
                    "jPEGCompressionLevel": {"type": "integer", "minimum": 0, "maximum": 100},
                    "includeAnnotations": BOOLEAN,
                    "convertPdfAnnotations": BOOLEAN,
                    "pagePrefix": {"type": "string", "maxLength": 10},
                },
            },
            "textOptions": {
                "type": "object",
                "description": "Checked, and of no use here (no redactions).",
                "properties": {"includeRedactions": BOOLEAN, "redactionCharacter": STRING},
            },
        },
    },
}


def _download() -> dict[str, Any]:
    return {
        method: operation(
            "Download what an export task exported (GET) or its headers (HEAD), for the sessions of "
            "the user who started it, until the task expires; honours one Range",
            [REPO_ID, EXPORT_ID, param("Range", "header", STRING)],
            {
                **DOWNLOAD,
                **_errors("400", "401"),
                "404": problem("No such export of this user's, or its task expired."),
            },
        )
        for method in ("get", "head")
    }


PATHS: dict[str, Any] = {
    V2 + "/Entries/{entryId}/ExportAsync": {
        "post": operation(
            "Export a document (a task); pace: milliseconds added per 8 MiB copied",
            [REPO_ID, ENTRY_ID, PAGE_RANGE, PACE],
            {
                "202": STARTED,
                "400": problem(
                    "Malformed request, an audit reason that is no ExportDocument reason, a folder, "
                    "part Image, or part Text of a document that is not text-like."
                ),
                **_errors("401", "404", "429", "503"),
            },
            body({"$ref": "#/components/schemas/StartExportEntryRequest"}),
        )
    },
    V2 + "/Exports/{exportId}": _download(),
    "/v1/Repositories/{repoId}/Exports/{exportId}": _download(),
}
