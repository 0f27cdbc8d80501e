"""Filesystem primitives that never leave the storage root.

Every operation works on directory file descriptors, walked down from the root one name at a time
with O_NOFOLLOW: a folder swapped for a symlink by hand, even between a check and a use, makes the
walk fail instead of leading outside. Names passed here are single path segments, so no path ever
grows past PATH_MAX however deep the tree.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# bytes per copy_file_range call: large enough for the kernel to move data fast
COPY_CHUNK = 8 * 1024 * 1024
# a document being written straight into a folder on another filesystem than the store's carries
# this name until complete; listings never show it
PART_PREFIX = ".sandbox-part-"


class Gone(Exception):
    """A name on the way is missing, not a folder, or a symlink; `depth` is how many names were
    walked successfully before it."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.depth = depth


def kind(st: os.stat_result) -> bool | None:
    """True for a directory, False for a regular file, None for anything never shown."""
    if stat.S_ISDIR(st.st_mode):
        return True
    if stat.S_ISREG(st.st_mode):
        return False
    return None


def open_dir(root_fd: int, parts: Sequence[str]) -> int:
    """A new descriptor for the folder at `parts` below the root (the caller closes it). Opened
    anew, never a dup of the root's: a dup shares the root's read position, and two listings of
    the root side by side would each see part of it."""
    fd = os.open(".", DIR_FLAGS, dir_fd=root_fd)
    for depth, name in enumerate(parts):
        try:
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            # missing, not a folder, or a symlink where a folder was (ELOOP)
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise Gone(depth) from exc
            raise
        os.close(fd)
        fd = child
    return fd


@contextmanager
def folder(root_fd: int, parts: Sequence[str]) -> Iterator[int]:
    fd = open_dir(root_fd, parts)
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def open_file(dir_fd: int, name: str, blocking: bool = True) -> int:
    """Open a regular file for reading; FileNotFoundError if it is anything else now.

    Opened without blocking, so that a FIFO swapped in cannot hang the open; `blocking` turns that
    back off for readers that need it (the kernel's copy of a regular file does not care).
    """
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
            raise FileNotFoundError(errno.ENOENT, "not a document", name) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(errno.ENOENT, "not a document", name)
    if blocking:
        os.set_blocking(fd, True)
    return fd


def items(dir_fd: int, skip: frozenset[str] = frozenset()) -> Iterator[tuple[os.DirEntry[str], bool]]:
    """What in a folder can be an entry, and whether each is a folder (else a document).

    Symlinks, special files, partial files and the names `skip` (casefolded) are left out; whether
    a name is valid is for the caller's rules.
    """
    with os.scandir(dir_fd) as it:
        for item in it:
            name = item.name
            if name.startswith(PART_PREFIX) or (skip and name.casefold() in skip) or item.is_symlink():
                continue
            if item.is_dir(follow_symlinks=False):
                yield item, True
            elif item.is_file(follow_symlinks=False):
                yield item, False


def scan(dir_fd: int, skip: frozenset[str] = frozenset()) -> dict[str, bool]:
    """Names in a folder that can be entries: folders (True) and documents (False)."""
    return {item.name: is_dir for item, is_dir in items(dir_fd, skip)}


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
_RENAME_NOREPLACE = 1
_linkat = getattr(_libc, "linkat", None)
_AT_EMPTY_PATH = 0x1000

# a file made with no name (O_TMPFILE) appears, complete, under its name in one link, and leaves
# nothing behind if the process dies first; it is named through /proc (or, with the
# CAP_DAC_READ_SEARCH capability, by its descriptor alone: cheaper). Where the kernel or the
# filesystem cannot, a hidden part file renamed when complete does the same (and a crash leaves it
# for the copy's recovery to clear)
_UNNAMED = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
_TMPFILE_FLAGS = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC
# whether naming by descriptor alone may work (until it is refused once)
_by_descriptor = [_linkat is not None]


def new_file(dir_fd: int, part: str) -> tuple[int, str | None]:
    """A new, empty file in a folder, open for writing, that no one sees until `name_file` names
    it: unnamed where the filesystem can (the part name is then None), else the hidden `part`."""
    if _UNNAMED:
        try:
            return os.open(".", _TMPFILE_FLAGS, 0o644, dir_fd=dir_fd), None
        except OSError as exc:
            # a filesystem without unnamed files (EOPNOTSUPP; EISDIR from kernels that predate them)
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    return os.open(part, NEW_FILE_FLAGS, 0o644, dir_fd=dir_fd), part


def name_file(fd: int, part: str | None, dir_fd: int, name: str) -> None:
    """Give a completely written file from `new_file` its name, never replacing anything
    (FileExistsError if something has it)."""
    if part is not None:
        rename_noreplace(dir_fd, part, dir_fd, name)
        return
    if _by_descriptor[0]:
        assert _linkat is not None
        if _linkat(fd, b"", dir_fd, os.fsencode(name), _AT_EMPTY_PATH) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), name)
        if err not in (errno.ENOENT, errno.EPERM, errno.EINVAL):
            raise OSError(err, os.strerror(err), name)
        # without the capability the kernel answers ENOENT, as for a folder removed meanwhile:
        # /proc tells the two apart (and raises FileNotFoundError for the latter)
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
        _by_descriptor[0] = False
        return
    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Rename without ever replacing what is at `dst` (FileExistsError if something is there)."""
    if _renameat2 is not None:
        if _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err))
    # the filesystem cannot refuse for us: check, then rename (only a hand-made change can race this)
    if lstat_at(dst_fd, dst) is not None:
        raise FileExistsError(errno.EEXIST, "File exists")
    os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


def publish(tmp_fd: int, tmp: str, dst_fd: int, dst: str) -> None:
    """Give a completely written temporary file its final name, never replacing anything."""
    try:
        try:
            os.link(tmp, dst, src_dir_fd=tmp_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise
            rename_noreplace(tmp_fd, tmp, dst_fd, dst)  # filesystems without hard links
            return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _across(tmp_fd, tmp, dst_fd, dst, publish)  # a folder mounted from another filesystem
    os.unlink(tmp, dir_fd=tmp_fd)


def replace(tmp_fd: int, tmp: str, dst_fd: int, dst: str) -> None:
    """Put a completely written temporary file in place of the document `dst`, atomically."""
    try:
        os.rename(tmp, dst, src_dir_fd=tmp_fd, dst_dir_fd=dst_fd)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _across(tmp_fd, tmp, dst_fd, dst, _rename)


def _rename(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


def _across(
    tmp_fd: int, tmp: str, dst_fd: int, dst: str, finish: Callable[[int, str, int, str], None]
) -> None:
    """Copy the temporary file to a hidden part file beside `dst`, then `finish` with that."""
    part = PART_PREFIX + os.urandom(8).hex()
    src = os.open(tmp, FILE_FLAGS, dir_fd=tmp_fd)
    try:
        out = os.open(part, NEW_FILE_FLAGS, 0o644, dir_fd=dst_fd)
        try:
            copy_bytes(src, out)
        finally:
            os.close(out)
        finish(dst_fd, part, dst_fd, dst)
    finally:
        os.close(src)
        try:
            os.unlink(part, dir_fd=dst_fd)
        except FileNotFoundError:
            pass


class Stopped(Exception):
    """A copy was asked to stop between two chunks (what it wrote is incomplete), or a mirror of a
    tree between two entries (the server is stopping)."""


def copy_bytes(
    src_fd: int,
    dst_fd: int,
    expected: int = -1,
    on_chunk: Callable[[int], bool] | None = None,
) -> int:
    """Copy a file from its current offset with the kernel's copy (copy_file_range, else
    sendfile); returns the bytes copied.

    `expected` (the size a stat just gave) saves the call that would only confirm the end.
    `on_chunk(n)` hears of each chunk of `n` bytes and returns True to stop (Stopped is raised).
    """
    total = 0
    copy_range = getattr(os, "copy_file_range", None)
    while True:
        try:
            if copy_range is not None:
                n: int = copy_range(src_fd, dst_fd, COPY_CHUNK)
            else:
                n = os.sendfile(dst_fd, src_fd, None, COPY_CHUNK)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            return total + _copy_by_reading(src_fd, dst_fd, on_chunk)
        total += n
        if on_chunk is not None and n and on_chunk(n):
            raise Stopped
        if n == 0 or total == expected:
            return total


def _copy_by_reading(src_fd: int, dst_fd: int, on_chunk: Callable[[int], bool] | None) -> int:
    total = 0
    while chunk := os.read(src_fd, COPY_CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view) :]
        total += len(chunk)
        if on_chunk is not None and on_chunk(len(chunk)):
            raise Stopped
    return total
