"""What both dialects need to move documents over HTTP: streaming an upload to disk, and sending
a document (Range, HEAD, sendfile) from a descriptor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import orjson
from aiohttp import ClientPayloadError, hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import parse_mimetype
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from ..errors import BadRequest, PayloadTooLarge, RangeNotSatisfiable
from ..keys import repository_key, settings_key
from ..repository import Entry
from .common import body_limit, json_object, problem_body
from .multipart import MultipartBody, Part

# uploads reach the disk in writes of this size (one under way while the next gathers): few
# thread hops, bounded memory
WRITE_CHUNK = 1024 * 1024
# and of at most this many pieces (writev takes at most IOV_MAX, 1024 on Linux)
WRITE_PIECES = 512


@dataclass(frozen=True)
class Upload:
    tmp: str  # the temporary file (repository.new_temp) holding the document
    size: int
    upload_name: str | None  # the file name its part carried


# reads a part other than the document's; False: not one of its own (it is skipped)
PartReader = Callable[[Part], Awaitable[bool]]
# an import's `request` part is small JSON metadata
MAX_JSON_PART = 1024 * 1024
# what aiohttp warns of when a part's Content-Disposition does not parse (and drops what did not):
# errors where warnings are (python -W error), and then the body's fault like any malformed one
_BAD_DISPOSITION = (BadContentDispositionHeader, BadContentDispositionParam)
# a part's `filename*=` parameter, up to the next one; its charset, language and encoded name
_EXTENDED_FILENAME = re.compile(r";\s*filename\*\s*=\s*([^;]*?)\s*(?:;|$)", re.IGNORECASE)
_RFC8187 = re.compile(r"(?P<charset>[^']+)'[^']*'(?P<encoded>.*)")
# room for a multipart body's boundaries and part headers around its document and metadata
MULTIPART_FRAMING_BYTES = 64 * 1024

# a multipart body that carries one document (--max-document-bytes) and its metadata part: its
# Content-Length may declare that much (more is a 413 before any of it is read)
carries_document = body_limit(
    lambda settings: settings.max_document_bytes + MAX_JSON_PART + MULTIPART_FRAMING_BYTES
)


def json_part(name: str, into: dict[str, Any]) -> PartReader:
    """A PartReader that takes the part `name` as a JSON object (text, at most 1 MiB) into `into`."""

    async def read(part: Part) -> bool:
        if part.name != name:
            return False
        raw = bytearray()
        while chunk := await part.read_chunk():
            raw += chunk
            if len(raw) > MAX_JSON_PART:
                raise PayloadTooLarge(f"The '{name}' part is larger than 1 MiB.")
        if raw.strip():
            into.update(json_object(raw, f"'{name}' part"))
        return True

    return read


@contextlib.asynccontextmanager
async def received(
    request: web.Request, part_name: str, *, unique: bool, other_part: PartReader | None = None
) -> AsyncIterator[Upload]:
    """Stream the multipart body's part `part_name` to a temporary file (never whole in memory),
    and discard that file afterwards (once published, it is gone already). A second part of that
    name is refused if `unique`, else skipped."""
    if not request.content_type.startswith("multipart/"):
        raise BadRequest(f"The request must be multipart/form-data with a part '{part_name}'.")
    repository = request.app[repository_key]
    tmp, fd = await asyncio.to_thread(repository.new_temp)
    try:
        try:
            limit = request.app[settings_key].max_document_bytes
            size, upload_name = await _receive(request, fd, limit, part_name, unique, other_part)
        finally:
            await asyncio.to_thread(os.close, fd)
        yield Upload(tmp, size, upload_name)
    finally:
        await asyncio.to_thread(repository.discard_temp, tmp)


async def _receive(
    request: web.Request, fd: int, limit: int, part_name: str, unique: bool, other_part: PartReader | None
) -> tuple[int, str | None]:
    size, upload_name = -1, None
    try:
        reader = MultipartBody(request.content, request.headers.get(hdrs.CONTENT_TYPE, ""))
        while (part := await reader.next()) is not None:
            if parse_mimetype(part.headers.get(hdrs.CONTENT_TYPE, "")).type == "multipart":
                raise BadRequest("Nested multipart bodies are not supported.")
            if part.name == part_name and size < 0:
                upload_name = file_name(part)
                size = await save_part(part, fd, limit)
            elif part.name == part_name and unique:
                raise BadRequest(f"The part '{part_name}' must appear only once.")
            elif other_part is None or not await other_part(part):
                await part.release()
    except (ValueError, ClientPayloadError, ConnectionError, *_BAD_DISPOSITION) as exc:
        # a malformed multipart body, or a client that went away before the body was complete
        raise BadRequest(f"The multipart body could not be read: {exc or type(exc).__name__}.") from None
    if size < 0:
        raise BadRequest(f"The multipart part '{part_name}' is required.")
    return size, upload_name


def file_name(part: Part) -> str | None:
    """The file name a part carries. A `filename*` (RFC 8187: `UTF-8''<percent-encoded bytes>`)
    that does not decode is a 400: aiohttp would drop it with a warning, for the plain `filename`
    or none, and save the document under a name other than the one sent."""
    extended = _EXTENDED_FILENAME.search(part.headers.get(hdrs.CONTENT_DISPOSITION, ""))
    if extended is not None:
        value = _RFC8187.fullmatch(extended.group(1))
        try:
            if value is None:
                raise ValueError
            unquote(value.group("encoded"), value.group("charset"), "strict")
        except (ValueError, LookupError):  # (UnicodeDecodeError is a ValueError)
            raise BadRequest(
                "The part's filename* must be <charset>''<the name's bytes in it, percent-encoded>, "
                f"as in UTF-8''na%C3%AFve.pdf (RFC 8187); got {extended.group(1)[:64]!r}."
            ) from None
    return part.filename


async def send_document(
    request: web.Request, entry_id: int, name_of: Callable[[Entry], str]
) -> web.StreamResponse:
    """A document's bytes (one Range honoured), saved under `name_of(entry)`."""
    entry, fd = await asyncio.to_thread(request.app[repository_key].open_document, entry_id)
    return send_file(request, fd, entry.size, name_of(entry), entry.mime_type)


def send_file(request: web.Request, fd: int, size: int, name: str, mime_type: str) -> web.StreamResponse:
    """The file open at `fd` (which this closes), of `size` bytes, saved under `name` (one Range
    honoured): a document, or what an operation left to download (an export)."""
    try:
        check_range(request, size)
    except BaseException:
        os.close(fd)
        raise
    headers = {"Content-Disposition": content_disposition(name), "Content-Type": mime_type}
    return DescriptorFileResponse(fd, headers=headers)


async def save_part(part: Part, fd: int, limit: int) -> int:
    """Write one part to `fd`: its bytes as they arrived (never joined) gather up to WRITE_CHUNK,
    then one writev per thread hop, while the next ones arrive (two at most in memory)."""
    size = 0
    pending: list[memoryview] = []
    pending_size = 0
    writing: asyncio.Future[None] | None = None
    try:
        async for chunk in part.chunks():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The document is larger than the limit of {limit} bytes.")
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= WRITE_CHUNK or len(pending) >= WRITE_PIECES:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(_write_all, fd, pending))
                pending, pending_size = [], 0
        if writing is not None:
            await writing
        if pending:
            await asyncio.to_thread(_write_all, fd, pending)
    finally:
        if writing is not None and not writing.done():
            # (stopped early: the write under way ends before the caller closes `fd`)
            await _settled(writing)
    return size


async def _settled(future: asyncio.Future[None]) -> None:
    """Wait for a write in a thread to end, even through cancellation; its error is dropped (what
    stopped the upload is what counts)."""
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            continue
        except Exception:
            break
    if not future.cancelled():
        future.exception()


def _write_all(fd: int, chunks: list[memoryview]) -> None:
    views = list(chunks)
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def content_disposition(name: str) -> str:
    fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# "bytes=-0": the last zero bytes, which no document has (RFC 9110 14.1.1); aiohttp reads it as "bytes=0-"
_EMPTY_SUFFIX = re.compile(r"bytes=\s*-0+", re.IGNORECASE)


def check_range(request: web.Request, size: int) -> None:
    """Refuse, as a problem, a Range that FileResponse would answer with a bare 416: one that is
    malformed, asks for several ranges, or starts past the end."""
    if "Range" not in request.headers:
        return
    headers = {"Content-Range": f"bytes */{size}"}
    try:
        wanted = request.http_range
    except ValueError:
        raise RangeNotSatisfiable(
            f"The Range {request.headers['Range']!r} is not one byte range (bytes=first-last, "
            "bytes=first- or bytes=-suffix).",
            headers=headers,
        ) from None
    if _EMPTY_SUFFIX.fullmatch(request.headers["Range"].strip()):
        raise RangeNotSatisfiable("A suffix range of zero bytes selects nothing.", headers=headers)
    # a suffix range (negative start) fits any document that has a byte at all
    if size == 0 or (wanted.start or 0) >= size:
        raise RangeNotSatisfiable(
            f"The Range {request.headers['Range']!r} selects no byte of the {size}-byte document.",
            headers=headers,
        )


class DescriptorFileResponse(web.FileResponse):
    """FileResponse (Range, HEAD, sendfile) over a descriptor the repository opened, never over a
    path that could have been swapped for a symlink since; the descriptor closes once sent."""

    def __init__(self, fd: int, headers: dict[str, str]) -> None:
        super().__init__(f"/proc/self/fd/{fd}", headers=headers)
        # closes it exactly once: after sending, or when a response never sent is collected
        self._close_fd = weakref.finalize(self, os.close, fd)

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            return await super().prepare(request)
        finally:
            self._close_fd()

    async def _precondition_failed(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        # FileResponse answers a failed If-Match / If-Unmodified-Since itself, after the error
        # middleware; give it the same problem+json as every other error
        title = "Precondition failed."
        detail = "The document changed: its ETag or modification time no longer matches."
        body = orjson.dumps(problem_body(request, 412, title, detail))  # type: ignore[arg-type]
        self.set_status(412)
        self.content_type = "application/problem+json"
        self.content_length = len(body)
        self.headers["X-APIServer-Error"] = quote(title)
        writer = await web.StreamResponse.prepare(self, request)
        await self.write(body)
        return writer
