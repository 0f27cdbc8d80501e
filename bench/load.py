"""Benchmark: many sessions running long operations at once, many pollers, and what is left after.

Starts `python -m server` on a fresh storage root (paced, --pace-ms 5 per entry, and with a short
--token-ttl of 5 s so that finished tokens expire during the run), talks to it over 127.0.0.1 only,
and for --seconds (60) runs:

- --sessions (200) sessions (the admin user signed in that many times; one running operation per
  session), each in a loop: start a copy of one of 20 source folders of 10 files of 1-4 KiB
  (CopyAsync with autoRename=true into /scratch) or a delete of one of its earlier copies (always
  once it holds --keep of them), poll it a few times, and cancel it at a random point
  (--cancel-share of them) or let it finish;
- --pollers (500) clients reading the tokens of operations under way, shared by all (GET
  Tasks/{token} or Tasks/{token}/status, as the session that owns the token), each pausing
  --poll-pause-ms between polls; one poll in ten reads a token that ended a while ago, which past
  --token-ttl answers 404 "expired": counted apart, not as an error.

It reports requests per second, p50/p99 latency per kind of request (start, poll by the owner,
poll by a poller, cancel), the answers by status class and the operations started, completed and
cancelled. Before the load (sign-ins done, one operation run, its token expired) and after it (every
operation ended, --token-ttl passed, --settle-s more) it reads GET /sandbox/stats and, from outside,
the server's /proc/<pid>/fd and RSS, and flags a leak where asyncio tasks or open files grew by more
than --slack, where operation records, running operations, feed subscribers or pending deliveries
did not come back to the baseline, or where RSS grew by more than --rss-slack-mib.

Exits non-zero on any 5xx, any request left without an answer, any other unexpected answer, an
operation that ended Failed or never ended, or a leak. (A delete whose cancel lands during its last
step removes everything yet ends Cancelled; the next delete of that entry then ends Failed, "no
longer exists": that one is counted apart, not as a failure.) The client shares the machine with the
server: its own CPU use is part of what the latencies show.

    python bench/load.py [--seconds 60] [--sessions 200] [--pollers 500] [--dir D]
    python bench/load.py --quick      # --seconds 10 --sessions 20 --pollers 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from common import (
    REPO,
    add_dir_option,
    cpu_s,
    percentile,
    print_table,
    rss_kib,
    sign_in,
    start_server,
    work_folder,
)

FOLDER = "Laserfiche.Repository.Folder"
KINDS = ("start", "poll", "poller", "cancel")
KIND_NAMES = {
    "start": "start (CopyAsync or DELETE Entries)",
    "poll": "poll by the owner (GET Tasks/{token})",
    "poller": "poll by a poller (Tasks/{token}[/status])",
    "cancel": "cancel (DELETE Tasks/{token})",
}
# status classes, in the order they are shown
CLASSES = ("2xx", "3xx", "400 ended", "404 expired", "404 other", "429", "4xx other", "5xx", "no answer")
CLASS_NAMES = {
    "2xx": "2xx",
    "3xx": "3xx (302: a completed copy)",
    "400 ended": "400 cancel of an ended operation (expected: it ended first)",
    "404 expired": "404 expired token (expected: polled past --token-ttl)",
    "404 other": "404 other",
    "429": "429 (a second operation in one session)",
    "4xx other": "4xx other",
    "5xx": "5xx",
    "no answer": "no answer (connection error or timeout)",
}
UNEXPECTED = ("404 other", "4xx other", "5xx", "no answer")
# the /sandbox/stats figures, and how each is judged after the load against before it
STATS = (
    "asyncioTasks",
    "openFiles",
    "threads",
    "operations",
    "runningOperations",
    "feedSubscribers",
    "pendingDeliveries",
)
EXPIRED_TITLE = "Operation token expired."
# what a cancel that comes after its operation ended is refused with (the vendor's clients expect it)
ENDED_TITLE = "Cannot cancel ended operation."


class Load:
    """The sessions and pollers, and what they saw."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        api: str,
        args: argparse.Namespace,
        sources: list[int],
        scratch: int,
    ) -> None:
        self.http, self.api, self.args, self.sources, self.scratch = http, api, args, sources, scratch
        self.rng = random.Random(args.seed)
        self.latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.classes: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.samples: list[str] = []  # the first few unexpected answers, in words
        self.in_window = 0
        self.started = self.stop_at = 0.0
        # tokens under way (a list for random picks, an index for removal) and recently ended
        self.running: list[tuple[str, dict[str, str]]] = []
        self.where: dict[str, int] = {}
        self.ended: list[tuple[str, dict[str, str]]] = []
        self.ended_next = 0

    def stopping(self) -> bool:
        return time.perf_counter() >= self.stop_at

    # ---- one request ---------------------------------------------------------------------

    async def request(
        self, kind: str, method: str, url: str, auth: dict[str, str], body: Any = None
    ) -> tuple[int, bytes] | None:
        """The status and body, timed and counted; None when no answer came."""
        t0 = time.perf_counter()
        try:
            async with self.http.request(method, url, headers=auth, json=body, allow_redirects=False) as r:
                status, data = r.status, await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.classes["no answer"] += 1
            self._sample(f"{method} {url}: {type(exc).__name__}: {exc}")
            return None
        t1 = time.perf_counter()
        self.latencies[kind].append(t1 - t0)
        if t1 <= self.stop_at:
            self.in_window += 1
        found = _status_class(status, data)
        self.classes[found] += 1
        if found in UNEXPECTED:
            self._sample(f"{method} {url}: {status} {data[:300].decode(errors='replace')}")
        return status, data

    def _sample(self, what: str) -> None:
        if len(self.samples) < 10:
            self.samples.append(what)

    # ---- the shared token list -----------------------------------------------------------

    def share(self, token: str, auth: dict[str, str]) -> None:
        self.where[token] = len(self.running)
        self.running.append((token, auth))

    def unshare(self, token: str, auth: dict[str, str]) -> None:
        at = self.where.pop(token)
        last = self.running.pop()
        if last[0] != token:
            self.running[at] = last
            self.where[last[0]] = at
        if len(self.ended) < self.args.ended_kept:
            self.ended.append((token, auth))
        else:
            self.ended[self.ended_next] = (token, auth)
            self.ended_next = (self.ended_next + 1) % self.args.ended_kept

    def pick(self) -> tuple[str, dict[str, str]] | None:
        if self.running and (not self.ended or self.rng.random() >= self.args.ended_share):
            return self.rng.choice(self.running)
        return self.rng.choice(self.ended) if self.ended else None

    # ---- sessions and pollers --------------------------------------------------------------

    async def session(self, n: int, auth: dict[str, str]) -> None:
        copies: list[int] = []  # entry ids of this session's copies (whole or partial)
        cut: set[int] = set()  # those of them a delete was cancelled on
        while not self.stopping():
            await self.operation(n, auth, copies, cut)

    async def operation(self, n: int, auth: dict[str, str], copies: list[int], cut: set[int]) -> None:
        """Start one copy or delete, poll it, maybe cancel it, until it has ended."""
        rng, api = self.rng, self.api
        target = 0
        if copies and (len(copies) >= self.args.keep or rng.random() < 0.4):
            kind, target = "delete", rng.choice(copies)
            answer = await self.request("start", "DELETE", f"{api}/Entries/{target}", auth)
        else:
            kind = "copy"
            url = f"{api}/Entries/{self.scratch}/{FOLDER}/children/CopyAsync?autoRename=true"
            body = {"sourceId": rng.choice(self.sources), "name": f"s{n:03d}"}
            answer = await self.request("start", "POST", url, auth, body)
        if answer is None or answer[0] != 202:
            if answer is not None and answer[0] == 429:
                self.ops["starts refused (429)"] += 1
            await asyncio.sleep(0.05)
            return
        token = str(json.loads(answer[1])["token"])
        self.ops[f"{kind} started"] += 1
        self.share(token, auth)
        cancel_after = rng.randint(0, self.args.max_polls) if rng.random() < self.args.cancel_share else None
        polls, final = 0, None
        try:
            while final is None:
                if cancel_after is not None and polls >= cancel_after:
                    cancel_after = None
                    self.ops[f"{kind} cancel sent"] += 1
                    await self.request("cancel", "DELETE", f"{api}/Tasks/{token}", auth)
                else:
                    await asyncio.sleep(
                        rng.uniform(self.args.owner_pause_ms[0], self.args.owner_pause_ms[1]) / 1000
                    )
                answer = await self.request("poll", "GET", f"{api}/Tasks/{token}", auth)
                polls += 1
                if answer is None:
                    continue
                if answer[0] in (200, 302):
                    final = json.loads(answer[1])
                elif answer[0] != 202:
                    break
        finally:
            self.unshare(token, auth)
        if final is None:
            self.ops[f"{kind} lost (no final status)"] += 1
            return
        state = str(final["status"]).lower()
        if kind == "copy" and final.get("entryId"):
            copies.append(int(final["entryId"]))
        elif kind == "delete" and state == "cancelled":
            cut.add(target)
        elif kind == "delete":
            copies.remove(target)
            if state == "failed" and target in cut and "no longer exists" in str(final.get("errors")):
                # a cancel that came during the delete's last step: it removed everything and still
                # ended Cancelled (a server race, counted apart; see the README's Benchmarks)
                state = "failed: already gone"
            cut.discard(target)
        self.ops[f"{kind} {state}"] += 1
        if state == "failed":
            self._sample(f"{kind} of entry {target or 'a source'} ended Failed: {final.get('errors')}")

    async def poller(self) -> None:
        pause = self.args.poll_pause_ms / 1000
        while not self.stopping():
            picked = self.pick()
            if picked is None:
                await asyncio.sleep(0.01)
                continue
            token, auth = picked
            suffix = "/status" if self.rng.random() < 0.5 else ""
            await self.request("poller", "GET", f"{self.api}/Tasks/{token}{suffix}", auth)
            await asyncio.sleep(pause * self.rng.uniform(0.5, 1.5))

    async def run(self, sessions: list[dict[str, str]]) -> bool:
        """The load for --seconds, then the sessions' last operations; False if some never ended."""
        self.started = time.perf_counter()
        self.stop_at = self.started + self.args.seconds
        pollers = [asyncio.ensure_future(self.poller()) for _ in range(self.args.pollers)]
        workers = [asyncio.ensure_future(self.session(n, auth)) for n, auth in enumerate(sessions)]
        await asyncio.gather(*pollers)
        _, pending = await asyncio.wait(workers, timeout=self.args.drain_s)
        for worker in pending:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for worker in workers:
            error = None if worker.cancelled() else worker.exception()
            if error is not None:
                raise error
        return not pending


def _status_class(status: int, data: bytes) -> str:
    if status >= 500:
        return "5xx"
    if status in (400, 404):
        try:
            title = json.loads(data).get("title")
        except ValueError:
            title = None
        if status == 400:
            return "400 ended" if title == ENDED_TITLE else "4xx other"
        return "404 expired" if title == EXPIRED_TITLE else "404 other"
    if status == 429:
        return "429"
    if status >= 400:
        return "4xx other"
    return "3xx" if status >= 300 else "2xx"


# ---- setting up ----------------------------------------------------------------------------


def make_sources(root: Path, folders: int, files: int, rng: random.Random) -> None:
    for f in range(folders):
        folder = root / "src" / f"folder-{f:02d}"
        folder.mkdir(parents=True)
        for n in range(files):
            (folder / f"doc-{n:02d}.bin").write_bytes(rng.randbytes(rng.randint(1024, 4096)))
    (root / "scratch").mkdir()


async def entry_id(http: aiohttp.ClientSession, api: str, auth: dict[str, str], path: str) -> int:
    async with http.get(f"{api}/Entries/ByPath", params={"fullPath": path}, headers=auth) as r:
        assert r.status == 200, await r.text()
        return int((await r.json())["entry"]["id"])


async def run_to_end(
    http: aiohttp.ClientSession, api: str, auth: dict[str, str], answer: aiohttp.ClientResponse
) -> dict[str, Any]:
    assert answer.status == 202, await answer.text()
    token = (await answer.json())["token"]
    async with http.get(f"{api}/Tasks/{token}/status?wait=30", headers=auth) as r:
        assert r.status == 200, await r.text()
    async with http.get(f"{api}/Tasks/{token}", headers=auth, allow_redirects=False) as r:
        body: dict[str, Any] = await r.json()
        assert body["status"] == "Completed", body
        return body


async def warm_up(
    http: aiohttp.ClientSession, api: str, auth: dict[str, str], source: int, scratch: int
) -> None:
    """One copy and its delete, each to the end."""
    url = f"{api}/Entries/{scratch}/{FOLDER}/children/CopyAsync?autoRename=true"
    async with http.post(url, json={"sourceId": source, "name": "warm-up"}, headers=auth) as r:
        copied = await run_to_end(http, api, auth, r)
    async with http.delete(f"{api}/Entries/{copied['entryId']}", headers=auth) as r:
        await run_to_end(http, api, auth, r)


async def snapshot(
    http: aiohttp.ClientSession, base: str, admin: dict[str, str], pid: int, samples: int = 3
) -> dict[str, float]:
    """/sandbox/stats and the process's fds and RSS from outside: the least of a few samples half a
    second apart (a leak stays; a request that happens to be under way does not)."""
    seen: list[dict[str, float]] = []
    for n in range(samples):
        if n:
            await asyncio.sleep(0.5)
        async with http.get(f"{base}/sandbox/stats", headers=admin) as r:
            if r.status != 200:
                raise SystemExit(f"GET /sandbox/stats answered {r.status}: {await r.text()}")
            stats = {name: float(value) for name, value in (await r.json()).items()}
        stats["procFds"] = len(os.listdir(f"/proc/{pid}/fd"))
        stats["procRssMiB"] = rss_kib(pid) / 1024
        seen.append(stats)
    return {name: min(s[name] for s in seen) for name in seen[0]}


async def wait_until_idle(
    http: aiohttp.ClientSession, base: str, admin: dict[str, str], timeout_s: float
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with http.get(f"{base}/sandbox/stats", headers=admin) as r:
            if (await r.json())["runningOperations"] == 0:
                return True
        await asyncio.sleep(0.2)
    return False


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_fd_limit(needed: int) -> None:
    """Client sockets, and the server's (it inherits the limit): raise the soft limit if short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"needs {needed} open files, and the hard limit (ulimit -Hn) is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        print(f"raised the open-files limit from {soft} to {needed}")


# ---- the run -------------------------------------------------------------------------------


async def run(args: argparse.Namespace, work: Path) -> list[str]:
    """The tables; the failures, in words (none: the run passed)."""
    rng = random.Random(args.seed)
    root = work / "root"
    make_sources(root, args.folders, args.files, rng)
    proc, base = start_server(root, "--pace-ms", str(args.pace_ms), "--token-ttl", str(args.token_ttl))
    api = f"{base}/v1/Repositories/{REPO}"
    failures: list[str] = []
    timeout = aiohttp.ClientTimeout(total=args.request_timeout_s)
    try:
        # one connection for the stats, kept for the whole run, so that it counts the same before and after
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=timeout
        ) as stats_http:
            admin = await sign_in(stats_http, api)
            # the setup's connections are closed before the first snapshot
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=50), timeout=timeout
            ) as http:
                sources = [
                    await entry_id(http, api, admin, f"\\src\\folder-{f:02d}") for f in range(args.folders)
                ]
                scratch = await entry_id(http, api, admin, "\\scratch")
                sessions = list(await asyncio.gather(*(sign_in(http, api) for _ in range(args.sessions))))
                await warm_up(http, api, sessions[0], sources[0], scratch)
            await asyncio.sleep(args.token_ttl + args.settle_s)
            before = await snapshot(stats_http, base, admin, proc.pid)

            connector = aiohttp.TCPConnector(limit=args.sessions + args.pollers + 10)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                load = Load(http, api, args, sources, scratch)
                print(
                    f"load: {args.sessions} sessions, {args.pollers} pollers for {args.seconds:g} s "
                    f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores) …",
                    flush=True,
                )
                marks = cpu_s(proc.pid), own_cpu_s(), time.perf_counter()
                if not await load.run(sessions):
                    failures.append(
                        f"some sessions' operations had not ended {args.drain_s:g} s after the load"
                    )
                cpu = cpu_s(proc.pid) - marks[0], own_cpu_s() - marks[1], time.perf_counter() - marks[2]
            t_ended = time.perf_counter()
            if not await wait_until_idle(stats_http, base, admin, args.drain_s):
                failures.append(f"runningOperations was not 0 {args.drain_s:g} s after the load")
            drained = time.perf_counter() - t_ended
            await asyncio.sleep(args.token_ttl + args.settle_s)
            after = await snapshot(stats_http, base, admin, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            failures.append("the server did not exit within 30 s of SIGTERM")

    report(args, load, cpu, before, after, drained, failures)
    return failures


def report(
    args: argparse.Namespace,
    load: Load,
    cpu: tuple[float, float, float],
    before: dict[str, float],
    after: dict[str, float],
    drained: float,
    failures: list[str],
) -> None:
    nan = math.nan
    total = sum(load.classes.values())
    rps = load.in_window / args.seconds
    rows = [
        (
            f"requests, all kinds ({args.seconds:g} s, then draining)",
            float(total),
            nan,
            f"{rps:.0f} requests/s in the {args.seconds:g} s window",
        )
    ]
    server_cpu, client_cpu, wall = cpu
    rows.append(("server CPU s during the load (ratio: cores busy)", server_cpu, wall, f"of {wall:.1f} s"))
    rows.append(("client CPU s, this process (ratio: cores busy)", client_cpu, wall, "shares the cores"))
    for name in CLASSES:
        count = load.classes[name]
        note = ""
        if name in UNEXPECTED:
            note = "must be 0" if name in ("5xx", "no answer") else "unexpected"
            if count:
                note = "FAILED: " + note
                failures.append(f"{count} answers were {CLASS_NAMES[name]}")
        rows.append((f"  {CLASS_NAMES[name]}", float(count), float(total), note))
    print_table(rows, columns=("count", "of all"), digits=0)

    rows = []
    everything = [t for kind in KINDS for t in load.latencies[kind]]
    for name, values in (("all requests", everything), *((KIND_NAMES[k], load.latencies[k]) for k in KINDS)):
        if values:
            p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
            rows.append((name, p99, p50, f"{len(values)} requests, max {max(values) * 1000:.0f} ms"))
    print_table(rows, columns=("p99 ms", "p50 ms"), digits=1)

    rows = []
    for kind in ("copy", "delete"):
        started = load.ops[f"{kind} started"]
        rows.append((f"{kind} operations started", float(started), nan, f"{started / args.seconds:.1f}/s"))
        for state, note in (
            ("completed", ""),
            ("cancelled", ""),
            ("failed", "unexpected"),
            ("failed: already gone", "its earlier delete was cancelled too late: the race"),
            ("lost (no final status)", "unexpected"),
        ):
            count = load.ops[f"{kind} {state}"]
            if count or state in ("completed", "cancelled"):
                rows.append((f"  {state}", float(count), float(started), note))
        rows.append(
            (
                "  cancels sent",
                float(load.ops[f"{kind} cancel sent"]),
                float(started),
                "some reach a finished one",
            )
        )
    rows.append(("starts refused with 429", float(load.ops["starts refused (429)"]), nan, ""))
    print_table(rows, columns=("count", "started"), digits=0)
    lost = load.ops["copy lost (no final status)"] + load.ops["delete lost (no final status)"]
    if lost:
        failures.append(f"{lost} operations' final status was never read")
    failed = load.ops["copy failed"] + load.ops["delete failed"]
    if failed:
        failures.append(f"{failed} operations ended Failed")

    rows = []
    for name in (*STATS, "procFds"):
        grew = after[name] - before[name]
        if name == "threads":
            note = "(not judged: worker threads start on demand)"
        else:
            slack = args.slack if name in ("asyncioTasks", "openFiles", "procFds") else 0
            note = f"ok (slack {slack})" if grew <= slack else f"LEAK: +{grew:.0f} (slack {slack})"
            if grew > slack:
                failures.append(f"{name} grew from {before[name]:.0f} to {after[name]:.0f}")
        label = "/proc/<pid>/fd entries (from outside)" if name == "procFds" else f"/sandbox/stats {name}"
        rows.append((label, after[name], before[name], note))
    grew_mib = after["procRssMiB"] - before["procRssMiB"]
    ok = grew_mib <= args.rss_slack_mib
    rows.append(
        (
            "RSS MiB (/proc/<pid>/status, from outside)",
            after["procRssMiB"],
            before["procRssMiB"],
            f"{'ok' if ok else 'LEAK'}: +{grew_mib:.1f} MiB (slack {args.rss_slack_mib:g})",
        )
    )
    if not ok:
        failures.append(f"RSS grew by {grew_mib:.1f} MiB")
    print_table(rows, columns=("after", "before"), digits=1)
    print(
        f"\n(after: every operation had ended {drained:.1f} s after the load; then --token-ttl "
        f"+ {args.settle_s:g} s)"
    )
    if load.samples:
        print("\nunexpected answers and failed operations (the first few):")
        for sample in load.samples:
            print("  " + sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="how long the load runs")
    parser.add_argument(
        "--sessions", type=int, default=200, help="sessions, each running operations in a loop"
    )
    parser.add_argument("--pollers", type=int, default=500, help="clients polling tokens under way")
    parser.add_argument("--quick", action="store_true", help="--seconds 10 --sessions 20 --pollers 50")
    parser.add_argument(
        "--poll-pause-ms", type=float, default=50, help="each poller's mean pause between polls"
    )
    parser.add_argument(
        "--owner-pause-ms",
        type=float,
        nargs=2,
        default=(10, 50),
        metavar=("MIN", "MAX"),
        help="a session's pause between polls of its own operation (uniform)",
    )
    parser.add_argument("--cancel-share", type=float, default=0.3, help="share of operations cancelled")
    parser.add_argument("--max-polls", type=int, default=3, help="a cancel comes after 0..N polls")
    parser.add_argument(
        "--keep", type=int, default=3, help="a session deletes once it holds this many copies"
    )
    parser.add_argument("--ended-share", type=float, default=0.1, help="share of polls at ended tokens")
    parser.add_argument(
        "--ended-kept", type=int, default=1000, help="how many ended tokens pollers pick from"
    )
    parser.add_argument("--folders", type=int, default=20, help="source folders")
    parser.add_argument("--files", type=int, default=10, help="files of 1-4 KiB in each")
    parser.add_argument("--pace-ms", type=float, default=5, help="the server's --pace-ms")
    parser.add_argument("--token-ttl", type=float, default=5, help="the server's --token-ttl (s)")
    parser.add_argument("--settle-s", type=float, default=3, help="wait after --token-ttl before a snapshot")
    parser.add_argument(
        "--drain-s", type=float, default=60, help="how long operations may take to end after the load"
    )
    parser.add_argument("--request-timeout-s", type=float, default=30)
    parser.add_argument("--slack", type=int, default=5, help="growth allowed in asyncio tasks and open files")
    parser.add_argument("--rss-slack-mib", type=float, default=64, help="RSS growth allowed")
    parser.add_argument("--seed", type=int, default=1)
    add_dir_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.sessions, args.pollers = 10, 20, 50
    raise_fd_limit(args.sessions + args.pollers + 256)
    with work_folder(args.dir, "sandbox-load-") as work:
        failures = asyncio.run(run(args, work))
    if failures:
        print("\nFAILED:\n" + "\n".join(f"  {failure}" for failure in failures))
        sys.exit(1)
    print("\nno 5xx, no leak")


if __name__ == "__main__":
    main()
