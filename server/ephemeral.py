"""`--ephemeral`: serve a fresh temporary copy of the storage root, and remove it on exit.

The copy is made before the server starts, into a new folder of the system's temporary folder
(`tempfile.mkdtemp`, named `sandbox-ephemeral-*`), and holds what the root holds: its folders and
documents with their times, its symlinks, its metadata catalog, and its store (`.sandbox`: ids,
metadata, operations, events…) with the files the store's rows name (results, upload parts). What
a server keeps for its own run only is left out: temporary files, its start state, its lock.

The root is only read: nothing is made, changed or opened for writing there. When no server serves
it, its store is copied as files (while the copy is made the root's lock is held, shared, so that a
server starting on it meanwhile is refused rather than changing what is being copied); when one
does, sqlite's backup API reads a consistent copy of the rows beside it.

The copy is removed when the server exits, on SIGTERM and SIGINT too (a second signal's exit at
once included); only a process killed outright (SIGKILL) leaves it behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from . import fsops
from .config import Settings
from .mirroring import copy_file, mirror, remove_tree
from .snapshot import KEPT_FOLDERS
from .store import DB_NAME, STORE_DIR

PREFIX = "sandbox-ephemeral-"
# what of the store a copy takes: the rows (and the write-ahead log a stopped server may leave,
# which holds rows too) and the folders whose files the rows name (as a reset keeps them)
STORE_FILES = (DB_NAME, DB_NAME + "-wal")


class CopyFailed(Exception):
    """The storage root could not be copied (the message says what and why)."""


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[Settings]:
    """The settings to serve: as they are, or (--ephemeral) over a temporary copy of the storage
    root, removed afterwards."""
    if not settings.ephemeral:
        yield settings
        return
    with temporary_copy(settings.storage_root) as copy:
        yield replace(settings, storage_root=copy)


@contextlib.contextmanager
def temporary_copy(root: Path) -> Iterator[Path]:
    """A fresh copy of the storage root (empty if there is none yet), removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        try:
            if root.exists():
                _copy_root(root, top)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CopyFailed(f"--ephemeral: cannot copy {root}: {reason}") from exc
        yield top
    finally:
        remove(top)


def remove(top: Path) -> None:
    """Remove a copy, however deep its tree."""
    try:
        parent = os.open(top.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_tree(parent, top.name)
    finally:
        os.close(parent)


def _copy_root(root: Path, top: Path) -> None:
    src = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dst = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        mirror(src, dst, skip=frozenset({STORE_DIR}), copy=True)
        try:
            store = fsops.open_dir(src, (STORE_DIR,))
        except fsops.Gone:
            return  # (never served yet)
        try:
            os.mkdir(STORE_DIR, 0o700, dir_fd=dst)
            with fsops.folder(dst, (STORE_DIR,)) as copied:
                _copy_store(store, copied)
        finally:
            os.close(store)
        # (the root's own times, which making the store's folder changed)
        st = os.fstat(src)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(src)
        os.close(dst)


def _copy_store(store: int, copied: int) -> None:
    with _served(store) as live:
        found = fsops.lstat_at(store, DB_NAME)
        if live and found is not None and fsops.kind(found) is False:
            _backup(store, copied)
        else:
            for name in STORE_FILES:
                found = fsops.lstat_at(store, name)
                if found is not None and fsops.kind(found) is False:
                    copy_file(store, copied, name)
        for name in KEPT_FOLDERS:
            found = fsops.lstat_at(store, name)
            if found is not None and fsops.kind(found) is True:
                os.mkdir(name, 0o700, dir_fd=copied)
                mirror(store, copied, (name,), copy=True)


@contextlib.contextmanager
def _served(store: int) -> Iterator[bool]:
    """Whether a server serves the root (it holds the store's lock); if none does, the lock is
    held, shared, while the copy is made. The lock file is only opened for reading."""
    try:
        fd = os.open("lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=store)
    except OSError:
        fd = -1  # (no lock: no server ever served the root, or it is not one of ours)
    try:
        live = False
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                live = True
        yield live
    finally:
        if fd >= 0:
            os.close(fd)


def _backup(store: int, copied: int) -> None:
    """A consistent copy of the rows of a store another server writes to (read-only: its
    write-ahead log and shared memory exist while it runs, and are only read)."""
    source = sqlite3.connect(f"file:/proc/self/fd/{store}/{DB_NAME}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(f"/proc/self/fd/{copied}/{DB_NAME}")
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
