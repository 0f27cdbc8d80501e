"""Benchmark: asynchronous Elements requests and their webhooks.

Starts `python -m server` on a fresh storage root and a webhook receiver in a process of its own,
all on 127.0.0.1, and measures:

- delivery: 1,000 asynchronous copies of a one-file folder across 100 sessions (one instance
  each, `--session-concurrency queue` so that each session's copies wait their turn) against a
  receiver that answers at once: every webhook must arrive, none twice (counted by
  notificationId); deliveries per second from the first request to the last webhook;
- a receiver that never answers: the p99 latency of `GET /hubs/documents/folders/contents` while
  webhooks pile up against it (each attempt waits out --webhook-timeout-s), side by side with the
  same figure while a healthy receiver takes them (target: within 2x).

    python bench/webhooks.py [--copies 1000] [--sessions 100] [--probes 2000] [--runs 3] [--dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web
from common import add_dir_option, percentile, start_server, work_folder

USER, ORG, TOKEN = "bench-user", "bench-org", "bench-token"
ELEMENTS = "/elements/api-v2"
HUB = ELEMENTS + "/hubs/documents"
PLATFORM = {"Authorization": f"User {USER}, Organization {ORG}"}


# ---- the receiver (a process of its own, so that it does not share the client's GIL) ---------


def receiver_main(mode: str) -> None:
    """Count webhooks by notificationId; `hang` never answers. GET /stats reports the counts."""
    seen: Counter[int] = Counter()
    first_last: list[float] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        if mode == "hang":
            await asyncio.sleep(3600)
        seen[body["notificationId"]] += 1
        first_last.append(time.time())
        return web.Response()

    async def stats(request: web.Request) -> web.Response:
        last = max(first_last) if first_last else 0.0
        return web.json_response({"unique": len(seen), "total": sum(seen.values()), "last": last})

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


def start_receiver(mode: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--receiver", mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


# ---- the client -----------------------------------------------------------------------------


async def make_instances(
    http: aiohttp.ClientSession, base: str, count: int, url: str
) -> list[dict[str, str]]:
    """`count` sessions: one instance each (a session is the User secret with an Element token)."""
    headers = []
    for n in range(count):
        body = {
            "name": f"bench-{n}",
            "element": {"key": "documents"},
            "configuration": {"event.notification.callback.url": url + "/hook"},
        }
        async with http.post(base + ELEMENTS + "/instances", json=body, headers=PLATFORM) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["token"]
        headers.append({"Authorization": f"User {USER}, Element {token}", "Elements-Async-Request": "true"})
    return headers


async def start_copies(
    http: aiohttp.ClientSession, base: str, sessions: list[dict[str, str]], copies: int, prefix: str
) -> None:
    async def one(n: int) -> None:
        body = {"path": f"/out/{prefix}-{n:05d}"}
        url = base + HUB + "/folders/copy?path=/src"
        async with http.post(url, json=body, headers=sessions[n % len(sessions)]) as r:
            assert r.status == 202, await r.text()

    await asyncio.gather(*(one(n) for n in range(copies)))


async def stats(http: aiohttp.ClientSession, receiver: str) -> dict[str, float]:
    async with http.get(receiver + "/stats") as r:
        result: dict[str, float] = await r.json()
        return result


async def delivery_run(
    args: argparse.Namespace, work: Path, cwd: Path | None = None
) -> tuple[float, int, int]:
    """Seconds from the first request to the last webhook; unique and total webhooks (`cwd`: the
    checkout whose server runs, see common.start_server)."""
    root = work / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "file.txt").write_bytes(b"x" * 1024)
    (root / "out").mkdir()
    receiver, receiver_url = start_receiver("ok")
    server, base = start_server(root, *server_flags(args), "--session-concurrency", "queue", cwd=cwd)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:
            sessions = await make_instances(http, base, args.sessions, receiver_url)
            started = time.time()
            await start_copies(http, base, sessions, args.copies, "copy")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                seen = await stats(http, receiver_url)
                if seen["unique"] >= args.copies:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a duplicate would arrive now
            seen = await stats(http, receiver_url)
            return seen["last"] - started, int(seen["unique"]), int(seen["total"])
    finally:
        for proc in (server, receiver):
            proc.terminate()
            proc.wait()


async def latency_run(args: argparse.Namespace, work: Path, mode: str) -> list[float]:
    """Latencies (s) of folder listings while webhooks go to a receiver in `mode`."""
    root = work / f"root-{mode}"
    (root / "src").mkdir(parents=True)
    (root / "src" / "file.txt").write_bytes(b"x" * 1024)
    (root / "out").mkdir()
    receiver, receiver_url = start_receiver(mode)
    server, base = start_server(root, *server_flags(args), "--session-concurrency", "queue")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:
            sessions = await make_instances(http, base, args.sessions, receiver_url)
            auth = {"Authorization": sessions[0]["Authorization"]}
            await start_copies(http, base, sessions, args.sessions, "warm")
            copies = asyncio.ensure_future(start_copies(http, base, sessions, args.copies // 4, "load"))
            latencies = []
            for _ in range(args.probes):
                t0 = time.perf_counter()
                async with http.get(base + HUB + "/folders/contents?path=/src", headers=auth) as r:
                    await r.read()
                    assert r.status == 200
                latencies.append(time.perf_counter() - t0)
                await asyncio.sleep(0.002)
            await copies
            return latencies
    finally:
        for proc in (server, receiver):
            proc.kill()
            proc.wait()


def server_flags(args: argparse.Namespace) -> list[str]:
    return [
        "--elements-user-secret",
        USER,
        "--elements-org-secret",
        ORG,
        "--elements-token",
        TOKEN,
        "--webhook-timeout-s",
        str(args.timeout_s),
        "--webhook-backoff-s",
        "0.5",
        "--webhook-retries",
        "2",
    ]


async def run(args: argparse.Namespace, work: Path) -> None:
    rates, missing, duplicates = [], 0, 0
    for n in range(args.runs):
        run_dir = work / f"delivery-{n}"
        seconds, unique, total = await delivery_run(args, run_dir)
        shutil.rmtree(run_dir)
        rates.append(unique / seconds)
        missing += args.copies - unique
        duplicates += total - unique
        print(f"  run {n + 1}: {unique}/{args.copies} webhooks in {seconds:.2f} s ({unique / seconds:.0f}/s)")
    healthy, hanging = [], []
    for n in range(args.runs):
        for mode, into in (("ok", healthy), ("hang", hanging)):
            run_dir = work / f"latency-{mode}-{n}"
            into.append(percentile(await latency_run(args, run_dir, mode), 99) * 1000)
            shutil.rmtree(run_dir)
        print(f"  run {n + 1}: p99 listing {healthy[-1]:.1f} ms (healthy) / {hanging[-1]:.1f} ms (hanging)")
    rate = statistics.median(rates)
    ok, hung = statistics.median(healthy), statistics.median(hanging)
    print(f"\n{'case':<62} {'value':>12}  notes")
    print(
        f"{f'{args.copies} async copies, {args.sessions} sessions: deliveries/s (median)':<62} {rate:>12.0f}"
    )
    print(f"{'webhooks missing / duplicated (all runs)':<62} {f'{missing} / {duplicates}':>12}  target 0 / 0")
    print(f"{'p99 GET folders/contents, healthy receiver (ms, median)':<62} {ok:>12.1f}")
    print(f"{'p99 GET folders/contents, receiver never answers (ms, median)':<62} {hung:>12.1f}")
    print(f"{'ratio hanging / healthy':<62} {hung / ok:>12.2f}  target <= 2")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        receiver_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--probes", type=int, default=2000, help="listings timed per latency run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=2.0, help="the server's --webhook-timeout-s")
    add_dir_option(parser)
    args = parser.parse_args()
    with work_folder(args.dir, "bench-webhooks-") as work:
        asyncio.run(run(args, work))


if __name__ == "__main__":
    main()
