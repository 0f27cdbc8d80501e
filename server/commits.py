"""Group commit: small writes to the store from the event loop, gathered into one transaction per
thread hop.

Hundreds of operations under way each store a row as they start, run and end, and each webhook
attempt its record; one transaction (and one thread hop) apiece made the store and the hops the
bottleneck of small asynchronous copies. Here a write is queued and awaited until it is committed:
while one transaction is under way, the writes that arrive meanwhile wait and go together in the
next. Each write runs in a savepoint of its own, so one that fails is undone alone and only its
caller hears why; a transaction that fails as a whole (a full disk) fails every write in it, as
each would have failed alone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .store import Store

T = TypeVar("T")


@dataclass
class _Write:
    call: Callable[[sqlite3.Connection], Any]
    # its callers' (those of writes merged into it too), each its own: a caller cancelled while it
    # waits cancels its own, and the write goes on
    futures: list[asyncio.Future[Any]]
    record: str | None
    whole: bool


class GroupCommit:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._queued: list[_Write] = []
        # record -> the last of its writes queued (not yet in a transaction)
        self._last: dict[str, _Write] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def write(
        self, call: Callable[[sqlite3.Connection], T], record: str | None = None, whole: bool = False
    ) -> T:
        """Run `call` in a transaction (with others queued beside it) in a worker thread, once it is
        committed. A caller cancelled meanwhile does not take its write back: it is committed all
        the same (what a caller shields its write for).

        `record` names what the write stores; `whole`: it stores all of it, as it is now, so that
        when the record's last write still queued is such a one too, this takes its place (both
        callers hear of it once it is committed) instead of adding another write of the record.
        Writes are committed in the order they are queued."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        last = self._last.get(record) if record is not None else None
        if last is not None and whole and last.whole:
            last.call = call
            last.futures.append(future)
            return await future
        write = _Write(call, [future], record, whole)
        self._queued.append(write)
        if record is not None:
            self._last[record] = write
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        return await future

    async def _flush(self) -> None:
        batch: list[_Write] = []
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                self._last.clear()
                try:
                    outcomes = await asyncio.to_thread(self._commit, [write.call for write in batch])
                except Exception as exc:  # (the transaction failed as a whole)
                    outcomes = [(False, exc)] * len(batch)
                for write, (ok, value) in zip(batch, outcomes, strict=True):
                    for future in write.futures:
                        if future.done():
                            continue
                        if ok:
                            future.set_result(value)
                        else:
                            future.set_exception(value)
                batch = []
        finally:
            self._flusher = None
            # (cut off at a shutdown: nobody waits for ever on a write whose fate is unknown)
            for write in batch + self._queued:
                for future in write.futures:
                    future.cancel()
            self._queued = []
            self._last.clear()

    def _commit(self, calls: list[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        with self.store.transaction() as conn:
            for call in calls:
                conn.execute("SAVEPOINT one")
                try:
                    outcomes.append((True, call(conn)))
                except Exception as exc:
                    # (a failure that took the whole transaction with it fails this, and so all)
                    conn.execute("ROLLBACK TO one")
                    outcomes.append((False, exc))
                conn.execute("RELEASE one")
        return outcomes
