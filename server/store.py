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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import fsops

# the hidden folder in the storage root; never listed, never an entry name at the root
STORE_DIR = ".sandbox"
# where documents are written before they get their final name (same filesystem, so publishing is atomic)
TMP_DIR = "tmp"
# where what finished operations leave to download is kept until their tokens expire (a bulk
# job's records); the kinds that write there clear it
RESULTS_DIR = "results"
DB_NAME = "sandbox.db"
ROOT_ID = 1
# how long a write waits for another connection's transaction (a copy worker's) to end
BUSY_TIMEOUT_MS = 30_000
# bumped whenever SCHEMA changes, so an old server never misreads a newer store
SCHEMA_VERSION = 6
# what is at the top of the storage root but is no entry: the store's folder and the metadata
# catalog (see metadata.catalog), in casefolded form
CATALOG_NAME = ".catalog.toml"
HIDDEN_AT_ROOT = frozenset({STORE_DIR, CATALOG_NAME})

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
    -- a shortcut's target and what it was (version 4: "Folder", "Document", "Shortcut"); on disk
    -- a shortcut is a small placeholder file
    target_id INTEGER,
    target_type TEXT,
    -- its metadata template's id in the catalog (version 6; 0: none)
    template_id INTEGER NOT NULL DEFAULT 0,
    UNIQUE (parent_id, name)
);
CREATE INDEX IF NOT EXISTS entries_by_key ON entries (parent_id, name_key);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL
);
-- long operations (version 2): kept after they end until their token expires, then as a
-- tombstone for a day, so that a client polling late hears "expired" rather than "not found"
CREATE TABLE IF NOT EXISTS operations (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user TEXT NOT NULL,
    status TEXT NOT NULL,
    percent INTEGER NOT NULL,
    -- the copy's new entry, or the entry deleted; 0 until known
    entry_id INTEGER NOT NULL,
    -- JSON: [{"objectId", "errorMessage"}]
    errors TEXT NOT NULL,
    -- JSON: what the operation's kind says of its result beyond entry_id (version 4)
    result TEXT NOT NULL DEFAULT '{}',
    created_ns INTEGER NOT NULL,
    started_ns INTEGER NOT NULL,
    status_ns INTEGER NOT NULL,
    finished_ns INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL,
    expired INTEGER NOT NULL DEFAULT 0
);
-- metadata (version 6): values by the catalog's ids, gone with their entry ------------------
-- (version 3 to 5 kept the Elements hub's tags by name in entry_tags; Metadata.open moves them)
-- an entry's field values and tags, one row (a copy writes one row per entry it carries): JSON
-- {"<field id>": [values]} and [tag ids] in the order they were given
CREATE TABLE IF NOT EXISTS entry_values (
    entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    fields TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    definition_id INTEGER NOT NULL,
    source_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    -- JSON object of strings: the link's custom properties
    properties TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS links_by_source ON links (source_id);
CREATE INDEX IF NOT EXISTS links_by_target ON links (target_id);
-- tag definitions the catalog lacks, made when the Elements hub first names them (as first
-- written; a name in another case is the same tag; ids past the catalog's)
CREATE TABLE IF NOT EXISTS added_tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
-- copies under way: the entry each copied entry that has links came from, so that links between
-- copied entries point at the copies (cleared when the copy ends, and at start; no foreign key,
-- which every delete of an entry would pay to check: ids are never reused, a stale pair is inert)
CREATE TABLE IF NOT EXISTS copy_pairs (
    copy_id INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    source_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS copy_pairs_by_source ON copy_pairs (run, source_id);
-- facts about the store itself (version 6): "seeded" once the catalog's sample values are set
CREATE TABLE IF NOT EXISTS facts (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- v2 searches (version 6; server/search/results.py): a search's command, which set of its rows is
-- current (a refresh writes the next set, then switches), and when its results were last read (0
-- while it runs); its rows are the entries as found, numbered in the order found
CREATE TABLE IF NOT EXISTS searches (
    token TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    run INTEGER NOT NULL DEFAULT 0,
    read_ns INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS search_rows (
    token TEXT NOT NULL,
    run INTEGER NOT NULL,
    row_number INTEGER NOT NULL,
    name_key TEXT NOT NULL,
    ext_key TEXT NOT NULL,
    entry_id INTEGER NOT NULL,
    parent_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    -- JSON: the names from the root
    parts TEXT NOT NULL,
    is_dir INTEGER NOT NULL,
    creator TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    ext TEXT,
    target_id INTEGER,
    target_type TEXT,
    template_id INTEGER NOT NULL,
    PRIMARY KEY (token, run, row_number)
) WITHOUT ROWID;
-- uploads in parts (version 6; Laserfiche v2's CreateMultipartUploadUrls, see server/uploads.py):
-- kept until they expire or are assembled; each part's bytes are uploads/<id>/<number>.<md5>
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    file_name TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL,
    -- 1 while a task assembles it (expiry leaves it alone; a start after a crash removes it)
    claimed INTEGER NOT NULL DEFAULT 0
);
-- one per part a URL was given for: the URL's credential (hashed); size and md5 once uploaded
CREATE TABLE IF NOT EXISTS upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    key_hash TEXT NOT NULL,
    size INTEGER,
    md5 TEXT,
    PRIMARY KEY (upload_id, number)
);
-- the Elements dialect (version 3) ---------------------------------------------------------
-- element instances: the credentials of hub requests and where their webhooks go
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    -- JSON object: event.notification.enabled, .callback.url, .signature.key, and any others
    configuration TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
-- one per asynchronous request; outlives its operation's token
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    -- the instance's signature key when the request came ('' = unsigned)
    signature_key TEXT NOT NULL,
    -- dispatched until the operation ends (processing is read from the running operation)
    status TEXT NOT NULL,
    -- JSON: the webhook's "response" object, once the operation ended
    response TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
-- Open Connectors bulk jobs (version 5): a query whose records a job writes to a file; each is an
-- event too (the same id), whose webhook is the job's status object
CREATE TABLE IF NOT EXISTS bulk_jobs (
    id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    operation TEXT NOT NULL,
    query TEXT NOT NULL,
    object_name TEXT NOT NULL,
    -- CREATED until the job ends: COMPLETED, FAILED or CANCELLED
    status TEXT NOT NULL,
    records INTEGER NOT NULL DEFAULT 0,
    records_failed INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    completed_ns INTEGER NOT NULL DEFAULT 0
);
-- the webhook of an event: its body is fixed when the operation ends; attempts are kept
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL UNIQUE REFERENCES events(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- the instance's signature key when the event was dispatched ('' = unsigned)
    signature_key TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL,
    next_ns INTEGER NOT NULL,
    -- attempts made before the current series (a redelivery starts a new one, with its own retries)
    series_from INTEGER NOT NULL DEFAULT 0,
    -- retries after a failed attempt, from the instance's failure policy (version 5; NULL: the
    -- server's --webhook-retries, 0: queued at once)
    retries INTEGER,
    created_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status);
CREATE TABLE IF NOT EXISTS attempts (
    notification_id INTEGER NOT NULL REFERENCES deliveries(notification_id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_ns INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    PRIMARY KEY (notification_id, number)
);
"""
# what upgrades a store of an older version beyond creating the tables it lacks: the columns added
# to tables that exist, (table, column, declaration, what fills it in the rows already there)
ADDED_COLUMNS = (
    ("entries", "target_id", "INTEGER", None),
    ("entries", "target_type", "TEXT", None),
    ("entries", "template_id", "INTEGER NOT NULL DEFAULT 0", None),
    ("deliveries", "retries", "INTEGER", None),
    (
        "operations",
        "result",
        "TEXT NOT NULL DEFAULT '{}'",
        # a copy's result is its new entry (version 3 knew no other)
        "UPDATE operations SET result = '{\"uri\": \"/Entries/' || entry_id || '\"}'"
        " WHERE kind = 'CopyEntry' AND entry_id != 0",
    ),
)


def connect_from(root_fd: int) -> tuple[int, sqlite3.Connection]:
    """A second connection to the store of the root open at `root_fd` (a copy worker's): the
    store folder's descriptor (keep it open as long as the connection) and the connection."""
    dir_fd = os.open(STORE_DIR, fsops.DIR_FLAGS, dir_fd=root_fd)
    found = fsops.lstat_at(dir_fd, DB_NAME)
    if found is None or fsops.kind(found) is not False:
        os.close(dir_fd)
        raise StoreUnusable(f"the store's '{DB_NAME}' is missing or not a regular file")
    return dir_fd, _connect(dir_fd)


def _connect(dir_fd: int, shared: bool = False) -> sqlite3.Connection:
    """The database in the store folder open at `dir_fd` (by that descriptor, so the folder cannot
    be swapped under it); `shared`: used by many threads, one at a time (under Store.lock)."""
    conn = sqlite3.connect(
        f"/proc/self/fd/{dir_fd}/{DB_NAME}", check_same_thread=not shared, isolation_level=None
    )
    conn.execute("PRAGMA foreign_keys=ON")
    # the server and the copy worker processes write side by side: wait for the other's
    # transaction, never fail
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # (in write-ahead-log mode: a commit is safe from a crash of any process at once, and only a
    # power loss could take back the last ones)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction, or a part of the one already open on `conn`."""
    if conn.in_transaction:
        yield conn
    else:
        with transaction(conn):
            yield conn


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[sqlite3.Connection]:
    """One transaction: many rows cost one commit, and all or none land."""
    conn.execute(begin)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class StoreUnusable(RuntimeError):
    """The storage root cannot be served by this process (another holds it, or its store is foreign)."""


class Store:
    def __init__(self, storage_root: Path) -> None:
        self.root = Path(os.path.realpath(storage_root))
        self.dir = self.root / STORE_DIR
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        # held for the server's life: every path below the root is walked from these
        self.root_fd = self.dir_fd = self.tmp_fd = self.results_fd = self._lock_fd = -1

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The lock and one transaction (see `transaction`)."""
        with self.lock, transaction(self.conn) as conn:
            yield conn

    def open(self, creator: str, now_ns: int, lock_fd: int = -1) -> None:
        """Create or open the database; blocking, call from a thread. `lock_fd`: the root's lock,
        still held, of the store this one follows (see `detach_lock`).

        Everything below the root is reached through descriptors without following symlinks, so a
        `.sandbox` (or anything in it) swapped for a symlink by hand is refused, never followed.
        """
        self._lock_fd = lock_fd
        self.root.mkdir(parents=True, exist_ok=True)
        self.root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.dir_fd = self._own_dir(self.root_fd, STORE_DIR)
        if self._lock_fd < 0:
            self._take_lock()
        # anything left here was a write interrupted by a crash: it never got its final name
        # (rmtree with dir_fd never follows a symlink out)
        leftover = fsops.lstat_at(self.dir_fd, TMP_DIR)
        if leftover is not None and fsops.kind(leftover) is True:
            shutil.rmtree(TMP_DIR, dir_fd=self.dir_fd)
        elif leftover is not None:
            os.unlink(TMP_DIR, dir_fd=self.dir_fd)
        self.tmp_fd = self._own_dir(self.dir_fd, TMP_DIR)
        self.results_fd = self._own_dir(self.dir_fd, RESULTS_DIR)
        # sqlite follows links: what it will open must be absent or a regular file
        for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
            found = fsops.lstat_at(self.dir_fd, name)
            if found is not None and fsops.kind(found) is not False:
                self.close()
                raise StoreUnusable(f"{self.dir}: '{name}' must be a regular file of the sandbox's own")
        conn = _connect(self.dir_fd, shared=True)
        conn.execute("PRAGMA journal_mode=WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version <= SCHEMA_VERSION:
            # each step is safe to repeat, should a crash come between them (and is repeated at
            # every start: a table added within a version is made for stores of that version)
            conn.executescript(SCHEMA)
            for table, column, declaration, fill in ADDED_COLUMNS:
                if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    with transaction(conn):
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                        if fill is not None:
                            conn.execute(fill)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            conn.close()
            self.close()
            raise StoreUnusable(
                f"{self.dir} holds store version {version}; this server reads version {SCHEMA_VERSION}"
            )
        # no copy survives a restart: what it noted of its pairs goes
        conn.execute("DELETE FROM copy_pairs")
        conn.execute(
            "INSERT OR IGNORE INTO entries (id, parent_id, name, name_key, is_dir, creator, created_ns)"
            " VALUES (?, NULL, '', '', 1, ?, ?)",
            (ROOT_ID, creator, now_ns),
        )
        self._conn = conn

    def _take_lock(self) -> None:
        # two servers on one root would each take the other's temporary files for crash debris
        try:
            self._lock_fd = os.open(
                "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.dir_fd
            )
        except OSError as exc:
            self.close()
            raise StoreUnusable(f"{self.dir}: 'lock' must be a regular file of the sandbox's own") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise StoreUnusable(f"{self.root} is already served by another sandbox process") from None

    def detach_lock(self) -> int:
        """Take the root's lock out of the store, still held: `close` then leaves the root locked,
        for the next store on it to take over (`open(lock_fd=…)`). A reset opens the store anew,
        and no other process may take the root in between."""
        with self.lock:
            fd, self._lock_fd = self._lock_fd, -1
        return fd

    def _own_dir(self, parent_fd: int, name: str) -> int:
        """Open (creating if needed) a folder of the store's; refuse a symlink or anything else."""
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            pass
        try:
            return os.open(name, fsops.DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            self.close()
            raise StoreUnusable(
                f"{self.root}: '{name}' must be a folder of the sandbox's own, not a link"
            ) from exc

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            for fd in (self.tmp_fd, self.results_fd, self._lock_fd, self.dir_fd, self.root_fd):
                if fd >= 0:
                    os.close(fd)
            self.tmp_fd = self.results_fd = self._lock_fd = self.dir_fd = self.root_fd = -1
