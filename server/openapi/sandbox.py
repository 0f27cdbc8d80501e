"""The server's own routes: liveness, this description, the dashboard, and the sandbox's controls
(/sandbox/*: faults, operations, deliveries, stats, the event stream)."""

from __future__ import annotations

import functools
from typing import Any

from .parts import (
    DELIVERY_STATUS,
    ERROR_ITEMS,
    ERRORS,
    OPERATION_STATUS,
    OPERATION_TYPE,
    body,
    collection,
    errors,
    json_response,
    operation,
    param,
    problem,
    ref,
)

# liveness, this description and its API reference page (listed first)
META: dict[str, Any] = {
    "/healthz": {
        "get": operation("Liveness check", [], {"200": json_response({"type": "object"}, "Up.")}, security=[])
    },
    "/openapi.json": {
        "get": operation(
            "This description", [], {"200": json_response({"type": "object"}, "OK")}, security=[]
        )
    },
    "/docs": {
        "get": operation(
            "This description as an API reference (HTML: Swagger UI)",
            [],
            {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
            security=[],
        )
    },
    "/docs/assets/{name}": {
        "get": operation(
            "The API reference's script, style and icon",
            [
                param(
                    "name",
                    "path",
                    {
                        "type": "string",
                        "enum": ["swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"],
                    },
                    True,
                )
            ],
            {"200": {"description": "The file."}, **errors("404")},
            security=[],
        )
    },
}

# /sandbox/* takes either dialect's credentials
EITHER_AUTH: list[dict[str, list[str]]] = [{"bearer": []}, {"elements": []}]
SANDBOX_ERRORS = {
    **ERRORS,
    "401": problem("Missing or invalid credentials (a Laserfiche bearer, or Elements User and Element)."),
    "404": problem("Nothing there that the caller may see."),
    "409": problem("The operation is still running (its token cannot expire yet)."),
}
OP_TOKEN = param("operationToken", "path", {"type": "string"}, True)
# the sandbox sees every kind of operation, Open Connectors' bulk jobs too
KIND = {"type": "string", "enum": [*OPERATION_TYPE["enum"], "BulkQuery"]}
SCHEMAS: dict[str, Any] = {
    "SandboxOperation": {
        "type": "object",
        "required": ["operationToken", "operationType", "status", "percentComplete", "sessionId", "user"],
        "properties": {
            "operationToken": {"type": "string"},
            "operationType": KIND,
            "status": OPERATION_STATUS,
            "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
            "entriesDone": {"type": "integer"},
            "entriesTotal": {"type": "integer"},
            "paceMs": {"type": "number"},
            "sessionId": {"type": "string"},
            "user": {"type": "string"},
            "entryId": {"type": "integer"},
            "label": {"type": "string"},
            "eventId": {"type": ["integer", "null"]},
            "recordsCount": {
                "type": ["integer", "null"],
                "description": "A bulk job's records: found so far, or written once it completed.",
            },
            "errors": ERROR_ITEMS,
            "createdTimestamp": {"type": "string", "format": "date-time"},
            "startTimestamp": {"type": ["string", "null"], "format": "date-time"},
            "statusTimestamp": {"type": "string", "format": "date-time"},
            "timeline": {
                "type": "array",
                "description": "Its changes of status, oldest first, each with percentComplete then "
                "(after a restart: what its times say).",
                "items": {
                    "type": "object",
                    "required": ["status", "timestamp", "percentComplete"],
                    "properties": {
                        "status": OPERATION_STATUS,
                        "timestamp": {"type": "string", "format": "date-time"},
                        "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
                    },
                },
            },
        },
    },
    "SandboxDelivery": {
        "type": "object",
        "required": ["notificationId", "eventId", "url", "status", "attempts"],
        "properties": {
            "notificationId": {"type": "integer"},
            "eventId": {"type": "integer"},
            "instanceId": {"type": "integer"},
            "url": {"type": "string"},
            "status": DELIVERY_STATUS,
            "sessionId": {"type": "string"},
            "attempts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "number": {"type": "integer"},
                        "startedTimestamp": {"type": "string", "format": "date-time"},
                        "durationMs": {"type": "number"},
                        "statusCode": {"type": ["integer", "null"]},
                        "error": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
    "SandboxDeliverySent": {
        "description": "A delivery with what it sends: each attempt also has the headers it was "
        "signed with; `headers` are the latest attempt's (null before the first).",
        "allOf": [
            ref("SandboxDelivery"),
            {
                "type": "object",
                "required": ["body", "payload", "headers"],
                "properties": {
                    "body": {"type": "string"},
                    "payload": {"description": "The body parsed as JSON (null if it is not JSON)."},
                    "headers": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
                },
            },
        ],
    },
    "FaultRequest": {
        "type": "object",
        "description": "operation-failure: the session's next operation(s) fail after afterEntries "
        "entries; webhook-failure: attempts to url fail unsent with status; webhook-delay: deliveries "
        "to url are held delayMs; expire-token: an ended operation's token (operationToken), or the "
        "session's access token, expires now.",
        "required": ["kind"],
        "properties": {
            "kind": {
                "type": "string",
                "enum": ["operation-failure", "webhook-failure", "webhook-delay", "expire-token"],
            },
            "times": {"type": "integer", "minimum": 1, "maximum": 1000},
            "sessionId": {"type": "string"},
            "afterEntries": {"type": "integer", "minimum": 0},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "message": {"type": "string", "minLength": 1, "maxLength": 1000},
            "operationType": KIND,
            "url": {"type": "string", "format": "uri"},
            "delayMs": {"type": "number", "exclusiveMinimum": 0, "maximum": 600000},
            "operationToken": {"type": "string"},
        },
    },
    "Fault": {
        "type": "object",
        "required": ["id", "kind", "sessionId", "user", "remaining"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["operation-failure", "webhook-failure", "webhook-delay"]},
            "sessionId": {"type": "string"},
            "user": {"type": "string"},
            "remaining": {"type": "integer"},
            "created": {"type": "string", "format": "date-time"},
            "afterEntries": {"type": "integer"},
            "status": {"type": "integer"},
            "message": {"type": "string"},
            "operationType": {"type": ["string", "null"]},
            "url": {"type": "string"},
            "delayMs": {"type": "number"},
        },
    },
}


# an operation of the sandbox's own (either dialect's credentials), and its errors
_sandbox = functools.partial(operation, security=EITHER_AUTH)
_sandbox_errors = functools.partial(errors, table=SANDBOX_ERRORS)


TOP = param("$top", "query", {"type": "integer", "minimum": 1}, description="At most this many (1000).")
NO_CONTENT = {"204": {"description": "Done."}}
PATHS: dict[str, Any] = {
    "/": {
        "get": operation(
            "The dashboard (HTML)",
            [],
            {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
            security=[],
        )
    },
    "/dashboard/{name}": {
        "get": operation(
            "The dashboard's script and style",
            [param("name", "path", {"type": "string", "enum": ["dashboard.js", "dashboard.css"]}, True)],
            {"200": {"description": "The file."}, **errors("404")},
            security=[],
        )
    },
    "/dashboard/js/{name}": {
        "get": operation(
            "One of the dashboard script's modules (one per panel)",
            [param("name", "path", {"type": "string", "pattern": "^[a-z]+\\.js$"}, True)],
            {"200": {"description": "The module."}, **errors("404")},
            security=[],
        )
    },
    "/sandbox/faults": {
        "get": _sandbox(
            "The armed faults the caller can see",
            [],
            {
                "200": json_response(collection(ref("Fault")), "Armed faults, oldest first."),
                **_sandbox_errors("401"),
            },
        ),
        "post": _sandbox(
            "Arm a fault (201), or expire a token now (200)",
            [],
            {
                "200": json_response({"type": "object"}, "Expired."),
                "201": json_response(ref("Fault"), "Armed."),
                **_sandbox_errors("400", "401", "404", "409"),
            },
            body(ref("FaultRequest")),
        ),
        "delete": _sandbox(
            "Disarm every fault the caller can see", [], {**NO_CONTENT, **_sandbox_errors("401")}
        ),
    },
    "/sandbox/faults/{faultId}": {
        "delete": _sandbox(
            "Disarm a fault",
            [param("faultId", "path", {"type": "string"}, True)],
            {**NO_CONTENT, **_sandbox_errors("401", "404")},
        )
    },
    "/sandbox/operations": {
        "get": _sandbox(
            "Operations (of the caller's user; an admin: all), newest first",
            [
                param("sessionId", "query", {"type": "string"}),
                param("user", "query", {"type": "string"}),
                param("status", "query", OPERATION_STATUS),
                param("type", "query", KIND),
                TOP,
            ],
            {
                "200": json_response(collection(ref("SandboxOperation")), "The operations."),
                **_sandbox_errors("400", "401"),
            },
        )
    },
    "/sandbox/operations/{operationToken}": {
        "get": _sandbox(
            "One operation",
            [OP_TOKEN],
            {
                "200": json_response(ref("SandboxOperation"), "The operation."),
                **_sandbox_errors("401", "404"),
            },
        )
    },
    "/sandbox/operations/{operationToken}/cancel": {
        "post": _sandbox(
            "Cancel an operation of any of the caller's sessions",
            [OP_TOKEN],
            {"200": json_response(ref("SandboxOperation"), "As it ended."), **_sandbox_errors("401", "404")},
        )
    },
    "/sandbox/deliveries": {
        "get": _sandbox(
            "Webhook deliveries with their attempts, newest first",
            [
                param("eventId", "query", {"type": "integer", "minimum": 1}),
                param("status", "query", DELIVERY_STATUS),
                TOP,
            ],
            {
                "200": json_response(collection(ref("SandboxDelivery")), "The deliveries."),
                **_sandbox_errors("400", "401"),
            },
        )
    },
    "/sandbox/deliveries/{notificationId}": {
        "get": _sandbox(
            "One webhook delivery with its body and the headers of each attempt",
            [param("notificationId", "path", {"type": "integer", "minimum": 1}, True)],
            {
                "200": json_response(ref("SandboxDeliverySent"), "The delivery."),
                **_sandbox_errors("400", "401", "404"),
            },
        )
    },
    "/sandbox/deliveries/{notificationId}/redeliver": {
        "post": _sandbox(
            "Send a delivered or queued webhook again, now (same notificationId); for the bearer",
            [param("notificationId", "path", {"type": "integer", "minimum": 1}, True)],
            {
                "202": json_response(ref("SandboxDelivery"), "Sent again (pending, or under way)."),
                **_sandbox_errors("400", "401", "404"),
                "409": problem("The webhook is being delivered already."),
            },
        )
    },
    "/sandbox/stats": {
        "get": _sandbox(
            "The process's tasks, open files, threads and RSS (admins only)",
            [],
            {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {
                            name: {"type": "integer"}
                            for name in (
                                "asyncioTasks",
                                "openFiles",
                                "threads",
                                "rssBytes",
                                "operations",
                                "runningOperations",
                                "feedSubscribers",
                                "pendingDeliveries",
                            )
                        },
                    },
                    "The counts.",
                ),
                **_sandbox_errors("401", "404"),
            },
        )
    },
    "/sandbox/events": {
        "get": _sandbox(
            "Server-sent events: `operation` (progress, in order, the terminal one last) and `delivery`",
            [
                param("operationToken", "query", {"type": "string"}, description="Only this operation."),
                param("Last-Event-ID", "header", {"type": "string"}, description="Replay after this id."),
            ],
            {
                "200": {
                    "description": "The stream; ends when the server stops.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_sandbox_errors("401"),
            },
        )
    },
}
