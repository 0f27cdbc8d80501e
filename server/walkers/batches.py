"""The batches a step runs, in a work thread or in a copy worker process (`copyworker`): files
copied from folders into their copies, files unlinked; and the rows a copy records for them.

A batch spans folders (a group per folder), so that a tree of many small folders costs a few
batches, not one per folder."""

from __future__ import annotations

import errno
import itertools
import os
import time
from collections.abc import Callable

from .. import fsops
from ..progress import Progress
from ..repository import DocumentRow, candidates
from .walk import unlink_quietly

# a file to copy: (source name, name in the copy, size, kept extension, id if it has metadata to
# carry or None, its template's id)
BatchItem = tuple[str, str, int, str | None, int | None, int]
# the files of one folder going into its copy: (the folder's names from the root, its copy's, the
# copy's id, the files)
CopyGroup = tuple[tuple[str, ...], tuple[str, ...], int, list[BatchItem]]
CopyBatch = list[CopyGroup]
# what became of a group's files, in order: each one's name in the copy, or None if the source
# went away (shorter than the group when the batch stopped early); then when the group started
Copied = tuple[list[str | None], int]

# files to remove from one folder: (its names from the root, its id or None if the store never
# met it, the names)
UnlinkGroup = tuple[tuple[str, ...], int | None, list[str]]
UnlinkBatch = list[UnlinkGroup]


def copied_rows(group: CopyGroup, copied: Copied) -> list[DocumentRow]:
    """The rows of the files of a group that a copy made."""
    finals, created = copied
    return [
        (final, ext, created, source_id, template_id)
        for final, (_, _, _, ext, source_id, template_id) in zip(finals, group[3], strict=False)
        if final is not None
    ]


def copy_batch(
    root_fd: int, batch: CopyBatch, stem: str, done: list[Copied], progress: Progress | None = None
) -> None:
    """Copy the files of a batch (see `CopyGroup`; the kept extensions and ids are for the rows),
    appending each group's outcome to `done` as it goes (see `Copied`). With `progress`, stop when
    asked (between files and between chunks of a large file), pace, and count entries and chunks as
    they go."""
    for number, (src_parts, dst_parts, _, items) in enumerate(batch):
        if progress is not None and progress.stop.is_set():
            return
        finals: list[str | None] = []
        done.append((finals, time.time_ns()))
        with fsops.folder(root_fd, src_parts) as src_fd, fsops.folder(root_fd, dst_parts) as dst_fd:
            _copy_group(src_fd, dst_fd, items, f"{stem}{number}-", finals, progress)


def _copy_group(
    src_fd: int,
    dst_fd: int,
    items: list[BatchItem],
    stem: str,
    finals: list[str | None],
    progress: Progress | None,
) -> None:
    for number, (source, name, size, _, _, _) in enumerate(items):
        if progress is not None and progress.stop.is_set():
            return
        large = size > fsops.COPY_CHUNK
        on_chunk = chunk_counter(progress) if large and progress is not None else None
        out, part = _copy_small(src_fd, source, dst_fd, stem + str(number), size) if not large else (-1, None)
        if out < 0:  # not the common case: the careful way
            out, part = _copy_whole(src_fd, source, dst_fd, stem + str(number), on_chunk)
        if out < 0:
            finals.append(None)  # the source went away
        else:
            finals.append(_name(out, part, dst_fd, name))
        if progress is not None:  # (a large file's bytes were counted chunk by chunk)
            progress.add(entries=1, size=0 if large else size)


def chunk_counter(progress: Progress) -> Callable[[int], bool]:
    def on_chunk(n: int) -> bool:
        progress.add(size=n)
        return progress.stop.is_set()

    return on_chunk


def _copy_small(src_fd: int, source: str, dst_fd: int, part: str, size: int) -> tuple[int, str | None]:
    """The common case, kept to the bare system calls (a tree of small files is mostly these): a
    regular file copied in one call into a new file, returned open and not yet named; (-1, None),
    with nothing left behind, for anything else."""
    try:
        src = os.open(source, fsops.FILE_FLAGS, dir_fd=src_fd)
    except OSError:
        return -1, None
    try:
        out, part_name = fsops.new_file(dst_fd, part)
        try:
            # one byte more than expected: a file that grew since the scan shows as such
            copied = os.copy_file_range(src, out, size + 1)
        except OSError:
            copied = -1  # not a regular file, or a filesystem without it: the careful way
        except BaseException:
            _discard(out, part_name, dst_fd)
            raise
    finally:
        os.close(src)
    if copied != size:
        # the file changed size since the scan, or could not be copied so: the careful way
        _discard(out, part_name, dst_fd)
        return -1, None
    return out, part_name


def _copy_whole(
    src_fd: int, source: str, dst_fd: int, part: str, on_chunk: Callable[[int], bool] | None
) -> tuple[int, str | None]:
    """Copy one file, whatever it takes, into a new file returned open and not yet named; (-1,
    None) if the source is no longer a document."""
    try:
        src = fsops.open_file(src_fd, source, blocking=False)
    except FileNotFoundError:
        return -1, None
    try:
        out, part_name = fsops.new_file(dst_fd, part)
        try:
            fsops.copy_bytes(src, out, -1, on_chunk)
        except BaseException:
            _discard(out, part_name, dst_fd)
            raise
    finally:
        os.close(src)
    return out, part_name


def _discard(out: int, part: str | None, dst_fd: int) -> None:
    os.close(out)
    if part is not None:
        unlink_quietly(dst_fd, part)


def _name(out: int, part: str | None, dst_fd: int, name: str) -> str:
    """Give a completely written file its name, never replacing anything, and close it; the copy's
    folder is new, so only a name put there by hand meanwhile can clash (then `name (2)`…)."""
    try:
        try:
            fsops.name_file(out, part, dst_fd, name)
            return name
        except FileExistsError:
            pass
        for candidate in itertools.islice(candidates(name, False, True), 1, None):
            try:
                fsops.name_file(out, part, dst_fd, candidate)
            except FileExistsError:
                continue
            return candidate
        raise FileExistsError(errno.EEXIST, "no free name", name)
    except BaseException:
        if part is not None:
            unlink_quietly(dst_fd, part)
        raise
    finally:
        os.close(out)


def unlink_batch(
    root_fd: int, batch: UnlinkBatch, done: list[list[str]], progress: Progress | None = None
) -> None:
    """Remove the files of a batch (never folders; a symlink is removed, not followed), appending
    each group's removed names to `done` as it goes. With `progress`, stop when asked, and count
    (and pace) each file."""
    for parts, _, names in batch:
        if progress is not None and progress.stop.is_set():
            return
        gone: list[str] = []
        done.append(gone)
        try:
            fd = fsops.open_dir(root_fd, parts)
        except fsops.Gone:
            continue  # (gone with its contents)
        try:
            for name in names:
                if progress is not None and progress.stop.is_set():
                    return
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                gone.append(name)
                if progress is not None:
                    progress.add(entries=1)
        finally:
            os.close(fd)
