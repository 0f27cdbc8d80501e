"""The embedded store: what the filesystem does not hold (ids, creators, creation times, sessions).

One sqlite3 database in a hidden folder of the storage root. Its connection is shared by the worker
threads that touch the repository and is only ever used under `lock`; nothing here runs on the event
loop (callers hop to a thread first).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import IO

# the hidden folder in the storage root; never listed, never an entry name at the root
STORE_DIR = ".sandbox"
# where documents are written before they get their final name (same filesystem, so publishing is atomic)
TMP_DIR = "tmp"
ROOT_ID = 1
# bumped whenever SCHEMA changes, so an old server never misreads a newer store
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    -- AUTOINCREMENT: sqlite never hands out an id again, even after the highest row is deleted
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id INTEGER REFERENCES entries(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- casefold(name): Laserfiche names are case-insensitive, so siblings may not differ only in case
    name_key TEXT NOT NULL,
    is_dir INTEGER NOT NULL,
    creator TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    -- a document's extension when its name does not carry it (imported "Invoice 1" from "a.pdf")
    ext TEXT,
    UNIQUE (parent_id, name)
);
CREATE INDEX IF NOT EXISTS entries_by_key ON entries (parent_id, name_key);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL
);
"""


class StoreInUse(RuntimeError):
    """The storage root cannot be served by this process (another holds it, or its store is foreign)."""


class Store:
    def __init__(self, storage_root: Path) -> None:
        self.root = Path(os.path.realpath(storage_root))
        self.dir = self.root / STORE_DIR
        self.tmp_dir = self.dir / TMP_DIR
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None
        # held for the server's life: every path below the root is walked from these
        self.root_fd = -1
        self.tmp_fd = -1

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    def open(self, creator: str, now_ns: int) -> None:
        """Create or open the database; blocking, call from a thread."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(exist_ok=True)
        # two servers on one root would each take the other's temporary files for crash debris
        self._lock_file = open(self.dir / "lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreInUse(f"{self.root} is already served by another sandbox process") from None
        # anything left here was a write interrupted by a crash: it never got its final name
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir()
        self.root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.tmp_fd = os.open(self.tmp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        conn = sqlite3.connect(self.dir / "sandbox.db", check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            conn.close()
            raise StoreInUse(
                f"{self.dir} holds store version {version}; this server reads version {SCHEMA_VERSION}"
            )
        conn.execute(
            "INSERT OR IGNORE INTO entries (id, parent_id, name, name_key, is_dir, creator, created_ns)"
            " VALUES (?, NULL, '', '', 1, ?, ?)",
            (ROOT_ID, creator, now_ns),
        )
        self._conn = conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            for fd in (self.root_fd, self.tmp_fd):
                if fd >= 0:
                    os.close(fd)
            self.root_fd = self.tmp_fd = -1
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None
