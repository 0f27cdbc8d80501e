"""The repository: a tree of folders (directories) and documents (files) under the storage root.

The filesystem is the truth for names and structure; the store adds what the disk does not hold.
An entry's id belongs to its place (parent id and name): it survives renames and moves made through
the API and restarts, and is never reused. What is put into the storage root by hand gets an id the
next time a listing or lookup meets it; what is removed by hand is forgotten the same way.

Every method here blocks; the API calls them through `asyncio.to_thread`. Metadata work runs under
the store's lock, so the disk and the store change together; copying bytes does not hold it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import mimetypes
import os
import pwd
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, Conflict, NotFound
from .store import ROOT_ID, STORE_DIR, Store

# a name is one path segment of at most this many bytes in UTF-8 (the common filesystem limit)
MAX_NAME_BYTES = 255
# a directory listing cached by its mtime is trusted only when the scan started this long after that
# mtime: a change within the same timestamp tick would otherwise go unseen ("racy" entries, as in git)
RACY_NS = 1_000_000_000
# autoRename tries `name (2)` … up to this, then gives up with 409
MAX_AUTO_RENAME = 10_000
_FORBIDDEN = {"/", "\\", "\x7f"}


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an entry name, or None if it can."""
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return f"must not be {name!r}"
    for ch in name:
        if ch in _FORBIDDEN or ord(ch) < 0x20:
            return f"must not contain {ch!r}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8"
    if size > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes in UTF-8 (is {size})"
    return None


def check_name(name: str, field: str = "name") -> str:
    problem = name_problem(name)
    if problem:
        raise BadRequest(f"The '{field}' {problem}.")
    return name


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

    @property
    def extension(self) -> str:
        return _extension(self.name) if self.ext is None else self.ext

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


# the stored columns of an entry, in _Row's order
ROW_COLUMNS = "id, parent_id, name, is_dir, creator, created_ns, ext"


@dataclass(frozen=True)
class _Row:
    id: int
    parent_id: int
    name: str
    is_dir: bool
    creator: str
    created_ns: int
    ext: str | None

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> _Row:
        entry_id, parent_id, name, is_dir, creator, created_ns, ext = row
        return cls(entry_id, parent_id or 0, name, bool(is_dir), creator, created_ns, ext)


def extension_to_keep(name: str, upload_name: str | None) -> str | None:
    """The uploaded file's extension, kept for an entry whose name has none of its own
    (Laserfiche imports `Invoice 123` from `File.pdf` as a pdf document)."""
    ext = _extension(upload_name or "")
    if not ext or _extension(name) or name_problem(ext):
        return None
    return ext


def _kind(st: os.stat_result) -> bool | None:
    """True for a directory, False for a regular file, None for anything we never show."""
    if stat.S_ISDIR(st.st_mode):
        return True
    if stat.S_ISREG(st.st_mode):
        return False
    return None


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
    "type": lambda e: "Folder" if e.is_dir else "Document",
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


def _extension(name: str) -> str:
    head, dot, ext = name.rpartition(".")
    return ext if dot and head else ""


def candidates(name: str, is_dir: bool, auto_rename: bool) -> Iterator[str]:
    """`name`, then with autoRename `name (2)`, `name (3)`…; documents keep their extension last."""
    yield name
    if not auto_rename:
        return
    stem, ext = name, ""
    if not is_dir:
        head, dot, tail = name.rpartition(".")
        if dot and head:
            stem, ext = head, "." + tail
    for n in range(2, MAX_AUTO_RENAME):
        candidate = f"{stem} ({n}){ext}"
        if name_problem(candidate) is None:
            yield candidate


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def rename_noreplace(src: str, dst: str) -> None:
    """Rename without ever replacing what is at `dst` (FileExistsError if something is there)."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), dst)
    # the filesystem cannot refuse for us: check, then rename (only a hand-made change can race this)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "File exists", dst)
    os.rename(src, dst)


def publish_file(tmp: str, dst: str) -> None:
    """Give a completely written temporary file its final name, never replacing anything."""
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise
    except OSError:
        rename_noreplace(tmp, dst)  # filesystems without hard links
        return
    os.unlink(tmp)


class Repository:
    def __init__(self, store: Store, volume_name: str) -> None:
        self.store = store
        self.root = str(store.root)
        self.volume_name = volume_name
        # folder id -> (mtime_ns seen, when that scan started): lets paging skip rescanning a big folder
        self._scanned: dict[int, tuple[int, int]] = {}
        # bumped on every change to the entries table; caches keyed by it cannot go stale
        self._generation = 0
        self._rows_cache: dict[int, tuple[int, list[_Row]]] = {}
        self._sorted_cache: dict[tuple[int, tuple[tuple[str, bool], ...]], tuple[int, list[_Row]]] = {}

    # ---- reading -------------------------------------------------------------------------

    def entry(self, entry_id: int) -> Entry:
        with self.store.lock:
            return self._resolve(entry_id)

    def by_path(self, parts: list[str]) -> tuple[Entry | None, Entry]:
        """The entry at `parts`, or None with the closest ancestor that exists."""
        with self.store.lock:
            node = self._resolve(ROOT_ID)
            for name in parts:
                child = self._child(node, name) if node.is_dir else None
                if child is None:
                    return None, node
                node = child
            return node, node

    def children(
        self, folder_id: int, order: Sequence[tuple[str, bool]], start: int, stop: int
    ) -> tuple[int, list[Entry]]:
        """The children `start:stop` of a folder sorted by `order` ((field, descending) pairs from
        ORDER_FIELDS; ties by name, then id), and how many children there are in all.

        Only the rows on the page are stat'ed unless the order needs what only the disk knows, so a
        page of a 10,000-entry folder costs little more than a page of a small one.
        """
        with self.store.lock:
            folder = self._folder(folder_id)
            self._sync_children(folder)
            rows = self._child_rows(folder)
            if any(field in STAT_FIELDS for field, _ in order):
                entries = [e for r in rows if (e := self._stat_entry(r, folder.parts)) is not None]
                _sort(entries, order)
                return len(entries), entries[start:stop]
            ordered = self._sorted_rows(folder.id, rows, order)
            page = [e for r in ordered[start:stop] if (e := self._stat_entry(r, folder.parts))]
            return len(ordered), page

    def path_of(self, entry: Entry) -> str:
        return os.path.join(self.root, *entry.parts)

    def document_path(self, entry_id: int) -> tuple[Entry, str]:
        entry = self.entry(entry_id)
        if entry.is_dir:
            raise BadRequest(f"Entry {entry_id} is a folder and has no electronic document.")
        return entry, self.path_of(entry)

    # ---- changing ------------------------------------------------------------------------

    def create_folder(self, parent_id: int, name: str, auto_rename: bool, creator: str) -> Entry:
        check_name(name)
        with self.store.lock:
            parent = self._folder(parent_id)
            for candidate in self._allowed(parent, name, True, auto_rename):
                try:
                    os.mkdir(os.path.join(self.path_of(parent), candidate))
                except FileExistsError:
                    continue
                return self._add(parent, candidate, True, creator)
            raise self._conflict(parent, name)

    def new_temp_path(self) -> str:
        return str(self.store.tmp_dir / uuid.uuid4().hex)

    def import_document(
        self,
        parent_id: int,
        name: str,
        tmp: str,
        auto_rename: bool,
        creator: str,
        ext: str | None = None,
    ) -> Entry:
        """Publish a fully written temporary file as a new document in a folder."""
        check_name(name)
        with self.store.lock:
            parent = self._folder(parent_id)
            return self._publish(parent, name, tmp, auto_rename, creator, ext)

    def move(self, entry_id: int, parent_id: int | None, name: str | None, auto_rename: bool) -> Entry:
        if name is not None:
            check_name(name)
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
            src = self.path_of(node)
            for candidate in self._allowed(parent, new_name, node.is_dir, auto_rename):
                try:
                    rename_noreplace(src, os.path.join(self.path_of(parent), candidate))
                except FileExistsError:
                    continue
                conn = self.store.conn
                self._drop_stale(parent.id, candidate)
                conn.execute(
                    "UPDATE entries SET parent_id = ?, name = ? WHERE id = ?",
                    (parent.id, candidate, node.id),
                )
                self._changed()
                return self._resolve(node.id)
            raise self._conflict(parent, new_name)

    def copy(
        self,
        source_id: int,
        parent_id: int,
        name: str,
        auto_rename: bool,
        creator: str,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Entry:
        """Copy an entry (a folder with everything below it) into a folder, under `name`."""
        check_name(name)
        with self.store.lock:
            source = self._resolve(source_id)
            parent = self._folder(parent_id)
            if source.id == ROOT_ID or (source.is_dir and parent.parts[: len(source.parts)] == source.parts):
                raise BadRequest(f"Entry {source.id} cannot be copied into itself or one of its subfolders.")
        if not source.is_dir:
            return self._copy_file(source, parent.id, name, auto_rename, creator)
        top = self.create_folder(parent.id, name, auto_rename, creator)
        self._copy_children(source, top, creator, should_stop)
        return self.entry(top.id)

    def _copy_file(self, source: Entry, parent_id: int, name: str, auto_rename: bool, creator: str) -> Entry:
        # the bytes are copied without the lock (the kernel's copy via shutil); only publishing takes it
        tmp = self.new_temp_path()
        try:
            shutil.copyfile(self.path_of(source), tmp)
            return self.import_document(parent_id, name, tmp, auto_rename, creator, source.ext)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _copy_children(
        self, source: Entry, dest: Entry, creator: str, should_stop: Callable[[], bool]
    ) -> None:
        """Copy what a listing of `source` shows (so kept extensions travel too) into `dest`."""
        with self.store.lock:
            self._sync_children(source)
            children = [e for r in self._child_rows(source) if (e := self._stat_entry(r, source.parts))]
        for child in children:
            if should_stop():
                return
            if child.is_dir:
                copied = self.create_folder(dest.id, child.name, False, creator)
                self._copy_children(child, copied, creator, should_stop)
            else:
                self._copy_file(child, dest.id, child.name, False, creator)

    # ---- internals (all under the lock) --------------------------------------------------

    def _fetch(self, entry_id: int) -> tuple[_Row, tuple[str, ...]] | None:
        rows = self.store.conn.execute(
            """
            WITH RECURSIVE chain(id, parent_id, name, is_dir, creator, created_ns, ext, depth) AS (
                SELECT id, parent_id, name, is_dir, creator, created_ns, ext, 0
                FROM entries WHERE id = ?
                UNION ALL
                SELECT e.id, e.parent_id, e.name, e.is_dir, e.creator, e.created_ns, e.ext, c.depth + 1
                FROM entries e JOIN chain c ON e.id = c.parent_id
            )
            SELECT id, parent_id, name, is_dir, creator, created_ns, ext FROM chain ORDER BY depth DESC
            """,
            (entry_id,),
        ).fetchall()
        if not rows:
            return None
        row = _Row.of(rows[-1])
        return row, tuple(r[2] for r in rows[1:])

    def _resolve(self, entry_id: int) -> Entry:
        found = self._fetch(entry_id)
        if found is None:
            raise NotFound(f"Entry {entry_id} not found.")
        row, parts = found
        entry = self._stat_entry(row, parts[:-1] if parts else (), verify_chain=True)
        if entry is None:
            raise NotFound(f"Entry {entry_id} not found.")
        return entry

    def _stat_entry(
        self, row: _Row, folder_parts: tuple[str, ...], verify_chain: bool = False
    ) -> Entry | None:
        """The entry for a stored row, or None (and the row forgotten) if the disk no longer has it.

        `verify_chain` checks that no folder on the way is a symlink (one swapped in by hand must
        never lead out of the root); listings skip it because they verified the folder itself.
        """
        parts = (*folder_parts, row.name) if row.id != ROOT_ID else ()
        path = os.path.join(self.root, *parts)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        gone = st is None or _kind(st) is not bool(row.is_dir)
        if not gone and verify_chain:
            folder = path if row.is_dir else os.path.dirname(path)
            gone = os.path.realpath(folder) != folder
        if gone or st is None:
            self._forget(row.id)
            return None
        return Entry(
            id=row.id,
            parent_id=row.parent_id,
            name=row.name,
            parts=parts,
            is_dir=bool(row.is_dir),
            creator=row.creator,
            created_ns=row.created_ns,
            modified_ns=st.st_mtime_ns,
            size=0 if row.is_dir else st.st_size,
            ext=row.ext,
        )

    def _folder(self, folder_id: int) -> Entry:
        entry = self._resolve(folder_id)
        if not entry.is_dir:
            raise BadRequest(f"Entry {folder_id} is not a folder.")
        return entry

    def _changed(self) -> None:
        self._generation += 1

    def _child_rows(self, folder: Entry) -> list[_Row]:
        cached = self._rows_cache.get(folder.id)
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        rows = [
            _Row.of(row)
            for row in self.store.conn.execute(
                f"SELECT {ROW_COLUMNS} FROM entries WHERE parent_id = ?",
                (folder.id,),
            )
        ]
        self._rows_cache[folder.id] = (self._generation, rows)
        return rows

    def _sorted_rows(self, folder_id: int, rows: list[_Row], order: Sequence[tuple[str, bool]]) -> list[_Row]:
        key = (folder_id, tuple(order))
        cached = self._sorted_cache.get(key)
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        ordered = list(rows)
        _sort(ordered, order)
        if len(self._sorted_cache) > 64:
            self._sorted_cache.clear()
        self._sorted_cache[key] = (self._generation, ordered)
        return ordered

    def _forget(self, entry_id: int) -> None:
        if entry_id != ROOT_ID:
            self.store.conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            self._changed()

    def _drop_stale(self, parent_id: int, name: str) -> None:
        """A row left for something removed by hand must not block the name's new owner."""
        cursor = self.store.conn.execute(
            "DELETE FROM entries WHERE parent_id = ? AND name = ?", (parent_id, name)
        )
        if cursor.rowcount:
            self._changed()

    def _add(
        self,
        parent: Entry,
        name: str,
        is_dir: bool,
        creator: str,
        st: os.stat_result | None = None,
        ext: str | None = None,
    ) -> Entry:
        path = os.path.join(self.path_of(parent), name)
        if st is None:
            st = os.lstat(path)
        created_ns = min(st.st_mtime_ns, st.st_ctime_ns)
        self._drop_stale(parent.id, name)
        cursor = self.store.conn.execute(
            "INSERT INTO entries (parent_id, name, is_dir, creator, created_ns, ext)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (parent.id, name, is_dir, creator, created_ns, ext),
        )
        assert cursor.lastrowid is not None
        self._changed()
        return Entry(
            id=cursor.lastrowid,
            parent_id=parent.id,
            name=name,
            parts=(*parent.parts, name),
            is_dir=is_dir,
            creator=creator,
            created_ns=created_ns,
            modified_ns=st.st_mtime_ns,
            size=0 if is_dir else st.st_size,
            ext=ext,
        )

    def _allowed(self, parent: Entry, name: str, is_dir: bool, auto_rename: bool) -> Iterator[str]:
        for candidate in candidates(name, is_dir, auto_rename):
            if parent.id == ROOT_ID and candidate == STORE_DIR:
                if not auto_rename:
                    raise BadRequest(f"The name '{STORE_DIR}' is reserved at the root.")
                continue
            yield candidate

    def _conflict(self, parent: Entry, name: str) -> Conflict:
        where = "\\" + "\\".join(parent.parts)
        return Conflict(f"An entry named '{name}' already exists in '{where}'.")

    def _publish(
        self, parent: Entry, name: str, tmp: str, auto_rename: bool, creator: str, ext: str | None
    ) -> Entry:
        for candidate in self._allowed(parent, name, False, auto_rename):
            try:
                publish_file(tmp, os.path.join(self.path_of(parent), candidate))
            except FileExistsError:
                continue
            return self._add(parent, candidate, False, creator, ext=ext)
        raise self._conflict(parent, name)

    def _scan(self, path: str, at_root: bool) -> dict[str, bool]:
        """Names in a directory that can be entries: folders (True) and documents (False)."""
        found: dict[str, bool] = {}
        with os.scandir(path) as it:
            for item in it:
                name = item.name
                if (at_root and name == STORE_DIR) or name_problem(name) or item.is_symlink():
                    continue
                if item.is_dir(follow_symlinks=False):
                    found[name] = True
                elif item.is_file(follow_symlinks=False):
                    found[name] = False
        return found

    def _sync_children(self, folder: Entry) -> None:
        """Make the store's children of `folder` match the disk: new names get ids, gone ones go."""
        path = self.path_of(folder)
        mtime = os.lstat(path).st_mtime_ns
        seen = self._scanned.get(folder.id)
        if seen is not None and seen[0] == mtime and seen[1] - mtime > RACY_NS:
            return
        started = time.time_ns()
        on_disk = self._scan(path, at_root=folder.id == ROOT_ID)
        conn = self.store.conn
        rows = conn.execute(
            "SELECT id, name, is_dir FROM entries WHERE parent_id = ?", (folder.id,)
        ).fetchall()
        known = set()
        conn.execute("BEGIN")
        try:
            for entry_id, name, is_dir in rows:
                if on_disk.get(name) is bool(is_dir):
                    known.add(name)
                else:
                    self._forget(entry_id)
            new = []
            for name, is_dir in on_disk.items():
                if name in known:
                    continue
                try:
                    st = os.lstat(os.path.join(path, name))
                except FileNotFoundError:
                    continue
                new.append((folder.id, name, is_dir, _owner(st.st_uid), min(st.st_mtime_ns, st.st_ctime_ns)))
            conn.executemany(
                "INSERT INTO entries (parent_id, name, is_dir, creator, created_ns) VALUES (?, ?, ?, ?, ?)",
                new,
            )
            if new:
                self._changed()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._scanned[folder.id] = (mtime, started)

    def _child(self, parent: Entry, name: str) -> Entry | None:
        """The child called `name`, discovering it if it was put there by hand."""
        if name_problem(name) or (parent.id == ROOT_ID and name == STORE_DIR):
            return None
        row = self.store.conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries WHERE parent_id = ? AND name = ?",
            (parent.id, name),
        ).fetchone()
        if row is not None:
            entry = self._stat_entry(_Row.of(row), parent.parts)
            if entry is not None:
                return entry
        try:
            st = os.lstat(os.path.join(self.path_of(parent), name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = _kind(st)
        if kind is None:
            return None
        return self._add(parent, name, kind, _owner(st.st_uid), st)


def now_ns() -> int:
    return time.time_ns()
