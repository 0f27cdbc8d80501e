"""The repository: a tree of folders (directories) and documents (files) under the storage root.

The filesystem is the truth for names and structure; the store adds what the disk does not hold.
An entry's id belongs to its place (parent id and name): it survives renames and moves made through
the API and restarts, and is never reused. What is put into the storage root by hand gets an id the
next time a listing or lookup meets it; what is removed by hand is forgotten the same way.

Every method here blocks; the API calls them through `asyncio.to_thread`. Metadata work runs under
the store's lock, so the disk and the store change together; copying bytes does not hold it. All disk
access goes through `fsops`, on directory descriptors walked without following symlinks.
"""

from __future__ import annotations

import functools
import mimetypes
import os
import pwd
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import orjson

from . import fsops
from .errors import BadRequest, Conflict, NotFound
from .store import ROOT_ID, STORE_DIR, Store, transaction

# a name is one path segment of at most this many bytes in UTF-8 (the common filesystem limit)
MAX_NAME_BYTES = 255
# folders whose rows are cached at most (the cache starts afresh past this)
ROWS_CACHE_FOLDERS = 1024
# folders nest at most this deep below the root: deep enough for any real tree, and a bound on
# what a hostile client can make every later walk descend through
MAX_DEPTH = 64
# a folder's scan is trusted only when it started this long after the folder last changed: a change
# within the same timestamp tick would otherwise go unseen ("racy" entries, as in git). Filesystems
# with nanosecond timestamps tick at most every few ms; ones with whole seconds (FAT, some network
# filesystems) every second or two.
RACY_FINE_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000
# autoRename tries `name (2)` … up to this, then gives up with 409
MAX_AUTO_RENAME = 10_000
# path separators, what Laserfiche itself refuses in a name (the Windows reserved characters), and
# the control characters (Unicode category Cc: C0, DEL and C1)
_BAD_CHAR = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an entry name, or None if it can."""
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return f"must not be {name!r}"
    if name.startswith(fsops.PART_PREFIX):
        return f"must not start with {fsops.PART_PREFIX!r} (the sandbox's partial files)"
    bad = _BAD_CHAR.search(name)
    if bad is not None:
        return f"must not contain {bad.group()!r}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8"
    if size > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes in UTF-8 (is {size})"
    return None


def check_segments(parts: list[str], what: str) -> list[str]:
    """The names of a path, each checked (400 naming `what` and the segment)."""
    for part in parts:
        problem = name_problem(part)
        if problem:
            raise BadRequest(f"The {what} has an invalid segment {part!r}: it {problem}.")
    return parts


def check_depth(depth: int, what: str) -> None:
    """Refuse (400) a folder that would be `depth` levels below the root, past MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise BadRequest(
            f"{what} would put a folder {depth} levels below the root; folders nest at most {MAX_DEPTH} deep."
        )


def _height(root_fd: int, parts: tuple[str, ...], enough: int) -> int:
    """How many levels of folders are below the folder at `parts` (counting stops past `enough`).
    Read from the disk alone (no lock held), depth first, holding one descriptor per level; folders
    that go away meanwhile are skipped."""
    height = 0
    try:
        # (leaving the loop early drops the walk, which closes its descriptors then and there)
        with fsops.folder(root_fd, parts) as fd:
            for path, folders, _, _ in os.fwalk(".", dir_fd=fd):
                folders[:] = [name for name in folders if name_problem(name) is None]
                if folders:
                    height = max(height, path.count("/") + 1)  # ("." is 0 deep, "./a" 1…)
                    if height > enough:
                        break
    except (fsops.Gone, FileNotFoundError, NotADirectoryError):
        pass  # (gone with its contents: nothing to measure)
    return height


def check_name(name: str, field: str = "name") -> str:
    problem = name_problem(name)
    if problem:
        raise BadRequest(f"The '{field}' {problem}.")
    return name


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

    @property
    def is_shortcut(self) -> bool:
        return self.target is not None

    @property
    def entry_type(self) -> str:
        """Laserfiche's name for what it is."""
        return "Shortcut" if self.target is not None else "Folder" if self.is_dir else "Document"

    @property
    def extension(self) -> str:
        return _extension(self.name) if self.ext is None else self.ext

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


# what the caches of stored rows are keyed by (see Repository._version)
Version = tuple[int, int]

# the stored columns of an entry, in _Row's order
ROW_COLUMNS = "id, parent_id, name, is_dir, creator, created_ns, ext, target_id, target_type"
INSERT_ENTRY = (
    "INSERT INTO entries (parent_id, name, name_key, is_dir, creator, created_ns, ext)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_SHORTCUT = (
    "INSERT INTO entries (parent_id, name, name_key, is_dir, creator, created_ns, ext, target_id,"
    " target_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# a shortcut's placeholder on disk: what it says to someone who opens it (the store holds the target)
SHORTCUT_TEXT = (
    "Laserfiche sandbox shortcut to entry {id} ({type}, '{path}' when it was made).\n"
    "The sandbox's store (.sandbox/) holds its target; this file only holds its name.\n"
)


@dataclass(frozen=True)
class _Row:
    id: int
    parent_id: int
    name: str
    is_dir: bool
    creator: str
    created_ns: int
    ext: str | None
    target: Target | None = None

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> _Row:
        entry_id, parent_id, name, is_dir, creator, created_ns, ext, target_id, target_type = row
        target = None if target_id is None else Target(target_id, target_type)
        return cls(entry_id, parent_id or 0, name, bool(is_dir), creator, created_ns, ext, target)


def extension_to_keep(name: str, upload_name: str | None) -> str | None:
    """The uploaded file's extension, kept for an entry whose name has none of its own
    (Laserfiche imports `Invoice 123` from `File.pdf` as a pdf document)."""
    ext = _extension(upload_name or "")
    if not ext or _extension(name) or name_problem(ext):
        return None
    return ext


def insert_documents(
    conn: sqlite3.Connection, folder_id: int, rows: list[tuple[str, str | None, int]], creator: str
) -> None:
    """Rows for documents just put into a folder: (name, kept extension, created). A listing may
    have met one first and given it an id; that id stays, with these details."""
    try:
        conn.executemany(
            INSERT_ENTRY + " ON CONFLICT (parent_id, name) DO UPDATE SET is_dir = 0,"
            " creator = excluded.creator, created_ns = excluded.created_ns, ext = excluded.ext",
            [(folder_id, name, name.casefold(), False, creator, created, ext) for name, ext, created in rows],
        )
    except sqlite3.IntegrityError:
        # the folder's own row went (deleted meanwhile): the files are there, the folder is not
        raise NotFound(f"Folder {folder_id} was deleted while documents were copied into it.") from None


def set_tags(conn: sqlite3.Connection, entry_id: int, tags: list[str]) -> None:
    """Set an entry's tags; nothing if the entry is gone meanwhile."""
    if tags:
        conn.execute(
            "INSERT OR REPLACE INTO entry_tags (entry_id, tags)"
            " SELECT ?, ? WHERE EXISTS (SELECT 1 FROM entries WHERE id = ?)",
            (entry_id, orjson.dumps(tags).decode(), entry_id),
        )
    else:
        conn.execute("DELETE FROM entry_tags WHERE entry_id = ?", (entry_id,))


def forget_children(conn: sqlite3.Connection, folder_id: int, names: list[str]) -> None:
    marks = ", ".join("?" * len(names))
    conn.execute(f"DELETE FROM entries WHERE parent_id = ? AND name IN ({marks})", (folder_id, *names))


def kept_extension(name: str, ext: str | None) -> str | None:
    """A kept extension survives a rename or copy only to a name without an extension of its own."""
    return None if _extension(name) else ext


@functools.lru_cache(maxsize=64)
def _owner(uid: int) -> str:
    """The creator of an entry put there by hand: the file's owner."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


# what a listing can be ordered by; the key of each gives a total order together with name and id
ORDER_KEYS: dict[str, Callable[[Any], Any]] = {
    "name": lambda e: (e.name.casefold(), e.name),
    "id": lambda e: e.id,
    "created": lambda e: e.created_ns,
    "modified": lambda e: e.modified_ns,
    "type": lambda e: "Shortcut" if e.target else "Folder" if e.is_dir else "Document",
    "size": lambda e: e.size,
    "creator": lambda e: e.creator.casefold(),
    "extension": lambda e: (_extension(e.name) if e.ext is None else e.ext).casefold(),
}
# fields only a stat of each entry can give: ordering by them stats the whole folder
STAT_FIELDS = frozenset({"modified", "size"})


def _sort(items: list[Any], order: Sequence[tuple[str, bool]]) -> None:
    """Stable sorts from the least significant term up; name then id settle every tie."""
    items.sort(key=ORDER_KEYS["id"])
    items.sort(key=ORDER_KEYS["name"])
    for field, descending in reversed(order):
        items.sort(key=ORDER_KEYS[field], reverse=descending)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a folder's states apart: which folder it is, and when its contents last changed."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _extension(name: str) -> str:
    head, dot, ext = name.rpartition(".")
    return ext if dot and head else ""


def candidates(name: str, is_dir: bool, auto_rename: bool) -> Iterator[str]:
    """`name`, then with autoRename `name (2)`, `name (3)`…; documents keep their extension last."""
    yield name
    if not auto_rename:
        return
    ext = "" if is_dir else _extension(name)
    stem, suffix = (name[: -len(ext) - 1], "." + ext) if ext else (name, "")
    for n in range(2, MAX_AUTO_RENAME):
        candidate = f"{stem} ({n}){suffix}"
        if name_problem(candidate) is None:
            yield candidate


class Repository:
    def __init__(self, store: Store) -> None:
        self.store = store
        # folder id -> ((dev, inode, mtime_ns, ctime_ns) seen, when that scan started): lets paging
        # skip rescanning a big folder; the inode catches a folder swapped for another by hand, the
        # ctime an mtime put back by rsync -a, cp -a or tar
        self._scanned: dict[int, tuple[tuple[int, int, int, int], int]] = {}
        # folder id -> its stat key right after the server's own last change to it (see _sync_children)
        self._own_change: dict[int, tuple[int, int, int, int]] = {}
        # bumped on every change this process makes to the entries table; with sqlite's
        # data_version (which moves when another connection, a copy worker's, commits) it keys
        # caches that cannot go stale
        self._generation = 0
        self._rows_cache: dict[int, tuple[Version, list[_Row]]] = {}
        self._sorted_cache: dict[
            tuple[int, tuple[tuple[str, bool], ...], bool], tuple[Version, list[_Row]]
        ] = {}

    # ---- reading -------------------------------------------------------------------------

    def entry(self, entry_id: int) -> Entry:
        with self.store.lock:
            return self._resolve(entry_id)

    def by_path(self, parts: list[str]) -> tuple[Entry | None, Entry]:
        """The entry at `parts` (names match case-insensitively, as in Laserfiche), or None with
        the closest ancestor that exists."""
        with self.store.lock:
            node = self._resolve(ROOT_ID)
            for name in parts:
                if not node.is_dir:
                    return None, node
                try:
                    with self._folder_fd(node) as fd:
                        child = self._child(node, fd, name)
                except fsops.Gone:
                    child = None
                if child is None:
                    return None, node
                node = child
            return node, node

    def children(
        self,
        folder_id: int,
        order: Sequence[tuple[str, bool]],
        start: int,
        stop: int,
        shortcuts: bool = True,
    ) -> tuple[int, list[Entry]]:
        """The children `start:stop` of a folder sorted by `order` ((field, descending) pairs from
        ORDER_KEYS; ties by name, then id), and how many children there are in all; without the
        shortcuts, unless `shortcuts`.

        Only the rows on the page are stat'ed unless the order needs what only the disk knows, so a
        page of a 10,000-entry folder costs little more than a page of a small one.
        """
        with self.store.lock:
            folder = self._folder(folder_id)
            with self._folder_fd(folder) as fd:
                self._sync_children(folder, fd, verify=True)
                rows = self._child_rows(folder.id)
                if not shortcuts:
                    rows = [row for row in rows if row.target is None]
                if any(field in STAT_FIELDS for field, _ in order):
                    entries = self._entries(folder, fd, rows)
                    _sort(entries, order)
                    return len(entries), entries[start:stop]
                ordered = self._sorted_rows(folder.id, rows, order, shortcuts)
                window = ordered[start:stop]
                page = self._entries(folder, fd, window)
                # rows found gone on this page were forgotten: the count follows
                return len(ordered) - (len(window) - len(page)), page

    def child_counts(self, folder_id: int) -> tuple[int, int, int]:
        """How many folders, documents and shortcuts a folder holds (immediate children only)."""
        with self.store.lock:
            folder = self._folder(folder_id)
            with self._folder_fd(folder) as fd:
                self._sync_children(folder, fd, verify=True)
                rows = self._child_rows(folder.id)
        shortcuts = sum(row.target is not None for row in rows)
        folders = sum(row.is_dir for row in rows)
        return folders, len(rows) - folders - shortcuts, shortcuts

    def folder_at(self, parent_id: int, names: list[str], create: bool, creator: str) -> Entry:
        """The folder at `names` below a folder, each name checked; the missing ones created if
        `create`, else 404 before anything is created. Folders that exist keep their ids."""
        check_segments(names, "folder path")
        with self.store.lock:
            node = self._folder(parent_id)
            check_depth(len(node.parts) + len(names), "The folder path")
            missing = None
            for index, name in enumerate(names):
                with self._folder_fd(node) as fd:
                    child = self._child(node, fd, name)
                if child is None:
                    missing = index
                    break
                if not child.is_dir:
                    where = "\\" + "\\".join(child.parts)
                    raise BadRequest(f"The folder path names '{where}', which is not a folder.")
                node = child
            if missing is None:
                return node
            if not create:
                where = "\\" + "\\".join((*node.parts, names[missing]))
                raise NotFound(
                    f"No folder at '{where}'; send autoCreateFolderPath=true to create the missing folders."
                )
            for name in names[missing:]:
                node = self.create_folder(node.id, name, False, creator)
            return node

    def open_document(self, entry_id: int) -> tuple[Entry, int]:
        """A document and a descriptor open on its bytes (the caller closes it). Read through a
        shortcut, it is the shortcut's target (404 if the target is gone)."""
        with self.store.lock:
            entry_id = self._through(entry_id)
            with self._document(entry_id, "has no electronic document") as (entry, parent_fd):
                fd = fsops.open_file(parent_fd, entry.name)
        return replace(entry, size=os.fstat(fd).st_size), fd

    def _through(self, entry_id: int) -> int:
        """The entry a shortcut leads to (through shortcuts to shortcuts), else `entry_id` itself."""
        seen = {entry_id}
        while (entry := self._resolve(entry_id)).target is not None:
            entry_id = entry.target.id
            if entry_id in seen:
                raise NotFound(f"Shortcut {entry.id} leads round in a circle to itself.")
            seen.add(entry_id)
            try:
                self._resolve(entry_id)
            except NotFound:
                raise NotFound(
                    f"The target of shortcut {entry.id}, entry {entry_id}, no longer exists."
                ) from None
        return entry_id

    # ---- temporary files (imports and copies are written here first) ----------------------

    def new_temp(self) -> tuple[str, int]:
        """A new, empty temporary file in the store: its name and a descriptor open for writing."""
        name = uuid.uuid4().hex
        return name, os.open(name, fsops.NEW_FILE_FLAGS, 0o644, dir_fd=self.store.tmp_fd)

    def discard_temp(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.store.tmp_fd)
        except FileNotFoundError:
            pass

    # ---- changing ------------------------------------------------------------------------

    def create_folder(self, parent_id: int, name: str, auto_rename: bool, creator: str) -> Entry:
        return self._create(parent_id, name, True, auto_rename, creator, _mkdir)

    def create_shortcut(
        self, parent_id: int, name: str, target_id: int, auto_rename: bool, creator: str
    ) -> Entry:
        """A shortcut to an entry: a row with its target, and a placeholder file that holds its name."""
        with self.store.lock:
            try:
                target = self._resolve(target_id)
            except NotFound:
                raise NotFound(f"The shortcut's target, entry {target_id}, does not exist.") from None
        return self.make_shortcut(parent_id, name, Target(target.id, target.entry_type), auto_rename, creator)

    def make_shortcut(
        self, parent_id: int, name: str, target: Target, auto_rename: bool, creator: str
    ) -> Entry:
        """A shortcut to `target`, whether it still exists or not (a copied shortcut points where
        its original pointed)."""
        text = SHORTCUT_TEXT.format(id=target.id, type=target.type, path=self._path_of(target.id))
        tmp, fd = self.new_temp()
        try:
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
            publish = functools.partial(fsops.publish, self.store.tmp_fd, tmp)
            return self._create(parent_id, name, False, auto_rename, creator, publish, target=target)
        finally:
            self.discard_temp(tmp)

    def _path_of(self, entry_id: int) -> str:
        with self.store.lock:
            chain = self._chain(entry_id)
        return "\\" + "\\".join(row.name for row in chain[1:]) if chain else "(gone)"

    def import_document(
        self,
        parent_id: int,
        name: str,
        tmp: str,
        auto_rename: bool,
        creator: str,
        ext: str | None = None,
    ) -> Entry:
        """Publish a fully written temporary file (from `new_temp`) as a document in a folder."""
        publish = functools.partial(fsops.publish, self.store.tmp_fd, tmp)
        return self._create(parent_id, name, False, auto_rename, creator, publish, ext)

    def replace_document(self, entry_id: int, tmp: str) -> Entry:
        """Give a document the bytes of a fully written temporary file (from `new_temp`), in one
        step: readers see the old bytes or the new, and the entry keeps its id."""
        with self.store.lock:
            with self._document(entry_id, "has no bytes to replace") as (entry, fd):
                fsops.replace(self.store.tmp_fd, tmp, fd, entry.name)
            return self._resolve(entry_id)

    # ---- tags (kept for the Elements dialect; a Laserfiche entry has none) --------------------

    def tags_of(self, entry_ids: list[int]) -> dict[int, list[str]]:
        if not entry_ids:
            return {}
        with self.store.lock:
            marks = ",".join("?" * len(entry_ids))
            rows = self.store.conn.execute(
                f"SELECT entry_id, tags FROM entry_tags WHERE entry_id IN ({marks})", entry_ids
            ).fetchall()
        return {entry_id: orjson.loads(tags) for entry_id, tags in rows}

    def set_tags(self, entry_id: int, tags: list[str]) -> None:
        with self.store.lock:
            set_tags(self.store.conn, entry_id, tags)

    def move(self, entry_id: int, parent_id: int | None, name: str | None, auto_rename: bool) -> Entry:
        if name is not None:
            check_name(name)
        if parent_id is not None:
            self._check_move_depth(entry_id, parent_id)
        with self.store.lock:
            node = self._resolve(entry_id)
            if node.id == ROOT_ID:
                raise BadRequest("The root folder cannot be moved or renamed.")
            parent = self._folder(node.parent_id if parent_id is None else parent_id)
            new_name = node.name if name is None else name
            if node.is_dir and parent.parts[: len(node.parts)] == node.parts:
                raise BadRequest(f"Entry {node.id} cannot be moved into itself or one of its subfolders.")
            if parent.id == node.parent_id and new_name == node.name:
                return node
            ext = kept_extension(new_name, node.ext)
            with (
                fsops.folder(self.store.root_fd, node.parts[:-1]) as src_fd,
                self._folder_fd(parent) as dst_fd,
            ):
                allowed = self._allowed(parent, dst_fd, new_name, node.is_dir, auto_rename, node.id)
                for candidate in allowed:
                    try:
                        fsops.rename_noreplace(src_fd, node.name, dst_fd, candidate)
                    except FileExistsError:
                        continue
                    # a row left for something removed by hand must not block the name's new owner
                    forget_children(self.store.conn, parent.id, [candidate])
                    self.store.conn.execute(
                        "UPDATE entries SET parent_id = ?, name = ?, name_key = ?, ext = ? WHERE id = ?",
                        (parent.id, candidate, candidate.casefold(), ext, node.id),
                    )
                    self._changed()
                    return self._resolve(node.id)
            raise self._conflict(parent, new_name)

    # ---- checks made before a long operation is accepted ------------------------------

    def check_copy(self, source_id: int, parent_id: int, name: str, auto_rename: bool) -> tuple[Entry, Entry]:
        """The source and destination folder of a copy, or the error it would end in at once: a
        missing entry (404), a copy into itself (400), a taken name without autoRename (409)."""
        check_name(name)
        with self.store.lock:
            source = self._resolve(source_id)
            parent = self._folder(parent_id)
            if source.id == ROOT_ID or (source.is_dir and parent.parts[: len(source.parts)] == source.parts):
                raise BadRequest(f"Entry {source.id} cannot be copied into itself or one of its subfolders.")
            if not auto_rename:
                with self._folder_fd(parent) as fd:
                    allowed = self._allowed(parent, fd, name, source.is_dir, False)
                    if not any(fsops.lstat_at(fd, c) is None for c in allowed):
                        raise self._conflict(parent, name)
        if source.is_dir:  # (and the copy's scan checks again, as folders may appear meanwhile)
            height = _height(self.store.root_fd, source.parts, MAX_DEPTH - len(parent.parts))
            check_depth(len(parent.parts) + 1 + height, "The copy")
        return source, parent

    def _check_move_depth(self, entry_id: int, parent_id: int) -> None:
        """Refuse a move that would put folders past MAX_DEPTH. Only a move deeper than where the
        folder is now needs its subtree measured, and that is done without the store's lock."""
        with self.store.lock:
            node = self._resolve(entry_id)
            parent = self._folder(parent_id)
        if node.is_dir and len(parent.parts) + 1 > len(node.parts):
            height = _height(self.store.root_fd, node.parts, MAX_DEPTH - len(parent.parts))
            check_depth(len(parent.parts) + 1 + height, "The move")

    def check_delete(self, entry_id: int) -> Entry | None:
        """Refuse at once what a delete can never do: the root (400), an id never issued (404).
        An id that was issued but is gone now is left for the operation to report (None)."""
        if entry_id == ROOT_ID:
            raise BadRequest("The root folder cannot be deleted.")
        with self.store.lock:
            try:
                return self._resolve(entry_id)
            except NotFound:
                row = self.store.conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'entries'"
                ).fetchone()
                if row is None or not ROOT_ID < entry_id <= row[0]:
                    raise
                return None

    # ---- bookkeeping for the copy and delete walkers ---------------------------------

    def child_rows(self, folder_id: int | None) -> dict[str, Known]:
        """What the store knows of a folder's children that a walker must know of: subfolders
        (their ids), documents that keep an extension, shortcuts (their targets)."""
        if folder_id is None:
            return {}
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT name, id, ext, target_id, target_type FROM entries"
                " WHERE parent_id = ? AND (is_dir OR ext IS NOT NULL OR target_id IS NOT NULL)",
                (folder_id,),
            ).fetchall()
        return {
            name: Known(entry_id, ext, None if target_id is None else Target(target_id, target_type))
            for name, entry_id, ext, target_id, target_type in rows
        }

    def record_documents(self, folder_id: int, rows: list[tuple[str, str | None, int]], creator: str) -> None:
        """Give ids to documents a walker just put into a folder (see insert_documents)."""
        if not rows:
            return
        with self.store.transaction() as conn:
            insert_documents(conn, folder_id, rows, creator)
            self._changed()

    def forget_names(self, folder_id: int | None, names: list[str]) -> None:
        """Drop the ids of children a walker removed from a folder (their subtrees go with them)."""
        if folder_id is None or not names:
            return
        with self.store.lock:
            forget_children(self.store.conn, folder_id, names)
            self._changed()

    # ---- internals (all under the lock) --------------------------------------------------

    def _create(
        self,
        parent_id: int,
        name: str,
        is_dir: bool,
        auto_rename: bool,
        creator: str,
        make: Callable[[int, str], None],
        ext: str | None = None,
        target: Target | None = None,
    ) -> Entry:
        """A new entry in a folder: `make(folder_fd, name)` under the first name allowed that it
        finds free (FileExistsError: taken meanwhile, try the next)."""
        check_name(name)
        with self.store.lock:
            parent = self._folder(parent_id)
            if is_dir:
                check_depth(len(parent.parts) + 1, "The new folder")
            with self._folder_fd(parent) as fd:
                for candidate in self._allowed(parent, fd, name, is_dir, auto_rename):
                    try:
                        make(fd, candidate)
                    except FileExistsError:
                        continue
                    self._note_own_change(parent, fd)
                    return self._add(parent, fd, candidate, is_dir, creator, ext, target)
            raise self._conflict(parent, name)

    @contextmanager
    def _document(self, entry_id: int, refusal: str) -> Iterator[tuple[Entry, int]]:
        """A document and its folder's descriptor; a folder is refused (400, "is a folder and
        `refusal`"), one gone from the disk is forgotten (404)."""
        entry = self._resolve(entry_id)
        if entry.is_dir or entry.is_shortcut:
            raise BadRequest(f"Entry {entry_id} is a {entry.entry_type.lower()} and {refusal}.")
        try:
            with fsops.folder(self.store.root_fd, entry.parts[:-1]) as fd:
                yield entry, fd
        except (fsops.Gone, FileNotFoundError):
            self._forget(entry.id)
            raise NotFound(f"Entry {entry_id} not found.") from None

    def _chain(self, entry_id: int) -> list[_Row]:
        """The rows from the root down to `entry_id` (empty if the id is unknown)."""
        rows = self.store.conn.execute(
            f"""
            WITH RECURSIVE chain({ROW_COLUMNS}, depth) AS (
                SELECT {ROW_COLUMNS}, 0 FROM entries WHERE id = ?
                UNION ALL
                SELECT e.id, e.parent_id, e.name, e.is_dir, e.creator, e.created_ns, e.ext, e.target_id,
                    e.target_type, c.depth + 1
                FROM entries e JOIN chain c ON e.id = c.parent_id
            )
            SELECT {ROW_COLUMNS} FROM chain ORDER BY depth DESC
            """,
            (entry_id,),
        ).fetchall()
        return [_Row.of(row) for row in rows]

    def _resolve(self, entry_id: int) -> Entry:
        chain = self._chain(entry_id)
        if not chain:
            raise NotFound(f"Entry {entry_id} not found.")
        parts = tuple(row.name for row in chain[1:])
        row = chain[-1]
        if row.id == ROOT_ID:
            st = os.fstat(self.store.root_fd)
            return self._entry(row, (), st)
        try:
            with fsops.folder(self.store.root_fd, parts[:-1]) as fd:
                entry = self._entry_at(row, parts[:-1], fd)
        except fsops.Gone as gone:
            # the first folder on the way that is no longer there takes its subtree with it
            self._forget(chain[gone.depth + 1].id)
            entry = None
        if entry is None:
            raise NotFound(f"Entry {entry_id} not found.")
        return entry

    def _entry_at(self, row: _Row, folder_parts: tuple[str, ...], folder_fd: int) -> Entry | None:
        """The entry for a stored row in an open folder, or None (and the row forgotten) if the
        disk no longer has it as the same kind of thing."""
        st = fsops.lstat_at(folder_fd, row.name)
        if st is None or fsops.kind(st) is not row.is_dir:
            self._forget(row.id)
            return None
        return self._entry(row, (*folder_parts, row.name), st)

    def _entries(self, folder: Entry, fd: int, rows: list[_Row]) -> list[Entry]:
        """The entries for stored rows of an open folder that the disk still has."""
        return [e for r in rows if (e := self._entry_at(r, folder.parts, fd))]

    @staticmethod
    def _entry(row: _Row, parts: tuple[str, ...], st: os.stat_result) -> Entry:
        return Entry(
            id=row.id,
            parent_id=row.parent_id,
            name=row.name,
            parts=parts,
            is_dir=row.is_dir,
            creator=row.creator,
            created_ns=row.created_ns,
            modified_ns=st.st_mtime_ns,
            size=0 if row.is_dir or row.target else st.st_size,
            ext=row.ext,
            target=row.target,
        )

    @contextmanager
    def _folder_fd(self, folder: Entry) -> Iterator[int]:
        """An open descriptor on a folder just resolved; NotFound if it went in between."""
        try:
            fd = fsops.open_dir(self.store.root_fd, folder.parts)
        except fsops.Gone:
            self._forget(folder.id)
            raise NotFound(f"Entry {folder.id} not found.") from None
        try:
            yield fd
        finally:
            os.close(fd)

    def _folder(self, folder_id: int) -> Entry:
        entry = self._resolve(folder_id)
        if not entry.is_dir:
            raise BadRequest(f"Entry {folder_id} is not a folder.")
        return entry

    def _changed(self) -> None:
        self._generation += 1

    def _version(self) -> Version:
        """What the entries table's caches are keyed by: changes made here, and elsewhere."""
        return self._generation, self.store.conn.execute("PRAGMA data_version").fetchone()[0]

    def _child_rows(self, folder_id: int) -> list[_Row]:
        version = self._version()
        cached = self._rows_cache.get(folder_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        if len(self._rows_cache) > ROWS_CACHE_FOLDERS:
            self._rows_cache.clear()  # (a listing costs one query to cache again)
        rows = [
            _Row.of(row)
            for row in self.store.conn.execute(
                f"SELECT {ROW_COLUMNS} FROM entries WHERE parent_id = ?", (folder_id,)
            )
        ]
        self._rows_cache[folder_id] = (version, rows)
        return rows

    def _sorted_rows(
        self, folder_id: int, rows: list[_Row], order: Sequence[tuple[str, bool]], shortcuts: bool
    ) -> list[_Row]:
        key = (folder_id, tuple(order), shortcuts)
        version = self._version()
        cached = self._sorted_cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        ordered = list(rows)
        _sort(ordered, order)
        if len(self._sorted_cache) > 64:
            self._sorted_cache.clear()
        self._sorted_cache[key] = (version, ordered)
        return ordered

    def _forget(self, entry_id: int) -> None:
        if entry_id != ROOT_ID:
            self.store.conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            self._changed()

    def _add(
        self,
        parent: Entry,
        fd: int,
        name: str,
        is_dir: bool,
        creator: str,
        ext: str | None = None,
        target: Target | None = None,
    ) -> Entry:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        created_ns = min(st.st_mtime_ns, st.st_ctime_ns)
        forget_children(self.store.conn, parent.id, [name])  # (see `move`)
        cursor = self.store.conn.execute(
            INSERT_SHORTCUT if target else INSERT_ENTRY,
            (parent.id, name, name.casefold(), is_dir, creator, created_ns, ext)
            + ((target.id, target.type) if target else ()),
        )
        assert cursor.lastrowid is not None
        self._changed()
        row = _Row(cursor.lastrowid, parent.id, name, is_dir, creator, created_ns, ext, target)
        return self._entry(row, (*parent.parts, name), st)

    def _allowed(
        self,
        parent: Entry,
        fd: int,
        name: str,
        is_dir: bool,
        auto_rename: bool,
        moving: int = 0,
    ) -> Iterator[str]:
        """The names to try, in order; a name taken by a sibling that differs only in case is
        skipped (Laserfiche names are case-insensitive), as is the store's folder at the root."""
        # a twin put there by hand and never listed must count too
        self._sync_children(parent, fd)
        for candidate in candidates(name, is_dir, auto_rename):
            if parent.id == ROOT_ID and candidate.casefold() == STORE_DIR:
                if not auto_rename:
                    raise BadRequest(f"The name '{STORE_DIR}' is reserved at the root.")
                continue
            if self._case_twin(parent, fd, candidate, moving):
                continue
            yield candidate

    def _case_twin(self, parent: Entry, fd: int, name: str, moving: int) -> bool:
        """Whether a sibling other than `moving` has `name` in another case (stale rows go)."""
        rows = self.store.conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries"
            " WHERE parent_id = ? AND name_key = ? AND name != ? AND id != ?",
            (parent.id, name.casefold(), name, moving),
        ).fetchall()
        return any(self._entry_at(_Row.of(row), parent.parts, fd) for row in rows)

    def _conflict(self, parent: Entry, name: str) -> Conflict:
        where = "\\" + "\\".join(parent.parts)
        return Conflict(f"An entry named '{name}' already exists in '{where}'.")

    def _sync_children(self, folder: Entry, fd: int, verify: bool = False) -> None:
        """Make the store's children of `folder` match the disk: new names get ids, gone ones go.

        Skipped when the folder is as the last trusted scan saw it; also, unless `verify` (what
        listings ask), when it changed only by the server's own last change to it, so that a
        client creating thousands of entries in a big folder does not rescan it every time.
        """
        st = os.fstat(fd)
        seen_as = _stat_key(st)
        seen = self._scanned.get(folder.id)
        changed_ns = max(st.st_mtime_ns, st.st_ctime_ns)
        racy_ns = RACY_COARSE_NS if changed_ns % 1_000_000_000 == 0 else RACY_FINE_NS
        if seen is not None and seen[0] == seen_as and seen[1] - changed_ns > racy_ns:
            return
        if not verify and self._own_change.get(folder.id) == seen_as:
            return
        self._own_change.pop(folder.id, None)
        started = time.time_ns()
        skip = STORE_DIR if folder.id == ROOT_ID else None
        on_disk = {n: d for n, d in fsops.scan(fd, skip).items() if name_problem(n) is None}
        conn = self.store.conn
        known = set()
        # the rows are read once the write lock is held: a copy worker that put files into this
        # folder meanwhile and recorded them has committed, or waits for this to commit
        with self.store.lock, transaction(conn, "BEGIN IMMEDIATE"):
            rows = conn.execute("SELECT id, name, is_dir FROM entries WHERE parent_id = ?", (folder.id,))
            for entry_id, name, is_dir in rows.fetchall():
                if on_disk.get(name) is bool(is_dir):
                    known.add(name)
                else:
                    self._forget(entry_id)
            new = []
            for name, is_dir in on_disk.items():
                if name not in known and (found := fsops.lstat_at(fd, name)) is not None:
                    created = min(found.st_mtime_ns, found.st_ctime_ns)
                    new.append(
                        (folder.id, name, name.casefold(), is_dir, _owner(found.st_uid), created, None)
                    )
            conn.executemany(INSERT_ENTRY, new)
            if new:
                self._changed()
        self._scanned[folder.id] = (seen_as, started)

    def _note_own_change(self, folder: Entry, fd: int) -> None:
        """Record the folder as the server's own change just left it. Called only right after a
        change made while holding the lock since `_allowed` synced the folder, so the store knew
        everything in it: the store still does, plus what `_add` records next."""
        self._own_change[folder.id] = _stat_key(os.fstat(fd))

    def _child(self, parent: Entry, fd: int, name: str) -> Entry | None:
        """The child called `name` (else one whose name differs only in case), discovering it if
        it was put there by hand."""
        if name_problem(name) or (parent.id == ROOT_ID and name.casefold() == STORE_DIR):
            return None
        conn = self.store.conn
        row = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries WHERE parent_id = ? AND name = ?", (parent.id, name)
        ).fetchone()
        if row is not None and (entry := self._entry_at(_Row.of(row), parent.parts, fd)):
            return entry
        st = fsops.lstat_at(fd, name)
        if st is not None and (kind := fsops.kind(st)) is not None:
            return self._add(parent, fd, name, kind, _owner(st.st_uid))
        self._sync_children(parent, fd)  # a case twin put there by hand gets its id first
        rows = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries WHERE parent_id = ? AND name_key = ? ORDER BY id",
            (parent.id, name.casefold()),
        ).fetchall()
        for row in rows:
            if entry := self._entry_at(_Row.of(row), parent.parts, fd):
                return entry
        return None


def _mkdir(folder_fd: int, name: str) -> None:
    os.mkdir(name, dir_fd=folder_fd)
