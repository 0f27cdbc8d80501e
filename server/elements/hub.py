"""The documents hub's view of an entry (what its listings answer and a bulk job's records hold)."""

from __future__ import annotations

from typing import Any

from ..repository import Entry
from ..times import iso


def record(entry: Entry, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "name": entry.name,
        "path": "/" + "/".join(entry.parts),
        "directory": entry.is_dir,
        "size": entry.size,
        "createdDate": iso(entry.created_ns),
        "modifiedDate": iso(entry.modified_ns),
        "tags": tags or [],
    }
