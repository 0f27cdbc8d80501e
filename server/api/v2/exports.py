"""v2 exports: `POST Entries/{entryId}/ExportAsync` starts an export task (`server/kinds/export.py`);
the finished task's `result.uri`, `GET Exports/{exportId}`, downloads what it exported (Range,
HEAD) until the task expires."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from ...errors import BadRequest
from ...keys import metadata_key, operations_key, repository_key
from ...kinds.export import ExportWork, Part, find, open_export
from ..common import field, pace_s, read_json, session_of
from ..transfer import send_file
from .entries import entry_id_param
from .render import BASE
from .tasks import start_task

routes = web.RouteTableDef()

# `1,3,4` or `1-3,5-7,9` (v2's pageRange)
_PAGE_RANGE = re.compile(r"[1-9][0-9]*(-[1-9][0-9]*)?(,[1-9][0-9]*(-[1-9][0-9]*)?)*")
# StartExportEntryRequest.imageOptions.format
IMAGE_FORMATS = ("MultiPageTIFF", "SinglePageTIFF", "PNG", "PDF", "JPEG")
# at most this many characters of imageOptions.pagePrefix
PAGE_PREFIX_MAX = 10


@routes.post(BASE + "/Entries/{entryId}/ExportAsync")
async def start_export(request: web.Request) -> web.Response:
    pace = pace_s(request)
    entry_id = entry_id_param(request)
    body = await read_json(request)
    part = _part(body)
    _options(body)
    page_range = request.query.get("pageRange")
    if part is not Part.EDOC and page_range and not _PAGE_RANGE.fullmatch(page_range):
        raise BadRequest(f"The parameter 'pageRange' must be like 1,3,4 or 1-3,5-7,9, got {page_range!r}.")
    request.app[metadata_key].check_audit_reason(field(body, "auditReasonId", int), "ExportDocument", False)
    field(body, "auditReasonComment", str)
    operations = request.app[operations_key]
    work = await ExportWork.prepare(operations, entry_id, part, operations.progress(pace))
    return await start_task(request, work)


# (below both dialects' bases, as every result URI: v1's Tasks/{token} names it too)
@routes.get(BASE + "/Exports/{exportId}")
@routes.get("/v1/Repositories/{repoId}/Exports/{exportId}")
async def download(request: web.Request) -> web.StreamResponse:
    """What an export left (HEAD too: aiohttp answers it from the GET), for its user's sessions."""
    op = find(request.app[operations_key], session_of(request).user, request.match_info["exportId"])
    exported = await asyncio.to_thread(open_export, request.app[repository_key], op)
    return send_file(request, exported.fd, exported.size, exported.file_name, exported.mime_type)


def _part(body: dict[str, Any]) -> Part:
    raw = field(body, "part", str, required=True)
    assert raw is not None
    try:
        return Part(raw)
    except ValueError:
        shown = ", ".join(p.value for p in Part)
        raise BadRequest(f"The field 'part' must be one of {shown}, got {raw!r}.") from None


def _options(body: dict[str, Any]) -> None:
    """imageOptions and textOptions, checked (an Edoc export has no use for them)."""
    image = _object(body, "imageOptions")
    fmt = field(image, "format", str)
    if fmt is not None and fmt not in IMAGE_FORMATS:
        raise BadRequest(f"The field 'imageOptions.format' must be one of {', '.join(IMAGE_FORMATS)}.")
    level = field(image, "jPEGCompressionLevel", int)
    if level is not None and level > 100:
        raise BadRequest("The field 'imageOptions.jPEGCompressionLevel' must be from 0 to 100.")
    prefix = field(image, "pagePrefix", str)
    if prefix is not None and len(prefix) > PAGE_PREFIX_MAX:
        raise BadRequest(f"The field 'imageOptions.pagePrefix' must be at most {PAGE_PREFIX_MAX} characters.")
    for flag in ("includeAnnotations", "convertPdfAnnotations"):
        field(image, flag, bool)
    text = _object(body, "textOptions")
    field(text, "includeRedactions", bool)
    field(text, "redactionCharacter", str)


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    return field(body, name, dict) or {}
