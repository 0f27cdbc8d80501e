"""Long operations: one engine (`engine.Operations`) that runs every kind of work (`work.Work`) the
same way: the per-session guard (`guard`), cancel, progress, persistence (`rows`), expiry (`tokens`)
and the hooks that go with an operation. The kinds themselves are in `server/kinds/`."""

from .engine import Operations
from .guard import Admission, Concurrency
from .records import (
    CANCELLED_STATUS,
    POLL_AFTER_S,
    STOPPED_STATUS,
    Hook,
    Kind,
    Operation,
    OperationError,
    Status,
)
from .work import Runner, Work

__all__ = [
    "CANCELLED_STATUS",
    "POLL_AFTER_S",
    "STOPPED_STATUS",
    "Admission",
    "Concurrency",
    "Hook",
    "Kind",
    "Operation",
    "OperationError",
    "Operations",
    "Runner",
    "Status",
    "Work",
]
