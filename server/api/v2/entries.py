"""v2 entries: thin handlers over the repository (the long operations are in `tasks`)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from aiohttp import web

from ...errors import BadRequest
from ...keys import metadata_key, operations_key, repository_key, settings_key
from ...kinds.copy import copy_now
from ...repository import Entry, check_name, check_segments, extension_to_keep
from .. import metadata_shapes as shapes
from .. import odata
from ..common import bool_param, field, int_param, json, pace_s, public, read_json, session_of
from ..laserfiche_common import EntryPages, by_path, look, order_fields
from ..transfer import carries_document, json_part, received, send_document
from . import render
from .render import BASE

routes = web.RouteTableDef()

# the metadata listings' default page (v2: Fields, Tags, Links)
METADATA_PAGE_SIZE = 100
ORDER_FIELDS = order_fields("electronicDocumentSize")
# a folder path's separators: either slash
_SEPARATOR = re.compile(r"[/\\]")
# listings' entries, as JSON kept from one page to the next (without `?fields=`: no values)
PAGES = EntryPages(lambda entry, shown: render.render(entry, shown, 0))


def entry_id_param(request: web.Request) -> int:
    return int_param(request.match_info["entryId"], "entryId")


def _entry(request: web.Request, entry: Entry, status: int = 200) -> web.Response:
    headers = {"Location": render.entry_url(request, entry.id)} if status == 201 else None
    return json(render.render(entry, look(request)), status=status, headers=headers)


def auto_rename_of(request: web.Request, body: dict[str, Any]) -> bool:
    """v2 takes `autoRename` in the body; the query form v1 uses is taken too."""
    in_body = field(body, "autoRename", bool)
    return bool_param(request, "autoRename") if in_body is None else in_body


async def destination(request: web.Request, parent_id: int, body: dict[str, Any]) -> int:
    """The folder a new entry goes into: the route's, or the folder at the body's `folderPath`
    below it (`/` or `\\` between names), created if `?autoCreateFolderPath=true`."""
    create = bool_param(request, "autoCreateFolderPath")
    folder_path = field(body, "folderPath", str)
    if not folder_path:  # (absent, null or "": the route's folder itself)
        return parent_id
    names = check_segments(_SEPARATOR.split(folder_path), "field 'folderPath'")
    user = session_of(request).user
    repository = request.app[repository_key]
    folder = await asyncio.to_thread(repository.folder_at, parent_id, names, create, user)
    return folder.id


# ---- repositories ----------------------------------------------------------------------------


@routes.get("/v2/Repositories")
@public
async def list_repositories(request: web.Request) -> web.Response:
    repo = request.app[settings_key].repository_id
    # the web client of this sandbox is its dashboard
    web_client = str(request.url.origin().with_path("/").with_query(repository=repo))
    return json({"value": [{"id": repo, "name": repo, "webClientUrl": web_client}]})


# ---- reading ---------------------------------------------------------------------------------


@routes.get(BASE + "/Entries/ByPath")
async def get_entry_by_path(request: web.Request) -> web.Response:
    found, ancestor = await by_path(request)
    # (only the member that answers: the client takes a null one for an answer)
    if found is not None:
        return json({"entry": render.render(found, look(request))})
    return json({"ancestorEntry": render.render(ancestor, look(request))})


@routes.get(BASE + "/Entries/{entryId}")
async def get_entry(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    chosen = odata.select(request, render.ENTRY_FIELDS, render.ALWAYS_SELECTED)
    child_info = bool_param(request, "includeChildInfo")
    total_size = bool_param(request, "includeTotalSize")
    repository = request.app[repository_key]

    def read() -> dict[str, Any]:
        entry = repository.entry(entry_id)
        # (childInfo is for folders: other entries ignore it)
        counts = repository.child_counts(entry.id) if child_info and entry.is_dir else None
        return render.render(entry, look(request), child_info=counts, total_size=total_size)

    body = await asyncio.to_thread(read)
    if chosen is not None:
        body = {k: v for k, v in body.items() if k in chosen}
    return json(body)


@routes.get(BASE + "/Entries/{entryId}/Folder/Children")
async def list_children(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    chosen = odata.select(request, render.ENTRY_FIELDS, render.ALWAYS_SELECTED)
    order = odata.orderby(request, ORDER_FIELDS)
    paging = odata.Paging(request)
    shown = look(request)
    # `?fields=Vendor&fields=Amount`: each entry's `fields` holds the values of these
    named = request.query.getall("fields", [])
    metadata = request.app[metadata_key]

    def fields(entry: Entry) -> list[dict[str, Any]] | None:
        if not named:
            return None
        return [shapes.field_values(f, v2=True) for f in metadata.fields(entry.id, named) if f.values]

    def page() -> tuple[int, bytes]:
        # rendered in the thread too: a page of 1,000 entries takes milliseconds to render
        total, entries = request.app[repository_key].children(entry_id, order, paging.skip, paging.stop)
        if not named:
            return total, PAGES.encode(entries, shown, chosen, paging.skip + 1)
        rendered = [
            render.render(e, shown, paging.skip + i + 1, fields=fields(e)) for i, e in enumerate(entries)
        ]
        if chosen is not None:
            rendered = [{k: v for k, v in body.items() if k in chosen} for body in rendered]
        return total, orjson.dumps(rendered)

    total, encoded = await asyncio.to_thread(page)
    return paging.encoded(encoded, total, "Laserfiche.Repository.Entry")


@routes.get(BASE + "/Entries/{entryId}/Document/Edoc")
async def download(request: web.Request) -> web.StreamResponse:
    # (through a shortcut: its target's bytes)
    return await send_document(request, entry_id_param(request), lambda entry: entry.file_name)


# ---- changing --------------------------------------------------------------------------------


@routes.post(BASE + "/Entries/{entryId}/Folder/Children")
async def create_child(request: web.Request) -> web.Response:
    parent_id = entry_id_param(request)
    body = await read_json(request)
    entry_type = field(body, "entryType", str, required=True)
    name = check_name(field(body, "name", str, required=True) or "")
    auto_rename = auto_rename_of(request, body)
    target_id = field(body, "targetId", int)
    if entry_type not in ("Folder", "Shortcut"):
        raise BadRequest(
            f"The field 'entryType' must be 'Folder' or 'Shortcut', got {entry_type!r} "
            "(documents are imported)."
        )
    if entry_type == "Shortcut" and target_id is None:
        raise BadRequest("The field 'targetId' is required for a shortcut.")
    repository = request.app[repository_key]
    user = session_of(request).user
    # (the target is checked before the folders of folderPath are made: a refusal changes nothing)
    target = None
    if target_id is not None and entry_type == "Shortcut":
        target = await asyncio.to_thread(repository.shortcut_target, target_id)
    folder_id = await destination(request, parent_id, body)
    if target is not None:
        entry = await asyncio.to_thread(repository.make_shortcut, folder_id, name, target, auto_rename, user)
    else:
        entry = await asyncio.to_thread(repository.create_folder, folder_id, name, auto_rename, user)
    return _entry(request, entry, status=201)


@routes.post(BASE + "/Entries/{entryId}/Folder/Copy")
async def copy_entry(request: web.Request) -> web.Response:
    parent_id = entry_id_param(request)
    body = await read_json(request)
    source_id = field(body, "sourceId", int, required=True)
    name = field(body, "name", str, required=True)
    assert source_id is not None and name is not None
    operations = request.app[operations_key]
    user = session_of(request).user
    entry = await copy_now(
        operations, user, source_id, parent_id, name, auto_rename_of(request, body), pace_s(request)
    )
    return _entry(request, entry, status=201)


@routes.patch(BASE + "/Entries/{entryId}")
async def update_entry(request: web.Request) -> web.Response:
    entry_id = entry_id_param(request)
    body = await read_json(request)
    parent_id = field(body, "parentId", int)
    name = field(body, "name", str)
    repository = request.app[repository_key]
    entry = await asyncio.to_thread(repository.move, entry_id, parent_id, name, auto_rename_of(request, body))
    return _entry(request, entry)


@routes.post(BASE + "/Entries/{entryId}/Folder/Import")
@carries_document
async def import_entry(request: web.Request) -> web.Response:
    parent_id = entry_id_param(request)
    repository = request.app[repository_key]
    parent = await asyncio.to_thread(repository.entry, parent_id)
    if not parent.is_dir:
        raise BadRequest(f"Entry {parent_id} is not a folder.")
    metadata: dict[str, Any] = {}
    async with received(request, "file", unique=True, other_part=json_part("request", metadata)) as upload:
        if upload.size == 0:
            raise BadRequest("The file is empty; an import needs at least one byte.", title="Empty file.")
        name = field(metadata, "name", str) or upload.upload_name
        if not name:
            raise BadRequest("The 'request' part's 'name' is required when the file part has no file name.")
        check_name(name)
        auto_rename = auto_rename_of(request, metadata)
        folder_id = await destination(request, parent_id, metadata)
        entry = await asyncio.to_thread(
            repository.import_document,
            folder_id,
            name,
            upload.tmp,
            auto_rename,
            session_of(request).user,
            extension_to_keep(name, upload.upload_name),
        )
    return _entry(request, entry, status=201)
