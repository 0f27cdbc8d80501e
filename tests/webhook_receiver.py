"""Helpers for the Elements dialect's webhook tests: a real webhook receiver (an aiohttp server on
127.0.0.1 that records what it is sent and answers as told), the Elements authorization headers,
and polling with a deadline.

The receiver can answer an error status to its first N requests, hang (hold the request open
until it is stopped), or not run at all: `closed_port()` gives a port nobody listens on, and
`Receiver.start(port)` can bring a receiver up on it later.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from multidict import CIMultiDict

ELEMENTS = "/elements/api-v2"
HUB = ELEMENTS + "/hubs/documents"

USER_SECRET = "test-user-secret"
ORG_SECRET = "test-org-secret"
ELEMENT_TOKEN = "test-element-token"

# Settings overrides (server.config.Settings fields) that every in-process test starts from
ELEMENTS_SETTINGS: dict[str, Any] = {
    "elements_user_secret": USER_SECRET,
    "elements_org_secret": ORG_SECRET,
    "elements_token": ELEMENT_TOKEN,
}


def hub_auth(element_token: str = ELEMENT_TOKEN, user: str = USER_SECRET) -> dict[str, str]:
    """Authorization for documents-hub routes: User + Element."""
    return {"Authorization": f"User {user}, Element {element_token}"}


def platform_auth(org: str = ORG_SECRET, user: str = USER_SECRET) -> dict[str, str]:
    """Authorization for platform routes (instances, events): User + Organization."""
    return {"Authorization": f"User {user}, Organization {org}"}


def elements_signature(key: str, body: bytes) -> str:
    """The `Elements-Webhook-Signature` value, computed independently of the server."""
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (a connection to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


T = TypeVar("T")


async def wait_for(
    check: Callable[[], Awaitable[T] | T], what: str, timeout: float = 5.0, interval: float = 0.02
) -> T:
    """Call `check` (sync or async) until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        last = result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes
    at: float  # time.monotonic() when it arrived
    answered: int | None = None  # the status it was answered with (None: never answered)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        return self.answered is not None and 200 <= self.answered < 300


class Receiver:
    """A webhook receiver on 127.0.0.1.

    fail_first: answer `fail_status` to this many requests, then `ok_status`.
    hang: hold each request open (no answer) until `release()` or `stop()`.
    """

    def __init__(
        self, *, fail_first: int = 0, fail_status: int = 500, ok_status: int = 200, hang: bool = False
    ) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.ok_status = ok_status
        self.hang = hang
        self.requests: list[Received] = []
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()

    @property
    def url(self) -> str:
        assert self.port is not None, "receiver has no port yet"
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def delivered(self) -> list[Received]:
        """Requests answered with a 2xx."""
        return [r for r in self.requests if r.ok]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        rec = Received(request.method, request.path_qs, CIMultiDict(request.headers), body, time.monotonic())
        self.requests.append(rec)
        if self.hang:
            # never answered as far as the sender is concerned: it gave up (timed out) long before
            await self._released.wait()
            return web.Response(status=self.ok_status)
        status = self.fail_status if len(self.requests) <= self.fail_first else self.ok_status
        rec.answered = status
        return web.Response(status=status, text="failing on purpose" if status >= 300 else "ok")

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    def release(self) -> None:
        """Let hanging requests end (answered `ok_status`, if their client still listens)."""
        self.hang = False
        self._released.set()

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def wait_requests(self, n: int, timeout: float = 5.0) -> list[Received]:
        await wait_for(lambda: len(self.requests) >= n, f"{n} webhook request(s) at {self.url}", timeout)
        return self.requests

    async def wait_delivered(self, n: int = 1, timeout: float = 5.0) -> list[Received]:
        await wait_for(lambda: len(self.delivered) >= n, f"{n} delivered webhook(s) at {self.url}", timeout)
        return self.delivered
