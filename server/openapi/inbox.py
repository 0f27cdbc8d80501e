"""The webhook inbox (/sandbox/inbox/*): posted to without credentials, read with those of the other
/sandbox/* routes."""

from __future__ import annotations

from typing import Any

from .parts import collection, json_response, operation, param, problem, ref
from .sandbox import EITHER_AUTH, NO_CONTENT, SANDBOX_ERRORS

# statuses answered without a body (RFC 9110), as api/inbox.py's NO_BODY
NO_BODY = ("204", "205", "304")

NAME = param(
    "name",
    "path",
    {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    True,
    "The inbox: 1 to 64 letters, digits, '.', '_' or '-'.",
)
CHECK = {
    "type": "object",
    "required": ["present", "valid"],
    "properties": {
        "present": {"type": "boolean", "description": "The scheme's signature header was sent."},
        "valid": {"type": ["boolean", "null"], "description": "It verified (null: not sent)."},
    },
}
SCHEMAS: dict[str, Any] = {
    "InboxDelivery": {
        "type": "object",
        "required": [
            "id",
            "receivedAt",
            "method",
            "headers",
            "body",
            "bodyEncoding",
            "json",
            "instanceId",
            "answeredStatus",
            "verified",
            "signatures",
        ],
        "properties": {
            "id": {
                "type": "integer",
                "minimum": 1,
                "description": "The inbox's count, from 1 (anew once it is emptied).",
            },
            "receivedAt": {"type": "string", "format": "date-time"},
            "method": {"type": "string"},
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "As sent (a header sent twice: its values joined with ', ').",
            },
            "body": {"type": "string"},
            "bodyEncoding": {"type": "string", "enum": ["utf-8", "base64"]},
            "json": {"description": "The body, where it is JSON; else null."},
            "instanceId": {
                "type": ["integer", "null"],
                "description": "The body's instanceId, whose instance's key the signatures are checked "
                "against (null: the default instance's).",
            },
            "answeredStatus": {"type": "integer"},
            "verified": {
                "type": ["boolean", "null"],
                "description": "Every signature sent verified; null: none was sent.",
            },
            "signatures": {
                "type": "object",
                "required": ["elements", "standard"],
                "properties": {
                    "elements": CHECK
                    | {"description": "Elements-Webhook-Signature (HMAC-SHA256 of the body)."},
                    "standard": CHECK
                    | {
                        "description": "Standard Webhooks: webhook-id, webhook-timestamp (within 5 minutes), "
                        "webhook-signature (v1, space-separated)."
                    },
                },
            },
        },
    },
}

INBOX_ERRORS = {
    **SANDBOX_ERRORS,
    "400": problem("A bad inbox name, or a bad parameter; the detail says which."),
}

PATHS: dict[str, Any] = {
    "/sandbox/inbox": {
        "get": operation(
            "The webhook inboxes that hold deliveries, least recently delivered to first",
            [],
            {
                "200": json_response(
                    collection(
                        {
                            "type": "object",
                            "required": ["name", "count", "lastReceivedAt"],
                            "properties": {
                                "name": {"type": "string"},
                                "count": {"type": "integer"},
                                "lastReceivedAt": {"type": "string", "format": "date-time"},
                            },
                        }
                    ),
                    "The inboxes (at most 100).",
                ),
                "401": INBOX_ERRORS["401"],
            },
            security=EITHER_AUTH,
        )
    },
    "/sandbox/inbox/{name}": {
        "post": operation(
            "Deliver to a webhook inbox (no credentials): anything is recorded, its signatures checked",
            [
                NAME,
                param(
                    "status",
                    "query",
                    {"type": "integer", "minimum": 200, "maximum": 599},
                    description="Answer this status instead of 200 (still recorded): to exercise retries.",
                ),
            ],
            {
                "200": json_response(
                    {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
                    "Recorded.",
                ),
                "400": INBOX_ERRORS["400"],
                "413": problem("The body is over 1 MiB."),
                **{code: {"description": f"Recorded; {code} as ?status= asked."} for code in NO_BODY},
                "default": {
                    "description": "Recorded, and answered with the status ?status= asked for: {id}, "
                    "as problem details (with id) for an error status.",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/problem+json": {"schema": ref("ProblemDetails")},
                    },
                },
            },
            {"required": False, "content": {"application/json": {"schema": {}}}},
            security=[],
        ),
        "get": operation(
            "A webhook inbox's deliveries, oldest first (the last 1000)",
            [
                NAME,
                param(
                    "after",
                    "query",
                    {"type": "integer", "minimum": 0},
                    description="Only deliveries with a greater id.",
                ),
                param(
                    "wait",
                    "query",
                    {"type": "number", "minimum": 0, "maximum": 60},
                    description="Seconds to hold the answer while there is nothing to list.",
                ),
            ],
            {
                "200": json_response(
                    {
                        "type": "object",
                        "required": ["name", "deliveries"],
                        "properties": {
                            "name": {"type": "string"},
                            "deliveries": {"type": "array", "items": ref("InboxDelivery")},
                        },
                    },
                    "The deliveries (none for an unknown inbox).",
                ),
                "400": INBOX_ERRORS["400"],
                "401": INBOX_ERRORS["401"],
            },
            security=EITHER_AUTH,
        ),
        "delete": operation(
            "Empty a webhook inbox",
            [NAME],
            {**NO_CONTENT, "400": INBOX_ERRORS["400"], "401": INBOX_ERRORS["401"]},
            security=EITHER_AUTH,
        ),
    },
}
