"""Domain errors. Handlers raise these; one middleware maps each class to a problem+json status."""

from __future__ import annotations

import errno
import sqlite3


class SandboxError(Exception):
    """Base of every error a client is meant to see. `title` is the short, stable summary."""

    status = 500
    title = "An unexpected error occurred."

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # response headers that belong with the error (Retry-After, Content-Range…)
        self.headers = headers or {}
        # members added to the problem body (RFC 9457 extension members)
        self.extra = extra or {}
        if title is not None:
            self.title = title


class BadRequest(SandboxError):
    status = 400
    title = "Invalid request."


class Unauthorized(SandboxError):
    status = 401
    title = "Access token is invalid or expired."


class NotFound(SandboxError):
    status = 404
    title = "Not found."


class Conflict(SandboxError):
    status = 409
    title = "An entry with the same name already exists."


class NotAcceptable(SandboxError):
    status = 406
    title = "Not acceptable."


class PayloadTooLarge(SandboxError):
    status = 413
    title = "Request entity too large."


class URITooLong(SandboxError):
    status = 414
    title = "URI too long."


class HeaderFieldsTooLarge(SandboxError):
    status = 431
    title = "Request header fields too large."


class RangeNotSatisfiable(SandboxError):
    status = 416
    title = "Range not satisfiable."


class TooManyRequests(SandboxError):
    status = 429
    # the title Laserfiche gives its one-operation-per-session refusal
    title = "Operation limit or request limit reached."


class ServiceUnavailable(SandboxError):
    status = 503
    title = "Service unavailable."


class Forbidden(SandboxError):
    status = 403
    title = "Access denied."


class InsufficientStorage(SandboxError):
    status = 507
    title = "Insufficient storage."


class DiskError(SandboxError):
    status = 500
    title = "The storage root could not be changed."


class InjectedFailure(SandboxError):
    """A failure a sandbox fault asked for: any status, the fault's message."""

    title = "Injected failure."

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def from_store_error(exc: sqlite3.Error) -> SandboxError | None:
    """What a failed write to the store means to a client, where it is the disk's doing (full, read
    only, failing); None for anything else (a bug)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
        return InsufficientStorage("The storage root is full: the sandbox's store could not be written.")
    if code is not None and code & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
        return Forbidden("The storage root refused a change to the sandbox's store (read-only).")
    if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
        return DiskError("The storage root failed while the sandbox's store was written.")
    return None


def from_os_error(exc: OSError) -> SandboxError:
    """What a failed disk operation means to a client; the detail never names a path."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Forbidden(f"The storage root refused the change: {reason}.")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(f"The storage root is full: {reason}.")
    if exc.errno in (errno.ENAMETOOLONG, errno.EMLINK, errno.ELOOP):
        return BadRequest(f"The storage root cannot hold this: {reason}.")
    if exc.errno == errno.EXDEV:
        return BadRequest(
            "The entry cannot move between filesystems (a folder mounted inside the storage root); "
            "copy it instead."
        )
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound(f"The entry changed on disk while the request ran: {reason}.")
    return DiskError(f"The storage root failed: {reason}.")
