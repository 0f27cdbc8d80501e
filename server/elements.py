"""The Elements dialect's records: element instances (credentials and webhook settings) and events
(one per asynchronous request), each ending in one webhook. No aiohttp.

An event is written in the same transaction as its operation when the operation is accepted, and its
end (status, the webhook's `response`, the delivery with its body) in the same transaction as the
operation's end: a finished asynchronous operation never lacks its webhook, not even after a crash.
Operations a crash cut off end when the server starts again; their webhooks list what the disk shows
was copied.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from . import fsops
from .config import url_problem
from .errors import BadRequest, NotFound
from .operations import Kind, Operation, Operations, Status
from .progress import Change
from .repository import Repository, set_tags
from .store import Store
from .webhooks import Deliveries, DeliveryStatus, Pending

ELEMENT_KEY = "documents"
ENABLED = "event.notification.enabled"
CALLBACK_URL = "event.notification.callback.url"
SIGNATURE_KEY = "event.notification.signature.key"
DEFAULT_INSTANCE_ID = 1
DEFAULT_INSTANCE_NAME = "sandbox"
# who the entries made through the hub are created by (the Laserfiche dialect's `creator`)
ELEMENTS_USER = "elements"
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


def check_callback_url(url: str, where: str) -> str:
    problem = url_problem(url)
    if problem:
        raise BadRequest(f"The {where} {problem}; got {url!r}.")
    return url


def _flag(value: Any) -> bool | None:
    """`event.notification.enabled` as sent: a JSON boolean, or "true"/"false"."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"The configuration key '{ENABLED}' must be true or false, got {value!r}.")


def check_configuration(configuration: dict[str, Any]) -> dict[str, Any]:
    _flag(configuration.get(ENABLED))
    for key in (CALLBACK_URL, SIGNATURE_KEY):
        value = configuration.get(key)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"The configuration key '{key}' must be a string.")
    if configuration.get(CALLBACK_URL):
        check_callback_url(configuration[CALLBACK_URL], f"configuration key '{CALLBACK_URL}'")
    return configuration


@dataclass(frozen=True)
class Instance:
    id: int
    name: str
    token: str
    configuration: dict[str, Any]
    created_ns: int

    @property
    def callback_url(self) -> str:
        """Where its asynchronous requests report, unless a request names a URL: "" for nowhere
        (none set, or notifications switched off)."""
        if _flag(self.configuration.get(ENABLED)) is False:
            return ""
        return str(self.configuration.get(CALLBACK_URL) or "")

    @property
    def signature_key(self) -> str:
        return str(self.configuration.get(SIGNATURE_KEY) or "")


class Instances:
    """Element instances, held in memory (every hub request looks its token up) and stored."""

    def __init__(self, store: Store, default_token: str, callback_url: str, signature_key: str) -> None:
        self.store = store
        self._default = (default_token, callback_url, signature_key)
        self._by_id: dict[int, Instance] = {}
        # keyed by a digest of the token: a lookup's timing tells nothing about the tokens held
        self._by_token: dict[bytes, Instance] = {}

    def load(self) -> None:
        """Read the instances, the default one as the settings make it; blocking."""
        token, callback_url, signature_key = self._default
        configuration = {
            ENABLED: bool(callback_url),
            CALLBACK_URL: callback_url,
            SIGNATURE_KEY: signature_key,
        }
        with self.store.transaction() as conn:
            # the settings win over what a client changed last time: they are what the banner shows
            conn.execute("DELETE FROM instances WHERE token = ? AND id != ?", (token, DEFAULT_INSTANCE_ID))
            conn.execute(
                "INSERT INTO instances (id, name, token, configuration, created_ns)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " token = excluded.token, configuration = excluded.configuration",
                (DEFAULT_INSTANCE_ID, DEFAULT_INSTANCE_NAME, token, _dumps(configuration), time.time_ns()),
            )
            rows = conn.execute("SELECT id, name, token, configuration, created_ns FROM instances").fetchall()
        for instance_id, name, token, configuration, created_ns in rows:
            self._keep(Instance(instance_id, name, token, orjson.loads(configuration), created_ns))

    def by_token(self, token: str) -> Instance | None:
        return self._by_token.get(_digest(token))

    def get(self, instance_id: int) -> Instance:
        found = self._by_id.get(instance_id)
        if found is None:
            raise NotFound(f"No instance with id {instance_id}.", title="Instance not found.")
        return found

    def all(self) -> list[Instance]:
        return sorted(self._by_id.values(), key=lambda i: i.id)

    def create(self, name: str, configuration: dict[str, Any]) -> Instance:
        """A new instance with a new token; blocking."""
        token, now = secrets.token_urlsafe(24), time.time_ns()
        with self.store.lock:
            cursor = self.store.conn.execute(
                "INSERT INTO instances (name, token, configuration, created_ns) VALUES (?, ?, ?, ?)",
                (name, token, _dumps(configuration), now),
            )
        assert cursor.lastrowid is not None
        return self._keep(Instance(cursor.lastrowid, name, token, configuration, now))

    def update(self, instance_id: int, name: str | None, configuration: dict[str, Any] | None) -> Instance:
        """Rename and/or merge configuration keys into an instance; blocking. Reading, writing and
        keeping happen under the store's lock, so concurrent changes neither undo a delete nor
        lose each other's keys."""
        with self.store.lock:
            old = self.get(instance_id)
            merged = old.configuration | (configuration or {})
            new = Instance(old.id, old.name if name is None else name, old.token, merged, old.created_ns)
            self.store.conn.execute(
                "UPDATE instances SET name = ?, configuration = ? WHERE id = ?",
                (new.name, _dumps(merged), new.id),
            )
            return self._keep(new)

    def delete(self, instance_id: int) -> None:
        """Remove an instance: its token stops working, its events stay readable; blocking."""
        with self.store.lock:
            old = self.get(instance_id)
            if old.id == DEFAULT_INSTANCE_ID:
                raise BadRequest(
                    "The default instance comes from the server's settings (--elements-token, "
                    "--callback-url, --signature-key) and cannot be deleted."
                )
            self.store.conn.execute("DELETE FROM instances WHERE id = ?", (old.id,))
            del self._by_id[old.id]
            del self._by_token[_digest(old.token)]

    def _keep(self, instance: Instance) -> Instance:
        self._by_id[instance.id] = instance
        self._by_token[_digest(instance.token)] = instance
        return instance


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


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


@dataclass
class EventHook:
    """An asynchronous request's event, recorded beside its operation (operations.Hook)."""

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
            set_tags(conn, op.entry_id, self.tags)  # (nothing if the copy was deleted meanwhile)
        self.pending = self.events.record_end(conn, self.event_id, *outcome(op), op.progress.changes)


class Events:
    def __init__(self, repository: Repository, operations: Operations, deliveries: Deliveries) -> None:
        self.store = repository.store
        self.repository = repository
        self.operations = operations
        self.deliveries = deliveries
        self._watchers: set[asyncio.Task[None]] = set()

    # ---- life --------------------------------------------------------------------------

    async def open(self) -> None:
        """End the events whose operations a stop cut off (the operations are Failed by now), and
        drop those delivered more than a day ago."""
        for pending in await asyncio.to_thread(self._recover):
            self.deliveries.schedule(pending)

    async def close(self) -> None:
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)

    def watch(self, op: Operation, hook: EventHook) -> None:
        """Send the webhook once the operation's end is stored."""

        async def deliver_when_ended() -> None:
            await op.ended.wait()
            if hook.pending is not None:
                self.deliveries.schedule(hook.pending)

        task = asyncio.create_task(deliver_when_ended(), name=f"event-{hook.event_id}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    # ---- ending (blocking, inside the operation's transaction) ---------------------------

    def record_end(
        self,
        conn: sqlite3.Connection,
        event_id: int,
        status: EventStatus,
        error: dict[str, Any] | None,
        changes: list[Change],
    ) -> Pending:
        """Store how the event ended and the webhook that says so; the delivery to schedule."""
        instance_id, url, key, session_id = conn.execute(
            "SELECT instance_id, callback_url, signature_key, session_id FROM events WHERE id = ?",
            (event_id,),
        ).fetchone()
        response: dict[str, Any] = {"events": event_objects(changes)}
        if error is not None:
            response["error"] = error
        now = time.time_ns()
        conn.execute(
            "UPDATE events SET status = ?, response = ?, updated_ns = ? WHERE id = ?",
            (status.value, _dumps(response), now, event_id),
        )
        cursor = conn.execute(
            "INSERT INTO deliveries (event_id, url, signature_key, body, status, next_ns, created_ns)"
            " VALUES (?, ?, ?, x'', ?, ?, ?)",
            (event_id, url, key, DeliveryStatus.PENDING.value, now, now),
        )
        notification_id = cursor.lastrowid
        assert notification_id is not None
        webhook = {"eventId": event_id, "instanceId": instance_id, "response": response}
        body = orjson.dumps(webhook | {"notificationId": notification_id})
        conn.execute("UPDATE deliveries SET body = ? WHERE notification_id = ?", (body, notification_id))
        return Pending(notification_id, url, key, body, 0, now, 0, event_id, instance_id, session_id)

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
                scheduled.append(self.record_end(conn, event_id, status, error, changes))
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
            listed = sorted(fsops.scan(fd, None).items())
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
