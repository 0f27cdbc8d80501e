"""Settings: one frozen dataclass, built from flags and the environment (or directly by tests)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from .store import CATALOG_NAME

# the Laserfiche v1 repository id the sandbox answers to unless told otherwise
DEFAULT_REPOSITORY_ID = "r-sandbox"
# access tokens last an hour, like Laserfiche Cloud's
SESSION_TTL_S = 60 * 60
# a document larger than this is refused with 413; generous, since imports stream to disk
MAX_DOCUMENT_BYTES = 64 * 1024**3
ENV_PREFIX = "SANDBOX_"
# a finished operation's token stays readable this long (Long Operations guide: 15 minutes)
TOKEN_TTL_S = 15 * 60
# how status answers a completed copy: "docs" as the Long Operations guide shows it (302 to the
# new entry), "sdk" as the published OpenAPI description and official clients expect (201)
PROFILES = ("docs", "sdk")
# a second operation in a session: refused with 429 (Laserfiche Cloud), or queued behind the first
SESSION_CONCURRENCY = ("reject", "queue")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# the Elements dialect's default credentials: printed in the banner, so the sandbox works unset
ELEMENTS_USER_SECRET = "sandbox-user-secret"
ELEMENTS_ORG_SECRET = "sandbox-org-secret"
ELEMENTS_TOKEN = "sandbox-element-token"
# webhooks are signed out of the box, so receivers can test their verification ("" = unsigned)
SIGNATURE_KEY = "sandbox-signature-key"
# the public platform retries a failed webhook 5 times, the first after 8 seconds, then longer
WEBHOOK_RETRIES = 5
WEBHOOK_BACKOFF_S = 8.0
# one delivery attempt gives up after this long (a receiver that hangs costs no more)
WEBHOOK_TIMEOUT_S = 10.0
# v2's GET Tasks holds its answer at most this long while the tasks run ("at most 60 seconds": the
# published v2 OpenAPI description of ListTasks)
TASK_WAIT_S = 60.0
# v2 tasks that run at once per access token (v2 allows "a limited number"); more wait their turn
V2_RUNNING_PER_SESSION = 1
# a v2 search's results are kept this long after they were last read (the published v2 description:
# "5 minutes"); then a read answers 404, and refresh=true runs the search again
SEARCH_RESULTS_TTL_S = 5 * 60
# a v2 upload's part URLs last this long after its last batch (the published v2 description:
# "15 minutes"); then the upload is removed with its parts
UPLOAD_TTL_S = 15 * 60
# whether a delete must give an audit reason (Laserfiche: a repository setting, off by default)
AUDIT_REASON_RULES = ("optional", "required")
# users who see and steer every session's operations under /sandbox/ (others: their own)
ADMIN_USERS = ("admin",)
# an idle event stream gets a comment this often, so proxies and clients keep it open
SSE_KEEPALIVE_S = 15.0


@dataclass(frozen=True)
class Settings:
    storage_root: Path = Path("storage_root")
    host: str = "127.0.0.1"
    port: int = 8080
    repository_id: str = DEFAULT_REPOSITORY_ID
    users: tuple[tuple[str, str], ...] = (("admin", "admin"),)
    session_ttl_s: float = SESSION_TTL_S
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    log_level: str = "INFO"
    token_ttl_s: float = TOKEN_TTL_S
    profile: str = "docs"
    session_concurrency: str = "reject"
    # milliseconds added per entry a long operation copies or deletes (0: full speed)
    pace_ms: float = 0.0
    # worker processes that copy small files (0: copy in threads only)
    copy_processes: int = 2
    # the Elements dialect: credentials, the default instance's webhook settings, delivery
    elements_user_secret: str = ELEMENTS_USER_SECRET
    elements_org_secret: str = ELEMENTS_ORG_SECRET
    elements_token: str = ELEMENTS_TOKEN
    callback_url: str = ""
    signature_key: str = SIGNATURE_KEY
    webhook_retries: int = WEBHOOK_RETRIES
    webhook_backoff_s: float = WEBHOOK_BACKOFF_S
    webhook_timeout_s: float = WEBHOOK_TIMEOUT_S
    # the sandbox's controls: who sees every session, and the event stream's keep-alive
    admin_users: tuple[str, ...] = ADMIN_USERS
    sse_keepalive_s: float = SSE_KEEPALIVE_S
    # the name clients see as `volumeName`
    volume_name: str = "DEFAULTVOLUME"
    # Laserfiche v2: the longest a task listing waits for a task to end, and tasks run at once
    task_wait_s: float = TASK_WAIT_S
    v2_running_per_session: int = V2_RUNNING_PER_SESSION
    search_results_ttl_s: float = SEARCH_RESULTS_TTL_S
    # metadata: the catalog file (None: .catalog.toml at the top of the storage root), and
    # whether a delete must give a DeleteEntry audit reason
    catalog: Path | None = None
    delete_reason_required: bool = False
    # Laserfiche v2: how long an upload's part URLs last after its last batch (then it is removed)
    upload_ttl_s: float = UPLOAD_TTL_S

    @property
    def catalog_path(self) -> Path:
        return self.catalog if self.catalog is not None else self.storage_root / CATALOG_NAME


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, got {value!r}")
    return name, password


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value!r}")
    return number


def _one_of(options: tuple[str, ...]) -> Callable[[str], str]:
    # a type rather than `choices`, so that a value from the environment is checked too
    def check(value: str) -> str:
        if value not in options:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value!r}")
    return number


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value!r}")
    return number


def _secret(value: str) -> str:
    # it travels in "Authorization: User <secret>, …": one token, no separators
    if not value or any(c in value for c in ", \t") or not value.isprintable():
        raise argparse.ArgumentTypeError("must be non-empty, printable, without spaces or commas")
    return value


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive webhooks, or None: it must be an absolute http:// or https:// URL
    with a host and a port that exist."""
    try:
        parsed = URL(url)
        parsed.origin(), parsed.host  # (yarl checks the port and the host's IDNA form only when asked)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parsed.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    host = parsed.raw_host or ""
    if not host or not host.isprintable() or any(c.isspace() for c in host):
        return "must name a host"
    if not parsed.port:
        return "must not name port 0"
    return None


def _callback_url(value: str) -> str:
    problem = url_problem(value) if value else None
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}, got {value!r}")
    return value


def _non_negative(value: str) -> float:
    number = float(value)
    if not number >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value!r}")
    return number


def _option(parser: argparse.ArgumentParser, flag: str, default: str, **kwargs: Any) -> None:
    """A flag whose default comes from SANDBOX_<FLAG> (--session-ttl: SANDBOX_SESSION_TTL), else
    `default`. String defaults go through `type` too, so a bad variable is a clean usage error."""
    variable = ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()
    parser.add_argument(flag, default=os.environ.get(variable, default), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Local sandbox for the Laserfiche Repository API (v1 and v2) and the Cloud Elements "
        "documents hub over a folder on disk. "
        "Every flag can also be set by the environment variable SANDBOX_<NAME> "
        "(e.g. SANDBOX_PORT=9000, SANDBOX_USER='alice:secret,bob:hunter2').",
    )
    _option(parser, "--host", "127.0.0.1", help="address to bind")
    _option(parser, "--port", "8080", type=int, help="port to bind (0 picks a free one)")
    _option(
        parser,
        "--storage-root",
        "storage_root",
        type=Path,
        metavar="PATH",
        help="folder served as the repository (created if missing)",
    )
    _option(
        parser,
        "--repository-id",
        DEFAULT_REPOSITORY_ID,
        metavar="ID",
        help="the repoId in /v1/Repositories/{repoId}",
    )
    env_users = [u.strip() for u in os.environ.get(ENV_PREFIX + "USER", "").split(",") if u.strip()]
    parser.add_argument(
        "--user",
        type=_user,
        action="append",
        metavar="NAME:PASSWORD",
        help="a user who may sign in (repeatable; default admin:admin)",
    )
    try:
        parser.set_defaults(env_users=[_user(u) for u in env_users])
    except argparse.ArgumentTypeError as exc:
        parser.error(f"SANDBOX_USER: {exc}")
    _option(
        parser,
        "--session-ttl",
        str(SESSION_TTL_S),
        type=_positive,
        metavar="SECONDS",
        help="lifetime of an access token",
    )
    _option(
        parser,
        "--max-document-bytes",
        str(MAX_DOCUMENT_BYTES),
        type=int,
        metavar="BYTES",
        help="largest document an import accepts",
    )
    _option(
        parser,
        "--token-ttl",
        str(TOKEN_TTL_S),
        type=_positive,
        metavar="SECONDS",
        help="how long a finished operation's token stays readable (default 900)",
    )
    _option(
        parser,
        "--profile",
        "docs",
        type=_one_of(PROFILES),
        metavar="{docs,sdk}",
        help="status of a completed copy: docs = 302 to the new entry (the Long Operations guide), "
        "sdk = 201 with the progress (the published OpenAPI and official clients); starts answer "
        "202 or 201 likewise",
    )
    _option(
        parser,
        "--session-concurrency",
        "reject",
        type=_one_of(SESSION_CONCURRENCY),
        metavar="{reject,queue}",
        help="a second long operation in a session while one runs: reject = 429 (Laserfiche Cloud), "
        "queue = it waits as NotStarted and runs when the first ends",
    )
    _option(
        parser,
        "--pace-ms",
        "0",
        type=_non_negative,
        metavar="MS",
        help="slow long operations down by this many milliseconds per entry, to watch or cancel them",
    )
    _option(
        parser,
        "--copy-processes",
        "2",
        type=int,
        metavar="N",
        help="worker processes that copy many small files in parallel (0: threads only)",
    )
    _option(
        parser,
        "--task-wait-s",
        str(TASK_WAIT_S),
        type=_non_negative,
        metavar="SECONDS",
        help="Laserfiche v2: the longest GET Tasks holds its answer while none of its tasks has ended "
        "(Prefer: wait=N asks for less; 0 answers at once)",
    )
    _option(
        parser,
        "--v2-running-per-session",
        str(V2_RUNNING_PER_SESSION),
        type=_at_least_one,
        metavar="N",
        help="Laserfiche v2: tasks that run at once per access token; more wait as NotStarted and run "
        "in order (up to 100 waiting, then 429)",
    )
    _option(
        parser,
        "--search-results-ttl-s",
        str(SEARCH_RESULTS_TTL_S),
        type=_positive,
        metavar="SECONDS",
        help="Laserfiche v2: how long a search's results are kept after they were last read (default 300)",
    )
    _option(
        parser,
        "--catalog",
        "",
        metavar="FILE",
        help="the metadata catalog (TOML: fields, templates, tags, link types, audit reasons, "
        "attributes); default: .catalog.toml at the top of the storage root, none if absent",
    )
    _option(
        parser,
        "--delete-audit-reason",
        "optional",
        type=_one_of(AUDIT_REASON_RULES),
        metavar="{optional,required}",
        help="whether a Laserfiche delete must name a DeleteEntry audit reason of the catalog",
    )
    _option(
        parser,
        "--upload-ttl-s",
        str(UPLOAD_TTL_S),
        type=_positive,
        metavar="SECONDS",
        help="Laserfiche v2: how long the URLs of an upload in parts last (default 900); an upload "
        "whose URLs expired is removed with its parts",
    )
    _option(
        parser,
        "--elements-user-secret",
        ELEMENTS_USER_SECRET,
        type=_secret,
        metavar="SECRET",
        help="Elements dialect: the User secret of 'Authorization: User …, Organization …, Element …'",
    )
    _option(
        parser,
        "--elements-org-secret",
        ELEMENTS_ORG_SECRET,
        type=_secret,
        metavar="SECRET",
        help="Elements dialect: the Organization secret (instances routes)",
    )
    _option(
        parser,
        "--elements-token",
        ELEMENTS_TOKEN,
        type=_secret,
        metavar="TOKEN",
        help="Elements dialect: the Element token of the default instance (hub routes)",
    )
    _option(
        parser,
        "--callback-url",
        "",
        type=_callback_url,
        metavar="URL",
        help="the default instance's event.notification.callback.url (default none: an asynchronous "
        "request must then name one in Elements-Async-Callback-URL)",
    )
    _option(
        parser,
        "--signature-key",
        SIGNATURE_KEY,
        metavar="KEY",
        help="the default instance's event.notification.signature.key, which signs webhooks "
        "('' sends them unsigned)",
    )
    _option(
        parser,
        "--webhook-retries",
        str(WEBHOOK_RETRIES),
        type=_count,
        metavar="N",
        help="retries of a webhook that failed, before it is queued for redelivery",
    )
    _option(
        parser,
        "--webhook-backoff-s",
        str(WEBHOOK_BACKOFF_S),
        type=_positive,
        metavar="SECONDS",
        help="delay before the first retry of a webhook; doubles after each",
    )
    _option(
        parser,
        "--webhook-timeout-s",
        str(WEBHOOK_TIMEOUT_S),
        type=_positive,
        metavar="SECONDS",
        help="how long one webhook attempt waits for the receiver",
    )
    env_admins = [u.strip() for u in os.environ.get(ENV_PREFIX + "ADMIN_USER", "").split(",") if u.strip()]
    parser.add_argument(
        "--admin-user",
        action="append",
        metavar="NAME",
        help="a user who sees and steers every session's operations under /sandbox/ "
        "(repeatable; default admin)",
    )
    parser.set_defaults(env_admins=env_admins)
    _option(
        parser,
        "--sse-keepalive-s",
        str(SSE_KEEPALIVE_S),
        type=_positive,
        metavar="SECONDS",
        help="how often an idle /sandbox/events stream gets a keep-alive comment",
    )
    _option(parser, "--log-level", "INFO", type=_one_of(LOG_LEVELS), metavar="{DEBUG,INFO,WARNING,ERROR}")
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    args = build_parser().parse_args(argv)
    users = tuple(args.user or args.env_users or [("admin", "admin")])
    return Settings(
        storage_root=args.storage_root,
        host=args.host,
        port=args.port,
        repository_id=args.repository_id,
        users=users,
        session_ttl_s=args.session_ttl,
        max_document_bytes=args.max_document_bytes,
        log_level=args.log_level,
        token_ttl_s=args.token_ttl,
        profile=args.profile,
        session_concurrency=args.session_concurrency,
        pace_ms=args.pace_ms,
        copy_processes=args.copy_processes,
        elements_user_secret=args.elements_user_secret,
        elements_org_secret=args.elements_org_secret,
        elements_token=args.elements_token,
        callback_url=args.callback_url,
        signature_key=args.signature_key,
        webhook_retries=args.webhook_retries,
        webhook_backoff_s=args.webhook_backoff_s,
        webhook_timeout_s=args.webhook_timeout_s,
        admin_users=tuple(args.admin_user or args.env_admins or ADMIN_USERS),
        sse_keepalive_s=args.sse_keepalive_s,
        task_wait_s=args.task_wait_s,
        v2_running_per_session=args.v2_running_per_session,
        search_results_ttl_s=args.search_results_ttl_s,
        catalog=Path(args.catalog) if args.catalog else None,
        delete_reason_required=args.delete_audit_reason == "required",
        upload_ttl_s=args.upload_ttl_s,
    )
