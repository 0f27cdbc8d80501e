"""What both Laserfiche dialects (v1 and v2) say alike: an entry's common members, a path looked up
by `fullPath`, and the optional audit body of a delete."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ..errors import BadRequest, NotFound
from ..keys import metadata_key, repository_key, settings_key
from ..metadata.catalog import Catalog
from ..repository import Entry, check_segments
from ..times import iso
from .common import bool_param, field, read_json

NO_CATALOG = Catalog()


@dataclass(frozen=True)
class Look:
    """What shows an entry beyond the entry itself: the volume's name, and the catalog that names
    its template."""

    volume: str
    catalog: Catalog = NO_CATALOG


def look(request: web.Request) -> Look:
    return Look(request.app[settings_key].volume_name, request.app[metadata_key].catalog)


def entry_members(entry: Entry, look: Look) -> dict[str, Any]:
    """The members every entry has in both dialects (each adds its own)."""
    parts = entry.parts
    template = look.catalog.template(entry.template_id) if entry.template_id else None
    field_names = [d.name for d in look.catalog.template_fields(template)] if template else []
    return {
        "id": entry.id,
        "name": entry.name,
        "parentId": entry.parent_id,
        "fullPath": "\\" + "\\".join(parts),
        "folderPath": ("\\" + "\\".join(parts[:-1])) if parts else "",
        "creator": entry.creator,
        "creationTime": iso(entry.created_ns),
        "lastModifiedTime": iso(entry.modified_ns),
        "entryType": entry.entry_type,
        "isContainer": entry.is_dir,
        "isLeaf": not entry.is_dir,
        "templateName": template.name if template else "",
        "templateId": template.id if template else 0,
        "templateFieldNames": field_names,
        "volumeName": look.volume,
    }


# entries' JSON kept at most (some 600 bytes each): the pages of a few big folders
ENTRY_PAGES_KEPT = 20_000
# what an entry's JSON is rendered with in place of its row number, to be cut there
_ROW_MARK = -(2**62)
_ROW_KEY = b'"rowNumber":'
_ROW_MARKED = _ROW_KEY + str(_ROW_MARK).encode()


class EntryPages:
    """Listing pages' entries as JSON, each rendered once and kept while the entry (with its
    modified time and size, which the listing reads from the disk) and how it is shown stay the
    same: a page of a big folder is joined from what was kept, not rendered entry by entry. Only
    `rowNumber` differs from one page to another: it is spliced in between the two halves kept.
    One per dialect (`render`: an entry as that dialect lists it, with a `rowNumber`).

    Kept by the entry object itself: the repository hands out the same Entry again for an entry
    that has not changed (Tree._entries), and a new one for one that has."""

    def __init__(self, render: Callable[[Entry, Look], dict[str, Any]]) -> None:
        self._render = render
        # ($select, volume, id of the catalog) -> (the look, {id of an entry: (the entry, JSON
        # before and after its row number)}); holding the entry keeps its id from being reused
        self._kept: dict[
            tuple[frozenset[str] | None, str, int], tuple[Look, dict[int, tuple[Entry, bytes, bytes]]]
        ] = {}
        self._count = 0

    def encode(self, entries: list[Entry], shown: Look, chosen: set[str] | None, first_row: int) -> bytes:
        """The entries as a JSON array, numbered from `first_row`, cut to `chosen` ($select)."""
        select = None if chosen is None else frozenset(chosen)
        how = (select, shown.volume, id(shown.catalog))
        table = self._kept.get(how)
        if table is None or table[0] != shown:
            table = self._kept[how] = (shown, {})
        kept = table[1]
        parts = []
        for row, entry in enumerate(entries, first_row):
            found = kept.get(id(entry))
            if found is None or found[0] is not entry:
                found = self._rendered(entry, shown, select)
                self._count += 1
                if self._count > ENTRY_PAGES_KEPT:
                    self._kept.clear()  # (what the next pages need is rendered again once)
                    self._kept[how] = table
                    kept.clear()
                    self._count = 1
                kept[id(entry)] = found
            parts.append(b"%b%d%b" % (found[1], row, found[2]))
        return b"[" + b",".join(parts) + b"]"

    def _rendered(
        self, entry: Entry, shown: Look, select: frozenset[str] | None
    ) -> tuple[Entry, bytes, bytes]:
        body = self._render(entry, shown)
        if select is not None:
            body = {k: v for k, v in body.items() if k in select}
        body["rowNumber"] = _ROW_MARK
        # (the mark can only be found where it was put: in a string a quote is escaped)
        encoded = orjson.dumps(body)
        at = encoded.index(_ROW_MARKED) + len(_ROW_KEY)
        return entry, encoded[:at], encoded[at + len(_ROW_MARKED) - len(_ROW_KEY) :]


def order_fields(size: str) -> dict[str, str]:
    """OData `$orderby` names -> the repository's order fields (the dialects name the size apart)."""
    return {
        "name": "name",
        "id": "id",
        "creationTime": "created",
        "lastModifiedTime": "modified",
        "entryType": "type",
        size: "size",
        "creator": "creator",
        "extension": "extension",
    }


def shortcut_members(entry: Entry) -> dict[str, Any]:
    assert entry.target is not None
    return {"targetId": entry.target.id, "targetType": entry.target.type, "extension": entry.extension}


async def by_path(request: web.Request) -> tuple[Entry | None, Entry]:
    """The entry at `?fullPath=` (backslashes; the leading one optional), or None and its closest
    existing ancestor when `?fallbackToClosestAncestor=true` (else 404)."""
    full_path = request.query.get("fullPath")
    if full_path is None:
        raise BadRequest("The parameter 'fullPath' is required.")
    fallback = bool_param(request, "fallbackToClosestAncestor")
    trimmed = full_path.strip("\\")
    parts = check_segments(trimmed.split("\\") if trimmed else [], "parameter 'fullPath'")
    found, ancestor = await asyncio.to_thread(request.app[repository_key].by_path, parts)
    if found is None and not fallback:
        raise NotFound(f"No entry at '{full_path}'.")
    return found, ancestor


async def audit_body(request: web.Request, comment: str) -> None:
    """A delete's optional JSON body: an audit reason and a comment (named `comment` in v1,
    `auditReasonComment` in v2). The reason must be one of the catalog's DeleteEntry reasons (and
    given, with --delete-audit-reason required); neither is kept (there is no audit trail)."""
    reason_id = None
    if request.body_exists and (await request.read()).strip():
        body = await read_json(request)
        reason_id = field(body, "auditReasonId", int)
        field(body, comment, str)
    required = request.app[settings_key].delete_reason_required
    request.app[metadata_key].check_audit_reason(reason_id, "DeleteEntry", required)
