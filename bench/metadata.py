"""Benchmark: reading an entry's metadata, and a long copy of a tree whose entries carry metadata.

Starts `python -m server` on a fresh storage root with its own catalog (`.catalog.toml`: 20 String
fields, the last multi-valued; 10 tags; 2 link definitions; a template `Full` with all 20 fields and
a template `Record` with 4 of them), talks to it over 127.0.0.1 only through the v2 API, and:

- reads one document that carries the template `Full`, 20 field values (19 single and one field
  with 3 values), 10 tags and 10 links, the way a client shows an entry: GET Entries/{id}, then its
  Fields, Tags and Links, one after another on one connection, `--reads` times after `--warmup`
  untimed rounds. It reports p50/p99 of each of the four requests and of the sequence, next to
  a bare GET Entries/{id} of a document without metadata. The bar (issue 13) is per request:
  p99 under 5 ms for each of the four;
- copies two identical trees of `--files` files of 4 KiB in `--folders` folders (made on disk
  before the server starts, then listed so that every entry gets its id): tree A, whose every entry
  (folders and documents) has been given the template `Record` with 3 field values and 2 tags, and
  links between `--link-pairs` pairs of its documents (half within a folder, half across), all set
  through the API with `--concurrency` requests at once (per entry one PUT Template carrying the
  field values and one PUT Tags; one PUT Links per pair); and tree B, without any. Each copy is a v2
  CopyAsync into a fresh name, from the POST to the task's Completed (long-polled with
  `Prefer: wait=30`), and is deleted (DELETE Entries/{id}, waited for) before the next. Runs
  alternate A and B (and which goes first); the first round warms caches and is not counted. The
  bar: the copy of A at most 1.3x the copy of B, medians side by side;
- checks, on the uncounted first copy of A, that every folder and a sample of `--check` documents
  of the copy carry the same template, fields and tags as their sources (and that those are the
  values the benchmark set), and that each linked pair's copies are linked to each other (the link
  seen from both copies) while the sources keep their own link. A wrong answer prints FAILED and
  the script exits 1; a missed bar is only shown in the table.

Medians come with their spread (min-max, and the gap over the median), which is the machine's
noise; the load average printed around the reads tells whether other work shared the machine. The
work folder defaults to /dev/shm (a tmpfs) where there is one, so that what is measured is the
work, not the disk's writeback.

    python bench/metadata.py [--files 10000] [--folders 100] [--runs 5] [--reads 2000] [--dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from common import (
    REPO,
    add_dir_option,
    make_tree,
    percentile,
    print_table,
    sign_in,
    start_server,
    work_folder,
)

FIELDS = [f"Field {n:02d}" for n in range(1, 20)] + ["Keywords"]  # the last one is multi-valued
TAGS = [f"Tag {n:02d}" for n in range(1, 11)]
LINK_DEFINITIONS = (1, 2)
RECORD_FIELDS = [*FIELDS[:3], "Keywords"]  # the template `Record`; the copied trees set the first 3
BAR_MS = 5.0
COPY_BAR = 1.3
TERMINAL = ("Completed", "Failed", "Cancelled")

T = TypeVar("T")
# one entry of a listed tree, by its path under the tree's top ("" for the top): (id, is a folder)
Tree = dict[str, tuple[int, bool]]
# what an entry shows: (template name, {field: values}, sorted tag names)
Shown = tuple[str, dict[str, list[str]], list[str]]
# a link between two documents of tree A: (source path, target path, link definition id)
Pair = tuple[str, str, int]


def catalog() -> str:
    """The bench's catalog: TOML in the format of storage_root/.catalog.toml."""
    parts = []
    for n, name in enumerate(FIELDS, 1):
        multi = "\nmulti_value = true" if name == "Keywords" else ""
        parts.append(f'[[field]]\nid = {n}\nname = "{name}"\ntype = "String"\nlength = 100{multi}\n')
    for n, (name, fields) in enumerate((("Full", FIELDS), ("Record", RECORD_FIELDS)), 1):
        listed = ", ".join(f'"{f}"' for f in fields)
        parts.append(f'[[template]]\nid = {n}\nname = "{name}"\nfields = [{listed}]\n')
    for n, name in enumerate(TAGS, 1):
        parts.append(f'[[tag]]\nid = {n}\nname = "{name}"\n')
    for n in LINK_DEFINITIONS:
        parts.append(f'[[link]]\nid = {n}\nsource_label = "Source {n}"\ntarget_label = "Target {n}"\n')
    return "\n".join(parts)


async def each(items: Iterable[T], work: Callable[[T], Awaitable[None]], concurrency: int) -> None:
    """`work` on every item, `concurrency` at a time."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class ApiError(RuntimeError):
    """An answer the benchmark did not expect: the request and what came back."""


class Client:
    def __init__(self, http: aiohttp.ClientSession, v2: str, auth: dict[str, str]) -> None:
        self.http, self.v2, self.auth = http, v2, auth

    async def call(self, method: str, url: str, expect: int = 200, **kwargs: Any) -> Any:
        url = url if url.startswith("http") else f"{self.v2}/{url}"
        headers = self.auth | kwargs.pop("headers", {})
        async with self.http.request(method, url, headers=headers, **kwargs) as r:
            if r.status != expect:
                sent = f" {kwargs['json']}" if "json" in kwargs else ""
                raise ApiError(f"{method} {url}{sent} -> {r.status} {await r.text()}")
            return await r.json()

    async def entry_id(self, path: str) -> int:
        found = await self.call("GET", "Entries/ByPath", params={"fullPath": path})
        return int(found["entry"]["id"])

    async def collection(self, url: str, page: int = 1000) -> list[dict[str, Any]]:
        """Every item of a paged collection, following @odata.nextLink."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = await self.call("GET", next_url, headers={"Prefer": f"maxpagesize={page}"})
            items += body["value"]
            next_url = body.get("@odata.nextLink")
        return items

    async def shown(self, entry_id: int) -> Shown:
        entry = await self.call("GET", f"Entries/{entry_id}")
        fields = await self.collection(f"Entries/{entry_id}/Fields")
        tags = await self.collection(f"Entries/{entry_id}/Tags")
        return (
            entry["templateName"],
            {f["name"]: f["values"] for f in fields if f["values"]},  # (a template's empty fields too)
            sorted(t["name"] for t in tags),
        )

    async def links(self, entry_id: int) -> list[tuple[int, int, int]]:
        found = await self.collection(f"Entries/{entry_id}/Links")
        return sorted((k["linkDefinitionId"], k["sourceId"], k["targetId"]) for k in found)

    async def wait(self, task_id: str) -> dict[str, Any]:
        """The task once it has ended (long polling); ApiError unless it completed."""
        while True:
            body = await self.call("GET", "Tasks", params={"taskIds": task_id}, headers={"Prefer": "wait=30"})
            task = body["value"][0]
            if task["status"] in TERMINAL:
                if task["status"] != "Completed":
                    raise ApiError(f"task {task_id} ended {task['status']}: {task['errors']}")
                return dict(task)

    async def copy(self, source_id: int, name: str) -> int:
        started = await self.call(
            "POST", "Entries/1/Folder/CopyAsync", 202, json={"sourceId": source_id, "name": name}
        )
        return int((await self.wait(started["taskId"]))["result"]["entryId"])

    async def delete(self, entry_id: int) -> None:
        started = await self.call("DELETE", f"Entries/{entry_id}", 202, json={})
        await self.wait(started["taskId"])


async def list_tree(client: Client, top_id: int, concurrency: int) -> Tree:
    """Every entry under a folder, by its path under it (listing gives entries put there by hand
    their ids)."""
    tree: Tree = {"": (top_id, True)}
    level = [("", top_id)]
    below: list[tuple[str, int]] = []

    async def one(folder: tuple[str, int]) -> None:
        prefix, folder_id = folder
        for child in await client.collection(f"Entries/{folder_id}/Folder/Children"):
            path = f"{prefix}/{child['name']}" if prefix else child["name"]
            tree[path] = (int(child["id"]), bool(child["isContainer"]))
            if child["isContainer"]:
                below.append((path, int(child["id"])))

    while level:
        await each(level, one, concurrency)
        level, below = below, []
    return tree


# ---- reading one entry ------------------------------------------------------------------------


async def prepare_subject(client: Client, subject: int, others: list[int]) -> None:
    """The template `Full`, 20 fields (22 values), 10 tags and 10 links on `subject`."""
    await client.call("PUT", f"Entries/{subject}/Template", json={"templateName": "Full"})
    values = [{"name": name, "values": [f"{name} of the subject, a value of some length"]} for name in FIELDS]
    values[-1]["values"] = ["alpha", "beta", "gamma"]
    await client.call("PUT", f"Entries/{subject}/Fields", json={"fields": values})
    await client.call("PUT", f"Entries/{subject}/Tags", json={"tags": TAGS})
    links = [
        {"linkDefinitionId": LINK_DEFINITIONS[n % 2], "otherEntryId": other, "isSource": n % 3 != 0}
        for n, other in enumerate(others)
    ]
    await client.call("PUT", f"Entries/{subject}/Links", json={"links": links})
    template, fields, tags = await client.shown(subject)
    got = (
        template,
        sum(len(v) for v in fields.values()),
        len(fields),
        len(tags),
        len(await client.links(subject)),
    )
    if got != ("Full", 22, 20, 10, 10):
        raise ApiError(f"the subject shows (template, values, fields, tags, links) = {got}")


async def reads(
    http: aiohttp.ClientSession, client: Client, subject: int, plain: int, rounds: int
) -> dict[str, list[float]]:
    """Latencies (s) of the four requests that show `subject`, of their sequence, and of a bare GET
    of `plain` after each sequence."""
    urls = {
        "entry": f"{client.v2}/Entries/{subject}",
        "fields": f"{client.v2}/Entries/{subject}/Fields",
        "tags": f"{client.v2}/Entries/{subject}/Tags",
        "links": f"{client.v2}/Entries/{subject}/Links",
    }
    bare = f"{client.v2}/Entries/{plain}"
    times: dict[str, list[float]] = {name: [] for name in (*urls, "sequence", "bare")}

    async def get(url: str) -> float:
        t0 = time.perf_counter()
        async with http.get(url, headers=client.auth) as r:
            await r.read()
            took = time.perf_counter() - t0
            if r.status != 200:
                raise ApiError(f"GET {url} -> {r.status}")
        return took

    for _ in range(rounds):
        t0 = time.perf_counter()
        for name, url in urls.items():
            times[name].append(await get(url))
        times["sequence"].append(time.perf_counter() - t0)
        times["bare"].append(await get(bare))
    return times


# ---- metadata on a tree, and the check of its copy -----------------------------------------


def plan(tree: Tree, pairs: int, seed: int) -> tuple[dict[str, Shown], list[Pair]]:
    """What each entry of tree A gets, and the linked pairs of its documents: each document is in
    one pair at most (a PUT of Links replaces all of an entry's links); half of the pairs within a
    folder, the rest across folders (shuffled)."""
    wanted: dict[str, Shown] = {}
    for n, path in enumerate(sorted(tree)):
        name = path.rpartition("/")[2] or "top"
        folder = path.partition("/")[0] if "/" in path else "top"
        fields = {FIELDS[0]: [name], FIELDS[1]: [folder], FIELDS[2]: [f"entry {n}"]}
        wanted[path] = ("Record", fields, sorted({TAGS[n % 10], TAGS[(n + 3) % 10]}))
    by_folder: dict[str, list[str]] = {}
    for path, (_, is_folder) in sorted(tree.items()):
        if not is_folder:
            by_folder.setdefault(path.partition("/")[0], []).append(path)
    folders = sorted(by_folder)
    documents = sum(len(docs) for docs in by_folder.values())
    pairs = min(pairs, documents // 2)
    linked: list[Pair] = []
    used: set[str] = set()
    for n in range(pairs // 2):  # within a folder: its documents two by two, folder after folder
        docs = by_folder[folders[n % len(folders)]]
        k = n // len(folders)
        if 2 * k + 1 < len(docs):
            linked.append((docs[2 * k], docs[2 * k + 1], LINK_DEFINITIONS[n % 2]))
            used.update(linked[-1][:2])
    rest = [path for folder in folders for path in by_folder[folder] if path not in used]
    random.Random(seed).shuffle(rest)
    for n in range(pairs - len(linked)):
        linked.append((rest[2 * n], rest[2 * n + 1], LINK_DEFINITIONS[n % 2]))
    return wanted, linked


async def give_metadata(
    client: Client, tree: Tree, wanted: dict[str, Shown], linked: list[Pair], concurrency: int
) -> int:
    """Sets what `plan` chose, `concurrency` requests at once; how many requests that took."""

    async def one(path: str) -> None:
        entry_id = tree[path][0]
        template, fields, tags = wanted[path]
        updates = [{"name": name, "values": values} for name, values in fields.items()]
        await client.call(
            "PUT", f"Entries/{entry_id}/Template", json={"templateName": template, "fields": updates}
        )
        await client.call("PUT", f"Entries/{entry_id}/Tags", json={"tags": tags})

    async def link(pair: Pair) -> None:
        source, target, definition = pair
        body = {
            "links": [{"linkDefinitionId": definition, "otherEntryId": tree[target][0], "isSource": True}]
        }
        await client.call("PUT", f"Entries/{tree[source][0]}/Links", json=body)

    await each(wanted, one, concurrency)
    await each(linked, link, concurrency)
    return 2 * len(wanted) + len(linked)


async def check_copy(
    client: Client,
    source: Tree,
    copy: Tree,
    wanted: dict[str, Shown],
    linked: list[Pair],
    sample: int,
    concurrency: int,
) -> tuple[int, dict[str, list[str]]]:
    """Compares the copy of tree A with its source: how many entries were compared, and what is
    wrong, by kind of problem."""
    problems: dict[str, list[str]] = {}

    def wrong(kind: str, problem: str) -> None:
        problems.setdefault(kind, []).append(problem)

    if set(copy) != set(source):
        missing, extra = sorted(set(source) - set(copy))[:3], sorted(set(copy) - set(source))[:3]
        counts = f"{len(copy)} in the copy, {len(source)} in its source"
        wrong("entries", f"{counts}: missing {missing}, extra {extra}")
    documents = sorted(path for path, (_, is_folder) in source.items() if not is_folder)
    step = max(1, len(documents) // max(1, sample))
    compared = [path for path, (_, is_folder) in source.items() if is_folder] + documents[::step][:sample]
    compared = [path for path in compared if path in copy]

    async def one(path: str) -> None:
        (source_id, is_folder), copy_id = source[path], copy[path][0]
        what = "folders'" if is_folder else "documents'"
        shown_source = await client.shown(source_id)
        shown_copy = await client.shown(copy_id)
        if shown_source != wanted[path]:
            wrong(f"{what} values as set", f"{path!r} (id {source_id}): {shown_source}, not {wanted[path]}")
        if shown_copy != shown_source:
            wrong(
                f"copied {what} values",
                f"copy of {path!r} (id {copy_id}): {shown_copy}, its source (id {source_id}) {shown_source}",
            )

    async def link(pair: Pair) -> None:
        a, b, definition = pair
        if a not in copy or b not in copy:
            return
        expected = [(definition, copy[a][0], copy[b][0])]
        for end in (a, b):
            got = await client.links(copy[end][0])
            if got != expected:
                wrong(
                    "links of the copies (definition, source, target)",
                    f"copy of {end!r} (id {copy[end][0]}): {got}, not {expected}",
                )
        original = [(definition, source[a][0], source[b][0])]
        got = await client.links(source[a][0])
        if got != original:
            wrong("links of the sources after the copy", f"{a!r} (id {source[a][0]}): {got}, not {original}")

    await each(compared, one, concurrency)
    await each(linked, link, concurrency)
    return len(compared), problems


# ---- the run -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, work: Path) -> tuple[list[Any], list[Any], list[str]]:
    root = work / "root"
    root.mkdir()
    (root / ".catalog.toml").write_text(catalog())
    (root / "read").mkdir()
    for name in ["subject.txt", "plain.txt", *(f"other-{n:02d}.txt" for n in range(10))]:
        (root / "read" / name).write_bytes(b"an entry to read\n" * 64)
    make_tree(root / "tree-a", args.files, args.folders, 4096)
    make_tree(root / "tree-b", args.files, args.folders, 4096)
    proc, base = start_server(root)
    v2 = f"{base}/v2/Repositories/{REPO}"
    failures: list[str] = []
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        ) as http:
            client = Client(http, v2, await sign_in(http, f"{base}/v1/Repositories/{REPO}"))

            # ---- reading one entry -----------------------------------------------------------
            subject = await client.entry_id("\\read\\subject.txt")
            plain = await client.entry_id("\\read\\plain.txt")
            others = [await client.entry_id(f"\\read\\other-{n:02d}.txt") for n in range(10)]
            await prepare_subject(client, subject, others)
            await reads(http, client, subject, plain, args.warmup)
            load_before = os.getloadavg()[0]
            times = await reads(http, client, subject, plain, args.reads)
            load_after = os.getloadavg()[0]
            read_rows = []
            names = {
                "entry": "GET Entries/{id} (template Full)",
                "fields": "GET Entries/{id}/Fields (20 fields, 22 values)",
                "tags": "GET Entries/{id}/Tags (10 tags)",
                "links": "GET Entries/{id}/Links (10 links)",
                "sequence": "the four in sequence (one entry shown)",
                "bare": "bare GET Entries/{id} of a document without metadata",
            }
            for key, name in names.items():
                p50, p99 = percentile(times[key], 50) * 1000, percentile(times[key], 99) * 1000
                if key in ("sequence", "bare"):
                    note = "the bar is per request" if key == "sequence" else "for comparison"
                else:
                    note = f"target p99 < {BAR_MS:g} ms: " + ("met" if p99 < BAR_MS else "MISSED")
                note += f"; max {max(times[key]) * 1000:.1f} ms"
                read_rows.append((name, p99, p50, note))
            print(
                f"reads: {args.reads} rounds after {args.warmup} of warm-up; the machine's load average "
                f"{load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs "
                "(other work on the machine shows in the p99s: compare with the bare GET)"
            )

            # ---- tree A gets metadata; both trees are listed first -----------------------------
            t0 = time.perf_counter()
            tree_a = await list_tree(client, await client.entry_id("\\tree-a"), args.concurrency)
            tree_b = await list_tree(client, await client.entry_id("\\tree-b"), args.concurrency)
            took = time.perf_counter() - t0
            print(f"listed both trees ({len(tree_a)} + {len(tree_b)} entries) in {took:.1f} s")
            wanted, linked = plan(tree_a, args.link_pairs, args.seed)
            across = sum(a.partition("/")[0] != b.partition("/")[0] for a, b, _ in linked)
            t0 = time.perf_counter()
            requests = await give_metadata(client, tree_a, wanted, linked, args.concurrency)
            took = time.perf_counter() - t0
            print(
                f"tree A: template, 3 fields and 2 tags on {len(wanted)} entries, {len(linked)} links "
                f"({across} across folders): {requests} requests in {took:.1f} s "
                f"({requests / took:,.0f}/s, {args.concurrency} at once)"
            )

            # ---- copies, alternating -----------------------------------------------------------
            tops = {"A": tree_a[""][0], "B": tree_b[""][0]}
            copies: dict[str, list[float]] = {"A": [], "B": []}
            deletes: dict[str, list[float]] = {"A": [], "B": []}
            for i in range(args.runs + 1):  # the first round warms caches and is not counted
                for which in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    t0 = time.perf_counter()
                    copy_id = await client.copy(tops[which], f"copy-{which.lower()}-{i}")
                    copied = time.perf_counter() - t0
                    if i == 0 and which == "A":
                        copy_tree = await list_tree(client, copy_id, args.concurrency)
                        compared, problems = await check_copy(
                            client, tree_a, copy_tree, wanted, linked, args.check, args.concurrency
                        )
                        count = sum(len(found) for found in problems.values())
                        verdict = "ok" if not problems else f"FAILED ({count} problems)"
                        print(
                            f"metadata check: {compared} copied entries (all {args.folders + 1} folders) "
                            f"against their sources, {len(linked)} links seen from both copies: {verdict}"
                        )
                        for kind, found in problems.items():
                            failures.append(f"{kind}: {len(found)} wrong, e.g. {found[0]}")
                            print(f"  {failures[-1]}")
                    t0 = time.perf_counter()
                    await client.delete(copy_id)
                    deleted = time.perf_counter() - t0
                    if i:
                        copies[which].append(copied)
                        deletes[which].append(deleted)
            n = args.runs
            copy_rows = [
                (
                    f"copy {args.files} x 4 KiB in {args.folders} folders (median of {n})",
                    statistics.median(copies["A"]),
                    statistics.median(copies["B"]),
                    f"target <= {COPY_BAR:g}; runs {spread(copies['A'])}, without {spread(copies['B'])}",
                ),
                (
                    f"delete that copy (median of {n})",
                    statistics.median(deletes["A"]),
                    statistics.median(deletes["B"]),
                    f"no target; runs {spread(deletes['A'])}, without {spread(deletes['B'])}",
                ),
            ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return read_rows, copy_rows, failures


def spread(values: list[float]) -> str:
    """The machine's noise over a set of runs: min-max, and their gap over the median."""
    median = statistics.median(values)
    gap = (max(values) - min(values)) / median * 100 if median else math.nan
    return f"{min(values):.2f}-{max(values):.2f} s ({gap:.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reads", type=int, default=2000, help="timed rounds of the four reads")
    parser.add_argument("--warmup", type=int, default=200, help="untimed rounds before them")
    parser.add_argument("--link-pairs", type=int, default=1000, help="linked pairs of tree A's documents")
    parser.add_argument(
        "--check", type=int, default=200, help="documents of the copy compared with their sources"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests at once while setting metadata")
    parser.add_argument("--seed", type=int, default=13)
    add_dir_option(parser)
    args = parser.parse_args()
    with work_folder(args.dir, "sandbox-metadata-") as work:
        read_rows, copy_rows, failures = asyncio.run(run(args, work))
    print_table(read_rows, columns=("p99 ms", "p50 ms"), digits=2)
    print_table(copy_rows, columns=("with s", "without s"))
    if failures:
        print("\nFAILED:\n" + "\n".join(f"  {failure}" for failure in failures[:20]))
        sys.exit(1)
    print("\nmetadata carried by the copy as it should")


if __name__ == "__main__":
    main()
