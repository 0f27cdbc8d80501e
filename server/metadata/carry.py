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
UNION SELECT entry_id FROM entry_values WHERE entry_id IN ({marks})
UNION SELECT source_id FROM links WHERE source_id IN ({marks})
UNION SELECT target_id FROM links WHERE target_id IN ({marks})
"""
# what a listing of a folder's children says of each: whether it has metadata to carry
HAS_METADATA = (
    "(e.template_id != 0 OR EXISTS (SELECT 1 FROM entry_values v WHERE v.entry_id = e.id)"
    " OR EXISTS (SELECT 1 FROM links l WHERE l.source_id = e.id)"
    " OR EXISTS (SELECT 1 FROM links l WHERE l.target_id = e.id))"
)
_LINKED = """
SELECT id, definition_id, source_id, target_id, properties FROM links
WHERE source_id IN ({marks}) OR target_id IN ({marks})
"""
# which of some entries are in the tree below an entry (the copied tree's top), itself included
_WITHIN = """
WITH RECURSIVE up(start, id, parent_id) AS (
    SELECT id, id, parent_id FROM entries WHERE id IN ({marks})
    UNION ALL SELECT up.start, e.id, e.parent_id FROM entries e JOIN up ON e.id = up.parent_id
)
SELECT DISTINCT start FROM up WHERE id = ?
"""
# sqlite binds at most 32,766 parameters; the query above names the ids 4 times
_CHUNK = 1000


@dataclass(frozen=True)
class CopyRun:
    """One copy's carrying of metadata: its key in copy_pairs, and the top of the copied tree."""

    key: str
    top_id: int

    def carry(
        self, conn: sqlite3.Connection, pairs: Sequence[Pair], checked: bool = False, template: bool = True
    ) -> None:
        carry(conn, self.key, self.top_id, pairs, checked, template)

    def then(self, source_id: int | None, checked: bool = False) -> Then | None:
        """What the row of the copy of `source_id` is written with (None: a source without
        metadata; `checked`: known to have some)."""
        if source_id is None:
            return None
        return lambda conn, copy_id: self.carry(conn, [(source_id, copy_id)], checked)


def carry(
    conn: sqlite3.Connection,
    run: str,
    top_id: int,
    pairs: Sequence[Pair],
    checked: bool = False,
    template: bool = True,
) -> None:
    """Give copies the metadata of their sources (`top_id`: the top of the tree being copied,
    `run`: this copy's key in copy_pairs; `checked`: every source is known to have metadata, as a
    listing with HAS_METADATA told; `template`: the copies' rows lack their templates yet). Call
    within the transaction that wrote their rows."""
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        if not checked:
            carried = with_metadata(conn, [source for source, _ in chunk])
            chunk = [(source, copy) for source, copy in chunk if source in carried]
        if chunk:
            _carry(conn, run, top_id, chunk, template)


def with_metadata(conn: sqlite3.Connection, source_ids: Sequence[int]) -> set[int]:
    """Which of these entries have metadata to carry."""
    found: set[int] = set()
    for start in range(0, len(source_ids), _CHUNK):
        chunk = list(source_ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        found.update(row[0] for row in conn.execute(_CARRIED.format(marks=marks), chunk * 4))
    return found


def _carry(conn: sqlite3.Connection, run: str, top_id: int, todo: Sequence[Pair], template: bool) -> None:
    # one statement per table for the whole batch: (source, copy) pairs as a VALUES table
    pairs_table = "WITH pairs(source, copy) AS (VALUES " + ",".join(["(?, ?)"] * len(todo)) + ") "
    flat = [number for pair in todo for number in pair]
    if template:
        conn.executemany(
            "UPDATE entries SET template_id = (SELECT template_id FROM entries WHERE id = ?) WHERE id = ?",
            todo,
        )
    conn.execute(
        pairs_table + "INSERT OR REPLACE INTO entry_values (entry_id, fields, tags)"
        " SELECT pairs.copy, v.fields, v.tags FROM pairs JOIN entry_values v ON v.entry_id = pairs.source",
        flat,
    )
    _carry_links(conn, run, top_id, todo)


def _carry_links(conn: sqlite3.Connection, run: str, top_id: int, todo: Sequence[Pair]) -> None:
    """The links of a batch's sources, carried in a few set-wide statements."""
    sources = [source for source, _ in todo]
    links = conn.execute(_LINKED.format(marks=_marks(sources)), sources * 2).fetchall()
    if not links:
        return
    linked = {end for link in links for end in link[2:4]}
    conn.executemany(
        "INSERT OR REPLACE INTO copy_pairs (copy_id, run, source_id) VALUES (?, ?, ?)",
        [(copy, run, source) for source, copy in todo if source in linked],
    )
    # each end's copy (this batch's, or an earlier one's)
    ends = list(linked)
    copies = dict(
        conn.execute(
            f"SELECT source_id, copy_id FROM copy_pairs WHERE run = ? AND source_id IN ({_marks(ends)})",
            (run, *ends),
        ).fetchall()
    )
    # the ends not copied (yet) that are inside the copied tree: their links wait for their copies
    uncopied = [end for end in ends if end not in copies]
    waiting = set()
    if uncopied:
        waiting = {
            row[0] for row in conn.execute(_WITHIN.format(marks=_marks(uncopied)), (*uncopied, top_id))
        }

    def copy_of(end: int) -> int | None:
        return copies.get(end, None if end in waiting else end)

    carried = []
    for _, definition_id, source_id, target_id, properties in links:
        new_source, new_target = copy_of(source_id), copy_of(target_id)
        if new_source is not None and new_target is not None:
            carried.append((definition_id, new_source, new_target, properties))
    conn.executemany(
        "INSERT INTO links (definition_id, source_id, target_id, properties) VALUES (?, ?, ?, ?)", carried
    )


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def end_run(conn: sqlite3.Connection, run: str) -> None:
    """Forget what a copy noted of its pairs, once it has ended."""
    conn.execute("DELETE FROM copy_pairs WHERE run = ?", (run,))
