"""The multipart reader that streams an import's document without joining its chunks
(server/api/multipart.py): whatever the chunks the body arrives in, the parts come out whole, with
the bytes they were sent with, even where a chunk ends inside a boundary or just before one."""

from __future__ import annotations

import random
from unittest import mock

import pytest
from aiohttp import StreamReader

from server.api.multipart import MultipartBody

BOUNDARIES = [b"b", b"----WebKitFormBoundary7MA4YWxkTrZu0gW", b"x" * 70]


def body_of(parts: list[tuple[str, bytes]], boundary: bytes, preamble: bytes = b"") -> bytes:
    out = preamble
    for name, data in parts:
        disposition = f'Content-Disposition: form-data; name="{name}"'.encode()
        out += b"--" + boundary + b"\r\n" + disposition + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


async def read_all(
    body: bytes, boundary: bytes, sizes: list[int], how: str
) -> list[tuple[str | None, bytes]]:
    """The parts as the reader hands them out, the body fed in chunks of `sizes`."""
    content = StreamReader(mock.Mock(), 2**16, loop=mock.Mock())
    position = 0
    for size in sizes:
        content.feed_data(body[position : position + size])
        position += size
        if position >= len(body):
            break
    content.feed_data(body[position:])
    content.feed_eof()
    reader = MultipartBody(content, f"multipart/form-data; boundary={boundary.decode()}")
    parts = []
    while (part := await reader.next()) is not None:
        if how == "views":
            data = b"".join([bytes(view) async for view in part.chunks()])
        else:
            data = b""
            while chunk := await part.read_chunk(7):
                data += chunk
        parts.append((part.name, data))
    return parts


def tricky(rng: random.Random, boundary: bytes, size: int) -> bytes:
    """Bytes full of near-boundaries (CR, LF, dashes, the boundary's start), never the delimiter."""
    alphabet = [b"\r", b"\n", b"-", b"--", b"\r\n--", boundary[:3], bytes([rng.randrange(256)])]
    data = b"".join(rng.choice(alphabet) for _ in range(size))[:size]
    return data.replace(b"\r\n--" + boundary, b"\r\n-+" + boundary)


@pytest.mark.parametrize("seed", range(40))
async def test_parts_come_out_whole_whatever_the_chunks(seed):
    rng = random.Random(seed)
    boundary = rng.choice(BOUNDARIES)
    sizes_of_parts = [rng.choice([0, 1, 2, 45, 300, 5000]) for _ in range(rng.randint(1, 4))]
    parts = [(f"p{n}", tricky(rng, boundary, size)) for n, size in enumerate(sizes_of_parts)]
    body = body_of(parts, boundary, rng.choice([b"", b"\r\n", b"a preamble\r\n"]))
    sizes = [rng.choice([1, 2, 3, 5, 44, 45, 46, 1000]) for _ in range(len(body))]
    got = await read_all(body, boundary, sizes, rng.choice(["views", "chunks"]))
    assert got == parts


async def test_a_body_cut_off_before_its_closing_boundary_is_an_error():
    body = body_of([("file", b"data")], b"b")[:-8]
    with pytest.raises(ValueError, match="ended before"):
        await read_all(body, b"b", [3] * 10, "views")


async def test_a_part_left_half_read_is_skipped_to_the_next():
    body = body_of([("first", b"0123456789" * 100), ("second", b"kept")], b"bnd")
    content = StreamReader(mock.Mock(), 2**16, loop=mock.Mock())
    content.feed_data(body)
    content.feed_eof()
    reader = MultipartBody(content, "multipart/form-data; boundary=bnd")
    first = await reader.next()
    assert first is not None and await first.read_chunk(5) == b"01234"
    second = await reader.next()
    assert second is not None and second.name == "second"
    assert b"".join([bytes(view) async for view in second.chunks()]) == b"kept"
    assert await reader.next() is None
