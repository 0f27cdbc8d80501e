"""`create_app(settings)`: wires the store, the repository, sessions and the routes together.

The services (the store and everything over it) are built by `_build` and live by LIVES: one
context each, whose code before its yield opens them and after it closes them. A reset
(server/api/reset.py) runs that same code again: it closes every service as a stop does, marks the
start state, builds the services anew under the same keys (handlers read the keys on every request)
and opens them as a start does; the store, as it opens, puts the start state back
(server/snapshot.py). Built once, outliving resets: the settings, the event feed (its streams are
HTTP connections), the start state and the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from aiohttp import web

from . import fsops
from .api import (
    bulk,
    common,
    dashboard,
    elements,
    faults,
    inbox,
    laserfiche,
    laserfiche_metadata,
    meta,
    notifications,
    reset,
    sandbox,
    v2,
)
from .api.v2 import uploads
from .config import Settings
from .elements import Events, Instances
from .elements.bulk import Jobs
from .inbox import Inbox
from .keys import (
    deliveries_key,
    events_key,
    faults_key,
    feed_key,
    inbox_key,
    instances_key,
    jobs_key,
    load_key,
    metadata_key,
    operations_key,
    repository_key,
    sessions_key,
    settings_key,
    start_key,
    store_key,
)
from .kinds import KINDS
from .metadata.catalog import Catalog
from .metadata.model import Metadata
from .metadata.reading import load_catalog
from .operations import Concurrency, Operations
from .operations.load import RequestLoad
from .repository import Repository
from .sandbox import Faults, Feed
from .sessions import Sessions
from .snapshot import StartState
from .store import Store
from .uploads import Uploads
from .webhooks import Deliveries

log = logging.getLogger("server")

# JSON bodies are small; documents stream through multipart and are limited separately
MAX_JSON_BODY = 1024 * 1024
# long operations' steps run on threads of their own (started as needed). A small operation's step
# is a few system calls and store writes, each waiting its turn at the GIL and the store's lock:
# more of them under way keeps the work going (1,000 one-file copies across 100 sessions: some 460
# webhooks a second with 16, 395 with 4, no more with 32; see bench/webhooks.py). A large copy
# takes two per copy worker process (Walk.width)
WORK_THREADS = 16


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            common.counted,
            common.problems_middleware,
            reset.gate,
            common.auth_middleware(settings.repository_id),
        ],
        client_max_size=MAX_JSON_BODY,
    )
    app[settings_key] = settings
    app[feed_key] = Feed()
    app[start_key] = StartState()
    app[load_key] = RequestLoad()
    app[reset.resets_key] = reset.Resets(functools.partial(_quiesce, app), functools.partial(_restart, app))
    app[lives_key] = Lives()
    # (read before anything starts: a bad catalog stops the server with where and what is wrong)
    _build(app, load_catalog(settings.catalog_path, required=settings.catalog is not None))
    app.cleanup_ctx.append(_services_ctx)
    app.on_shutdown.append(_stop_operations)
    # (after the operations stop: the event streams carry how they ended, then end)
    app.on_shutdown.append(sandbox.end_streams)
    inbox.install(app)
    app.add_routes(meta.routes)
    app.add_routes(laserfiche.status_routes)  # (first: see laserfiche.status_routes)
    app.add_routes(laserfiche.routes)
    app.add_routes(laserfiche_metadata.routes)
    app.add_routes(laserfiche_metadata.DEFINITIONS)
    v2.add_routes(app)
    app.add_routes(elements.routes)
    app.add_routes(bulk.routes)
    app.add_routes(notifications.routes)
    app.add_routes(sandbox.routes)
    app.add_routes(faults.routes)
    app.add_routes(reset.routes)
    app.add_routes(dashboard.routes)
    return app


def _build(app: web.Application, catalog: Catalog) -> None:
    """Every service over the store, built (again, by a reset) and wired together."""
    settings = app[settings_key]
    store = Store(settings.storage_root)
    repository = Repository(store)
    metadata = Metadata(repository, catalog)
    operations = Operations(
        repository,
        token_ttl_s=settings.token_ttl_s,
        concurrency=Concurrency(settings.session_concurrency),
        threads=WORK_THREADS,
        processes=settings.copy_processes,
        pace_s=settings.pace_ms / 1000,
        load=app[load_key],
    )
    operations.register(*KINDS)
    instances = Instances(store, settings.elements_token, settings.callback_url, settings.signature_key)
    deliveries = Deliveries(
        store,
        retries=settings.webhook_retries,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
    )
    events = Events(repository, metadata, operations, deliveries)
    with _changing(app):
        app[store_key] = store
        app[repository_key] = repository
        app[metadata_key] = metadata
        app[sessions_key] = Sessions(store, settings.users, settings.session_ttl_s)
        app[operations_key] = operations
        app[instances_key] = instances
        app[deliveries_key] = deliveries
        app[events_key] = events
        app[jobs_key] = Jobs(store, operations, events, deliveries)
        app[faults_key] = Faults()
        app[inbox_key] = Inbox(instances)
        app[uploads.uploads_key] = Uploads(store, settings.upload_ttl_s, settings.max_document_bytes)
    sandbox.install(app)


@contextlib.contextmanager
def _changing(app: web.Application) -> Iterator[None]:
    """Where `_build` sets the services' keys. On a running app (a reset) aiohttp warns that its
    state changes, for the sake of handlers that kept what they read: none has, as the gate holds
    every request while a reset swaps the services, and handlers read the keys on each request."""
    with warnings.catch_warnings():
        if app.frozen:
            warnings.filterwarnings("ignore", "Changing state of started", DeprecationWarning)
        yield


@dataclass
class Lives:
    """The services' contexts under way (what closes them), and the root's lock, held from a
    reset's close to its open."""

    stack: contextlib.AsyncExitStack | None = None
    lock_fd: int = -1

    async def open(self, app: web.Application) -> None:
        stack = contextlib.AsyncExitStack()
        try:
            for life in LIVES:
                await stack.enter_async_context(contextlib.asynccontextmanager(life)(app))
        except BaseException:
            await stack.aclose()
            raise
        self.stack = stack

    async def close(self) -> None:
        stack, self.stack = self.stack, None
        if stack is not None:
            await stack.aclose()


lives_key = web.AppKey("lives", Lives)


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's life: the services', and the start state kept meanwhile (in the background:
    see server/snapshot.py) and removed at the end."""
    lives, start = app[lives_key], app[start_key]
    try:
        await lives.open(app)
    except BaseException:
        start.close()
        raise
    keeping = asyncio.create_task(_keep_start(app), name="start-state")
    yield
    async with app[reset.resets_key].lock:  # (a reset under way ends first)
        start.stop()
        await asyncio.gather(keeping, return_exceptions=True)
        await lives.close()
        await asyncio.to_thread(start.discard)
        start.close()


async def _keep_start(app: web.Application) -> None:
    start, resets = app[start_key], app[reset.resets_key]
    try:
        await asyncio.to_thread(start.keep_rows, app[store_key])
        await asyncio.to_thread(start.keep_tree)
    except fsops.Stopped:
        return
    except Exception as exc:
        resets.problem = str(exc) or type(exc).__name__
        log.warning("the start state could not be kept, so resets are refused: %s", resets.problem)
    finally:
        # (writes wait for this; if keeping failed, they go on and a reset says why it cannot)
        resets.kept.set()
    await asyncio.to_thread(start.clear_trash)


async def _quiesce(app: web.Application) -> int:
    """A reset's first step (server/api/reset.py): no webhook goes out any more (so the operations
    it cuts off send none), the operations stop (so requests waiting on them answer), the event
    streams and the inbox's waiting readers end. How many operations it cut off."""
    cut_off = app[operations_key].running
    await app[deliveries_key].close()
    await app[operations_key].stop()
    app[feed_key].restart()
    app[inbox_key].close()
    return cut_off


async def _restart(app: web.Application) -> None:
    """A reset's restart, once no request is under way: every service closed as a stop closes
    them, the start state marked, the services built anew and opened as a start opens them (the
    store, opening, puts the start state back)."""
    lives = app[lives_key]
    lives.lock_fd = app[store_key].detach_lock()
    await lives.close()
    await asyncio.to_thread(app[start_key].mark)
    _build(app, app[metadata_key].catalog)
    await lives.open(app)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store, lives = app[store_key], app[lives_key]
    creator = app[settings_key].users[0][0]
    lock_fd, lives.lock_fd = lives.lock_fd, -1
    await asyncio.to_thread(store.open, creator, time.time_ns(), lock_fd)
    try:
        # a reset's restore (the one under way, or one a crash cut off) before anything reads
        await asyncio.to_thread(app[start_key].finish, store)
        await asyncio.to_thread(app[metadata_key].open)
        await asyncio.to_thread(app[sessions_key].load)
        await asyncio.to_thread(app[instances_key].load)
    except BaseException:
        await asyncio.to_thread(store.close)
        raise
    yield
    await asyncio.to_thread(store.close)


async def _stop_operations(app: web.Application) -> None:
    # as shutdown begins, before the server waits on open requests: a long copy must not hold it up
    await app[operations_key].stop()


async def _operations_ctx(app: web.Application) -> AsyncIterator[None]:
    operations = app[operations_key]
    await operations.open()
    yield
    # refuse new operations, stop the running ones at their next file and record how they ended
    await operations.close()


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    # after the operations: the events of those a stop cut off end now (bulk jobs' first, which
    # the events would take for asynchronous requests), and their webhooks go out
    await app[jobs_key].open()
    await app[events_key].open()
    await app[deliveries_key].open()
    yield
    # attempts under way are cut off unrecorded; the next start makes them again (the events run
    # nothing of their own: their webhooks are the deliveries')
    await app[deliveries_key].close()


# the services' lives, in the order they open (they close in the reverse order)
LIVES = (_store_ctx, _operations_ctx, _webhooks_ctx, uploads.uploads_ctx)
