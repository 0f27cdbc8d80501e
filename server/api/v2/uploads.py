"""v2 uploads in parts: `CreateMultipartUploadUrls`, the part URLs themselves (raw bytes PUT, S3
style, answered with the part's MD5 as its `ETag`), and the tasks that assemble the parts into a
new document (`ImportUploadedParts`) or a document's new bytes (`UpdateUploadedParts`). Thin
handlers over `server/uploads.py` and `server/kinds/uploads.py`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ...errors import BadRequest, Unauthorized
from ...keys import metadata_key, operations_key, repository_key, settings_key
from ...kinds.uploads import FromParts, ImportPartsWork, UpdatePartsWork
from ...metadata.model import LinkToSet, NewMetadata
from ...repository import check_name
from ...sessions import Session
from ...uploads import MAX_PART_BYTES, UPLOAD_KEY, UPLOAD_URL_REFUSED, Receiving, Uploads
from ..common import authenticated_by, body_limit, field, int_param, json, pace_s, read_json, session_of
from . import render
from .entries import auto_rename_of, destination, entry_id_param
from .metadata import properties_of, updates_of
from .render import BASE
from .tasks import start_task

log = logging.getLogger("server.uploads")
routes = web.RouteTableDef()
uploads_key = web.AppKey("uploads", Uploads)

# a part reaches the disk in batches of about this much: one thread hop each (hashed and
# written there), the next batch read from the socket meanwhile
BATCH_BYTES = 4 * 1024 * 1024
# expired uploads are looked for this often (at most; more often with a short --upload-ttl-s)
SWEEP_S = 60.0


def setup(app: web.Application) -> None:
    """The routes (the uploads are built with the other services, and live by `uploads_ctx`:
    see server/app.py)."""
    app.add_routes(routes)


async def uploads_ctx(app: web.Application) -> AsyncIterator[None]:
    """The uploads' life: opened (and tidied) at start, swept while running."""
    uploads = app[uploads_key]
    await asyncio.to_thread(uploads.open)
    every_s = min(SWEEP_S, max(app[settings_key].upload_ttl_s / 4, 0.5))
    sweeper = asyncio.create_task(_sweep(uploads, every_s), name="upload-sweeper")
    yield
    sweeper.cancel()
    await asyncio.gather(sweeper, return_exceptions=True)
    await asyncio.to_thread(uploads.close)


async def _sweep(uploads: Uploads, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(uploads.sweep)
        except Exception:  # (the disk's trouble: the next round tries again)
            log.exception("could not remove expired uploads")


# ---- URLs and parts ----------------------------------------------------------------------------


@routes.post(BASE + "/Entries/CreateMultipartUploadUrls")
async def create_upload_urls(request: web.Request) -> web.Response:
    body = await read_json(request)
    upload_id = field(body, "uploadId", str) or None
    first = field(body, "startingPartNumber", int)
    count = field(body, "numberOfParts", int, required=True)
    file_name = field(body, "fileName", str, required=True)
    mime_type = field(body, "mimeType", str, required=True)
    assert count is not None and file_name is not None and mime_type is not None
    if not file_name.strip():
        raise BadRequest("The field 'fileName' must not be empty.")
    uploads = request.app[uploads_key]
    user = session_of(request).user
    issued = await asyncio.to_thread(
        uploads.issue, upload_id, 1 if first is None else first, count, file_name, mime_type, user
    )
    urls = [
        render.url(request, f"/Uploads/{issued.upload_id}/{number}") + f"?key={issued.key}"
        for number in issued.numbers
    ]
    return json({"uploadId": issued.upload_id, "urls": urls})


def _url_credential(request: web.Request) -> Session:
    """An upload URL carries its own credential (`key`), as a presigned S3 URL does: no bearer. Its
    shape is checked here, before the body is read; whether it is right, by `Uploads.receive`."""
    key = request.query.get("key", "")
    if not UPLOAD_KEY.fullmatch(key):
        raise Unauthorized(
            "An upload URL carries its credential in 'key': use the URL CreateMultipartUploadUrls gave.",
            title=UPLOAD_URL_REFUSED,
        )
    return Session("upload-url", "(upload URL)", 0)


@routes.put(BASE + "/Uploads/{uploadId}/{partNumber}")
@authenticated_by(_url_credential)
@body_limit(lambda _: MAX_PART_BYTES)
async def put_part(request: web.Request) -> web.Response:
    number = int_param(request.match_info["partNumber"], "partNumber", minimum=1)
    uploads = request.app[uploads_key]
    part = await asyncio.to_thread(
        uploads.receive, request.match_info["uploadId"], number, request.query.get("key", "")
    )
    try:
        await _receive(request, part)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(part.discard))
        raise
    md5 = await asyncio.to_thread(uploads.received, part)
    return web.Response(status=200, headers={"ETag": f'"{md5}"'})


async def _receive(request: web.Request, part: Receiving) -> None:
    """Stream the body to the part's file: each batch hashed and written in a thread while the
    next is read. (A body cut off, or a full disk, is the problems middleware's to answer.)"""
    writing: asyncio.Future[None] | None = None
    try:
        while True:
            batch, size = [], 0
            while size < BATCH_BYTES and (chunk := await request.content.readany()):
                batch.append(chunk)
                size += len(chunk)
            if writing is not None:
                await writing
                writing = None
            if not batch:
                return
            writing = asyncio.ensure_future(asyncio.to_thread(part.write, batch))
    finally:
        if writing is not None:  # (never leave a write running on a file about to be discarded)
            with contextlib.suppress(BaseException):
                await asyncio.shield(writing)


# ---- assembling --------------------------------------------------------------------------------


def _from_parts(request: web.Request, body: dict[str, Any]) -> FromParts:
    upload_id = field(body, "uploadId", str, required=True)
    etags = field(body, "partETags", list, required=True)
    assert upload_id is not None and etags is not None
    if not all(isinstance(etag, str) for etag in etags):
        raise BadRequest("The field 'partETags' must be an array of strings.")
    return FromParts(
        request.app[uploads_key],
        request.app[metadata_key],
        upload_id,
        etags,
        _new_metadata(body),
        session_of(request).user,
    )


def _new_metadata(body: dict[str, Any]) -> NewMetadata:
    """`metadata: {templateName, fields: [{name, values}], tags: [names], links: [{linkDefinitionId,
    otherEntryId, isSource, customProperties}]}`, shapes checked (values are checked by the task)."""
    given = field(body, "metadata", dict)
    if not given:
        return NewMetadata()
    tags = field(given, "tags", list) or []
    if not all(isinstance(tag, str) for tag in tags):
        raise BadRequest("The field 'tags' must be an array of strings.")
    links = []
    for item in field(given, "links", list) or []:
        if not isinstance(item, dict):
            raise BadRequest("Each of 'links' must be an object {linkDefinitionId, otherEntryId, isSource}.")
        definition_id = field(item, "linkDefinitionId", int, required=True)
        other_id = field(item, "otherEntryId", int, required=True)
        assert definition_id is not None and other_id is not None
        is_source = field(item, "isSource", bool) is not False
        links.append(LinkToSet(definition_id, other_id, is_source, properties_of(item, "customProperties")))
    return NewMetadata(field(given, "templateName", str) or None, updates_of(given), tags, links)


@routes.post(BASE + "/Entries/{entryId}/Folder/ImportUploadedParts")
async def import_uploaded_parts(request: web.Request) -> web.Response:
    pace = pace_s(request)
    parent_id = entry_id_param(request)
    body = await read_json(request)
    source = _from_parts(request, body)
    name = check_name(field(body, "name", str, required=True) or "")
    auto_rename = auto_rename_of(request, body)
    repository = request.app[repository_key]
    folder = await asyncio.to_thread(repository.entry, await destination(request, parent_id, body))
    if not folder.is_dir:
        raise BadRequest(f"Entry {folder.id} is not a folder.")
    operations = request.app[operations_key]
    work = ImportPartsWork(source, operations.progress(pace), folder, name, auto_rename)
    return await start_task(request, work)


@routes.post(BASE + "/Entries/{entryId}/Document/UpdateUploadedParts")
async def update_uploaded_parts(request: web.Request) -> web.Response:
    pace = pace_s(request)
    entry_id = entry_id_param(request)
    source = _from_parts(request, await read_json(request))
    document = await asyncio.to_thread(request.app[repository_key].entry, entry_id)
    if document.is_dir or document.is_shortcut:
        raise BadRequest(
            f"Entry {entry_id} is a {document.entry_type.lower()}; only a document's bytes are updated."
        )
    operations = request.app[operations_key]
    work = UpdatePartsWork(source, operations.progress(pace), document)
    return await start_task(request, work)
