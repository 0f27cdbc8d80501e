"""What every dialect shares at the HTTP edge: JSON, problem details, request ids, auth, access log."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import sqlite3
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote_to_bytes

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_urldispatcher import MatchInfoError

from ..config import MAX_PACE_MS, Settings
from ..errors import (
    BadRequest,
    HeaderFieldsTooLarge,
    NotFound,
    PayloadTooLarge,
    SandboxError,
    Unauthorized,
    URITooLong,
    from_os_error,
    from_store_error,
)
from ..keys import REQUEST_ID, SESSION, load_key, sessions_key, settings_key
from ..sessions import Session

log = logging.getLogger("server")
# ids, counts and offsets are 32-bit in the Laserfiche API
MAX_INT32 = 2**31 - 1
# no route needs more: a query string or a header longer than these is refused before anything
# reads it (aiohttp's parser itself stops at 8 KiB, with a bare 400)
MAX_QUERY_BYTES = 4096
MAX_HEADER_BYTES = 4096
_DIGITS = re.compile(r"[0-9]+")
_MAX_INT32_DIGITS = len(str(MAX_INT32))
# a parameter refused is quoted in the problem this far, not whole (a path can hold thousands of digits)
_SHOWN_CHARS = 32

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def public(handler: H) -> H:
    """Mark a handler as reachable without an access token."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


def body_limit(limit: Callable[[Settings], int]) -> Callable[[H], H]:
    """Mark a handler whose body may be larger than the app's client_max_size (a document, a part
    of an upload): `limit(settings)` is the most its Content-Length may declare."""

    def mark(handler: H) -> H:
        handler.body_limit = limit  # type: ignore[attr-defined]
        return handler

    return mark


def authenticated_by(check: Callable[[web.Request], Session]) -> Callable[[H], H]:
    """Mark a handler as authenticated by `check` (another dialect's credentials) instead of a
    Laserfiche bearer token; `check` raises Unauthorized or returns the request's session."""

    def mark(handler: H) -> H:
        handler.authenticate = check  # type: ignore[attr-defined]
        return handler

    return mark


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_bytes_response(data, status=status, headers=headers, dumps=orjson.dumps)


async def json_built(build: Callable[[], Any], status: int = 200) -> web.Response:
    """A JSON answer built and encoded in a thread: for bodies that can be large (events of a
    10,000-file copy are megabytes)."""
    body = await asyncio.to_thread(lambda: orjson.dumps(build()))
    return web.Response(body=body, status=status, content_type="application/json")


def problem_body(request: web.Request, status: int, title: str, detail: str) -> dict[str, Any]:
    """RFC 9457 problem details in the shape the Laserfiche clients read."""
    request_id = request.get(REQUEST_ID, "")
    return {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110#status.{status}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.rel_url.raw_path,
        "operationId": request_id,
        "errorSource": "Api",
        "errorCode": 0,
        "traceId": request_id,
    }


def problem(
    request: web.Request,
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    response = web.json_bytes_response(
        problem_body(request, status, title, detail) | (extra or {}),
        status=status,
        headers=headers,
        dumps=orjson.dumps,
        content_type="application/problem+json",
    )
    response.headers["X-APIServer-Error"] = quote(title)
    return response


def session_of(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session


# ---- middlewares --------------------------------------------------------------------------


@web.middleware
async def counted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request as it comes in: long work yields while they come fast (see
    operations.load)."""
    request.app[load_key].started()
    return await handler(request)


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id, and turn every error into problem+json (outermost middleware)."""
    request_id = request.headers.get("X-RequestId", "")
    if not (0 < len(request_id) <= 64 and request_id.isascii() and request_id.isprintable()):
        request_id = _request_id()
    request[REQUEST_ID] = request_id
    try:
        _check_sizes(request)
        _check_encoding(request)
        _check_declared_length(request)
        response = await handler(request)
    except SandboxError as exc:
        response = problem(request, exc.status, exc.title, exc.detail, headers=exc.headers, extra=exc.extra)
    except (RequestPayloadError, HttpProcessingError, ConnectionResetError) as exc:
        # a body that is not what its headers say (bad gzip, broken multipart), or one the client
        # stopped sending: the client's fault, answered (if it still listens) and not logged as ours
        log.info("unreadable request body in %s %s [%s]: %r", request.method, request.path, request_id, exc)
        response = problem(
            request,
            400,
            "Invalid request.",
            f"The request body could not be read: {exc or type(exc).__name__}.",
        )
        # the rest of that body cannot be read either: close the connection after answering, and
        # tell aiohttp not to linger over it (it would log the same error again as its own)
        response.force_close()
        request.content.feed_eof()
    except OSError as exc:
        error = from_os_error(exc)
        log.warning("disk error in %s %s [%s]: %s", request.method, request.path, request_id, error.detail)
        response = problem(request, error.status, error.title, error.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers["X-RequestId"] = request_id
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        response = problem(request, exc.status, exc.reason, detail, headers=_kept_headers(exc))
    except sqlite3.Error as exc:
        if (stored := from_store_error(exc)) is None:
            response = _unexpected(request, request_id)
        else:
            log.warning("store error in %s %s [%s]: %s", request.method, request.path, request_id, exc)
            response = problem(request, stored.status, stored.title, stored.detail)
    except Exception:
        response = _unexpected(request, request_id)
    response.headers["X-RequestId"] = request_id
    return response


def _request_id() -> str:
    """An id for a request that brought none: unique, not secret (it is echoed back and logged), so
    drawn without a system call (os.urandom's each cost the event loop a trip for the GIL while
    copies ran in the work threads)."""
    return f"{random.getrandbits(128):032x}"


def _unexpected(request: web.Request, request_id: str) -> web.Response:
    """A 500 for an error that is the server's own; logged with its traceback."""
    log.error(
        "unhandled error in %s %s [%s]\n%s",
        request.method,
        request.path,
        request_id,
        traceback.format_exc(),
    )
    return problem(
        request,
        500,
        "An unexpected error occurred.",
        f"The server failed to handle the request; quote trace id {request_id}.",
    )


def _check_sizes(request: web.Request) -> None:
    if len(request.rel_url.raw_query_string) > MAX_QUERY_BYTES:
        raise URITooLong(f"The query string is longer than {MAX_QUERY_BYTES} bytes.")
    for name, value in request.raw_headers:
        if len(name) + len(value) > MAX_HEADER_BYTES:
            raise HeaderFieldsTooLarge(
                f"The header '{name.decode('latin-1')[:64]}' is longer than {MAX_HEADER_BYTES} bytes."
            )


def _check_encoding(request: web.Request) -> None:
    """Refuse a path or query whose percent-escapes are not UTF-8: the URL layer would read `%FF`
    as the three characters `%FF` in a path and as U+FFFD in a query, either way a name other than
    the one sent."""
    try:
        unquote_to_bytes(request.raw_path).decode("utf-8")
    except UnicodeError:
        raise BadRequest(
            "The request's path or query has a percent-encoded sequence that is not UTF-8; "
            "names and values must be UTF-8, percent-encoded byte by byte."
        ) from None


def _check_declared_length(request: web.Request) -> None:
    """Refuse, before any of it is read, a body whose Content-Length is over the route's limit:
    its own (see `body_limit`), else the app's client_max_size."""
    declared = request.content_length
    if declared is None:
        return
    handler = request.match_info.handler
    limit_of: Callable[[Settings], int] | None = getattr(handler, "body_limit", None)
    limit = request.client_max_size if limit_of is None else limit_of(request.app[settings_key])
    if declared > limit:
        raise PayloadTooLarge(
            f"The request body declares {declared} bytes; this route takes at most {limit}."
        )


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    keep = ("Allow", "Content-Range", "Retry-After", "Location")
    return {k: v for k, v in exc.headers.items() if k in keep}


def auth_middleware(repository_id: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        match_info = request.match_info
        # no such route (404/405) is answered as such, signed in or not
        unmatched = isinstance(match_info, MatchInfoError)
        if not unmatched and not getattr(match_info.handler, "public", False):
            check = getattr(match_info.handler, "authenticate", bearer_session)
            request[SESSION] = check(request)
        repo = request.match_info.get("repoId")
        if repo is not None and repo != repository_id:
            raise NotFound(f"Repository '{repo}' not found.")
        return await handler(request)

    return middleware


def bearer_session(request: web.Request) -> Session:
    """The session of the request's Laserfiche bearer token; 401 without a valid one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "An 'Authorization: Bearer <access_token>' header is required.",
            title="Access token is missing.",
        )
    return request.app[sessions_key].authenticate(token.strip())


class MalformedRequests(logging.Filter):
    """aiohttp logs a request its parser cannot read (a bad header byte, a line too long) as an
    ERROR with a traceback, though it is the client's and answered 400: one INFO line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 400) < 500:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed request answered %s: %s", (error.code, error.message)
            record.exc_info = record.exc_text = None
        return True


class AccessLogger(AbstractAccessLogger):
    """One line per request: no headers, so no tokens or passwords reach the log."""

    @property
    def enabled(self) -> bool:
        # (aiohttp asks before each request: nothing to put together when the level drops the line)
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        session = request.get(SESSION)
        self.logger.info(
            "%s %s %s %d %d %.1fms id=%s user=%s",
            request.remote,
            request.method,
            request.rel_url.raw_path,
            response.status,
            response.body_length,
            time * 1000,
            request.get(REQUEST_ID, "-"),
            session.user if session else "-",
        )


# ---- request parsing ----------------------------------------------------------------------


async def read_json(request: web.Request) -> dict[str, Any]:
    return json_object(await _body(request, "A JSON object"), "request body")


async def read_json_value(request: web.Request) -> Any:
    """The request body as any JSON value (v1 takes arrays too)."""
    raw = await _body(request, "A JSON value")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None


async def read_body(request: web.Request) -> bytes:
    """The whole request body; 413 (problem details) past the app's limit."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(exc.text or "The request body is too large.") from None


async def _body(request: web.Request, what: str) -> bytes:
    raw = await read_body(request)
    if not raw.strip():
        raise BadRequest(f"{what} is required as the request body.")
    return raw


def json_object(raw: bytes | bytearray, what: str) -> dict[str, Any]:
    """`raw` as a JSON object; 400 naming `what` otherwise."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The {what} is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    return body


T = TypeVar("T")


def field(body: dict[str, Any], name: str, kind: type[T], required: bool = False) -> T | None:
    """A typed field of a JSON body; 400 naming the field when it is missing or of the wrong type."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"The field '{name}' is required.")
        return None
    # bool is an int in Python, but not in JSON
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRequest(f"The field '{name}' must be of type {_json_type(kind)}.")
    if isinstance(value, int):
        _in_range(value, f"field '{name}'", 0)
    return value


def _json_type(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}.get(
        kind, kind.__name__
    )


def int_param(value: str, name: str, minimum: int = 0) -> int:
    # plain ASCII digits only: int() would also take "+1", " 1", "1_0" and other scripts' digits
    if not _DIGITS.fullmatch(value):
        raise BadRequest(f"The parameter '{name}' must be a whole number, got {value[:_SHOWN_CHARS]!r}.")
    # (int() refuses a text of over 4,300 digits, leading zeros included, with a ValueError that
    # would be a 500; past its leading zeros, one longer than MAX_INT32 is out of range anyway)
    significant = value.lstrip("0") or "0"
    if len(significant) > _MAX_INT32_DIGITS:
        raise _out_of_range(f"parameter '{name}'", minimum)
    return _in_range(int(significant), f"parameter '{name}'", minimum)


def _in_range(number: int, what: str, minimum: int) -> int:
    if not minimum <= number <= MAX_INT32:
        raise _out_of_range(what, minimum)
    return number


def _out_of_range(what: str, minimum: int) -> BadRequest:
    return BadRequest(f"The {what} must be between {minimum} and {MAX_INT32}.")


_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
PACE_HEADER = "Sandbox-Pace-Ms"


def pace_s(request: web.Request) -> float | None:
    """The pace a request asks for its operation (`Sandbox-Pace-Ms`), in seconds per entry; None
    if it asks for none (the server's `--pace-ms` then)."""
    raw = request.headers.get(PACE_HEADER)
    if raw is None:
        return None
    if not _DECIMAL.fullmatch(raw.strip()) or float(raw) > MAX_PACE_MS:
        raise BadRequest(
            f"The header '{PACE_HEADER}' must be a number of milliseconds from 0 to {MAX_PACE_MS}, "
            f"got {raw!r}."
        )
    return float(raw) / 1000


def seconds_param(request: web.Request, name: str, most: float) -> float | None:
    """A number of seconds from the query (at most `most`: more is taken as `most`), or None."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if not _DECIMAL.fullmatch(raw):
        raise BadRequest(f"The parameter '{name}' must be a number of seconds, got {raw!r}.")
    return min(float(raw), most)


def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"The parameter '{name}' must be true or false, got {value!r}.")
