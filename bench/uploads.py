"""Benchmark: a v2 upload in parts of one large file (CreateMultipartUploadUrls, PUT of every part,
ImportUploadedParts to Completed) against `cp` of the same file.

Starts `python -m server` on a fresh storage root and talks to it over 127.0.0.1 only. Each run,
side by side on the same file in the same folder: `cp big.bin cp-N.bin`, then the upload, timed
from the first POST to the answer of a long-polled GET Tasks that says Completed. The parts are
read from big.bin and PUT `--parallel` at a time (as the vendor's clients do). Both copies are
removed between runs; the first round warms caches and is not counted. Targets (issue 14): a ratio
<= 1.5, and the server's RSS growth <= 64 MiB. The PUT and assembly halves are shown apart, and so
is the MD5 of the file on one core: every part's ETag is its MD5, so that is a floor no upload in
parts goes below (on a machine whose MD5 is slower than its page-cache copy, above the bar).

    python bench/uploads.py [--mib 1024] [--parts 10] [--parallel 4] [--runs 5] [--dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from common import (
    PeakSampler,
    add_dir_option,
    make_file,
    print_table,
    rss_kib,
    sign_in,
    start_server,
    work_folder,
)

# a part is read from the file and sent this much at a time
READ_CHUNK = 4 * 1024 * 1024


def timed_md5(src: Path) -> float:
    """MD5 of the whole file on one core: what the parts' ETags cost at the least (S3's ETag is
    the MD5; hashlib runs two parts side by side on two cores at best)."""
    t0 = time.perf_counter()
    md5 = hashlib.md5(usedforsecurity=False)
    with src.open("rb") as f:
        while chunk := f.read(READ_CHUNK):
            md5.update(chunk)
    return time.perf_counter() - t0


def timed_cp(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    return time.perf_counter() - t0


async def _read(path: Path, offset: int, size: int) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        f.seek(offset)
        while size > 0:
            chunk = f.read(min(READ_CHUNK, size))
            size -= len(chunk)
            yield chunk


async def put_parts(http: aiohttp.ClientSession, path: Path, urls: list[str], parallel: int) -> list[str]:
    total = path.stat().st_size
    each = total // len(urls)
    sizes = [each] * (len(urls) - 1) + [total - each * (len(urls) - 1)]
    etags = [""] * len(urls)
    gate = asyncio.Semaphore(parallel)

    async def put(i: int) -> None:
        length = {"Content-Length": str(sizes[i])}  # (as S3 wants it: no chunked encoding)
        async with gate, http.put(urls[i], data=_read(path, i * each, sizes[i]), headers=length) as r:
            assert r.status == 200, await r.text()
            etags[i] = r.headers["ETag"]

    await asyncio.gather(*(put(i) for i in range(len(urls))))
    return etags


async def upload(
    http: aiohttp.ClientSession,
    v2: str,
    auth: dict[str, str],
    path: Path,
    name: str,
    parts: int,
    parallel: int,
) -> tuple[float, float]:
    """The upload, end to end: (seconds to PUT every part, seconds from the import to Completed)."""
    t0 = time.perf_counter()
    body = {"numberOfParts": parts, "fileName": path.name, "mimeType": "application/octet-stream"}
    async with http.post(f"{v2}/Entries/CreateMultipartUploadUrls", json=body, headers=auth) as r:
        assert r.status == 200, await r.text()
        made = await r.json()
    etags = await put_parts(http, path, made["urls"], parallel)
    t1 = time.perf_counter()
    body = {"uploadId": made["uploadId"], "partETags": etags, "name": name}
    async with http.post(f"{v2}/Entries/1/Folder/ImportUploadedParts", json=body, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["taskId"]
    while True:
        async with http.get(f"{v2}/Tasks", params={"taskIds": task_id}, headers=auth) as r:
            [task] = (await r.json())["value"]
        if task["status"] not in ("NotStarted", "InProgress"):
            assert task["status"] == "Completed", task
            return t1 - t0, time.perf_counter() - t1


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--parts", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    add_dir_option(parser)
    args = parser.parse_args()
    with work_folder(args.dir) as work:
        big = work / "big.bin"
        make_file(big, args.mib)
        root = work / "root"
        root.mkdir()
        proc, base = start_server(root)
        v2 = f"{base}/v2/Repositories/r-sandbox"
        ours: list[float] = []
        puts: list[float] = []
        assembles: list[float] = []
        cps: list[float] = []
        md5s: list[float] = []
        growth = 0
        try:
            timeout = aiohttp.ClientTimeout(total=None)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                auth = await sign_in(http, f"{base}/v1/Repositories/r-sandbox")
                for run in range(args.runs + 1):
                    cp_s = timed_cp(big, work / f"cp-{run}.bin")
                    md5_s = timed_md5(big)
                    before = rss_kib(proc.pid)
                    sampler = PeakSampler(proc.pid)
                    sampler.start()
                    put_s, assemble_s = await upload(
                        http, v2, auth, big, f"up-{run}.bin", args.parts, args.parallel
                    )
                    peak = sampler.stop()
                    (work / f"cp-{run}.bin").unlink()
                    (root / f"up-{run}.bin").unlink()
                    if run == 0:
                        continue  # (warming up)
                    growth = max(growth, peak - before)
                    cps.append(cp_s)
                    md5s.append(md5_s)
                    puts.append(put_s)
                    assembles.append(assemble_s)
                    ours.append(put_s + assemble_s)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    def spread(values: list[float]) -> str:
        return f"{min(values):.3f}-{max(values):.3f}"

    ratios = [o / c for o, c in zip(ours, cps, strict=True)]
    note = (
        f"ratio spread {min(ratios):.2f}-{max(ratios):.2f}; RSS growth {growth / 1024:.1f} MiB (target <= 64)"
    )
    print_table(
        [
            (
                f"upload in {args.parts} parts of {args.mib} MiB / cp (<= 1.5)",
                statistics.median(ours),
                statistics.median(cps),
                note,
            ),
            (
                f"  of which PUT of the parts ({args.parallel} at a time)",
                statistics.median(puts),
                float("nan"),
                spread(puts),
            ),
            (
                "  of which ImportUploadedParts to Completed",
                statistics.median(assembles),
                float("nan"),
                spread(assembles),
            ),
            ("  cp", statistics.median(cps), float("nan"), spread(cps)),
            (
                "MD5 of the file on one core (the ETags' floor) / cp",
                statistics.median(md5s),
                statistics.median(cps),
                spread(md5s),
            ),
        ]
    )


if __name__ == "__main__":
    asyncio.run(main())
