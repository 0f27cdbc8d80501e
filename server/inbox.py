"""The webhook inbox: named inboxes that record whatever is posted to them, so that a webhook can be
watched with no receiver of one's own (`Elements-Async-Callback-URL: …/sandbox/inbox/demo`).

Each delivery keeps its headers and body as they arrived, and the verdict of both signature schemes
the platform signs with (server.webhooks): `Elements-Webhook-Signature` (HMAC-SHA256 of the body)
and Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), checked against the
signature key of the instance the JSON body's `instanceId` names, else the default instance's.

Inboxes live in memory and are bounded: the last MAX_PER_INBOX deliveries of each, MAX_INBOXES
inboxes (the one that heard nothing for longest is dropped), and MAX_HELD_BYTES in all (the oldest
deliveries go first). Each inbox numbers its deliveries from 1, so that a reader can ask for what
came after the last one it saw; an inbox emptied (or dropped) numbers from 1 again. No aiohttp
here: `api/inbox.py` parses and renders.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hmac
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from .elements import DEFAULT_INSTANCE_ID, Instances
from .errors import NotFound
from .webhooks import SIGN_ON_LOOP_BYTES, sign, standard_signature

# deliveries kept per inbox, and inboxes kept (each bound drops the oldest first)
MAX_PER_INBOX = 1000
MAX_INBOXES = 100
# bodies and headers held in all: 100 inboxes of 1,000 bodies of 1 MiB would not fit in memory
MAX_HELD_BYTES = 64 * 1024 * 1024
# what a delivery costs besides its body and headers (its record), for the count above
RECORD_BYTES = 256
# a Standard Webhooks timestamp further than this from now fails verification, as the reference
# libraries rule (a replayed message is refused)
TIMESTAMP_TOLERANCE_S = 5 * 60
ELEMENTS_SIGNATURE = "elements-webhook-signature"
STANDARD_ID = "webhook-id"
STANDARD_TIMESTAMP = "webhook-timestamp"
STANDARD_SIGNATURE = "webhook-signature"
# a timestamp longer than this is no Unix time in seconds (and int() of it costs nothing)
MAX_TIMESTAMP_DIGITS = 12


@dataclass(frozen=True)
class Check:
    """One signature scheme's verdict: its header there or not, and whether it verified (None
    where it was not there)."""

    present: bool
    valid: bool | None


ABSENT = Check(False, None)


@dataclass(frozen=True)
class Arrival:
    """One delivery as it arrived."""

    id: int  # in its inbox
    seq: int  # in the order of all arrivals, for the bound on bytes
    name: str
    received_ns: int
    method: str
    headers: tuple[tuple[str, str], ...]  # in the order sent, names as spelled
    body: bytes
    is_json: bool
    instance_id: int | None  # the JSON body's `instanceId`, when an integer
    answered_status: int
    elements: Check
    standard: Check

    @property
    def verified(self) -> bool | None:
        """Every signature there verified (None: there was none)."""
        present = [check for check in (self.elements, self.standard) if check.present]
        if not present:
            return None
        return all(check.valid for check in present)

    @property
    def size(self) -> int:
        return RECORD_BYTES + len(self.body) + sum(len(k) + len(v) for k, v in self.headers)


@dataclass
class _Box:
    arrivals: collections.deque[Arrival] = field(default_factory=collections.deque)
    last_id: int = 0
    last_ns: int = 0


@dataclass(frozen=True)
class Summary:
    name: str
    count: int
    last_received_ns: int


class Inbox:
    def __init__(self, instances: Instances) -> None:
        self._instances = instances
        # least recently delivered to first
        self._boxes: collections.OrderedDict[str, _Box] = collections.OrderedDict()
        self._seq = itertools.count(1)
        self._held_bytes = 0
        # readers waiting for something new, by inbox name
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._closed = False

    # ---- recording --------------------------------------------------------------------------

    async def receive(
        self, name: str, method: str, headers: Iterable[tuple[str, str]], body: bytes, answered_status: int
    ) -> Arrival:
        """Record a delivery to the inbox `name`, with its signatures checked; wakes its readers."""
        # (plain str: a multidict's names are a subclass, which JSON encoders refuse as keys)
        headers = tuple((str(name), str(value)) for name, value in headers)
        examine = functools.partial(self._examine, headers, body, int(time.time()))
        # parsing and two HMACs over a body of a megabyte take milliseconds: not on the event loop
        found = examine() if len(body) < SIGN_ON_LOOP_BYTES else await asyncio.to_thread(examine)
        is_json, instance_id, elements, standard = found
        box = self._box(name)
        box.last_id += 1
        arrival = Arrival(
            box.last_id,
            next(self._seq),
            name,
            time.time_ns(),
            method,
            headers,
            body,
            is_json,
            instance_id,
            answered_status,
            elements,
            standard,
        )
        self._keep(box, arrival)
        for waiter in self._waiters.get(name, ()):
            if not waiter.done():
                waiter.set_result(None)
        return arrival

    def _examine(
        self, headers: tuple[tuple[str, str], ...], body: bytes, now_s: int
    ) -> tuple[bool, int | None, Check, Check]:
        """Whether the body is JSON, the instance it names, and both schemes' verdicts."""
        try:
            parsed = orjson.loads(body)
            is_json = True
        except orjson.JSONDecodeError:
            parsed, is_json = None, False
        named = parsed.get("instanceId") if isinstance(parsed, dict) else None
        instance_id = named if isinstance(named, int) and not isinstance(named, bool) else None
        key = self._key_of(instance_id)
        first: dict[str, str] = {}
        for header, value in headers:
            first.setdefault(header.lower(), value)
        elements, standard = _elements_check(first, key, body), _standard_check(first, key, body, now_s)
        return is_json, instance_id, elements, standard

    def _key_of(self, instance_id: int | None) -> str:
        """The signature key of the instance (the default one for None); "" for an instance that
        does not exist (nothing then verifies)."""
        # (a lookup in a dict the loop keeps: safe from the thread a large body is examined on)
        try:
            instance = self._instances.get(DEFAULT_INSTANCE_ID if instance_id is None else instance_id)
        except NotFound:
            return ""
        return instance.signature_key

    def _box(self, name: str) -> _Box:
        """The inbox `name`, made if new (dropping the one that heard nothing for longest, if there
        are as many as there may be), and moved to the end of the order of their last delivery."""
        box = self._boxes.get(name)
        if box is None:
            if len(self._boxes) >= MAX_INBOXES:
                _, dropped = self._boxes.popitem(last=False)
                self._held_bytes -= sum(a.size for a in dropped.arrivals)
            box = self._boxes[name] = _Box()
        self._boxes.move_to_end(name)
        return box

    def _keep(self, box: _Box, arrival: Arrival) -> None:
        box.arrivals.append(arrival)
        box.last_ns = arrival.received_ns
        self._held_bytes += arrival.size
        if len(box.arrivals) > MAX_PER_INBOX:
            self._held_bytes -= box.arrivals.popleft().size
        while self._held_bytes > MAX_HELD_BYTES:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Drop the oldest delivery of all (its inbox numbers on, even if that leaves it empty)."""
        box = min((box for box in self._boxes.values() if box.arrivals), key=lambda box: box.arrivals[0].seq)
        self._held_bytes -= box.arrivals.popleft().size

    # ---- reading ----------------------------------------------------------------------------

    def listing(self, name: str, after: int = 0) -> list[Arrival]:
        """The inbox's deliveries with an id over `after`, oldest first (none for an unknown inbox)."""
        box = self._boxes.get(name)
        if box is None:
            return []
        return [arrival for arrival in box.arrivals if arrival.id > after]

    async def wait(self, name: str, after: int, timeout_s: float) -> list[Arrival]:
        """`listing(name, after)`, once it has something or `timeout_s` has passed (or the server
        is stopping)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        found = self.listing(name, after)
        while not found and not self._closed and (remaining := deadline - loop.time()) > 0:
            waiter = loop.create_future()
            waiters = self._waiters.setdefault(name, set())
            waiters.add(waiter)
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await waiter
            finally:
                waiters.discard(waiter)
                if not waiters and self._waiters.get(name) is waiters:
                    del self._waiters[name]
            found = self.listing(name, after)
        return found

    def inboxes(self) -> list[Summary]:
        """Every inbox that holds something, least recently delivered to first."""
        return [
            Summary(name, len(box.arrivals), box.last_ns) for name, box in self._boxes.items() if box.arrivals
        ]

    # ---- emptying -----------------------------------------------------------------------------

    def empty(self, name: str) -> None:
        box = self._boxes.pop(name, None)
        if box is not None:
            self._held_bytes -= sum(a.size for a in box.arrivals)

    def clear(self) -> None:
        """Empty every inbox (the sandbox's reset)."""
        self._boxes.clear()
        self._held_bytes = 0

    def close(self) -> None:
        """The server is stopping: readers that wait answer now with what they have."""
        self._closed = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    @property
    def held_bytes(self) -> int:
        return self._held_bytes


def _elements_check(headers: dict[str, str], key: str, body: bytes) -> Check:
    value = headers.get(ELEMENTS_SIGNATURE)
    if value is None:
        return ABSENT
    return Check(True, bool(key) and _same(value.strip(), sign(key, body)))


def _standard_check(headers: dict[str, str], key: str, body: bytes, now_s: int) -> Check:
    """Standard Webhooks: any `v1,<base64>` of the space-separated list over "id.timestamp.body",
    with a timestamp within the tolerance of now."""
    signatures = headers.get(STANDARD_SIGNATURE)
    if signatures is None:
        return ABSENT
    message_id = headers.get(STANDARD_ID, "")
    stamp = headers.get(STANDARD_TIMESTAMP, "").strip()
    readable = stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_TIMESTAMP_DIGITS
    if not (key and message_id and readable):
        return Check(True, False)
    timestamp = int(stamp)
    if abs(now_s - timestamp) > TIMESTAMP_TOLERANCE_S:
        return Check(True, False)
    expected = standard_signature(key, message_id, timestamp, body)
    return Check(True, any(_same(candidate, expected) for candidate in signatures.split()))


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison (headers may hold any bytes: compared as bytes, not ASCII text)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
