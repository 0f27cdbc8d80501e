"""A small server-sent events reader for the sandbox's `GET /sandbox/events` stream.

`open_stream(client, headers, params)` opens the stream over the test client's real socket and
yields an `EventStream`: a background task parses the `id:`/`event:`/`data:` lines into `Message`s
(data parsed as JSON) and keeps `: comment` lines apart; tests take messages with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Message:
    id: int | None
    event: str
    data: Any


class EventStream:
    def __init__(self, resp: Any) -> None:
        self.resp = resp
        self.queue: asyncio.Queue[Message | BaseException | None] = asyncio.Queue()
        self.comments: list[str] = []
        self.raw_ids: list[str] = []
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        fields: dict[str, str] = {}
        data: list[str] = []
        try:
            while True:
                raw = await self.resp.content.readline()
                if not raw:
                    break
                line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
                if not line:
                    if data:  # (a block without data, like `retry:`, dispatches nothing)
                        ident = fields.get("id")
                        if ident is not None:
                            self.raw_ids.append(ident)
                        self.queue.put_nowait(
                            Message(
                                int(ident) if ident is not None else None,
                                fields.get("event", "message"),
                                json.loads("\n".join(data)) if data else None,
                            )
                        )
                    fields, data = {}, []
                    continue
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a malformed message: the test that takes it sees why
            self.queue.put_nowait(exc)
        finally:
            self.queue.put_nowait(None)

    async def next(self, timeout: float) -> Message:
        item = await asyncio.wait_for(self.queue.get(), timeout)
        if item is None:
            self.queue.put_nowait(None)  # keep saying so
            raise AssertionError("the event stream ended")
        if isinstance(item, BaseException):
            raise AssertionError(f"unreadable event stream message: {item!r}") from item
        return item

    async def until(self, pred: Callable[[Message], bool], what: str, timeout: float = 10.0) -> list[Message]:
        """Every message up to and including the first for which `pred` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out: list[Message] = []
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                msg = await self.next(remaining)
            except TimeoutError:
                shown = [(m.id, m.event, m.data) for m in out][-10:]
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; last messages: {shown}"
                ) from None
            out.append(msg)
            if pred(msg):
                return out

    async def quiet(self, seconds: float) -> list[Message]:
        """The messages that arrive within `seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        out: list[Message] = []
        while (remaining := deadline - loop.time()) > 0:
            try:
                out.append(await self.next(remaining))
            except TimeoutError:
                break
        return out

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.resp.close()


@contextlib.asynccontextmanager
async def open_stream(
    client: Any, headers: dict[str, str], params: dict[str, str] | None = None
) -> AsyncIterator[EventStream]:
    resp = await client.get("/sandbox/events", headers=headers, params=params or {})
    try:
        if resp.status != 200:
            text = await resp.text()
            raise AssertionError(f"GET /sandbox/events answered {resp.status}: {text[:500]}")
        assert resp.content_type == "text/event-stream", resp.content_type
        stream = EventStream(resp)
        try:
            yield stream
        finally:
            await stream.close()
    finally:
        resp.close()
