"""Connections that cannot hold a descriptor forever: a client that sends no complete request
headers within a timeout is disconnected.

aiohttp closes a connection idle between requests after its `keepalive_timeout` (a handler
keyword of the runner), but has no timeout on reading the headers of a request once it has begun:
half a request line, or headers a byte a minute, would hold the connection open as long as the
client likes. `HeaderTimeoutRunner` is aiohttp's AppRunner whose connections add that timeout. It
runs only while the connection waits for a request: a request whose headers arrived (a slow upload,
a long poll, a long download, an event stream) is never cut off by it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("server")


class HeaderTimeoutHandler(RequestHandler):
    """aiohttp's protocol for one connection, closed when a request's headers are not complete
    `header_timeout_s` after the connection opened or after the request's first byte arrived."""

    __slots__ = ("_header_deadline", "_header_timeout_s", "_requests_at_deadline")

    def __init__(self, manager: web.Server, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_deadline: asyncio.TimerHandle | None = None
        self._requests_at_deadline = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        requests = self._request_count
        super().data_received(data)
        if self._request_count > requests:
            # a request's headers are complete: its handler runs with no deadline of ours
            self._disarm()
        elif data and self._header_deadline is None and self._waiting_for_request():
            # the first bytes of the next request on a kept-alive connection
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_request(self) -> bool:
        # (no handler is running: the connection waits for a request, as aiohttp's own keep-alive
        # check tells it, `_process_keepalive`)
        return self._waiter is not None and not self._waiter.done()

    def _arm(self) -> None:
        self._requests_at_deadline = self._request_count
        self._header_deadline = self._loop.call_later(self._header_timeout_s, self._on_deadline)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _on_deadline(self) -> None:
        self._header_deadline = None
        if self._request_count == self._requests_at_deadline and self.transport is not None:
            log.info(
                "closed a connection from %s: no complete request headers within %g s",
                self.peername,
                self._header_timeout_s,
            )
            self.force_close()


class HeaderTimeoutServer(web.Server):
    """aiohttp's low-level server, making a HeaderTimeoutHandler for each connection."""

    def __init__(self, made: web.Server, header_timeout_s: float) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )
        self.header_timeout_s = header_timeout_s

    def __call__(self) -> RequestHandler:
        return HeaderTimeoutHandler(
            self, loop=self._loop, header_timeout_s=self.header_timeout_s, **self._kwargs
        )


class HeaderTimeoutRunner(web.AppRunner):
    """An AppRunner whose connections time out reading request headers (the other keywords are
    AppRunner's and its handlers': keepalive_timeout closes connections idle between requests)."""

    def __init__(self, app: web.Application, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout_s = header_timeout_s

    async def _make_server(self) -> web.Server:
        return HeaderTimeoutServer(await super()._make_server(), self._header_timeout_s)
