"""The compatibility stage: Laserfiche's published npm clients, driven as real clients against a live server.

`tests/compat/` is a small Node project that pins `@laserfiche/lf-repository-api-client@1.1.12` (v1) and
`@laserfiche/lf-repository-api-client-v2@1.3.0` (v2) in its `package-lock.json`. Its scenario scripts,
`v1.mjs` and `v2.mjs`, print one line per named check (`ok - name` / `not ok - name: reason`) and exit
non-zero if any failed. Each test here starts `python -m server` over a copy of the sample repository and
runs one script against it, and requires every check to pass and the script to have run as many checks as it
has (a check that is never reached counts as a failure too). Both scripts cover entries, long operations and
metadata: definitions, audit reasons, attributes, the sample's metadata, fields, tags, links and templates set
and read back (with the clients' paging helpers) and read through the other dialect. The v2 script also drives
v2's other long operations: search (results and context hits, paged), export and uploads in parts. The
clients' core package ships extensionless ESM imports, so node runs with `--import register.mjs`, a resolve
hook that retries such an import with `.js`.

Node and npm are required (CI has them): without them these tests fail, they are not skipped. When
`tests/compat/node_modules` is missing, `npm ci` installs it from the lock file (this needs the npm registry).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, REPO_ID, ServerFactory, ServerProcess

COMPAT_DIR = PROJECT_ROOT / "tests" / "compat"
REGISTER = COMPAT_DIR / "register.mjs"
PACKAGES = ("@laserfiche/lf-repository-api-client", "@laserfiche/lf-repository-api-client-v2")
SAMPLE_ROOT = PROJECT_ROOT / "storage_root"
SERVER_FLAGS = ("--copy-processes", "0", "--profile", "sdk", "--token-ttl", "60")
SCRIPT_TIMEOUT_S = 240
# the checks each script runs (its `checks.run(...)` calls); change with the scripts
V1_CHECKS = 37
V2_CHECKS = 72
SUMMARY = re.compile(r"^# (\d+) passed, (\d+) failed$", re.MULTILINE)
NPM_CI_TIMEOUT_S = 300

pytestmark = pytest.mark.timeout(SCRIPT_TIMEOUT_S + 60)


@dataclass
class NodeProject:
    node: str | None
    problem: str | None  # why the scripts cannot run; the tests fail with it


def _installed() -> bool:
    return all((COMPAT_DIR / "node_modules" / name / "package.json").is_file() for name in PACKAGES)


@pytest.fixture(scope="session")
def node_project() -> NodeProject:
    """node on PATH, and tests/compat's packages installed (`npm ci` when they are missing)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        return NodeProject(
            node,
            f"{missing} not found on PATH: the compatibility stage drives Laserfiche's npm clients with "
            "Node 20 (install nodejs and npm; CI has them)",
        )
    if not _installed():
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=COMPAT_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return NodeProject(node, f"`npm ci` in {COMPAT_DIR} took more than {NPM_CI_TIMEOUT_S} s")
        if done.returncode != 0 or not _installed():
            return NodeProject(
                node,
                f"`npm ci` in {COMPAT_DIR} failed (exit {done.returncode}; it needs the npm registry)\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}",
            )
    return NodeProject(node, None)


def _sample_copy(tmp_path: Path) -> Path:
    """A copy of the sample repository without its store (`.sandbox`), so ids and catalog start fresh."""
    root = tmp_path / "root"
    shutil.copytree(
        SAMPLE_ROOT,
        root,
        symlinks=True,
        ignore=lambda folder, names: [".sandbox"] if Path(folder) == SAMPLE_ROOT else [],
    )
    return root


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _require(project: NodeProject) -> str:
    """The node executable, or a failed test (not a skip) saying why the scripts cannot run."""
    if project.problem is not None or project.node is None:
        pytest.fail(project.problem or "node not found", pytrace=False)
    return project.node


def _run_scenario(node: str, script: str, server: ServerProcess, checks: int) -> None:
    """Run `script` against `server`: it must exit 0 having passed exactly `checks` checks."""
    cmd = [node, "--import", REGISTER.as_uri(), str(COMPAT_DIR / script), server.base_url, REPO_ID]
    cmd += ["admin", "admin"]
    try:
        done = subprocess.run(cmd, cwd=COMPAT_DIR, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(
            f"{script} did not finish within {SCRIPT_TIMEOUT_S} s\nnode stdout:\n{out}\nnode stderr:\n{err}\n"
            f"server log (tail):\n{_tail(server.stderr())}",
            pytrace=False,
        )
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith("not ok")]
        pytest.fail(
            f"{script} exited with {done.returncode}: {len(failed)} check(s) failed\n"
            f"node stdout:\n{done.stdout}\nnode stderr:\n{done.stderr}\n"
            f"server log (tail):\n{_tail(server.stderr())}",
            pytrace=False,
        )
    lines = done.stdout.splitlines()
    passed = [line for line in lines if line.startswith("ok - ")]
    failed = [line for line in lines if line.startswith("not ok")]
    summary = SUMMARY.findall(done.stdout)
    assert summary == [(str(checks), "0")], (
        f"{script}: expected the summary '# {checks} passed, 0 failed', got {summary}\n{done.stdout}"
    )
    assert (len(passed), len(failed)) == (checks, 0), done.stdout


def test_published_v1_client(
    node_project: NodeProject, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """@laserfiche/lf-repository-api-client@1.1.12 (v1, `--profile sdk`): see tests/compat/v1.mjs.

    Entries, long operations and metadata: definitions, audit reasons, attributes, the sample's metadata,
    field values, tags, links and templates set and read back, paged, and read through v2 and back."""
    node = _require(node_project)
    server = server_factory.start(_sample_copy(tmp_path), *SERVER_FLAGS)
    _run_scenario(node, "v1.mjs", server, V1_CHECKS)


def test_published_v2_client(
    node_project: NodeProject, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """@laserfiche/lf-repository-api-client-v2@1.3.0 (v2): see tests/compat/v2.mjs.

    Entries, tasks and metadata as the vendor's tests use them (PagingTestData, SetEntries, SetLinks,
    RemoveEntries, the definition, audit reason and attribute tests), the sample's metadata, a validation
    refusal, and the values read through v1; then search (the vendor's Search and SimpleSearch flows, paging
    helpers, an unsupported construct), an Edoc export downloaded from `result.uri`, and uploads in parts
    (import, export of it, update, a wrong ETag) compared byte for byte."""
    node = _require(node_project)
    server = server_factory.start(_sample_copy(tmp_path), *SERVER_FLAGS)
    _run_scenario(node, "v2.mjs", server, V2_CHECKS)
