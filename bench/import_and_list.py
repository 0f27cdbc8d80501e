"""Benchmark: import a large document and list a 10,000-entry folder page by page.

Starts `python -m server` on a fresh storage root in a temporary folder, talks to it over 127.0.0.1
only, and prints a table with the baselines run side by side:

- import of a document (default 512 MiB) through multipart, against `cp` of the same file, with the
  server's peak RSS growth during the import (target: under 64 MiB);
- listing of a folder holding 10,000 documents, every page followed by `@odata.nextLink`, against
  `ls -f` of the same folder: the first pass (which gives every file put there by hand its id) and
  warm passes;
- creating 100 folders in that folder, one request each, against one `mkdir` of all of them.

    python bench/import_and_list.py [--import-mib 512] [--entries 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp
from common import (
    CHUNK,
    REPO,
    PeakSampler,
    add_dir_option,
    make_file,
    print_table,
    rss_kib,
    sign_in,
    start_server,
    timed,
    work_folder,
)


async def file_chunks(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk


async def import_once(
    http: aiohttp.ClientSession, api: str, auth: dict[str, str], source: Path, name: str
) -> float:
    """Seconds to import `source` into the root as `name` through v1's multipart route."""
    form = aiohttp.FormData()
    form.add_field(
        "electronicDocument",
        file_chunks(source),
        filename=source.name,
        content_type="application/octet-stream",
    )
    form.add_field("request", "{}", content_type="application/json")
    t0 = time.perf_counter()
    async with http.post(f"{api}/Entries/1/{name}", data=form, headers=auth) as r:
        assert r.status == 201, await r.text()
    return time.perf_counter() - t0


async def list_all(
    http: aiohttp.ClientSession, api: str, auth: dict[str, str], folder_id: int, page: int, expected: int
) -> float:
    """Seconds to list a folder's children, every page followed by its @odata.nextLink."""
    url: str | None = f"{api}/Entries/{folder_id}/Laserfiche.Repository.Folder/children"
    headers = auth | {"Prefer": f"maxpagesize={page}"}
    seen = 0
    t0 = time.perf_counter()
    while url:
        async with http.get(url, headers=headers) as r:
            body = await r.json()
        seen += len(body["value"])
        url = body.get("@odata.nextLink")
    elapsed = time.perf_counter() - t0
    assert seen == expected, seen
    return elapsed


async def run(args: argparse.Namespace, work: Path) -> list[tuple[str, float, float, str]]:
    root = work / "root"
    proc, base = start_server(root)
    api = f"{base}/v1/Repositories/{REPO}"
    rows: list[tuple[str, float, float, str]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            auth = await sign_in(http, api)

            # ---- import --------------------------------------------------------------------
            source = work / "big.bin"
            make_file(source, args.import_mib)
            import_times, cp_times, growths = [], [], []
            for i in range(args.import_runs):
                before = rss_kib(proc.pid)
                sampler = PeakSampler(proc.pid)
                sampler.start()
                import_times.append(await import_once(http, api, auth, source, f"big-{i}.bin"))
                growths.append((sampler.stop() - before) / 1024)
                assert (root / f"big-{i}.bin").stat().st_size == source.stat().st_size
                (root / f"big-{i}.bin").unlink()
                t0 = time.perf_counter()
                subprocess.run(["cp", str(source), str(work / "cp.bin")], check=True)
                cp_times.append(time.perf_counter() - t0)
                (work / "cp.bin").unlink()
            imp, cp = statistics.median(import_times), statistics.median(cp_times)
            rows.append(
                (
                    f"import {args.import_mib} MiB (median of {args.import_runs})",
                    imp,
                    cp,
                    f"peak RSS growth {max(growths):.1f} MiB (target < 64)",
                )
            )
            source.unlink()

            # ---- listing ---------------------------------------------------------------------
            folder = root / "many"
            folder.mkdir()
            for n in range(args.entries):
                (folder / f"doc-{n:05d}.txt").write_bytes(b"x")
            async with http.get(f"{api}/Entries/ByPath", params={"fullPath": "\\many"}, headers=auth) as r:
                folder_id = (await r.json())["entry"]["id"]

            first = await list_all(http, api, auth, folder_id, 150, args.entries)
            ls_times = [timed("ls", "-f", str(folder)) for _ in range(args.runs)]
            ls = statistics.median(ls_times)
            rows.append((f"list {args.entries} first pass (ids given), 150/page", first, ls, ""))
            for page in (150, 1000):
                warm = statistics.median(
                    [await list_all(http, api, auth, folder_id, page, args.entries) for _ in range(args.runs)]
                )
                pages = -(-args.entries // page)
                rows.append(
                    (
                        f"list {args.entries}, {page}/page, {pages} pages (median of {args.runs})",
                        warm,
                        ls,
                        f"{warm / pages * 1000:.1f} ms/page",
                    )
                )
            # ---- creating in the big folder -------------------------------------------------
            creates = 100
            t0 = time.perf_counter()
            for n in range(creates):
                async with http.post(
                    f"{api}/Entries/{folder_id}/Laserfiche.Repository.Folder/children",
                    json={"entryType": "Folder", "name": f"new-{n}"},
                    headers=auth,
                ) as r:
                    assert r.status == 201, await r.text()
            made = time.perf_counter() - t0
            t0 = time.perf_counter()
            subprocess.run(["mkdir", *(str(folder / f"mk-{n}") for n in range(creates))], check=True)
            mkdir = time.perf_counter() - t0
            rows.append(
                (
                    f"create {creates} folders in it, one request each",
                    made,
                    mkdir,
                    f"{made / creates * 1000:.1f} ms/request; baseline one mkdir of all",
                )
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--import-mib", type=int, default=512)
    parser.add_argument("--import-runs", type=int, default=3)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    add_dir_option(parser, default=None)
    args = parser.parse_args()
    with work_folder(args.dir) as work:
        rows = asyncio.run(run(args, work))
    print_table(rows)
    print("baselines: `cp` of the same file for the import, `ls -f` of the same folder for listings")


if __name__ == "__main__":
    main()
