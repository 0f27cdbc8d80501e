"""Webhook deliveries as the platform exposes them: `GET` and `PUT
/notifications/subscriptions/deliveries?where=status='queued'` list the deliveries a `where`
selects and redeliver them (same notificationId: receivers dedupe). An Element token sees its
instance's deliveries; the Organization secret sees every instance's."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..errors import BadRequest
from ..keys import deliveries_key
from ..webhooks import DeliveryStatus
from .common import json, json_built
from .elements import BASE, events, scope
from .sandbox import render_delivery

ROUTE = BASE + "/notifications/subscriptions/deliveries"
# the most deliveries one listing or redelivery takes
MAX_DELIVERIES = 1000
# one term of a `where`: a field, `=`, and a quoted status or a whole number
_TERM = re.compile(r"\s*(\w+)\s*=\s*(?:'([^']*)'|([0-9]{1,18}))\s*")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)

routes = web.RouteTableDef()


@dataclass(frozen=True)
class Where:
    status: str | None = None
    notification_id: int | None = None
    event_id: int | None = None


def where_of(request: web.Request) -> Where:
    """The `where` parameter: `status='queued'`, `notificationId=12`, `eventId=5`, joined by `and`."""
    raw = request.query.get("where", "").strip()
    if not raw:
        return Where()
    found: dict[str, Any] = {}
    for term in _AND.split(raw):
        match = _TERM.fullmatch(term)
        if match is None:
            raise BadRequest(
                f"The parameter 'where' has a term it cannot take: {term.strip()!r}. It takes "
                "status='<status>', notificationId=<n> and eventId=<n>, joined by and."
            )
        name, text, number = match.groups()
        key = {"status": "status", "notificationId": "notification_id", "eventId": "event_id"}.get(name)
        if key in found:
            raise BadRequest(f"The parameter 'where' names {name!r} twice; name it once.")
        if name == "status" and text is not None:
            if text not in set(DeliveryStatus):
                known = ", ".join(DeliveryStatus)
                raise BadRequest(f"The parameter 'where' names a status {text!r}; statuses are {known}.")
            found["status"] = text
        elif name in ("notificationId", "eventId") and number is not None:
            found["notification_id" if name == "notificationId" else "event_id"] = int(number)
        else:
            raise BadRequest(f"The parameter 'where' cannot select by {term.strip()!r}.")
    return Where(**found)


@routes.get(ROUTE)
@events
async def list_deliveries(request: web.Request) -> web.Response:
    where = where_of(request)
    deliveries = request.app[deliveries_key]
    return await json_built(
        lambda: [
            render_delivery(d)
            for d in deliveries.listing(
                where.event_id, where.status, MAX_DELIVERIES, scope(request), where.notification_id
            )
        ]
    )


@routes.put(ROUTE)
@events
async def redeliver(request: web.Request) -> web.Response:
    """Send the selected deliveries again (those delivered or queued; others are being sent), now,
    each with its retries; answers the ones it sent again."""
    where = where_of(request)
    deliveries = request.app[deliveries_key]
    selected = await asyncio.to_thread(
        deliveries.listing,
        where.event_id,
        where.status,
        MAX_DELIVERIES,
        scope(request),
        where.notification_id,
    )
    again = [d for d in selected if await deliveries.redeliver(d.notification_id)]
    return json([render_delivery(d) | {"status": DeliveryStatus.PENDING.value} for d in again])
