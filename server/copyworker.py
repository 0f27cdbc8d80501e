"""Copy worker processes: batches of small files copied beside the server, not under its GIL.

A copy of thousands of small files is mostly system calls with a little Python between each; two
threads of one process would take turns at the GIL, two processes run side by side. Each worker is
`python -m server.copyworker ROOT DEVICE INODE`: it opens the storage root (refusing a folder that
is not the one the server serves), then answers one JSON request per line on stdin with one JSON
line on stdout. It exits when its stdin closes, so a server killed outright takes its workers with
it. Plain pipes rather than multiprocessing: nothing of the embedding program is imported again.
"""

from __future__ import annotations

import fcntl
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from . import errors, fsops, store, walkers
from .errors import SandboxError, ServiceUnavailable, from_store_error
from .metadata.carry import CopyRun
from .repository import forget_children, insert_documents

# how often a worker checks that the server is still there
PARENT_CHECK_S = 0.01
# how much lower a worker's CPU priority is than the server's
WORKER_NICENESS = 10
# the workers' turn-taking for writes to the store (a file in the store's folder)
WRITER_LOCK = "writers.lock"
_writer_lock = -1
# how long a batch waits for an idle worker before looking again whether one died or all close
TAKE_WAIT_S = 0.5


class Workers:
    """Up to `size` worker processes, started as needed; each serves one batch at a time."""

    def __init__(self, root: str, root_fd: int, size: int) -> None:
        st = os.fstat(root_fd)
        # -P: never the working directory on the path (it may be the storage root, where a client
        # could have uploaded a `server` package of its own)
        self._command = [
            sys.executable,
            "-P",
            "-m",
            "server.copyworker",
            root,
            str(st.st_dev),
            str(st.st_ino),
        ]
        self.size = size
        # the worker imports this package from where the server does, installed or not
        package_parent = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        self._env = os.environ | {"PYTHONPATH": package_parent + (os.pathsep + path if path else "")}
        self._idle: queue.SimpleQueue[subprocess.Popen[bytes]] = queue.SimpleQueue()
        self._all: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._closed = False

    def copy(
        self, batch: walkers.CopyBatch, stem: str, creator: str, run: CopyRun
    ) -> tuple[list[walkers.Copied], BaseException | None]:
        """Copy a batch (see walkers.copy_batch: its files carry their kept extensions and ids) in
        a worker, which also gives the new documents their rows, with the metadata of what they
        copy; blocking."""
        request = {
            "op": "copy",
            "batch": batch,
            "stem": stem,
            "creator": creator,
            "run": [run.key, run.top_id],
        }
        done, failure = self._call(request)
        return [(finals, created) for finals, created in done], failure

    def unlink(self, batch: walkers.UnlinkBatch) -> tuple[list[list[str]], BaseException | None]:
        """Remove a batch of files (see walkers.unlink_batch) and their rows in a worker; blocking."""
        return self._call({"op": "unlink", "batch": batch})

    def _call(self, request: dict[str, Any]) -> tuple[list[Any], BaseException | None]:
        worker = self._take()
        assert worker.stdin is not None and worker.stdout is not None
        try:
            worker.stdin.write(orjson.dumps(request) + b"\n")
            worker.stdin.flush()
            line = worker.stdout.readline()
        except OSError:
            line = b""
        if not line:
            # it died (killed, out of memory): a new one takes its place at the next batch
            self._drop(worker)
            raise SandboxError(
                "A copy worker process stopped unexpectedly (killed, or out of memory); "
                "the files of the batch it had may be incomplete."
            )
        self._idle.put(worker)
        answer = orjson.loads(line)
        return answer["done"], _error(answer["error"])

    def _take(self) -> subprocess.Popen[bytes]:
        """An idle worker, or a new one while fewer than `size` live; waits for one otherwise."""
        while True:
            with self._lock:
                if self._closed:
                    raise ServiceUnavailable("The copy workers are shutting down.")
                if self._idle.empty() and len(self._all) < self.size:
                    worker = subprocess.Popen(
                        self._command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=self._env,
                        # a Ctrl-C in the terminal is the server's to handle, not the workers'
                        start_new_session=True,
                    )
                    self._all.append(worker)
                    return worker
            try:
                # not forever: a worker that dies meanwhile frees its place, and closing stops us
                return self._idle.get(timeout=TAKE_WAIT_S)
            except queue.Empty:
                continue

    def _drop(self, worker: subprocess.Popen[bytes]) -> None:
        worker.kill()
        worker.wait()
        for pipe in (worker.stdin, worker.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def close(self) -> None:
        """Let each worker finish its batch, then stop them; blocking."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
        for worker in workers:
            assert worker.stdin is not None and worker.stdout is not None
            try:
                worker.stdin.close()
            except OSError:
                pass
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            worker.stdout.close()


def _write(
    conn: sqlite3.Connection, failure: BaseException | None, change: Callable[[sqlite3.Connection], None]
) -> BaseException | None:
    """Record a batch's outcome in one transaction; the batch's own failure comes first."""
    try:
        # the workers take turns by a lock that wakes the next at once; sqlite's own busy wait
        # sleeps in steps of milliseconds
        fcntl.flock(_writer_lock, fcntl.LOCK_EX)
        try:
            with store.transaction(conn, "BEGIN IMMEDIATE"):
                change(conn)
        finally:
            fcntl.flock(_writer_lock, fcntl.LOCK_UN)
    except Exception as exc:
        return failure or exc
    return failure


def _record_copies(
    batch: walkers.CopyBatch, done: list[walkers.Copied], creator: str, run: CopyRun
) -> Callable[[sqlite3.Connection], None] | None:
    """What writes the rows of the documents a batch copied (None: it copied none)."""
    rows = [
        (group[2], walkers.copied_rows(group, copied)) for group, copied in zip(batch, done, strict=False)
    ]
    if not any(found for _, found in rows):
        return None

    def write(conn: sqlite3.Connection) -> None:
        for folder, found in rows:
            if found:
                insert_documents(conn, folder, found, creator, run)

    return write


def _forget_unlinked(
    batch: walkers.UnlinkBatch, done: list[list[str]]
) -> Callable[[sqlite3.Connection], None] | None:
    """What drops the rows of the files a batch removed (None: none had rows)."""
    gone = [
        (group[1], names) for group, names in zip(batch, done, strict=False) if group[1] is not None and names
    ]
    if not gone:
        return None

    def write(conn: sqlite3.Connection) -> None:
        for folder, names in gone:
            assert folder is not None
            forget_children(conn, folder, names)

    return write


def _describe(failure: BaseException | None) -> dict[str, Any] | None:
    if failure is None:
        return None
    if isinstance(failure, fsops.Gone):
        return {"kind": "gone", "depth": failure.depth}
    if isinstance(failure, sqlite3.Error):
        # the store's disk full or read-only is the disk's doing, told as the server would tell it
        failure = from_store_error(failure) or failure
    if isinstance(failure, SandboxError):
        return {"kind": "sandbox", "class": type(failure).__name__, "message": failure.detail}
    if isinstance(failure, OSError) and failure.errno is not None:
        return {"kind": "os", "errno": failure.errno, "strerror": failure.strerror or ""}
    return {"kind": "other", "message": f"{type(failure).__name__}: {failure}"}


def _error(described: dict[str, Any] | None) -> BaseException | None:
    if described is None:
        return None
    if described["kind"] == "gone":
        return fsops.Gone(described["depth"])
    if described["kind"] == "sandbox":
        # the same class (and so status) as in the worker; a bare SandboxError if it is not one of ours
        kind = getattr(errors, described.get("class", ""), SandboxError)
        if not (isinstance(kind, type) and issubclass(kind, SandboxError)) or kind is errors.InjectedFailure:
            kind = SandboxError
        return kind(described["message"])
    if described["kind"] == "os":
        return OSError(described["errno"], described["strerror"])
    return RuntimeError(described["message"])


def _watch_parent(parent: int) -> None:
    """Exit as soon as the server is gone (killed outright, it cannot close our stdin first):
    a batch must not go on writing into a root that a restarted server is already tidying."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _open_root(root: str, device: int, inode: int) -> int:
    """The storage root the server serves, opened by its path; refused if it is another folder now."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (device, inode):
        os.close(fd)
        raise RuntimeError(f"{root} is no longer the folder the server serves")
    return fd


def _run(batch: Callable[..., None], *args: Any) -> tuple[list[Any], BaseException | None]:
    """Run copy_batch or unlink_batch: what it did, and what stopped it."""
    done: list[Any] = []
    try:
        batch(*args, done)
    except BaseException as exc:
        return done, exc
    return done, None


def main() -> None:
    root_fd = _open_root(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    # a worker ends only when the server closes its stdin, or is gone: a signal meant for the
    # server (systemctl stop signals every process of the service) must not cut a batch short
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    # the server answering requests comes first; a copy takes the CPU that is left
    os.nice(WORKER_NICENESS)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    # rows are written here too, beside the server's own connection: the server's process has
    # enough to do answering requests
    store_fd, conn = store.connect_from(root_fd)
    global _writer_lock
    _writer_lock = os.open(
        WRITER_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=store_fd
    )
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = orjson.loads(line)
        if request["op"] == "copy":
            batch = request["batch"]
            done, failure = _run(walkers.copy_batch, root_fd, batch, request["stem"])
            write = _record_copies(batch, done, request["creator"], CopyRun(*request["run"]))
        else:
            batch = request["batch"]
            done, failure = _run(walkers.unlink_batch, root_fd, batch)
            write = _forget_unlinked(batch, done)
        if write is not None:
            failure = _write(conn, failure, write)
        try:
            out.write(orjson.dumps({"done": done, "error": _describe(failure)}) + b"\n")
            out.flush()
        except BrokenPipeError:
            os._exit(1)  # the server is gone


if __name__ == "__main__":
    main()
