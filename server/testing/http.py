"""A small synchronous HTTP client on the standard library, so a test needs nothing else to call the sandbox.

`Client(base, headers)` sends `get/post/put/patch/delete/head(path, ...)` to `base + path` (an
absolute URL is used as it is) and answers a `Response` for every status: a test asserts on
`.status` rather than catching exceptions. Redirects are not followed unless asked
(`follow_redirects=True`): a finished Laserfiche copy answers 302, and the test wants to see it.
Proxies from the environment are ignored: the sandbox is always on this machine.
"""

from __future__ import annotations

import json as jsonlib
import uuid
from collections.abc import Mapping
from email.message import Message
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote, urlencode
from urllib.request import (
    HTTPRedirectHandler,
    ProxyHandler,
    Request,
    build_opener,
)

# one request waits this long for the server's answer
TIMEOUT_S = 30.0
# what a path keeps as it is: every reserved character and "%" (a path the caller encoded stays so)
_PATH_SAFE = "/?&=%:@$,;+!*'()~#[]"

# a file for `files=`: its bytes, or (filename, bytes) or (filename, bytes, content type)
FileSpec = bytes | tuple[str, bytes] | tuple[str, bytes, str]


class Response:
    """An answer: `.status`, `.headers` (case-insensitive), `.content`, `.text`, `.json()`."""

    def __init__(self, url: str, status: int, headers: Message, content: bytes) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(self.headers.get_content_charset() or "utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    def raise_for_status(self) -> Response:
        if not self.ok:
            raise AssertionError(f"{self.status} from {self.url}: {self.text[:500]}")
        return self

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url} {self.text[:200]!r}>"


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx itself is the answer


_direct = build_opener(ProxyHandler({}), _NoRedirects())
_following = build_opener(ProxyHandler({}))


def multipart(fields: Mapping[str, str], files: Mapping[str, FileSpec]) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields and files, and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        parts.append(value.encode() + b"\r\n")
    for name, spec in files.items():
        filename, content, kind = _file(name, spec)
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'.encode()
        )
        parts.append(content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _file(name: str, spec: FileSpec) -> tuple[str, bytes, str]:
    if isinstance(spec, bytes):
        return name, spec, "application/octet-stream"
    if len(spec) == 2:
        return spec[0], spec[1], "application/octet-stream"
    return spec


class Client:
    """Requests to `base` with `headers` (credentials) on each; `extra` headers of a call win."""

    def __init__(self, base: str, headers: Mapping[str, str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.headers = dict(headers or {})

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = path if path.startswith(("http://", "https://")) else self._joined(path)
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        return url

    def _joined(self, path: str) -> str:
        path = quote(path, safe=_PATH_SAFE)
        return self.base + ("/" + path.lstrip("/") if path else "")

    def request(
        self,
        method: str,
        path: str = "",
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | Mapping[str, str] | None = None,
        files: Mapping[str, FileSpec] | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
        timeout: float = TIMEOUT_S,
    ) -> Response:
        body, content_type = _body(json, data, files)
        sent = dict(self.headers)
        if content_type:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        request = Request(self.url(path, params), data=body, headers=sent, method=method.upper())
        opener = _following if follow_redirects else _direct
        try:
            with opener.open(request, timeout=timeout) as answer:
                return Response(answer.url, answer.status, answer.headers, answer.read())
        except HTTPError as error:  # any status urllib would not call success: still an answer
            with error:
                return Response(error.url, error.code, error.headers, error.read())

    def get(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def head(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("HEAD", path, **kwargs)

    def post(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str = "", **kwargs: Any) -> Response:
        return self.request("DELETE", path, **kwargs)

    def __repr__(self) -> str:
        return f"<Client {self.base}>"


def _body(
    json: Any, data: bytes | str | Mapping[str, str] | None, files: Mapping[str, FileSpec] | None
) -> tuple[bytes | None, str | None]:
    if json is not None:
        if data is not None or files:
            raise TypeError("json= goes alone, without data= or files=")
        return jsonlib.dumps(json).encode(), "application/json"
    if files:
        if data is not None and not isinstance(data, Mapping):
            raise TypeError("with files=, data= must be a mapping of form fields")
        return multipart(data or {}, files)
    if isinstance(data, Mapping):
        return urlencode(data).encode(), "application/x-www-form-urlencoded"
    if isinstance(data, str):
        return data.encode(), None
    return data, None
