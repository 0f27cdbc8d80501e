"""Laserfiche v2 searches (api/v2/searches.py): SearchAsync as a task, its result rows and their
context hits, and SimpleSearches. Statuses as the published v2 client accepts them (202 for the
start, 200 for the rest)."""

from __future__ import annotations

from typing import Any

from .laserfiche_v2 import FIELDS, ODATA, PREFERENCE_APPLIED, STARTED, V2, V2_ERRORS
from .parts import (
    ODATA_PAGING,
    PACE,
    REPO_ID,
    SELECT,
    body,
    collection,
    errors,
    json_response,
    operation,
    param,
    problem,
    ref,
)

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}

SCHEMAS: dict[str, Any] = {
    "SearchRequest": {
        "type": "object",
        "required": ["searchCommand"],
        "properties": {
            "searchCommand": {
                "type": "string",
                "description": "The subset of Laserfiche's search syntax the README documents: "
                '{LF:Basic ~= "words", option="DFANLT"}, {LF:Name="pat*"}, {LF:LookIn="\\\\Folder"}, '
                '{LF:Tags="name"}, '
                '{[Template]:[Field]="value"} (=, <, >, <=, >=), {[Template]}, joined by & and | with '
                "parentheses. Anything else is a 400 naming the part.",
            },
            "fuzzyType": {
                "type": "string",
                "enum": ["None", "Percentage", "NumberOfLetters"],
                "description": "Only None: fuzzy searches are a 400.",
            },
            "fuzzyFactor": {"type": "integer", "minimum": 0},
        },
    },
    "SearchContextHit": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "hitType": {"type": "string", "enum": ["Name", "Field", "Edoc", "Prop"]},
            "isAnnotationHit": BOOLEAN,
            "annotationId": INTEGER,
            "pageNumber": INTEGER,
            "pageOffset": {
                "type": "integer",
                "description": "Edoc: where `context` starts in the document's text.",
            },
            "context": {
                "type": "string",
                "description": "The matched text and up to 40 characters each side.",
            },
            "highlight1Offset": {"type": "integer", "description": "Where the match starts in `context`."},
            "highlight1Length": INTEGER,
            "highlight2Offset": INTEGER,
            "highlight2Length": INTEGER,
            "hitWidth": INTEGER,
            "edocHitCount": INTEGER,
            "fieldHitCount": INTEGER,
            "fieldName": {"type": ["string", "null"]},
            "hitNumber": {"type": "integer", "minimum": 1},
        },
    },
}

TASK_ID = param("taskId", "path", STRING, True, "The search's taskId.")
BOOLEAN_FLAGS = [
    param("groupByEntryType", "query", BOOLEAN, description="Folders first."),
    param("formatFieldValues", "query", BOOLEAN, description="Taken; values are shown as stored."),
    param("culture", "query", STRING, description="Taken and ignored."),
]
SEARCH_ERRORS = {
    **V2_ERRORS,
    "404": problem(
        "Unknown repository, or no search of this access token's by that taskId, or results expired."
    ),
    "409": problem("A refresh of these results is under way."),
}


def _errors(*codes: str) -> dict[str, Any]:
    return errors(*codes, table=SEARCH_ERRORS)


ENTRIES = json_response(collection(ref("V2Entry")), "A page of result rows (entries with rowNumber).")

PATHS: dict[str, Any] = {
    V2 + "/Searches/SearchAsync": {
        "post": operation(
            "Start a search (a task); read its rows from Searches/{taskId}/Results, while it runs too",
            [REPO_ID, PACE],
            {"202": STARTED, **_errors("400", "401", "404", "429", "503")},
            body(ref("SearchRequest")),
        )
    },
    V2 + "/SimpleSearches": {
        "post": operation(
            "Search in the request: the first 100 matches",
            [REPO_ID, PACE, *ODATA[:2], param("$count", "query", BOOLEAN), FIELDS, *BOOLEAN_FLAGS[1:]],
            {"200": ENTRIES, **_errors("400", "401", "404", "503")},
            body(ref("SearchRequest")),
        )
    },
    V2 + "/Searches/{taskId}/Results": {
        "get": operation(
            "A page of a search's rows (150 by default), kept 5 minutes after the last read; "
            "refresh=true runs an ended search again first",
            [
                REPO_ID,
                TASK_ID,
                param(
                    "refresh", "query", BOOLEAN, description="Run the search again (its rows are replaced)."
                ),
                FIELDS
                | {
                    "description": "Repeated, at most 10: fields whose first value each row's `fields` holds."
                },
                *BOOLEAN_FLAGS,
                *ODATA,
                PACE,
            ],
            {"200": ENTRIES | {"headers": PREFERENCE_APPLIED}, **_errors("400", "401", "404", "409", "503")},
        )
    },
    V2 + "/Searches/{taskId}/Results/{rowNumber}/ContextHits": {
        "get": operation(
            "Why a row matched: its hits (100 to a page by default)",
            [
                REPO_ID,
                TASK_ID,
                param("rowNumber", "path", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, True),
                SELECT,
                param("$orderby", "query", STRING, description="Members of the hits, e.g. `hitNumber desc`."),
                *ODATA_PAGING,
            ],
            {
                "200": json_response(collection(ref("SearchContextHit")), "A page of hits.")
                | {"headers": PREFERENCE_APPLIED},
                **_errors("400", "401", "404"),
            },
        )
    },
}
