"""What a kind of long operation is to the engine (arq's job function, as a class): the work it runs.

A kind (`server/kinds/`: copy, delete, the test task…) checks its request before anything is
accepted, then hands the engine a `Work`. The engine owns the rest: the per-session guard, the
queue, cancel, progress saving, persistence, expiry and the hooks (an Elements event and its
webhook). A Work says how it runs (scanning for totals and stepping through `Runner`, checking
`progress.stop` between items), what its record names (`entry_id`, `notes`, `result`), and what a
crash or an unfinished end leaves to clean up. Adding a kind never touches the engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from ..commits import GroupCommit
from ..copyworker import Workers
from ..progress import WAIT, Order, Progress, Step
from ..repository import Repository
from .load import RequestLoad
from .records import Kind, Operation

# how long a walk that has caught up with its scan waits before looking again
SCAN_WAIT_S = 0.005

T = TypeVar("T")


class Runner:
    """Where a Work's blocking steps run: the work threads, and the copy worker processes (each
    started on first need) that large batches of small files go to; and the engine's group
    commit, for small writes to the store that need no thread hop of their own."""

    def __init__(
        self,
        repository: Repository,
        executor: ThreadPoolExecutor,
        processes: int,
        commits: GroupCommit,
        load: RequestLoad,
    ) -> None:
        self.repository = repository
        self.executor = executor
        self.commits = commits
        self.load = load
        self.processes = processes
        self._pool: Workers | None = None
        self._pool_lock = threading.Lock()

    async def in_thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, call, *args)

    def workers(self) -> Workers | None:
        """The copy worker processes (started on first need, from a worker thread), or None."""
        if self.processes <= 0:
            return None
        with self._pool_lock:
            if self._pool is None:
                store = self.repository.store
                self._pool = Workers(str(store.root), store.root_fd, self.processes)
            return self._pool

    async def close(self) -> None:
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)

    async def drive(
        self,
        steps: Iterator[Step],
        progress: Progress,
        width: Callable[[], int],
        after_barrier: Callable[[], Awaitable[None]] | None = None,
        scan: asyncio.Future[None] | None = None,
    ) -> None:
        """Run steps in the work threads, up to `width()` at once (one while requests come fast:
        they come first, see `load`), in their Order; WAIT waits for
        the scan (`scan`, if given, is the scan's own run: when no step is running, its end ends
        the wait at once, so a small tree's copy does not sit out SCAN_WAIT_S). On any error or
        cancel, the steps already running are let finish (they stop at their next file) before
        this returns: nothing touches the tree after."""
        # each step's future in the thread pool, and the event loop's view of it
        running: dict[concurrent.futures.Future[None], asyncio.Future[None]] = {}
        try:
            for step in steps:
                if progress.stop.is_set():
                    break  # (the steps already running are still waited for, below)
                if step is WAIT:
                    if not running and scan is not None and not scan.done():
                        await asyncio.wait([scan], timeout=SCAN_WAIT_S)
                    else:
                        await _first_done(running, timeout=SCAN_WAIT_S)
                    continue
                call, order = step
                if order is Order.ALONE:
                    while running:
                        await _first_done(running)
                future = self.executor.submit(call)
                running[future] = asyncio.wrap_future(future)
                if order is not Order.ANY:
                    # still listed while awaited: a cancel here must wait for it too (_settle)
                    await running[future]
                    del running[future]
                    if after_barrier is not None:
                        await after_barrier()
                while len(running) >= (1 if self.load.busy() else width()):
                    await _first_done(running)
            while running:
                await _first_done(running)
        except BaseException:
            progress.stop.set()
            await _settle(list(running))
            for waiter in running.values():  # (their errors are not this walk's to raise)
                waiter.add_done_callback(_retrieved)
            raise


class Work(ABC):
    """One run of a kind of long operation."""

    kind: ClassVar[Kind]

    def __init__(self, progress: Progress, label: str, entry_id: int = 0) -> None:
        self.progress = progress
        # what it does, in words, for people (the dashboard)
        self.label = label
        # the entry its record names: the entry a copy made (once it exists), the entry deleted
        self.entry_id = entry_id
        # what went wrong without failing it (a source file that went away during a copy)
        self.notes: list[str] = []
        # what its record says of its result (stored with it): "uri", where the result is, as a
        # path below the repository (`/Entries/12`), for the dialects to make absolute
        self.result: dict[str, Any] = {}

    @abstractmethod
    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        """Do the work, stopping between items once `progress.stop` is set; raise to fail.
        `checkpoint()` stores the record as it is now (after `entry_id` or `label` changed)."""

    async def unfinished(self, runner: Runner) -> None:  # noqa: B027 (most kinds leave nothing)
        """After an end other than Completed: clear what must not stay (a copy's part files)."""

    @classmethod  # noqa: B027
    async def recover(cls, runner: Runner, op: Operation) -> None:
        """At start-up, for an operation of this kind that a crash cut off: the same."""

    @classmethod  # noqa: B027
    async def expired(cls, runner: Runner, op: Operation) -> None:
        """Its token expired: drop what was kept for its result (a file to download)."""

    @classmethod  # noqa: B027
    async def tidy(cls, runner: Runner, live: list[Operation]) -> None:
        """At start-up: drop what was kept for operations other than the `live` ones (those whose
        tokens expired while the server was down, or that a crash cut off)."""


async def _first_done(
    running: dict[concurrent.futures.Future[None], asyncio.Future[None]], timeout: float | None = None
) -> None:
    """Wait for one running step to end (or `timeout`); raise what it raised."""
    if not running:
        await asyncio.sleep(timeout or 0)
        return
    await asyncio.wait(running.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    failure: BaseException | None = None
    for future, waiter in list(running.items()):
        if waiter.done():
            del running[future]
            # every failed step's error is retrieved (side by side, several fail alike: a full
            # disk); the first is what the walk raises
            error = None if waiter.cancelled() else waiter.exception()
            failure = failure or error
    if failure is not None:
        raise failure


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def _settle(running: list[concurrent.futures.Future[None]]) -> None:
    """Wait for steps already running in threads to finish, even through further cancellation."""
    if not running:
        return
    waiter = asyncio.ensure_future(asyncio.to_thread(concurrent.futures.wait, running))
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            continue
