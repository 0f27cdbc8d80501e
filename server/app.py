"""`create_app(settings)`: wires the store, the repository, sessions and the routes together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from aiohttp import web

from .api import (
    bulk,
    common,
    dashboard,
    elements,
    laserfiche,
    laserfiche_metadata,
    meta,
    notifications,
    sandbox,
    v2,
)
from .config import Settings
from .elements import Events, Instances
from .elements.bulk import Jobs
from .keys import (
    deliveries_key,
    events_key,
    faults_key,
    feed_key,
    instances_key,
    jobs_key,
    metadata_key,
    operations_key,
    repository_key,
    sessions_key,
    settings_key,
    store_key,
)
from .kinds import KINDS
from .metadata.model import Metadata
from .metadata.reading import load_catalog
from .operations import Concurrency, Operations
from .repository import Repository
from .sandbox import Faults, Feed
from .sessions import Sessions
from .store import Store
from .webhooks import Deliveries

# JSON bodies are small; documents stream through multipart and are limited separately
MAX_JSON_BODY = 1024 * 1024
# copies and deletes run on threads of their own: two operations at full width on two cores
WORK_THREADS = 4


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[common.problems_middleware, common.auth_middleware(settings.repository_id)],
        client_max_size=MAX_JSON_BODY,
    )
    store = Store(settings.storage_root)
    app[settings_key] = settings
    app[store_key] = store
    app[repository_key] = Repository(store)
    # (read before anything starts: a bad catalog stops the server with where and what is wrong)
    app[metadata_key] = Metadata(
        app[repository_key], load_catalog(settings.catalog_path, required=settings.catalog is not None)
    )
    app[sessions_key] = Sessions(store, settings.users, settings.session_ttl_s)
    app[operations_key] = Operations(
        app[repository_key],
        token_ttl_s=settings.token_ttl_s,
        concurrency=Concurrency(settings.session_concurrency),
        threads=WORK_THREADS,
        processes=settings.copy_processes,
        pace_s=settings.pace_ms / 1000,
    )
    app[operations_key].register(*KINDS)
    app[instances_key] = Instances(
        store, settings.elements_token, settings.callback_url, settings.signature_key
    )
    app[deliveries_key] = Deliveries(
        store,
        retries=settings.webhook_retries,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
    )
    app[events_key] = Events(app[repository_key], app[metadata_key], app[operations_key], app[deliveries_key])
    app[jobs_key] = Jobs(store, app[operations_key], app[events_key], app[deliveries_key])
    app[faults_key] = Faults()
    app[feed_key] = Feed()
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_operations_ctx)
    app.cleanup_ctx.append(_webhooks_ctx)
    app.on_shutdown.append(_stop_operations)
    # (after the operations stop: the event streams carry how they ended, then end)
    sandbox.install(app)
    app.add_routes(meta.routes)
    app.add_routes(laserfiche.routes)
    app.add_routes(laserfiche_metadata.routes)
    app.add_routes(laserfiche_metadata.DEFINITIONS)
    v2.add_routes(app)
    app.add_routes(elements.routes)
    app.add_routes(bulk.routes)
    app.add_routes(notifications.routes)
    app.add_routes(sandbox.routes)
    app.add_routes(dashboard.routes)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[store_key]
    creator = app[settings_key].users[0][0]
    await asyncio.to_thread(store.open, creator, time.time_ns())
    await asyncio.to_thread(app[metadata_key].open)
    await asyncio.to_thread(app[sessions_key].load)
    await asyncio.to_thread(app[instances_key].load)
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
    # attempts under way are cut off unrecorded; the next start makes them again
    await app[events_key].close()
    await app[deliveries_key].close()
