"""The copy and delete walkers: the blocking halves of the long operations.

A walk scans what it will touch (totals for percentComplete; a copy's scan runs ahead of the copy,
a delete's before it) and does the work as a series of steps, each one thread hop: creating a
folder, copying a batch of small files (or one large file, chunk by chunk), deleting a batch of
files, removing the emptied folders. `operations` drives the steps from the event loop, a few at a
time in their `Order`; between steps, files and chunks each step checks `Progress.stop`, so a
cancel takes effect promptly and leaves whole entries only. Large batches of small files go to the
copy worker processes (`copyworker`), which also write their rows.

A copied file is written under a hidden part name in its destination folder and renamed when
complete (never over anything), so no half-written file ever carries its final name; listings
never show part files, and `remove_parts` clears those a crash left. New entries get ids batch by
batch, as they appear.
"""

from __future__ import annotations

import collections
import errno
import functools
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import fsops
from .errors import Conflict, NotFound
from .metadata.carry import CopyRun
from .progress import WAIT, Order, Progress, Step
from .repository import (
    DocumentRow,
    Entry,
    Known,
    Repository,
    Target,
    candidates,
    check_depth,
    kept_extension,
    name_problem,
)

if TYPE_CHECKING:
    from .copyworker import Workers

# a copy step takes up to this many small files, or fewer that add up to BATCH_BYTES (a batch in a
# worker process is not stopped part-way: these bound how long a cancel waits)
BATCH_FILES = 128
BATCH_BYTES = 4 * 1024 * 1024
# a delete step unlinks up to this many files
DELETE_BATCH = 256
# a copy of at least this many small files is worth handing to the worker processes
WORKER_MIN_FILES = 500
# the scan keeps at most this many folder descriptors open; others are opened again from the root
MAX_OPEN_FOLDERS = 256


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


class _Walk:
    """What copies and deletes share: the repository, progress, and the worker processes that
    large batches of small files go to."""

    def __init__(
        self, repository: Repository, progress: Progress, workers: Callable[[], Workers | None]
    ) -> None:
        self.repository = repository
        self.root_fd = repository.store.root_fd
        self.progress = progress
        # asked for once the scan has met enough small files to repay starting the workers
        self._workers = workers
        self.pool: Workers | None = None  # None: everything runs in threads

    def _use_workers(self, small_files: int) -> None:
        if self.pool is None and small_files >= WORKER_MIN_FILES and not self.progress.exact:
            self.pool = self._workers()

    @property
    def width(self) -> int:
        """Steps at once: in threads, one (threads of one process take turns at the GIL); with
        worker processes, two per worker, so that each has its next batch waiting while the thread
        that sent the last one records it."""
        return 1 if self.pool is None else 2 * self.pool.size


class CopyWalk(_Walk):
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
                            check_depth(depth, f"Copying the folder '{_path((*node.parts, source_name))}'")
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
            raise NotFound(f"The folder '{_path(parts)}' went away while it was being copied.") from None

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
            self.skipped += [_path((*node.parts, source)) for source, final, _, _ in done if not final]
            self.progress.log(copy.parts, [final for _, final, _, _ in done if final], False)
            if in_worker:  # (in a thread, copy_batch counted each file as it went)
                self.progress.add(entries=len(done), size=sum(size for _, _, size, _ in done))
        if isinstance(failure, fsops.Gone):
            raise NotFound(
                f"The folder '{_path(node.parts)}' or its copy went away while it was being copied."
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
                    fsops.copy_bytes(src, out, entry.size, _chunk_counter(self.progress))
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


# what a batch copy reports per file: (source name, name in the copy or None if the source went
# away, size, created)
Copied = tuple[str, str | None, int, int]

# a file to copy: (source name, name in the copy, size, kept extension, id if it has metadata to
# carry or None, its template's id)
BatchItem = tuple[str, str, int, str | None, int | None, int]
Batch = list[BatchItem]


def copied_rows(batch: Batch, done: list[Copied]) -> list[DocumentRow]:
    """The rows of the files of `batch` that a copy made."""
    known = {source: (ext, source_id, template_id) for source, _, _, ext, source_id, template_id in batch}
    rows: list[DocumentRow] = []
    for source, final, _, created in done:
        if final:
            ext, source_id, template_id = known[source]
            rows.append((final, ext, created, source_id, template_id))
    return rows


def copy_batch(
    root_fd: int,
    src_parts: tuple[str, ...],
    dst_parts: tuple[str, ...],
    batch: Batch,
    stem: str,
    done: list[Copied],
    progress: Progress | None = None,
) -> None:
    """Copy files (see `Batch`; the kept extension is for the rows) from one folder to another,
    appending each to `done` as it gets its name. With `progress`, stop when asked (between files and
    between chunks of a large file), pace, and count entries and chunks as they go."""
    with fsops.folder(root_fd, src_parts) as src_fd, fsops.folder(root_fd, dst_parts) as dst_fd:
        for number, (source_name, name, size, _, _, _) in enumerate(batch):
            if progress is not None and progress.stop.is_set():
                return
            created_ns = time.time_ns()
            part = stem + str(number)
            large = size > fsops.COPY_CHUNK
            on_chunk = _chunk_counter(progress) if large and progress is not None else None
            copied = (not large and _copy_small(src_fd, source_name, dst_fd, part, size)) or _copy_whole(
                src_fd, source_name, dst_fd, part, size, on_chunk
            )
            final = _name(dst_fd, part, name) if copied else None  # None: the source went away
            done.append((source_name, final, size, created_ns))
            if progress is not None:  # (a large file's bytes were counted chunk by chunk)
                progress.add(entries=1, size=0 if large else size)


def _chunk_counter(progress: Progress) -> Callable[[int], bool]:
    def on_chunk(n: int) -> bool:
        progress.add(size=n)
        return progress.stop.is_set()

    return on_chunk


def _copy_small(src_fd: int, source_name: str, dst_fd: int, part: str, size: int) -> bool:
    """The common case, kept to the bare system calls (a tree of small files is mostly these):
    a regular file copied in one call. False, with nothing left behind, for anything else."""
    try:
        src = os.open(source_name, fsops.FILE_FLAGS, dir_fd=src_fd)
    except OSError:
        return False
    try:
        out = os.open(part, fsops.NEW_FILE_FLAGS, 0o644, dir_fd=dst_fd)
        try:
            # one byte more than expected: a file that grew since the scan shows as such
            copied = os.copy_file_range(src, out, size + 1)
        except OSError:
            copied = -1  # not a regular file, or a filesystem without it: the careful way
        except BaseException:
            _unlink_quietly(dst_fd, part)
            raise
        finally:
            os.close(out)
    finally:
        os.close(src)
    if copied != size:
        # the file changed size since the scan, or could not be copied so: the careful way
        _unlink_quietly(dst_fd, part)
        return False
    return True


def _copy_whole(
    src_fd: int, source_name: str, dst_fd: int, part: str, size: int, on_chunk: Callable[[int], bool] | None
) -> bool:
    """Copy one file to `part`, whatever it takes; False if the source is no longer a document."""
    try:
        src = fsops.open_file(src_fd, source_name, blocking=False)
    except FileNotFoundError:
        return False
    try:
        out = os.open(part, fsops.NEW_FILE_FLAGS, 0o644, dir_fd=dst_fd)
        try:
            fsops.copy_bytes(src, out, -1, on_chunk)
        finally:
            os.close(out)
    except BaseException:
        _unlink_quietly(dst_fd, part)
        raise
    finally:
        os.close(src)
    return True


def _name(dst_fd: int, part: str, name: str) -> str:
    """Give a completely written part file its name, never replacing anything; the copy's folder
    is new, so only a name put there by hand meanwhile can clash (then `name (2)`…)."""
    try:
        for candidate in candidates(name, False, True):
            try:
                fsops.rename_noreplace(dst_fd, part, dst_fd, candidate)
            except FileExistsError:
                continue
            return candidate
        raise FileExistsError(errno.EEXIST, "no free name", name)
    except BaseException:
        _unlink_quietly(dst_fd, part)
        raise


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


def _path(parts: tuple[str, ...]) -> str:
    return "\\" + "\\".join(parts)


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


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
                        _unlink_quietly(fd, item.name)
                        removed += 1
                    elif item.is_dir(follow_symlinks=False):
                        pending.append((*parts, item.name))
        finally:
            os.close(fd)
    return removed


@dataclass
class _Doomed:
    """One folder of the tree being deleted, listed after all of its subfolders."""

    parts: tuple[str, ...]
    row_id: int | None  # its id, None if the store never met it (nor anything below it)
    parent_id: int | None
    files: list[str]
    # which of its files are shortcuts' placeholders (removed, but not logged: see `_unlink`)
    shortcuts: set[str] = field(default_factory=set)


class DeleteWalk(_Walk):
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
                    f"The folder '{_path(node.parts)}' was not empty when the delete came to remove it: "
                    "something was put into it meanwhile. What was deleted stays deleted."
                ) from None
            self.repository.forget_names(node.parent_id, [node.parts[-1]])
            self.progress.log(node.parts[:-1], [node.parts[-1]], True)
            self.progress.add(entries=1)


def unlink_batch(
    root_fd: int, parts: tuple[str, ...], names: list[str], done: list[str], progress: Progress | None = None
) -> None:
    """Remove files (never folders; a symlink is removed, not followed) from one folder,
    appending each to `done`. With `progress`, stop when asked, and count (and pace) each file."""
    with fsops.folder(root_fd, parts) as fd:
        for name in names:
            if progress is not None and progress.stop.is_set():
                return
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                pass
            done.append(name)
            if progress is not None:
                progress.add(entries=1)
