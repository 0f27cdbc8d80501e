"""A running sandbox as a test sees it: where it is, its credentials, a signed-in client per dialect, and
its webhook inbox.

`start_sandbox(root, **flags)` starts one (server/testing/process.py) over a temporary copy of
`root` (by default the sample repository, `sample_root()`) with any flag of `python -m server`
(`pace_ms=200` is `--pace-ms 200`), and stops it on leaving. The pytest fixtures
(server/testing/plugin.py) are built on it; a test suite may use it directly for a sandbox shared
by a whole module or session.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..config import (
    DEFAULT_REPOSITORY_ID,
    ELEMENTS_ORG_SECRET,
    ELEMENTS_TOKEN,
    ELEMENTS_USER_SECRET,
    SIGNATURE_KEY,
)
from .http import Client, Response
from .process import START_TIMEOUT_S, STOP_TIMEOUT_S, SandboxError, ServerProcess, launch

# the flags the plugin sets itself: a test names the root as `root`, and the port is always free
RESERVED_FLAGS = ("host", "port", "storage_root")
# the longest one inbox listing may hold its answer (the inbox's own limit)
MAX_INBOX_WAIT_S = 60
# a request that holds its answer gets this much longer than the hold before it gives up
HOLD_MARGIN_S = 10.0


def sample_root() -> Path:
    """The sample repository: `server/sample` in an installed package (a copy of the checkout's
    `storage_root/` made when the package is built, see setup.py), else `storage_root/` itself,
    when the package runs from its checkout. One source, so the README's tour and the plugin see
    the same content."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "sample", package.parent / "storage_root"):
        if candidate.is_dir():
            return candidate
    raise SandboxError(f"no sample repository beside {package} (neither sample/ nor ../storage_root/)")


def command_line(flags: Mapping[str, Any]) -> list[str]:
    """`python -m server` flags from keyword arguments: `pace_ms=200` -> `--pace-ms 200`; True alone
    (`ephemeral=True` -> `--ephemeral`); False and None left out; a list or tuple repeats the flag."""
    args: list[str] = []
    for name, value in flags.items():
        if name in RESERVED_FLAGS:
            raise TypeError(f"{name}: the sandbox fixtures set it (name the storage root as root=)")
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        elif value is not None and value is not False:
            args += [flag, str(value)]
    return args


class SandboxWarning(UserWarning):
    """A sandbox did not stop within its time after SIGTERM, and was killed."""


class Laserfiche:
    """One signed-in Laserfiche session (one access token): v1, v2 and the server's own routes."""

    def __init__(self, url: str, repository_id: str, token: str) -> None:
        self.token = token
        bearer = {"Authorization": f"Bearer {token}"}
        self.v1 = Client(f"{url}/v1/Repositories/{repository_id}", bearer)
        self.v2 = Client(f"{url}/v2/Repositories/{repository_id}", bearer)
        self.http = Client(url, bearer)


class Inbox:
    """A webhook inbox of the sandbox: `url` receives deliveries, `wait()` returns them."""

    def __init__(self, name: str, url: str, http: Client) -> None:
        self.name = name
        self.url = url
        self._http = http

    def deliveries(self, after: int = 0, wait: float = 0) -> list[dict[str, Any]]:
        """What arrived (oldest first), only ids above `after`; `wait` seconds for a first one."""
        params: dict[str, Any] = {"after": after}
        if wait > 0:
            params["wait"] = f"{min(wait, MAX_INBOX_WAIT_S):.3f}"
        answer = self._http.get(self.url, params=params, timeout=wait + HOLD_MARGIN_S)
        listing: list[dict[str, Any]] = _expect(answer, 200, f"the inbox {self.name!r}")["deliveries"]
        return listing

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Every delivery, once there are at least `count`; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        arrived = self.deliveries()
        while len(arrived) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"the inbox {self.name!r} holds {len(arrived)} of {count} deliveries after {timeout:g} s"
                )
            arrived += self.deliveries(after=arrived[-1]["id"] if arrived else 0, wait=left)
        return arrived

    def clear(self) -> None:
        _expect(self._http.delete(self.url), 204, f"emptying the inbox {self.name!r}")

    def __repr__(self) -> str:
        return f"<Inbox {self.url}>"


class Sandbox:
    """A running sandbox: `url`, `repository_id`, the credentials, `v1`, `v2`, `elements`, `http`
    (the server's own routes, signed in), `inbox(name)`, `reset()`, and the temporary `root` it serves."""

    def __init__(self, process: ServerProcess, flags: Mapping[str, Any]) -> None:
        self.process = process
        self.url = process.base_url
        self.repository_id = str(flags.get("repository_id", DEFAULT_REPOSITORY_ID))
        users = flags.get("user") or ["admin:admin"]
        first = users if isinstance(users, str) else users[0]
        self.username, _, self.password = str(first).partition(":")
        self.elements_user_secret = str(flags.get("elements_user_secret", ELEMENTS_USER_SECRET))
        self.elements_org_secret = str(flags.get("elements_org_secret", ELEMENTS_ORG_SECRET))
        self.elements_token = str(flags.get("elements_token", ELEMENTS_TOKEN))
        self.signature_key = str(flags.get("signature_key", SIGNATURE_KEY))

    @property
    def root(self) -> Path:
        return self.process.root

    def log(self) -> str:
        """The server's banner and log so far."""
        return self.process.output()

    def sign_in(self, username: str | None = None, password: str | None = None) -> Laserfiche:
        """A new Laserfiche session (its own access token: its own one-operation-at-a-time scope)."""
        answer = Client(self.url).post(
            f"/v1/Repositories/{self.repository_id}/Token",
            data={
                "grant_type": "password",
                "username": self.username if username is None else username,
                "password": self.password if password is None else password,
            },
        )
        token: str = _expect(answer, 200, "signing in")["access_token"]
        return Laserfiche(self.url, self.repository_id, token)

    @cached_property
    def session(self) -> Laserfiche:
        """The session `v1`, `v2` and `http` share, signed in as the first user on first use."""
        return self.sign_in()

    @property
    def v1(self) -> Client:
        return self.session.v1

    @property
    def v2(self) -> Client:
        return self.session.v2

    @property
    def http(self) -> Client:
        return self.session.http

    @cached_property
    def elements(self) -> Client:
        """The Elements API (`/elements/api-v2`) with the User secret, the Organization secret and
        the default instance's Element token: the hub's routes and the platform's alike."""
        credentials = (
            f"User {self.elements_user_secret}, Organization {self.elements_org_secret}, "
            f"Element {self.elements_token}"
        )
        return Client(f"{self.url}/elements/api-v2", {"Authorization": credentials})

    def inbox(self, name: str = "default") -> Inbox:
        return Inbox(name, f"{self.url}/sandbox/inbox/{quote(name, safe='')}", self.http)

    def reset(self) -> None:
        """Back to the state it started in (POST /sandbox/reset; the first user must be an admin)."""
        answer = self.http.post("/sandbox/reset")
        if not 200 <= answer.status < 300:
            raise SandboxError(f"reset answered {answer.status}: {answer.text[:500]}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop it and remove its temporary copy; False when it had to be killed."""
        return self.process.stop(timeout)

    def __repr__(self) -> str:
        return f"<Sandbox {self.url} pid={self.process.pid}>"


@contextmanager
def start_sandbox(
    root: str | Path | None = None,
    *,
    start_timeout: float = START_TIMEOUT_S,
    stop_timeout: float = STOP_TIMEOUT_S,
    **flags: Any,
) -> Iterator[Sandbox]:
    """A sandbox over a temporary copy of `root` (default: the sample) with `flags`, for the block."""
    source = sample_root() if root is None else Path(root)
    if not source.is_dir():
        raise SandboxError(f"the storage root to copy is not a folder: {source}")
    sandbox = Sandbox(launch(source, command_line(flags), start_timeout), flags)
    try:
        yield sandbox
    finally:
        if not sandbox.stop(stop_timeout):
            warnings.warn(
                f"the sandbox at {sandbox.url} did not stop within {stop_timeout:g} s of SIGTERM: killed",
                SandboxWarning,
                stacklevel=3,
            )


def _expect(answer: Response, status: int, doing: str) -> Any:
    if answer.status != status:
        raise SandboxError(f"{doing} answered {answer.status}, not {status}: {answer.text[:500]}")
    return answer.json() if answer.content else None
