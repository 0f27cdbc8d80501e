"""The group commit (server/commits.py) over a real store: writes queued while one transaction is
under way go together in the next, a failing one is undone alone, a whole record's write queued
twice is written once, and a caller cancelled while it waits does not take its write back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from server.commits import GroupCommit
from server.store import Store


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "root")
    store.open("admin", time.time_ns())
    store.conn.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    yield store
    store.close()


def note(text: str | None):
    def call(conn: sqlite3.Connection) -> str | None:
        conn.execute("INSERT INTO notes VALUES (?)", (text,))
        return text

    return call


def notes(store: Store) -> list[str]:
    return [text for (text,) in store.conn.execute("SELECT text FROM notes ORDER BY rowid")]


async def test_a_failing_write_is_undone_alone_and_only_its_caller_hears_why(store):
    commits = GroupCommit(store)
    first = asyncio.ensure_future(commits.write(note("one")))
    await asyncio.sleep(0)  # (the first goes alone; the next three queue behind it)
    rest = [asyncio.ensure_future(commits.write(note(text))) for text in ("two", None, "three")]
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert results[:2] == ["one", "two"] and results[3] == "three"
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert notes(store) == ["one", "two", "three"]


async def test_a_whole_records_write_still_queued_is_replaced_by_the_next(store):
    commits = GroupCommit(store)
    calls: list[str] = []

    def whole(text: str):
        def call(conn: sqlite3.Connection) -> str:
            calls.append(text)
            return note(text)(conn)

        return call

    blocker = asyncio.ensure_future(commits.write(note("first")))
    await asyncio.sleep(0)
    older = asyncio.ensure_future(commits.write(whole("older"), record="op-1", whole=True))
    newer = asyncio.ensure_future(commits.write(whole("newer"), record="op-1", whole=True))
    other = asyncio.ensure_future(commits.write(whole("other"), record="op-2", whole=True))
    assert await asyncio.gather(blocker, older, newer, other) == ["first", "newer", "newer", "other"]
    assert calls == ["newer", "other"]
    assert notes(store) == ["first", "newer", "other"]


async def test_a_caller_cancelled_while_it_waits_does_not_take_its_write_back(store):
    commits = GroupCommit(store)
    blocker = asyncio.ensure_future(commits.write(note("first")))
    await asyncio.sleep(0)
    cancelled = asyncio.ensure_future(commits.write(note("kept")))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await blocker == "first"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # the write goes on: what comes after it is committed after it
    assert await commits.write(note("after")) == "after"
    assert notes(store) == ["first", "kept", "after"]
