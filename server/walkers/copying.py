"""Copy: an entry (a folder with everything below it, a document, a shortcut) into a folder, the
scan listing the source breadth first while the copy follows it."""

from __future__ import annotations

import collections
import functools
import operator
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
from .batches import BatchItem, Copied, CopyBatch, chunk_counter, copied_rows, copy_batch
from .walk import BATCH_BYTES, BATCH_FILES, MAX_OPEN_FOLDERS, Walk, open_child, shown_path, unlink_quietly

if TYPE_CHECKING:
    from ..copyworker import Workers

_by_name = operator.attrgetter("name")
# a step makes at most this many folders, in one transaction (a cancel and the pollers wait for it)
FOLDERS_AT_ONCE = 32


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
    # its subfolders' indexes in the tree
    folders: list[int] = field(default_factory=list)


class CopyWalk(Walk):
    """Copy an entry (a folder with everything below it, or a document) into a folder.

    The scan and the copy run side by side: the scan lists folders breadth first, and the copy
    follows it: once a folder is listed, its subfolders' copies are made (all in one step) and its
    documents join the batch being filled, which spans folders. percentComplete counts from when
    the scan is done.
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
                    folders, found, found_size, found_small = self._list(index, node, row_id, fd)
                    for child_index, child_id, child_name in folders:
                        child_fd = None
                        if len(pending) < MAX_OPEN_FOLDERS:
                            child_fd = open_child(fd, child_name)
                        pending.append((child_index, child_id, child_fd))
                finally:
                    os.close(fd)
                entries += found
                size += found_size
                small += found_small
                # breadth first, so folders are listed in the order they were found
                self._listed = index + 1
                self._use_workers(small)
        finally:
            for _, _, fd in pending:
                if fd is not None:
                    os.close(fd)
        self.progress.plan(entries, size)

    def _list(
        self, index: int, node: _Source, row_id: int | None, fd: int
    ) -> tuple[list[tuple[int, int | None, str]], int, int, int]:
        """List one folder into `node`: its subfolders (their indexes in the tree, ids and
        names), and how many entries, bytes and small files it holds. Per document this is a
        stat and little else: a tree of small files is mostly documents."""
        known = self.repository.child_rows(row_id, metadata=True)
        device = os.fstat(fd).st_dev
        with os.scandir(fd) as listing:
            found = sorted(listing, key=_by_name)
        taken: set[str] = set()
        files = node.files
        folders: list[tuple[int, int | None, str]] = []
        entries = size = small = 0
        depth = len(self.parent.parts) + 1 + len(node.parts) + 1 - len(self.source.parts)
        for item in found:
            source_name = item.name
            if item.is_dir(follow_symlinks=False):
                is_dir = True
            elif item.is_file(follow_symlinks=False):
                is_dir = False
            else:
                continue  # (symlinks and special files are never entries)
            if name_problem(source_name) or (is_dir and (device, item.inode()) == self._own):
                # (the copy itself, if its destination was moved into the source since: a copy
                # never copies its own output)
                continue
            key = source_name.casefold()
            if key in taken:
                copy_name = _distinct(source_name, is_dir, taken)
            else:
                taken.add(key)
                copy_name = source_name
            entries += 1
            row = known.get(source_name)
            child_id, ext, target, carried, template_id = row if row is not None else _UNKNOWN
            # what the copy carries metadata from (a source without any: nothing)
            carry_id = child_id if carried else None
            if target is not None and not is_dir:
                node.shortcuts.append((copy_name, target, carry_id))
            elif is_dir:
                check_depth(depth, f"Copying the folder '{shown_path((*node.parts, source_name))}'")
                node.folders.append(len(self._tree))
                folders.append((len(self._tree), child_id, source_name))
                self._tree.append(_Source((*node.parts, source_name), index, copy_name, carry_id))
            else:
                item_size = item.stat(follow_symlinks=False).st_size
                if ext is not None:
                    ext = kept_extension(copy_name, ext)
                files.append((source_name, copy_name, item_size, ext, carry_id, template_id))
                size += item_size
                small += item_size <= fsops.COPY_CHUNK
        return folders, entries, size, small

    def _open(self, parts: tuple[str, ...]) -> int:
        try:
            return fsops.open_dir(self.root_fd, parts)
        except fsops.Gone:
            raise NotFound(f"The folder '{shown_path(parts)}' went away while it was being copied.") from None

    # ---- steps -------------------------------------------------------------------------

    def steps(self) -> Iterator[Step]:
        """The copy's steps, following the scan: WAIT while the next folder is not listed yet."""
        if not self.source.is_dir:
            yield (self._copy_shortcut if self.source.is_shortcut else self._copy_document), Order.FIRST
            return
        yield self._make_top, Order.FIRST
        batch: CopyBatch = []
        group: list[BatchItem] = []
        files = size = 0
        index = 0
        while True:
            if index >= self._listed and not self._scan_ended and batch:
                # what is gathered goes now rather than wait for the scan
                yield functools.partial(self._copy_files, batch), Order.ANY
                batch, files, size = [], 0, 0
            while index >= self._listed and not self._scan_ended:
                yield WAIT
            if index >= self._listed:
                break  # the scan ended (or failed: the operation hears of it from the scan)
            node, copy = self._tree[index], self._copies.get(index)
            if copy is None:
                return  # (making it was stopped, or failed: the operation hears of that)
            if node.folders:
                # its subfolders' copies, before any batch names them
                yield functools.partial(self._make_folders, index), Order.FIRST
            if node.shortcuts:
                yield functools.partial(self._make_shortcuts, index), Order.ANY
            for item in node.files:
                full = files >= BATCH_FILES or size + item[2] > BATCH_BYTES
                if full and (batch or group):  # (so a large file goes in a batch of its own)
                    if group:
                        batch.append((node.parts, copy.parts, copy.id, group))
                    yield functools.partial(self._copy_files, batch), Order.ANY
                    batch, group, files, size = [], [], 0, 0
                group.append(item)
                files += 1
                size += item[2]
            if group:
                batch.append((node.parts, copy.parts, copy.id, group))
                group = []
            if batch and self.progress.exact:
                # (counted entry by entry, paced or faulted: a batch a folder, whose rows are
                # written when it ends, so that a crash keeps what was counted as copied)
                yield functools.partial(self._copy_files, batch), Order.ANY
                batch, files, size = [], 0, 0
            index += 1
        if batch:
            yield functools.partial(self._copy_files, batch), Order.ANY

    def _make_top(self) -> None:
        made = self.repository.create_folder(
            self.parent.id, self.name, self.auto_rename, self.creator, self.run.then(self.source.id)
        )
        with fsops.folder(self.root_fd, made.parts) as fd:
            st = os.fstat(fd)
        self._own = (st.st_dev, st.st_ino)
        self.result = made
        self._copies[0] = made
        self.progress.log(made.parts[:-1], [made.name], True)
        self.progress.add(entries=1)

    def _make_folders(self, index: int) -> None:
        """The copies of a folder's subfolders (new folders in a new folder: only a name put there
        by hand meanwhile can clash), in one transaction; one at a time when each entry must be
        counted as it is done (paced, or a fault armed)."""
        node, copy = self._tree[index], self._copies[index]
        children = node.folders
        at_once = 1 if self.progress.exact else FOLDERS_AT_ONCE
        for start in range(0, len(children), at_once):
            if self.progress.stop.is_set():
                return
            chunk = children[start : start + at_once]
            # (the scan said whether each source has metadata)
            wanted = [
                (self._tree[i].copy_name, self.run.then(self._tree[i].source_id, checked=True)) for i in chunk
            ]
            made = self.repository.create_folders(copy.id, wanted, self.creator)
            for child, entry in zip(chunk, made, strict=True):
                self._copies[child] = entry
            self.progress.log(copy.parts, [entry.name for entry in made], True)
            self.progress.add(entries=len(made))

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

    def _copy_files(self, batch: CopyBatch) -> None:
        # part names, where the filesystem needs them: one random stem per batch
        stem = f"{fsops.PART_PREFIX}{secrets.token_hex(6)}-"
        done: list[Copied] = []
        failure: BaseException | None = None
        in_worker = False
        try:
            if self.pool is not None and all(item[2] <= fsops.COPY_CHUNK for g in batch for item in g[3]):
                # small files: copied (and recorded) by a worker process, beside the other
                # worker: no GIL shared with the server
                in_worker = True
                done, failure = self.pool.copy(batch, stem, self.creator, self.run)
            else:
                copy_batch(self.root_fd, batch, stem, done, self.progress)
        except BaseException as exc:
            failure = exc
        finally:
            if not in_worker:  # (a worker process records its own rows)
                rows = [
                    (group[2], copied_rows(group, copied)) for group, copied in zip(batch, done, strict=False)
                ]
                self.repository.record_documents(rows, self.creator, self.run)
            self._done(batch, done, in_worker)
        if isinstance(failure, fsops.Gone):
            node_parts = batch[max(len(done) - 1, 0)][0]
            raise NotFound(
                f"The folder '{shown_path(node_parts)}' or its copy went away while it was being copied."
            )
        if failure is not None:
            raise failure

    def _done(self, batch: CopyBatch, done: list[Copied], counted: bool) -> None:
        """Log what a batch copied and note what it skipped; count it, unless done file by file."""
        entries = size = 0
        for (src_parts, dst_parts, _, items), (finals, _) in zip(batch, done, strict=False):
            self.progress.log(dst_parts, [final for final in finals if final is not None], False)
            for final, item in zip(finals, items, strict=False):
                if final is None:
                    self.skipped.append(shown_path((*src_parts, item[0])))
                size += item[2]
            entries += len(finals)
        if counted:
            self.progress.add(entries=entries, size=size)

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


# what a listing says of a child the store never met (see Known)
_UNKNOWN = Known()


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
    """Remove the part files a crashed copy left in the tree it was writing (where the filesystem
    cannot make unnamed files, or left by an older version); returns how many."""
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
