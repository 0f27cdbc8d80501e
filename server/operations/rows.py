"""Operations in the store: one row each, written as they are accepted, as they run and as they end;
kept after they end until their token expires, then as a tombstone for a day. Every function here
blocks; the engine calls them from a thread."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from ..store import Store
from .records import INTERRUPTED, STOPPED_STATUS, Kind, Operation, OperationError, Status

log = logging.getLogger("server.operations")

# an expired token is remembered this long, so that a late poll hears "expired", not "not found"
TOMBSTONE_KEEP_NS = 24 * 3600 * 10**9

_COLUMNS = (
    "token, kind, session_id, user, status, percent, entry_id, errors, result, created_ns, started_ns,"
    " status_ns, finished_ns, expires_ns"
)


def snapshot(op: Operation) -> tuple[Any, ...]:
    """The operation's row as it is now (taken on the event loop, which alone changes it)."""
    errors = orjson.dumps([{"objectId": e.object_id, "errorMessage": e.message} for e in op.errors])
    return (
        op.token,
        op.kind.value,
        op.session_id,
        op.user,
        op.status.value,
        op.percent,
        op.entry_id,
        errors.decode(),
        orjson.dumps(op.result).decode(),
        op.created_ns,
        op.started_ns,
        op.status_ns,
        op.finished_ns,
        op.expires_ns,
    )


class Rows:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, row: tuple[Any, ...]) -> None:
        """Upsert an operation's row (a `snapshot`) in a transaction of its own (what runs beside
        others goes through the group commit, with `save_in`)."""
        with self.store.transaction() as conn:
            save_in(conn, row)

    def mark_expired(self, tokens: list[str], now: int) -> None:
        with self.store.lock:
            conn = self.store.conn
            conn.executemany("UPDATE operations SET expired = 1 WHERE token = ?", [(t,) for t in tokens])
            _drop_tombstones(conn, now)

    def load(
        self, now: int, ttl_ns: int
    ) -> tuple[list[Operation], list[Operation], dict[str, tuple[str, int]]]:
        """The operations whose tokens still answer, those of them that had not ended (a stop cut
        them off: they are Failed, interrupted, now, and stored so), and the tombstones (token ->
        (session id, when it expired)) of those that expired."""
        live: list[Operation] = []
        interrupted: list[Operation] = []
        tombstones: dict[str, tuple[str, int]] = {}
        lapsed: list[str] = []
        with self.store.lock:
            conn = self.store.conn
            _drop_tombstones(conn, now)
            rows = conn.execute(f"SELECT {_COLUMNS}, expired FROM operations").fetchall()
        for row in rows:
            token, kind, session_id, user, status, percent, entry_id, errors, result, *times, expired = row
            op = Operation(token, Kind(kind), session_id, user, Status(status), entry_id)
            op.errors = [OperationError(e["objectId"], e["errorMessage"]) for e in orjson.loads(errors)]
            op.result = orjson.loads(result)
            op.created_ns, op.started_ns, op.status_ns, op.finished_ns, op.expires_ns = times
            op.percent = percent
            if expired or (op.done and op.expires_ns <= now):
                tombstones[token] = (session_id, op.expires_ns)
                if not expired:
                    lapsed.append(token)  # expired while the server was down
                continue
            if not op.done:
                op.errors.append(OperationError(op.entry_id, INTERRUPTED))
                op.status, op.status_ns = Status.FAILED, now
                op.finished_ns, op.expires_ns = now, now + ttl_ns
                op.error_status = STOPPED_STATUS
                self.save(snapshot(op))
                interrupted.append(op)
            op.ended.set()
            live.append(op)
        if lapsed:
            self.mark_expired(lapsed, now)
        return live, interrupted, tombstones


def save_in(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    also: Callable[[sqlite3.Connection], None] | None = None,
    forgiving: bool = False,
) -> None:
    """Upsert an operation's row (a `snapshot`) in the open transaction, and run `also` in it. A
    `forgiving` one (the record of an end) that fails is logged and undone alone: the end itself
    is kept."""
    conn.execute(
        f"INSERT INTO operations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (token) DO UPDATE SET status = excluded.status,"
        " percent = MAX(percent, excluded.percent), entry_id = excluded.entry_id,"
        " errors = excluded.errors, result = excluded.result, started_ns = excluded.started_ns,"
        " status_ns = excluded.status_ns, finished_ns = excluded.finished_ns,"
        " expires_ns = excluded.expires_ns",
        row,
    )
    if also is None:
        return
    if not forgiving:
        also(conn)
        return
    conn.execute("SAVEPOINT hook")
    try:
        also(conn)
    except Exception:
        log.exception("could not record the end of operation %s beside it", row[0])
        conn.execute("ROLLBACK TO hook")
    conn.execute("RELEASE hook")


def save_percents_in(conn: sqlite3.Connection, rows: list[tuple[int, str]]) -> None:
    """(percent, token) pairs of running operations, in the open transaction; a percentage never
    goes back."""
    conn.executemany("UPDATE operations SET percent = MAX(percent, ?) WHERE token = ?", rows)


def _drop_tombstones(conn: sqlite3.Connection, now: int) -> None:
    conn.execute("DELETE FROM operations WHERE expired = 1 AND expires_ns < ?", (now - TOMBSTONE_KEEP_NS,))
