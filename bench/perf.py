"""Benchmark: every figure of issue 17 (performance), the old commit beside this checkout.

Starts `python -m server` from a worktree of an older commit (--old, checked out for the run and
removed after) and from this checkout, each on a storage root of its own, and measures both side
by side with the baseline of each figure, in rounds that alternate old, new and baseline (the
order rotates every round; a first round warms caches and is not counted):

- copy of 10,000 files of 4 KiB in 100 folders (CopyAsync, from the POST to the status that says
  done) against `cp -r` of the same tree;
- delete of that copy against `rm -rf`;
- the p99 latency of 50 closed-loop pollers of GET Tasks/{token} during such a copy, against 50
  closed-loop pollers of a bare aiohttp JSON handler (a process of its own) in the same round,
  for as long, while `cp -r` copies the same tree over and over: the same work on the same two
  cores, so that the ratio shows what the server's own copy costs its pollers beyond what any
  process answering polls on a machine that copies loses (the issue's own figures, 58 ms at 2.3x
  the bare handler, put the bare handler under such a load); the bare handler idle is shown too;
- listing 10,000 children page by page through @odata.nextLink (150 a page), new against old
  (`ls -f` shown for scale);
- webhooks per second: 1,000 asynchronous copies across 100 sessions to a local receiver (see
  bench/webhooks.py, whose run this is);
- import of a 512 MiB document through v1 multipart against `cp`.

It runs on tmpfs (/dev/shm, so that the disk's writeback does not drown the comparison) and on the
disk (--dir), and prints each figure's medians with their spread (min-max), and each ratio.

    python bench/perf.py [--old 37a50b2] [--runs 7] [--dir D] [--places shm,disk] [--only copy,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import perf_table
from common import REPO, SHM, make_file, make_tree, percentile, sign_in, start_server, timed, work_folder
from import_and_list import import_once, list_all
from operations import Client, pollers
from webhooks import delivery_run

HERE = Path(__file__).resolve().parent.parent
FIGURES = ("copy", "delete", "poll", "list", "webhooks", "import")
OLD, NEW, BASE = "old", "new", "baseline"


@dataclass
class Server:
    """One contender: a `python -m server` from a checkout, on a storage root of its own."""

    label: str
    checkout: Path
    root: Path
    proc: subprocess.Popen[str] | None = None
    client: Client | None = None
    ids: dict[str, int] = field(default_factory=dict)


# ---- the bare handler (a process of its own, so that it does not share the client's GIL) -----


def bare_main() -> None:
    """Answer GET /status with a small JSON body and 202, as a running operation's status does."""
    from aiohttp import web

    body = {
        "operationToken": "x" * 32,
        "operationType": "CopyEntry",
        "percentComplete": 40,
        "status": "InProgress",
    }

    async def status(request: web.Request) -> web.Response:
        return web.json_response(body, status=202)

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/status", status)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


# ---- one round of each figure: {contender: value} -------------------------------------------


async def copy_and_delete(args: argparse.Namespace, place: Path, servers: list[Server], order: list[str]):  # type: ignore[no-untyped-def]
    """One round of the copy and of the delete of what it made."""
    copies: dict[str, float] = {}
    deletes: dict[str, float] = {}
    made: dict[str, int] = {}
    by = {s.label: s for s in servers}
    for who in order:
        if who == BASE:
            copies[BASE] = timed("cp", "-r", str(servers[-1].root / "tree"), str(place / "cp-tree"))
        else:
            client = by[who].client
            assert client is not None
            t0 = time.perf_counter()
            done = await client.wait(await client.copy(by[who].ids["tree"], "copy"), long_poll=True)
            copies[who] = time.perf_counter() - t0
            made[who] = int(str(done["entryId"]))
    for who in order:
        if who == BASE:
            deletes[BASE] = timed("rm", "-rf", str(place / "cp-tree"))
        else:
            client = by[who].client
            assert client is not None
            t0 = time.perf_counter()
            await client.wait(await client.delete(made[who]), long_poll=True)
            deletes[who] = time.perf_counter() - t0
            assert not (by[who].root / "copy").exists()
    return copies, deletes


async def poll_round(
    args: argparse.Namespace,
    place: Path,
    http: aiohttp.ClientSession,
    servers: list[Server],
    bare: str,
    order: list[str],
) -> tuple[dict[str, float], dict[str, float]]:
    """p99 (ms) of closed-loop pollers during a copy (old and new, in the round's order); of the bare
    handler for as long while `cp -r` copies the same tree over and over (the same work on the
    machine: what the server's own copy costs the pollers beyond that is what the figure shows);
    and of the bare handler idle."""
    p99: dict[str, float] = {}
    idle: dict[str, float] = {}
    by = {s.label: s for s in servers}
    # the servers first (in the round's order), then the bare handler for as long as the longer
    # of their copies was polled, so that each round's baseline has a window like theirs
    windows = [args.bare_s]
    for who in [who for who in order if who != BASE] + [BASE]:
        if who == BASE:
            seconds = max(windows)
            with copying_over_and_over(servers[-1].root / "tree", place / "cp-poll"):
                latencies, errors = await pollers(http, f"{bare}/status", {}, args.pollers, 0, seconds)
            idle_latencies, _ = await pollers(http, f"{bare}/status", {}, args.pollers, 0, seconds)
            idle[BASE] = percentile(idle_latencies, 99) * 1000
        else:
            client = by[who].client
            assert client is not None
            t0 = time.perf_counter()
            token = await client.copy(by[who].ids["tree"], "polled")
            latencies, errors = await pollers(
                http, f"{client.api}/Tasks/{token}", client.auth, args.pollers, 0
            )
            windows.append(time.perf_counter() - t0)
            done = await client.wait(token, long_poll=True)
            await client.wait(await client.delete(int(str(done["entryId"]))), long_poll=True)
        assert not errors, f"{who}: {errors} polls failed"
        p99[who] = percentile(latencies, 99) * 1000
    return p99, {who: p99[who] for who in (OLD, NEW)} | idle


@contextlib.contextmanager
def copying_over_and_over(tree: Path, to: Path) -> Iterator[None]:
    """`cp -r tree to` and `rm -rf to`, again and again, for as long as the block runs."""
    loop = f'while :; do cp -r "{tree}" "{to}"; rm -rf "{to}"; done'
    proc = subprocess.Popen(["sh", "-c", loop], start_new_session=True)
    try:
        time.sleep(0.05)  # (under way before the pollers start)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(to, ignore_errors=True)


async def list_round(
    args: argparse.Namespace, http: aiohttp.ClientSession, servers: list[Server], order: list[str]
):  # type: ignore[no-untyped-def]
    by = {s.label: s for s in servers}
    times: dict[str, float] = {}
    for who in order:
        if who == BASE:
            times[BASE] = timed("ls", "-f", str(servers[-1].root / "many"))
        else:
            client = by[who].client
            assert client is not None
            times[who] = await list_all(
                http, client.api, client.auth, by[who].ids["many"], 150, args.children
            )
    return times


async def webhooks_round(args: argparse.Namespace, place: Path, servers: list[Server], order: list[str]):  # type: ignore[no-untyped-def]
    rates: dict[str, float] = {}
    for server in sorted(servers, key=lambda s: order.index(s.label)):
        run_dir = Path(tempfile.mkdtemp(prefix="webhooks-", dir=place))
        try:
            seconds, unique, total = await delivery_run(args, run_dir, cwd=server.checkout)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        assert unique == total == args.copies, f"{server.label}: {unique} unique, {total} in all"
        rates[server.label] = unique / seconds
    return rates


async def import_round(
    args: argparse.Namespace,
    http: aiohttp.ClientSession,
    place: Path,
    servers: list[Server],
    order: list[str],
) -> dict[str, float]:
    by = {s.label: s for s in servers}
    source = place / "big.bin"
    times: dict[str, float] = {}
    for who in order:
        if who == BASE:
            times[BASE] = timed("cp", str(source), str(place / "cp.bin"))
            (place / "cp.bin").unlink()
        else:
            client = by[who].client
            assert client is not None
            times[who] = await import_once(http, client.api, client.auth, source, "big.bin")
            assert (by[who].root / "big.bin").stat().st_size == source.stat().st_size
            (by[who].root / "big.bin").unlink()
    return times


# ---- a place: both servers on one filesystem, every round ------------------------------------


@contextlib.asynccontextmanager
async def started(servers: list[Server], http: aiohttp.ClientSession) -> AsyncIterator[None]:
    try:
        for server in servers:
            server.proc, base = start_server(server.root, cwd=server.checkout)
            api = f"{base}/v1/Repositories/{REPO}"
            server.client = Client(http, api, await sign_in(http, api))
            for name in ("tree", "many"):
                if (server.root / name).exists():
                    server.ids[name] = await server.client.entry_id("\\" + name)
        yield
    finally:
        for server in servers:
            if server.proc is not None:
                server.proc.send_signal(signal.SIGTERM)
                server.proc.wait(timeout=60)


async def run_place(args: argparse.Namespace, place: Path, old: Path) -> dict[str, dict[str, list[float]]]:
    figures = args.only
    servers = [Server(OLD, old, place / "root-old"), Server(NEW, args.new_tree, place / "root-new")]
    for server in servers:
        if {"copy", "delete", "poll"} & set(figures):
            make_tree(server.root / "tree", args.files, args.folders, 4096)
        if "list" in figures:
            (server.root / "many").mkdir(parents=True)
            for n in range(args.children):
                (server.root / "many" / f"doc-{n:05d}.txt").write_bytes(b"x")
    if "import" in figures:
        make_file(place / "big.bin", args.import_mib)
    results: dict[str, dict[str, list[float]]] = {
        name: {OLD: [], NEW: [], BASE: []} for name in perf_table.FIGURES
    }
    bare_proc = subprocess.Popen([sys.executable, __file__, "--bare"], stdout=subprocess.PIPE, text=True)
    assert bare_proc.stdout is not None
    bare = f"http://127.0.0.1:{int(bare_proc.stdout.readline())}"
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        ) as http:
            async with started(servers, http):
                for n in range(args.runs + 1):  # round 0 warms caches (and gives ids): not counted
                    order = _rotated([OLD, NEW, BASE], n)
                    found: dict[str, dict[str, float]] = {}
                    if "copy" in figures or "delete" in figures:
                        found["copy"], found["delete"] = await copy_and_delete(args, place, servers, order)
                    if "poll" in figures:
                        found["poll"], found["poll-idle"] = await poll_round(
                            args, place, http, servers, bare, order
                        )
                    if "list" in figures:
                        found["list"] = await list_round(args, http, servers, order)
                    if "import" in figures:
                        found["import"] = await import_round(args, http, place, servers, order)
                    if "webhooks" in figures and n:
                        found["webhooks"] = await webhooks_round(args, place, servers, order)
                    if n:
                        for name, values in found.items():
                            for who, value in values.items():
                                results[name][who].append(value)
                    print(
                        f"  {place.name} round {n}{'' if n else ' (warm-up)'}: {perf_table.brief(found)}",
                        flush=True,
                    )
    finally:
        bare_proc.kill()
        bare_proc.wait()
    return results


def _rotated(items: list[str], n: int) -> list[str]:
    return items[n % len(items) :] + items[: n % len(items)]


@contextlib.contextmanager
def old_checkout(args: argparse.Namespace) -> Iterator[Path]:
    """A worktree of the old commit for the run (or --old-tree, left as it is)."""
    if args.old_tree is not None:
        yield args.old_tree
        return
    tree = Path(tempfile.mkdtemp(prefix="sandbox-old-")) / "tree"
    subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(tree), args.old], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(tree.parent, ignore_errors=True)


def main() -> None:
    if sys.argv[1:] == ["--bare"]:
        bare_main()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--old", default="37a50b2", help="the commit to compare with (default: 37a50b2)")
    parser.add_argument("--old-tree", type=Path, help="a checkout of it to use instead of a new worktree")
    parser.add_argument(
        "--new-tree", type=Path, default=HERE, help="the checkout to measure (default: this one)"
    )
    parser.add_argument("--runs", type=int, default=7, help="rounds counted (after one warm-up round)")
    parser.add_argument(
        "--dir", type=Path, default=Path("/var/tmp"), help="the folder on disk (default /var/tmp)"
    )
    parser.add_argument("--places", default="shm,disk", help="shm (/dev/shm) and/or disk (--dir)")
    parser.add_argument("--only", default=",".join(FIGURES), help=f"figures to run, of {','.join(FIGURES)}")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument(
        "--bare-s", type=float, default=0.5, help="the shortest time the bare handler is polled for"
    )
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--timeout-s", type=float, default=2.0, help="the server's --webhook-timeout-s")
    parser.add_argument("--import-mib", type=int, default=512)
    args = parser.parse_args()
    args.only = [name for name in args.only.split(",") if name]
    unknown = set(args.only) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    places = {"shm": SHM, "disk": args.dir}
    with old_checkout(args) as old:
        tables = []
        for name in args.places.split(","):
            with work_folder(places[name], "sandbox-perf-") as work:
                results = asyncio.run(run_place(args, work, old))
            tables.append((name, places[name], results))
    for name, where, results in tables:
        perf_table.show(f"{name} ({where}), {args.runs} rounds", args, results)


if __name__ == "__main__":
    main()
