"""Benchmark: v2 export of one large document (ExportAsync to Completed, then the full download of
`result.uri` to a file) against `cp` of the same file.

Starts `python -m server` on a fresh storage root and talks to it over 127.0.0.1 only. Each run,
side by side on the same file in the same folder: `cp big.bin cp.bin`, then an export timed from
the POST to the end of its download (a long-polled GET Tasks answers when the task ends), the
download written to `dl.bin` in that folder as cp's copy is, once by an aiohttp client and once
by `curl -o` (when there is a curl): what the server can do apart from a Python client's cost.
Each timed step starts after a `sync` (on a disk, what an earlier step left to write back would
slow whichever step comes next). The copies are removed between runs; the first round warms
caches and is not counted. The target is a ratio <= 1.2 (issue 14). The export and the download
are also shown apart, with the server's peak RSS growth.

    python bench/export.py [--mib 1024] [--runs 5] [--dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from common import (
    REPO,
    PeakSampler,
    add_dir_option,
    make_file,
    print_table,
    rss_kib,
    sign_in,
    start_server,
    work_folder,
)

# the download is read and written this much at a time
READ_CHUNK = 4 * 1024 * 1024

Download = Callable[[str, Path], Awaitable[None]]


def timed_cp(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    return time.perf_counter() - t0


async def export(http: aiohttp.ClientSession, api: str, auth: dict[str, str], entry_id: int) -> str:
    """Start the export and long-poll its task until it ends; the download URI."""
    url = f"{api}/Entries/{entry_id}/ExportAsync"
    async with http.post(url, json={"part": "Edoc"}, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["taskId"]
    while True:
        async with http.get(f"{api}/Tasks", params={"taskIds": task_id}, headers=auth) as r:
            [task] = (await r.json())["value"]
        if task["status"] not in ("NotStarted", "InProgress"):
            assert task["status"] == "Completed", task
            return str(task["result"]["uri"])


def aiohttp_download(http: aiohttp.ClientSession, auth: dict[str, str]) -> Download:
    async def download(uri: str, out: Path) -> None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            async with http.get(uri, headers=auth) as r:
                assert r.status == 200, await r.text()
                async for chunk in r.content.iter_chunked(READ_CHUNK):
                    os.write(fd, chunk)  # (tmpfs or the page cache: a memory copy)
        finally:
            os.close(fd)

    return download


def curl_download(auth: dict[str, str]) -> Download:
    header = "Authorization: " + auth["Authorization"]

    async def download(uri: str, out: Path) -> None:
        proc = await asyncio.create_subprocess_exec("curl", "-sf", "-H", header, "-o", str(out), uri)
        assert await proc.wait() == 0

    return download


async def run(args: argparse.Namespace, work: Path) -> list[tuple[str, float, float, str]]:
    root = work / "root"
    root.mkdir()
    make_file(root / "big.bin", args.mib)
    size = args.mib * 1024 * 1024
    proc, base = start_server(root)
    api = f"{base}/v2/Repositories/{REPO}"
    cps: list[float] = []
    # per client: total, export, download times, RSS growths
    timings: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            auth = await sign_in(http, f"{base}/v1/Repositories/{REPO}")
            params = {"fullPath": "\\big.bin"}
            async with http.get(f"{api}/Entries/ByPath", params=params, headers=auth) as r:
                entry_id = int((await r.json())["entry"]["id"])
            clients = {"aiohttp": aiohttp_download(http, auth)}
            if shutil.which("curl"):
                clients["curl"] = curl_download(auth)
            for i in range(args.runs + 1):
                os.sync()  # (each timed step starts with nothing left to write back)
                cp = timed_cp(root / "big.bin", work / "cp.bin")
                (work / "cp.bin").unlink()
                for name, download in clients.items():
                    os.sync()
                    before = rss_kib(proc.pid)
                    sampler = PeakSampler(proc.pid)
                    sampler.start()
                    t0 = time.perf_counter()
                    uri = await export(http, api, auth, entry_id)
                    t1 = time.perf_counter()
                    await download(uri, work / "dl.bin")
                    t2 = time.perf_counter()
                    growth = (sampler.stop() - before) / 1024
                    assert (work / "dl.bin").stat().st_size == size
                    (work / "dl.bin").unlink()
                    if i:  # (the first round warms caches)
                        for values, value in zip(
                            timings.setdefault(name, ([], [], [], [])),
                            (t2 - t0, t1 - t0, t2 - t1, growth),
                            strict=True,
                        ):
                            values.append(value)
                if i:
                    cps.append(cp)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    cp = statistics.median(cps)
    rows = [(f"cp of {args.mib} MiB (median of {args.runs})", cp, cp, f"spread {_spread(cps)}")]
    for name, (totals, exports, downloads, growths) in timings.items():
        rows += [
            (
                f"export + download by {name} (median of {args.runs})",
                statistics.median(totals),
                cp,
                f"vs cp; target <= 1.2; spread {_spread(totals)}",
            ),
            (
                "  of which ExportAsync to Completed",
                statistics.median(exports),
                cp,
                f"spread {_spread(exports)}",
            ),
            (
                "  of which the download",
                statistics.median(downloads),
                cp,
                f"spread {_spread(downloads)}; server peak RSS growth {max(growths):.1f} MiB",
            ),
        ]
    return rows


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    add_dir_option(parser)
    args = parser.parse_args()
    with work_folder(args.dir) as work:
        rows = asyncio.run(run(args, work))
    print_table(rows)


if __name__ == "__main__":
    main()
