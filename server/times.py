"""Times as both APIs write them: ISO 8601 in UTC, to the millisecond (`2026-11-23T10:00:00.000Z`)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ns: int) -> str:
    stamp = datetime.fromtimestamp(ns / 1e9, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
