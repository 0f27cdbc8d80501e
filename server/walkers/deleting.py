"""Delete: a document, or a folder: its files as the scan lists them, then each folder after its
subfolders."""

from __future__ import annotations

import collections
import errno
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import fsops
from ..errors import Conflict
from ..progress import WAIT, Order, Progress, Step
from ..repository import (
    Entry,
    Repository,
)
from .batches import UnlinkBatch, unlink_batch
from .walk import DELETE_BATCH, MAX_OPEN_FOLDERS, Walk, open_child, shown_path

if TYPE_CHECKING:
    from ..copyworker import Workers


@dataclass
class _Doomed:
    """One folder of the tree being deleted (listed breadth first: after the folder it is in)."""

    parts: tuple[str, ...]
    row_id: int | None  # its id, None if the store never met it (nor anything below it)
    parent_id: int | None
    files: list[str] = field(default_factory=list)
    # which of its files are shortcuts' placeholders (removed, but not logged: see `_unlink`)
    shortcuts: set[str] = field(default_factory=set)


class DeleteWalk(Walk):
    """Delete an entry: a document, or a folder (its files as the scan lists them, breadth first,
    then the folders, each after all of its subfolders)."""

    def __init__(
        self,
        repository: Repository,
        target: Entry,
        progress: Progress,
        workers: Callable[[], Workers | None] = lambda: None,
    ) -> None:
        super().__init__(repository, progress, workers)
        self.target = target
        self._tree: list[_Doomed] = []
        # how many folders of _tree the scan has listed (in order), whether it has ended, and
        # whether it listed everything (a scan that failed or stopped leaves every folder be)
        self._listed = 0
        self._scan_ended = False
        self._scan_complete = False

    # ---- scan --------------------------------------------------------------------------

    def scan(self) -> None:
        """List what will go, breadth first; blocking. Runs beside `steps`, which follows it."""
        try:
            if self.target.is_dir:
                self._scan_tree()
            else:
                self.progress.plan(1, 0)
                self._scan_complete = True
        finally:
            self._scan_ended = True

    def _scan_tree(self) -> None:
        target = self.target
        self._tree.append(_Doomed(target.parts, target.id, target.parent_id))
        files = 0
        # each pending folder: its index, and a descriptor opened from its parent's while fewer
        # than MAX_OPEN_FOLDERS are held (None: opened again from the root)
        pending: collections.deque[tuple[int, int | None]] = collections.deque([(0, None)])
        try:
            while pending:
                if self.progress.stop.is_set():
                    return
                index, fd = pending.popleft()
                node = self._tree[index]
                if fd is None:
                    try:
                        fd = fsops.open_dir(self.root_fd, node.parts)
                    except fsops.Gone:
                        self._listed = index + 1  # (gone with its contents: nothing to do)
                        continue
                try:
                    known = self.repository.child_rows(node.row_id)
                    with os.scandir(fd) as listing:
                        for item in listing:
                            name = item.name
                            # all goes with its folder, entry or not (a symlink is unlinked,
                            # never followed)
                            if item.is_dir(follow_symlinks=False):
                                row = known.get(name)
                                child = _Doomed((*node.parts, name), row.id if row else None, node.row_id)
                                self._tree.append(child)
                                child_fd = None
                                if len(pending) < MAX_OPEN_FOLDERS:
                                    child_fd = open_child(fd, name)
                                pending.append((len(self._tree) - 1, child_fd))
                            else:
                                node.files.append(name)
                                row = known.get(name)
                                if row is not None and row.target is not None:
                                    node.shortcuts.add(name)
                finally:
                    os.close(fd)
                files += len(node.files)
                self._listed = index + 1
                self._use_workers(files)
        finally:
            for _, fd in pending:
                if fd is not None:
                    os.close(fd)
        self.progress.plan(len(self._tree) + files, 0)
        self._scan_complete = True

    # ---- steps -------------------------------------------------------------------------

    def steps(self) -> Iterator[Step]:
        target = self.target
        if not target.is_dir:
            shortcuts = [{target.name} if target.is_shortcut else set()]
            batch: UnlinkBatch = [(target.parts[:-1], target.parent_id, [target.name])]
            yield functools.partial(self._unlink, batch, shortcuts), Order.FIRST
            return
        # every folder's files as they are listed (batches span folders, and run side by side),
        # then the folders, each after all of its subfolders
        batch, shortcuts, files = [], [], 0
        index = 0
        while True:
            if index >= self._listed and not self._scan_ended and batch:
                # what is gathered goes now rather than wait for the scan
                yield functools.partial(self._unlink, batch, shortcuts), Order.ANY
                batch, shortcuts, files = [], [], 0
            while index >= self._listed and not self._scan_ended:
                yield WAIT
            if index >= self._listed:
                break
            node = self._tree[index]
            start = 0
            while start < len(node.files):
                names = node.files[start : start + DELETE_BATCH - files]
                batch.append((node.parts, node.row_id, names))
                shortcuts.append(node.shortcuts)
                files += len(names)
                start += len(names)
                if files >= DELETE_BATCH:
                    yield functools.partial(self._unlink, batch, shortcuts), Order.ANY
                    batch, shortcuts, files = [], [], 0
            index += 1
        if batch:
            yield functools.partial(self._unlink, batch, shortcuts), Order.ANY
        if self._scan_complete:
            # only once every file is gone: a folder still being emptied cannot be removed
            yield self._remove_folders, Order.ALONE

    def _unlink(self, batch: UnlinkBatch, shortcuts: list[set[str]]) -> None:
        """Remove a batch of files, and their rows. The log (what the Elements hub reports) leaves
        out shortcuts, which the hub does not show."""
        done: list[list[str]] = []
        failure: BaseException | None = None
        try:
            if self.pool is not None:
                done, failure = self.pool.unlink(batch)  # their rows too
            else:
                unlink_batch(self.root_fd, batch, done, self.progress)
        except BaseException as exc:
            failure = exc
        finally:
            if self.pool is None:  # (a worker process forgets the rows itself)
                self.repository.forget_names(
                    [(folder_id, gone) for (_, folder_id, _), gone in zip(batch, done, strict=False)]
                )
            for (parts, _, _), gone, skip in zip(batch, done, shortcuts, strict=False):
                self.progress.log(parts, [name for name in gone if name not in skip] if skip else gone, False)
            if self.pool is not None:  # (in a thread, unlink_batch counted each file)
                self.progress.add(entries=sum(len(gone) for gone in done))
        if failure is not None and not isinstance(failure, fsops.Gone):  # gone: went with its contents
            raise failure

    def _remove_folders(self) -> None:
        removed: dict[int, list[str]] = {}
        try:
            for node in reversed(self._tree):
                if self.progress.stop.is_set():
                    return
                try:
                    with fsops.folder(self.root_fd, node.parts[:-1]) as fd:
                        os.rmdir(node.parts[-1], dir_fd=fd)
                except (fsops.Gone, FileNotFoundError):
                    pass
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                    raise Conflict(
                        f"The folder '{shown_path(node.parts)}' was not empty when the delete came to "
                        "remove it: something was put into it meanwhile. What was deleted stays deleted."
                    ) from None
                if node.parent_id is not None:
                    removed.setdefault(node.parent_id, []).append(node.parts[-1])
                self.progress.log(node.parts[:-1], [node.parts[-1]], True)
                self.progress.add(entries=1)
        finally:
            # (their rows go at once, whatever stopped the removal)
            self.repository.forget_names(list(removed.items()))
