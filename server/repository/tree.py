"""The tree as the disk and the store agree on it.

The filesystem is the truth for names and structure; the store adds what the disk does not hold.
An entry's id belongs to its place (parent id and name): it survives renames and moves made through
the API and restarts, and is never reused. What is put into the storage root by hand gets an id the
next time a listing or lookup meets it; what is removed by hand is forgotten the same way.
"""

from __future__ import annotations

import functools
import os
import pwd
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from stat import S_IFDIR, S_IFREG
from typing import Any

from .. import fsops
from ..errors import BadRequest, Conflict, NotFound
from ..metadata.carry import HAS_METADATA, Then
from ..store import HIDDEN_AT_ROOT, ROOT_ID, Store, atomic, transaction
from .entries import (
    INSERT_ENTRY,
    INSERT_SHORTCUT,
    ROW_COLUMNS,
    STAT_FIELDS,
    Entry,
    Known,
    Row,
    Target,
    Version,
    forget_children,
    sort_entries,
)
from .names import candidates, name_problem

# folders whose rows are cached at most (the cache starts afresh past this)
ROWS_CACHE_FOLDERS = 1024
# entries listings made that are kept to be handed out again at most (see Tree._entries)
ENTRIES_KEPT = 20_000
# the bits of st_mode that say what a file is (what stat.S_IFMT keeps)
_FILE_TYPE = 0o170000
# a folder's scan is trusted only when it started this long after the folder last changed: a change
# within the same timestamp tick would otherwise go unseen ("racy" entries, as in git). Filesystems
# with nanosecond timestamps tick at most every few ms; ones with whole seconds (FAT, some network
# filesystems) every second or two.
RACY_FINE_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000


@functools.lru_cache(maxsize=64)
def _owner(uid: int) -> str:
    """The creator of an entry put there by hand: the file's owner."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a folder's states apart: which folder it is, and when its contents last changed."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


class Tree:
    """The tree as the disk and the store agree on it: entries by id and by path, folders listed,
    and what was put there or removed by hand discovered or forgotten as it is met. Everything runs
    under the store's lock."""

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
        # folder id -> (the version they were read at, its rows, the same rows as the store gave
        # them): a change elsewhere in the store makes them stale, but rows read again that are
        # the same are handed out as the same objects, so that what is cached by row (entries,
        # their JSON, a sorted order) is found again
        self._rows_cache: dict[int, tuple[Version, list[Row], list[tuple[Any, ...]]]] = {}
        # row id -> the entry a listing last made for it: (the row, the entry, its folder's parts)
        # (see _entries)
        self._made: dict[int, tuple[Row, Entry, tuple[str, ...]]] = {}
        # (folder id, order, shortcuts) -> (the rows sorted, that order of them)
        self._sorted_cache: dict[
            tuple[int, tuple[tuple[str, bool], ...], bool], tuple[list[Row], list[Row]]
        ] = {}

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
                if any(field in STAT_FIELDS for field, _ in order):
                    entries = self._entries(folder, fd, _shown_rows(rows, shortcuts))
                    sort_entries(entries, order)
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

    def count_below(self, top: tuple[str, ...] = ()) -> int:
        """How many entries are below the folder at `top` (what a walk over it goes through), read
        from the disk alone, without the store's lock; folders that go away meanwhile are skipped."""
        count = 0
        pending: list[tuple[str, ...]] = [top]
        while pending:
            parts = pending.pop()
            try:
                fd = fsops.open_dir(self.store.root_fd, parts)
            except fsops.Gone:
                continue
            try:
                for name, is_dir in fsops.scan(fd, HIDDEN_AT_ROOT if not parts else frozenset()).items():
                    if name_problem(name) is None:
                        count += 1
                        if is_dir:
                            pending.append((*parts, name))
            finally:
                os.close(fd)
        return count

    def child_rows(self, folder_id: int | None, metadata: bool = False) -> dict[str, Known]:
        """What the store knows of a folder's children that a walker must know of: their ids,
        kept extensions, shortcuts' targets, and (`metadata`: what a copy asks) whether they have
        metadata to carry and their templates. A document with none of these is left out (a walker
        treats it as one the store never met, to the same effect): a walk over many documents
        reads only the rows that tell it something."""
        if folder_id is None:
            return {}
        carried = f"{HAS_METADATA}, template_id" if metadata else "0, 0"
        telling = "e.is_dir OR e.ext IS NOT NULL OR e.target_id IS NOT NULL"
        if metadata:
            telling += f" OR {HAS_METADATA}"
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT name, id, ext, target_id, target_type, {carried} FROM entries e"
                f" WHERE parent_id = ? AND ({telling})",
                (folder_id,),
            ).fetchall()
        known = {}
        for name, entry_id, ext, target_id, target_type, carried, template_id in rows:
            target = None if target_id is None else Target(target_id, target_type)
            known[name] = Known(entry_id, ext, target, bool(carried), template_id)
        return known

    def _chain(self, entry_id: int) -> list[Row]:
        """The rows from the root down to `entry_id` (empty if the id is unknown)."""
        rows = self.store.conn.execute(
            f"""
            WITH RECURSIVE chain({ROW_COLUMNS}, depth) AS (
                SELECT {ROW_COLUMNS}, 0 FROM entries WHERE id = ?
                UNION ALL
                SELECT e.id, e.parent_id, e.name, e.is_dir, e.creator, e.created_ns, e.ext, e.target_id,
                    e.target_type, e.template_id, c.depth + 1
                FROM entries e JOIN chain c ON e.id = c.parent_id
            )
            SELECT {ROW_COLUMNS} FROM chain ORDER BY depth DESC
            """,
            (entry_id,),
        ).fetchall()
        return [Row.of(row) for row in rows]

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

    def _entry_at(self, row: Row, folder_parts: tuple[str, ...], folder_fd: int) -> Entry | None:
        """The entry for a stored row in an open folder, or None (and the row forgotten) if the
        disk no longer has it as the same kind of thing."""
        st = fsops.lstat_at(folder_fd, row.name)
        if st is None or fsops.kind(st) is not row.is_dir:
            self._forget(row.id)
            return None
        return self._entry(row, (*folder_parts, row.name), st)

    def _entries(self, folder: Entry, fd: int, rows: list[Row]) -> list[Entry]:
        """The entries for stored rows of an open folder that the disk still has. An entry made
        for the same row (the cached row itself: see _child_rows) in the same place, with the same
        modified time and size, is handed out again rather than made anew, so that a listing of
        a big folder costs little more than a stat per entry (and its JSON, kept by entry, is
        found again: laserfiche_common.EntryPages)."""
        made = self._made
        if len(made) > ENTRIES_KEPT:
            made.clear()
        parts = folder.parts
        entries = []
        for row in rows:
            # (fsops.lstat_at and fsops.kind, inline: this runs for every entry listed)
            try:
                st = os.stat(row.name, dir_fd=fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                st = None
            if st is None or st.st_mode & _FILE_TYPE != (S_IFDIR if row.is_dir else S_IFREG):
                self._forget(row.id)
                continue
            kept = made.get(row.id)
            if kept is not None and kept[0] is row:
                entry = kept[1]
                size = 0 if row.is_dir or row.target else st.st_size
                if entry.modified_ns == st.st_mtime_ns and entry.size == size and kept[2] == parts:
                    entries.append(entry)
                    continue
            entry = self._entry(row, (*parts, row.name), st)
            made[row.id] = (row, entry, parts)
            entries.append(entry)
        return entries

    @staticmethod
    def _entry(row: Row, parts: tuple[str, ...], st: os.stat_result) -> Entry:
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
            template_id=row.template_id,
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

    def changed(self) -> None:
        """Rows were changed elsewhere on the store's connection (metadata): caches are stale."""
        self._changed()

    def parts_of(self, entry_id: int) -> tuple[str, ...] | None:
        """An entry's names from the root, as the store knows them (no disk access); None if it
        has no row. Under the store's lock."""
        chain = self._chain(entry_id)
        return tuple(row.name for row in chain[1:]) if chain else None

    def _version(self) -> Version:
        """What the entries table's caches are keyed by: changes made here, and elsewhere."""
        return self._generation, self.store.conn.execute("PRAGMA data_version").fetchone()[0]

    def _child_rows(self, folder_id: int) -> list[Row]:
        version = self._version()
        cached = self._rows_cache.get(folder_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        if len(self._rows_cache) > ROWS_CACHE_FOLDERS:
            self._rows_cache.clear()  # (a listing costs one query to cache again)
            cached = None
        raw = self.store.conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries WHERE parent_id = ?", (folder_id,)
        ).fetchall()
        if cached is not None and cached[2] == raw:
            rows = cached[1]  # (changed elsewhere in the store, not here)
        elif cached is not None:
            before = {row.id: (old, row) for old, row in zip(cached[2], cached[1], strict=True)}
            rows = []
            for values in raw:
                kept = before.get(values[0])
                rows.append(kept[1] if kept is not None and kept[0] == values else Row.of(values))
        else:
            rows = [Row.of(values) for values in raw]
        self._rows_cache[folder_id] = (version, rows, raw)
        return rows

    def _sorted_rows(
        self, folder_id: int, rows: list[Row], order: Sequence[tuple[str, bool]], shortcuts: bool
    ) -> list[Row]:
        """`rows` (a folder's, from _child_rows, which hands out the same list while they stay
        the same) sorted by `order`, without the shortcuts unless `shortcuts`."""
        key = (folder_id, tuple(order), shortcuts)
        cached = self._sorted_cache.get(key)
        if cached is not None and cached[0] is rows:
            return cached[1]
        ordered = _shown_rows(rows, shortcuts)
        sort_entries(ordered, order)
        if len(self._sorted_cache) > 64:
            self._sorted_cache.clear()
        self._sorted_cache[key] = (rows, ordered)
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
        then: Then | None = None,
    ) -> Entry:
        """The row of an entry just made on the disk; `then` writes what goes with it (a copy's
        metadata) in the same transaction."""
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        created_ns = min(st.st_mtime_ns, st.st_ctime_ns)
        with atomic(self.store.conn) as conn:
            forget_children(conn, parent.id, [name])  # (see `move`)
            cursor = conn.execute(
                INSERT_SHORTCUT if target else INSERT_ENTRY,
                (parent.id, name, name.casefold(), is_dir, creator, created_ns, ext)
                + ((target.id, target.type) if target else ()),
            )
            entry_id = cursor.lastrowid
            assert entry_id is not None
            template_id = 0
            if then is not None:
                then(conn, entry_id)
                template_id = conn.execute(
                    "SELECT template_id FROM entries WHERE id = ?", (entry_id,)
                ).fetchone()[0]
        self._changed()
        row = Row(entry_id, parent.id, name, is_dir, creator, created_ns, ext, target, template_id)
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
            if parent.id == ROOT_ID and candidate.casefold() in HIDDEN_AT_ROOT:
                if not auto_rename:
                    raise BadRequest(f"The name '{candidate}' is reserved at the root.")
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
        return any(self._entry_at(Row.of(row), parent.parts, fd) for row in rows)

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
        skip = HIDDEN_AT_ROOT if folder.id == ROOT_ID else frozenset()
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
            # in name order, not the folder's: on some filesystems (tmpfs) a listing lists the
            # newest first, and a reset that links files back must not change the ids they get
            new.sort(key=lambda row: row[1])
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
        if name_problem(name) or (parent.id == ROOT_ID and name.casefold() in HIDDEN_AT_ROOT):
            return None
        conn = self.store.conn
        row = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries WHERE parent_id = ? AND name = ?", (parent.id, name)
        ).fetchone()
        if row is not None and (entry := self._entry_at(Row.of(row), parent.parts, fd)):
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
            if entry := self._entry_at(Row.of(row), parent.parts, fd):
                return entry
        return None


def _shown_rows(rows: list[Row], shortcuts: bool) -> list[Row]:
    """A copy of `rows`, without the shortcuts unless `shortcuts`."""
    return list(rows) if shortcuts else [row for row in rows if row.target is None]
