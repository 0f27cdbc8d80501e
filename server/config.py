"""Settings: one frozen dataclass, built from flags and the environment (server/cli.py) or directly
by tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from .store import CATALOG_NAME

# the Laserfiche v1 repository id the sandbox answers to unless told otherwise
DEFAULT_REPOSITORY_ID = "r-sandbox"
# access tokens last an hour, like Laserfiche Cloud's
SESSION_TTL_S = 60 * 60
# a document larger than this is refused with 413; generous, since imports stream to disk
MAX_DOCUMENT_BYTES = 64 * 1024**3
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
# the longest pace per entry, from --pace-ms or a request's Sandbox-Pace-Ms (one minute)
MAX_PACE_MS = 60_000
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
# a client that has not sent a request's complete headers this long after it connected (or after
# the request began) is disconnected, so slow clients cannot hold every descriptor (the contract)
HEADER_TIMEOUT_S = 60.0
# a connection idle this long between requests is closed (nginx's default; clients reconnect)
KEEPALIVE_TIMEOUT_S = 75.0


@dataclass(frozen=True)
class Settings:
    storage_root: Path = Path("storage_root")
    host: str = "127.0.0.1"
    port: int = 8080
    header_timeout_s: float = HEADER_TIMEOUT_S
    keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S
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
    # serve a temporary copy of the storage root, removed on exit (server/ephemeral.py)
    ephemeral: bool = False

    @property
    def catalog_path(self) -> Path:
        return self.catalog if self.catalog is not None else self.storage_root / CATALOG_NAME


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
