"""The Laserfiche Repository API v2 dialect: the same repository, sessions and operations engine as
v1, in v2's routes and shapes (what Laserfiche's current client libraries speak)."""

from aiohttp import web

from .entries import routes as entry_routes
from .metadata import DEFINITIONS
from .metadata import routes as metadata_routes
from .tasks import routes as task_routes


def add_routes(app: web.Application) -> None:
    app.add_routes(entry_routes)
    app.add_routes(metadata_routes)
    app.add_routes(DEFINITIONS)
    app.add_routes(task_routes)
