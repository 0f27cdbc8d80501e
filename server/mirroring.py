"""Walks over two trees at once, for the start state (server/snapshot.py) and `--ephemeral`'s copy
(server/ephemeral.py): `mirror` makes an empty folder hold what another holds (files linked or
copied), `put_back` makes a folder hold again what a mirror of it holds, changing only what differs,
and `remove_tree` removes a folder. No aiohttp.

Every walk is iterative and holds two descriptors at a time, each folder opened afresh from the top
one name at a time without following symlinks: a tree made by hand deeper than Python's recursion
limit (or than PATH_MAX) is walked too, and a folder swapped for a symlink meanwhile is left out,
never followed out of the tree.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator

from . import fsops

# what refuses a hard link where a copy works: another filesystem mounted inside the root, a
# filesystem without links, a file of another user's (fs.protected_hardlinks), too many links
COPY_INSTEAD = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})

Parts = tuple[str, ...]


def listing(fd: int) -> dict[str, os.stat_result]:
    """The names in a folder with what each is (not following symlinks); those gone meanwhile
    are left out."""
    found = {}
    with os.scandir(fd) as entries:
        for item in entries:
            try:
                found[item.name] = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
    return found


def is_dir(dir_fd: int, name: str) -> bool:
    found = fsops.lstat_at(dir_fd, name)
    return found is not None and fsops.kind(found) is True


def _folders(
    src_top: int, dst_top: int, start: Parts, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[Parts, int, int]]:
    """Each folder below `start` (itself first, parents before children) as it is below two
    tops, with a descriptor of each (closed once the next is asked for). A folder gone on either
    side meanwhile (or swapped for a symlink) is left out with what is below it; what the caller
    made in the folder at `dst_top` is walked too; the names `skip` at the top are not."""
    pending = [start]
    while pending:
        parts = pending.pop()
        try:
            src = fsops.open_dir(src_top, parts)
        except fsops.Gone:
            continue
        try:
            dst = fsops.open_dir(dst_top, parts)
        except fsops.Gone:
            os.close(src)
            continue
        try:
            yield parts, src, dst
            pending += [
                (*parts, name)
                for name, st in listing(dst).items()
                if stat.S_ISDIR(st.st_mode) and (parts or name not in skip)
            ]
        finally:
            os.close(src)
            os.close(dst)


def mirror(
    src_top: int,
    dst_top: int,
    start: Parts = (),
    *,
    skip: frozenset[str] = frozenset(),
    stop: threading.Event | None = None,
    copy: bool = False,
) -> None:
    """Make the empty folder at `start` below `dst_top` hold what the one below `src_top` holds
    (but the names `skip` at the top): folders made again with their times, files linked (or
    copied, if `copy`), symlinks made again; partial files and anything else are never entries,
    and are left out. Raises fsops.Stopped once `stop` is set."""
    for parts, src, dst in _folders(src_top, dst_top, start):
        for name, st in listing(src).items():
            if stop is not None and stop.is_set():
                raise fsops.Stopped
            if (not parts and name in skip) or name.startswith(fsops.PART_PREFIX):
                continue
            try:
                if copy and stat.S_ISREG(st.st_mode):
                    copy_file(src, dst, name)
                else:
                    _make(src, dst, name, st)
            except (FileNotFoundError, NotADirectoryError):
                continue  # gone by hand meanwhile
        _same_times(dst, os.fstat(src))


def put_back(src: int, dst: int, skip: frozenset[str] = frozenset()) -> None:
    """Make the folder `dst` hold what the kept folder `src` holds (but the names `skip` at the
    top), changing only what differs: what was made since goes, what was removed or replaced since
    is linked back, folders get their kept times back. Special files made by hand (never entries)
    are left alone unless they are in the way."""
    for parts, src_fd, dst_fd in _folders(src, dst, (), skip):
        wanted = listing(src_fd)
        for name, found in listing(dst_fd).items():
            if not parts and name in skip:
                continue
            want = wanted.get(name)
            if want is not None and _same(src_fd, dst_fd, name, want, found):
                del wanted[name]  # (a folder: what it holds is walked next)
            elif want is not None or _made(found):
                remove_at(dst_fd, name, found)
        for name, want in wanted.items():
            _make(src_fd, dst_fd, name, want)
        _same_times(dst_fd, os.fstat(src_fd))


def _made(found: os.stat_result) -> bool:
    """A folder, file or symlink: what the API or the start state may have made."""
    return fsops.kind(found) is not None or stat.S_ISLNK(found.st_mode)


def _same(src: int, dst: int, name: str, want: os.stat_result, found: os.stat_result) -> bool:
    """Whether what is at `name` in `dst` is what was kept (a folder's contents are looked at
    on their own)."""
    if stat.S_ISDIR(want.st_mode) or stat.S_ISDIR(found.st_mode):
        return stat.S_ISDIR(want.st_mode) and stat.S_ISDIR(found.st_mode)
    if stat.S_ISREG(want.st_mode) and stat.S_ISREG(found.st_mode):
        return (want.st_dev, want.st_ino) == (found.st_dev, found.st_ino)
    if stat.S_ISLNK(want.st_mode) and stat.S_ISLNK(found.st_mode):
        return os.readlink(name, dir_fd=src) == os.readlink(name, dir_fd=dst)
    return False


def _make(src: int, dst: int, name: str, st: os.stat_result) -> None:
    """Make at `name` in `dst` what is there in `src`: an empty folder (its contents and times
    follow), a link to the same file (a copy where linking is refused), or the same symlink."""
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(name, dir_fd=dst)
    elif stat.S_ISREG(st.st_mode):
        try:
            os.link(name, name, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in COPY_INSTEAD:
                raise
            copy_file(src, dst, name)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)


def copy_file(src: int, dst: int, name: str) -> None:
    """A copy of a file with its mode and times."""
    fd = fsops.open_file(src, name)
    try:
        st = os.fstat(fd)
        out = os.open(name, fsops.NEW_FILE_FLAGS, stat.S_IMODE(st.st_mode), dir_fd=dst)
        try:
            fsops.copy_bytes(fd, out, st.st_size)
            _same_times(out, st)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def _same_times(fd: int, st: os.stat_result) -> None:
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def remove_at(dir_fd: int, name: str, found: os.stat_result) -> None:
    """Remove what is at `name` (`found`: what it is), a folder with all it holds."""
    if stat.S_ISDIR(found.st_mode):
        remove_tree(dir_fd, name)
    else:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


def remove_tree(dir_fd: int, name: str) -> None:
    """Remove a folder and everything below it, however deep: without recursion, and never
    following a symlink out (each folder is opened afresh from `dir_fd`, one name at a time)."""
    pending: list[Parts] = [(name,)]
    while pending:
        parts = pending[-1]
        try:
            with fsops.folder(dir_fd, parts) as fd:
                below = []
                for child, found in listing(fd).items():
                    if stat.S_ISDIR(found.st_mode):
                        below.append((*parts, child))
                    else:
                        remove_at(fd, child, found)
        except fsops.Gone:
            pending.pop()
            continue
        if below:
            pending += below
            continue
        pending.pop()
        with fsops.folder(dir_fd, parts[:-1]) as parent:
            try:
                os.rmdir(parts[-1], dir_fd=parent)
            except FileNotFoundError:
                pass
