"""Copy: an entry (a folder with everything below it, a document, a shortcut) into a folder, the
scan listing the source breadth first while the copy follows it folder by folder."""

from __future__ import annotations

import collections
import errno
import functools
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import fsops
from ..errors import NotFound
from ..metadata.carry import CopyRun
from ..progress import WAIT, Order, Progress, Step
from ..repository import (
    Entry,
    Known,
    Repository,
    Target,
    candidates,
    check_depth,
    kept_extension,
    name_problem,
)
from .batches import Batch, BatchItem, Copied, chunk_counter, copied_rows, copy_batch
from .walk import BATCH_BYTES, BATCH_FILES, MAX_OPEN_FOLDERS, Walk, shown_path, unlink_quietly

if TYPE_CHECKING:
    from ..copyworker import Workers


@dataclass
class _Source:
    """One folder of the tree being copied."""

    parts: tuple[str, ...]
    parent: int  # index of the folder it is in (-1 for the top)
    copy_name: str  # its name in the copy
    source_id: int | None  # its id if it has metadata to carry (else None)
    # documents (see BatchItem)
    files: list[BatchItem] = field(default_factory=list)
    # shortcuts: (name in the copy, target, id): made anew, pointing where the originals point
    shortcuts: list[tuple[str, Target, int | None]] = field(default_factory=list)


class CopyWalk(Walk):
    """Copy an entry (a folder with everything below it, or a document) into a folder.

    The scan and the copy run side by side: the scan lists folders breadth first, and the copy
    of each folder starts once it is listed. percentComplete counts from when the scan is done.
    """

    def __init__(
        self,
        repository: Repository,
        source: Entry,
        parent: Entry,
        name: str,
        auto_rename: bool,
        creator: str,
        progress: Progress,
        workers: Callable[[], Workers | None] = lambda: None,
    ) -> None:
        super().__init__(repository, progress, workers)
        self.source, self.parent, self.name = source, parent, name
        self.auto_rename, self.creator = auto_rename, creator
        self._tree: list[_Source] = [_Source(source.parts, -1, name, source.id)]
        # the copy carries its entries' metadata (see metadata.carry)
        self.run = CopyRun(secrets.token_hex(8), source.id)
        # how many folders of _tree the scan has listed (in order), and whether it has ended
        self._listed = 0
        self._scan_ended = False
        # index of a _Source -> the folder that is its copy, once created
        self._copies: dict[int, Entry] = {}
        # (device, inode) of the copy's top folder, once made
        self._own: tuple[int, int] | None = None
        self.skipped: list[str] = []
        self.result: Entry | None = None

    # ---- scan --------------------------------------------------------------------------

    def scan(self) -> None:
        """List the source, breadth first; blocking. Runs beside `steps`, which follows it."""
        try:
            if self.source.is_dir:
                self._scan_tree()
            else:
                self.progress.plan(1, self.source.size)
        finally:
            self._scan_ended = True

    def _scan_tree(self) -> None:
        entries, size, small = 1, 0, 0
        # each pending folder: its index, its id (None if the store never met it), and a
        # descriptor opened from its parent's while fewer than MAX_OPEN_FOLDERS are held
        pending: collections.deque[tuple[int, int | None, int | None]] = collections.deque()
        pending.append((0, self.source.id, None))
        try:
            while pending:
                if self.progress.stop.is_set():
                    return
                index, row_id, fd = pending.popleft()
                node = self._tree[index]
                if fd is None:
                    fd = self._open(node.parts)
                try:
                    known = self.repository.child_rows(row_id, metadata=True)
                    taken: set[str] = set()
                    device = os.fstat(fd).st_dev
                    for item, is_dir in sorted(fsops.items(fd), key=lambda i: i[0].name):
                        source_name = item.name
                        if name_problem(source_name) or (is_dir and (device, item.inode()) == self._own):
                            # (the copy itself, if its destination was moved into the source
                            # since: a copy never copies its own output)
                            continue
                        copy_name = _distinct(source_name, is_dir, taken)
                        child_id, ext, target, carried, template_id = known.get(source_name, Known())
                        # what the copy carries metadata from (a source without any: nothing)
                        carry_id = child_id if carried else None
                        entries += 1
                        if target is not None and not is_dir:
                            node.shortcuts.append((copy_name, target, carry_id))
                        elif is_dir:
                            depth = len(self.parent.parts) + 1 + len(node.parts) + 1 - len(self.source.parts)
                            check_depth(
                                depth, f"Copying the folder '{shown_path((*node.parts, source_name))}'"
                            )
                            self._tree.append(_Source((*node.parts, source_name), index, copy_name, carry_id))
                            child_fd = None
                            if len(pending) < MAX_OPEN_FOLDERS:
                                child_fd = self._open_child(fd, source_name)
                            pending.append((len(self._tree) - 1, child_id, child_fd))
                        else:
                            st = item.stat(follow_symlinks=False)
                            if ext is not None:
                                ext = kept_extension(copy_name, ext)
                            node.files.append(
                                (source_name, copy_name, st.st_size, ext, carry_id, template_id)
                            )
                            size += st.st_size
                            small += st.st_size <= fsops.COPY_CHUNK
                finally:
                    os.close(fd)
                # breadth first, so folders are listed in the order they were found
                self._listed = index + 1
                self._use_workers(small)
        finally:
            for _, _, fd in pending:
                if fd is not None:
                    os.close(fd)
        self.progress.plan(entries, size)

    def _open(self, parts: tuple[str, ...]) -> int:
        try:
            return fsops.open_dir(self.root_fd, parts)
        except fsops.Gone:
            raise NotFound(f"The folder '{shown_path(parts)}' went away while it was being copied.") from None

    def _open_child(self, fd: int, name: str) -> int | None:
        try:
            return os.open(name, fsops.DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None  # changed since listed; opening it again later will tell
            raise

    # ---- steps -------------------------------------------------------------------------

    def steps(self) -> Iterator[Step]:
        """The copy's steps, following the scan: WAIT while the next folder is not listed yet."""
        if not self.source.is_dir:
            yield (self._copy_shortcut if self.source.is_shortcut else self._copy_document), Order.FIRST
            return
        index = 0
        while True:
            while index >= self._listed and not self._scan_ended:
                yield WAIT
            if index >= self._listed:
                return  # the scan ended (or failed: the operation hears of it from the scan)
            node = self._tree[index]
            # a folder is made just before its files: the first files are on their way sooner
            yield functools.partial(self._make_folder, index), Order.FIRST
            if node.shortcuts:
                yield functools.partial(self._make_shortcuts, index), Order.ANY
            batch: Batch = []
            batch_bytes = 0
            for item in node.files:
                batch.append(item)
                batch_bytes += item[2]
                if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                    yield functools.partial(self._copy_files, index, batch), Order.ANY
                    batch, batch_bytes = [], 0
            if batch:
                yield functools.partial(self._copy_files, index, batch), Order.ANY
            index += 1

    def _make_folder(self, index: int) -> None:
        node = self._tree[index]
        # (below the top, the scan said whether the source has metadata)
        then = self.run.then(node.source_id, checked=index > 0)
        if index == 0:
            made = self.repository.create_folder(
                self.parent.id, self.name, self.auto_rename, self.creator, then
            )
            with fsops.folder(self.root_fd, made.parts) as fd:
                st = os.fstat(fd)
            self._own = (st.st_dev, st.st_ino)
            self.result = made
        else:
            # the copy's folder is new: only a name put there by hand meanwhile can clash
            made = self.repository.create_folder(
                self._copies[node.parent].id, node.copy_name, True, self.creator, then
            )
        self._copies[index] = made
        self.progress.log(made.parts[:-1], [made.name], True)
        self.progress.add(entries=1)

    def _make_shortcuts(self, index: int) -> None:
        node, copy = self._tree[index], self._copies[index]
        for name, target, source_id in node.shortcuts:
            if self.progress.stop.is_set():
                return
            # (the copy's folder is new: only a name put there by hand meanwhile can clash; not
            # logged: the Elements hub, which reports the log, does not show shortcuts)
            then = self.run.then(source_id, checked=True)
            self.repository.make_shortcut(copy.id, name, target, True, self.creator, then)
            self.progress.add(entries=1)

    def _copy_shortcut(self) -> None:
        """A shortcut copied on its own is a new shortcut to the same target."""
        assert self.source.target is not None
        self.result = self.repository.make_shortcut(
            self.parent.id,
            self.name,
            self.source.target,
            self.auto_rename,
            self.creator,
            self.run.then(self.source.id),
        )
        self.progress.add(entries=1)  # (not logged: see _make_shortcuts)

    def _copy_files(self, index: int, batch: Batch) -> None:
        node, copy = self._tree[index], self._copies[index]
        # part names: one random stem per batch, numbered per file
        stem = f"{fsops.PART_PREFIX}{secrets.token_hex(6)}-"
        done: list[Copied] = []
        failure: BaseException | None = None
        in_worker = False
        try:
            if self.pool is not None and all(item[2] <= fsops.COPY_CHUNK for item in batch):
                # small files: copied (and recorded) by a worker process, beside the other
                # worker: no GIL shared with the server
                in_worker = True
                done, failure = self.pool.copy(
                    node.parts, copy.parts, batch, stem, copy.id, self.creator, self.run
                )
            else:
                copy_batch(self.root_fd, node.parts, copy.parts, batch, stem, done, self.progress)
        except BaseException as exc:
            failure = exc
        finally:
            if not in_worker:  # (a worker process records its own rows)
                self.repository.record_documents(copy.id, copied_rows(batch, done), self.creator, self.run)
            self.skipped += [shown_path((*node.parts, source)) for source, final, _, _ in done if not final]
            self.progress.log(copy.parts, [final for _, final, _, _ in done if final], False)
            if in_worker:  # (in a thread, copy_batch counted each file as it went)
                self.progress.add(entries=len(done), size=sum(size for _, _, size, _ in done))
        if isinstance(failure, fsops.Gone):
            raise NotFound(
                f"The folder '{shown_path(node.parts)}' or its copy went away while it was being copied."
            )
        if failure is not None:
            raise failure

    def _copy_document(self) -> None:
        """A document copied on its own goes through the store's temporary folder, then is
        published under `name` (autoRename and conflicts as for an import)."""
        repository = self.repository
        entry, src = repository.open_document(self.source.id)
        try:
            tmp, out = repository.new_temp()
            try:
                try:
                    fsops.copy_bytes(src, out, entry.size, chunk_counter(self.progress))
                finally:
                    os.close(out)
                if self.progress.stop.is_set():
                    raise fsops.Stopped  # stopped after the last chunk: not published
                ext = kept_extension(self.name, entry.ext)
                self.result = repository.import_document(
                    self.parent.id,
                    self.name,
                    tmp,
                    self.auto_rename,
                    self.creator,
                    ext,
                    self.run.then(self.source.id),
                )
                self.progress.log(self.parent.parts, [self.result.name], False)
                self.progress.add(entries=1)
            finally:
                repository.discard_temp(tmp)
        finally:
            os.close(src)


def _distinct(name: str, is_dir: bool, taken: set[str]) -> str:
    """`name`, or `name (2)`… when a sibling already took it in another case (Laserfiche names
    are case-insensitive; such twins can only have been put into the source by hand)."""
    key = name.casefold()
    if key not in taken:
        taken.add(key)
        return name
    for candidate in candidates(name, is_dir, True):
        key = candidate.casefold()
        if key not in taken:
            taken.add(key)
            return candidate
    raise AssertionError("unreachable: candidates never run out before MAX_AUTO_RENAME")


def remove_parts(repository: Repository, top_id: int) -> int:
    """Remove the part files a crashed copy left in the tree it was writing; returns how many."""
    try:
        top = repository.entry(top_id)
    except NotFound:
        return 0
    if not top.is_dir:
        return 0
    removed = 0
    pending = [top.parts]
    while pending:
        parts = pending.pop()
        try:
            fd = fsops.open_dir(repository.store.root_fd, parts)
        except fsops.Gone:
            continue
        try:
            with os.scandir(fd) as it:
                for item in it:
                    if item.name.startswith(fsops.PART_PREFIX) and item.is_file(follow_symlinks=False):
                        unlink_quietly(fd, item.name)
                        removed += 1
                    elif item.is_dir(follow_symlinks=False):
                        pending.append((*parts, item.name))
        finally:
            os.close(fd)
    return removed
