"""A search's results in the store: its record (`searches`: the command, which set of rows is
current, when they were last read) and its rows (`search_rows`: each entry as it was when found,
numbered in the order found). Rows are a snapshot, as Laserfiche's are: reading them never touches
the tree, and `refresh` writes a new set (`run`) that replaces the old one in one transaction.

Results are kept `ttl` after their last read (or the search's end); a read after that finds them
expired (their rows are dropped then, and by `sweep`). Everything here blocks, under the store's
lock; no aiohttp.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import NotFound
from ..repository import Entry, Target
from ..store import Store

_COLUMNS = (
    "entry_id, parent_id, name, parts, is_dir, creator, created_ns, modified_ns, size, ext, target_id,"
    " target_type, template_id"
)
_INSERT = (
    "INSERT INTO search_rows (token, run, row_number, name_key, ext_key, "
    + _COLUMNS
    + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# what `$orderby` may name (the v2 entries' order fields) -> the rows' SQL for it
ORDER_SQL = {
    "name": "name_key",
    "id": "entry_id",
    "created": "created_ns",
    "modified": "modified_ns",
    "type": "CASE WHEN target_id IS NOT NULL THEN 'Shortcut' WHEN is_dir THEN 'Folder' ELSE 'Document' END",
    "size": "size",
    "creator": "creator COLLATE NOCASE",
    "extension": "ext_key",
}


@dataclass(frozen=True)
class Record:
    command: str
    run: int
    read_ns: int
    expired: bool


def create(conn: sqlite3.Connection, token: str, command: str) -> None:
    """The record of a search just accepted (in the transaction that stores its operation)."""
    conn.execute("INSERT OR REPLACE INTO searches (token, command) VALUES (?, ?)", (token, command))


def ended(conn: sqlite3.Connection, token: str, now_ns: int) -> None:
    """The search ended: its results are kept from now (in the transaction that ends it)."""
    conn.execute("UPDATE searches SET read_ns = ? WHERE token = ? AND read_ns = 0", (now_ns, token))


def write_rows(store: Store, token: str, run: int, first: int, entries: Sequence[Entry]) -> None:
    """Rows `first`, `first + 1`… of a search's set `run`: the entries found, as they are now."""
    rows = [
        (
            token,
            run,
            first + i,
            e.name.casefold(),
            e.extension.casefold(),
            e.id,
            e.parent_id,
            e.name,
            orjson.dumps(e.parts).decode(),
            e.is_dir,
            e.creator,
            e.created_ns,
            e.modified_ns,
            e.size,
            e.ext,
            e.target.id if e.target else None,
            e.target.type if e.target else None,
            e.template_id,
        )
        for i, e in enumerate(entries)
    ]
    with store.transaction() as conn:
        conn.executemany(_INSERT, rows)


def record(store: Store, token: str) -> Record:
    with store.lock:
        row = store.conn.execute(
            "SELECT command, run, read_ns, expired FROM searches WHERE token = ?", (token,)
        ).fetchone()
    if row is None:
        raise NotFound(f"The results of search {token} are gone.")
    return Record(row[0], row[1], row[2], bool(row[3]))


def read(store: Store, token: str, running: bool, ttl_ns: int, now_ns: int) -> Record:
    """The search's record, its results read now (kept `ttl_ns` from now); NotFound saying they
    expired once `ttl_ns` has passed since the last read (their rows are dropped then)."""
    found = record(store, token)
    if running:
        return found
    if found.expired or (found.read_ns and now_ns - found.read_ns > ttl_ns):
        expire(store, [token])
        raise NotFound(
            f"The results of search {token} expired ({ttl_ns / 1e9:g} s after they were last read); "
            "send refresh=true to run the search again.",
            title="The search results expired.",
        )
    with store.transaction() as conn:
        conn.execute("UPDATE searches SET read_ns = ? WHERE token = ?", (now_ns, token))
    return found


def expire(store: Store, tokens: Iterable[str]) -> None:
    with store.transaction() as conn:
        for token in tokens:
            conn.execute("DELETE FROM search_rows WHERE token = ?", (token,))
            conn.execute("UPDATE searches SET expired = 1 WHERE token = ?", (token,))


def sweep(store: Store, ttl_ns: int, now_ns: int) -> None:
    """Drop the rows of every search whose results were last read more than `ttl_ns` ago."""
    with store.lock:
        stale = [
            row[0]
            for row in store.conn.execute(
                "SELECT token FROM searches WHERE expired = 0 AND read_ns > 0 AND read_ns < ?",
                (now_ns - ttl_ns,),
            )
        ]
    if stale:
        expire(store, stale)


def switch(store: Store, token: str, run: int, now_ns: int) -> None:
    """A refresh wrote the set `run`: it replaces the others, and is read from now."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM search_rows WHERE token = ? AND run != ?", (token, run))
        conn.execute(
            "UPDATE searches SET run = ?, read_ns = ?, expired = 0 WHERE token = ?", (run, now_ns, token)
        )


def drop_run(store: Store, token: str, run: int) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM search_rows WHERE token = ? AND run = ?", (token, run))


def drop(store: Store, token: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM search_rows WHERE token = ?", (token,))
        conn.execute("DELETE FROM searches WHERE token = ?", (token,))


def tidy(store: Store, live: set[str]) -> None:
    """At start: the searches of tokens gone, and sets of rows a crash left half written (a refresh)."""
    with store.lock:
        tokens = [row[0] for row in store.conn.execute("SELECT token FROM searches")]
    for token in tokens:
        if token not in live:
            drop(store, token)
    with store.transaction() as conn:
        conn.execute(
            "DELETE FROM search_rows WHERE NOT EXISTS (SELECT 1 FROM searches s"
            " WHERE s.token = search_rows.token AND s.run = search_rows.run)"
        )


def count(store: Store, token: str, run: int) -> int:
    with store.lock:
        row = store.conn.execute(
            "SELECT count(*) FROM search_rows WHERE token = ? AND run = ?", (token, run)
        ).fetchone()
    return int(row[0])


def page(
    store: Store,
    token: str,
    run: int,
    order: Sequence[tuple[str, bool]],
    skip: int,
    limit: int,
    folders_first: bool = False,
) -> list[tuple[int, Entry]]:
    """Rows `skip`… (at most `limit`) in `order` ((field, descending) of ORDER_SQL; then by row
    number), as (row number, entry)."""
    terms = ["is_dir DESC"] if folders_first else []
    terms += [f"{ORDER_SQL[name]} {'DESC' if descending else 'ASC'}" for name, descending in order]
    terms.append("row_number")
    with store.lock:
        rows = store.conn.execute(
            f"SELECT row_number, {_COLUMNS} FROM search_rows WHERE token = ? AND run = ?"
            f" ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?",
            (token, run, limit, skip),
        ).fetchall()
    return [(row[0], _entry(row[1:])) for row in rows]


def row(store: Store, token: str, run: int, row_number: int) -> Entry:
    with store.lock:
        found = store.conn.execute(
            f"SELECT {_COLUMNS} FROM search_rows WHERE token = ? AND run = ? AND row_number = ?",
            (token, run, row_number),
        ).fetchone()
    if found is None:
        raise NotFound(f"Search {token} has no result row {row_number}.")
    return _entry(found)


def _entry(row: Sequence[Any]) -> Entry:
    (
        entry_id,
        parent_id,
        name,
        parts,
        is_dir,
        creator,
        created,
        modified,
        size,
        ext,
        target_id,
        target_type,
        template,
    ) = row
    target = Target(target_id, target_type) if target_id is not None else None
    return Entry(
        entry_id, parent_id, name, tuple(orjson.loads(parts)), bool(is_dir), creator, created, modified, size,
        ext, target, template,
    )  # fmt: skip
