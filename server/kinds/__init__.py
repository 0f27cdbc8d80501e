"""The kinds of long operation, one module each: what a kind checks before it is accepted, and the
`Work` the engine runs for it (`server/operations/work.py`)."""

from ..operations import Work
from .bulk import BulkWork
from .copy import CopyWork
from .delete import DeleteWork
from .export import ExportWork
from .search import SearchWork
from .testtask import TestWork
from .uploads import ImportPartsWork, UpdatePartsWork

# every kind the engine runs (it asks each to clean up after an operation a crash cut off)
KINDS: tuple[type[Work], ...] = (
    CopyWork,
    DeleteWork,
    TestWork,
    BulkWork,
    ExportWork,
    ImportPartsWork,
    UpdatePartsWork,
    SearchWork,
)

__all__ = [
    "KINDS",
    "BulkWork",
    "CopyWork",
    "DeleteWork",
    "ExportWork",
    "ImportPartsWork",
    "SearchWork",
    "TestWork",
    "UpdatePartsWork",
]
