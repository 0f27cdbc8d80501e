"""Metadata follows a copy: each entry a copy makes gets the template, field values, tags and links
of the entry it copies, in the same transaction as its row (a crash leaves a copied entry with all
of its metadata or, if its row never got written, with none).

A link between two copied entries joins their copies; one to an entry outside the copied tree
joins the copy to that same entry. The copy of a link's first end cannot link to the copy of its
other end before that exists, so the copy notes its pairs (`copy_pairs`, for entries with links
only) and the link is made when the second end is copied.

Plain SQL on the store, no catalog: the copy worker processes carry metadata too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# (source id, copy id)
Pair = tuple[int, int]
# what a new entry's row is written with: (the transaction's connection, its id)
Then = Callable[[sqlite3.Connection, int], None]

_CARRIED = """
SELECT id FROM entries WHERE id IN ({marks}) AND template_id != 0
UNION SELECT entry_id FROM field_values WHERE entry_id IN ({marks})
UNION SELECT entry_id FROM tag_values WHERE entry_id IN ({marks})
UNION SELECT source_id FROM links WHERE source_id IN ({marks})
UNION SELECT target_id FROM links WHERE target_id IN ({marks})
"""
_LINKED = """
SELECT id, definition_id, source_id, target_id, properties FROM links
WHERE source_id IN ({marks}) OR target_id IN ({marks})
"""
_WITHIN = """
WITH RECURSIVE up(id, parent_id) AS (
    SELECT id, parent_id FROM entries WHERE id = ?
    UNION ALL SELECT e.id, e.parent_id FROM entries e JOIN up ON e.id = up.parent_id
)
SELECT 1 FROM up WHERE id = ?
"""
# sqlite binds at most 32,766 parameters; the query above names the ids 5 times
_CHUNK = 1000


@dataclass(frozen=True)
class CopyRun:
    """One copy's carrying of metadata: its key in copy_pairs, and the top of the copied tree."""

    key: str
    top_id: int

    def carry(self, conn: sqlite3.Connection, pairs: Sequence[Pair]) -> None:
        carry(conn, self.key, self.top_id, pairs)

    def then(self, source_id: int | None) -> Then | None:
        """What the row of the copy of `source_id` is written with (None: a source the store
        never met, which has no metadata)."""
        if source_id is None:
            return None
        return lambda conn, copy_id: self.carry(conn, [(source_id, copy_id)])


def carry(conn: sqlite3.Connection, run: str, top_id: int, pairs: Sequence[Pair]) -> None:
    """Give copies the metadata of their sources (`top_id`: the top of the tree being copied,
    `run`: this copy's key in copy_pairs). Call within the transaction that wrote their rows."""
    for start in range(0, len(pairs), _CHUNK):
        _carry(conn, run, top_id, pairs[start : start + _CHUNK])


def with_metadata(conn: sqlite3.Connection, source_ids: Sequence[int]) -> set[int]:
    """Which of these entries have metadata to carry."""
    found: set[int] = set()
    for start in range(0, len(source_ids), _CHUNK):
        chunk = list(source_ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        found.update(row[0] for row in conn.execute(_CARRIED.format(marks=marks), chunk * 5))
    return found


def _carry(conn: sqlite3.Connection, run: str, top_id: int, pairs: Sequence[Pair]) -> None:
    carried = with_metadata(conn, [source for source, _ in pairs])
    if not carried:
        return  # (the common case: a tree without metadata costs this one query per batch)
    todo = [(source, copy) for source, copy in pairs if source in carried]
    # one statement per table for the whole batch: (source, copy) pairs as a VALUES table
    pairs_table = "WITH pairs(source, copy) AS (VALUES " + ",".join(["(?, ?)"] * len(todo)) + ") "
    flat = [number for pair in todo for number in pair]
    conn.execute(
        pairs_table + "UPDATE entries SET template_id = (SELECT s.template_id FROM pairs"
        " JOIN entries s ON s.id = pairs.source WHERE pairs.copy = entries.id)"
        " WHERE id IN (SELECT copy FROM pairs)",
        flat,
    )
    conn.execute(
        pairs_table + "INSERT OR REPLACE INTO field_values (entry_id, field_id, position, value)"
        " SELECT pairs.copy, f.field_id, f.position, f.value FROM pairs JOIN field_values f"
        " ON f.entry_id = pairs.source",
        flat,
    )
    conn.execute(
        pairs_table + "INSERT OR IGNORE INTO tag_values (entry_id, tag_id, position)"
        " SELECT pairs.copy, t.tag_id, t.position FROM pairs JOIN tag_values t ON t.entry_id = pairs.source",
        flat,
    )
    _carry_links(conn, run, top_id, todo)


def _carry_links(conn: sqlite3.Connection, run: str, top_id: int, todo: list[Pair]) -> None:
    sources = [source for source, _ in todo]
    marks = ",".join("?" * len(sources))
    links = conn.execute(_LINKED.format(marks=marks), sources * 2).fetchall()
    if not links:
        return
    conn.executemany(
        "INSERT OR REPLACE INTO copy_pairs (copy_id, run, source_id) VALUES (?, ?, ?)",
        [(copy, run, source) for source, copy in todo],
    )
    within: dict[int, bool] = {}

    def copy_of(entry_id: int) -> int | None:
        """The end a copied link has for `entry_id`: its copy; itself if outside the copied
        tree; None if inside but not copied yet (the link is made when it is)."""
        row = conn.execute(
            "SELECT copy_id FROM copy_pairs WHERE run = ? AND source_id = ?", (run, entry_id)
        ).fetchone()
        if row is not None:
            return int(row[0])
        if entry_id not in within:
            within[entry_id] = conn.execute(_WITHIN, (entry_id, top_id)).fetchone() is not None
        return None if within[entry_id] else entry_id

    for _, definition_id, source_id, target_id, properties in links:
        new_source, new_target = copy_of(source_id), copy_of(target_id)
        if new_source is not None and new_target is not None:
            conn.execute(
                "INSERT INTO links (definition_id, source_id, target_id, properties) VALUES (?, ?, ?, ?)",
                (definition_id, new_source, new_target, properties),
            )


def end_run(conn: sqlite3.Connection, run: str) -> None:
    """Forget what a copy noted of its pairs, once it has ended."""
    conn.execute("DELETE FROM copy_pairs WHERE run = ?", (run,))
