"""`POST /sandbox/reset` (admins only): the repository, its store and every service back to the
state the server started from (`server.snapshot`), and the gate every request passes on its way in.

While a reset runs, requests wait at the gate and go on once it is over: after the reset's answer
(and for any request sent meanwhile) the server is in the start state, never half-way, which is
what a test suite that resets between tests relies on. A request that would wait longer than
HOLD_S answers 503 with Retry-After instead. Requests under way when a reset begins get DRAIN_S to
end, then are cancelled (their connections close unanswered); the event streams end at once
(clients reconnect); running operations are cut off and forgotten with everything else.

Just after the server starts, until the start state is kept, requests that may write wait at the
gate as well; reads go on (they never change the tree).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..errors import Forbidden, SandboxError, ServiceUnavailable
from ..keys import start_key
from ..times import iso
from .common import Handler, json
from .sandbox import either_dialect, viewer_of

log = logging.getLogger("server")
routes = web.RouteTableDef()

# the longest a request waits at the gate (for a reset to end, or for the start state to be kept)
HOLD_S = 60.0
# requests under way when a reset begins get this long to end before they are cancelled
DRAIN_S = 2.0
# what a cancelled request is given to unwind before the reset goes on regardless
UNWIND_S = 5.0
# methods that never change the tree (a listing may give new entries ids: the kept rows say
# which, and a reset gives them the same ones again)
READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Report:
    operations_cancelled: int
    requests_cancelled: int
    seconds: float


class Resets:
    """The gate, and the resets it lets through one at a time, in the app's two steps: `quiesce`
    (take no more work: webhooks stop, operations stop, so that requests waiting on them answer,
    and event streams end; how many operations it cut off) and, once the requests under way are
    over, `restart` (close every service, mark the start state, build and open them again, which
    restores it)."""

    def __init__(self, quiesce: Callable[[], Awaitable[int]], restart: Callable[[], Awaitable[None]]) -> None:
        self._quiesce = quiesce
        self._restart = restart
        # set once the start state is kept, or could not be (`problem` says why): writes go on
        self.kept = asyncio.Event()
        self.problem: str | None = None
        # one reset at a time, and none while the server stops (the app's shutdown takes it too)
        self.lock = asyncio.Lock()
        self._open = asyncio.Event()
        self._open.set()
        self._under_way: set[asyncio.Task[Any]] = set()

    async def admit(self, request: web.Request) -> None:
        """Let a request in: at once, unless a reset runs or it may write before the start state
        is kept (then once that is over)."""
        while not (self._open.is_set() and (request.method in READS or self.kept.is_set())):
            await _hold(self._open, "The server is being reset")
            if request.method not in READS:
                # (then the gate is looked at again: a reset may have begun meanwhile)
                await _hold(self.kept, "The server is keeping the state it started from")

    async def passing(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer a request once admitted, counted as under way until it is answered."""
        await self.admit(request)
        task = asyncio.current_task()
        assert task is not None
        self._under_way.add(task)
        try:
            return await handler(request)
        finally:
            self._under_way.discard(task)

    async def reset(self) -> Report:
        """Reset the server; shielded from the cancellation of the request that asked (a stop
        waits for it: see `lock`)."""
        own = asyncio.current_task()
        return await asyncio.shield(asyncio.ensure_future(self._reset(own)))

    async def _reset(self, own: asyncio.Task[Any] | None) -> Report:
        async with self.lock:
            started = time.monotonic()
            if self.problem is not None:
                raise ServiceUnavailable(
                    f"The state the server started from could not be kept ({self.problem}); "
                    "restart the server to start afresh.",
                    title="No start state to reset to.",
                )
            self._open.clear()
            try:
                operations = await self._quiesce()
                cancelled = await self._drain(own)
                await self._restart()
            except SandboxError:
                raise
            except Exception as exc:
                log.exception("the reset failed")
                raise ServiceUnavailable(
                    f"The reset failed ({exc}); restart the server: it finishes the reset as it starts.",
                    title="The reset failed.",
                ) from exc
            finally:
                self._open.set()
            return Report(operations, cancelled, time.monotonic() - started)

    async def _drain(self, own: asyncio.Task[Any] | None) -> int:
        """Let the requests under way end (DRAIN_S at most), then cancel the others; how many."""
        others = [task for task in self._under_way if task is not own]
        if not others:
            return 0
        _, late = await asyncio.wait(others, timeout=DRAIN_S)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=UNWIND_S)
        return len(late)


async def _hold(door: asyncio.Event, what: str) -> None:
    if door.is_set():
        return
    try:
        async with asyncio.timeout(HOLD_S):
            await door.wait()
    except TimeoutError:
        raise ServiceUnavailable(
            f"{what}; send the request again in a moment.", headers={"Retry-After": "1"}
        ) from None


resets_key = web.AppKey("resets", Resets)


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold requests while a reset runs, and writes until the start state is kept (after the
    problems middleware, so that a 503 here is problem+json; before authentication, whose
    sessions a reset builds anew)."""
    return await request.app[resets_key].passing(request, handler)


@routes.post("/sandbox/reset")
@either_dialect
async def reset(request: web.Request) -> web.Response:
    """Back to the start state: the tree, ids, metadata, operations, events, deliveries, bulk
    jobs, uploads, searches, exports, faults, the event stream's history and the webhook inbox.
    Access tokens survive it."""
    if not viewer_of(request).admin:
        raise Forbidden("Only an --admin-user may reset the server.")
    report = await request.app[resets_key].reset()
    return json(
        {
            "operationsCancelled": report.operations_cancelled,
            "requestsCancelled": report.requests_cancelled,
            "durationMs": round(report.seconds * 1000, 1),
            "startState": iso(request.app[start_key].kept_ns),
        }
    )
