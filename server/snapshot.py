"""The start state: what `POST /sandbox/reset` puts back, kept as the server starts. No aiohttp.

Kept in `<root>/.sandbox/start/`: the store's rows as they were (`sandbox.db`, sqlite's own copy
of its pages), the tree (`tree/`: every folder made again with its times, every file a hard link
to the same bytes, symlinks as they were) and the store's folders whose files its rows name
(`results/`: what finished operations left to download; `uploads/`: parts of uploads under way).

Why hard links: no code path of the server writes into a file once it has its name. Imports,
copies, replaced bytes, upload parts and results are written under a temporary name and then
linked or renamed into place; a delete only unlinks; the database is the one file written in place,
and it is copied, not linked. So a file the start state links to keeps its bytes whatever the server
does, and keeping the tree costs one link per file and one folder per folder, never the bytes.
(A file that cannot be linked, on another filesystem mounted inside the root or a filesystem
without links, is copied. A file edited in place by hand while the server runs changes in the start
state too: the start state guards against the API, not against editors.)

When: after every service has opened (so it is the state a start leaves: crash debris cleared,
interrupted operations ended), in the background, so that starting costs nothing however large the
root: the rows first, then the tree. Reads are served meanwhile and never change the tree; requests
that may write wait until it is kept (the gate of `server/api/reset.py`), so the tree kept is the
one the rows describe. A reset waits for it too.

Restoring is crash-safe. A reset closes every service, marks the start state (`restoring`), and
opens the services again; the store, as it opens, finds the mark and puts back the tree, the
store's folders, then its rows in one transaction (every table but the sessions: access tokens
outlive a reset), and removes the mark last. A crash (the process killed at any point) leaves
either no mark, and the next start serves the state before the reset, or the mark, and the next
start finishes the restore before anything else reads the store: the start state, never a mix.
Each step only makes the root more like the start state, so doing one again is harmless.

A start state belongs to its process: the next start puts the previous one aside at once (unless
marked) and removes it in the background; a clean stop removes its own (its links would keep the
bytes of documents deleted meanwhile on the disk). Every walk here is iterative and holds two
descriptors at a time (server/mirroring.py), so a tree made by hand deeper than Python's
recursion limit is kept too.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid

from . import fsops
from .mirroring import is_dir, listing, mirror, put_back, remove_at, remove_tree
from .store import RESULTS_DIR, STORE_DIR, TMP_DIR, Store, StoreUnusable, transaction
from .uploads import UPLOADS_DIR

# in the store's folder: the start state, one being kept, and earlier ones being removed
START_DIR = "start"
NEW_DIR = "start.new"
TRASH_DIR = "trash"
# in the start state
TREE_DIR = "tree"
ROWS = "sandbox.db"
MARK = "restoring"
# the store's folders whose files its rows name, kept and put back with the rows
KEPT_FOLDERS = (RESULTS_DIR, UPLOADS_DIR)
# the rows a reset leaves as they are: access tokens outlive it
KEPT_TABLES = frozenset({"sessions"})


class StartState:
    """The start state of one server process: kept once, put back by every reset. Every method
    blocks (the app calls them through `asyncio.to_thread`)."""

    def __init__(self) -> None:
        # when its rows were kept (0: not yet)
        self.kept_ns = 0
        self._stop = threading.Event()
        # the root and the store's folder, held by descriptors of its own: a reset closes the
        # store and opens it again
        self._root_fd = self._dir_fd = -1

    def _attach(self, store: Store) -> None:
        if self._dir_fd < 0:
            self._root_fd = fsops.open_dir(store.root_fd, ())
            self._dir_fd = fsops.open_dir(store.dir_fd, ())

    def close(self) -> None:
        for fd in (self._root_fd, self._dir_fd):
            if fd >= 0:
                os.close(fd)
        self._root_fd = self._dir_fd = -1

    # ---- keeping ------------------------------------------------------------------------------

    def keep_rows(self, store: Store) -> None:
        """Put earlier start states aside, then keep the store's rows and its folders (`finish`
        ran first, so none of them is a reset's to finish)."""
        self._attach(store)
        for name in (START_DIR, NEW_DIR):
            self._put_aside(name)
        os.mkdir(NEW_DIR, 0o700, dir_fd=self._dir_fd)
        with fsops.folder(self._dir_fd, (NEW_DIR,)) as new_fd:
            copy = sqlite3.connect(f"/proc/self/fd/{new_fd}/{ROWS}", isolation_level=None)
            try:
                with store.lock:
                    store.conn.backup(copy)
                    self.kept_ns = time.time_ns()
                # one file, not a write-ahead log beside it
                copy.execute("PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
            for name in KEPT_FOLDERS:
                if is_dir(self._dir_fd, name):
                    os.mkdir(name, 0o700, dir_fd=new_fd)
                    mirror(self._dir_fd, new_fd, (name,), stop=self._stop)

    def keep_tree(self) -> None:
        """Keep the tree below the root (stopping early, with fsops.Stopped, once `stop` is called),
        then make what was kept the start state."""
        with fsops.folder(self._dir_fd, (NEW_DIR,)) as new_fd:
            os.mkdir(TREE_DIR, 0o700, dir_fd=new_fd)
            with fsops.folder(new_fd, (TREE_DIR,)) as tree_fd:
                mirror(self._root_fd, tree_fd, skip=frozenset({STORE_DIR}), stop=self._stop)
        os.rename(NEW_DIR, START_DIR, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)

    def stop(self) -> None:
        self._stop.set()

    def clear_trash(self) -> None:
        """Remove the start states put aside (a tree's worth of unlinks)."""
        if is_dir(self._dir_fd, TRASH_DIR):
            remove_tree(self._dir_fd, TRASH_DIR)

    def discard(self) -> None:
        """The server stops cleanly: its start state goes, unless a reset of it is unfinished."""
        if self._dir_fd < 0 or self._marked():
            return
        for name in (START_DIR, NEW_DIR):
            self._put_aside(name)
        self.clear_trash()

    def _put_aside(self, name: str) -> None:
        """Move a start state into the trash (at once; it is removed later)."""
        if fsops.lstat_at(self._dir_fd, name) is None:
            return
        if not is_dir(self._dir_fd, TRASH_DIR):
            os.mkdir(TRASH_DIR, 0o700, dir_fd=self._dir_fd)
        with fsops.folder(self._dir_fd, (TRASH_DIR,)) as trash_fd:
            os.rename(name, uuid.uuid4().hex, src_dir_fd=self._dir_fd, dst_dir_fd=trash_fd)

    # ---- restoring ----------------------------------------------------------------------------

    def mark(self) -> None:
        """A reset begins: from here on the start state is what the root becomes, even through a
        crash (the next start finishes it)."""
        with fsops.folder(self._dir_fd, (START_DIR,)) as start_fd:
            fd = os.open(
                MARK, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=start_fd
            )
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.fsync(start_fd)

    def _marked(self) -> bool:
        try:
            with fsops.folder(self._dir_fd, (START_DIR,)) as start_fd:
                return fsops.lstat_at(start_fd, MARK) is not None
        except fsops.Gone:
            return False

    def finish(self, store: Store) -> bool:
        """As the store opens: if a reset marked the start state (the one under way, or one a crash
        cut off), put back the tree, the store's folders and its rows, then remove the mark.
        False if nothing was marked."""
        self._attach(store)
        if not self._marked():
            return False
        with fsops.folder(self._dir_fd, (START_DIR,)) as start_fd:
            rows = fsops.lstat_at(start_fd, ROWS)
            if not is_dir(start_fd, TREE_DIR) or rows is None or fsops.kind(rows) is not False:
                raise StoreUnusable(
                    f"{store.dir / START_DIR}: a reset was cut off and its start state is incomplete; "
                    f"remove '{MARK}' there to serve the storage root as it is"
                )
            with fsops.folder(start_fd, (TREE_DIR,)) as tree_fd:
                put_back(tree_fd, self._root_fd, skip=frozenset({STORE_DIR}))
            for name in KEPT_FOLDERS:
                if is_dir(self._dir_fd, name):
                    _put_back_folder(start_fd, self._dir_fd, name)
            if is_dir(self._dir_fd, TMP_DIR):
                _put_back_folder(start_fd, self._dir_fd, TMP_DIR)  # (never kept: emptied)
            _put_back_rows(store, start_fd)
            os.unlink(MARK, dir_fd=start_fd)
            os.fsync(start_fd)
        return True


def _put_back_folder(start_fd: int, dir_fd: int, name: str) -> None:
    """Put back a store's folder as kept (one never kept, or not kept then, is emptied)."""
    with fsops.folder(dir_fd, (name,)) as dst:
        if is_dir(start_fd, name):
            with fsops.folder(start_fd, (name,)) as src:
                put_back(src, dst)
        else:
            for child, found in listing(dst).items():
                remove_at(dst, child, found)


# ---- rows ----------------------------------------------------------------------------------


def _put_back_rows(store: Store, start_fd: int) -> None:
    """Every table as kept but the sessions, in one transaction (with the counters that give
    the next ids: a folder made after a reset gets the id it got after the start)."""
    conn = store.conn
    with store.lock:
        conn.execute("ATTACH DATABASE ? AS start", (f"/proc/self/fd/{start_fd}/{ROWS}",))
        try:
            with transaction(conn, "BEGIN IMMEDIATE"):
                # (an entry's parent may come after it: the rows are checked as a whole, at commit)
                conn.execute("PRAGMA defer_foreign_keys = ON")
                tables = _tables(conn, "main") - KEPT_TABLES
                kept = _tables(conn, "start")
                for table in sorted(tables):
                    conn.execute(f'DELETE FROM main."{table}"')
                for table in sorted(tables & kept):
                    columns = ", ".join(
                        f'"{c}"' for c in _columns(conn, "main", table) & _columns(conn, "start", table)
                    )
                    conn.execute(
                        f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM start."{table}"'
                    )
                conn.execute("DELETE FROM main.sqlite_sequence")
                conn.execute(
                    "INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM start.sqlite_sequence"
                )
        finally:
            conn.execute("DETACH DATABASE start")


def _tables(conn: sqlite3.Connection, schema: str) -> set[str]:
    rows = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
    )
    return {name for (name,) in rows}


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f'PRAGMA {schema}.table_info("{table}")')}
