"""The operations engine: every kind of long operation runs here, the same way.

The pattern of the Laserfiche Long Operations guide: starting one returns a token at once; the work
runs as one asyncio task per operation, whose blocking steps run in worker threads, a few at a time;
the token reports progress until the operation ends, and then its result, for `token_ttl_s` (15
minutes) before it expires.

- The per-session guard (`guard`): v1 runs one operation per session and refuses (or, in queue
  mode, queues) a second; v2 runs a configured number and queues the rest.
- Cancel records the intent, then stops the work between items and between chunks of a large
  file. What was done stays: a cancelled copy leaves a partial copy, a cancelled delete leaves
  what it had not reached.
- Records live in the store (`rows`). After a restart, finished operations stay readable until they
  expire (`tokens`); those that were running or waiting report Failed (interrupted), and their kind
  cleans up after them.

What an operation does is its kind's (`work.Work`; the kinds are in `server/kinds/`). No aiohttp
here: the API maps the errors raised (SandboxError subclasses) to responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..commits import GroupCommit
from ..errors import Conflict, SandboxError, ServiceUnavailable, from_os_error, from_store_error
from ..fsops import Stopped
from ..progress import Progress
from ..repository import Repository
from ..sessions import Session
from .guard import Admission, Concurrency, Guard
from .load import RequestLoad
from .records import (
    CANCELLED_STATUS,
    SHUT_DOWN,
    STOPPED_STATUS,
    TOKEN_TTL_S,
    Change,
    Hook,
    Kind,
    Operation,
    OperationError,
    Status,
)
from .rows import Rows, save_in, save_percents_in, snapshot
from .tokens import Tokens
from .work import Runner, Work

log = logging.getLogger("server.operations")

# a cancel waits this long for the operation to stop before answering anyway
CANCEL_WAIT_S = 10.0
# running operations' progress is stored this often, and shown once stored: percentComplete then
# never goes back, not even across a crash
PROGRESS_SAVE_S = 0.05


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
        load: RequestLoad | None = None,
    ) -> None:
        self.repository = repository
        # the rule of starts that name none (v1's and the Elements dialect's)
        self.admission = Admission.of(concurrency)
        self.pace_s = pace_s
        # long work gets threads of its own, so that it never starves the API's lookups
        executor = ThreadPoolExecutor(threads, thread_name_prefix="work", initializer=_lower_priority)
        self.rows = Rows(repository.store)
        # the records' writes, many operations' to a transaction (hundreds run side by side)
        self.commits = GroupCommit(repository.store)
        self.runner = Runner(repository, executor, processes, self.commits, load or RequestLoad())
        self.tokens = Tokens(self.rows, int(token_ttl_s * 1e9), self._expired)
        self.guard = Guard()
        self._kinds: dict[Kind, type[Work]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._saver: asyncio.Task[None] | None = None
        self._running = asyncio.Event()  # set while any operation runs
        # those in progress (what the progress saver looks at: not every token that still answers)
        self._in_progress: set[Operation] = set()
        self._writes: set[asyncio.Task[None]] = set()
        # synchronous work under way (requests wait on it)
        self._sync: set[Progress] = set()
        # the sandbox's controls: arms an operation's fault as it is accepted; hears of every change
        # of state and every rise of percentComplete (on the event loop, in order)
        self.arm: Callable[[Operation], None] | None = None
        self.listeners: list[Callable[[Operation], None]] = []
        self._closing = False
        self._closed = False

    def register(self, *kinds: type[Work]) -> None:
        """The kinds this engine runs (what it asks to clean up after a crash)."""
        for kind in kinds:
            self._kinds[kind.kind] = kind

    def progress(self, pace_s: float | None = None) -> Progress:
        """A new operation's progress: paced by `pace_s` (seconds per entry), else the server's pace."""
        return Progress(self.pace_s if pace_s is None else pace_s)

    # ---- life --------------------------------------------------------------------------

    async def open(self) -> None:
        """Read the stored operations (those cut off by a stop are Failed now); start expiring."""
        live, interrupted, tombstones = await asyncio.to_thread(
            self.rows.load, time.time_ns(), self.tokens.ttl_ns
        )
        self.tokens.load(live, tombstones)
        for op in interrupted:
            kind = self._kinds.get(op.kind)
            if kind is not None:
                await kind.recover(self.runner, op)
        for kind in self._kinds.values():
            await kind.tidy(self.runner, live)
        self._sweeper = asyncio.create_task(self.tokens.sweep(), name="token-sweeper")
        self._saver = asyncio.create_task(self._save_progress(), name="progress-saver")

    async def stop(self) -> None:
        """Refuse new operations and stop the running ones (Failed: shut down), recording how
        each ended. The server calls this as it begins to shut down, before waiting on requests."""
        self._closing = True
        for progress in self._sync:
            progress.stop.set()
        ops = self.tokens.all()
        tasks = [op.task for op in ops if op.task is not None and not op.task.done()]
        for op in ops:
            if not op.done:
                op.progress.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._writes, *self.tokens.writes, return_exceptions=True)

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
        await self.runner.close()

    # ---- starting ------------------------------------------------------------------------

    async def start(
        self, session: Session, work: Work, hook: Hook | None = None, admission: Admission | None = None
    ) -> Operation:
        """Accept checked work as an operation of the session (or refuse it: 429, 503), store
        it, and run it when the session's guard allows. The operation's token answers from here."""
        self._refuse_if_closing("start the operation again once it is back")
        admission = admission or self.admission
        self.guard.admit(session.id, admission)
        now = time.time_ns()
        op = Operation(
            str(uuid.uuid4()),
            work.kind,
            session.id,
            session.user,
            entry_id=work.entry_id,
            created_ns=now,
            status_ns=now,
            progress=work.progress,
            hook=hook,
            label=work.label,
            admission=admission,
            timeline=[Change(now, Status.NOT_STARTED, 0)],
        )
        if self.arm is not None:
            self.arm(op)
        self.tokens.add(op)
        self.guard.enter(op)
        try:
            # an accepted operation is on disk before its token is handed out
            await self._write(op, accepted=True)
        except BaseException:
            self.tokens.discard(op)
            self.guard.leave(op)
            self.guard.ended(op)  # (an operation accepted behind it meanwhile moves up)
            raise
        self._changed(op)
        if self._closing:
            op.error_status = STOPPED_STATUS
            self._end(op, Status.FAILED, SHUT_DOWN)
            await self._write(op, ended=True)
            return op
        op.task = asyncio.create_task(self._run(op, work), name=op.token)
        op.task.add_done_callback(lambda _: self._settled(op))
        return op

    async def run_now(self, work: Work, what: str) -> None:
        """Run work in the request that asked for it (a synchronous copy or delete): the same
        work, no token, no guard. A shutdown stops it too, and the request hears so."""
        self._refuse_if_closing("send the request again once it is back")
        self._sync.add(work.progress)
        try:
            await work.run(self.runner, _no_checkpoint)
        except BaseException:
            await asyncio.shield(work.unfinished(self.runner))
            raise
        finally:
            self._sync.discard(work.progress)
        if work.progress.stop.is_set():
            raise ServiceUnavailable(f"The server shut down during the {what}; what was done so far remains.")

    def _refuse_if_closing(self, then: str) -> None:
        if self._closing:
            raise ServiceUnavailable(f"The server is shutting down; {then}.")

    def _changed(self, op: Operation) -> None:
        for listener in self.listeners:
            try:
                listener(op)
            except Exception:
                log.exception("a listener failed on operation %s", op.token)

    # ---- reading and cancelling ---------------------------------------------------------

    def lookup(self, token: str) -> Operation | None:
        """The operation behind a token, whoever's it is, if it has not expired (for the
        dialects' own records that name it)."""
        return self.tokens.lookup(token)

    def get(self, session: Session, token: str) -> Operation:
        """The operation behind a token of this session's; 404 for anything else, saying so
        when the token was this session's and has expired."""
        return self.tokens.of_session(session.id, token)

    def of_session(self, session: Session) -> list[Operation]:
        """Every operation of the session whose token has not expired, oldest first."""
        now = time.time_ns()
        return [
            op
            for op in self.tokens.all()
            if op.session_id == session.id and (not op.expires_ns or now < op.expires_ns)
        ]

    @property
    def running(self) -> int:
        """Operations accepted and not yet ended (queued ones included)."""
        return self.guard.count

    def visible(self) -> list[Operation]:
        """Every operation whose token has not expired, oldest first."""
        return self.tokens.all()

    async def wait(self, op: Operation, timeout_s: float) -> None:
        """Until the operation has ended (its final state stored), or `timeout_s` has passed."""
        await self.wait_any([op], timeout_s)

    async def wait_any(self, ops: list[Operation], timeout_s: float) -> None:
        """Until one of the operations has ended (its final state stored), or `timeout_s` has passed."""
        if not ops or any(op.ended.is_set() for op in ops) or timeout_s <= 0:
            return
        waits = [asyncio.ensure_future(op.ended.wait()) for op in ops]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    def expire_now(self, op: Operation) -> None:
        """Expire an ended operation's token at once (a sandbox control); a running one never expires."""
        if not op.done:
            raise Conflict(
                f"Operation {op.token} is still {op.status.value}; tokens expire only after their "
                "operation ends.",
                title="The operation is still running.",
            )
        op.expires_ns = time.time_ns()
        self.tokens.expire([op])

    async def cancel(self, op: Operation) -> Operation:
        """Cancel an operation and wait (a little) for it to end; an ended one is left as it is."""
        self.begin_cancel(op)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_S):
                await op.ended.wait()
        return op

    def begin_cancel(self, op: Operation) -> None:
        """Start cancelling an operation, without waiting for it to stop (an ended one is left)."""
        if op.done:
            return
        op.cancel_requested = True  # recorded before the task hears of it: Cancelled, not Failed
        op.progress.stop.set()
        if op.task is not None:
            op.task.cancel()

    def _expired(self, ops: list[Operation]) -> None:
        """Tokens expired: their kinds drop what they kept for them (a bulk job's records)."""
        for op in ops:
            kind = self._kinds.get(op.kind)
            if kind is not None:
                task = asyncio.create_task(kind.expired(self.runner, op))
                self._writes.add(task)
                task.add_done_callback(self._writes.discard)

    # ---- running ---------------------------------------------------------------------------

    async def _run(self, op: Operation, work: Work) -> None:
        try:
            # queued: the session's earlier operations first, whichever of them ends when
            await self.guard.turn(op)
            self._set(op, Status.IN_PROGRESS)
            op.started_ns = op.status_ns
            self._running.set()
            self._changed(op)
            # not waited for: the work's own checkpoints are (and merge with it while it is queued)
            self._write_soon(op).add_done_callback(functools.partial(_logged, op))
            op.progress.check()  # a fault armed to fail after no entries at all
            await work.run(self.runner, functools.partial(self._checkpoint, op, work))
            if op.progress.stop.is_set():
                raise Stopped
            op.progress.check(ended=True)  # a fault armed for more entries than there were
            outcome: tuple[Status, str | None] = (Status.COMPLETED, None)
        except (asyncio.CancelledError, Stopped):
            # a cancel that came as the last entry was done stopped nothing: the work is complete
            outcome = (Status.COMPLETED, None) if op.progress.complete else self._stopped(op)
        except SandboxError as exc:
            op.error_status = exc.status
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
        self._take_result(op, work)
        self._end(op, *outcome)
        try:
            if op.status is not Status.COMPLETED:
                await asyncio.shield(work.unfinished(self.runner))
        finally:
            # cancellation (a shutdown) must not lose the final state
            await asyncio.shield(self._write_soon(op, ended=True))

    async def _checkpoint(self, op: Operation, work: Work) -> None:
        """Store the record as the work now names it (a copy's new folder, before anything is
        copied into it: after a crash, the interrupted operation shows where its partial copy is)."""
        if (op.entry_id, op.label) != (work.entry_id, work.label):
            op.entry_id, op.label = work.entry_id, work.label
            await self._write(op)

    @staticmethod
    def _take_result(op: Operation, work: Work) -> None:
        op.entry_id, op.label, op.result = work.entry_id, work.label, dict(work.result)
        op.errors += [OperationError(op.entry_id, note) for note in work.notes]

    def _set(self, op: Operation, status: Status) -> None:
        op.status = status
        op.status_ns = time.time_ns()
        if status is Status.IN_PROGRESS:
            self._in_progress.add(op)
        else:
            self._in_progress.discard(op)
        op.timeline.append(Change(op.status_ns, status, op.percent))

    def _end(self, op: Operation, status: Status, error: str | None = None) -> None:
        op.percent = 100 if status is Status.COMPLETED else max(op.percent, op.progress.percent)
        if error is not None:
            op.errors.append(OperationError(op.entry_id, error))
        self._set(op, status)
        op.finished_ns = op.status_ns
        op.expires_ns = op.finished_ns + self.tokens.ttl_ns
        self.guard.leave(op)
        self.tokens.due(op)

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

    # ---- progress ---------------------------------------------------------------------------

    async def _save_progress(self) -> None:
        """While operations run, store how far each has come, then show that."""
        while True:
            await self._running.wait()
            await asyncio.sleep(PROGRESS_SAVE_S)
            running = list(self._in_progress)
            if not running:
                self._running.clear()
                continue
            rising = [(op, op.progress.percent) for op in running]
            rising = [(op, p) for op, p in rising if p > op.percent]
            if rising:
                try:
                    percents = [(p, op.token) for op, p in rising]
                    await self.commits.write(functools.partial(save_percents_in, rows=percents))
                except Exception:
                    log.exception("could not store the operations' progress")
                    continue
                for op, percent in rising:
                    if not op.done and percent > op.percent:
                        op.percent = percent
                        self._changed(op)

    # ---- persistence ---------------------------------------------------------------------

    async def _write(self, op: Operation, ended: bool = False, accepted: bool = False) -> None:
        """Store the operation as it is now (with its hook's record, when it is accepted and when
        it ends). Its writes are committed in the order they are made, each with the snapshot taken
        as it is made, so that the last state is the one stored; a plain one still queued when the
        next is made is replaced by it."""
        also = None
        if op.hook is not None and (accepted or ended):
            record = op.hook.ended if ended else op.hook.accepted
            also = functools.partial(record, op)
        save = functools.partial(save_in, row=snapshot(op), also=also, forgiving=ended)
        try:
            await self.commits.write(save, record=op.token, whole=also is None)
        finally:
            if ended and not op.ended.is_set():
                # what the work did, entry by entry, was for the record of its end (an event's
                # webhook lists it): not kept while the token lives on (a 10,000-file copy's log is
                # thousands of lists for the collector to walk again and again)
                op.progress.changes = []
                op.ended.set()  # even if the store failed: nobody may wait on it forever
                self.guard.ended(op)
                self._changed(op)

    def _write_soon(self, op: Operation, ended: bool = False) -> asyncio.Task[None]:
        task = asyncio.create_task(self._write(op, ended))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return task


async def _no_checkpoint() -> None:
    """Synchronous work has no record to store."""


def _logged(op: Operation, write: asyncio.Task[None]) -> None:
    """A write nobody waits for: its failure is logged (the next write stores the state anyway)."""
    if not write.cancelled() and (failure := write.exception()) is not None:
        log.error("could not store operation %s", op.token, exc_info=failure)


# how much lower the CPU priority of the work threads is than the event loop's (Linux schedules
# threads one by one): on a busy machine the loop answering polls goes first
WORK_THREAD_NICENESS = 5


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORK_THREAD_NICENESS)
    except OSError:
        pass  # not allowed here: the work simply competes as an equal
