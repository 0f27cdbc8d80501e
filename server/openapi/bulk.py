"""Open Connectors bulk jobs over the documents hub (`/hubs/documents/bulk/...`: a CEQL query
becomes a job, the job a file of records) and webhook deliveries as the platform exposes them
(`/notifications/subscriptions/deliveries`)."""

from __future__ import annotations

from typing import Any

from .elements import EL, HUB, el_errors, el_operation
from .elements import SCHEMAS as ELEMENTS_SCHEMAS
from .parts import json_response, param, problem, ref

BULK = HUB + "/bulk"
JOB_ID = param("id", "path", {"type": "string", "pattern": "^[0-9]+$"}, True, "The job's id (its event's).")
QUERY = param(
    "q",
    "query",
    {"type": "string", "minLength": 1, "maxLength": 4000, "examples": ["select * from files"]},
    True,
    "A CEQL query: `select * | <fields> from files | folders [where <cond> [and | or <cond>]...] "
    "[order by <field> [asc | desc]] [limit <n>]`; conditions on path, name, size, createdDate, "
    "modifiedDate, tags with =, !=, <, >, like, in (...). Anything else: 400 naming the part.",
)
CALLBACK = param(
    "Elements-Async-Callback-URL",
    "header",
    {"type": "string", "format": "uri"},
    description="Where the job's status object is POSTed when it ends (else the instance's "
    "event.notification.callback.url; neither: no callback).",
)
BULK_PACE = param(
    "Sandbox-Pace-Ms",
    "header",
    {"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,9})?$"},
    description="Sandbox: milliseconds added per entry the job walks (0 to 60000), for this job.",
)
JOB = json_response(ref("BulkJob"), "The job's status object.")
NOT_CANCELLABLE = problem("Not a job id, or (cancel) the job has already ended.")
NOT_FOUND = problem("No such job of this session's, or it expired (its records are gone).")
# what a download answers: the records in the format `Accept` names
RECORDS = {
    "description": "The records: a JSON array (application/json, also for no Accept or */*), one "
    "JSON object a line (application/x-ndjson), or CSV with a header row (text/csv; booleans "
    "true/false, tags as a JSON array).",
    "content": {
        "application/json": {"schema": {"type": "array", "items": ref("BulkRecord")}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    },
}
NDJSON_ONLY = {"application/x-ndjson": {"schema": {"type": "string"}}}


def _bulk(summary: str, params: list[dict[str, Any]], responses: dict[str, Any]) -> dict[str, Any]:
    return el_operation(summary, params, responses)


PATHS: dict[str, Any] = {
    BULK + "/query": {
        "post": _bulk(
            "Start a bulk query job; it runs on the operations engine, one per session",
            [QUERY, CALLBACK, BULK_PACE],
            {
                "200": json_response(ref("BulkJobCreated"), "Started."),
                "400": problem(
                    "The query is outside the CEQL subset (the detail quotes the part), or a header "
                    "is malformed; nothing starts."
                ),
                **el_errors("401", "503"),
                "429": problem(
                    "The session already runs a job or an asynchronous request; the body names it (eventId)."
                ),
            },
        )
    },
    BULK + "/jobs": {
        "get": _bulk(
            "The session's jobs (until they expire), newest first",
            [],
            {
                "200": json_response({"type": "array", "items": ref("BulkJob")}, "The jobs."),
                **el_errors("401"),
            },
        )
    },
    BULK + "/{id}/status": {
        "get": _bulk(
            "A job's status: CREATED, RUNNING, then COMPLETED, FAILED or CANCELLED",
            [JOB_ID],
            {"200": JOB, **el_errors("401"), "400": problem("Not a job id."), "404": NOT_FOUND},
        )
    },
    BULK + "/{id}/cancel": {
        "put": _bulk(
            "Cancel a job: CANCELLATION_PENDING until it has stopped, then CANCELLED",
            [JOB_ID],
            {"200": JOB, **el_errors("401"), "400": NOT_CANCELLABLE, "404": NOT_FOUND},
        )
    },
    BULK + "/{id}/errors": {
        "get": _bulk(
            "A job's errors: a failed job's failure, else none",
            [JOB_ID],
            {
                "200": json_response(
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {"message": {"type": "string"}},
                        },
                    },
                    "The errors.",
                ),
                **el_errors("401"),
                "400": problem("Not a job id."),
                "404": NOT_FOUND,
            },
        )
    },
    BULK + "/{id}/{objectName}": {
        "get": _bulk(
            "Download a completed job's records, streamed from the file it wrote, in the format of `Accept`",
            [
                JOB_ID,
                param(
                    "objectName",
                    "path",
                    {"type": "string", "enum": ["files", "folders"]},
                    True,
                    "What the query reads from; any other name is 404.",
                ),
                param(
                    "Range",
                    "header",
                    {"type": "string"},
                    description="Honoured for application/x-ndjson only (the file as written).",
                ),
            ],
            {
                "200": RECORDS,
                "206": {"description": "The requested range (application/x-ndjson).", "content": NDJSON_ONLY},
                **el_errors("401"),
                "400": problem("Not a job id, or the job has not COMPLETED (yet)."),
                "404": NOT_FOUND,
                "406": problem("`Accept` names none of application/json, application/x-ndjson, text/csv."),
                "416": problem("The range selects no byte of the records (application/x-ndjson)."),
            },
        )
    },
}

# the deliveries route: `where` selects, GET lists and PUT redelivers
WHERE = param(
    "where",
    "query",
    {"type": "string", "examples": ["status='queued'", "eventId=3 and status='delivered'"]},
    description="status='<pending|delivering|delivered|queued>', notificationId=<n>, eventId=<n>, "
    "joined by `and`; none: every delivery the caller may see (the newest 1000).",
)
DELIVERIES = {"type": "array", "items": ref("SandboxDelivery")}
PATHS[EL + "/notifications/subscriptions/deliveries"] = {
    "get": el_operation(
        "Webhook deliveries a `where` selects, newest first (an Element token: its instance's; the "
        "Organization: all)",
        [WHERE],
        {
            "200": json_response(DELIVERIES, "The deliveries, with their attempts."),
            **el_errors("400", "401"),
        },
    ),
    "put": el_operation(
        "Send the selected delivered or queued deliveries again, now (same notificationId)",
        [WHERE],
        {
            "200": json_response(DELIVERIES, "Those sent again (status pending)."),
            **el_errors("400", "401"),
        },
    ),
}

SCHEMAS: dict[str, Any] = {
    "BulkJobCreated": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {"id": {"type": "integer"}, "status": {"type": "string", "enum": ["CREATED"]}},
    },
    "BulkJob": {
        "type": "object",
        "description": "A bulk job's status object (also its callback's body and its event's response).",
        "required": [
            "id",
            "status",
            "objectName",
            "recordsCount",
            "recordsFailedCount",
            "jobDirection",
            "createdDate",
            "statusMessage",
        ],
        "properties": {
            "id": {"type": "integer"},
            "status": {
                "type": "string",
                "enum": ["CREATED", "RUNNING", "CANCELLATION_PENDING", "COMPLETED", "FAILED", "CANCELLED"],
            },
            "objectName": {"type": "string", "enum": ["files", "folders"]},
            "recordsCount": {"type": "integer", "minimum": 0},
            "recordsFailedCount": {"type": "integer", "minimum": 0},
            "jobDirection": {"type": "string", "enum": ["DOWNLOAD"]},
            "createdDate": {"type": "string", "format": "date-time"},
            "completionTime": {"type": "string", "format": "date-time"},
            "statusMessage": {"type": "string"},
            "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
        },
    },
    "BulkRecord": {
        "type": "object",
        "description": "A hub entry (ElementsEntry), cut to the fields the query selects.",
        "properties": ELEMENTS_SCHEMAS["ElementsEntry"]["properties"],
    },
}
