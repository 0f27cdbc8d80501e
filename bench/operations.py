"""Benchmark: long operations (CopyAsync, DELETE Entries, Tasks polling) against cp and rm.

Starts `python -m server` on a fresh storage root, talks to it over 127.0.0.1 only, and times each
operation end to end, from the POST to the status that says it is done, side by side with the
baseline on the same tree in the same folder:

- a tree of 10,000 files of 4 KiB in 100 folders: CopyAsync against `cp -r` (target ratio <= 1.25);
- one 1 GiB file: CopyAsync against `cp`, with the server's RSS growth (target: ratio <= 1.15,
  growth < 64 MiB);
- the 10,000-file copy again while 50 concurrent pollers read GET /Tasks/{token}: their p50/p99
  latency (target p99 <= 20 ms) and errors (target none);
- DELETE of the 10,000-file copy against `rm -rf` (target ratio <= 1.5).

Runs alternate sandbox and baseline and report medians. The work folder defaults to /dev/shm (a
tmpfs) where there is one, so that what is measured is the work, not the disk's writeback.

    python bench/operations.py [--files 10000] [--folders 100] [--big-mib 1024] [--runs 5] [--dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import time
from pathlib import Path

import aiohttp
from common import (
    REPO,
    PeakSampler,
    add_dir_option,
    make_file,
    make_tree,
    percentile,
    print_table,
    rss_kib,
    sign_in,
    start_server,
    timed,
    work_folder,
)

FOLDER = "Laserfiche.Repository.Folder"
# how often the timing client polls; small, so that it adds little to what is measured
POLL_S = 0.002


class Client:
    def __init__(self, http: aiohttp.ClientSession, api: str, auth: dict[str, str]) -> None:
        self.http, self.api, self.auth = http, api, auth

    async def entry_id(self, path: str) -> int:
        params = {"fullPath": path}
        async with self.http.get(f"{self.api}/Entries/ByPath", params=params, headers=self.auth) as r:
            return int((await r.json())["entry"]["id"])

    async def copy(self, source_id: int, name: str) -> str:
        url = f"{self.api}/Entries/1/{FOLDER}/children/CopyAsync"
        async with self.http.post(url, json={"sourceId": source_id, "name": name}, headers=self.auth) as r:
            assert r.status == 202, await r.text()
            return str((await r.json())["token"])

    async def delete(self, entry_id: int) -> str:
        async with self.http.delete(f"{self.api}/Entries/{entry_id}", headers=self.auth) as r:
            assert r.status == 202, await r.text()
            return str((await r.json())["token"])

    async def wait(self, token: str, long_poll: bool = False) -> dict[str, object]:
        """Poll until the operation ends; its final progress (a completed copy answers 302).
        `long_poll`: ask the server to answer once it has ended (`?wait=`), so that no polling
        adds to what is measured."""
        params = {"wait": "60"} if long_poll else {}
        while True:
            async with self.http.get(
                f"{self.api}/Tasks/{token}", params=params, headers=self.auth, allow_redirects=False
            ) as r:
                body = await r.json()
                if r.status != 202:
                    assert body["status"] == "Completed", body
                    return dict(body)
            await asyncio.sleep(POLL_S)


async def pollers(
    http: aiohttp.ClientSession,
    url: str,
    auth: dict[str, str],
    count: int,
    pause_s: float,
    seconds: float | None = None,
) -> tuple[list[float], int]:
    """`count` clients reading `url`, each pausing `pause_s` between polls (0: closed loop), until
    the operation ends (an answer other than 202) or `seconds` pass: the latencies and the errors."""
    latencies: list[float] = []
    errors = 0
    finished = asyncio.Event()
    deadline = time.perf_counter() + seconds if seconds is not None else float("inf")

    async def one() -> None:
        nonlocal errors
        while not finished.is_set() and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                async with http.get(url, headers=auth, allow_redirects=False) as r:
                    await r.read()
                    if r.status >= 400:
                        errors += 1
                    elif r.status != 202:
                        finished.set()
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(pause_s)

    await asyncio.gather(*(one() for _ in range(count)))
    return latencies, errors


async def run(args: argparse.Namespace, work: Path) -> list[tuple[str, float, float, str]]:
    root = work / "root"
    make_tree(root / "tree", args.files, args.folders, 4096)
    make_file(root / "big.bin", args.big_mib)
    proc, base = start_server(root)
    api = f"{base}/v1/Repositories/{REPO}"
    rows: list[tuple[str, float, float, str]] = []
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        ) as http:
            client = Client(http, api, await sign_in(http, api))
            tree_id = await client.entry_id("\\tree")
            big_id = await client.entry_id("\\big.bin")

            # ---- the 10,000-file tree: copy, then delete -------------------------------------
            copies, cps, deletes, rms = [], [], [], []
            for i in range(args.runs + 1):  # the first round warms caches and is not counted
                cp = timed("cp", "-r", str(root / "tree"), str(root / f"cp-{i}"))
                t0 = time.perf_counter()
                done = await client.wait(await client.copy(tree_id, f"copy-{i}"))
                ours = time.perf_counter() - t0
                copy_id = int(str(done["entryId"]))
                rm = timed("rm", "-rf", str(root / f"cp-{i}"))
                t0 = time.perf_counter()
                await client.wait(await client.delete(copy_id))
                deleted = time.perf_counter() - t0
                assert not (root / f"copy-{i}").exists()
                if i:
                    copies.append(ours)
                    cps.append(cp)
                    deletes.append(deleted)
                    rms.append(rm)
            n = args.runs
            rows.append(
                (
                    f"copy {args.files} x 4 KiB in {args.folders} folders (median of {n})",
                    *_medians(copies, cps),
                    "vs cp -r; target <= 1.25",
                )
            )
            rows.append(
                (f"delete that tree (median of {n})", *_medians(deletes, rms), "vs rm -rf; target <= 1.5")
            )

            # ---- 50 pollers during the copy ---------------------------------------------------
            all_latencies: list[float] = []
            errors = 0
            durations = []
            for i in range(args.poll_runs):
                t0 = time.perf_counter()
                token = await client.copy(tree_id, f"polled-{i}")
                latencies, failed = await pollers(
                    http, f"{api}/Tasks/{token}", client.auth, args.pollers, args.poll_pause_ms / 1000
                )
                durations.append(time.perf_counter() - t0)
                all_latencies += latencies
                errors += failed
                done = await client.wait(token)
                await client.wait(await client.delete(int(str(done["entryId"]))))
            p50, p99 = percentile(all_latencies, 50) * 1000, percentile(all_latencies, 99) * 1000
            rows.append(
                (
                    f"copy, {args.pollers} pollers {args.poll_pause_ms:g} ms apart ({args.poll_runs} runs)",
                    statistics.median(durations),
                    statistics.median(cps),
                    f"{len(all_latencies)} polls: p50 {p50:.1f} ms, p99 {p99:.1f} ms (target <= 20), "
                    f"{errors} errors",
                )
            )

            # ---- one 1 GiB file -----------------------------------------------------------------
            big, cp_big, growth = [], [], []
            for i in range(args.big_runs):
                cp = timed("cp", str(root / "big.bin"), str(root / f"cp-{i}.bin"))
                (root / f"cp-{i}.bin").unlink()
                before = rss_kib(proc.pid)
                sampler = PeakSampler(proc.pid)
                sampler.start()
                t0 = time.perf_counter()
                done = await client.wait(await client.copy(big_id, f"big-{i}.bin"))
                big.append(time.perf_counter() - t0)
                growth.append((sampler.stop() - before) / 1024)
                cp_big.append(cp)
                assert (root / f"big-{i}.bin").stat().st_size == args.big_mib * 1024 * 1024
                await client.wait(await client.delete(int(str(done["entryId"]))))
            rows.append(
                (
                    f"copy one {args.big_mib} MiB file (median of {args.big_runs})",
                    *_medians(big, cp_big),
                    f"vs cp; target <= 1.15; peak RSS growth {max(growth):.1f} MiB (target < 64)",
                )
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return rows


def _medians(ours: list[float], baseline: list[float]) -> tuple[float, float]:
    return statistics.median(ours), statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-runs", type=int, default=3)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--poll-runs", type=int, default=3)
    parser.add_argument(
        "--poll-pause-ms", type=float, default=10, help="each poller's pause between polls (0: back to back)"
    )
    add_dir_option(parser)
    args = parser.parse_args()
    with work_folder(args.dir) as work:
        rows = asyncio.run(run(args, work))
    print_table(rows)


if __name__ == "__main__":
    main()
