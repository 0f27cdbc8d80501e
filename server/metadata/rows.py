"""An entry's values in the store: one `entry_values` row holding its field values (JSON, by field
id) and its tags (JSON, tag ids in the order given). One row per entry keeps a copy's carrying of
them to one row written per entry."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

import orjson

# field id -> values
Fields = dict[int, list[str]]


def read_values(conn: sqlite3.Connection, entry_id: int) -> tuple[Fields, list[int]]:
    """An entry's field values and tag ids (none: {} and [])."""
    row = conn.execute("SELECT fields, tags FROM entry_values WHERE entry_id = ?", (entry_id,)).fetchone()
    if row is None:
        return {}, []
    return {int(field_id): values for field_id, values in orjson.loads(row[0]).items()}, orjson.loads(row[1])


def write_values(
    conn: sqlite3.Connection,
    entry_id: int,
    fields: Mapping[int, Sequence[str]] | None = None,
    tags: Iterable[int] | None = None,
) -> None:
    """Replace an entry's field values, its tags, or both (None: kept as they are)."""
    old_fields, old_tags = read_values(conn, entry_id) if fields is None or tags is None else ({}, [])
    new_fields = {str(k): list(v) for k, v in (old_fields if fields is None else fields).items() if v}
    new_tags = list(dict.fromkeys(old_tags if tags is None else tags))  # (each once, in order)
    if not new_fields and not new_tags:
        conn.execute("DELETE FROM entry_values WHERE entry_id = ?", (entry_id,))
        return
    conn.execute(
        "INSERT OR REPLACE INTO entry_values (entry_id, fields, tags) VALUES (?, ?, ?)",
        (entry_id, orjson.dumps(new_fields).decode(), orjson.dumps(new_tags).decode()),
    )


def tags_of(conn: sqlite3.Connection, entry_ids: Sequence[int]) -> dict[int, list[int]]:
    """The tag ids of many entries (those with none left out)."""
    found: dict[int, list[int]] = {}
    for start in range(0, len(entry_ids), 1000):
        chunk = list(entry_ids[start : start + 1000])
        marks = ",".join("?" * len(chunk))
        for entry_id, tags in conn.execute(
            f"SELECT entry_id, tags FROM entry_values WHERE entry_id IN ({marks})", chunk
        ):
            if tags != "[]":
                found[entry_id] = orjson.loads(tags)
    return found
