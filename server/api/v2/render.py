"""v2's shapes: entries, task progress and the URLs they name."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...keys import settings_key
from ...operations import CANCELLED_STATUS, Kind, Operation
from ...repository import Entry, Target
from ...times import iso
from ..common import problem_body
from ..laserfiche_common import Look, entry_members, shortcut_members

BASE = "/v2/Repositories/{repoId}"


# the kinds the client's taskType enum lacks (a strict client would refuse the answer), as what
# they are closest to: the test task, asked for a result URI, behaves like a copy; an update from
# uploaded parts is an import of them into an existing document
_TASK_TYPES = {Kind.TEST: "CopyEntry", Kind.UPDATE_PARTS: "ImportUploadedParts"}


def task_type(kind: Kind) -> str:
    """What `taskType` says of a kind (see _TASK_TYPES)."""
    return _TASK_TYPES.get(kind, kind.value)


def url(request: web.Request, path: str) -> str:
    """An absolute URL of this repository's v2 routes (`path` after the repository)."""
    repo = request.match_info.get("repoId") or request.app[settings_key].repository_id
    return str(request.url.origin().with_path(f"/v2/Repositories/{repo}{path}"))


def entry_url(request: web.Request, entry_id: int) -> str:
    return url(request, f"/Entries/{entry_id}")


def tasks_url(request: web.Request, task_id: str) -> str:
    return url(request, "/Tasks") + f"?taskIds={task_id}"


def render(
    entry: Entry,
    look: Look,
    row_number: int | None = None,
    child_info: tuple[int, int, int] | None = None,
    total_size: bool = False,
    fields: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An entry as v2 shows it: `childInfo` (folders, documents, shortcuts), `totalDocumentSize`
    and `fields` (Field values) only when asked for (the client takes a member present as null for
    an answer)."""
    body = entry_members(entry, look)
    if row_number is not None:
        body["rowNumber"] = row_number
    if fields is not None:
        body["fields"] = fields
    if entry.is_dir:
        body |= {"isRecordFolder": False, "isUnderRecordSeries": False}
        if child_info is not None:
            folders, documents, shortcuts = child_info
            count = folders + documents + shortcuts
            body["childInfo"] = {
                "hasChildren": count > 0,
                "childCount": count,
                "folderCount": folders,
                "documentCount": documents,
                "shortcutCount": shortcuts,
            }
    elif entry.target is not None:
        body |= shortcut_members(entry)
    else:
        body |= {
            "electronicDocumentSize": entry.size,
            "extension": entry.extension,
            "isElectronicDocument": True,
            "isRecord": False,
            "mimeType": entry.mime_type,
            "pageCount": 0,
            "isCheckedOut": False,
            "isUnderVersionControl": False,
        }
        if total_size:
            # (no pages, thumbnails or attachments here: the electronic document is all there is)
            body["totalDocumentSize"] = entry.size
    return body


# every field an entry of any kind can carry (what `$select` may name)
ENTRY_FIELDS = (
    set(render(Entry(1, 0, "", (), True, "", 0, 0, 0), Look(""), 0, (0, 0, 0), fields=[]))
    | set(render(Entry(2, 1, "a", ("a",), False, "", 0, 0, 0), Look(""), 0, total_size=True))
    | set(render(Entry(3, 1, "s", ("s",), False, "", 0, 0, 0, target=Target(1, "Folder")), Look(""), 0))
)
# what a `$select` always keeps (v2: "entryType is always included")
ALWAYS_SELECTED = ("id", "name", "entryType", "rowNumber")


def task(request: web.Request, op: Operation) -> dict[str, Any]:
    """A TaskProgress."""
    result: dict[str, Any] = {"entryId": op.entry_id} if op.entry_id else {}
    if op.uri is not None:
        result["uri"] = url(request, op.uri)
    return {
        "id": op.token,
        "taskType": task_type(op.kind),
        "percentComplete": op.percent,
        "status": op.status.value,
        "errors": [_error(request, op, e.message) for e in op.errors],
        "result": result or None,
        "startTime": iso(op.started_ns) if op.started_ns else None,
        "lastUpdateTime": iso(op.status_ns),
    }


def _error(request: web.Request, op: Operation, message: str) -> dict[str, Any]:
    """One of a task's errors, as a problem (the message is its title: what the client shows)."""
    status = op.error_status or 500
    body = problem_body(request, status, message, message) | {"operationId": op.token}
    if status == CANCELLED_STATUS:
        body["type"] = "about:blank"  # (499, a cancel, is no status of RFC 9110's)
    return body
