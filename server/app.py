"""`create_app(settings)`: wires the store, the repository, sessions and the routes together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from .api import common, laserfiche, meta
from .config import Settings
from .keys import copy_executor_key, repository_key, sessions_key, settings_key, store_key
from .repository import Repository
from .sessions import Sessions
from .store import Store

# JSON bodies are small; documents stream through multipart and are limited separately
MAX_JSON_BODY = 1024 * 1024
# synchronous copies run on threads of their own (2 cores: more would only contend for the disk)
COPY_THREADS = 2


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[common.problems_middleware, common.auth_middleware(settings.repository_id)],
        client_max_size=MAX_JSON_BODY,
    )
    store = Store(settings.storage_root)
    app[settings_key] = settings
    app[store_key] = store
    app[repository_key] = Repository(store)
    app[sessions_key] = Sessions(store, settings.users, settings.session_ttl_s)
    app[copy_executor_key] = ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="copy")
    app.cleanup_ctx.append(_store_ctx)
    app.add_routes(meta.routes)
    app.add_routes(laserfiche.routes)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[store_key]
    creator = app[settings_key].users[0][0]
    await asyncio.to_thread(store.open, creator, time.time_ns())
    await asyncio.to_thread(app[sessions_key].load)
    yield
    # refuse new copies, let the running ones finish their current file, then close the store
    await asyncio.to_thread(app[copy_executor_key].shutdown, wait=True, cancel_futures=True)
    await asyncio.to_thread(store.close)
