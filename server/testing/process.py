"""A sandbox server in a child process over a temporary copy of a storage root, and its stop.

A child process rather than a thread of the test's own process: the test's warning filters,
monkeypatches and signals never reach the server, a server stuck on its way out can be killed, and
its copy workers (server/copyworker.py) are killed with it as one process group.

A new interpreter spends about 0.4 s on one idle core importing the server, so one is started
ahead: a spare (server/testing/runner.py) that has done its imports and waits for its flags. A start
copies the storage root, hands the spare its flags and waits for its banner (about 0.05 s), and
starts the next spare, which imports while the test runs. The plugin starts the first spare when it
sees tests that use its fixtures.

Nothing outlives the test: `stop()` sends SIGTERM, then SIGKILL to the whole group after
`stop_timeout`, then removes the temporary folder (the copy and the server's output). What a stop
cannot reach is covered twice more: an `atexit` hook stops whatever is still running when the test
process ends (a KeyboardInterrupt), and the child itself stops and removes its folder when the test
process dies outright (its stdin ends).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import server

# a server that has not printed its banner by then is taken for broken (a loaded CI machine starts
# one in a few seconds at worst)
START_TIMEOUT_S = 30.0
# a clean stop takes the server's own shutdown grace (5 s, server/__main__.py) and a little more
STOP_TIMEOUT_S = 10.0
# a process group that SIGKILL does not empty by then is left to the operating system
KILL_TIMEOUT_S = 5.0
# how often a start looks for the banner and a stop for the exit
POLL_S = 0.005
BANNER = re.compile(rb"base URL:\s+(\S+)")
# the temporary folders, under the system's temporary directory (TMPDIR)
FOLDER_PREFIX = "sandbox-plugin-"
# the store of a storage root (its ids, sessions, operations): a copy starts without it
STORE_NAME = ".sandbox"
# every server gets this environment: the test process's as it started (a test's monkeypatching
# does not reach a spare started during it), without SANDBOX_* variables (the flags say it all)
_ENV = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}


class SandboxError(Exception):
    """A sandbox would not start (bad flags, a storage root it refuses, no banner in time)."""


class ServerProcess:
    """One server process (a spare until it is handed its flags): its temporary folder and base URL."""

    def __init__(self, proc: subprocess.Popen[bytes], folder: Path) -> None:
        self.proc = proc
        self.folder = folder
        self.base_url = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def root(self) -> Path:
        """The temporary copy the server serves."""
        return self.folder / "root"

    def output(self) -> str:
        """What the server wrote: its banner, then its log."""
        text = ""
        for name in ("stdout", "stderr"):
            path = self.folder / f"server.{name}"
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def running(self) -> bool:
        return not _exited(self.proc)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop it, remove its folder; False when it had to be killed."""
        clean = True
        try:
            if not _exited(self.proc):
                self.proc.send_signal(signal.SIGTERM)
                clean = _wait_exit(self.proc, timeout)
            # the group goes too: copy workers, and everything of a server that would not stop
            # (while the leader is unreaped, its group id cannot belong to anyone else)
            _kill_group(self.proc.pid)
            if not clean:
                _wait_exit(self.proc, KILL_TIMEOUT_S)
            self.proc.wait(KILL_TIMEOUT_S)
        finally:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            _live.discard(self)
            shutil.rmtree(self.folder, ignore_errors=True)
        return clean


_live: set[ServerProcess] = set()
_spare: ServerProcess | None = None
# (a test may start sandboxes from threads of its own: each takes a spare of its own)
_spare_lock = threading.Lock()


def prepare() -> None:
    """Start a spare now, if there is none, so that the next start finds one ready."""
    global _spare
    with _spare_lock:
        if _spare is None or not _spare.running():
            _spare = _spawn()


def _take_spare() -> ServerProcess:
    global _spare
    with _spare_lock:
        taken, _spare = _spare, None
    if taken is not None and taken.running():
        return taken
    if taken is not None:
        taken.stop()  # (it died waiting: a new one tells why, if it was no accident)
    return _spawn()


@atexit.register
def shutdown() -> None:
    """Stop the spare and whatever still runs (at exit: a session was interrupted)."""
    global _spare
    with _spare_lock:
        _spare = None
    for process in list(_live):
        process.stop(timeout=1.0)


def launch(source: Path, flags: list[str], timeout: float = START_TIMEOUT_S) -> ServerProcess:
    """A server over a copy of `source` (its store left out), ready to answer."""
    process = _take_spare()
    try:
        root = process.root
        shutil.copytree(source, root, symlinks=True, ignore=lambda at, names: _store_of(source, at, names))
        assert process.proc.stdin is not None
        flags = [*flags, "--host", "127.0.0.1", "--port", "0", "--storage-root", str(root)]
        process.proc.stdin.write(json.dumps(flags).encode() + b"\n")
        process.proc.stdin.flush()
        prepare()  # the next one imports while this one opens its store
        process.base_url = _banner(process, timeout)
    except BaseException:
        process.stop(timeout=1.0)
        raise
    return process


def _store_of(source: Path, folder: str, names: list[str]) -> list[str]:
    return [STORE_NAME] if Path(folder) == source and STORE_NAME in names else []


def _spawn() -> ServerProcess:
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    env = dict(_ENV)
    if (parent := _outside_site()) is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, _ENV.get("PYTHONPATH")) if p)
    command = [sys.executable, "-P", "-m", "server.testing.runner", str(folder)]
    try:
        with open(folder / "server.stdout", "wb") as out, open(folder / "server.stderr", "wb") as err:
            proc = subprocess.Popen(
                command,
                cwd=folder,
                env=env,
                # its flags come through this pipe; its end comes when this process is gone
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                # its own process group: killed as one, and out of reach of the terminal's Ctrl-C
                start_new_session=True,
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    process = ServerProcess(proc, folder)
    _live.add(process)
    return process


def _outside_site() -> str | None:
    """The folder `server` was imported from, when it is not a site directory (a checkout, or a
    folder on PYTHONPATH): the server's interpreter and its copy workers run with -P (never their
    working folder on the path) and import `server` from there too."""
    parent = Path(server.__file__).resolve().parent.parent
    sites = {Path(p).resolve() for p in (*site.getsitepackages(), site.getusersitepackages())}
    return None if parent in sites else str(parent)


def _banner(process: ServerProcess, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    stdout = process.folder / "server.stdout"
    while time.monotonic() < deadline:
        found = BANNER.search(stdout.read_bytes())
        if found:
            return found.group(1).decode().rstrip("/")
        if _exited(process.proc):
            raise SandboxError(f"the sandbox server exited before it was ready:\n{process.output()}")
        time.sleep(POLL_S)
    raise SandboxError(f"the sandbox server was not ready within {timeout:g} s:\n{process.output()}")


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it (its pid and group id stay its own)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _exited(proc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already empty
