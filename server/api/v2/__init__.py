"""The Laserfiche Repository API v2 dialect: the same repository, sessions and operations engine as
v1, in v2's routes and shapes (what Laserfiche's current client libraries speak)."""

from aiohttp import web

from .entries import routes as entry_routes
from .exports import routes as export_routes
from .metadata import DEFINITIONS
from .metadata import routes as metadata_routes
from .searches import routes as search_routes
from .tasks import routes as task_routes
from .tasks import status_routes
from .uploads import setup as setup_uploads


def add_routes(app: web.Application) -> None:
    app.add_routes(status_routes)  # (first: see tasks.status_routes)
    app.add_routes(entry_routes)
    app.add_routes(metadata_routes)
    app.add_routes(DEFINITIONS)
    app.add_routes(task_routes)
    app.add_routes(search_routes)
    setup_uploads(app)
    app.add_routes(export_routes)
