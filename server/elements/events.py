"""The Elements dialect's events: one per asynchronous request, each ending in one webhook. No aiohttp.

An event is written in the same transaction as its operation when the operation is accepted, and its
end (status, the webhook's `response`, the delivery with its body) in the same transaction as the
operation's end: a finished asynchronous operation never lacks its webhook, not even after a crash.
Operations a crash cut off end when the server starts again; their webhooks list what the disk shows
was copied.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from .. import fsops
from ..errors import NotFound
from ..metadata.model import Metadata
from ..operations import Kind, Operation, Operations, Status
from ..progress import Change
from ..repository import Repository
from ..webhooks import Deliveries, DeliveryStatus, Pending
from .instances import QUEUE_POLICY, Instance, failure_policy

# an event whose webhook was delivered is kept this long, then dropped at the next start
EVENT_KEEP_NS = 24 * 3600 * 10**9
# what a webhook says of a delete cut off by a crash: the files it had removed are not known
REMOVED_UNKNOWN = " The entries it removed before it stopped are not listed."
RECORD_LOST = "The operation ended, but how is no longer known; look at the entries it concerned."


class EventStatus(StrEnum):
    DISPATCHED = "dispatched"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ENDED = {
    Status.COMPLETED: EventStatus.COMPLETED,
    Status.FAILED: EventStatus.FAILED,
    Status.CANCELLED: EventStatus.CANCELLED,
}


def outcome(op: Operation) -> tuple[EventStatus, dict[str, Any] | None]:
    """How an ended operation's event ends: its status, and the webhook's error if it failed."""
    if op.status is Status.COMPLETED:
        return EventStatus.COMPLETED, None
    messages = [e.message for e in op.errors] or ["The operation was cancelled."]
    return ENDED[op.status], {"status": op.error_status or 500, "message": " ".join(messages)}


def event_objects(changes: list[Change]) -> list[dict[str, Any]]:
    """The webhook's events: one per entry made or removed; `path` is the providers' lower-case
    key, `metadata.path` the path as stored."""
    objects = []
    for parts, names, folders in changes:
        folder = "/" + "/".join(parts) if parts else ""
        for name in names:
            path = f"{folder}/{name}"
            kind = "folder" if folders else "file"
            objects.append({"path": path.lower(), "metadata": {"path": path, "name": name, "type": kind}})
    return objects


@dataclass
class Event:
    id: int
    instance_id: int
    session_id: str
    operation: str
    method: str
    path: str
    callback_url: str
    status: EventStatus
    # the webhook's `response`, as stored (spliced into answers as is, never parsed again)
    response: orjson.Fragment | None
    created_ns: int
    updated_ns: int
    notification_id: int | None = None
    delivery_status: DeliveryStatus | None = None
    next_ns: int = 0


EVENT_COLUMNS = (
    "e.id, e.instance_id, e.session_id, e.operation, e.method, e.path, e.callback_url, e.status,"
    " e.response, e.created_ns, e.updated_ns, d.notification_id, d.status, d.next_ns"
)


def async_response(error: dict[str, Any] | None, changes: list[Change]) -> dict[str, Any]:
    """What an asynchronous request's webhook says in `response`: its events, and how it failed."""
    response: dict[str, Any] = {"events": event_objects(changes)}
    if error is not None:
        response["error"] = error
    return response


@dataclass
class EventHook:
    """An asynchronous request's event, recorded beside its operation (operations.Hook): written
    when the operation is accepted, and ended, with its webhook, when the operation ends. Other
    asynchronous records (a bulk job) are kinds of it that report otherwise (`report`)."""

    events: Events
    instance: Instance
    method: str
    path: str
    callback_url: str
    # set on the copy's new folder when the copy ends (the request's `tags`)
    tags: list[str] = field(default_factory=list)
    event_id: int = 0
    # the delivery the end created, to be scheduled once it is stored
    pending: Pending | None = None

    def accepted(self, op: Operation, conn: sqlite3.Connection) -> None:
        cursor = conn.execute(
            "INSERT INTO events (instance_id, session_id, operation, method, path, callback_url,"
            " signature_key, status, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.instance.id,
                op.session_id,
                op.token,
                self.method,
                self.path,
                self.callback_url,
                self.instance.signature_key,
                EventStatus.DISPATCHED.value,
                op.created_ns,
                op.created_ns,
            ),
        )
        assert cursor.lastrowid is not None
        self.event_id = cursor.lastrowid

    def ended(self, op: Operation, conn: sqlite3.Connection) -> None:
        if self.tags and op.kind is Kind.COPY and op.status is Status.COMPLETED:
            # (nothing if the copy was deleted meanwhile)
            self.events.metadata.set_tag_names(conn, op.entry_id, self.tags)
        self.pending = self.events.record_end(conn, self.event_id, *self.report(op, conn))

    def report(
        self, op: Operation, conn: sqlite3.Connection
    ) -> tuple[EventStatus, dict[str, Any], dict[str, Any] | None]:
        """How the event ended: its status, its `response`, and the webhook's body if it is not
        the asynchronous request's {eventId, instanceId, response, notificationId}."""
        status, error = outcome(op)
        return status, async_response(error, op.progress.changes), None


class Events:
    def __init__(
        self, repository: Repository, metadata: Metadata, operations: Operations, deliveries: Deliveries
    ) -> None:
        self.store = repository.store
        self.repository = repository
        self.metadata = metadata  # (the tags an asynchronous copy sets)
        self.operations = operations
        self.deliveries = deliveries
        # an asynchronous request's webhook goes out as soon as its operation's end is stored
        operations.listeners.append(self._deliver_when_ended)

    # ---- life --------------------------------------------------------------------------

    async def open(self) -> None:
        """End the events whose operations a stop cut off (the operations are Failed by now), and
        drop those delivered more than a day ago."""
        for pending in await asyncio.to_thread(self._recover):
            self.deliveries.schedule(pending)

    def _deliver_when_ended(self, op: Operation) -> None:
        """Operations.listeners: once an operation with an event has ended and its end is stored,
        its webhook (made in that same transaction: `EventHook.ended`) is scheduled, once."""
        hook = op.hook
        if isinstance(hook, EventHook) and hook.pending is not None and op.ended.is_set():
            pending, hook.pending = hook.pending, None
            self.deliveries.schedule(pending)

    # ---- ending (blocking, inside the operation's transaction) ---------------------------

    def record_end(
        self,
        conn: sqlite3.Connection,
        event_id: int,
        status: EventStatus,
        response: dict[str, Any],
        body: dict[str, Any] | None = None,
    ) -> Pending | None:
        """Store how the event ended (`response`) and, where it has a callback URL, the webhook
        that says so (`body`, else the asynchronous request's); the delivery to schedule."""
        instance_id, url, key, session_id = conn.execute(
            "SELECT instance_id, callback_url, signature_key, session_id FROM events WHERE id = ?",
            (event_id,),
        ).fetchone()
        now = time.time_ns()
        conn.execute(
            "UPDATE events SET status = ?, response = ?, updated_ns = ? WHERE id = ?",
            (status.value, _dumps(response), now, event_id),
        )
        if not url:
            return None  # (a bulk job with nowhere to report)
        # the instance's failure policy, as it is when the webhook is made: queue means no retries
        found = conn.execute("SELECT configuration FROM instances WHERE id = ?", (instance_id,)).fetchone()
        retries = 0 if found and failure_policy(orjson.loads(found[0])) == QUEUE_POLICY else None
        cursor = conn.execute(
            "INSERT INTO deliveries (event_id, url, signature_key, body, status, next_ns, retries,"
            " created_ns) VALUES (?, ?, ?, x'', ?, ?, ?, ?)",
            (event_id, url, key, DeliveryStatus.PENDING.value, now, retries, now),
        )
        notification_id = cursor.lastrowid
        assert notification_id is not None
        if body is None:
            webhook = {"eventId": event_id, "instanceId": instance_id, "response": response}
            body = webhook | {"notificationId": notification_id}
        raw = orjson.dumps(body)
        conn.execute("UPDATE deliveries SET body = ? WHERE notification_id = ?", (raw, notification_id))
        return Pending(notification_id, url, key, raw, 0, now, 0, event_id, instance_id, session_id, retries)

    def _recover(self) -> list[Pending]:
        with self.store.lock:
            self.store.conn.execute(
                "DELETE FROM events WHERE updated_ns < ? AND id IN"
                " (SELECT event_id FROM deliveries WHERE status = ?)",
                (time.time_ns() - EVENT_KEEP_NS, DeliveryStatus.DELIVERED.value),
            )
            rows = self.store.conn.execute(
                "SELECT id, operation FROM events WHERE status = ?", (EventStatus.DISPATCHED.value,)
            ).fetchall()
        scheduled = []
        for event_id, token in rows:
            # (after `Operations.open`, every operation left has ended)
            op = self.operations.lookup(token)
            changes: list[Change] = []
            error: dict[str, Any] | None
            if op is None:
                # its record expired before the event could end (an end whose record failed)
                status, error = EventStatus.FAILED, {"status": 500, "message": RECORD_LOST}
            else:
                status, error = outcome(op)
                if op.kind is Kind.COPY and op.entry_id:
                    changes = copied_tree(self.repository, op.entry_id)
                elif op.kind is Kind.DELETE and error is not None:
                    error["message"] += REMOVED_UNKNOWN
            with self.store.transaction() as conn:
                pending = self.record_end(conn, event_id, status, async_response(error, changes))
            if pending is not None:
                scheduled.append(pending)
        return scheduled

    # ---- reading --------------------------------------------------------------------------

    def get(self, event_id: int, instance_id: int | None = None) -> Event:
        """An event (of `instance_id`'s, if given); blocking."""
        where = "e.id = ?" + (" AND e.instance_id = ?" if instance_id is not None else "")
        args = (event_id,) if instance_id is None else (event_id, instance_id)
        found = self._select(where, args, 1)
        if not found:
            raise NotFound(f"No event with id {event_id}.", title="Event not found.")
        return found[0]

    def recent(self, instance_id: int | None, start: int, count: int) -> list[Event]:
        """The events (of `instance_id`'s, if given), newest first; blocking."""
        where = "1" if instance_id is None else "e.instance_id = ?"
        args: tuple[Any, ...] = () if instance_id is None else (instance_id,)
        return self._select(where + " ORDER BY e.id DESC", args, count, start)

    def _select(self, where: str, args: tuple[Any, ...], limit: int, offset: int = 0) -> list[Event]:
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN deliveries d ON d.event_id = e.id"
                f" WHERE {where} LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        events = []
        for row in rows:
            event_id, instance_id, session_id, token, method, path, url = row[:7]
            status, response, created_ns, updated_ns, nid, delivery, next_ns = row[7:]
            event = Event(
                event_id,
                instance_id,
                session_id,
                token,
                method,
                path,
                url,
                status=EventStatus(status),
                response=orjson.Fragment(response) if response else None,
                created_ns=created_ns,
                updated_ns=updated_ns,
                notification_id=nid,
                delivery_status=None if nid is None else self.deliveries.status_of(nid, delivery),
                next_ns=next_ns or 0,
            )
            op = self.operations.lookup(event.operation)
            if event.status is EventStatus.DISPATCHED and op is not None and op.status is Status.IN_PROGRESS:
                event.status = EventStatus.PROCESSING
            events.append(event)
        return events

    def of_operation(self, token: str) -> int | None:
        with self.store.lock:
            row = self.store.conn.execute("SELECT id FROM events WHERE operation = ?", (token,)).fetchone()
        return None if row is None else int(row[0])


def copied_tree(repository: Repository, top_id: int) -> list[Change]:
    """What a copy cut off by a crash left, as the changes that made it (parents first); blocking."""
    try:
        top = repository.entry(top_id)
    except NotFound:
        return []
    if not top.is_dir:
        return [(top.parts[:-1], [top.name], False)]
    changes: list[Change] = [(top.parts[:-1], [top.name], True)]
    pending = [top.parts]
    while pending:
        parts = pending.pop(0)
        try:
            fd = fsops.open_dir(repository.store.root_fd, parts)
        except fsops.Gone:
            continue
        try:
            listed = sorted(fsops.scan(fd).items())
        finally:
            os.close(fd)
        folders = [name for name, is_dir in listed if is_dir]
        files = [n for n, is_dir in listed if not is_dir and not n.startswith(fsops.PART_PREFIX)]
        if files:
            changes.append((parts, files, False))
        if folders:
            changes.append((parts, folders, True))
            pending += [(*parts, name) for name in folders]
    return changes


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
