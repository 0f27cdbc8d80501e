"""`python -m server.testing.runner FOLDER`: a sandbox server for the pytest plugin, started ahead.

It imports the server first (most of a start's cost), then reads its flags, one JSON list on one
line of stdin, and runs `python -m server` with them. The plugin holds the write end of that stdin,
so its end means the test process is gone (killed outright, with no chance to stop its servers) or
no longer wants this spare: the server then stops as on SIGTERM, and FOLDER (the temporary copy it
served, and its output) is removed, since nobody else will. A server that does not stop in time is
left to exit at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

# a clean stop takes the server's own shutdown grace (5 s) and a little more
ORPHAN_STOP_S = 10.0


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    orphaned = threading.Event()
    # until the server sets its own handler, SIGTERM unwinds this process
    signal.signal(signal.SIGTERM, _exit)
    try:
        from server.__main__ import main as serve

        flags = _flags()
        if flags is None:
            orphaned.set()
            return 0
        threading.Thread(target=_watch_parent, args=(folder, orphaned), daemon=True).start()
        return serve(flags)
    finally:
        if orphaned.is_set():
            shutil.rmtree(folder, ignore_errors=True)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _flags() -> list[str] | None:
    """The first line of stdin as a list of flags; None if stdin ends first."""
    line = b""
    while not line.endswith(b"\n"):
        # the raw descriptor, not sys.stdin: what follows the line stays for _watch_parent
        chunk = os.read(0, 1)
        if not chunk:
            return None
        line += chunk
    flags: list[str] = json.loads(line)
    return flags


def _watch_parent(folder: Path, orphaned: threading.Event) -> None:
    # (a daemon thread blocked inside sys.stdin's buffered reader could abort the interpreter's exit)
    while os.read(0, 4096):
        pass
    orphaned.set()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_STOP_S)
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
