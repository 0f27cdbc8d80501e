"""`python -m server`: parse flags, start the app, print how to call it, stop cleanly on a signal."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from aiohttp import web

from . import ephemeral
from .api.common import AccessLogger, MalformedRequests
from .api.connections import HeaderTimeoutRunner
from .app import create_app
from .cli import PROG, settings_from_args
from .config import (
    ELEMENTS_ORG_SECRET,
    ELEMENTS_TOKEN,
    ELEMENTS_USER_SECRET,
    SIGNATURE_KEY,
    Settings,
)
from .metadata.catalog import CatalogError
from .store import StoreUnusable

SHUTDOWN_TIMEOUT_S = 5.0
# how long a thread may hold the GIL while another waits for it (Python's default is 5 ms): the
# event loop answers polls while copy threads record batches, and must not wait a whole 5 ms each time
GIL_SWITCH_INTERVAL_S = 0.0005
# the young objects the collector lets pile up before it looks (Python's default is 700): a request
# makes and drops hundreds, and each collection, whichever thread's allocations set it off, holds
# the GIL throughout, stalling the event loop
GC_YOUNG_THRESHOLD = 10_000


def _shown(value: str, default: str, placeholder: str) -> str:
    """A credential for the banner: the sandbox's public default as it is, one of the user's own
    as a placeholder (stdout ends up in CI logs)."""
    return value if value == default else placeholder


def banner(settings: Settings, base: str) -> str:
    user, password = settings.users[0]
    password = _shown(f"{user}:{password}", "admin:admin", "<password>").rpartition(":")[2]
    user_secret = _shown(settings.elements_user_secret, ELEMENTS_USER_SECRET, "<user secret>")
    org_secret = _shown(settings.elements_org_secret, ELEMENTS_ORG_SECRET, "<organization secret>")
    token = _shown(settings.elements_token, ELEMENTS_TOKEN, "<element token>")
    key = _shown(settings.signature_key, SIGNATURE_KEY, "(as set by --signature-key)")
    repo = settings.repository_id
    # the curl line's webhook goes where the instance says, else to a URL the user fills in
    callback = settings.callback_url or "http://127.0.0.1:9000/webhook"
    return "\n".join(
        [
            "Document sandbox ready",
            f"  base URL:      {base}",
            f"  repository:    {repo}  (storage root: {settings.storage_root.resolve()})",
            *(
                ["  ephemeral:     a temporary copy of the storage root, removed on exit"]
                if settings.ephemeral
                else []
            ),
            f"  sign in:       curl -s -X POST {base}/v1/Repositories/{repo}/Token "
            f"-d grant_type=password -d username={user} -d password={password}",
            f"  then:          curl -s -H 'Authorization: Bearer <access_token>' "
            f"{base}/v1/Repositories/{repo}/Entries/1/Laserfiche.Repository.Folder/children",
            "",
            "  Elements documents hub (asynchronous requests, signed webhooks):",
            f"    User secret:   {user_secret}",
            f"    Organization:  {org_secret}",
            f"    Element token: {token}",
            f"    callback URL:  {settings.callback_url or '(none: send Elements-Async-Callback-URL)'}",
            f"    signature key: {key if settings.signature_key else '(none: webhooks unsigned)'}",
            f"    webhooks:      {settings.webhook_retries} retries, first after "
            f"{settings.webhook_backoff_s:g} s, doubling; {settings.webhook_timeout_s:g} s per attempt",
            f"    copy a folder: curl -s -X POST '{base}/elements/api-v2/hubs/documents/folders/copy"
            "?path=/TestFolderCreate' "
            f"-H 'Authorization: User {user_secret}, Element {token}' "
            f"-H 'Elements-Async-Request: True' -H 'Elements-Async-Callback-URL: {callback}' "
            """-H 'Content-Type: application/json' -d '{"path": "/TestFolderCopy"}'""",
            "",
            f"  dashboard:     {base}/  (sign in as {user}; --pace-ms 200 slows copies enough to watch)",
            f"  API described: {base}/openapi.json",
            "",
        ]
    )


class CannotStart(Exception):
    """The server cannot start as told: one line saying why (and the exit status)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def serve(settings: Settings) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        runner = HeaderTimeoutRunner(
            create_app(settings),
            header_timeout_s=settings.header_timeout_s,
            keepalive_timeout=settings.keepalive_timeout_s,
            access_log_class=AccessLogger,
            handle_signals=False,
            # requests still open this long after a signal are cut off (operations stop at once)
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        _settle_heap()
    except (StoreUnusable, CatalogError) as exc:
        raise CannotStart(str(exc), 2) from exc
    except OSError as exc:
        raise CannotStart(f"--storage-root {settings.storage_root}: {exc.strerror or exc}", 2) from exc
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            raise CannotStart(cannot_listen(settings, exc), 1) from exc
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set():
                # a second Ctrl-C: the user will not wait for a clean stop
                logging.getLogger("server").warning("second signal: exiting at once")
                if settings.ephemeral:
                    ephemeral.remove(settings.storage_root)
                os._exit(130)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        # (only now: a client that reads the base URL and at once sends SIGTERM gets a clean stop)
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        print(banner(settings, f"http://{host}:{port}"), flush=True)
        await stop.wait()
        logging.getLogger("server").info("signal received, shutting down")
    finally:
        await runner.cleanup()


def _settle_heap() -> None:
    """What starting made (modules, routes, the catalog, the stored sessions) lives as long as the
    server: frozen out of the collector's sight, so that a full collection during a copy walks only
    what was made since (a pause of tens of milliseconds for every request under way otherwise)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def cannot_listen(settings: Settings, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"--port {settings.port}: already in use on {settings.host} (--port 0 picks a free one)"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {settings.host}: not an address of this machine ({exc.strerror or exc})"
    return f"cannot listen on {settings.host}:{settings.port} (--host, --port): {exc.strerror or exc}"


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_from_args(argv)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(settings.log_level)
    logging.getLogger("aiohttp.server").addFilter(MalformedRequests())
    try:
        with ephemeral.served(settings) as served:
            asyncio.run(serve(served))
    except ephemeral.CopyFailed as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except CannotStart as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
