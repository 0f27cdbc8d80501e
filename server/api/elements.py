"""The Cloud Elements / SAP Open Connectors dialect: the documents hub, element instances and the
events of asynchronous requests. Thin handlers over the repository, the operations engine and the
event records (`server.elements`)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..elements import (
    ELEMENT_KEY,
    ELEMENTS_USER,
    Event,
    EventHook,
    Instance,
    check_callback_url,
    check_configuration,
    event_objects,
)
from ..elements.hub import record
from ..errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from ..keys import (
    INSTANCE,
    deliveries_key,
    events_key,
    instances_key,
    metadata_key,
    operations_key,
    repository_key,
    settings_key,
)
from ..kinds.copy import copy_now, start_copy
from ..kinds.delete import delete_now, start_delete
from ..metadata.model import Metadata
from ..operations import Operation
from ..repository import Entry, Repository, check_name, check_segments
from ..sessions import Session
from ..times import iso
from ..webhooks import Deliveries
from .common import (
    authenticated_by,
    bool_param,
    field,
    int_param,
    json,
    json_built,
    pace_s,
    read_json,
    session_of,
)
from .transfer import carries_document, received, send_document

BASE = "/elements/api-v2"
HUB = BASE + "/hubs/documents"
# the hub's paging: the default page, and the most a client may ask for
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000
# a session never expires by time here: the Element token is the credential, and lives as long as its instance
NEVER_NS = 2**62

routes = web.RouteTableDef()


# ---- credentials ---------------------------------------------------------------------------


def _credentials(request: web.Request) -> dict[str, str]:
    """`Authorization: User <secret>, Organization <secret>, Element <token>` -> {"user": …}."""
    found: dict[str, str] = {}
    for piece in request.headers.get("Authorization", "").split(","):
        key, _, value = piece.strip().partition(" ")
        if key and value.strip():
            found[key.lower()] = value.strip()
    return found


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode("utf-8", "surrogatepass"), expected.encode())


def _check_user(request: web.Request, needs: str) -> dict[str, str]:
    credentials = _credentials(request)
    if not _same(credentials.get("user"), request.app[settings_key].elements_user_secret):
        raise Unauthorized(
            f"An 'Authorization: User <user secret>, {needs}' header with the right User secret is required.",
            title="Invalid or missing credentials.",
        )
    return credentials


def _instance_of(request: web.Request, credentials: dict[str, str]) -> Instance:
    instance = request.app[instances_key].by_token(credentials.get("element", ""))
    if instance is None:
        raise Unauthorized(
            "The Element token is missing, or names no instance (deleted, or never created).",
            title="Invalid or missing credentials.",
        )
    request[INSTANCE] = instance
    return instance


def session_for(user_secret: str, instance: Instance | None) -> Session:
    """One session per User secret and Element token: the one-operation-at-a-time scope."""
    scope = f"{user_secret}\0{instance.token if instance else ''}"
    return Session("el-" + hashlib.sha256(scope.encode()).hexdigest()[:16], ELEMENTS_USER, NEVER_NS)


def hub_auth(request: web.Request) -> Session:
    credentials = _check_user(request, "Element <instance token>")
    return session_for(credentials["user"], _instance_of(request, credentials))


def platform_auth(request: web.Request) -> Session:
    credentials = _check_user(request, "Organization <organization secret>")
    if not _same(credentials.get("organization"), request.app[settings_key].elements_org_secret):
        raise Unauthorized(
            "An 'Authorization: User <user secret>, Organization <organization secret>' header is required.",
            title="Invalid or missing credentials.",
        )
    return session_for(credentials["user"], None)


def events_auth(request: web.Request) -> Session:
    """The organization sees every event; an instance's token sees that instance's."""
    credentials = _check_user(request, "Organization <organization secret> or Element <instance token>")
    if "element" in credentials:
        return session_for(credentials["user"], _instance_of(request, credentials))
    return platform_auth(request)


hub = authenticated_by(hub_auth)
platform = authenticated_by(platform_auth)
events = authenticated_by(events_auth)


# ---- entries --------------------------------------------------------------------------------


def _rendered(metadata: Metadata, entries: list[Entry]) -> list[dict[str, Any]]:
    """Entries as the hub shows them, with their tags; blocking (a page takes milliseconds)."""
    tags = metadata.tag_names_of([e.id for e in entries])
    return [record(e, tags.get(e.id)) for e in entries]


async def _one(request: web.Request, entry: Entry) -> web.Response:
    return json((await asyncio.to_thread(_rendered, request.app[metadata_key], [entry]))[0])


def _segments(raw: str, what: str) -> list[str]:
    """A hub path ("/a/b", leading slash optional) as names, each checked."""
    return check_segments([s for s in raw.split("/") if s], what)


def _found(repository: Repository, segments: list[str], what: str) -> Entry:
    """The entry at a hub path; blocking."""
    found, _ = repository.by_path(segments)
    if found is None or found.is_shortcut:  # (the hub has no shortcuts: it leaves them out)
        raise NotFound(f"No {what} at '/{'/'.join(segments)}'.")
    return found


def _target_finder(request: web.Request, directory: bool) -> Callable[[], Entry]:
    """How to find the entry a route names, by `/{id}` or by `?path=` (a folder or a file as the
    route needs), its parameters checked now; the finding blocks (see `_target`)."""
    what = "folder" if directory else "file"
    repository = request.app[repository_key]
    raw_id = request.match_info.get("id")
    if raw_id is not None:
        entry_id = int_param(raw_id, "id", 1)

        def by_id() -> Entry:
            entry = repository.entry(entry_id)
            if entry.is_shortcut:
                raise NotFound(f"No {what} with id {entry.id}.")
            return _of_kind(entry, directory)

        return by_id
    path = request.query.get("path")
    if path is None:
        raise BadRequest("The parameter 'path' is required.")
    segments = _segments(path, "parameter 'path'")
    return lambda: _of_kind(_found(repository, segments, what), directory)


def _of_kind(entry: Entry, directory: bool) -> Entry:
    if entry.is_dir != directory:
        where = "/" + "/".join(entry.parts)
        what = "folder" if directory else "file"
        raise BadRequest(f"'{where}' is a {'file' if directory else 'folder'}, not a {what}.")
    return entry


async def _target(request: web.Request, directory: bool) -> Entry:
    """The entry a route names, by `/{id}` or by `?path=`; a folder or a file as the route needs."""
    return await asyncio.to_thread(_target_finder(request, directory))


def _destination_finder(request: web.Request, path: str, name: str | None) -> Callable[[], tuple[Entry, str]]:
    """How to find where a new entry goes (see `_destination`), `path` checked now; the finding blocks."""
    segments = _segments(path, "field 'path'")
    if not segments and name is None:
        raise BadRequest("The field 'path' must name the new entry, as in '/Folder/Name'.")
    repository = request.app[repository_key]

    def find() -> tuple[Entry, str]:
        parent = _found(repository, segments[:-1], "parent folder")
        if not parent.is_dir:
            raise BadRequest(f"'/{'/'.join(parent.parts)}' is a file, not a folder.")
        return parent, check_name(segments[-1] if name is None else name, "name")

    return find


async def _destination(request: web.Request, path: str, name: str | None) -> tuple[Entry, str]:
    """Where a new entry goes: the parent folder of `path`, under `name` or `path`'s last segment."""
    return await asyncio.to_thread(_destination_finder(request, path, name))


def _tags(body: dict[str, Any]) -> list[str] | None:
    tags = field(body, "tags", list)
    if tags is not None and not all(isinstance(t, str) for t in tags):
        raise BadRequest("The field 'tags' must be an array of strings.")
    return tags


def _paging(request: web.Request) -> tuple[int, int]:
    raw_page = request.query.get("nextPage") or request.query.get("page") or "1"
    page = int_param(raw_page, "page", 1)
    size = int_param(request.query.get("pageSize", str(DEFAULT_PAGE_SIZE)), "pageSize", 1)
    if size > MAX_PAGE_SIZE:
        raise BadRequest(f"The parameter 'pageSize' must be at most {MAX_PAGE_SIZE}.")
    return page, size


# ---- folders --------------------------------------------------------------------------------


async def list_folder(request: web.Request) -> web.Response:
    folder = await _target(request, directory=True)
    page, size = _paging(request)
    start = (page - 1) * size
    repository = request.app[repository_key]

    def listed() -> tuple[int, list[dict[str, Any]]]:
        # (shortcuts are Laserfiche's: the hub has no such thing, and leaves them out)
        total, entries = repository.children(folder.id, [("name", False)], start, start + size, False)
        return total, _rendered(request.app[metadata_key], entries)

    total, rendered = await asyncio.to_thread(listed)
    headers = {"Elements-Total-Count": str(total), "Elements-Returned-Count": str(len(rendered))}
    if start + size < total:
        headers["Elements-Next-Page-Token"] = str(page + 1)
    return json(rendered, headers=headers)


@routes.post(HUB + "/folders")
@hub
async def create_folder(request: web.Request) -> web.Response:
    body = await read_json(request)
    path = field(body, "path", str) or request.query.get("path")
    if path is None:
        raise BadRequest("The field 'path' is required.")
    tags = _tags(body)
    parent, name = await _destination(request, path, field(body, "name", str))
    repository = request.app[repository_key]
    entry = await asyncio.to_thread(repository.create_folder, parent.id, name, False, ELEMENTS_USER)
    if tags:
        await asyncio.to_thread(request.app[metadata_key].set_hub_tags, entry.id, tags)
    return await _one(request, entry)


def _metadata_routes(directory: bool) -> None:
    kind = "folders" if directory else "files"

    @hub
    async def get_metadata(request: web.Request) -> web.Response:
        return await _one(request, await _target(request, directory))

    @hub
    async def patch_metadata(request: web.Request) -> web.Response:
        entry = await _target(request, directory)
        body = await read_json(request)
        path, name, tags = field(body, "path", str), field(body, "name", str), _tags(body)
        repository = request.app[repository_key]
        if path is not None:
            parent, new_name = await _destination(request, path, name)
            entry = await asyncio.to_thread(repository.move, entry.id, parent.id, new_name, False)
        elif name is not None:
            entry = await asyncio.to_thread(repository.move, entry.id, None, name, False)
        if tags is not None:
            await asyncio.to_thread(request.app[metadata_key].set_hub_tags, entry.id, tags)
        return await _one(request, entry)

    for route in (f"{HUB}/{kind}/metadata", f"{HUB}/{kind}/{{id}}/metadata"):
        routes.get(route)(get_metadata)
        routes.patch(route)(patch_metadata)


# ---- copy and delete, synchronous or asynchronous ------------------------------------------


def _asynchronous(request: web.Request) -> str | None:
    """Where the webhook of a request that asks to run asynchronously goes; None: synchronously.
    One with nowhere to report is refused before anything else is looked at."""
    value = request.headers.get("Elements-Async-Request")
    if value is None or value.strip().lower() == "false":
        return None
    if value.strip().lower() != "true":
        raise BadRequest(f"The header 'Elements-Async-Request' must be true or false, got {value!r}.")
    return _callback_url(request)


def _callback_url(request: web.Request) -> str:
    """Where the webhook goes: the request's header, else the instance's URL; 400 if neither."""
    url = request.headers.get("Elements-Async-Callback-URL", "").strip()
    if url:
        return check_callback_url(url, "header 'Elements-Async-Callback-URL'")
    instance = request[INSTANCE]
    if not instance.callback_url:
        raise BadRequest(
            "An asynchronous request needs a callback URL: send the header 'Elements-Async-Callback-URL', "
            f"or set 'event.notification.callback.url' on instance {instance.id} "
            "(for the default instance, start the server with --callback-url)."
        )
    return instance.callback_url


async def busy(request: web.Request, refusal: TooManyRequests) -> TooManyRequests:
    """The engine's refusal of a second operation in a session, in the platform's terms: the
    event (an asynchronous request's, a bulk job's) that is still running."""
    token = str(refusal.extra.get("operationToken"))
    running = await asyncio.to_thread(request.app[events_key].of_operation, token)
    return TooManyRequests(
        f"Only one asynchronous request may run per instance and user at a time, and event {running} "
        "is still running. Wait for its webhook (or cancel it), then send this request again.",
        headers=refusal.headers,
        extra={"eventId": running},
    )


async def _dispatch(
    request: web.Request,
    url: str,
    tags: list[str],
    start: Callable[[Session, EventHook], Awaitable[Operation]],
) -> web.Response:
    """Start an operation whose end is reported by a webhook to `url`: 202 with the event's id."""
    app = request.app
    hook = EventHook(app[events_key], request[INSTANCE], request.method, request.path_qs, url, tags)
    try:
        await start(session_of(request), hook)
    except TooManyRequests as exc:
        raise await busy(request, exc) from None
    return json({"eventId": hook.event_id, "eventStatus": "dispatched"}, status=202)


def _copy_route(directory: bool) -> None:
    kind = "folders" if directory else "files"

    @hub
    async def copy(request: web.Request) -> web.Response:
        pace = pace_s(request)
        callback = _asynchronous(request)
        find_source = _target_finder(request, directory)
        # the source, the destination and the copy's checks are looked at in one thread hop; the
        # body is read first, but what is wrong with it is told after the source is found, as if
        # it had been read then
        tags: list[str] = []
        refused: Exception | None = None
        find_destination: Callable[[], tuple[Entry, str]] | None = None
        try:
            body = await read_json(request)
            path = field(body, "path", str, required=True)
            assert path is not None
            tags = _tags(body) or []
            find_destination = _destination_finder(request, path, field(body, "name", str))
        except Exception as exc:
            refused = exc
        operations = request.app[operations_key]

        def checked() -> tuple[Entry, Entry, str]:
            source = find_source()
            if refused is not None:
                raise refused
            assert find_destination is not None
            parent, name = find_destination()
            return (*operations.repository.check_copy(source.id, parent.id, name, False), name)

        source, parent, name = await asyncio.to_thread(checked)
        if callback is not None:
            return await _dispatch(
                request,
                callback,
                tags,
                lambda session, hook: start_copy(
                    operations,
                    session,
                    source.id,
                    parent.id,
                    name,
                    False,
                    hook=hook,
                    pace_s=pace,
                    checked=(source, parent),
                ),
            )
        entry = await copy_now(
            operations, ELEMENTS_USER, source.id, parent.id, name, False, pace, checked=(source, parent)
        )
        if tags:
            await asyncio.to_thread(request.app[metadata_key].set_hub_tags, entry.id, tags)
        return await _one(request, entry)

    for route in (f"{HUB}/{kind}/copy", f"{HUB}/{kind}/{{id}}/copy"):
        routes.post(route)(copy)


def _delete_route(directory: bool) -> None:
    kind = "folders" if directory else "files"

    @hub
    async def delete(request: web.Request) -> web.Response:
        pace = pace_s(request)
        callback = _asynchronous(request)
        if directory:
            bool_param(request, "emptyTrash")  # accepted; this repository has no trash
        target = await _target(request, directory)
        operations = request.app[operations_key]
        if callback is not None:
            return await _dispatch(
                request,
                callback,
                [],
                lambda session, hook: start_delete(operations, session, target.id, hook=hook, pace_s=pace),
            )
        changes = await delete_now(operations, target.id, pace)
        return await json_built(lambda: {"events": event_objects(changes)})

    for route in (f"{HUB}/{kind}", f"{HUB}/{kind}/{{id}}"):
        routes.delete(route)(delete)


for _directory in (True, False):
    _metadata_routes(_directory)
    _copy_route(_directory)
    _delete_route(_directory)
for _route in (HUB + "/folders/contents", HUB + "/folders/{id}/contents"):
    routes.get(_route)(hub(list_folder))


# ---- files ----------------------------------------------------------------------------------


@routes.post(HUB + "/files")
@hub
@carries_document
async def upload(request: web.Request) -> web.Response:
    path = request.query.get("path")
    if path is None:
        raise BadRequest("The parameter 'path' is required: the new file's path, as in '/Folder/name.txt'.")
    overwrite = bool_param(request, "overwrite")
    parent, name = await _destination(request, path, None)
    repository = request.app[repository_key]
    # (a second part 'file' is skipped: the first one is the file)
    async with received(request, "file", unique=False) as upload:
        existing, _ = await asyncio.to_thread(repository.by_path, [*parent.parts, name])
        if existing is not None and (existing.is_dir or not overwrite):
            raise Conflict(
                f"'/{'/'.join(existing.parts)}' already exists"
                + ("." if existing.is_dir else "; send overwrite=true to replace it.")
            )
        if existing is not None:
            entry = await asyncio.to_thread(repository.replace_document, existing.id, upload.tmp)
        else:
            entry = await asyncio.to_thread(
                repository.import_document, parent.id, name, upload.tmp, False, ELEMENTS_USER
            )
    return await _one(request, entry)


@hub
async def download(request: web.Request) -> web.StreamResponse:
    entry = await _target(request, directory=False)
    return await send_document(request, entry.id, lambda entry: entry.name)


for _route in (HUB + "/files", HUB + "/files/{id}"):
    routes.get(_route)(download)


# ---- instances ------------------------------------------------------------------------------


def render_instance(instance: Instance) -> dict[str, Any]:
    return {
        "id": instance.id,
        "name": instance.name,
        "token": instance.token,
        "element": {"key": ELEMENT_KEY},
        "configuration": instance.configuration,
        "createdDate": iso(instance.created_ns),
        "disabled": False,
        "tags": [],
    }


def _instance_id(request: web.Request) -> int:
    return int_param(request.match_info["instanceId"], "instanceId", 1)


def _check_instance_name(name: str) -> None:
    if not name.strip():
        raise BadRequest("The field 'name' must not be empty.")


def _configuration(body: dict[str, Any]) -> dict[str, Any] | None:
    configuration = field(body, "configuration", dict)
    return None if configuration is None else check_configuration(configuration)


@routes.post(BASE + "/instances")
@platform
async def create_instance(request: web.Request) -> web.Response:
    body = await read_json(request)
    name = field(body, "name", str, required=True)
    element = field(body, "element", dict, required=True)
    assert name is not None and element is not None
    _check_instance_name(name)
    if element.get("key") != ELEMENT_KEY:
        raise BadRequest(
            f"The field 'element.key' must be '{ELEMENT_KEY}': this sandbox serves the documents hub."
        )
    configuration = _configuration(body) or {}
    instance = await asyncio.to_thread(request.app[instances_key].create, name, configuration)
    return json(render_instance(instance))


@routes.get(BASE + "/instances")
@platform
async def list_instances(request: web.Request) -> web.Response:
    return json([render_instance(i) for i in request.app[instances_key].all()])


@routes.get(BASE + "/instances/{instanceId}")
@platform
async def get_instance(request: web.Request) -> web.Response:
    return json(render_instance(request.app[instances_key].get(_instance_id(request))))


@routes.patch(BASE + "/instances/{instanceId}")
@platform
async def update_instance(request: web.Request) -> web.Response:
    instance_id = _instance_id(request)
    request.app[instances_key].get(instance_id)  # 404 before the body is looked at
    body = await read_json(request)
    name = field(body, "name", str)
    if name is not None:
        _check_instance_name(name)
    configuration = _configuration(body)
    instance = await asyncio.to_thread(request.app[instances_key].update, instance_id, name, configuration)
    return json(render_instance(instance))


@routes.delete(BASE + "/instances/{instanceId}")
@platform
async def delete_instance(request: web.Request) -> web.Response:
    await asyncio.to_thread(request.app[instances_key].delete, _instance_id(request))
    return web.Response(status=204)


# ---- events ---------------------------------------------------------------------------------


def render_events(deliveries: Deliveries, events: list[Event]) -> list[dict[str, Any]]:
    """Events with their delivery attempts; blocking (it reads the attempts)."""
    ids = [e.notification_id for e in events if e.notification_id is not None]
    attempts = deliveries.attempts_of(ids)
    return [render_event(e, attempts.get(e.notification_id or 0, [])) for e in events]


def render_event(event: Event, attempts: list[Any]) -> dict[str, Any]:
    deliveries = []
    if event.notification_id is not None:
        deliveries.append(
            {
                "notificationId": event.notification_id,
                "status": event.delivery_status,
                "attempts": [
                    {
                        "attempt": a.number,
                        "date": iso(a.started_ns),
                        "statusCode": a.status_code,
                        "error": a.error,
                        "durationMs": round(a.duration_ms, 1),
                    }
                    for a in attempts
                ],
                "nextAttemptDate": iso(event.next_ns) if event.next_ns else None,
            }
        )
    return {
        "id": event.id,
        "eventId": event.id,
        "instanceId": event.instance_id,
        "eventStatus": event.status,
        "createdDate": iso(event.created_ns),
        "updatedDate": iso(event.updated_ns),
        "callbackUrl": event.callback_url,
        "request": {"method": event.method, "path": event.path},
        "response": event.response,
        "deliveries": deliveries,
    }


def scope(request: web.Request) -> int | None:
    """The instance whose events the caller may see (None: the organization sees all)."""
    instance = request.get(INSTANCE)
    return None if instance is None else instance.id


async def _event(request: web.Request) -> Event:
    event_id = int_param(request.match_info["eventId"], "eventId", 1)
    return await asyncio.to_thread(request.app[events_key].get, event_id, scope(request))


async def _event_response(request: web.Request, event: Event, status: int = 200) -> web.Response:
    deliveries = request.app[deliveries_key]
    return await json_built(lambda: render_events(deliveries, [event])[0], status)


@routes.get(BASE + "/instances/events")
@events
async def list_events(request: web.Request) -> web.Response:
    page, size = _paging(request)
    found = await asyncio.to_thread(request.app[events_key].recent, scope(request), (page - 1) * size, size)
    deliveries = request.app[deliveries_key]
    return await json_built(lambda: render_events(deliveries, found))


@routes.get(BASE + "/instances/events/{eventId}")
@events
async def get_event(request: web.Request) -> web.Response:
    return await _event_response(request, await _event(request))


@routes.delete(BASE + "/instances/events/{eventId}")
@events
async def cancel_event(request: web.Request) -> web.Response:
    event = await _event(request)
    op = request.app[operations_key].lookup(event.operation)
    if op is not None and not op.done:
        await request.app[operations_key].cancel(op)
        event = await asyncio.to_thread(request.app[events_key].get, event.id)
    return await _event_response(request, event)


@routes.post(BASE + "/instances/events/{eventId}/redeliver")
@events
async def redeliver(request: web.Request) -> web.Response:
    event = await _event(request)
    if event.notification_id is None:
        raise Conflict(
            f"Event {event.id} has no webhook yet: its operation is still running.",
            title="Nothing to redeliver.",
        )
    if not await request.app[deliveries_key].redeliver(event.notification_id):
        raise Conflict(
            f"The webhook of event {event.id} is being delivered already; "
            "wait for it to be delivered or queued.",
            title="Nothing to redeliver.",
        )
    event = await asyncio.to_thread(request.app[events_key].get, event.id)
    return await _event_response(request, event, status=202)
