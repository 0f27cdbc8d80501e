"""Domain errors. Handlers raise these; one middleware maps each class to a problem+json status."""

from __future__ import annotations


class SandboxError(Exception):
    """Base of every error a client is meant to see. `title` is the short, stable summary."""

    status = 500
    title = "An unexpected error occurred."

    def __init__(
        self, detail: str, *, title: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # response headers that belong with the error (Retry-After, Content-Range…)
        self.headers = headers or {}
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


class PayloadTooLarge(SandboxError):
    status = 413
    title = "Request entity too large."


class RangeNotSatisfiable(SandboxError):
    status = 416
    title = "Range not satisfiable."
