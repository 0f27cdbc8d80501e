"""An operation's record: its states, what it concerned, how it ended. No behaviour beyond reading itself."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ..progress import Progress

if TYPE_CHECKING:
    from .guard import Admission

# tokens stay readable this long after their operation ends (Long Operations guide)
TOKEN_TTL_S = 15 * 60
# what a client is told to wait between polls (Retry-After)
POLL_AFTER_S = 1


class Status(StrEnum):
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class Kind(StrEnum):
    """What an operation does: Laserfiche's vocabulary (v1 operationType, v2 taskType), the test
    task v2 offers for trying a client's polling, and Open Connectors' bulk jobs."""

    COPY = "CopyEntry"
    DELETE = "DeleteEntry"
    TEST = "TestTask"
    # Laserfiche v2's other long operations
    SEARCH = "SearchEntry"
    EXPORT = "ExportEntry"
    IMPORT_PARTS = "ImportUploadedParts"
    UPDATE_PARTS = "UpdateUploadedParts"
    # Open Connectors: a bulk query job over the documents hub
    BULK = "BulkQuery"


@dataclass(frozen=True)
class Change:
    """A change of an operation's status: when, to what, and how far it had come then."""

    at_ns: int
    status: Status
    percent: int


@dataclass(frozen=True)
class OperationError:
    object_id: int
    message: str


INTERRUPTED = (
    "The operation was interrupted because the server stopped while it ran; what it had done remains."
)
SHUT_DOWN = "The operation was interrupted because the server shut down; what it had done remains."
# the HTTP status an operation's end is reported with where a status is asked for (the Elements
# webhook's error, v2's task errors): the client closed it (as Google's APIs report a cancel), the
# server stopped
CANCELLED_STATUS = 499
STOPPED_STATUS = 503


class Hook(Protocol):
    """Another record that goes with an operation's (an Elements event): written in the same
    transaction as the operation's, when it is accepted and when it ends, so neither lands alone."""

    def accepted(self, op: Operation, conn: sqlite3.Connection) -> None: ...

    def ended(self, op: Operation, conn: sqlite3.Connection) -> None: ...


@dataclass(eq=False)
class Operation:
    token: str
    kind: Kind
    session_id: str
    user: str
    status: Status = Status.NOT_STARTED
    # the entry it concerns: a copy's new entry (once made), the entry deleted; 0 until known
    entry_id: int = 0
    errors: list[OperationError] = field(default_factory=list)
    # what its kind says of its result (stored): "uri", where the result is, as a path below the
    # repository that both dialects serve (`/Entries/12`)
    result: dict[str, Any] = field(default_factory=dict)
    created_ns: int = 0
    started_ns: int = 0
    status_ns: int = 0
    finished_ns: int = 0
    expires_ns: int = 0
    # the percentage shown: what the store holds, so that a crash never takes it back
    percent: int = 0
    progress: Progress = field(default_factory=Progress)
    cancel_requested: bool = False
    # a failed operation's HTTP status (what its last error would have been answered with)
    error_status: int = 0
    hook: Hook | None = None
    # what it does, in words ("Copy /A → /B/A"); not stored: "" after a restart
    label: str = ""
    # its changes of status, in order (the engine's `_set`); not stored: see `changes`
    timeline: list[Change] = field(default_factory=list)
    # how many of its session's operations may run beside it (None once it has ended or was loaded)
    admission: Admission | None = None
    task: asyncio.Task[None] | None = None
    # set once the operation has ended and its final state is stored
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def changes(self) -> list[Change]:
        """Its timeline; for one read back after a restart (whose timeline was not kept), what
        its times say of it."""
        if self.timeline:
            return self.timeline
        known = [Change(self.created_ns, Status.NOT_STARTED, 0)]
        if self.started_ns:
            known.append(Change(self.started_ns, Status.IN_PROGRESS, 0))
        if self.status is not Status.NOT_STARTED and self.status_ns > self.started_ns:
            known.append(Change(self.status_ns, self.status, self.percent))
        return known

    @property
    def uri(self) -> str | None:
        """Where its result is (a path below the repository), if its kind names a place."""
        uri = self.result.get("uri")
        return uri if isinstance(uri, str) else None

    @property
    def location(self) -> str | None:
        """Where a completed operation's result is (what v1's status redirects to), else None."""
        return self.uri if self.status is Status.COMPLETED else None
