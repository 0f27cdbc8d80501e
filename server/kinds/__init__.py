"""The kinds of long operation, one module each: what a kind checks before it is accepted, and the
`Work` the engine runs for it (`server/operations/work.py`)."""

from ..operations import Work
from .bulk import BulkWork
from .copy import CopyWork
from .delete import DeleteWork
from .testtask import TestWork

# every kind the engine runs (it asks each to clean up after an operation a crash cut off)
KINDS: tuple[type[Work], ...] = (CopyWork, DeleteWork, TestWork, BulkWork)

__all__ = ["KINDS", "BulkWork", "CopyWork", "DeleteWork", "TestWork"]
