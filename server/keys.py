"""Typed application state: every AppKey in one place."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .elements import Events, Instance, Instances
from .elements.bulk import Jobs
from .inbox import Inbox
from .metadata.model import Metadata
from .operations import Operations
from .operations.load import RequestLoad
from .repository import Repository
from .sandbox import Faults, Feed
from .sessions import Session, Sessions
from .snapshot import StartState
from .store import Store
from .webhooks import Deliveries

settings_key = web.AppKey("settings", Settings)
store_key = web.AppKey("store", Store)
repository_key = web.AppKey("repository", Repository)
metadata_key = web.AppKey("metadata", Metadata)
sessions_key = web.AppKey("sessions", Sessions)
operations_key = web.AppKey("operations", Operations)
instances_key = web.AppKey("instances", Instances)
events_key = web.AppKey("events", Events)
deliveries_key = web.AppKey("deliveries", Deliveries)
jobs_key = web.AppKey("jobs", Jobs)
faults_key = web.AppKey("faults", Faults)
feed_key = web.AppKey("feed", Feed)
inbox_key = web.AppKey("inbox", Inbox)
# what a reset puts back (outlives the resets)
start_key = web.AppKey("start", StartState)
# how busy the server is answering requests (outlives the resets; the engine yields to it)
load_key = web.AppKey("load", RequestLoad)

# per-request state, set by the middlewares
REQUEST_ID = web.RequestKey("request_id", str)
SESSION = web.RequestKey("session", Session)
# the element instance whose token a hub request carries
INSTANCE = web.RequestKey("instance", Instance)

__all__ = [
    "INSTANCE",
    "REQUEST_ID",
    "SESSION",
    "Session",
    "deliveries_key",
    "events_key",
    "faults_key",
    "feed_key",
    "inbox_key",
    "instances_key",
    "jobs_key",
    "load_key",
    "metadata_key",
    "operations_key",
    "repository_key",
    "sessions_key",
    "settings_key",
    "start_key",
    "store_key",
]
