"""Settings: one frozen dataclass, built from flags and the environment (or directly by tests)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    # the name clients see as `volumeName`
    volume_name: str = field(default="DEFAULTVOLUME")

    def password_of(self, user: str) -> str | None:
        for name, password in self.users:
            if name == user:
                return password
        return None


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


def _non_negative(value: str) -> float:
    number = float(value)
    if not number >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Local sandbox for the Laserfiche Repository API v1 over a folder on disk. "
        "Every flag can also be set by the environment variable SANDBOX_<NAME> "
        "(e.g. SANDBOX_PORT=9000, SANDBOX_USER='alice:secret,bob:hunter2').",
    )
    parser.add_argument("--host", default=env.get(ENV_PREFIX + "HOST", "127.0.0.1"), help="address to bind")
    parser.add_argument(
        "--port",
        type=int,
        # string defaults go through `type` too, so a bad SANDBOX_PORT is a clean usage error
        default=env.get(ENV_PREFIX + "PORT", "8080"),
        help="port to bind (0 picks a free one)",
    )
    parser.add_argument(
        "--storage-root",
        type=Path,
        default=Path(env.get(ENV_PREFIX + "STORAGE_ROOT", "storage_root")),
        metavar="PATH",
        help="folder served as the repository (created if missing)",
    )
    parser.add_argument(
        "--repository-id",
        default=env.get(ENV_PREFIX + "REPOSITORY_ID", DEFAULT_REPOSITORY_ID),
        metavar="ID",
        help="the repoId in /v1/Repositories/{repoId}",
    )
    env_users = [u.strip() for u in env.get(ENV_PREFIX + "USER", "").split(",") if u.strip()]
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
    parser.add_argument(
        "--session-ttl",
        type=_positive,
        default=env.get(ENV_PREFIX + "SESSION_TTL", str(SESSION_TTL_S)),
        metavar="SECONDS",
        help="lifetime of an access token",
    )
    parser.add_argument(
        "--max-document-bytes",
        type=int,
        default=env.get(ENV_PREFIX + "MAX_DOCUMENT_BYTES", str(MAX_DOCUMENT_BYTES)),
        metavar="BYTES",
        help="largest document an import accepts",
    )
    parser.add_argument(
        "--token-ttl",
        type=_positive,
        default=env.get(ENV_PREFIX + "TOKEN_TTL", str(TOKEN_TTL_S)),
        metavar="SECONDS",
        help="how long a finished operation's token stays readable (default 900)",
    )
    parser.add_argument(
        "--profile",
        type=_one_of(PROFILES),
        metavar="{docs,sdk}",
        default=env.get(ENV_PREFIX + "PROFILE", "docs"),
        help="status of a completed copy: docs = 302 to the new entry (the Long Operations guide), "
        "sdk = 201 with the progress (the published OpenAPI and official clients); starts answer "
        "202 or 201 likewise",
    )
    parser.add_argument(
        "--session-concurrency",
        type=_one_of(SESSION_CONCURRENCY),
        metavar="{reject,queue}",
        default=env.get(ENV_PREFIX + "SESSION_CONCURRENCY", "reject"),
        help="a second long operation in a session while one runs: reject = 429 (Laserfiche Cloud), "
        "queue = it waits as NotStarted and runs when the first ends",
    )
    parser.add_argument(
        "--pace-ms",
        type=_non_negative,
        default=env.get(ENV_PREFIX + "PACE_MS", "0"),
        metavar="MS",
        help="slow long operations down by this many milliseconds per entry, to watch or cancel them",
    )
    parser.add_argument(
        "--copy-processes",
        type=int,
        default=env.get(ENV_PREFIX + "COPY_PROCESSES", "2"),
        metavar="N",
        help="worker processes that copy many small files in parallel (0: threads only)",
    )
    parser.add_argument(
        "--log-level",
        default=env.get(ENV_PREFIX + "LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
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
    )
