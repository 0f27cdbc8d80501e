"""The Cloud Elements documents hub: its file and folder routes (each in a `?path=` and an `/{id}`
form), instances, and the events of asynchronous requests."""

from __future__ import annotations

import functools
from typing import Any

from .parts import (
    DELIVERY_STATUS,
    DOWNLOAD,
    ERRORS,
    PACE,
    body,
    errors,
    json_response,
    operation,
    param,
    problem,
    ref,
)

EL = "/elements/api-v2"
HUB = EL + "/hubs/documents"
# hub routes: User + Element; instances: User + Organization; events: either
ELEMENTS_AUTH: list[dict[str, list[str]]] = [{"elements": []}]
EL_ERRORS = {
    **ERRORS,
    "401": problem("Missing or wrong User / Organization / Element credentials."),
    "404": problem("No entry, instance or event there."),
    "409": problem("The name is taken, or (redeliver) the webhook is under way."),
    "429": problem("The session already runs an asynchronous request; the body names it (eventId)."),
}
PATH_Q = param("path", "query", {"type": "string"}, True, "`/`-separated, e.g. `/Folder/file.txt`.")
ID_P = param("id", "path", {"type": "string", "pattern": "^[0-9]+$"}, True, "An entry id.")
ASYNC_HEADERS = [
    param("Elements-Async-Request", "header", {"type": "string", "enum": ["true", "false", "True", "False"]}),
    param("Elements-Async-Callback-URL", "header", {"type": "string", "format": "uri"}),
    PACE,
]
PAGING = [
    param("page", "query", {"type": "integer", "minimum": 1}),
    param("nextPage", "query", {"type": "string"}, description="Elements-Next-Page-Token of the last page."),
    param("pageSize", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
]


# an operation of the Elements dialect, and its errors
el_operation = functools.partial(operation, security=ELEMENTS_AUTH)
el_errors = functools.partial(errors, table=EL_ERRORS)


def _both(suffix: str, id_suffix: str, methods: dict[str, Any]) -> dict[str, Any]:
    """A hub route in its `?path=` and `/{id}` forms: `methods` maps a method to (summary,
    extra params, responses, body)."""
    paths = {}
    for route, located in ((HUB + suffix, PATH_Q), (HUB + id_suffix, ID_P)):
        paths[route] = {
            method: el_operation(summary, [located, *extra], responses, request_body)
            for method, (summary, extra, responses, request_body) in methods.items()
        }
    return paths


def _copy_body(name: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "path": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    }
    if name:
        properties["name"] = {"type": "string"}
    return body({"type": "object", "required": ["path"], "properties": properties})


EL_ENTRY = json_response(ref("ElementsEntry"), "The entry.")
DISPATCHED = json_response(ref("Dispatched"), "Asynchronous: started; a webhook reports the end.")
REMOVED = json_response(ref("ElementsResult"), "Synchronous: removed; one event per entry.")
COPY_ERRORS = ("400", "401", "404", "409", "429", "503")
METADATA_BODY = body(
    {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "Move to this path (its parent folder, its last segment).",
            },
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
)


def _hub_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for kind in ("folders", "files"):
        paths |= _both(
            f"/{kind}/metadata",
            f"/{kind}/{{id}}/metadata",
            {
                "get": ("Metadata", [], {"200": EL_ENTRY, **el_errors("400", "401", "404")}, None),
                "patch": (
                    "Rename, move, or set tags",
                    [],
                    {"200": EL_ENTRY, **el_errors("400", "401", "404", "409")},
                    METADATA_BODY,
                ),
            },
        )
        paths |= _both(
            f"/{kind}/copy",
            f"/{kind}/{{id}}/copy",
            {
                "post": (
                    "Copy into the parent folder of body `path`, named `name` or its last segment",
                    ASYNC_HEADERS,
                    {"200": json_response(ref("ElementsEntry"), "Synchronous: the copy."), "202": DISPATCHED}
                    | el_errors(*COPY_ERRORS),
                    _copy_body(name=True),
                )
            },
        )
        delete_params = ASYNC_HEADERS + (
            [param("emptyTrash", "query", {"type": "boolean"})] if kind == "folders" else []
        )
        methods: dict[str, Any] = {
            "delete": (
                "Delete",
                delete_params,
                {"200": REMOVED, "202": DISPATCHED} | el_errors(*COPY_ERRORS),
                None,
            )
        }
        if kind == "files":
            methods["get"] = (
                "Download a file; honours one Range",
                [param("Range", "header", {"type": "string"})],
                {**DOWNLOAD, **el_errors("400", "401", "404")},
                None,
            )
        paths |= _both(f"/{kind}", f"/{kind}/{{id}}", methods)
    paths |= _both(
        "/folders/contents",
        "/folders/{id}/contents",
        {
            "get": (
                "List a folder (Elements-Total-Count, Elements-Next-Page-Token)",
                PAGING,
                {"200": json_response({"type": "array", "items": ref("ElementsEntry")}, "A page.")}
                | el_errors("400", "401", "404"),
                None,
            )
        },
    )
    paths[HUB + "/files"] |= {
        "post": el_operation(
            "Upload a file to `path` (multipart part `file`)",
            [PATH_Q, param("overwrite", "query", {"type": "boolean"})],
            {"200": EL_ENTRY, **el_errors("400", "401", "404", "409", "413")},
            body(
                {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                },
                "multipart/form-data",
            ),
        ),
    }
    paths[HUB + "/folders"] = {
        "post": el_operation(
            "Create a folder at `path` (or in its parent, named `name`)",
            [param("path", "query", {"type": "string"})],
            {"200": EL_ENTRY, **el_errors("400", "401", "404", "409")},
            _copy_body(name=True),
        ),
        **paths[HUB + "/folders"],
    }
    return paths


INSTANCE_ID = param("instanceId", "path", {"type": "integer", "minimum": 1}, True)
EVENT_ID = param("eventId", "path", {"type": "integer", "minimum": 1}, True)
INSTANCE = json_response(ref("Instance"), "The instance.")
EVENT = json_response(ref("Event"), "The event, with its delivery attempts.")
# an instance's configuration: the keys the sandbox reads (others are kept as given)
CONFIGURATION = {
    "type": "object",
    "properties": {
        "event.notification.enabled": {
            "description": "false: no webhook unless a request names its own callback URL.",
            "oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}],
        },
        "event.notification.callback.url": {
            "type": "string",
            "description": "Where asynchronous requests and bulk jobs report, unless a request names a URL.",
        },
        "event.notification.signature.key": {
            "type": "string",
            "description": "Signs webhooks (Elements-Webhook-Signature); '' sends them unsigned.",
        },
        "notification.webhook.failure.policy": {
            "type": "string",
            "enum": ["retry", "queue"],
            "description": "A webhook the receiver refused: `retry` (the default) with backoff, then "
            "queued; `queue`: queued at once, for `PUT /notifications/subscriptions/deliveries`.",
        },
    },
}
INSTANCE_BODY = body(
    {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "element": {"type": "object", "properties": {"key": {"type": "string", "enum": ["documents"]}}},
            "configuration": CONFIGURATION,
        },
    }
)

PATHS: dict[str, Any] = _hub_paths() | {
    EL + "/instances": {
        "post": el_operation(
            "Create an instance (a new Element token)",
            [],
            {"200": INSTANCE, **el_errors("400", "401")},
            INSTANCE_BODY,
        ),
        "get": el_operation(
            "List instances",
            [],
            {"200": json_response({"type": "array", "items": ref("Instance")}, "All."), **el_errors("401")},
        ),
    },
    EL + "/instances/{instanceId}": {
        "get": el_operation(
            "An instance", [INSTANCE_ID], {"200": INSTANCE, **el_errors("400", "401", "404")}
        ),
        "patch": el_operation(
            "Rename an instance or merge configuration keys",
            [INSTANCE_ID],
            {"200": INSTANCE, **el_errors("400", "401", "404")},
            INSTANCE_BODY,
        ),
        "delete": el_operation(
            "Delete an instance (not the default one)",
            [INSTANCE_ID],
            {"204": {"description": "Deleted."}, **el_errors("400", "401", "404")},
        ),
    },
    EL + "/instances/events": {
        "get": el_operation(
            "Events of asynchronous requests, newest first",
            PAGING,
            {
                "200": json_response({"type": "array", "items": ref("Event")}, "A page."),
                **el_errors("400", "401"),
            },
        )
    },
    EL + "/instances/events/{eventId}": {
        "get": el_operation(
            "An event and its webhook's delivery attempts",
            [EVENT_ID],
            {"200": EVENT, **el_errors("400", "401", "404")},
        ),
        "delete": el_operation(
            "Cancel the event's operation (what was done stays)",
            [EVENT_ID],
            {"200": EVENT, **el_errors("400", "401", "404")},
        ),
    },
    EL + "/instances/events/{eventId}/redeliver": {
        "post": el_operation(
            "Send a queued (or delivered) webhook again",
            [EVENT_ID],
            {"202": EVENT, **el_errors("400", "401", "404", "409")},
        )
    },
}

EVENT_OBJECT = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["folder", "file"]},
            },
        },
    },
}
SCHEMAS: dict[str, Any] = {
    "ElementsEntry": {
        "type": "object",
        "required": ["id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "path": {"type": "string"},
            "directory": {"type": "boolean"},
            "size": {"type": "integer"},
            "createdDate": {"type": "string", "format": "date-time"},
            "modifiedDate": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Dispatched": {
        "type": "object",
        "required": ["eventId", "eventStatus"],
        "properties": {
            "eventId": {"type": "integer"},
            "eventStatus": {"type": "string", "enum": ["dispatched"]},
        },
    },
    "ElementsResult": {
        "type": "object",
        "description": "The webhook's `response`: one event per entry made or removed; `error` if it failed.",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": EVENT_OBJECT},
            "error": {
                "type": "object",
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            },
        },
    },
    "Instance": {
        "type": "object",
        "required": ["id", "name", "token", "element", "configuration"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "token": {"type": "string"},
            "element": {"type": "object"},
            "configuration": CONFIGURATION,
            "createdDate": {"type": "string", "format": "date-time"},
            "disabled": {"type": "boolean"},
            "tags": {"type": "array"},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "eventId", "instanceId", "eventStatus", "deliveries"],
        "properties": {
            "id": {"type": "integer"},
            "eventId": {"type": "integer"},
            "instanceId": {"type": "integer"},
            "eventStatus": {
                "type": "string",
                "enum": ["dispatched", "processing", "completed", "failed", "cancelled"],
            },
            "createdDate": {"type": "string", "format": "date-time"},
            "updatedDate": {"type": "string", "format": "date-time"},
            "callbackUrl": {"type": "string"},
            "request": {"type": "object"},
            # (a bulk job's event: the job's status object)
            "response": {"anyOf": [ref("ElementsResult"), ref("BulkJob"), {"type": "null"}]},
            "deliveries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "notificationId": {"type": "integer"},
                        "status": DELIVERY_STATUS,
                        "attempts": {"type": "array", "items": {"type": "object"}},
                        "nextAttemptDate": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
            },
        },
    },
}
