"""The OpenAPI 3.1 description of the routes this server has (served at /openapi.json): one module
per dialect (`laserfiche_v1`, `laserfiche_v2`, both dialects' metadata in `metadata` over the
schemas of `metadata_schemas`, v2's other long operations in `exports`, `uploads`, `searches`, `elements`
with its bulk jobs and deliveries in `bulk`) and the server's own routes (`sandbox`, its webhook inbox in
`inbox`, and `reset`), over the shared pieces of `parts`."""

from __future__ import annotations

from typing import Any

from . import (
    bulk,
    elements,
    exports,
    inbox,
    laserfiche_v1,
    laserfiche_v2,
    metadata,
    metadata_schemas,
    parts,
    reset,
    sandbox,
    searches,
    uploads,
)

# in the order they are listed
DIALECTS = (
    laserfiche_v1,
    laserfiche_v2,
    exports,
    uploads,
    searches,
    metadata,
    metadata_schemas,
    elements,
    bulk,
    sandbox,
    inbox,
    reset,
)


def _merged(kind: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for module in (parts, *DIALECTS):
        own = getattr(module, kind, {})
        clash = merged.keys() & own.keys()
        if clash:
            raise RuntimeError(f"{module.__name__} describes {kind} described already: {sorted(clash)}")
        merged |= own
    return merged


PATHS = sandbox.META | _merged("PATHS")
SCHEMAS = _merged("SCHEMAS")


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Document operations sandbox",
            "version": version,
            "description": "A local stand-in for the Laserfiche Repository API v1 and v2 and the Cloud "
            "Elements documents hub (asynchronous requests, signed webhooks) over a folder on disk.",
        },
        "paths": parts.with_limits(PATHS),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "elements": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "User <user secret>, Organization <org secret>, Element <instance token>",
                },
            },
        },
        "security": [{"bearer": []}],
    }
