"""Copy: an entry (a folder with everything below it, a document, a shortcut) into a folder.

The blocking half is `walkers.CopyWalk`: its scan lists the source breadth first while the copy
follows it folder by folder, a batch of files per step. What a stopped or failed copy made stays
(a partial copy); only part files, never complete, are cleared.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from .. import walkers
from ..metadata.carry import end_run
from ..operations import Admission, Hook, Kind, Operation, Operations, Runner, Work
from ..progress import Progress
from ..repository import Entry
from ..sessions import Session


class CopyWork(Work):
    kind = Kind.COPY

    def __init__(self, walk: walkers.CopyWalk) -> None:
        super().__init__(walk.progress, _label(walk.source, walk.parent.child_path(walk.name)))
        self.walk = walk

    @classmethod
    async def prepare(
        cls,
        operations: Operations,
        user: str,
        source_id: int,
        parent_id: int,
        name: str,
        auto_rename: bool,
        progress: Progress,
        checked: tuple[Entry, Entry] | None = None,
    ) -> CopyWork:
        """The copy, once checked: a missing entry (404), a copy into itself (400) and a taken name
        without autoRename (409) are refused here, before anything is accepted. (On the default
        threads: a check never queues behind copy batches.) `checked`: the source and the folder,
        as `Repository.check_copy` has just returned them to a caller that checked in a thread hop
        of its own."""
        repository = operations.repository
        if checked is None:
            checked = await asyncio.to_thread(repository.check_copy, source_id, parent_id, name, auto_rename)
        source, parent = checked
        walk = walkers.CopyWalk(
            repository, source, parent, name, auto_rename, user, progress, operations.runner.workers
        )
        return cls(walk)

    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        """Scan and copy side by side (the copy follows the scan folder by folder)."""
        walk, progress = self.walk, self.progress

        async def after_barrier() -> None:
            # once the copy's top exists, the record names it before anything goes into it
            if self._take_top():
                await checkpoint()

        scan = asyncio.ensure_future(runner.in_thread(walk.scan))
        try:
            try:
                await runner.drive(walk.steps(), progress, lambda: walk.width, after_barrier, scan)
            except BaseException:
                progress.stop.set()  # the scan too stops at its next folder
                await asyncio.wait([scan])
                if not scan.cancelled():
                    scan.exception()  # retrieved: what the copy raised is what counts
                raise
            await scan  # a scan that failed (a folder gone) fails the copy
        finally:
            self._take_top()
            await runner.commits.write(functools.partial(end_run, run=walk.run.key))
            gone = "went away from the source during the copy; skipped"
            self.notes = [f"'{path}' {gone}." for path in walk.skipped]

    def _take_top(self) -> bool:
        """Name the copy's top entry (and the name autoRename gave it), once made; whether it changed."""
        made = self.walk.result
        if made is None or made.id == self.entry_id:
            return False
        self.entry_id = made.id
        self.label = _label(self.walk.source, made.path)
        # (a copy that stops early names its partial copy)
        self.result = {"uri": f"/Entries/{made.id}"}
        return True

    async def unfinished(self, runner: Runner) -> None:
        # a batch cut short (a worker process that died) may have left a part file
        if self.entry_id:
            await asyncio.to_thread(walkers.remove_parts, runner.repository, self.entry_id)

    @classmethod
    async def recover(cls, runner: Runner, op: Operation) -> None:
        # a crash mid-copy may have left part files in the partial copy
        if op.entry_id:
            await runner.in_thread(walkers.remove_parts, runner.repository, op.entry_id)


async def start_copy(
    operations: Operations,
    session: Session,
    source_id: int,
    parent_id: int,
    name: str,
    auto_rename: bool,
    *,
    hook: Hook | None = None,
    pace_s: float | None = None,
    admission: Admission | None = None,
    checked: tuple[Entry, Entry] | None = None,
) -> Operation:
    """Check a copy, then accept it as an operation of the session (see `Operations.start`).
    `checked`: see `CopyWork.prepare`."""
    progress = operations.progress(pace_s)
    work = await CopyWork.prepare(
        operations, session.user, source_id, parent_id, name, auto_rename, progress, checked
    )
    return await operations.start(session, work, hook, admission)


async def copy_now(
    operations: Operations,
    user: str,
    source_id: int,
    parent_id: int,
    name: str,
    auto_rename: bool,
    pace_s: float | None = None,
    checked: tuple[Entry, Entry] | None = None,
) -> Entry:
    """A synchronous copy (a create-children or Folder/Copy route, the Elements hub without
    Elements-Async-Request): the same walk, in the request. Returns the copy. (`checked`: see
    `CopyWork.prepare`.)"""
    progress = operations.progress(pace_s)
    work = await CopyWork.prepare(
        operations, user, source_id, parent_id, name, auto_rename, progress, checked
    )
    await operations.run_now(work, "copy")
    assert work.walk.result is not None
    return await asyncio.to_thread(operations.repository.entry, work.walk.result.id)


def _label(source: Entry, target_path: str) -> str:
    return f"Copy {source.path} → {target_path}"
