"""The batches a step runs, in a work thread or in a copy worker process (`copyworker`): files
copied from one folder to another under part names, files unlinked; and the rows a copy records
for them."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import fsops
from ..progress import Progress
from ..repository import (
    DocumentRow,
    candidates,
)
from .walk import unlink_quietly

if TYPE_CHECKING:
    pass

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
            on_chunk = chunk_counter(progress) if large and progress is not None else None
            copied = (not large and _copy_small(src_fd, source_name, dst_fd, part, size)) or _copy_whole(
                src_fd, source_name, dst_fd, part, size, on_chunk
            )
            final = _name(dst_fd, part, name) if copied else None  # None: the source went away
            done.append((source_name, final, size, created_ns))
            if progress is not None:  # (a large file's bytes were counted chunk by chunk)
                progress.add(entries=1, size=0 if large else size)


def chunk_counter(progress: Progress) -> Callable[[int], bool]:
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
            unlink_quietly(dst_fd, part)
            raise
        finally:
            os.close(out)
    finally:
        os.close(src)
    if copied != size:
        # the file changed size since the scan, or could not be copied so: the careful way
        unlink_quietly(dst_fd, part)
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
        unlink_quietly(dst_fd, part)
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
        unlink_quietly(dst_fd, part)
        raise


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
