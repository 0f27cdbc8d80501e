"""Benchmark: a v2 search by name over a 100,000-entry tree, with status polls while it runs.

Starts `python -m server` on a fresh storage root holding `--folders` folders of `--files` empty
files each (200 x 500 by default), and for each search command:

- starts it (`POST Searches/SearchAsync`) and reads `GET Searches/{taskId}/Results` every 20 ms
  until a first full page (150 rows) is there, or the search has ended with fewer: the time to the
  first page of results (target < 2 s), and the time to Completed;
- meanwhile polls `GET Tasks?taskIds=…` with `Prefer: wait=0` every 10 ms: p50 and p99 of those
  answers (target p99 < 20 ms);
- next to `find -name` of the same pattern over the same tree, to its last line.

The first search also gives every entry its id (a tree put on disk by hand), so it is shown apart.
Then each command runs `--runs` times, alternating with `find`; medians with their spread (min-max
over the median: the machine's noise). In /dev/shm by default, so the disk's writeback is not what
is measured.

    python bench/search.py [--folders 200] [--files 500] [--runs 5] [--dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp
from common import (
    add_dir_option,
    make_empty_tree,
    percentile,
    print_table,
    sign_in,
    start_server,
    work_folder,
)

FIRST_PAGE = 150
RESULTS_EVERY_S = 0.02
POLL_EVERY_S = 0.01
# (search command, the same pattern for find -name): many matches (2,000), and few (200: the first
# page fills only three quarters through the walk)
COMMANDS = (('{LF:Name="doc-004*"}', "doc-004*"), ('{LF:Name="doc-0042.txt"}', "doc-0042.txt"))


async def one_search(http: aiohttp.ClientSession, v2: str, auth: dict[str, str], command: str):
    """(seconds to the first page, seconds to Completed, rows, poll latencies in ms)."""
    t0 = time.perf_counter()
    async with http.post(f"{v2}/Searches/SearchAsync", json={"searchCommand": command}, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["taskId"]
    ended = asyncio.Event()
    latencies: list[float] = []
    completed = math.nan

    async def poll() -> None:
        nonlocal completed
        headers = {**auth, "Prefer": "wait=0"}
        while not ended.is_set():
            t = time.perf_counter()
            async with http.get(f"{v2}/Tasks", params={"taskIds": task_id}, headers=headers) as r:
                task = (await r.json())["value"][0]
            latencies.append((time.perf_counter() - t) * 1000)
            if task["status"] != "InProgress" and task["status"] != "NotStarted":
                assert task["status"] == "Completed", task
                completed = time.perf_counter() - t0
                ended.set()
            await asyncio.sleep(POLL_EVERY_S)

    poller = asyncio.create_task(poll())
    first_page = math.nan
    while True:
        done = ended.is_set()
        params = {"$count": "true"}
        async with http.get(f"{v2}/Searches/{task_id}/Results", params=params, headers=auth) as r:
            body = await r.json()
        if len(body["value"]) >= FIRST_PAGE or done:
            first_page = time.perf_counter() - t0
            break
        await asyncio.sleep(RESULTS_EVERY_S)
    await poller
    params = {"$count": "true", "$top": "0"}
    async with http.get(f"{v2}/Searches/{task_id}/Results", params=params, headers=auth) as r:
        rows = (await r.json())["@odata.count"]
    return first_page, completed, rows, latencies


def find(root: Path, pattern: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run(["find", str(root), "-name", pattern], capture_output=True, check=True).stdout
    return time.perf_counter() - t0, out.count(b"\n")


def spread(values: list[float]) -> str:
    middle = statistics.median(values)
    return f"{min(values):.3f}-{max(values):.3f} s ({(max(values) - min(values)) / middle:.0%} of the median)"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folders", type=int, default=200)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    add_dir_option(parser)
    args = parser.parse_args()
    with work_folder(args.dir) as work:
        root = work / "root"
        make_empty_tree(root, args.folders, args.files)
        print(f"tree: {args.folders * (args.files + 1):,} entries")
        proc, base = start_server(root, "--copy-processes", "0")
        try:
            async with aiohttp.ClientSession() as http:
                auth = await sign_in(http, f"{base}/v1/Repositories/r-sandbox")
                v2 = f"{base}/v2/Repositories/r-sandbox"
                table = []
                first = await one_search(http, v2, auth, COMMANDS[0][0])
                table.append((f"first search (gives ids), first page: {COMMANDS[0][0]}", first[0], math.nan,
                              f"Completed {first[1]:.3f} s, {first[2]} rows"))  # fmt: skip
                for command, pattern in COMMANDS:
                    pages, ends, finds, polls = [], [], [], []
                    for _ in range(args.runs):
                        page, end, rows, latencies = await one_search(http, v2, auth, command)
                        took, lines = find(root, pattern)
                        assert lines == rows, (lines, rows)
                        pages.append(page)
                        ends.append(end)
                        finds.append(took)
                        polls += latencies
                    found = statistics.median(finds)
                    table.append((f"first page: {command}", statistics.median(pages), found, spread(pages)))
                    table.append((f"Completed: {command}", statistics.median(ends), found, spread(ends)))
                    print(
                        f"{command}: {rows} rows; status polls while it ran: {len(polls)}, p50 "
                        f"{percentile(polls, 50):.1f} ms, p99 {percentile(polls, 99):.1f} ms, "
                        f"max {max(polls):.1f} ms; find {spread(finds)}"
                    )
                print_table(table, ("sandbox s", "find s"), 3)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
