"""A multipart/form-data body read as it arrives, its parts' bytes never joined or copied.

aiohttp's own reader joins each chunk it reads to the one before (to find a boundary that spans
them) and slices the result: every byte of a large upload is copied in memory three or four times
more than receiving it takes. Here a part's body is handed out as views of the chunks as aiohttp
received them; only the few bytes a boundary could span are kept back from one chunk to the next.
Headers are parsed as aiohttp parses them, with its limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import StreamReader, hdrs
from aiohttp.helpers import parse_mimetype
from aiohttp.http_parser import HeadersParser
from aiohttp.multipart import content_disposition_filename, parse_content_disposition
from multidict import CIMultiDictProxy

# what aiohttp's MultipartReader allows a part's headers
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128
# what may come before the first boundary and after the last (RFC 2046's preamble and epilogue)
MAX_PREAMBLE = 64 * 1024


class Part:
    """One part: its headers, and its body to be read once (`chunks`, `read_chunk`, `release`)."""

    def __init__(self, body: MultipartBody, headers: CIMultiDictProxy[str]) -> None:
        self._body = body
        self.headers = headers
        _, self._params = parse_content_disposition(headers.get(hdrs.CONTENT_DISPOSITION))
        self._pending = b""

    @property
    def name(self) -> str | None:
        return content_disposition_filename(self._params, "name")

    @property
    def filename(self) -> str | None:
        return content_disposition_filename(self._params, "filename")

    def chunks(self) -> AsyncIterator[memoryview]:
        """The body, as views of the chunks it arrived in."""
        return self._body.body()

    async def read_chunk(self, size: int = 65536) -> bytes:
        """The next bytes of the body (b"" once it ends), for small parts."""
        if not self._pending:
            async for view in self._body.body():
                self._pending = bytes(view)
                if self._pending:
                    break
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk

    async def release(self) -> None:
        async for _ in self._body.body():
            pass


class MultipartBody:
    """The parts of a multipart body, one after the other (`next`)."""

    def __init__(self, content: StreamReader, content_type: str) -> None:
        boundary = parse_mimetype(content_type).parameters.get("boundary", "")
        if not boundary or len(boundary) > 200:
            raise ValueError(f"Invalid boundary {boundary!r}")
        self._content = content
        # what ends a part's body: CRLF, two dashes, the boundary
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = b""  # received, not yet taken, from `_position` on
        self._position = 0
        self._in_body = False  # a part's body is being read
        self._started = False
        self._ended = False

    async def next(self) -> Part | None:
        """The next part, once the body of the one before has been read to its end; None after
        the last one."""
        if self._in_body:
            async for _ in self.body():  # (what its reader left)
                pass
        if self._ended:
            return None
        if not self._started:
            await self._skip_preamble()
            self._started = True
        # after a delimiter: "--" ends the body, else optional blanks then CRLF
        tail = await self._line(MAX_FIELD_SIZE)
        if tail.startswith(b"--"):
            self._ended = True
            await self._drain()
            return None
        if tail.strip(b" \t"):
            raise ValueError(f"Invalid boundary line: {tail[:64]!r}")
        lines: list[bytes] = []
        while line := await self._line(MAX_FIELD_SIZE):
            lines.append(line)
            if len(lines) > MAX_HEADERS:
                raise ValueError("Too many headers in a multipart part")
        lines.append(b"")
        headers, _ = HeadersParser(max_field_size=MAX_FIELD_SIZE).parse_headers(lines)
        self._in_body = True
        return Part(self, headers)

    async def body(self) -> AsyncIterator[memoryview]:
        """The current part's body up to the next delimiter, as views of the buffer; the few
        bytes a delimiter could span are kept back until the next chunk tells. (What a view
        hands out is taken before it is handed out: a reader may stop at any view.)"""
        delimiter = self._delimiter
        keep = len(delimiter) - 1
        while self._in_body:
            buffer, position = self._buffer, self._position
            found = buffer.find(delimiter, position)
            if found >= 0:
                self._position = found + len(delimiter)
                self._in_body = False
                if found > position:
                    yield memoryview(buffer)[position:found]
                return
            cut = max(position, len(buffer) - keep)
            self._position = cut
            if cut > position:
                yield memoryview(buffer)[position:cut]
            held = buffer[cut:]  # (at most keep bytes)
            chunk = await self._chunk()
            if len(chunk) < keep:  # (too short to tell: looked at again with the next)
                self._buffer, self._position = held + chunk, 0
                continue
            # a delimiter that starts in what was held back
            found = (held + chunk[:keep]).find(delimiter)
            if found >= 0:
                self._buffer, self._position = chunk, found + len(delimiter) - len(held)
                self._in_body = False
                if found:
                    yield memoryview(held)[:found]
                return
            self._buffer, self._position = chunk, 0
            if held:
                yield memoryview(held)

    async def _chunk(self) -> bytes:
        """The next chunk of the body as received; ValueError if the body ends first."""
        while True:
            chunk, _ = await self._content.readchunk()
            if chunk:
                return chunk
            if self._content.at_eof():
                raise ValueError("The multipart body ended before its closing boundary")

    async def _line(self, limit: int) -> bytes:
        """The next line, without its CRLF (at most `limit` bytes)."""
        while True:
            end = self._buffer.find(b"\r\n", self._position)
            if end >= 0:
                line = self._buffer[self._position : end]
                self._position = end + 2
                break
            if len(self._buffer) - self._position > limit:
                raise ValueError("A multipart header line is too long")
            self._buffer = self._buffer[self._position :] + await self._chunk()
            self._position = 0
        if len(line) > limit:
            raise ValueError("A multipart header line is too long")
        return line

    async def _skip_preamble(self) -> None:
        """Up to the first boundary: at the very start, or after a CRLF."""
        opening = self._delimiter[2:]
        while True:
            if self._buffer.startswith(opening, self._position):
                self._position += len(opening)
                return
            found = self._buffer.find(self._delimiter, self._position)
            if found >= 0:
                self._position = found + len(self._delimiter)
                return
            if len(self._buffer) > MAX_PREAMBLE:
                raise ValueError("Could not find the multipart body's first boundary")
            self._buffer = self._buffer[self._position :] + await self._chunk()
            self._position = 0

    async def _drain(self) -> None:
        """Read the epilogue (what follows the last boundary), at most MAX_PREAMBLE bytes."""
        seen = len(self._buffer) - self._position
        self._buffer, self._position = b"", 0
        while seen <= MAX_PREAMBLE:
            chunk, _ = await self._content.readchunk()
            if not chunk and self._content.at_eof():
                return
            seen += len(chunk)
        raise ValueError("The multipart body goes on after its closing boundary")
