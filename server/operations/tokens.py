"""The tokens that answer: every operation not yet expired, by token, and expiry.

A token answers while its operation runs and for `ttl_ns` after it ended, then expires: it is
forgotten, and remembered for a day as a tombstone so that a late poll hears "expired" rather than
"not found". A sweeper expires tokens as they come due, sleeping until the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable

from ..errors import NotFound
from .records import Operation
from .rows import TOMBSTONE_KEEP_NS, Rows


class Tokens:
    def __init__(self, rows: Rows, ttl_ns: int, on_expired: Callable[[list[Operation]], None]) -> None:
        self.rows = rows
        self.ttl_ns = ttl_ns
        # told of the operations whose tokens just expired (their kinds drop what they kept)
        self.on_expired = on_expired
        self._ops: dict[str, Operation] = {}
        # token -> (session id, when it expired)
        self._tombstones: dict[str, tuple[str, int]] = {}
        self._expiries: list[tuple[int, str]] = []
        self._wake = asyncio.Event()
        # stores of expired marks under way (a stop waits for them)
        self.writes: set[asyncio.Task[None]] = set()

    def load(self, ops: list[Operation], tombstones: dict[str, tuple[str, int]]) -> None:
        self._tombstones.update(tombstones)
        for op in ops:
            self._ops[op.token] = op
            self.due(op)

    def add(self, op: Operation) -> None:
        self._ops[op.token] = op

    def discard(self, op: Operation) -> None:
        self._ops.pop(op.token, None)

    def due(self, op: Operation) -> None:
        """The operation has ended: expire its token at `op.expires_ns`."""
        entry = (op.expires_ns, op.token)
        heapq.heappush(self._expiries, entry)
        if self._expiries[0] == entry:
            self._wake.set()  # (the sweeper sleeps until the earliest: only a new earliest wakes it)

    def lookup(self, token: str) -> Operation | None:
        return self._ops.get(token)

    def all(self) -> list[Operation]:
        """Every operation whose token has not expired, oldest first."""
        return list(self._ops.values())

    def of_session(self, session_id: str, token: str) -> Operation:
        """The operation behind a token of this session's; 404 for anything else, saying so when
        the token was this session's and has expired."""
        op = self._ops.get(token)
        if op is not None and op.session_id == session_id:
            if not op.expires_ns or time.time_ns() < op.expires_ns:
                return op
            self.expire([op])
        tomb = self._tombstones.get(token)
        if tomb is not None and tomb[0] == session_id:
            raise NotFound(
                f"The operation token {token} expired; tokens expire "
                f"{self.ttl_ns / 1e9:g} seconds after their operation ends.",
                title="Operation token expired.",
            )
        raise NotFound(f"No operation with token {token!r} in this session.", title="Operation not found.")

    async def sweep(self) -> None:
        """Expire tokens as they come due, sleeping until the next one (or until woken by a new one)."""
        while True:
            self._wake.clear()
            now = time.time_ns()
            due = []
            while self._expiries and self._expiries[0][0] <= now:
                expires_ns, token = heapq.heappop(self._expiries)
                op = self._ops.get(token)
                if op is not None and op.expires_ns == expires_ns:
                    due.append(op)
            if due:
                self.expire(due)
            delay = (self._expiries[0][0] - now) / 1e9 if self._expiries else None
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that comes
            # as the wait ends, and this loop would then never stop)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def expire(self, ops: list[Operation]) -> None:
        now = time.time_ns()
        for op in ops:
            self._ops.pop(op.token, None)
            self._tombstones[op.token] = (op.session_id, now)
        for token, (_, expired_ns) in list(self._tombstones.items()):
            if now - expired_ns > TOMBSTONE_KEEP_NS:
                del self._tombstones[token]
        task = asyncio.create_task(asyncio.to_thread(self.rows.mark_expired, [op.token for op in ops], now))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)
        self.on_expired(ops)
