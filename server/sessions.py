"""Sign-in and sessions. Each access token is a session; sessions outlive a restart until they expire.

Only a SHA-256 of each token is stored, so the database never holds a usable credential.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from .errors import Unauthorized
from .store import Store

# expired sessions are dropped once this many are held (then at twice what remains)
PRUNE_AT = 1024


@dataclass(frozen=True)
class Session:
    id: str  # a short, non-secret handle for the session (operations record it)
    user: str
    expires_ns: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions:
    def __init__(self, store: Store, users: tuple[tuple[str, str], ...], ttl_s: float) -> None:
        self._store = store
        self._users = dict(users)
        self._ttl_ns = int(ttl_s * 1e9)
        self._live: dict[str, Session] = {}
        self._next_prune = PRUNE_AT

    def load(self) -> None:
        """Read the sessions that have not expired; blocking, call from a thread."""
        now = time.time_ns()
        with self._store.lock:
            conn = self._store.conn
            conn.execute("DELETE FROM sessions WHERE expires_ns <= ?", (now,))
            for digest, user, expires_ns in conn.execute("SELECT token_hash, user, expires_ns FROM sessions"):
                self._live[digest] = Session(digest[:16], user, expires_ns)

    def check_password(self, user: str, password: str) -> bool:
        expected = self._users.get(user)
        # compare even for an unknown user, so timing does not tell which users exist
        ok = hmac.compare_digest(
            (expected or secrets.token_hex(8)).encode(), password.encode("utf-8", "surrogatepass")
        )
        return ok and expected is not None

    def create(self, user: str) -> tuple[str, Session]:
        """A new access token for `user`; blocking (it persists), call from a thread."""
        token = secrets.token_urlsafe(32)
        digest = _digest(token)
        now = time.time_ns()
        session = Session(digest[:16], user, now + self._ttl_ns)
        with self._store.lock:
            conn = self._store.conn
            conn.execute(
                "INSERT INTO sessions (token_hash, user, created_ns, expires_ns) VALUES (?, ?, ?, ?)",
                (digest, user, now, session.expires_ns),
            )
            if len(self._live) >= self._next_prune:
                # a test suite signs in thousands of times: drop what expired, now and then
                conn.execute("DELETE FROM sessions WHERE expires_ns <= ?", (now,))
                for key, old in list(self._live.items()):
                    if old.expires_ns <= now:
                        del self._live[key]
                self._next_prune = max(PRUNE_AT, 2 * len(self._live))
        self._live[digest] = session
        return token, session

    def authenticate(self, token: str) -> Session:
        """The session of a bearer token; in memory, cheap enough for every request."""
        session = self._live.get(_digest(token))
        if session is None:
            raise Unauthorized("The access token is not valid.")
        if session.expires_ns <= time.time_ns():
            raise Unauthorized("The access token has expired; sign in again.")
        return session

    def user_of(self, session_id: str) -> str | None:
        """The user of a live session, by its id; None if there is none."""
        now = time.time_ns()
        # (a copy: sign-ins add to the dict from worker threads meanwhile)
        for session in list(self._live.values()):
            if session.id == session_id and session.expires_ns > now:
                return session.user
        return None

    def expire(self, session_id: str) -> None:
        """End a session now (a sandbox control): its token is refused from here on as expired;
        blocking (it persists), call from a thread."""
        now = time.time_ns()
        for digest, session in list(self._live.items()):
            if session.id == session_id:
                self._live[digest] = Session(session.id, session.user, now)
                with self._store.lock:
                    self._store.conn.execute(
                        "UPDATE sessions SET expires_ns = ? WHERE token_hash = ?", (now, digest)
                    )

    @property
    def ttl_s(self) -> int:
        return round(self._ttl_ns / 1e9)
