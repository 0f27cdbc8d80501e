"""What the copy and delete walks share: their repository, progress and worker processes, the
batch sizes, and small helpers."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import fsops
from ..progress import Progress
from ..repository import (
    Repository,
)

if TYPE_CHECKING:
    from ..copyworker import Workers

# a copy step takes up to this many small files, or fewer that add up to BATCH_BYTES, from one
# folder or several (a batch in a worker process is not stopped part-way: these bound how long a
# cancel waits; each step costs a few thread hops and a round trip to a worker, so fewer is faster,
# but what a step does on the server's side (logging and counting its files, in a work thread)
# holds the GIL, which the event loop waits for: at 256 the pollers' p99 during a copy was worse
# than before batches spanned folders, at 96 it is not, see bench/perf.py)
BATCH_FILES = 96
BATCH_BYTES = 4 * 1024 * 1024
# a delete step unlinks up to this many files, from one folder or several
DELETE_BATCH = 512
# a copy of at least this many small files is worth handing to the worker processes
WORKER_MIN_FILES = 500
# the scan keeps at most this many folder descriptors open; others are opened again from the root
MAX_OPEN_FOLDERS = 256


class Walk:
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


def shown_path(parts: tuple[str, ...]) -> str:
    return "\\" + "\\".join(parts)


def unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def open_child(fd: int, name: str) -> int | None:
    """A descriptor on the subfolder `name` of the folder open at `fd`, or None if it changed
    since it was listed (opening it again later, from the root, will tell how)."""
    try:
        return os.open(name, fsops.DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
