"""Sessions at the domain level: persistence across a reopen, and pruning of expired ones."""

from __future__ import annotations

import time

import pytest

from server import sessions as sessions_module
from server.errors import Unauthorized
from server.sessions import Sessions
from server.store import Store


def open_store(root) -> Store:
    store = Store(root)
    store.open("admin", time.time_ns())
    return store


def test_session_survives_reopen_and_db_holds_no_token(tmp_path):
    store = open_store(tmp_path)
    token, session = Sessions(store, (("admin", "admin"),), 60).create("admin")
    store.close()

    store = open_store(tmp_path)
    reopened = Sessions(store, (("admin", "admin"),), 60)
    reopened.load()
    assert reopened.authenticate(token) == session
    stored = [row[0] for row in store.conn.execute("SELECT token_hash FROM sessions")]
    assert token not in stored and len(stored) == 1
    store.close()


def test_expired_sessions_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(sessions_module, "PRUNE_AT", 50)
    store = open_store(tmp_path)
    # (a lifetime of one nanosecond: every session has expired by the next prune, however fast or
    # slow the machine signs in, so what is left is decided by pruning alone)
    short = Sessions(store, (("admin", "admin"),), 1e-9)
    short._next_prune = 50
    tokens = [short.create("admin")[0] for _ in range(120)]
    time.sleep(0.01)
    short.create("admin")
    # everything but the newest was pruned at some point: memory and the table stay bounded
    assert len(short._live) < 60
    count = store.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    assert count < 60
    with pytest.raises(Unauthorized):
        short.authenticate(tokens[0])
    store.close()
