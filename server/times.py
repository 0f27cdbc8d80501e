"""Times as both APIs write them: ISO 8601 in UTC, to the millisecond (`2026-11-23T10:00:00.000Z`)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime


# (the same few times are written again and again: an operation's start and last change in every
# answer to the pollers of its status, an entry's times in every page that lists it)
@functools.lru_cache(maxsize=4096)
def iso(ns: int) -> str:
    stamp = datetime.fromtimestamp(ns / 1e9, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
