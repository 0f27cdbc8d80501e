"""The command line: `python -m server --help` lists the flags in groups, each with its default and
the SANDBOX_* variable that sets it too (--session-ttl: SANDBOX_SESSION_TTL); a flag given wins
over its variable. A bad value, from a flag or a variable, is one line on stderr naming the one
it came from, and exit status 2."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .config import (
    ADMIN_USERS,
    AUDIT_REASON_RULES,
    DEFAULT_REPOSITORY_ID,
    ELEMENTS_ORG_SECRET,
    ELEMENTS_TOKEN,
    ELEMENTS_USER_SECRET,
    HEADER_TIMEOUT_S,
    KEEPALIVE_TIMEOUT_S,
    LOG_LEVELS,
    MAX_DOCUMENT_BYTES,
    MAX_PACE_MS,
    PROFILES,
    SEARCH_RESULTS_TTL_S,
    SESSION_CONCURRENCY,
    SESSION_TTL_S,
    SIGNATURE_KEY,
    SSE_KEEPALIVE_S,
    TASK_WAIT_S,
    TOKEN_TTL_S,
    UPLOAD_TTL_S,
    V2_RUNNING_PER_SESSION,
    WEBHOOK_BACKOFF_S,
    WEBHOOK_RETRIES,
    WEBHOOK_TIMEOUT_S,
    Settings,
    url_problem,
)

PROG = "python -m server"
ENV_PREFIX = "SANDBOX_"
# the name the package is installed under (pyproject.toml), whose version --version shows
DISTRIBUTION = "document-ops-sandbox"
# no duration a sandbox is set to needs more than a year: more is a typo (and 1e308 seconds would
# overflow the nanosecond clocks the server keeps)
MAX_SECONDS = 365 * 24 * 3600.0

# a flag's text (or its variable's) to its value; raises ArgumentTypeError saying what is wrong
Check = Callable[[str], Any]


def _whole(low: int, high: int) -> Check:
    def check(value: str) -> int:
        # (the digits are counted first: int() refuses a text of over 4,300)
        text = value.strip().lstrip("0") or "0"
        short = len(text) <= len(str(high))
        if not (text.isascii() and text.isdigit() and short and low <= int(text) <= high):
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {value!r}")
        return int(text)

    return check


def _seconds(*, zero: bool = False, high: float = MAX_SECONDS) -> Check:
    """A finite number above 0 (or from 0, if `zero`) up to `high`."""

    def check(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and (0 <= number if zero else 0 < number) and number <= high):
            low = "from 0" if zero else "above 0"
            raise argparse.ArgumentTypeError(f"must be a number {low} up to {high:.0f}, got {value!r}")
        return number

    return check


def _one_of(*options: str) -> Check:
    def check(value: str) -> str:
        if value not in options:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _text(value: str) -> str:
    if not value.strip() or not value.isprintable():
        raise argparse.ArgumentTypeError(f"must be printable and not empty, got {value!r}")
    return value


def _any_text(value: str) -> str:
    return value


def _segment(value: str) -> str:
    # it is a segment of every Laserfiche URL: /v1/Repositories/{repoId}/…
    if not value or not value.isprintable() or any(ch in value for ch in "/?#%\\ \t"):
        raise argparse.ArgumentTypeError(f"must be one URL segment (no / ? # % or spaces), got {value!r}")
    return value


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"must be NAME:PASSWORD, got {value!r}")
    return name, password


def _secret(value: str) -> str:
    # it travels in "Authorization: User <secret>, …": one token, no separators
    if not value or any(ch in value for ch in ", \t") or not value.isprintable():
        raise argparse.ArgumentTypeError("must be non-empty, printable, without spaces or commas")
    return value


def _callback_url(value: str) -> str:
    problem = url_problem(value) if value else None
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}, got {value!r}")
    return value


def _folder(value: str) -> Path:
    """A folder, or one to create: the nearest of it and its parents that exists is a folder."""
    if not value:
        raise argparse.ArgumentTypeError("must name a folder")
    path = Path(value)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under a file, {str(existing)!r}"
        raise argparse.ArgumentTypeError(f"{value!r} {where}, not a folder")
    return path


def _catalog(value: str) -> Path | None:
    if not value:
        return None
    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(
            f"{value!r} is {'not a file' if Path(value).exists() else 'missing'}"
        )
    return Path(value)


def _audit_reason_required(value: str) -> bool:
    rule: str = _one_of(*AUDIT_REASON_RULES)(value)
    return rule == "required"


def _on_off(value: str) -> bool:
    if value.lower() not in ("1", "true", "yes", "0", "false", "no", ""):
        raise argparse.ArgumentTypeError(
            f"must be 1, true or yes (on), or 0, false, no or empty, got {value!r}"
        )
    return value.lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Flag:
    """One flag, its SANDBOX_* variable, and the Settings field it sets."""

    name: str  # --session-ttl
    field: str  # session_ttl_s
    default: str  # as text, checked like any value
    check: Check
    help: str
    metavar: str | None = None
    shown: str | None = None  # the default as --help tells it, if not `default` itself
    # repeatable (its variable: the values separated by commas), or on/off (given: on)
    repeated: bool = False
    switch: bool = False

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.removeprefix("--").replace("-", "_").upper()

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")

    def add_to(self, group: argparse._ArgumentGroup) -> None:
        shown = self.shown if self.shown is not None else self.default or "none"
        where = f"{self.variable}, comma-separated" if self.repeated else self.variable
        explained = f"{self.help} (default: {shown}; {where})"
        if self.switch:
            group.add_argument(self.name, action="store_const", const=True, help=explained)
            return
        action = "append" if self.repeated else "store"
        group.add_argument(self.name, type=self.check, action=action, metavar=self.metavar, help=explained)

    def value(self, given: Any, parser: argparse.ArgumentParser) -> Any:
        """The flag's value: as given, else as its variable says (an error naming it), else the default."""
        if given is not None:
            return tuple(given) if self.repeated else given
        raw = os.environ.get(self.variable)
        if raw is None or (self.repeated and not _items(raw)):
            return self._read(self.default)
        try:
            return self._read(raw)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{self.variable}: {exc}")

    def _read(self, text: str) -> Any:
        return tuple(self.check(item) for item in _items(text)) if self.repeated else self.check(text)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _choices(options: tuple[str, ...]) -> str:
    return "{" + ",".join(options) + "}"


GROUPS: dict[str, tuple[Flag, ...]] = {
    "server": (
        Flag("--host", "host", "127.0.0.1", _text, "address to bind"),
        Flag("--port", "port", "8080", _whole(0, 65535), "port to bind; 0 picks a free one"),
        Flag(
            "--header-timeout-s", "header_timeout_s", f"{HEADER_TIMEOUT_S:g}", _seconds(),
            "a client that has not sent a request's complete headers this long after it connected, "
            "or after the request began, is disconnected",
            metavar="SECONDS",
        ),
        Flag(
            "--keepalive-timeout-s", "keepalive_timeout_s", f"{KEEPALIVE_TIMEOUT_S:g}", _seconds(),
            "a connection idle this long between requests is closed",
            metavar="SECONDS",
        ),
        Flag(
            "--log-level", "log_level", "INFO", _one_of(*LOG_LEVELS),
            "the least important messages logged (to stderr)",
            metavar=_choices(LOG_LEVELS),
        ),
    ),
    "repository": (
        Flag(
            "--storage-root", "storage_root", "storage_root", _folder,
            "folder served as the repository (created if missing)",
            metavar="PATH",
        ),
        Flag(
            "--ephemeral", "ephemeral", "", _on_off,
            "serve a fresh temporary copy of the storage root (its catalog and ids included), "
            "removed on exit: the storage root itself is left as it is",
            shown="off", switch=True,
        ),
        Flag(
            "--catalog", "catalog", "", _catalog,
            "the metadata catalog (TOML: fields, templates, tags, link types, audit reasons, attributes)",
            metavar="FILE",
            shown=".catalog.toml at the top of the storage root, none if absent",
        ),
        Flag(
            "--max-document-bytes", "max_document_bytes", str(MAX_DOCUMENT_BYTES), _whole(1, 2**62),
            "largest document an import accepts",
            metavar="BYTES", shown=f"{MAX_DOCUMENT_BYTES} = 64 GiB",
        ),
        Flag(
            "--copy-processes", "copy_processes", "2", _whole(0, 64),
            "worker processes that copy many small files in parallel; 0: threads only",
            metavar="N",
        ),
    ),
    "Laserfiche": (
        Flag(
            "--repository-id", "repository_id", DEFAULT_REPOSITORY_ID, _segment,
            "the repoId in /v1/Repositories/{repoId} and /v2/Repositories/{repoId}",
            metavar="ID",
        ),
        Flag(
            "--user", "users", "admin:admin", _user,
            "a user who may sign in; repeatable",
            metavar="NAME:PASSWORD", repeated=True,
        ),
        Flag(
            "--session-ttl", "session_ttl_s", f"{SESSION_TTL_S:g}", _seconds(),
            "lifetime of an access token",
            metavar="SECONDS",
        ),
        Flag(
            "--token-ttl", "token_ttl_s", f"{TOKEN_TTL_S:g}", _seconds(),
            "how long a finished operation's token stays readable",
            metavar="SECONDS",
        ),
        Flag(
            "--profile", "profile", "docs", _one_of(*PROFILES),
            "status of a completed copy: docs = 302 to the new entry (the Long Operations guide), sdk = "
            "201 with the progress (the published OpenAPI and official clients); starts answer 202 or "
            "201 likewise",
            metavar=_choices(PROFILES),
        ),
        Flag(
            "--session-concurrency", "session_concurrency", "reject", _one_of(*SESSION_CONCURRENCY),
            "a second long operation in a session while one runs: reject = 429 (Laserfiche Cloud), "
            "queue = it waits as NotStarted and runs when the first ends",
            metavar=_choices(SESSION_CONCURRENCY),
        ),
        Flag(
            "--task-wait-s", "task_wait_s", f"{TASK_WAIT_S:g}", _seconds(zero=True),
            "v2: the longest GET Tasks holds its answer while none of its tasks has ended "
            "(Prefer: wait=N asks for less; 0 answers at once)",
            metavar="SECONDS",
        ),
        Flag(
            "--v2-running-per-session", "v2_running_per_session", str(V2_RUNNING_PER_SESSION), _whole(1, 100),
            "v2: tasks that run at once per access token; more wait as NotStarted and run in order "
            "(up to 100 waiting, then 429)",
            metavar="N",
        ),
        Flag(
            "--search-results-ttl-s", "search_results_ttl_s", f"{SEARCH_RESULTS_TTL_S:g}", _seconds(),
            "v2: how long a search's results are kept after they were last read",
            metavar="SECONDS",
        ),
        Flag(
            "--upload-ttl-s", "upload_ttl_s", f"{UPLOAD_TTL_S:g}", _seconds(),
            "v2: how long the URLs of an upload in parts last; an upload whose URLs expired is "
            "removed with its parts",
            metavar="SECONDS",
        ),
        Flag(
            "--delete-audit-reason", "delete_reason_required", "optional", _audit_reason_required,
            "whether a delete must name a DeleteEntry audit reason of the catalog",
            metavar=_choices(AUDIT_REASON_RULES),
        ),
    ),
    "Elements": (
        Flag(
            "--elements-user-secret", "elements_user_secret", ELEMENTS_USER_SECRET, _secret,
            "the User secret of 'Authorization: User …, Organization …, Element …'",
            metavar="SECRET",
        ),
        Flag(
            "--elements-org-secret", "elements_org_secret", ELEMENTS_ORG_SECRET, _secret,
            "the Organization secret (instances routes)",
            metavar="SECRET",
        ),
        Flag(
            "--elements-token", "elements_token", ELEMENTS_TOKEN, _secret,
            "the Element token of the default instance (hub routes)",
            metavar="TOKEN",
        ),
    ),
    "webhooks": (
        Flag(
            "--callback-url", "callback_url", "", _callback_url,
            "the default instance's event.notification.callback.url",
            metavar="URL",
            shown="none: an asynchronous request must name one in Elements-Async-Callback-URL",
        ),
        Flag(
            "--signature-key", "signature_key", SIGNATURE_KEY, _any_text,
            "the default instance's event.notification.signature.key, which signs webhooks "
            "('' sends them unsigned)",
            metavar="KEY",
        ),
        Flag(
            "--webhook-retries", "webhook_retries", str(WEBHOOK_RETRIES), _whole(0, 20),
            "retries of a webhook that failed, before it is queued for redelivery",
            metavar="N",
        ),
        Flag(
            "--webhook-backoff-s", "webhook_backoff_s", f"{WEBHOOK_BACKOFF_S:g}", _seconds(),
            "delay before the first retry of a webhook; doubles after each",
            metavar="SECONDS",
        ),
        Flag(
            "--webhook-timeout-s", "webhook_timeout_s", f"{WEBHOOK_TIMEOUT_S:g}", _seconds(),
            "how long one webhook attempt waits for the receiver",
            metavar="SECONDS",
        ),
    ),
    "sandbox controls": (
        Flag(
            "--admin-user", "admin_users", ",".join(ADMIN_USERS), _text,
            "a user who sees and steers every session's operations under /sandbox/; repeatable",
            metavar="NAME", repeated=True,
        ),
        Flag(
            "--pace-ms", "pace_ms", "0", _seconds(zero=True, high=MAX_PACE_MS),
            "slow long operations down by this many milliseconds per entry, to watch or cancel them",
            metavar="MS",
        ),
        Flag(
            "--sse-keepalive-s", "sse_keepalive_s", f"{SSE_KEEPALIVE_S:g}", _seconds(high=3600),
            "how often an idle /sandbox/events stream gets a keep-alive comment",
            metavar="SECONDS",
        ),
    ),
}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (the list of flags would bury what is wrong)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return __version__  # (run from a checkout that is not installed)


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Local sandbox for the Laserfiche Repository API (v1 and v2) and the Cloud Elements "
        "documents hub over a folder on disk. Every flag can also be set by the environment variable "
        "shown with it (e.g. SANDBOX_PORT=9000, SANDBOX_USER='alice:secret,bob:hunter2'); a flag given "
        "wins over its variable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    for title, flags in GROUPS.items():
        group = parser.add_argument_group(title)
        for flag in flags:
            flag.add_to(group)
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """The settings of the command line `argv` (sys.argv's by default) and the environment; a bad
    value exits with status 2 and one line naming its flag or variable."""
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    return Settings(
        **{flag.field: flag.value(given[flag.dest], parser) for flags in GROUPS.values() for flag in flags}
    )
