"""Open Connectors bulk jobs over the documents hub: thin handlers over `server.elements.bulk`.

`POST /hubs/documents/bulk/query?q=<CEQL>` starts a job; `/bulk/{id}/status`, `/bulk/jobs`,
`/bulk/{id}/cancel` and `/bulk/{id}/errors` follow it; `/bulk/{id}/{objectName}` downloads its
records as JSON, NDJSON or CSV (by `Accept`), streamed from the file the job wrote.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from ..ceql import FIELDS, parse
from ..elements import check_callback_url
from ..elements.bulk import BulkHook, Job, JobStatus
from ..errors import BadRequest, NotAcceptable, NotFound, TooManyRequests
from ..keys import INSTANCE, REQUEST_ID, events_key, jobs_key, metadata_key, operations_key, repository_key
from ..kinds.bulk import BulkWork, open_records
from ..operations import Operation
from .common import int_param, json, pace_s, session_of
from .elements import HUB, busy, hub
from .transfer import DescriptorFileResponse, check_range

BULK = HUB + "/bulk"
# the records are read and converted this much at a time (one thread hop each)
CHUNK_BYTES = 1024 * 1024
# the formats a download comes in, by the media type `Accept` names
NDJSON, JSON_ARRAY, CSV = "application/x-ndjson", "application/json", "text/csv"
MEDIA_TYPES = {NDJSON: NDJSON, "application/ndjson": NDJSON, JSON_ARRAY: JSON_ARRAY, CSV: CSV}
# the formats a media range stands for, in the order they are chosen
RANGES = {"*/*": (JSON_ARRAY, NDJSON, CSV), "application/*": (JSON_ARRAY, NDJSON), "text/*": (CSV,)}
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")

routes = web.RouteTableDef()


@routes.post(BULK + "/query")
@hub
async def start_query(request: web.Request) -> web.Response:
    pace = pace_s(request)
    text = request.query.get("q")
    if text is None:
        raise BadRequest("The parameter 'q' (a CEQL query) is required.")
    query = parse(text)
    # the callback: the request's header, else the instance's URL; neither: no callback
    url = request.headers.get("Elements-Async-Callback-URL", "").strip()
    instance = request[INSTANCE]
    url = check_callback_url(url, "header 'Elements-Async-Callback-URL'") if url else instance.callback_url
    operations = request.app[operations_key]
    work = BulkWork(query, operations.progress(pace), request.app[metadata_key])
    events = request.app[events_key]
    hook = BulkHook(events, instance, request.method, request.path_qs, url, query=query, work=work)
    try:
        await operations.start(session_of(request), work, hook)
    except TooManyRequests as exc:
        raise await busy(request, exc) from None
    return json({"id": hook.event_id, "status": JobStatus.CREATED.value})


async def _job(request: web.Request) -> tuple[Job, Operation]:
    job_id = int_param(request.match_info["id"], "id", 1)
    return await asyncio.to_thread(request.app[jobs_key].get, job_id, session_of(request).id)


@routes.get(BULK + "/jobs")
@hub
async def list_jobs(request: web.Request) -> web.Response:
    jobs = request.app[jobs_key]
    found = await asyncio.to_thread(jobs.of_session, session_of(request).id)
    return json([jobs.status(job, op) for job, op in found])


@routes.get(BULK + "/{id}/status")
@hub
async def get_status(request: web.Request) -> web.Response:
    job, op = await _job(request)
    return json(request.app[jobs_key].status(job, op))


@routes.put(BULK + "/{id}/cancel")
@hub
async def cancel(request: web.Request) -> web.Response:
    """Start the cancellation: the job reads CANCELLATION_PENDING until it has stopped, then
    CANCELLED (and its callback says so)."""
    job, op = await _job(request)
    if op.done:
        raise BadRequest(
            f"Bulk job {job.id} has already ended ({job.status.value}); there is nothing to cancel.",
            title="Cannot cancel ended job.",
        )
    request.app[operations_key].begin_cancel(op)
    return json(request.app[jobs_key].status(job, op))


@routes.get(BULK + "/{id}/errors")
@hub
async def get_errors(request: web.Request) -> web.Response:
    """What went wrong: the failure of a job that failed (records are not refused one by one here)."""
    job, _ = await _job(request)
    return json([{"message": job.message}] if job.status is JobStatus.FAILED else [])


@routes.get(BULK + "/{id}/{objectName}")
@hub
async def download(request: web.Request) -> web.StreamResponse:
    job, op = await _job(request)
    if request.match_info["objectName"] != job.object_name:
        raise NotFound(f"Bulk job {job.id} holds {job.object_name}, not {request.match_info['objectName']}.")
    if op.status.value != "Completed":
        status = request.app[jobs_key].status(job, op)["status"]
        raise BadRequest(
            f"Bulk job {job.id} is {status}: its records can be downloaded once it has COMPLETED.",
            title="Bulk job not completed.",
        )
    media = _media_type(request)
    repository = request.app[repository_key]
    fd = await asyncio.to_thread(open_records, repository, str(op.result["file"]))
    if media == NDJSON:
        # the file as it is: sendfile, and a Range as for any download
        try:
            check_range(request, os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise
        return DescriptorFileResponse(fd, headers={"Content-Type": NDJSON})
    columns = list(parse(job.query).fields or FIELDS)
    # (the middleware's headers come too late for a response that is sent from here)
    response = web.StreamResponse(headers={"Content-Type": media, "X-RequestId": request[REQUEST_ID]})
    try:
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        chunks = _json_chunks(fd) if media == JSON_ARRAY else _csv_chunks(fd, columns)
        while chunk := await asyncio.to_thread(next, chunks, b""):
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: the answer, begun as a 200, ends here
    finally:
        await asyncio.to_thread(os.close, fd)
    return response


def _media_type(request: web.Request) -> str:
    """The format `Accept` prefers (RFC 9110: by weight, then as listed; a range such as */* stands
    for the formats it covers that are not named with q=0); JSON if it names none; 406 if it
    accepts none of them."""
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return JSON_ARRAY
    ranked: list[tuple[float, int, str]] = []
    refused: set[str] = set()
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                # a weight is 0 to 1 with up to three decimals; anything else counts as 0
                weight = float(value) if _QVALUE.fullmatch(value.strip()) else 0.0
        media = media.lower()
        if weight == 0:
            refused.add(MEDIA_TYPES.get(media, media))
        else:
            ranked.append((-weight, position, media))
    for _, _, media in sorted(ranked):
        for covered in RANGES.get(media, (MEDIA_TYPES.get(media),)):
            if covered is not None and covered not in refused:
                return covered
    raise NotAcceptable(f"The records come as {JSON_ARRAY}, {NDJSON} or {CSV}; 'Accept' takes none of them.")


def _lines(fd: int) -> Iterator[list[bytes]]:
    """The file's records, a chunk of whole lines at a time; blocking."""
    rest = b""
    while block := os.read(fd, CHUNK_BYTES):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        yield block[:cut].splitlines()
    if rest.strip():
        yield [rest]


def _json_chunks(fd: int) -> Iterator[bytes]:
    """The records as one JSON array, a chunk at a time; blocking."""
    opening = b"["
    for lines in _lines(fd):
        yield opening + b",".join(lines)
        opening = b","
    yield b"[]" if opening == b"[" else b"]"


def _csv_chunks(fd: int, columns: list[str]) -> Iterator[bytes]:
    """The records as CSV (a header row, then a row each; tags as a JSON array); blocking."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for lines in _lines(fd):
        for line in lines:
            found: dict[str, Any] = orjson.loads(line)
            writer.writerow([_cell(found.get(column)) for column in columns])
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    yield out.getvalue().encode()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        # (JSON: a tag may hold any character, a separator too)
        return orjson.dumps(value).decode()
    return "" if value is None else value
