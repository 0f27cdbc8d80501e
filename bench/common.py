"""What the benchmarks share: a server subprocess, sign-in, RSS sampling, test files, the table."""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

REPO = "r-sandbox"
CHUNK = 4 * 1024 * 1024


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for {pid}")


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakSampler(threading.Thread):
    """Samples a process's RSS every few milliseconds; `peak` is the largest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.005)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


SHM = Path("/dev/shm")


def add_dir_option(parser: argparse.ArgumentParser, default: Path | None = SHM) -> None:
    """--dir: where the work folder goes (in memory by default, so that the disk's writeback does
    not drown the comparison)."""
    default = default if default is not None and default.is_dir() else None
    shown = default or "a temp dir"
    parser.add_argument("--dir", type=Path, default=default, help=f"work folder (default: {shown})")


@contextmanager
def work_folder(parent: Path | None, prefix: str = "sandbox-bench-") -> Iterator[Path]:
    """A fresh folder under `parent` for one benchmark run, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    print(f"work folder: {work}")
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def start_server(root: Path, *flags: str, cwd: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """`python -m server` on `root`, on a free port; returns the process and its base URL. `cwd`:
    the checkout whose `server` package runs (another commit's worktree), else this one's."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--port",
            "0",
            "--storage-root",
            str(root),
            "--log-level",
            "WARNING",
            *flags,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"base URL:\s+(\S+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError("server did not start")


async def sign_in(http: aiohttp.ClientSession, api: str) -> dict[str, str]:
    """A new session's Authorization header."""
    form = {"grant_type": "password", "username": "admin", "password": "admin"}
    async with http.post(f"{api}/Token", data=form) as r:
        token = (await r.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


def make_tree(top: Path, files: int, folders: int, size: int) -> None:
    """`files` documents of `size` bytes spread over `folders` folders."""
    block = bytes(range(256)) * (size // 256)
    for f in range(folders):
        folder = top / f"folder-{f:03d}"
        folder.mkdir(parents=True)
        for n in range(files // folders):
            (folder / f"doc-{n:04d}.bin").write_bytes(block)


def make_empty_tree(top: Path, folders: int, files: int) -> None:
    """`folders` folders of `files` empty documents each (folder-000/doc-0000.txt, …)."""
    for f in range(folders):
        folder = top / f"folder-{f:03d}"
        folder.mkdir(parents=True)
        for n in range(files):
            (folder / f"doc-{n:04d}.txt").touch()


def make_file(path: Path, mib: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as out:
        for _ in range(mib * 1024 * 1024 // CHUNK):
            out.write(block)


def print_table(
    rows: list[tuple[str, float, float, str]],
    columns: tuple[str, str] = ("sandbox s", "baseline s"),
    digits: int = 4,
) -> None:
    """One row per case: its figure, the figure it is compared with, their ratio and a note. A
    baseline of NaN (nothing to compare with) shows as `-`; so does a ratio to NaN or 0."""
    print(f"\n{'case':<58} {columns[0]:>10} {columns[1]:>11} {'ratio':>8}  notes")
    for name, ours, base, note in rows:
        shown = f"{'-':>11}" if math.isnan(base) else f"{base:>11.{digits}f}"
        ratio = f"{ours / base:>8.2f}" if base and not math.isnan(base) else f"{'-':>8}"
        print(f"{name:<58} {ours:>10.{digits}f} {shown} {ratio}  {note}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(*command: str) -> float:
    """Seconds a command takes to run to its end (its output dropped)."""
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0
