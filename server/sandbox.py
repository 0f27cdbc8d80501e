"""The sandbox's own controls, which no public service offers: faults armed per session, and a
feed of what happens (operations' progress, webhook attempts) that clients can follow instead of
sleeping.

A fault belongs to one session and touches only that session's operations and webhooks; it is
used up after `remaining` matches. Faults live in memory: a restart clears them.

The feed numbers its messages, keeps the last `FEED_KEEP` for clients that reconnect, and hands
each subscriber its own bounded queue: a subscriber that stops reading is dropped (and can
reconnect from the last id it saw), never allowed to hold up the server.

No aiohttp here: `api/sandbox.py` parses requests into faults and renders the messages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from .errors import InjectedFailure
from .operations import Kind, Operation
from .webhooks import Interception, Pending

# messages kept for clients that reconnect with Last-Event-ID
FEED_KEEP = 1024
# messages a subscriber may fall behind by before it is dropped
SUBSCRIBER_BACKLOG = 4096


class FaultKind(StrEnum):
    OPERATION_FAILURE = "operation-failure"  # the session's next operation fails after K entries
    WEBHOOK_FAILURE = "webhook-failure"  # attempts to a URL fail without being sent
    WEBHOOK_DELAY = "webhook-delay"  # deliveries to a URL are held before being sent


@dataclass
class Fault:
    kind: FaultKind
    session_id: str
    user: str  # the session's (who may see and remove the fault)
    remaining: int  # matches before it is used up
    created_ns: int
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    # operation-failure
    after_entries: int = 0
    status: int = 500
    message: str = ""
    operation_type: Kind | None = None
    # webhook-failure and webhook-delay
    url: str = ""
    delay_ms: float = 0.0


class Faults:
    def __init__(self) -> None:
        self._armed: dict[str, Fault] = {}  # in the order they were armed

    def add(self, fault: Fault) -> None:
        self._armed[fault.id] = fault

    def get(self, fault_id: str) -> Fault | None:
        return self._armed.get(fault_id)

    def all(self) -> list[Fault]:
        return list(self._armed.values())

    def remove(self, fault_id: str) -> None:
        self._armed.pop(fault_id, None)

    def arm(self, op: Operation) -> None:
        """Operations.arm: give a newly accepted operation its session's first matching fault."""
        fault = self._first(
            FaultKind.OPERATION_FAILURE,
            op.session_id,
            lambda f: f.operation_type is None or f.operation_type is op.kind,
        )
        if fault is not None:
            op.progress.arm(fault.after_entries, InjectedFailure(fault.status, fault.message))

    def intercept(self, pending: Pending) -> Interception:
        """Deliveries.intercept: what the session's faults make of the attempt about to be made."""
        failure = self._first(FaultKind.WEBHOOK_FAILURE, pending.session_id, lambda f: f.url == pending.url)
        if failure is not None:
            return failure.status, 0.0
        delay = self._first(FaultKind.WEBHOOK_DELAY, pending.session_id, lambda f: f.url == pending.url)
        return None, delay.delay_ms / 1000 if delay is not None else 0.0

    def _first(self, kind: FaultKind, session_id: str, matches: Any) -> Fault | None:
        """The first armed fault of `kind` for the session that `matches`, used once."""
        for fault in self._armed.values():
            if fault.kind is kind and fault.session_id == session_id and matches(fault):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._armed[fault.id]
                return fault
        return None


# the user of a message every signed-in viewer sees (the webhook inbox's: any user may read it)
EVERYONE = ""


@dataclass(frozen=True)
class Message:
    id: int
    event: str  # "operation", "delivery" or "inbox"
    user: str  # whose it is: who may see it (EVERYONE: all)
    token: str  # the operation's token ("" for a delivery)
    data: bytes  # JSON


class Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self.dropped = False  # fell too far behind: its stream ends once it has read what it holds

    def offer(self, message: Message | None) -> bool:
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            return False

    async def next(self, timeout_s: float) -> Message | None:
        """The next message; None once `timeout_s` passed with none. Raises EOFError when the
        stream is over (the feed closed, or this subscriber was dropped)."""
        if self.dropped and self.queue.empty():
            raise EOFError
        message: Message | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                message = await self.queue.get()
                if message is None:
                    raise EOFError
        return message


class Feed:
    def __init__(self, keep: int = FEED_KEEP) -> None:
        self._held: collections.deque[Message] = collections.deque(maxlen=keep)
        self._ids = itertools.count(1)
        self._subscribers: set[Subscription] = set()
        self._closed = False

    def publish(self, event: str, user: str, token: str, data: dict[str, Any]) -> None:
        message = Message(next(self._ids), event, user, token, orjson.dumps(data))
        self._held.append(message)
        for subscriber in list(self._subscribers):
            if not subscriber.offer(message):
                self._subscribers.discard(subscriber)

    def subscribe(self, after: int | None = None) -> Subscription:
        """A new subscriber; with `after`, the held messages after that id come first."""
        subscriber = Subscription()
        if self._closed:
            subscriber.offer(None)
            return subscriber
        if after is not None:
            for message in self._held:
                if message.id > after:
                    subscriber.offer(message)
        self._subscribers.add(subscriber)
        return subscriber

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def unsubscribe(self, subscriber: Subscription) -> None:
        self._subscribers.discard(subscriber)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self._closed = True
        self._end_streams()

    def restart(self) -> None:
        """End every stream and forget the messages held for clients that reconnect (a reset:
        what they told of is gone). The numbering goes on, so a client that reconnects with the
        last id it saw hears what comes next."""
        self._end_streams()
        self._held.clear()

    def _end_streams(self) -> None:
        for subscriber in self._subscribers:
            if not subscriber.offer(None):
                subscriber.dropped = True
        self._subscribers.clear()
