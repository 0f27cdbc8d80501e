"""The Laserfiche Repository API v1 dialect: thin handlers over the repository."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from ..errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from ..keys import operations_key, repository_key, sessions_key, settings_key
from ..operations import POLL_AFTER_S, Operation, Status
from ..repository import Entry, check_name, check_segments, extension_to_keep
from .common import (
    bool_param,
    field,
    int_param,
    json,
    json_object,
    pace_s,
    problem_body,
    public,
    read_json,
    seconds_param,
    session_of,
)
from .transfer import iso, received, send_document

BASE = "/v1/Repositories/{repoId}"
# OData paging: the default page and the most a client may ask for with `Prefer: maxpagesize`
DEFAULT_PAGE_SIZE = 150
MAX_PAGE_SIZE = 1000
# the `request` part of an import is small JSON metadata
MAX_REQUEST_PART = 1024 * 1024

routes = web.RouteTableDef()


# ---- rendering ----------------------------------------------------------------------------


def render(entry: Entry, volume: str, row_number: int = 0) -> dict[str, Any]:
    parts = entry.parts
    body: dict[str, Any] = {
        "id": entry.id,
        "name": entry.name,
        "parentId": entry.parent_id,
        "fullPath": "\\" + "\\".join(parts),
        "folderPath": ("\\" + "\\".join(parts[:-1])) if parts else "",
        "creator": entry.creator,
        "creationTime": iso(entry.created_ns),
        "lastModifiedTime": iso(entry.modified_ns),
        "entryType": "Folder" if entry.is_dir else "Document",
        "isContainer": entry.is_dir,
        "isLeaf": not entry.is_dir,
        "templateName": "",
        "templateId": 0,
        "templateFieldNames": [],
        "volumeName": volume,
        "rowNumber": row_number,
        "fields": [],
    }
    if entry.is_dir:
        body |= {"isRecordFolder": False, "isUnderRecordSeries": False}
    else:
        body |= {
            "elecDocumentSize": entry.size,
            "extension": entry.extension,
            "mimeType": entry.mime_type,
            "isElectronicDocument": True,
            "pageCount": 0,
            "isCheckedOut": False,
            "isUnderVersionControl": False,
            "isRecord": False,
        }
    return body


# every field an entry of either kind can carry (what `$select` may name)
ENTRY_FIELDS = set(render(Entry(1, 0, "", (), True, "", 0, 0, 0), "")) | set(
    render(Entry(2, 1, "a", ("a",), False, "", 0, 0, 0), "")
)
# what a `$select` listing always carries (the v1 folder-listing guide)
ALWAYS_SELECTED = ("id", "name", "entryType", "rowNumber")


def parse_select(request: web.Request) -> set[str] | None:
    raw = request.query.get("$select")
    if raw is None or not raw.strip():
        return None
    chosen = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(chosen - ENTRY_FIELDS)
    if unknown:
        raise BadRequest(f"The parameter '$select' names unknown fields: {', '.join(unknown)}.")
    return chosen.union(ALWAYS_SELECTED)


def render_for(
    request: web.Request, entry: Entry, chosen: set[str] | None = None, row: int = 0
) -> dict[str, Any]:
    """An entry as this request shows it: in the configured volume, cut to `$select`."""
    body = render(entry, request.app[settings_key].volume_name, row)
    if chosen is None:
        return body
    return {k: v for k, v in body.items() if k in chosen}


def entry_url(request: web.Request, entry_id: int) -> str:
    repo = request.match_info["repoId"]
    return str(request.url.origin().with_path(f"/v1/Repositories/{repo}/Entries/{entry_id}"))


def _entry_response(request: web.Request, entry: Entry, status: int = 200) -> web.Response:
    headers = {"Location": entry_url(request, entry.id)} if status == 201 else None
    return json(render_for(request, entry), status=status, headers=headers)


def entry_id_param(request: web.Request, name: str = "entryId") -> int:
    return int_param(request.match_info[name], name, minimum=0)


# ---- sign in ------------------------------------------------------------------------------


@routes.post(BASE + "/Token")
@public
async def sign_in(request: web.Request) -> web.Response:
    if request.content_type == "application/json":
        form: Any = await read_json(request)
    else:
        try:
            form = await request.post()
        except (ValueError, LookupError) as exc:  # bad charset, bad bytes, no boundary
            raise BadRequest(f"The sign-in form could not be read: {exc}.") from None
    grant = form.get("grant_type")
    if grant != "password":
        raise BadRequest(
            f"The field 'grant_type' must be 'password', got {grant!r}.",
            title="Unsupported grant type.",
        )
    username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not username:
        raise BadRequest("The field 'username' is required.")
    if not isinstance(password, str):
        raise BadRequest("The field 'password' is required.")
    sessions = request.app[sessions_key]
    if not sessions.check_password(username, password):
        raise Unauthorized("The user name or password is incorrect.", title="Invalid username or password.")
    token, _ = await asyncio.to_thread(sessions.create, username)
    return json({"access_token": token, "expires_in": sessions.ttl_s, "token_type": "bearer"})


# ---- entries ------------------------------------------------------------------------------


@routes.get(BASE + "/Entries/ByPath")
async def get_entry_by_path(request: web.Request) -> web.Response:
    full_path = request.query.get("fullPath")
    if full_path is None:
        raise BadRequest("The parameter 'fullPath' is required.")
    fallback = bool_param(request, "fallbackToClosestAncestor")
    trimmed = full_path.strip("\\")
    parts = check_segments(trimmed.split("\\") if trimmed else [], "parameter 'fullPath'")
    chosen = parse_select(request)
    found, ancestor = await asyncio.to_thread(request.app[repository_key].by_path, parts)
    if found is not None:
        return json({"entry": render_for(request, found, chosen), "ancestorEntry": None})
    if not fallback:
        raise NotFound(f"No entry at '{full_path}'.")
    return json({"entry": None, "ancestorEntry": render_for(request, ancestor, chosen)})


@routes.get(BASE + "/Entries/{entryId}")
async def get_entry(request: web.Request) -> web.Response:
    chosen = parse_select(request)
    entry = await asyncio.to_thread(request.app[repository_key].entry, entry_id_param(request))
    return json(render_for(request, entry, chosen))


# OData `$orderby` names -> the repository's order fields
ORDER_FIELDS = {
    "name": "name",
    "id": "id",
    "creationTime": "created",
    "lastModifiedTime": "modified",
    "entryType": "type",
    "elecDocumentSize": "size",
    "creator": "creator",
    "extension": "extension",
}
_ORDER_TERM = re.compile(r"^\s*(\w+)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)


def parse_orderby(request: web.Request) -> list[tuple[str, bool]]:
    """`$orderby=name desc, creationTime` -> [("name", True), ("created", False)]."""
    terms: list[tuple[str, bool]] = []
    for raw in request.query.get("$orderby", "").split(","):
        if not raw.strip():
            continue
        match = _ORDER_TERM.match(raw)
        if match is None or match.group(1) not in ORDER_FIELDS:
            known = ", ".join(ORDER_FIELDS)
            raise BadRequest(
                f"The parameter '$orderby' has an unknown term {raw.strip()!r}; "
                f"use one of {known}, each optionally followed by asc or desc."
            )
        terms.append((ORDER_FIELDS[match.group(1)], (match.group(2) or "asc").lower() == "desc"))
    return terms


def page_size(request: web.Request) -> tuple[int, bool]:
    """The page size from `Prefer: maxpagesize=N` (or odata.maxpagesize), and whether one was asked."""
    for header in request.headers.getall("Prefer", []):
        for preference in header.split(","):
            key, _, value = preference.strip().partition("=")
            value = value.strip().strip('"')
            # a preference the server cannot use is ignored, not refused (RFC 7240)
            if key.strip().lower() in ("maxpagesize", "odata.maxpagesize") and value.isdecimal():
                size = int(value) if value.isascii() else 0
                if size > 0:
                    return min(size, MAX_PAGE_SIZE), True
    return DEFAULT_PAGE_SIZE, False


class Paging:
    """OData paging of one request: `$skip`, `$top`, `$count` and `Prefer: maxpagesize`."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.skip = int_param(request.query.get("$skip", "0"), "$skip")
        self.top = int_param(request.query["$top"], "$top") if "$top" in request.query else None
        self.count = bool_param(request, "$count")
        self.size, self.asked = page_size(request)

    @property
    def stop(self) -> int:
        """One past the last row this page can show."""
        last = self.skip + self.size
        return last if self.top is None else min(last, self.skip + self.top)

    def response(self, page: list[dict[str, Any]], total: int, element_type: str) -> web.Response:
        """The page (rows skip.. of `total`) with an absolute `@odata.nextLink` when more remain."""
        end = total if self.top is None else min(total, self.skip + self.top)
        stop = min(end, self.stop)
        metadata = self.request.url.origin().with_path("/v1/$metadata")
        body: dict[str, Any] = {
            "@odata.context": f"{metadata}#Collection({element_type})",
            "value": page,
        }
        if stop < end:
            query = dict(self.request.query)
            query["$skip"] = str(stop)
            if self.top is not None:
                query["$top"] = str(self.top - (stop - self.skip))
            body["@odata.nextLink"] = str(self.request.url.with_query(query))
        if self.count:
            body["@odata.count"] = total
        headers = {"Preference-Applied": f"maxpagesize={self.size}"} if self.asked else None
        return json(body, headers=headers)


@routes.get(BASE + "/Entries/{entryId}/Laserfiche.Repository.Folder/children")
async def list_children(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    chosen = parse_select(request)
    order = parse_orderby(request)
    paging = Paging(request)

    def page() -> tuple[int, list[dict[str, Any]]]:
        # rendered in the thread too: a page of 1,000 entries takes milliseconds to render
        total, entries = request.app[repository_key].children(entry_id, order, paging.skip, paging.stop)
        return total, [render_for(request, e, chosen, paging.skip + i + 1) for i, e in enumerate(entries)]

    total, rendered = await asyncio.to_thread(page)
    return paging.response(rendered, total, "Laserfiche.Repository.Entry")


@routes.post(BASE + "/Entries/{entryId}/Laserfiche.Repository.Folder/children")
async def create_child(request: web.Request) -> web.Response:
    parent_id = entry_id_param(request)
    auto_rename = bool_param(request, "autoRename")
    body = await read_json(request)
    name = field(body, "name", str, required=True)
    assert name is not None
    repository = request.app[repository_key]
    user = session_of(request).user
    entry_type = field(body, "entryType", str)
    if entry_type is None:
        source_id = field(body, "sourceId", int)
        if source_id is None:
            raise BadRequest("The field 'entryType' is required ('Folder'), or 'sourceId' to copy an entry.")
        operations = request.app[operations_key]
        entry = await operations.copy_now(user, source_id, parent_id, name, auto_rename, pace_s(request))
    elif entry_type == "Folder":
        entry = await asyncio.to_thread(repository.create_folder, parent_id, name, auto_rename, user)
    elif entry_type in ("Shortcut", "RecordSeries", "Document"):
        raise BadRequest(
            f"The field 'entryType' is {entry_type!r}, which this sandbox does not "
            "create here; use 'Folder' (documents are imported)."
        )
    else:
        raise BadRequest(f"The field 'entryType' has an unknown value {entry_type!r}; use 'Folder'.")
    return _entry_response(request, entry, status=201)


@routes.patch(BASE + "/Entries/{entryId}")
async def move_entry(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    auto_rename = bool_param(request, "autoRename")
    body = await read_json(request)
    parent_id = field(body, "parentId", int)
    name = field(body, "name", str)
    entry = await asyncio.to_thread(request.app[repository_key].move, entry_id, parent_id, name, auto_rename)
    return _entry_response(request, entry)


def _empty_list_route(suffix: str, element_type: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.to_thread(request.app[repository_key].entry, entry_id_param(request))
        return Paging(request).response([], 0, element_type)

    handler.__name__ = f"list_{suffix}"
    routes.get(BASE + "/Entries/{entryId}/" + suffix)(handler)


# this repository has no template fields, links or tags; the routes answer as an empty repository would
for _suffix, _type in (
    ("fields", "Laserfiche.Repository.FieldValue"),
    ("links", "Laserfiche.Repository.WEntryLinkInfo"),
    ("tags", "Laserfiche.Repository.WTagInfo"),
):
    _empty_list_route(_suffix, _type)


# ---- documents ----------------------------------------------------------------------------


def _import_result(request: web.Request, entry_id: int, exceptions: list[dict[str, Any]]) -> Any:
    empty: list[Any] = []
    # the v1 import guide's documentLink is the new entry's URL
    link = entry_url(request, entry_id) if entry_id else None
    return {
        "operations": {
            "entryCreate": {"entryId": entry_id, "exceptions": exceptions},
            "setEdoc": {"exceptions": empty},
            "setTemplate": {"template": None, "exceptions": empty},
            "setFields": {"fieldCount": 0, "exceptions": empty},
            "setTags": {"assignedTags": empty, "exceptions": empty},
            "setLinks": {"otherEntryIds": empty, "exceptions": empty},
        },
        "documentLink": link,
    }


@routes.post(BASE + "/Entries/{entryId}/{fileName}")
async def import_document(request: web.Request) -> web.Response:
    parent_id = entry_id_param(request)
    name = check_name(request.match_info["fileName"], "fileName")
    auto_rename = bool_param(request, "autoRename")
    repository = request.app[repository_key]
    parent = await asyncio.to_thread(repository.entry, parent_id)
    if not parent.is_dir:
        raise BadRequest(f"Entry {parent_id} is not a folder.")
    async with received(request, "electronicDocument", unique=True, other_part=_request_part) as upload:
        if upload.size == 0:
            detail = "The electronic document is empty; an import needs at least one byte."
            exception = problem_body(request, 400, "Invalid request.", detail)
            exception |= {"message": detail, "statusCode": 400, "errorClass": "BadRequest"}
            response = json(_import_result(request, 0, [exception]), status=400)
            response.headers["X-APIServer-Error"] = quote(detail)
            return response
        entry = await asyncio.to_thread(
            repository.import_document,
            parent_id,
            name,
            upload.tmp,
            auto_rename,
            session_of(request).user,
            extension_to_keep(name, upload.upload_name),
        )
    response = json(_import_result(request, entry.id, []), status=201)
    response.headers["Location"] = entry_url(request, entry.id)
    return response


async def _request_part(part: BodyPartReader) -> bool:
    """The import's `request` part: JSON metadata, checked and kept by no one here."""
    if part.name != "request":
        return False
    raw = bytearray()
    while chunk := await part.read_chunk():
        raw += chunk
        if len(raw) > MAX_REQUEST_PART:
            raise PayloadTooLarge("The 'request' part is larger than 1 MiB.")
    if raw.strip():
        json_object(raw, "'request' part")
    return True


@routes.get(BASE + "/Entries/{entryId}/Laserfiche.Repository.Document/edoc")
async def download(request: web.Request) -> web.StreamResponse:
    # a document imported as `Invoice 1` from `a.pdf` is saved as `Invoice 1.pdf`
    return await send_document(request, entry_id_param(request), lambda entry: entry.file_name)


# ---- long operations ------------------------------------------------------------------------


def tasks_url(request: web.Request, token: str) -> str:
    repo = request.match_info["repoId"]
    return str(request.url.origin().with_path(f"/v1/Repositories/{repo}/Tasks/{token}"))


def _started(request: web.Request, op: Operation) -> web.Response:
    """The token, with where to poll: the Tasks URL, and a status monitor for generic clients."""
    url = tasks_url(request, op.token)
    headers = {"Location": url, "Retry-After": str(POLL_AFTER_S), "Operation-Location": url + "/status"}
    status = 201 if request.app[settings_key].profile == "sdk" else 202
    return json({"token": op.token}, status=status, headers=headers)


async def copy_async(request: web.Request) -> web.Response:
    pace = pace_s(request)
    parent_id = entry_id_param(request)
    auto_rename = bool_param(request, "autoRename")
    body = await read_json(request)
    source_id = field(body, "sourceId", int, required=True)
    name = field(body, "name", str, required=True)
    assert source_id is not None and name is not None
    op = await request.app[operations_key].copy(
        session_of(request), source_id, parent_id, name, auto_rename, pace_s=pace
    )
    return _started(request, op)


# the published client's route, and the Long Operations guide's
for _route in ("/Laserfiche.Repository.Folder/CopyAsync", "/Laserfiche.Repository.Folder/children/CopyAsync"):
    routes.post(BASE + "/Entries/{entryId}" + _route)(copy_async)


@routes.delete(BASE + "/Entries/{entryId}")
async def delete_entry(request: web.Request) -> web.Response:
    pace = pace_s(request)
    entry_id = entry_id_param(request)
    if request.body_exists and (await request.read()).strip():
        # optional, and kept by no one here: this repository has no audit trail
        body = await read_json(request)
        field(body, "auditReasonId", int)
        field(body, "comment", str)
    op = await request.app[operations_key].delete(session_of(request), entry_id, pace_s=pace)
    return _started(request, op)


def render_progress(request: web.Request, op: Operation) -> dict[str, Any]:
    return {
        "operationToken": op.token,
        "operationType": op.kind.value,
        "percentComplete": op.percent,
        "status": op.status.value,
        "errors": [{"objectId": e.object_id, "errorMessage": e.message} for e in op.errors],
        "redirectUri": entry_url(request, op.new_entry) if op.new_entry else None,
        "entryId": op.entry_id,
        "startTimestamp": iso(op.started_ns) if op.started_ns else None,
        "statusTimestamp": iso(op.status_ns),
    }


# the longest a status request waits (`?wait=`) for its operation to end, like Google's WaitOperation
MAX_WAIT_S = 60.0


async def _operation(request: web.Request) -> Operation:
    """The request's operation; with `?wait=SECONDS`, once it has ended or the wait is over."""
    wait_s = seconds_param(request, "wait", MAX_WAIT_S)
    operations = request.app[operations_key]
    op = operations.get(session_of(request), request.match_info["operationToken"])
    if wait_s:
        await operations.wait(op, wait_s)
    return op


@routes.get(BASE + "/Tasks/{operationToken}")
async def get_task(request: web.Request) -> web.Response:
    op = await _operation(request)
    body = render_progress(request, op)
    if not op.done:
        return json(body, status=202, headers={"Retry-After": str(POLL_AFTER_S)})
    if op.new_entry:
        location = {"Location": entry_url(request, op.new_entry)}
        # the guide redirects to the new entry; the published client expects 201 with the progress
        status = 201 if request.app[settings_key].profile == "sdk" else 302
        return json(body, status=status, headers=location)
    return json(body)


@routes.delete(BASE + "/Tasks/{operationToken}")
async def cancel_task(request: web.Request) -> web.Response:
    await request.app[operations_key].cancel(session_of(request), request.match_info["operationToken"])
    return web.Response(status=204)


# the REST-guidelines vocabulary generic pollers (azure-core's LROBasePolling) understand
MONITOR_STATUS = {
    Status.NOT_STARTED: "NotStarted",
    Status.IN_PROGRESS: "Running",
    Status.COMPLETED: "Succeeded",
    Status.FAILED: "Failed",
    Status.CANCELLED: "Canceled",
}


@routes.get(BASE + "/Tasks/{operationToken}/status")
async def get_task_monitor(request: web.Request) -> web.Response:
    op = await _operation(request)
    body: dict[str, Any] = {
        "id": op.token,
        "status": MONITOR_STATUS[op.status],
        "percentComplete": op.percent,
    }
    if op.status in (Status.FAILED, Status.CANCELLED):
        message = "; ".join(e.message for e in op.errors) or "The operation was cancelled."
        body["error"] = {"code": op.status.value, "message": message}
    if op.new_entry:
        body["resourceLocation"] = entry_url(request, op.new_entry)
    headers = None if op.done else {"Retry-After": str(POLL_AFTER_S)}
    return json(body, headers=headers)
