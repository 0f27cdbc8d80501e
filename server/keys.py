"""Typed application state: every AppKey in one place."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .operations import Operations
from .repository import Repository
from .sessions import Session, Sessions
from .store import Store

settings_key = web.AppKey("settings", Settings)
store_key = web.AppKey("store", Store)
repository_key = web.AppKey("repository", Repository)
sessions_key = web.AppKey("sessions", Sessions)
operations_key = web.AppKey("operations", Operations)

# per-request state, set by the middlewares
REQUEST_ID = web.RequestKey("request_id", str)
SESSION = web.RequestKey("session", Session)

__all__ = [
    "REQUEST_ID",
    "SESSION",
    "Session",
    "operations_key",
    "repository_key",
    "sessions_key",
    "settings_key",
    "store_key",
]
