"""OData, as both Laserfiche dialects take it: `$select`, `$orderby`, paging with `$skip`, `$top`,
`$count` and `Prefer: maxpagesize`, answered as a collection with an absolute `@odata.nextLink`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from ..errors import BadRequest
from .common import bool_param, int_param

# paging: the default page and the most a client may ask for with `Prefer: maxpagesize`
DEFAULT_PAGE_SIZE = 150
MAX_PAGE_SIZE = 1000

_ORDER_TERM = re.compile(r"^\s*(\w+)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)


def orderby(request: web.Request, fields: dict[str, str]) -> list[tuple[str, bool]]:
    """`$orderby=name desc, creationTime` -> [("name", True), ("created", False)], by `fields`
    (OData names -> the repository's order fields)."""
    terms: list[tuple[str, bool]] = []
    for raw in request.query.get("$orderby", "").split(","):
        if not raw.strip():
            continue
        match = _ORDER_TERM.match(raw)
        if match is None or match.group(1) not in fields:
            known = ", ".join(fields)
            raise BadRequest(
                f"The parameter '$orderby' has an unknown term {raw.strip()!r}; "
                f"use one of {known}, each optionally followed by asc or desc."
            )
        terms.append((fields[match.group(1)], (match.group(2) or "asc").lower() == "desc"))
    return terms


def order_items(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A collection at hand ordered by `$orderby` over its items' plain members (text without
    regard to case); a term naming none of them is a 400."""
    terms = []
    plain = {k for item in items for k, v in item.items() if v is None or isinstance(v, str | int | float)}
    for raw in request.query.get("$orderby", "").split(","):
        if not raw.strip():
            continue
        match = _ORDER_TERM.match(raw)
        if match is None or (items and match.group(1) not in plain):
            known = ", ".join(sorted(plain))
            raise BadRequest(
                f"The parameter '$orderby' has an unknown term {raw.strip()!r}; "
                f"use one of {known}, each optionally followed by asc or desc."
            )
        terms.append((match.group(1), (match.group(2) or "asc").lower() == "desc"))
    ordered = list(items)
    for name, descending in reversed(terms):

        def key(item: dict[str, Any], name: str = name) -> tuple[bool, Any]:
            value = item.get(name)
            return value is None, value.casefold() if isinstance(value, str) else value or 0

        ordered.sort(key=key, reverse=descending)
    return ordered


def preference(request: web.Request, *names: str) -> int | None:
    """A whole-number preference of the request's `Prefer` headers (RFC 7240), by any of `names`;
    None if it states none. One the server cannot use is ignored, not refused."""
    for header in request.headers.getall("Prefer", []):
        for stated in header.split(","):
            key, _, value = stated.strip().partition("=")
            value = value.strip().strip('"')
            if key.strip().lower() in names and value.isdecimal() and value.isascii():
                return int(value)
    return None


def page_size(request: web.Request, default: int) -> tuple[int, bool]:
    """The page size from `Prefer: maxpagesize=N` (or odata.maxpagesize), and whether one was asked."""
    size = preference(request, "maxpagesize", "odata.maxpagesize")
    if size:
        return min(size, MAX_PAGE_SIZE), True
    return default, False


class Paging:
    """OData paging of one request: `$skip`, `$top`, `$count` and `Prefer: maxpagesize`."""

    def __init__(self, request: web.Request, default_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.request = request
        self.skip = int_param(request.query.get("$skip", "0"), "$skip")
        self.top = int_param(request.query["$top"], "$top") if "$top" in request.query else None
        self.count = bool_param(request, "$count")
        self.size, self.asked = page_size(request, default_size)

    @property
    def stop(self) -> int:
        """One past the last row this page can show."""
        last = self.skip + self.size
        return last if self.top is None else min(last, self.skip + self.top)

    def response(self, page: list[dict[str, Any]], total: int, element_type: str) -> web.Response:
        """The page (rows skip.. of `total`) with an absolute `@odata.nextLink` when more remain."""
        return self.encoded(orjson.dumps(page), total, element_type)

    def encoded(self, page: bytes, total: int, element_type: str) -> web.Response:
        """`response` for a page already encoded (a JSON array: see laserfiche_common.EntryPages)."""
        end = total if self.top is None else min(total, self.skip + self.top)
        stop = min(end, self.stop)
        version = self.request.path.split("/", 2)[1]  # v1 or v2
        metadata = self.request.url.origin().with_path(f"/{version}/$metadata")
        after: dict[str, Any] = {}
        if stop < end:
            query = dict(self.request.query)
            query["$skip"] = str(stop)
            if self.top is not None:
                query["$top"] = str(self.top - (stop - self.skip))
            after["@odata.nextLink"] = str(self.request.url.with_query(query))
        if self.count:
            after["@odata.count"] = total
        # {"@odata.context": …, "value": page, …after}, the page spliced in as it is
        body = b"".join(
            (
                orjson.dumps({"@odata.context": f"{metadata}#Collection({element_type})"})[:-1],
                b',"value":',
                page,
                b"," + orjson.dumps(after)[1:] if after else b"}",
            )
        )
        headers = {"Preference-Applied": f"maxpagesize={self.size}"} if self.asked else None
        return web.Response(body=body, content_type="application/json", headers=headers)


def select(request: web.Request, known: set[str], always: Iterable[str]) -> set[str] | None:
    """The fields `$select` names (of `known`), with those always shown; None if it names none."""
    raw = request.query.get("$select")
    if raw is None or not raw.strip():
        return None
    chosen = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(chosen - known)
    if unknown:
        raise BadRequest(f"The parameter '$select' names unknown fields: {', '.join(unknown)}.")
    return chosen.union(always)
