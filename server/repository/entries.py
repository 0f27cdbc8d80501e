"""Entries and their rows in the store: what an entry is, its stored columns, how listings order
them, and the row changes the walkers and the copy worker processes make too."""

from __future__ import annotations

import functools
import mimetypes
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import NotFound
from ..metadata.carry import CopyRun
from .names import extension_of


@dataclass(frozen=True)
class Target:
    """Where a shortcut points: an entry's id, and its type when the shortcut was made."""

    id: int
    type: str


class Known(NamedTuple):
    """What a walker needs of a child the store knows (see `Repository.child_rows`)."""

    id: int | None = None
    ext: str | None = None
    target: Target | None = None
    # whether it has metadata for a copy to carry, and its template's id
    carried: bool = False
    template_id: int = 0


@dataclass(frozen=True)
class Entry:
    id: int
    parent_id: int  # 0 for the root
    name: str
    parts: tuple[str, ...]  # names from the root down; () for the root
    is_dir: bool
    creator: str
    created_ns: int
    modified_ns: int
    size: int  # bytes of a document; 0 for folders
    # a document imported as `Invoice 123` from `File.pdf` keeps "pdf" here, as Laserfiche does;
    # None: the extension is the name's own
    ext: str | None = None
    # a shortcut's target: its id and what it was when the shortcut was made (None: not a shortcut)
    target: Target | None = None
    # its metadata template's id in the catalog (0: none)
    template_id: int = 0

    @property
    def is_shortcut(self) -> bool:
        return self.target is not None

    @property
    def entry_type(self) -> str:
        """Laserfiche's name for what it is."""
        return "Shortcut" if self.target is not None else "Folder" if self.is_dir else "Document"

    @property
    def extension(self) -> str:
        return extension_of(self.name) if self.ext is None else self.ext

    @property
    def path(self) -> str:
        """Its place, for people to read: /A/B (the dialects each have their own form)."""
        return "/" + "/".join(self.parts)

    def child_path(self, name: str) -> str:
        return "/" + "/".join((*self.parts, name))

    @property
    def mime_type(self) -> str:
        if self.is_dir:
            return ""
        guess = mimetypes.guess_type("x." + self.extension, strict=False)[0]
        return guess or "application/octet-stream"

    @property
    def file_name(self) -> str:
        """The name a download is saved under: the name, plus a kept extension."""
        return self.name if self.ext is None else f"{self.name}.{self.ext}"


# what the caches of stored rows are keyed by (see Tree._version)
Version = tuple[int, int]
# the stored columns of an entry, in Row's order
ROW_COLUMNS = "id, parent_id, name, is_dir, creator, created_ns, ext, target_id, target_type, template_id"
INSERT_ENTRY = (
    "INSERT INTO entries (parent_id, name, name_key, is_dir, creator, created_ns, ext)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DOCUMENT = (
    "INSERT INTO entries (parent_id, name, name_key, is_dir, creator, created_ns, ext, template_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_SHORTCUT = (
    "INSERT INTO entries (parent_id, name, name_key, is_dir, creator, created_ns, ext, target_id,"
    " target_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Row:
    id: int
    parent_id: int
    name: str
    is_dir: bool
    creator: str
    created_ns: int
    ext: str | None
    target: Target | None = None
    template_id: int = 0

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Row:
        entry_id, parent_id, name, is_dir, creator, created_ns, ext, target_id, target_type, template_id = row
        target = None if target_id is None else Target(target_id, target_type)
        return cls(
            entry_id, parent_id or 0, name, bool(is_dir), creator, created_ns, ext, target, template_id
        )


# a copied document's row: (name, kept extension, created, the id of the document it copies when
# that has metadata to carry else None, the template's id)
DocumentRow = tuple[str, str | None, int, int | None, int]


def insert_documents(
    conn: sqlite3.Connection,
    folder_id: int,
    rows: Sequence[DocumentRow],
    creator: str,
    run: CopyRun | None = None,
) -> None:
    """Rows for documents just put into a folder (see DocumentRow), with the metadata of the
    documents they copy (`run`). A listing may have met one first and given it an id; that id
    stays, with these details."""
    try:
        # many rows to a statement: a copy of many small files writes a row for each
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            values: list[Any] = []
            for name, ext, created, _, template_id in chunk:
                values += (folder_id, name, name.casefold(), False, creator, created, ext, template_id)
            conn.execute(_insert_documents(len(chunk)), values)
    except sqlite3.IntegrityError:
        # the folder's own row went (deleted meanwhile): the files are there, the folder is not
        raise NotFound(f"Folder {folder_id} was deleted while documents were copied into it.") from None
    copies = {name: source for name, _, _, source, _ in rows if source is not None}
    if run is None or not copies:
        return  # (a tree without metadata costs nothing more)
    marks = ",".join("?" * len(copies))
    found = conn.execute(
        f"SELECT name, id FROM entries WHERE parent_id = ? AND name IN ({marks})", (folder_id, *copies)
    )
    # (their templates came with their rows)
    run.carry(conn, [(copies[name], copy_id) for name, copy_id in found], checked=True, template=False)


# rows one INSERT writes at most (8 values each: older sqlite builds bind at most 999)
_ROWS_PER_INSERT = 120


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _insert_documents(count: int) -> str:
    return (
        INSERT_DOCUMENT.partition(" VALUES ")[0]
        + " VALUES "
        + ",".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * count)
        + " ON CONFLICT (parent_id, name) DO UPDATE SET is_dir = 0, creator = excluded.creator,"
        " created_ns = excluded.created_ns, ext = excluded.ext, template_id = excluded.template_id"
    )


def forget_children(conn: sqlite3.Connection, folder_id: int, names: list[str]) -> None:
    marks = ", ".join("?" * len(names))
    conn.execute(f"DELETE FROM entries WHERE parent_id = ? AND name IN ({marks})", (folder_id, *names))


# what a listing can be ordered by; the key of each gives a total order together with name and id
ORDER_KEYS: dict[str, Callable[[Any], Any]] = {
    "name": lambda e: (e.name.casefold(), e.name),
    "id": lambda e: e.id,
    "created": lambda e: e.created_ns,
    "modified": lambda e: e.modified_ns,
    "type": lambda e: "Shortcut" if e.target else "Folder" if e.is_dir else "Document",
    "size": lambda e: e.size,
    "creator": lambda e: e.creator.casefold(),
    "extension": lambda e: (extension_of(e.name) if e.ext is None else e.ext).casefold(),
}


# fields only a stat of each entry can give: ordering by them stats the whole folder
STAT_FIELDS = frozenset({"modified", "size"})


def sort_entries(items: list[Any], order: Sequence[tuple[str, bool]]) -> None:
    """Stable sorts from the least significant term up; name then id settle every tie."""
    items.sort(key=ORDER_KEYS["id"])
    items.sort(key=ORDER_KEYS["name"])
    for field, descending in reversed(order):
        items.sort(key=ORDER_KEYS[field], reverse=descending)
