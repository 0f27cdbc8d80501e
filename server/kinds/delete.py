"""Delete: an entry, a folder bottom-up (its files first, then each folder after its subfolders).

The blocking half is `walkers.DeleteWalk`: a scan of what will go (totals for percentComplete),
then the removal, a batch of files per step. A stopped delete leaves what it had not reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .. import walkers
from ..errors import NotFound
from ..operations import Admission, Hook, Kind, Operation, Operations, Runner, Work
from ..progress import Change, Progress
from ..sessions import Session


class DeleteWork(Work):
    kind = Kind.DELETE

    @classmethod
    async def prepare(cls, operations: Operations, entry_id: int, progress: Progress) -> DeleteWork:
        """The delete, once checked: the root (400) and an id never issued (404) are refused here.
        An id issued but gone by now is accepted, and the delete then fails saying so (the official
        clients delete a folder and then at once its child)."""
        target = await asyncio.to_thread(operations.repository.check_delete, entry_id)
        label = f"Delete {target.path if target else f'entry {entry_id}'}"
        return cls(progress, label, entry_id)

    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        """Scan what the delete will remove, and remove it as the scan goes."""
        try:
            target = await asyncio.to_thread(runner.repository.entry, self.entry_id)
        except NotFound:
            raise NotFound(f"Entry {self.entry_id} no longer exists; there was nothing to delete.") from None
        walk = walkers.DeleteWalk(runner.repository, target, self.progress, runner.workers)
        # the removal follows the scan folder by folder
        scan = asyncio.ensure_future(runner.in_thread(walk.scan))
        try:
            await runner.drive(walk.steps(), self.progress, lambda: walk.width, scan=scan)
        except BaseException:
            self.progress.stop.set()  # the scan too stops at its next folder
            await asyncio.wait([scan])
            if not scan.cancelled():
                scan.exception()  # retrieved: what the removal raised is what counts
            raise
        await scan  # a scan that failed fails the delete (what it had removed stays removed)


async def start_delete(
    operations: Operations,
    session: Session,
    entry_id: int,
    *,
    hook: Hook | None = None,
    pace_s: float | None = None,
    admission: Admission | None = None,
) -> Operation:
    """Check a delete, then accept it as an operation of the session (see `Operations.start`)."""
    work = await DeleteWork.prepare(operations, entry_id, operations.progress(pace_s))
    return await operations.start(session, work, hook, admission)


async def delete_now(operations: Operations, entry_id: int, pace_s: float | None = None) -> list[Change]:
    """A synchronous delete (the Elements hub without Elements-Async-Request): the same walk, in
    the request. Returns what it removed."""
    work = await DeleteWork.prepare(operations, entry_id, operations.progress(pace_s))
    await operations.run_now(work, "delete")
    return work.progress.changes
