"""v2 searches: `SearchAsync` starts a search as a task; its result rows are read page by page
(`Results`, with `$select`, `$orderby`, `fields=` columns, `refresh`) and each row's context hits
(`ContextHits`); `SimpleSearches` answers the first matches at once. Thin handlers over
`search` (the language and matching) and `kinds.search` (the walk)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ...errors import BadRequest, Conflict, NotFound
from ...keys import metadata_key, operations_key, repository_key, settings_key
from ...kinds.search import SearchHook, SearchWork
from ...metadata.model import Metadata
from ...operations import Kind, Operation
from ...repository import Entry
from ...repository.entries import sort_entries
from ...search import grammar, results
from ...search.matching import Candidate, Hit, Search, compile_search, values_of
from .. import metadata_shapes as shapes
from .. import odata
from ..common import bool_param, field, int_param, json, pace_s, read_json, session_of
from ..laserfiche_common import look
from . import render
from .entries import ORDER_FIELDS
from .render import BASE
from .tasks import start_task

routes = web.RouteTableDef()

# ContextHits' default page (the published v2 description); Results' is OData's 150
HITS_PAGE_SIZE = 100
# SimpleSearches answers at most this many entries
SIMPLE_SEARCH_LIMIT = 100
# `fields=` names at most this many field columns
MAX_FIELD_COLUMNS = 10
# what a context hit carries (what `$select` may name)
HIT_MEMBERS = (
    "hitType", "isAnnotationHit", "annotationId", "pageNumber", "pageOffset", "context", "highlight1Offset",
    "highlight1Length", "highlight2Offset", "highlight2Length", "hitWidth", "edocHitCount", "fieldHitCount",
    "fieldName", "hitNumber",
)  # fmt: skip
# refreshes under way (one at a time per search)
_refreshing: set[str] = set()


async def _command(request: web.Request) -> tuple[str, Search]:
    """The body's search command, parsed and checked against the catalog (400 naming what is not
    supported); fuzzy searches are not."""
    body = await read_json(request)
    command = field(body, "searchCommand", str, required=True)
    fuzzy = field(body, "fuzzyType", str)
    field(body, "fuzzyFactor", int)
    if fuzzy not in (None, "None"):
        raise BadRequest(f"The field 'fuzzyType' {fuzzy!r} is not supported: this sandbox searches exactly.")
    assert command is not None
    return command, compile_search(grammar.parse(command), request.app[metadata_key].catalog)


def _search_of(request: web.Request) -> Operation:
    op = request.app[operations_key].get(session_of(request), request.match_info["taskId"])
    if op.kind is not Kind.SEARCH:
        raise NotFound(f"Task {op.token} is not a search.")
    return op


def _field_columns(request: web.Request) -> list[str]:
    named = request.query.getall("fields", [])
    if len(named) > MAX_FIELD_COLUMNS:
        raise BadRequest(f"The parameter 'fields' names {len(named)} fields; at most {MAX_FIELD_COLUMNS}.")
    return named


def _columns(metadata: Metadata, entry_id: int, named: list[str]) -> list[dict[str, Any]]:
    """The `fields` of a result row: the named fields' first values (blocking)."""
    try:
        found = metadata.fields(entry_id, named)
    except NotFound:
        return []  # (gone since it was found)
    return [shapes.field_values(f, v2=True) | {"values": list(f.values[:1])} for f in found if f.values]


# ---- starting ----------------------------------------------------------------------------------


@routes.post(BASE + "/Searches/SearchAsync")
async def start_search(request: web.Request) -> web.Response:
    pace = pace_s(request)
    command, search = await _command(request)
    operations = request.app[operations_key]
    work = SearchWork(command, search, operations.progress(pace), request.app[metadata_key])
    return await start_task(request, work, SearchHook(work))


@routes.post(BASE + "/SimpleSearches")
async def simple_search(request: web.Request) -> web.Response:
    """The first matches, found in the request (no task, nothing kept)."""
    pace = pace_s(request)
    chosen = odata.select(request, render.ENTRY_FIELDS, render.ALWAYS_SELECTED)
    order = odata.orderby(request, ORDER_FIELDS)
    count = bool_param(request, "$count")
    named = _field_columns(request)
    command, search = await _command(request)
    operations = request.app[operations_key]
    metadata = request.app[metadata_key]
    work = SearchWork(command, search, operations.progress(pace), metadata, limit=SIMPLE_SEARCH_LIMIT)
    await operations.run_now(work, "search")
    shown = look(request)

    def build() -> list[dict[str, Any]]:
        found = list(work.found)
        if order:
            sort_entries(found, order)
        return [_row(e, shown, i, metadata, named, chosen) for i, e in enumerate(found, 1)]

    rows = await asyncio.to_thread(build)
    body: dict[str, Any] = {"value": rows}
    if count:
        body["@odata.count"] = len(rows)
    return json(body)


def _row(
    entry: Entry, shown: Any, number: int, metadata: Metadata, named: list[str], chosen: set[str] | None
) -> dict[str, Any]:
    columns = _columns(metadata, entry.id, named) if named else None
    body = render.render(entry, shown, number, fields=columns)
    return body if chosen is None else {k: v for k, v in body.items() if k in chosen}


# ---- reading -----------------------------------------------------------------------------------


async def _refresh(request: web.Request, op: Operation) -> None:
    """Run an ended search again: a new set of rows, which replaces the old one once complete."""
    if op.token in _refreshing:
        raise Conflict("The results are being refreshed already; read them once that is done.",
                       title="A refresh is under way.")  # fmt: skip
    store = request.app[repository_key].store
    _refreshing.add(op.token)
    try:
        found = await asyncio.to_thread(results.record, store, op.token)
        search = compile_search(grammar.parse(found.command), request.app[metadata_key].catalog)
        operations = request.app[operations_key]
        run = found.run + 1
        progress = operations.progress(pace_s(request))
        work = SearchWork(found.command, search, progress, request.app[metadata_key], token=op.token, run=run)
        await operations.run_now(work, "search")
        await asyncio.to_thread(results.switch, store, op.token, run, time.time_ns())
    finally:
        _refreshing.discard(op.token)


async def _read(request: web.Request, op: Operation) -> results.Record:
    """The search's record, read now (404 once its results expired); `refresh=true` first runs it
    again if it has ended."""
    if bool_param(request, "refresh") and op.done:
        await _refresh(request, op)
    store = request.app[repository_key].store
    ttl_ns = int(request.app[settings_key].search_results_ttl_s * 1e9)

    def read() -> results.Record:
        now = time.time_ns()
        results.sweep(store, ttl_ns, now)
        return results.read(store, op.token, not op.done, ttl_ns, now)

    return await asyncio.to_thread(read)


@routes.get(BASE + "/Searches/{taskId}/Results")
async def list_results(request: web.Request) -> web.Response:
    """A page of the rows found so far (all of them once the search has ended)."""
    op = _search_of(request)
    chosen = odata.select(request, render.ENTRY_FIELDS, render.ALWAYS_SELECTED)
    order = odata.orderby(request, ORDER_FIELDS)
    paging = odata.Paging(request)
    named = _field_columns(request)
    folders_first = bool_param(request, "groupByEntryType")
    bool_param(request, "formatFieldValues")
    found = await _read(request, op)
    store = request.app[repository_key].store
    metadata = request.app[metadata_key]
    shown = look(request)

    def build() -> tuple[int, list[dict[str, Any]]]:
        total = results.count(store, op.token, found.run)
        rows = results.page(
            store, op.token, found.run, order, paging.skip, paging.stop - paging.skip, folders_first
        )
        return total, [_row(e, shown, number, metadata, named, chosen) for number, e in rows]

    total, rows = await asyncio.to_thread(build)
    return paging.response(rows, total, "Laserfiche.Repository.Entry")


@routes.get(BASE + "/Searches/{taskId}/Results/{rowNumber}/ContextHits")
async def list_context_hits(request: web.Request) -> web.Response:
    """Why a row matched: its hits (names, field values, tags, text), found again in the entry as
    it is now."""
    op = _search_of(request)
    number = int_param(request.match_info["rowNumber"], "rowNumber")
    chosen = odata.select(request, set(HIT_MEMBERS), ())
    paging = odata.Paging(request, HITS_PAGE_SIZE)
    found = await _read(request, op)
    search = compile_search(grammar.parse(found.command), request.app[metadata_key].catalog)
    metadata = request.app[metadata_key]
    store = request.app[repository_key].store

    def hits() -> list[Hit]:
        entry = results.row(store, op.token, found.run, number)
        candidate = _candidate(metadata, entry, store.root_fd)
        return search.match(candidate, every=True) or []

    rendered = _hits(await asyncio.to_thread(hits))
    rendered = odata.order_items(request, rendered)
    page = rendered[paging.skip : paging.stop]
    if chosen is not None:
        page = [{k: v for k, v in hit.items() if k in chosen} for hit in page]
    return paging.response(page, len(rendered), "Laserfiche.Repository.SearchContextHit")


def _candidate(metadata: Metadata, entry: Entry, root_fd: int) -> Candidate:
    def tag_name(tag_id: int) -> str | None:
        definition = metadata.tag_definition(tag_id)
        return definition.name if definition else None

    with metadata.store.lock:
        values = values_of(metadata.store.conn, metadata.catalog, tag_name, [entry.id])
    fields, tags = values.get(entry.id, ({}, []))
    template = metadata.catalog.template(entry.template_id) if entry.template_id else None
    return Candidate(entry, fields, tags, template.name if template else "", root_fd)


def _hits(hits: list[Hit]) -> list[dict[str, Any]]:
    edoc = sum(hit.hit_type == "Edoc" for hit in hits)
    fields = sum(hit.hit_type == "Field" for hit in hits)
    return [
        {
            "hitType": hit.hit_type,
            "isAnnotationHit": False,
            "annotationId": 0,
            "pageNumber": 0,
            "pageOffset": hit.page_offset,
            "context": hit.context,
            "highlight1Offset": hit.offset,
            "highlight1Length": hit.length,
            "highlight2Offset": 0,
            "highlight2Length": 0,
            "hitWidth": hit.length,
            "edocHitCount": edoc,
            "fieldHitCount": fields,
            "fieldName": hit.field_name or None,
            "hitNumber": number,
        }
        for number, hit in enumerate(hits, 1)
    ]
