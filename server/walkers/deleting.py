"""Delete: a document, or a folder bottom-up (files first, then each folder)."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import fsops
from ..errors import Conflict
from ..progress import Order, Progress, Step
from ..repository import (
    Entry,
    Known,
    Repository,
)
from .batches import unlink_batch
from .walk import DELETE_BATCH, Walk, shown_path

if TYPE_CHECKING:
    from ..copyworker import Workers


@dataclass
class _Doomed:
    """One folder of the tree being deleted, listed after all of its subfolders."""

    parts: tuple[str, ...]
    row_id: int | None  # its id, None if the store never met it (nor anything below it)
    parent_id: int | None
    files: list[str]
    # which of its files are shortcuts' placeholders (removed, but not logged: see `_unlink`)
    shortcuts: set[str] = field(default_factory=set)


class DeleteWalk(Walk):
    """Delete an entry: a document, or a folder bottom-up (files first, then each folder)."""

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

    def scan(self) -> None:
        if not self.target.is_dir:
            self.progress.plan(1, 0)
            return
        # folders in pre-order, reversed below: every folder then comes after all of its subfolders
        order: list[_Doomed] = []
        pending: list[tuple[tuple[str, ...], int | None, int | None]] = [
            (self.target.parts, self.target.id, self.target.parent_id)
        ]
        while pending:
            if self.progress.stop.is_set():
                return
            parts, row_id, parent_id = pending.pop()
            try:
                fd = fsops.open_dir(self.root_fd, parts)
            except fsops.Gone:
                continue
            node = _Doomed(parts, row_id, parent_id, [])
            known = self.repository.child_rows(row_id)
            try:
                with os.scandir(fd) as it:
                    for item in it:
                        # all goes with its folder, entry or not (a symlink is unlinked, never followed)
                        if item.is_dir(follow_symlinks=False):
                            child_id = known.get(item.name, Known()).id
                            pending.append(((*parts, item.name), child_id, row_id))
                        else:
                            node.files.append(item.name)
                            if known.get(item.name, Known()).target is not None:
                                node.shortcuts.add(item.name)
            finally:
                os.close(fd)
            order.append(node)
        order.reverse()
        self._tree = order
        files = sum(len(n.files) for n in order)
        self.progress.plan(len(order) + files, 0)
        self._use_workers(files)

    def steps(self) -> Iterator[Step]:
        target = self.target
        if not target.is_dir:
            shortcut = {target.name} if target.is_shortcut else set()
            unlink = functools.partial(
                self._unlink, target.parts[:-1], target.parent_id, [target.name], shortcut
            )
            yield unlink, Order.FIRST
            return
        # every folder's files first (batches of different folders may run side by side), then
        # the folders, each after all of its subfolders
        for node in self._tree:
            for start in range(0, len(node.files), DELETE_BATCH):
                batch = node.files[start : start + DELETE_BATCH]
                unlink = functools.partial(self._unlink, node.parts, node.row_id, batch, node.shortcuts)
                yield unlink, Order.ANY
        # only once every file is gone: a folder still being emptied cannot be removed
        yield self._remove_folders, Order.ALONE

    def _unlink(
        self, parts: tuple[str, ...], folder_id: int | None, names: list[str], shortcuts: set[str]
    ) -> None:
        """Remove a batch of files from a folder, and their rows. The log (what the Elements hub
        reports) leaves out shortcuts, which the hub does not show."""
        gone: list[str] = []
        failure: BaseException | None = None
        try:
            if self.pool is not None:
                gone, failure = self.pool.unlink(parts, names, folder_id)  # their rows too
            else:
                unlink_batch(self.root_fd, parts, names, gone, self.progress)
        except BaseException as exc:
            failure = exc
        finally:
            if self.pool is None:  # (a worker process forgets the rows itself)
                self.repository.forget_names(folder_id, gone)
            self.progress.log(parts, [name for name in gone if name not in shortcuts], False)
            if self.pool is not None:  # (in a thread, unlink_batch counted each file)
                self.progress.add(entries=len(gone))
        if failure is not None and not isinstance(failure, fsops.Gone):  # gone: went with its contents
            raise failure

    def _remove_folders(self) -> None:
        for node in self._tree:
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
                    f"The folder '{shown_path(node.parts)}' was not empty when the delete came to remove it: "
                    "something was put into it meanwhile. What was deleted stays deleted."
                ) from None
            self.repository.forget_names(node.parent_id, [node.parts[-1]])
            self.progress.log(node.parts[:-1], [node.parts[-1]], True)
            self.progress.add(entries=1)
