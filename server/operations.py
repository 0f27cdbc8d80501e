"""Long operations: copy and delete as asyncio tasks, with status, cancel, expiry and persistence.

The pattern of the Laserfiche Long Operations guide: starting one returns a token at once; the
work runs as one asyncio task per operation, whose blocking steps (`walkers`) run in worker
threads, a few at a time; the token reports progress until the operation ends, and then its
result, for `token_ttl_s` (15 minutes) before it expires.

- One running operation per session (access token). A second start is refused (429 naming the
  running token) or, in queue mode, waits as NotStarted and runs when the one before it ends.
- Cancel records the intent, then stops the work between items and between chunks of a large
  file. What was done stays: a cancelled copy leaves a partial copy, a cancelled delete leaves
  what it had not reached.
- Records live in the store. After a restart, finished operations stay readable until they expire;
  those that were running or waiting report Failed (interrupted), and their partial results have ids.

No aiohttp here: the API maps the errors raised (SandboxError subclasses) to responses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import heapq
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import orjson

from . import walkers
from .copyworker import Workers
from .errors import (
    Conflict,
    NotFound,
    SandboxError,
    ServiceUnavailable,
    TooManyRequests,
    from_os_error,
    from_store_error,
)
from .fsops import Stopped
from .repository import Entry, Repository
from .sessions import Session

log = logging.getLogger("server.operations")

# tokens stay readable this long after their operation ends (Long Operations guide)
TOKEN_TTL_S = 15 * 60
# an expired token is remembered this long, so that a late poll hears "expired", not "not found"
TOMBSTONE_KEEP_NS = 24 * 3600 * 10**9
# a cancel waits this long for the operation to stop before answering anyway
CANCEL_WAIT_S = 10.0
# how long a copy that has caught up with its scan waits before looking again
SCAN_WAIT_S = 0.005
# what a client is told to wait between polls (Retry-After)
POLL_AFTER_S = 1
# running operations' progress is stored this often, and shown once stored: percentComplete then
# never goes back, not even across a crash
PROGRESS_SAVE_S = 0.05


class Status(StrEnum):
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class Kind(StrEnum):
    COPY = "CopyEntry"
    DELETE = "DeleteEntry"


class Concurrency(StrEnum):
    REJECT = "reject"  # a second start in a session is refused with 429 (Laserfiche Cloud)
    QUEUE = "queue"  # a second start waits for the first to end


@dataclass(frozen=True)
class OperationError:
    object_id: int
    message: str


INTERRUPTED = (
    "The operation was interrupted because the server stopped while it ran; what it had done remains."
)
SHUT_DOWN = "The operation was interrupted because the server shut down; what it had done remains."
# the HTTP status an operation's end is reported with where a status is asked for (the Elements
# webhook's error): the client closed it (as Google's APIs report a cancel), the server stopped
CANCELLED_STATUS = 499
STOPPED_STATUS = 503


class Hook(Protocol):
    """Another record that goes with an operation's (an Elements event): written in the same
    transaction as the operation's, when it is accepted and when it ends, so neither lands alone."""

    def accepted(self, op: Operation, conn: sqlite3.Connection) -> None: ...

    def ended(self, op: Operation, conn: sqlite3.Connection) -> None: ...


@dataclass(eq=False)
class Operation:
    token: str
    kind: Kind
    session_id: str
    user: str
    status: Status = Status.NOT_STARTED
    entry_id: int = 0
    errors: list[OperationError] = field(default_factory=list)
    created_ns: int = 0
    started_ns: int = 0
    status_ns: int = 0
    finished_ns: int = 0
    expires_ns: int = 0
    # the percentage shown: what the store holds, so that a crash never takes it back
    percent: int = 0
    progress: walkers.Progress = field(default_factory=walkers.Progress)
    cancel_requested: bool = False
    # a failed operation's HTTP status (what its last error would have been answered with)
    error_status: int = 0
    hook: Hook | None = None
    # what it does, in words ("Copy /A → /B/A"); not stored: "" after a restart
    label: str = ""
    task: asyncio.Task[None] | None = None
    # set once the operation has ended and its final state is stored
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    writing: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def new_entry(self) -> int:
        """The entry a completed copy made (what status redirects to), else 0."""
        return self.entry_id if self.kind is Kind.COPY and self.status is Status.COMPLETED else 0


class Operations:
    def __init__(
        self,
        repository: Repository,
        *,
        token_ttl_s: float = TOKEN_TTL_S,
        concurrency: Concurrency = Concurrency.REJECT,
        threads: int = 4,
        processes: int = 2,
        pace_s: float = 0.0,
    ) -> None:
        self.store = repository.store
        self.repository = repository
        self.ttl_ns = int(token_ttl_s * 1e9)
        self.concurrency = concurrency
        self.pace_s = pace_s
        # copies and deletes get threads of their own, so they never starve the API's lookups
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="work", initializer=_lower_priority)
        # worker processes for large copies of small files, started on first need
        self.processes = processes
        self._pool: Workers | None = None
        self._pool_lock = threading.Lock()
        self._ops: dict[str, Operation] = {}
        # session id -> its operations not yet ended, oldest first (the first is the running one)
        self._active: dict[str, list[Operation]] = {}
        # token -> (session id, when it expired)
        self._tombstones: dict[str, tuple[str, int]] = {}
        self._expiries: list[tuple[int, str]] = []
        self._wake = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._saver: asyncio.Task[None] | None = None
        self._running = asyncio.Event()  # set while any operation runs
        self._writes: set[asyncio.Task[None]] = set()
        # synchronous copies under way (their requests wait on them)
        self._sync: set[walkers.Progress] = set()
        # the sandbox's controls: arms an operation's fault as it is accepted; hears of every change
        # of state and every rise of percentComplete (on the event loop, in order)
        self.arm: Callable[[Operation], None] | None = None
        self.listeners: list[Callable[[Operation], None]] = []
        self._closing = False
        self._closed = False

    # ---- life --------------------------------------------------------------------------

    async def open(self) -> None:
        """Read the stored operations (those cut off by a stop are Failed now); start expiring."""
        interrupted = await asyncio.to_thread(self._load)
        for op in interrupted:
            if op.kind is Kind.COPY and op.entry_id:
                # a crash mid-copy may have left part files in the partial copy
                await self._in_thread(walkers.remove_parts, self.repository, op.entry_id)
        self._sweeper = asyncio.create_task(self._sweep(), name="token-sweeper")
        self._saver = asyncio.create_task(self._save_progress(), name="progress-saver")

    async def stop(self) -> None:
        """Refuse new operations and stop the running ones (Failed: shut down), recording how
        each ended. The server calls this as it begins to shut down, before waiting on requests."""
        self._closing = True
        for progress in self._sync:
            progress.stop.set()
        tasks = [op.task for op in self._ops.values() if op.task is not None and not op.task.done()]
        for op in self._ops.values():
            if not op.done:
                op.progress.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._writes, return_exceptions=True)

    async def close(self) -> None:
        """Stop everything (see `stop`), then the sweeper and the worker threads and processes."""
        await self.stop()
        if self._closed:
            return
        self._closed = True
        for task in (self._sweeper, self._saver):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)

    # ---- starting ------------------------------------------------------------------------

    async def copy(
        self,
        session: Session,
        source_id: int,
        parent_id: int,
        name: str,
        auto_rename: bool,
        hook: Hook | None = None,
        pace_s: float | None = None,
    ) -> Operation:
        """Check and accept a copy (errors are raised before any token exists), then run it.
        `pace_s` (seconds per entry) overrides the server's pace for this one."""
        # checked first (a bad request is a 400 even while another runs), on the default threads:
        # a check never queues behind copy batches
        progress = self._progress(pace_s)
        walk = await self._copy_walk(session.user, source_id, parent_id, name, auto_rename, progress)
        self._admit(session)
        op = self._new(
            Kind.COPY, session, hook, progress, _copy_label(walk.source, walk.parent.child_path(name))
        )
        await self._begin(op, walk)
        return op

    async def delete(
        self, session: Session, entry_id: int, hook: Hook | None = None, pace_s: float | None = None
    ) -> Operation:
        target = await asyncio.to_thread(self.repository.check_delete, entry_id)
        self._admit(session)
        label = f"Delete {target.path if target else f'entry {entry_id}'}"
        op = self._new(Kind.DELETE, session, hook, self._progress(pace_s), label)
        op.entry_id = entry_id
        await self._begin(op, entry_id)
        return op

    def _progress(self, pace_s: float | None) -> walkers.Progress:
        return walkers.Progress(self.pace_s if pace_s is None else pace_s)

    async def copy_now(
        self,
        user: str,
        source_id: int,
        parent_id: int,
        name: str,
        auto_rename: bool,
        pace_s: float | None = None,
    ) -> Entry:
        """A synchronous copy (the create-children route, the Elements hub without
        Elements-Async-Request): the same walk, no token, no guard."""
        self._refuse_if_closing()
        progress = self._progress(pace_s)
        walk = await self._copy_walk(user, source_id, parent_id, name, auto_rename, progress)
        async with self._synchronous(progress, "copy"):
            await self._copy(walk, progress)
        assert walk.result is not None
        return await asyncio.to_thread(self.repository.entry, walk.result.id)

    async def delete_now(self, entry_id: int, pace_s: float | None = None) -> list[walkers.Change]:
        """A synchronous delete (the Elements hub without Elements-Async-Request): the same walk,
        no token, no guard. Returns what it removed."""
        self._refuse_if_closing()
        await asyncio.to_thread(self.repository.check_delete, entry_id)
        target = await asyncio.to_thread(self.repository.entry, entry_id)
        progress = self._progress(pace_s)
        walk = walkers.DeleteWalk(self.repository, target, progress, self._workers)
        async with self._synchronous(progress, "delete"):
            await self._delete(walk, progress)
        return progress.changes

    async def _copy_walk(
        self,
        user: str,
        source_id: int,
        parent_id: int,
        name: str,
        auto_rename: bool,
        progress: walkers.Progress,
    ) -> walkers.CopyWalk:
        """A copy's walk, once the copy is checked (errors are raised before anything starts). The
        check runs on the default threads: it never queues behind copy batches."""
        source, parent = await asyncio.to_thread(
            self.repository.check_copy, source_id, parent_id, name, auto_rename
        )
        return walkers.CopyWalk(
            self.repository, source, parent, name, auto_rename, user, progress, self._workers
        )

    def _refuse_if_closing(self) -> None:
        if self._closing:
            raise ServiceUnavailable("The server is shutting down.")

    @contextlib.asynccontextmanager
    async def _synchronous(self, progress: walkers.Progress, what: str) -> AsyncIterator[None]:
        """A walk that a request waits on: a shutdown stops it too, and the request hears so."""
        self._sync.add(progress)
        try:
            yield
        finally:
            self._sync.discard(progress)
        if progress.stop.is_set():
            raise ServiceUnavailable(f"The server shut down during the {what}; what was done so far remains.")

    def _workers(self) -> Workers | None:
        """The copy worker processes (each started on first need, from a worker thread), or None."""
        if self.processes <= 0:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = Workers(str(self.store.root), self.store.root_fd, self.processes)
            return self._pool

    def _admit(self, session: Session) -> None:
        if self._closing:
            raise ServiceUnavailable(
                "The server is shutting down; start the operation again once it is back."
            )
        active = self._active.get(session.id)
        if active and self.concurrency is Concurrency.REJECT:
            running = active[0].token
            raise TooManyRequests(
                f"Only one long operation may run per session, and operation {running} is still "
                "running. Wait for it to end (or cancel it), then start this one again.",
                headers={"Retry-After": str(POLL_AFTER_S)},
                extra={"operationToken": running},
            )

    def _new(
        self, kind: Kind, session: Session, hook: Hook | None, progress: walkers.Progress, label: str
    ) -> Operation:
        now = time.time_ns()
        op = Operation(
            str(uuid.uuid4()),
            kind,
            session.id,
            session.user,
            created_ns=now,
            status_ns=now,
            progress=progress,
            hook=hook,
            label=label,
        )
        if self.arm is not None:
            self.arm(op)
        self._ops[op.token] = op
        self._active.setdefault(session.id, []).append(op)
        return op

    def _changed(self, op: Operation) -> None:
        for listener in self.listeners:
            try:
                listener(op)
            except Exception:
                log.exception("a listener failed on operation %s", op.token)

    async def _begin(self, op: Operation, work: walkers.CopyWalk | int) -> None:
        try:
            # an accepted operation is on disk before its token is handed out
            await self._write(op, accepted=True)
        except BaseException:
            self._ops.pop(op.token, None)
            self._leave_active(op)
            raise
        self._changed(op)
        if self._closing:
            op.error_status = STOPPED_STATUS
            self._end(op, Status.FAILED, SHUT_DOWN)
            await self._write(op, ended=True)
            return
        op.task = asyncio.create_task(self._run(op, work), name=op.token)
        op.task.add_done_callback(lambda _: self._settled(op))

    # ---- reading and cancelling ---------------------------------------------------------

    def lookup(self, token: str) -> Operation | None:
        """The operation behind a token, whoever's it is, if it has not expired (for the
        dialects' own records that name it)."""
        return self._ops.get(token)

    def get(self, session: Session, token: str) -> Operation:
        """The operation behind a token of this session's; 404 for anything else, saying so
        when the token was this session's and has expired."""
        op = self._ops.get(token)
        if op is not None and op.session_id == session.id:
            if not op.expires_ns or time.time_ns() < op.expires_ns:
                return op
            self._expire([op])
        tomb = self._tombstones.get(token)
        if tomb is not None and tomb[0] == session.id:
            raise NotFound(
                f"The operation token {token} expired; tokens expire "
                f"{self.ttl_ns / 1e9:g} seconds after their operation ends.",
                title="Operation token expired.",
            )
        raise NotFound(f"No operation with token {token!r} in this session.", title="Operation not found.")

    @property
    def running(self) -> int:
        """Operations accepted and not yet ended (queued ones included)."""
        return sum(len(active) for active in self._active.values())

    def visible(self) -> list[Operation]:
        """Every operation whose token has not expired, oldest first."""
        return list(self._ops.values())

    async def wait(self, op: Operation, timeout_s: float) -> None:
        """Until the operation has ended (its final state stored), or `timeout_s` has passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await op.ended.wait()

    def expire_now(self, op: Operation) -> None:
        """Expire an ended operation's token at once (a sandbox control); a running one never expires."""
        if not op.done:
            raise Conflict(
                f"Operation {op.token} is still {op.status.value}; tokens expire only after their "
                "operation ends.",
                title="The operation is still running.",
            )
        op.expires_ns = time.time_ns()
        self._expire([op])

    async def cancel(self, session: Session, token: str) -> Operation:
        """Stop an operation and wait (a little) for it to end; an ended one is left as it is."""
        return await self.stop_operation(self.get(session, token))

    async def stop_operation(self, op: Operation) -> Operation:
        """Cancel an operation found otherwise than by its session's token (see `cancel`)."""
        if op.done:
            return op
        op.cancel_requested = True  # recorded before the task hears of it: Cancelled, not Failed
        op.progress.stop.set()
        if op.task is not None:
            op.task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_S):
                await op.ended.wait()
        return op

    # ---- running ---------------------------------------------------------------------------

    async def _run(self, op: Operation, work: walkers.CopyWalk | int) -> None:
        walk: walkers.CopyWalk | walkers.DeleteWalk | None = None
        try:
            # queue mode: the session's earlier operations first, whichever of them ends when
            while (first := self._active[op.session_id][0]) is not op:
                await first.ended.wait()
            self._set(op, Status.IN_PROGRESS)
            op.started_ns = op.status_ns
            self._running.set()
            self._changed(op)
            await self._write(op)
            op.progress.check()  # a fault armed to fail after no entries at all
            if isinstance(work, walkers.CopyWalk):
                walk = work
                await self._copy(walk, op.progress, lambda: self._note_top(op, work))
            else:
                target = await asyncio.to_thread(self.repository.entry, work)
                walk = walkers.DeleteWalk(self.repository, target, op.progress, self._workers)
                await self._delete(walk, op.progress)
            if op.progress.stop.is_set():
                raise Stopped
            op.progress.check(ended=True)  # a fault armed for more entries than there were
            outcome: tuple[Status, str | None] = (Status.COMPLETED, None)
        except (asyncio.CancelledError, Stopped):
            # a cancel that came as the last entry was done stopped nothing: the work is complete
            outcome = (Status.COMPLETED, None) if op.progress.complete else self._stopped(op)
        except SandboxError as exc:
            op.error_status = exc.status
            if isinstance(exc, NotFound) and op.kind is Kind.DELETE and walk is None:
                outcome = (
                    Status.FAILED,
                    f"Entry {op.entry_id} no longer exists; there was nothing to delete.",
                )
            else:
                outcome = (Status.FAILED, exc.detail)
        except OSError as exc:
            error = from_os_error(exc)
            op.error_status = error.status
            outcome = (Status.FAILED, error.detail)
        except Exception as exc:
            # the store's disk full or read-only is the disk's doing; anything else is a bug
            stored = from_store_error(exc) if isinstance(exc, sqlite3.Error) else None
            if stored is not None:
                op.error_status = stored.status
                outcome = (Status.FAILED, stored.detail)
            else:
                op.error_status = 500
                log.exception("operation %s failed unexpectedly", op.token)
                outcome = (Status.FAILED, f"The operation failed unexpectedly; quote token {op.token}.")
        self._result(op, walk)
        self._end(op, *outcome)
        try:
            if op.kind is Kind.COPY and op.status is not Status.COMPLETED and op.entry_id:
                # a batch cut short (a worker process that died) may have left a part file
                await asyncio.shield(asyncio.to_thread(walkers.remove_parts, self.repository, op.entry_id))
        finally:
            # cancellation (a shutdown) must not lose the final state
            await asyncio.shield(self._write_soon(op, ended=True))

    async def _note_top(self, op: Operation, walk: walkers.CopyWalk) -> None:
        """Once the copy's new folder exists, the record names it before anything is copied
        into it: after a crash, the interrupted operation shows where its partial copy is."""
        if walk.result is not None and op.entry_id != walk.result.id:
            op.entry_id = walk.result.id
            # the name it got (autoRename may have changed it)
            op.label = _copy_label(walk.source, walk.result.path)
            await self._write(op)

    def _result(self, op: Operation, walk: walkers.CopyWalk | walkers.DeleteWalk | None) -> None:
        if isinstance(walk, walkers.CopyWalk):
            if walk.result is not None:
                op.entry_id = walk.result.id
            for path in walk.skipped:
                op.errors.append(
                    OperationError(
                        op.entry_id, f"'{path}' went away from the source during the copy; skipped."
                    )
                )

    def _set(self, op: Operation, status: Status) -> None:
        op.status = status
        op.status_ns = time.time_ns()

    def _end(self, op: Operation, status: Status, error: str | None = None) -> None:
        op.percent = 100 if status is Status.COMPLETED else max(op.percent, op.progress.percent)
        if error is not None:
            op.errors.append(OperationError(op.entry_id, error))
        self._set(op, status)
        op.finished_ns = op.status_ns
        op.expires_ns = op.finished_ns + self.ttl_ns
        self._leave_active(op)
        heapq.heappush(self._expiries, (op.expires_ns, op.token))
        self._wake.set()

    def _leave_active(self, op: Operation) -> None:
        active = self._active.get(op.session_id, [])
        if op in active:
            active.remove(op)
        if not active:
            self._active.pop(op.session_id, None)

    @staticmethod
    def _stopped(op: Operation) -> tuple[Status, str | None]:
        """How a stopped operation ends: Cancelled if a user asked, else it was a shutdown."""
        if op.cancel_requested:
            op.error_status = CANCELLED_STATUS
            return Status.CANCELLED, None
        op.error_status = STOPPED_STATUS
        return Status.FAILED, SHUT_DOWN

    def _settled(self, op: Operation) -> None:
        """The task is over. One cancelled before it first ran never reached its own handlers."""
        if not op.done:
            self._end(op, *self._stopped(op))
            self._write_soon(op, ended=True)

    async def _copy(
        self,
        walk: walkers.CopyWalk,
        progress: walkers.Progress,
        after_barrier: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Scan and copy side by side (the copy follows the scan folder by folder)."""
        scan = asyncio.ensure_future(self._in_thread(walk.scan))
        try:
            await self._drive(walk.steps(), progress, lambda: walk.width, after_barrier)
        except BaseException:
            progress.stop.set()  # the scan too stops at its next folder
            await asyncio.wait([scan])
            if not scan.cancelled():
                scan.exception()  # retrieved: what the copy raised is what counts
            raise
        await scan  # a scan that failed (a folder gone) fails the copy

    async def _delete(self, walk: walkers.DeleteWalk, progress: walkers.Progress) -> None:
        """Scan what the delete will remove, then remove it."""
        await self._in_thread(walk.scan)
        await self._drive(walk.steps(), progress, lambda: walk.width)

    async def _drive(
        self,
        steps: Iterator[walkers.Step],
        progress: walkers.Progress,
        width: Callable[[], int],
        after_barrier: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run the walk's steps in worker threads, up to `width()` at once, in their Order; WAIT
        waits for the scan. On any error or cancel, the steps already running are let finish
        (they stop at their next file) before this returns: nothing touches the tree after."""
        # each step's future in the thread pool, and the event loop's view of it
        running: dict[concurrent.futures.Future[None], asyncio.Future[None]] = {}
        try:
            for step in steps:
                if progress.stop.is_set():
                    break  # (the steps already running are still waited for, below)
                if step is walkers.WAIT:
                    await _first_done(running, timeout=SCAN_WAIT_S)
                    continue
                call, order = step
                if order is walkers.Order.ALONE:
                    while running:
                        await _first_done(running)
                future = self.executor.submit(call)
                running[future] = asyncio.wrap_future(future)
                if order is not walkers.Order.ANY:
                    # still listed while awaited: a cancel here must wait for it too (_settle)
                    await running[future]
                    del running[future]
                    if after_barrier is not None:
                        await after_barrier()
                while len(running) >= width():
                    await _first_done(running)
            while running:
                await _first_done(running)
        except BaseException:
            progress.stop.set()
            await _settle(list(running))
            for waiter in running.values():  # (their errors are not this walk's to raise)
                waiter.add_done_callback(_retrieved)
            raise

    async def _in_thread(self, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, call, *args)

    # ---- progress ---------------------------------------------------------------------------

    async def _save_progress(self) -> None:
        """While operations run, store how far each has come, then show that."""
        while True:
            await self._running.wait()
            await asyncio.sleep(PROGRESS_SAVE_S)
            running = [op for op in self._ops.values() if op.status is Status.IN_PROGRESS]
            if not running:
                self._running.clear()
                continue
            rising = [(op, op.progress.percent) for op in running]
            rising = [(op, p) for op, p in rising if p > op.percent]
            if rising:
                try:
                    await asyncio.to_thread(self._store_percents, [(p, op.token) for op, p in rising])
                except Exception:
                    log.exception("could not store the operations' progress")
                    continue
                for op, percent in rising:
                    if not op.done and percent > op.percent:
                        op.percent = percent
                        self._changed(op)

    def _store_percents(self, rows: list[tuple[int, str]]) -> None:
        with self.store.transaction() as conn:
            conn.executemany("UPDATE operations SET percent = MAX(percent, ?) WHERE token = ?", rows)

    # ---- expiry ----------------------------------------------------------------------------

    async def _sweep(self) -> None:
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
                self._expire(due)
            delay = (self._expiries[0][0] - now) / 1e9 if self._expiries else None
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that comes
            # as the wait ends, and this loop would then never stop)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _expire(self, ops: list[Operation]) -> None:
        now = time.time_ns()
        for op in ops:
            self._ops.pop(op.token, None)
            self._tombstones[op.token] = (op.session_id, now)
        for token, (_, expired_ns) in list(self._tombstones.items()):
            if now - expired_ns > TOMBSTONE_KEEP_NS:
                del self._tombstones[token]
        task = asyncio.create_task(asyncio.to_thread(self._store_expired, [op.token for op in ops], now))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    # ---- persistence ---------------------------------------------------------------------

    async def _write(self, op: Operation, ended: bool = False, accepted: bool = False) -> None:
        """Store the operation as it is now (with its hook's record, when it is accepted and when
        it ends). One write at a time per operation, each taking its snapshot when its turn comes,
        so that the last state is the one stored."""
        also = None
        if op.hook is not None and (accepted or ended):
            record = op.hook.ended if ended else op.hook.accepted
            also = functools.partial(record, op)
        try:
            async with op.writing:
                await asyncio.to_thread(self._store_op, _row(op), also, ended)
        finally:
            if ended and not op.ended.is_set():
                op.ended.set()  # even if the store failed: nobody may wait on it forever
                self._changed(op)

    def _write_soon(self, op: Operation, ended: bool = False) -> asyncio.Task[None]:
        task = asyncio.create_task(self._write(op, ended))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return task

    def _store_op(
        self,
        row: tuple[Any, ...],
        also: Callable[[sqlite3.Connection], None] | None = None,
        forgiving: bool = False,
    ) -> None:
        """Upsert an operation's row, and run `also` in the same transaction. A `forgiving` one
        (the record of an end) that fails is logged and undone alone: the end itself is kept."""
        with self.store.transaction() as conn:
            self._upsert(conn, row)
            if also is None:
                return
            if not forgiving:
                also(conn)
                return
            conn.execute("SAVEPOINT hook")
            try:
                also(conn)
            except Exception:
                log.exception("could not record the end of operation %s beside it", row[0])
                conn.execute("ROLLBACK TO hook")
            conn.execute("RELEASE hook")

    @staticmethod
    def _upsert(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
        conn.execute(
            "INSERT INTO operations (token, kind, session_id, user, status, percent,"
            " entry_id, errors, created_ns, started_ns, status_ns, finished_ns, expires_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET"
            " status = excluded.status, percent = MAX(percent, excluded.percent),"
            " entry_id = excluded.entry_id, errors = excluded.errors, started_ns = excluded.started_ns,"
            " status_ns = excluded.status_ns, finished_ns = excluded.finished_ns,"
            " expires_ns = excluded.expires_ns",
            row,
        )

    def _store_expired(self, tokens: list[str], now: int) -> None:
        with self.store.lock:
            conn = self.store.conn
            conn.executemany("UPDATE operations SET expired = 1 WHERE token = ?", [(t,) for t in tokens])
            _drop_tombstones(conn, now)

    def _load(self) -> list[Operation]:
        """Read the records; those not ended were cut off by a stop: Failed (interrupted) now."""
        now = time.time_ns()
        interrupted, lapsed = [], []
        with self.store.lock:
            conn = self.store.conn
            _drop_tombstones(conn, now)
            rows = conn.execute(
                "SELECT token, kind, session_id, user, status, percent, entry_id, errors, created_ns,"
                " started_ns, status_ns, finished_ns, expires_ns, expired FROM operations"
            ).fetchall()
        for row in rows:
            token, kind, session_id, user, status, percent, entry_id, errors, *times, expired = row
            op = Operation(token, Kind(kind), session_id, user, Status(status), entry_id)
            op.errors = [OperationError(e["objectId"], e["errorMessage"]) for e in orjson.loads(errors)]
            op.created_ns, op.started_ns, op.status_ns, op.finished_ns, op.expires_ns = times
            op.percent = percent
            if expired or (op.done and op.expires_ns <= now):
                self._tombstones[token] = (session_id, op.expires_ns)
                if not expired:
                    lapsed.append(token)  # expired while the server was down
                continue
            if not op.done:
                op.errors.append(OperationError(op.entry_id, INTERRUPTED))
                op.status, op.status_ns = Status.FAILED, now
                op.finished_ns, op.expires_ns = now, now + self.ttl_ns
                interrupted.append(op)
            op.ended.set()
            self._ops[token] = op
            heapq.heappush(self._expiries, (op.expires_ns, token))
        for op in interrupted:
            op.error_status = STOPPED_STATUS
            self._store_op(_row(op))
        if lapsed:
            self._store_expired(lapsed, now)
        return interrupted


def _copy_label(source: Entry, target_path: str) -> str:
    return f"Copy {source.path} → {target_path}"


def _drop_tombstones(conn: sqlite3.Connection, now: int) -> None:
    conn.execute("DELETE FROM operations WHERE expired = 1 AND expires_ns < ?", (now - TOMBSTONE_KEEP_NS,))


def _row(op: Operation) -> tuple[Any, ...]:
    errors = orjson.dumps([{"objectId": e.object_id, "errorMessage": e.message} for e in op.errors])
    return (
        op.token,
        op.kind.value,
        op.session_id,
        op.user,
        op.status.value,
        op.percent,
        op.entry_id,
        errors.decode(),
        op.created_ns,
        op.started_ns,
        op.status_ns,
        op.finished_ns,
        op.expires_ns,
    )


# how much lower the CPU priority of the work threads is than the event loop's (Linux schedules
# threads one by one): on a busy machine the loop answering polls goes first
WORK_THREAD_NICENESS = 5


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORK_THREAD_NICENESS)
    except OSError:
        pass  # not allowed here: the work simply competes as an equal


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
