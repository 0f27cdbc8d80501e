"""Requests first: while requests come fast, long work runs one step at a time (operations.load)."""

from __future__ import annotations

import asyncio
import time

from test_operations import assert_no_leftovers, build_many, copy_token, digest_tree, open_api, wait_done

from server.keys import load_key
from server.operations.load import RequestLoad
from server.walkers import CopyWalk


def test_requests_coming_fast_make_the_server_busy_until_they_stop() -> None:
    load = RequestLoad(window_s=0.5, busy_requests=10)
    for _ in range(9):
        load.started()
    assert not load.busy()
    load.started()
    assert load.busy()
    # the window ends: it still counts, for one more window
    time.sleep(0.6)
    assert load.busy()
    load.started()
    assert load.busy()
    # two windows without enough requests: not busy any more
    time.sleep(1.1)
    assert not load.busy()
    for _ in range(9):
        load.started()
    assert not load.busy()


async def test_a_copy_polled_in_a_tight_loop_runs_a_batch_at_a_time_and_copies_exactly(
    aiohttp_client, storage_root, monkeypatch
):
    """Twenty clients reading as fast as they can: the copy's batches (in the worker processes)
    go one at a time instead of four, and the copy is as exact as ever."""
    at_once = running = 0
    original = CopyWalk._copy_files

    def counted(self: CopyWalk, batch: list) -> None:
        nonlocal at_once, running
        running += 1
        at_once = max(at_once, running)
        try:
            original(self, batch)
        finally:
            running -= 1

    monkeypatch.setattr(CopyWalk, "_copy_files", counted)
    api = await open_api(aiohttp_client, storage_root, copy_processes=2)
    load = api.client.app[load_key]
    # (a window long enough that a slow moment of a loaded machine does not end it: these pollers
    # share the event loop with the server)
    load.window_s, load.busy_requests = 1.0, 50
    files = build_many(storage_root / "Src", folders=8, files_per_folder=100)
    assert files > 500  # past WORKER_MIN_FILES: the worker processes take the batches
    expected = digest_tree(storage_root / "Src")
    source = await api.by_path("\\Src")
    stop = asyncio.Event()

    async def poller() -> None:
        while not stop.is_set():
            resp = await api.request("GET", "/Entries/1")
            assert resp.status == 200
            await resp.read()

    pollers = [asyncio.create_task(poller()) for _ in range(20)]
    try:
        async with asyncio.timeout(10):
            while not load.busy():
                await asyncio.sleep(0.01)
        _, resp, _ = await wait_done(api, await copy_token(api, 1, source["id"], "Copied"))
        assert load.busy()
    finally:
        stop.set()
        await asyncio.gather(*pollers)
    assert resp.status == 302
    assert at_once == 1
    assert digest_tree(storage_root / "Copied") == expected
    assert_no_leftovers(storage_root)
