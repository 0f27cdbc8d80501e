"""What both dialects need to move documents over HTTP: streaming an upload to disk, and sending
a document (Range, HEAD, sendfile) from a descriptor."""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from datetime import UTC, datetime
from urllib.parse import quote

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.abc import AbstractStreamWriter

from ..errors import PayloadTooLarge, RangeNotSatisfiable
from .common import problem_body

# uploads reach the disk in writes of this size: few thread hops, bounded memory
WRITE_CHUNK = 1024 * 1024


def iso(ns: int) -> str:
    stamp = datetime.fromtimestamp(ns / 1e9, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def save_part(part: BodyPartReader, fd: int, limit: int) -> int:
    """Write one part to `fd`: chunks gather up to WRITE_CHUNK, then one writev per thread hop."""
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    while chunk := await part.read_chunk(WRITE_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The document is larger than the limit of {limit} bytes.")
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= WRITE_CHUNK:
            await asyncio.to_thread(_write_all, fd, pending)
            pending, pending_size = [], 0
    if pending:
        await asyncio.to_thread(_write_all, fd, pending)
    return size


def _write_all(fd: int, chunks: list[bytes]) -> None:
    views = [memoryview(c) for c in chunks]
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
