"""Benchmark: an Open Connectors bulk job over a 100,000-entry tree, and the download of its records.

Starts `python -m server` on a fresh storage root holding `--folders` folders of `--files` empty
files each (200 x 500 by default), talks to it over 127.0.0.1 only with the hub's credentials, and:

- runs `select * from files` as a bulk job, from the POST to the status that says COMPLETED, next
  to `find -printf` writing the same listing (path, size, time) to a file; the first job also gives
  every entry its id, so it is shown apart from the ones after it;
- downloads the job's records as NDJSON, JSON and CSV (by Accept), each `--runs` times, from the
  request to the last byte: records per second (target for NDJSON >= 50,000), the time to the first
  byte, and the server's peak RSS growth during each download, the warm-up's included (read from
  /proc/<pid>/status; target <= 32 MiB), next to this process making the same bytes from the job's
  file without HTTP (reading it for NDJSON; joining its lines for JSON; csv.writer for CSV).

Runs alternate sandbox and baseline and report medians with their spread (min-max over the
median), which is the machine's noise. The work folder defaults to /dev/shm (a tmpfs) where there
is one, so that what is measured is the work, not the disk's writeback.

    python bench/bulk.py [--folders 200] [--files 500] [--runs 5] [--job-runs 3] [--dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import math
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
from common import (
    PeakSampler,
    add_dir_option,
    make_empty_tree,
    print_table,
    rss_kib,
    start_server,
    timed,
    work_folder,
)

HUB_AUTH = {"Authorization": "User sandbox-user-secret, Element sandbox-element-token"}
BULK = "/elements/api-v2/hubs/documents/bulk"
QUERY = "select * from files"
# how often the timing client polls a job; small, so that it adds little to what is measured
POLL_S = 0.005
READ_CHUNK = 1024 * 1024
# the record fields a CSV has, in the hub's order (server.ceql.FIELDS)
FIELDS = ("id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags")
# media type -> what begins each record in it (counted as the bytes go by)
FORMATS = {
    "application/x-ndjson": b"\n",
    "application/json": b'{"id"',
    "text/csv": b"\r\n",
}


class Counter:
    """Counts a pattern in a stream of chunks, across chunk boundaries too."""

    def __init__(self, pattern: bytes) -> None:
        self.pattern, self.count, self._tail = pattern, 0, b""

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        self.count += data.count(self.pattern)
        # (a pattern cut in two is counted once its end arrives; one found whole is not kept)
        keep = len(self.pattern) - 1
        self._tail = data[-keep:] if keep and not data.endswith(self.pattern) else b""


async def run_job(http: aiohttp.ClientSession, base: str) -> tuple[int, float, dict[str, object]]:
    """A bulk job from the POST to COMPLETED: its id, how long it took and its status object."""
    t0 = time.perf_counter()
    async with http.post(f"{base}{BULK}/query", params={"q": QUERY}, headers=HUB_AUTH) as r:
        assert r.status == 200, await r.text()
        job = int((await r.json())["id"])
    while True:
        async with http.get(f"{base}{BULK}/{job}/status", headers=HUB_AUTH) as r:
            status = await r.json()
        if status["status"] != "RUNNING" and status["status"] != "CREATED":
            assert status["status"] == "COMPLETED", status
            return job, time.perf_counter() - t0, status
        await asyncio.sleep(POLL_S)


async def download(
    http: aiohttp.ClientSession, base: str, job: int, media: str, pid: int
) -> tuple[float, float, int, float]:
    """The records in one format, from the request to the last byte: seconds, seconds to the first
    byte, records, and the server's peak RSS growth meanwhile (MiB)."""
    counter = Counter(FORMATS[media])
    before = rss_kib(pid)
    sampler = PeakSampler(pid)
    sampler.start()
    t0 = time.perf_counter()
    first = math.nan
    async with http.get(f"{base}{BULK}/{job}/files", headers={**HUB_AUTH, "Accept": media}) as r:
        assert r.status == 200 and r.content_type == media, (r.status, r.content_type)
        async for chunk in r.content.iter_any():
            if math.isnan(first):
                first = time.perf_counter() - t0
            counter.feed(chunk)
    elapsed = time.perf_counter() - t0
    growth = (sampler.stop() - before) / 1024
    records = counter.count - (1 if media == "text/csv" else 0)  # (a CSV's header row)
    return elapsed, first, records, growth


# ---- baselines: the same bytes from the job's file, in this process, without HTTP ---------------


def _read_ndjson(file: Path) -> int:
    records = 0
    with file.open("rb") as f:
        while chunk := f.read(READ_CHUNK):
            records += chunk.count(b"\n")
    return records


def _join_json(file: Path) -> int:
    lines = file.read_bytes().splitlines()
    body = b"[" + b",".join(lines) + b"]"
    assert body.endswith(b"]")
    return len(lines)


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return "" if value is None else value


def _write_csv(file: Path) -> int:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    records = size = 0
    with file.open("rb") as f:
        for line in f:
            found = orjson.loads(line)
            writer.writerow([_cell(found.get(name)) for name in FIELDS])
            records += 1
            if out.tell() > READ_CHUNK:  # (encoded a chunk at a time, as a server would send it)
                size += len(out.getvalue().encode())
                out.seek(0)
                out.truncate()
    size += len(out.getvalue().encode())
    return records


BASELINES: dict[str, tuple[str, Callable[[Path], int]]] = {
    "application/x-ndjson": ("reading the job's file", _read_ndjson),
    "application/json": ("joining its lines into an array", _join_json),
    "text/csv": ("csv.writer over its lines", _write_csv),
}


def baseline(media: str, file: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    records = BASELINES[media][1](file)
    return time.perf_counter() - t0, records


def spread(values: list[float]) -> str:
    """The machine's noise over a set of runs: min-max, and their gap over the median."""
    median = statistics.median(values)
    gap = (max(values) - min(values)) / median * 100 if median else math.nan
    return f"{min(values):,.0f}-{max(values):,.0f} ({gap:.0f}%)"


Rows = list[tuple[str, float, float, str]]


async def run(args: argparse.Namespace, work: Path) -> tuple[Rows, Rows]:
    """The job's rows (seconds) and the downloads' (records per second)."""
    root = work / "root"
    t0 = time.perf_counter()
    make_empty_tree(root / "tree", args.folders, args.files)
    entries = args.folders * args.files
    print(f"made {entries:,} empty files in {args.folders} folders in {time.perf_counter() - t0:.1f} s")
    proc, base = start_server(root)
    rows: Rows = []
    downloads: Rows = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            # ---- the job ---------------------------------------------------------------------
            listing = work / "find.txt"
            jobs: list[tuple[int, float]] = []
            finds: list[float] = []
            for _ in range(args.job_runs):
                finds.append(timed("find", str(root / "tree"), "-fprintf", str(listing), "%p %s %T@\n"))
                job, seconds, status = await run_job(http, base)
                assert status["recordsCount"] == entries, status
                jobs.append((job, seconds))
            rows.append(
                (
                    f"bulk job '{QUERY}', {entries:,} records: the first",
                    jobs[0][1],
                    finds[0],
                    "vs find -fprintf (path size mtime); gives every entry its id",
                )
            )
            if len(jobs) > 1:
                again = [seconds for _, seconds in jobs[1:]]
                rows.append(
                    (
                        f"  the same job again (median of {len(again)})",
                        statistics.median(again),
                        statistics.median(finds[1:]),
                        f"vs find -fprintf; runs {min(again):.2f}-{max(again):.2f} s",
                    )
                )
            job = jobs[-1][0]
            # (the job's file: every job wrote the same records; the newest is the last job's)
            file = max((root / ".sandbox").rglob("*.ndjson"), key=lambda p: p.stat().st_mtime_ns)
            size_mib = file.stat().st_size / 2**20

            # ---- the downloads -----------------------------------------------------------------
            for media in FORMATS:
                ours: list[float] = []
                firsts: list[float] = []
                growths: list[float] = []
                theirs: list[float] = []
                for i in range(args.runs + 1):  # the first round warms caches and is not counted
                    seconds, first, records, growth = await download(http, base, job, media, proc.pid)
                    assert records == entries, (media, records)
                    base_s, base_records = baseline(media, file)
                    assert base_records == entries, (media, base_records)
                    growths.append(growth)  # (the warm-up's too: the first download allocates most)
                    if i:
                        ours.append(records / seconds)
                        firsts.append(first * 1000)
                        theirs.append(base_records / base_s)
                target = " (target >= 50,000)" if media == "application/x-ndjson" else ""
                downloads.append(
                    (
                        f"download as {media}, records/s (median of {args.runs})",
                        statistics.median(ours),
                        statistics.median(theirs),
                        f"vs {BASELINES[media][0]}{target}; runs {spread(ours)}, baseline {spread(theirs)}; "
                        f"first byte {statistics.median(firsts):.1f} ms; RSS growth max "
                        f"{max(growths):.1f} MiB (target <= 32) over all {len(growths)} downloads",
                    )
                )
            print(f"the job's file: {size_mib:.1f} MiB, {entries:,} records")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return rows, downloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--folders", type=int, default=200)
    parser.add_argument("--files", type=int, default=500, help="empty files per folder")
    parser.add_argument("--runs", type=int, default=5, help="downloads per format (after one warm-up)")
    parser.add_argument("--job-runs", type=int, default=3, help="bulk jobs run (the first gives ids)")
    add_dir_option(parser)
    args = parser.parse_args()
    with work_folder(args.dir) as work:
        jobs, downloads = asyncio.run(run(args, work))
    print_table(jobs, columns=("sandbox s", "baseline s"), digits=2)
    print_table(downloads, columns=("records/s", "baseline"), digits=0)


if __name__ == "__main__":
    main()
