"""The Laserfiche Repository API v1 dialect: thin handlers over the repository."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from ..errors import BadRequest, Unauthorized
from ..keys import metadata_key, operations_key, repository_key, sessions_key, settings_key
from ..kinds.copy import copy_now, start_copy
from ..kinds.delete import start_delete
from ..metadata.model import FieldValues
from ..operations import POLL_AFTER_S, Operation, Status
from ..repository import Entry, Target, check_name, extension_to_keep
from ..times import iso
from . import metadata_shapes as shapes
from . import odata
from .common import (
    bool_param,
    field,
    int_param,
    json,
    pace_s,
    problem_body,
    public,
    read_json,
    seconds_param,
    session_of,
)
from .laserfiche_common import (
    EntryPages,
    Look,
    audit_body,
    by_path,
    entry_members,
    look,
    order_fields,
    shortcut_members,
)
from .transfer import carries_document, json_part, received, send_document

BASE = "/v1/Repositories/{repoId}"

routes = web.RouteTableDef()
# the status routes, added before the others (see app.create_app): pollers ask for them most, and
# aiohttp tries a path against the routes below /v1/Repositories one by one, in the order they were
# added (no other route of the dialect can match a Tasks path, so the order decides nothing else)
status_routes = web.RouteTableDef()


# ---- rendering ----------------------------------------------------------------------------


def render(
    entry: Entry, look: Look, row_number: int = 0, fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An entry as v1 shows it; `fields`: its field values (see laserfiche_metadata)."""
    body = entry_members(entry, look) | {"rowNumber": row_number, "fields": fields or []}
    if entry.is_dir:
        body |= {"isRecordFolder": False, "isUnderRecordSeries": False}
    elif entry.target is not None:
        body |= shortcut_members(entry)
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


# every field an entry of any kind can carry (what `$select` may name)
ENTRY_FIELDS = (
    set(render(Entry(1, 0, "", (), True, "", 0, 0, 0), Look("")))
    | set(render(Entry(2, 1, "a", ("a",), False, "", 0, 0, 0), Look("")))
    | set(render(Entry(3, 1, "s", ("s",), False, "", 0, 0, 0, target=Target(1, "Folder")), Look("")))
)
# what a `$select` listing always carries (the v1 folder-listing guide)
ALWAYS_SELECTED = ("id", "name", "entryType", "rowNumber")
# listings' entries, as JSON kept from one page to the next (without `?fields=`: no values)
PAGES = EntryPages(lambda entry, shown: render(entry, shown, 0, []))


def parse_select(request: web.Request) -> set[str] | None:
    return odata.select(request, ENTRY_FIELDS, ALWAYS_SELECTED)


def render_for(
    request: web.Request,
    entry: Entry,
    chosen: set[str] | None = None,
    row: int = 0,
    fields: list[FieldValues] | None = None,
) -> dict[str, Any]:
    """An entry as this request shows it: in the configured volume, with `fields`, cut to `$select`."""
    shown = [shapes.entry_field_value(f) for f in fields or ()]
    body = render(entry, look(request), row, shown)
    if chosen is None:
        return body
    return {k: v for k, v in body.items() if k in chosen}


def repository_url(request: web.Request, path: str) -> str:
    """An absolute URL of this repository's v1 routes (`path` after the repository)."""
    repo = request.match_info["repoId"]
    return str(request.url.origin().with_path(f"/v1/Repositories/{repo}{path}"))


def entry_url(request: web.Request, entry_id: int) -> str:
    return repository_url(request, f"/Entries/{entry_id}")


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
    chosen = parse_select(request)
    found, ancestor = await by_path(request)
    if found is not None:
        return json({"entry": render_for(request, found, chosen), "ancestorEntry": None})
    return json({"entry": None, "ancestorEntry": render_for(request, ancestor, chosen)})


@routes.get(BASE + "/Entries/{entryId}")
async def get_entry(request: web.Request) -> web.Response:
    """The entry, with the values of its fields (`fields`)."""
    chosen = parse_select(request)
    entry_id = entry_id_param(request)
    metadata = request.app[metadata_key]

    def read() -> tuple[Entry, list[FieldValues]]:
        entry = request.app[repository_key].entry(entry_id)
        return entry, [f for f in metadata.fields(entry.id) if f.values]

    entry, fields = await asyncio.to_thread(read)
    return json(render_for(request, entry, chosen, fields=fields))


ORDER_FIELDS = order_fields("elecDocumentSize")


@routes.get(BASE + "/Entries/{entryId}/Laserfiche.Repository.Folder/children")
async def list_children(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    chosen = parse_select(request)
    order = odata.orderby(request, ORDER_FIELDS)
    paging = odata.Paging(request)
    # `?fields=Vendor&fields=Amount`: each entry's `fields` holds the values of these
    named = request.query.getall("fields", [])
    metadata = request.app[metadata_key]

    shown = look(request)

    def page() -> tuple[int, bytes]:
        # rendered in the thread too: a page of 1,000 entries takes milliseconds to render
        total, entries = request.app[repository_key].children(entry_id, order, paging.skip, paging.stop)
        if not named:
            return total, PAGES.encode(entries, shown, chosen, paging.skip + 1)
        rendered = [
            render_for(
                request, e, chosen, paging.skip + i + 1, [f for f in metadata.fields(e.id, named) if f.values]
            )
            for i, e in enumerate(entries)
        ]
        return total, orjson.dumps(rendered)

    total, encoded = await asyncio.to_thread(page)
    return paging.encoded(encoded, total, "Laserfiche.Repository.Entry")


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
        entry = await copy_now(operations, user, source_id, parent_id, name, auto_rename, pace_s(request))
    elif entry_type == "Folder":
        entry = await asyncio.to_thread(repository.create_folder, parent_id, name, auto_rename, user)
    elif entry_type == "Shortcut":
        target_id = field(body, "targetId", int, required=True)
        assert target_id is not None
        entry = await asyncio.to_thread(
            repository.create_shortcut, parent_id, name, target_id, auto_rename, user
        )
    elif entry_type in ("RecordSeries", "Document"):
        raise BadRequest(
            f"The field 'entryType' is {entry_type!r}, which this sandbox does not "
            "create here; use 'Folder' or 'Shortcut' (documents are imported)."
        )
    else:
        raise BadRequest(
            f"The field 'entryType' has an unknown value {entry_type!r}; use 'Folder' or 'Shortcut'."
        )
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
@carries_document
async def import_document(request: web.Request) -> web.Response:
    parent_id = entry_id_param(request)
    name = check_name(request.match_info["fileName"], "fileName")
    auto_rename = bool_param(request, "autoRename")
    repository = request.app[repository_key]
    parent = await asyncio.to_thread(repository.entry, parent_id)
    if not parent.is_dir:
        raise BadRequest(f"Entry {parent_id} is not a folder.")
    # (the `request` part is checked to be JSON and kept by no one here)
    metadata = json_part("request", {})
    async with received(request, "electronicDocument", unique=True, other_part=metadata) as upload:
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
    op = await start_copy(
        request.app[operations_key], session_of(request), source_id, parent_id, name, auto_rename, pace_s=pace
    )
    return _started(request, op)


# the published client's route, and the Long Operations guide's
for _route in ("/Laserfiche.Repository.Folder/CopyAsync", "/Laserfiche.Repository.Folder/children/CopyAsync"):
    routes.post(BASE + "/Entries/{entryId}" + _route)(copy_async)


@routes.delete(BASE + "/Entries/{entryId}")
async def delete_entry(request: web.Request) -> web.Response:
    pace = pace_s(request)
    entry_id = entry_id_param(request)
    await audit_body(request, "comment")
    op = await start_delete(request.app[operations_key], session_of(request), entry_id, pace_s=pace)
    return _started(request, op)


def render_progress(request: web.Request, op: Operation) -> dict[str, Any]:
    return {
        "operationToken": op.token,
        "operationType": op.kind.value,
        "percentComplete": op.percent,
        "status": op.status.value,
        "errors": [{"objectId": e.object_id, "errorMessage": e.message} for e in op.errors],
        "redirectUri": repository_url(request, op.location) if op.location else None,
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


@status_routes.get(BASE + "/Tasks/{operationToken}")
async def get_task(request: web.Request) -> web.Response:
    op = await _operation(request)
    body = render_progress(request, op)
    if not op.done:
        return json(body, status=202, headers={"Retry-After": str(POLL_AFTER_S)})
    if op.location:
        location = {"Location": repository_url(request, op.location)}
        # the guide redirects to the new entry; the published client expects 201 with the progress
        status = 201 if request.app[settings_key].profile == "sdk" else 302
        return json(body, status=status, headers=location)
    return json(body)


@status_routes.delete(BASE + "/Tasks/{operationToken}")
async def cancel_task(request: web.Request) -> web.Response:
    operations = request.app[operations_key]
    op = operations.get(session_of(request), request.match_info["operationToken"])
    if op.done:
        # what the vendor's own .NET and Java client tests expect of a cancel that comes too late
        raise BadRequest(
            f"Operation {op.token} has already ended ({op.status.value}); there is nothing to cancel.",
            title="Cannot cancel ended operation.",
        )
    await operations.cancel(op)
    return web.Response(status=204)


# the REST-guidelines vocabulary generic pollers (azure-core's LROBasePolling) understand
MONITOR_STATUS = {
    Status.NOT_STARTED: "NotStarted",
    Status.IN_PROGRESS: "Running",
    Status.COMPLETED: "Succeeded",
    Status.FAILED: "Failed",
    Status.CANCELLED: "Canceled",
}


@status_routes.get(BASE + "/Tasks/{operationToken}/status")
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
    if op.location:
        body["resourceLocation"] = repository_url(request, op.location)
    headers = None if op.done else {"Retry-After": str(POLL_AFTER_S)}
    return json(body, headers=headers)
