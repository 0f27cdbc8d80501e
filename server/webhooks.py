"""Webhooks: signing, and delivery with retries that survive a restart.

A delivery is created (with its body, fixed for good) in the same transaction that records the end of
its operation, so a finished asynchronous operation always has one. Here it is sent: any 2xx is
success; otherwise (refused, timed out, any other status) it is tried again after `backoff_s`, then
twice that, and so on, `retries` times; after the last failure it is `queued` until redelivered.
Every attempt is stored as it ends, and the next attempt's time with it, so a restarted server goes on
where the last one stopped. Attempts run side by side on one shared client session, each bounded by
its own timeout: a receiver that hangs delays nothing but its own webhook.

Signatures (where the instance has a signature key): `Elements-Webhook-Signature: sha256=<base64
HMAC-SHA256(key, body)>` as the platform sends it, and the Standard Webhooks headers (`webhook-id`,
`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import heapq
import hmac
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .commits import GroupCommit
from .store import Store

log = logging.getLogger("server.webhooks")

# attempts under way at once, and to one receiver (scheme, host and port): a receiver that hangs
# fills its own places, never those of the others (each attempt holds a connection)
MAX_IN_FLIGHT = 256
MAX_IN_FLIGHT_PER_RECEIVER = 16
# a clean stop waits this long for attempts under way, so that they are recorded, not sent twice
CLOSE_GRACE_S = 3.0
# a store busy past its own timeout is asked again after these pauses before an attempt is let go
RECORD_RETRY_S = (0.5, 1.0, 2.0, 4.0)
# the number of a delivery's last attempt (0: none yet), in a query over `deliveries d`
LAST_ATTEMPT = "(SELECT IFNULL(MAX(number), 0) FROM attempts a WHERE a.notification_id = d.notification_id)"
# a webhook body larger than this is signed in a thread
SIGN_ON_LOOP_BYTES = 64 * 1024
# threads that look up receivers' names (never the event loop's default executor)
RESOLVER_THREADS = 2
# a receiver's answer is read up to this much, for the attempt's record
MAX_REASON = 200
USER_AGENT = "document-ops-sandbox-webhooks"
# an attempt a sandbox fault failed (see Deliveries.intercept): recorded, never sent
INJECTED = "failed by a sandbox fault with {status}; not sent"


def sign(key: str, body: bytes) -> str:
    """The `Elements-Webhook-Signature` value: sha256=<base64 of HMAC-SHA256(key, body)>."""
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def standard_signature(key: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` value (v1) over "id.timestamp.body"."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(notification_id: int, key: str, body: bytes, now_s: int) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Elements-Webhook-Id": str(notification_id),
    }
    if key:
        message_id = str(notification_id)
        headers |= {
            "Elements-Webhook-Signature": sign(key, body),
            "webhook-id": message_id,
            "webhook-timestamp": str(now_s),
            "webhook-signature": standard_signature(key, message_id, now_s, body),
        }
    return headers


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERING = "delivering"  # an attempt is under way (never stored)
    DELIVERED = "delivered"
    QUEUED = "queued"  # every attempt failed; waits to be redelivered


@dataclass(frozen=True)
class Attempt:
    number: int
    started_ns: int
    duration_ms: float
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class Delivery:
    """A delivery as the sandbox's introspection shows it."""

    notification_id: int
    event_id: int
    instance_id: int
    url: str
    status: DeliveryStatus
    session_id: str
    attempts: list[Attempt]


@dataclass
class Pending:
    """A delivery waiting for its next attempt: what it needs to send, without a store read."""

    notification_id: int
    url: str
    signature_key: str
    body: bytes
    attempts: int  # made so far
    due_ns: int
    series_from: int = 0  # attempts made before this series (see `redeliver`)
    # whose it is: the event, its instance, and the session that made the request
    event_id: int = 0
    instance_id: int = 0
    session_id: str = ""
    # retries after a failed attempt (None: the server's --webhook-retries); 0 is the instance's
    # failure policy `queue`: queued at once
    retries: int | None = None


# what a sandbox fault makes of an attempt about to be made: the status to fail it with without
# sending it (None: send it), and how long to hold it first
Interception = tuple[int | None, float]


class Deliveries:
    def __init__(self, store: Store, *, retries: int, backoff_s: float, timeout_s: float) -> None:
        self.store = store
        # attempts' records, many to a transaction (a thousand webhooks a second each make one)
        self.commits = GroupCommit(store)
        # the sandbox's faults, asked before each attempt; and who hears of each attempt made
        self.intercept: Callable[[Pending], Interception] | None = None
        self.listeners: list[Callable[[Pending, Attempt, DeliveryStatus], None]] = []
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._due: list[tuple[int, int]] = []  # (due_ns, notification id)
        self._pending: dict[int, Pending] = {}
        self._delivering: set[int] = set()
        self._attempts: set[asyncio.Task[None]] = set()
        self._records: set[asyncio.Future[bool]] = set()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._receivers: dict[str, _Slot] = {}
        self._resolver_threads = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="webhook-dns")
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._closed = False

    # ---- life --------------------------------------------------------------------------

    async def open(self) -> None:
        """Take up the deliveries a stop left pending, and start sending."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            # the places are counted here (see MAX_IN_FLIGHT), before an attempt's clock starts;
            # names are looked up on threads of their own, so a slow DNS holds up no store call
            connector=aiohttp.TCPConnector(limit=0, resolver=_Resolver(self._resolver_threads)),
            # a receiver's cookies are none of the next receiver's business
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        for pending in await asyncio.to_thread(self._load):
            self.schedule(pending)
        self._scheduler = asyncio.create_task(self._run(), name="webhook-scheduler")

    async def close(self) -> None:
        """Stop sending: no new attempts; those under way get CLOSE_GRACE_S to end and be recorded,
        then are cut off unrecorded (the next start makes them again)."""
        self._closed = True
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        if self._attempts:
            await asyncio.wait(list(self._attempts), timeout=CLOSE_GRACE_S)
        for task in self._attempts:
            task.cancel()
        await asyncio.gather(*self._attempts, return_exceptions=True)
        await asyncio.gather(*self._records, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self._resolver_threads.shutdown(wait=False, cancel_futures=True)

    # ---- scheduling (event loop only) -------------------------------------------------------

    def schedule(self, pending: Pending) -> None:
        if self._closed:
            return  # stored as pending: the next start sends it
        self._pending[pending.notification_id] = pending
        heapq.heappush(self._due, (pending.due_ns, pending.notification_id))
        self._wake.set()

    def status_of(self, notification_id: int, stored: str) -> DeliveryStatus:
        if notification_id in self._delivering:
            return DeliveryStatus.DELIVERING
        return DeliveryStatus(stored)

    @property
    def pending(self) -> int:
        """Deliveries waiting for an attempt or under way."""
        return len(self._pending) + len(self._delivering)

    def busy(self, notification_id: int) -> bool:
        return notification_id in self._pending or notification_id in self._delivering

    async def redeliver(self, notification_id: int) -> bool:
        """Send a delivered or queued webhook again, now, with retries as before (its attempts
        go on counting); False if it is neither delivered nor queued."""
        if self.busy(notification_id):
            return False
        now = time.time_ns()
        row = await asyncio.to_thread(self._restart, notification_id, now)
        if row is None:
            return False
        url, key, body, attempts, *whose = row
        self.schedule(Pending(notification_id, url, key, body, attempts, now, attempts, *whose))
        return True

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = time.time_ns()
            while self._due and self._due[0][0] <= now:
                due_ns, notification_id = heapq.heappop(self._due)
                pending = self._pending.get(notification_id)
                if pending is None or pending.due_ns != due_ns:
                    continue  # rescheduled since
                del self._pending[notification_id]
                self._delivering.add(notification_id)
                task = asyncio.create_task(self._attempt(pending))
                self._attempts.add(task)
                task.add_done_callback(self._attempts.discard)
            delay = (self._due[0][0] - now) / 1e9 if self._due else None
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that comes
            # as the wait ends, and this loop would then never stop)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    # ---- sending ------------------------------------------------------------------------

    async def _attempt(self, pending: Pending) -> None:
        retry = False
        try:
            injected, delay_s = self.intercept(pending) if self.intercept is not None else (None, 0.0)
            if delay_s:
                await asyncio.sleep(delay_s)  # the webhook arrives late (holding no place meanwhile)
            if injected is not None:
                attempt = Attempt(
                    pending.attempts + 1, time.time_ns(), 0.0, injected, INJECTED.format(status=injected)
                )
            else:
                async with self._receiver_slot(pending.url), self._slots:
                    attempt = await self._post(pending)
            pending.attempts = attempt.number
            delivered = attempt.status_code is not None and 200 <= attempt.status_code < 300
            tried = attempt.number - pending.series_from
            retries = self.retries if pending.retries is None else pending.retries
            retry = not delivered and tried <= retries
            if delivered:
                status = DeliveryStatus.DELIVERED
            else:
                status = DeliveryStatus.PENDING if retry else DeliveryStatus.QUEUED
            if retry:
                # the first retry after backoff_s, then doubling (the platform's 8^n, made settable)
                pending.due_ns = time.time_ns() + int(self.backoff_s * 2 ** (tried - 1) * 1e9)
            # what was sent is recorded even if a stop cancels this task meanwhile (see close)
            record = asyncio.ensure_future(self._record_persistently(pending, attempt, status))
            self._records.add(record)
            record.add_done_callback(self._records.discard)
            if not await asyncio.shield(record):
                retry = False  # not recorded: it stays pending in the store, for the next start
            for listener in self.listeners:
                try:
                    listener(pending, attempt, status)
                except Exception:
                    log.exception("a listener failed on webhook %d", pending.notification_id)
            if not delivered:
                log.info(
                    "webhook %d attempt %d failed (%s)%s",
                    pending.notification_id,
                    attempt.number,
                    (attempt.error or str(attempt.status_code)).replace(pending.url, "<callback URL>"),
                    "" if retry or status is DeliveryStatus.PENDING else "; queued for redelivery",
                )
        finally:
            self._delivering.discard(pending.notification_id)
        if retry:
            self.schedule(pending)

    @contextlib.asynccontextmanager
    async def _receiver_slot(self, url: str) -> AsyncIterator[None]:
        """One of the receiver's places (see MAX_IN_FLIGHT_PER_RECEIVER), kept only while used."""
        receiver = _receiver(url)
        slot = self._receivers.get(receiver)
        if slot is None:
            slot = self._receivers[receiver] = _Slot(asyncio.Semaphore(MAX_IN_FLIGHT_PER_RECEIVER))
        slot.users += 1
        try:
            async with slot.places:
                yield
        finally:
            slot.users -= 1
            if not slot.users:
                del self._receivers[receiver]

    async def _post(self, pending: Pending) -> Attempt:
        assert self._session is not None
        number = pending.attempts + 1
        started_ns = time.time_ns()
        clock = time.monotonic()
        sign = functools.partial(
            headers_for, pending.notification_id, pending.signature_key, pending.body, started_ns // 10**9
        )
        # two HMACs over a body of megabytes take milliseconds: not on the event loop
        headers = sign() if len(pending.body) < SIGN_ON_LOOP_BYTES else await asyncio.to_thread(sign)
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(
                pending.url, data=pending.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                if not 200 <= status < 300:
                    error = f"the receiver answered {status} {response.reason or ''}".rstrip()
        except TimeoutError:
            error = f"no answer within {self.timeout_s:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = f"could not be sent: {exc or type(exc).__name__}"[:MAX_REASON]
        return Attempt(number, started_ns, (time.monotonic() - clock) * 1000, status, error)

    async def _record_persistently(self, pending: Pending, attempt: Attempt, status: DeliveryStatus) -> bool:
        """Store an attempt, trying again while the store is busy: a delivered webhook is never
        sent again because its record failed once. False if it could not be stored at all."""
        for wait_s in RECORD_RETRY_S:
            try:
                await self.commits.write(functools.partial(self._record, pending, attempt, status))
                return True
            except Exception:
                log.exception("webhook %d: attempt %d not recorded", pending.notification_id, attempt.number)
                await asyncio.sleep(wait_s)
        return False

    # ---- the store (blocking: from a thread) ------------------------------------------------

    def _load(self) -> list[Pending]:
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT d.notification_id, d.url, d.signature_key, d.body, {LAST_ATTEMPT},"
                " d.next_ns, d.series_from, d.event_id, e.instance_id, e.session_id, d.retries"
                " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.status = ?",
                (DeliveryStatus.PENDING.value,),
            ).fetchall()
        return [Pending(nid, url, key, bytes(body), *rest) for nid, url, key, body, *rest in rows]

    def _record(
        self, pending: Pending, attempt: Attempt, status: DeliveryStatus, conn: sqlite3.Connection
    ) -> None:
        """An attempt's record, in the open transaction (beside other writes: see GroupCommit)."""
        conn.execute(
            "INSERT INTO attempts (notification_id, number, started_ns, duration_ms, status_code, error)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                pending.notification_id,
                attempt.number,
                attempt.started_ns,
                attempt.duration_ms,
                attempt.status_code,
                attempt.error,
            ),
        )
        conn.execute(
            "UPDATE deliveries SET status = ?, next_ns = ? WHERE notification_id = ?",
            (
                status.value,
                pending.due_ns if status is DeliveryStatus.PENDING else 0,
                pending.notification_id,
            ),
        )

    def _restart(self, notification_id: int, now: int) -> tuple[Any, ...] | None:
        """Make a delivered or queued delivery pending again: (url, key, body, attempts, event id,
        instance id, session id, retries), or None if it is neither."""
        with self.store.transaction() as conn:
            row = conn.execute(
                f"SELECT d.url, d.signature_key, d.body, {LAST_ATTEMPT}, d.event_id, e.instance_id,"
                " e.session_id, d.retries FROM deliveries d JOIN events e ON e.id = d.event_id"
                " WHERE d.notification_id = ? AND d.status IN (?, ?)",
                (notification_id, DeliveryStatus.DELIVERED.value, DeliveryStatus.QUEUED.value),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE deliveries SET status = ?, next_ns = ?, series_from = ? WHERE notification_id = ?",
                (DeliveryStatus.PENDING.value, now, row[3], notification_id),
            )
        url, key, body, *rest = row
        return (url, key, bytes(body), *rest)

    def listing(
        self,
        event_id: int | None,
        status: str | None,
        limit: int,
        instance_id: int | None = None,
        notification_id: int | None = None,
    ) -> list[Delivery]:
        """The latest deliveries (of one event, in one status, of one instance, by id), newest
        first, with their attempts; blocking."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("d.event_id", event_id),
            ("e.instance_id", instance_id),
            ("d.notification_id", notification_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if status == DeliveryStatus.DELIVERING:
            # (those under way are known here, not in the store)
            delivering = list(self._delivering)
            if not delivering:
                return []
            where.append(f"d.notification_id IN ({','.join('?' * len(delivering))})")
            args.extend(delivering)
        elif status is not None:
            where.append("d.status = ?")
            args.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT d.notification_id, d.event_id, e.instance_id, d.url, d.status, e.session_id"
                f" FROM deliveries d JOIN events e ON e.id = d.event_id {clause}"
                " ORDER BY d.notification_id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        attempts = self.attempts_of([row[0] for row in rows])
        found = [
            Delivery(nid, event, instance, url, self.status_of(nid, stored), session, attempts[nid])
            for nid, event, instance, url, stored, session in rows
        ]
        return [d for d in found if status is None or d.status == status]

    def sent(self, notification_id: int) -> tuple[bytes, str] | None:
        """What a delivery's attempts are made from: its body and its instance's signature key
        (each attempt's headers are `headers_for` them at its start); blocking."""
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT body, signature_key FROM deliveries WHERE notification_id = ?", (notification_id,)
            ).fetchone()
        return None if row is None else (bytes(row[0]), str(row[1] or ""))

    def attempts_of(self, notification_ids: list[int]) -> dict[int, list[Attempt]]:
        """The recorded attempts of some deliveries; blocking."""
        found: dict[int, list[Attempt]] = {nid: [] for nid in notification_ids}
        if not notification_ids:
            return found
        marks = ",".join("?" * len(notification_ids))
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT notification_id, number, started_ns, duration_ms, status_code, error FROM attempts"
                f" WHERE notification_id IN ({marks}) ORDER BY notification_id, number",
                notification_ids,
            ).fetchall()
        for nid, *rest in rows:
            found[nid].append(Attempt(*rest))
        return found


@dataclass
class _Slot:
    places: asyncio.Semaphore
    users: int = 0  # attempts holding or waiting for a place


def _receiver(url: str) -> str:
    """What counts as one receiver: scheme, host and port (the URL itself if it has none)."""
    try:
        return str(URL(url).origin())
    except ValueError:
        return url


class _Resolver(AbstractResolver):
    """getaddrinfo on an executor of its own (aiohttp's ThreadedResolver uses the loop's default
    one, which the server's store calls share)."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        lookup = functools.partial(
            socket.getaddrinfo, host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
        )
        infos = await asyncio.get_running_loop().run_in_executor(self._executor, lookup)
        numeric = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host=str(address[0]),
                port=int(address[1]),
                family=found,
                proto=proto,
                flags=numeric,
            )
            for found, _, proto, _, address in infos
            if found in (socket.AF_INET, socket.AF_INET6)
        ]

    async def close(self) -> None:
        pass
