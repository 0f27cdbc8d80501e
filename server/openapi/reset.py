"""`POST /sandbox/reset` (server/api/reset.py): the server back to the state it started from."""

from __future__ import annotations

from typing import Any

from .parts import json_response, operation, problem, ref
from .sandbox import EITHER_AUTH, SANDBOX_ERRORS

SCHEMAS: dict[str, Any] = {
    "ResetReport": {
        "type": "object",
        "required": ["operationsCancelled", "requestsCancelled", "durationMs", "startState"],
        "properties": {
            "operationsCancelled": {
                "type": "integer",
                "minimum": 0,
                "description": "Operations that were running or queued, cut off and forgotten.",
            },
            "requestsCancelled": {
                "type": "integer",
                "minimum": 0,
                "description": "Requests still under way after a short grace, cut off unanswered.",
            },
            "durationMs": {"type": "number", "minimum": 0},
            "startState": {
                "type": "string",
                "format": "date-time",
                "description": "When the state the server went back to was kept (as it started).",
            },
        },
    }
}

PATHS: dict[str, Any] = {
    "/sandbox/reset": {
        "post": operation(
            "Put the repository, ids, metadata, operations, events, deliveries and every other "
            "record back as they were when the server started (admins only; access tokens survive "
            "it). Other requests wait while it runs.",
            [],
            {
                "200": json_response(ref("ResetReport"), "Reset."),
                "401": SANDBOX_ERRORS["401"],
                "403": problem("The caller is not an --admin-user."),
                "503": problem(
                    "The start state could not be kept, the reset failed (restart the server: it "
                    "finishes the reset as it starts), or the server is stopping."
                ),
            },
            security=EITHER_AUTH,
        )
    }
}
