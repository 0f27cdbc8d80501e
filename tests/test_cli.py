"""The command line (issue 16, item 6), as a user meets it: `python -m server` run as a process.

--help lists every flag in its group with its default and its SANDBOX_* variable; --version says
the installed version; a bad value, from a flag or from a variable, is one line on stderr naming
the one it came from (exit 2), and a port already taken one line too (exit 1): never a traceback,
and nothing made on disk.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

from server.cli import GROUPS

GROUP_TITLES = ["server", "repository", "Laserfiche", "Elements", "webhooks", "sandbox controls"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    """`python -m server ARGS` to its end, without the caller's SANDBOX_* variables (unless `env`
    gives some); wide, so that --help wraps no line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
        env=clean | {"COLUMNS": "400"} | (env or {}),
    )


def assert_one_line(done: subprocess.CompletedProcess, status: int, *named: str) -> str:
    """The process failed with `status` and one line on stderr naming each of `named`."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, (done.returncode, done.stderr)
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("python -m server: error: "), lines[0]
    for name in named:
        assert name in lines[0], (name, lines[0])
    assert done.stdout == "", done.stdout  # (no banner: it did not start)
    return lines[0]


# --------------------------------------------------------------------------- --help and --version


def _sections(help_text: str) -> dict[str, list[str]]:
    """The --help text's groups: title -> its options, each one line (a flag and its help, which
    argparse puts on the next line after a long flag)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in help_text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = sections.setdefault(line[:-1], [])
        elif current is not None and line.strip().startswith("-"):
            current.append(line.strip())
        elif current and line.strip():
            current[-1] += " " + line.strip()
    return sections


def test_help_groups_every_flag_with_its_default_and_variable():
    done = run("--help")
    assert done.returncode == 0, done.stderr
    sections = _sections(done.stdout)
    assert [t for t in sections if t in GROUP_TITLES] == GROUP_TITLES, list(sections)
    listed = {line.split()[0]: title for title, lines in sections.items() for line in lines}
    for line in (line for lines in sections.values() for line in lines):
        flag = line.split()[0]
        if flag in ("-h,", "--version"):
            continue
        variable = "SANDBOX_" + flag[2:].replace("-", "_").upper()
        assert re.search(rf"\(default: [^;]+; {variable}\b[^)]*\)$", line), line
    flags = {flag.name for flags in GROUPS.values() for flag in flags}
    assert flags <= listed.keys(), flags - listed.keys()
    assert len(flags) >= 30, len(flags)
    # where a user looks for them
    expected = {
        "--port": "server",
        "--header-timeout-s": "server",
        "--keepalive-timeout-s": "server",
        "--storage-root": "repository",
        "--catalog": "repository",
        "--profile": "Laserfiche",
        "--user": "Laserfiche",
        "--elements-token": "Elements",
        "--callback-url": "webhooks",
        "--signature-key": "webhooks",
        "--admin-user": "sandbox controls",
        "--pace-ms": "sandbox controls",
    }
    assert {flag: listed[flag] for flag in expected} == expected
    port = next(line for line in sections["server"] if line.startswith("--port"))
    assert "(default: 8080; SANDBOX_PORT)" in port, port


def test_version_is_the_installed_one():
    done = run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"python -m server {metadata.version('document-ops-sandbox')}\n"


# --------------------------------------------------------------------------- bad values


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    return {"file": str(a_file), "missing": str(tmp_path / "no-such.toml"), "root": str(tmp_path / "root")}


BAD_FLAGS = [
    ("--port", "99999"),  # (it used to die with an OverflowError traceback at bind)
    ("--port", "-1"),
    ("--port", "eighty"),
    ("--port", "9" * 5000),
    ("--storage-root", "{file}"),
    ("--storage-root", "{file}/below"),
    ("--catalog", "{missing}"),
    ("--catalog", "{root}"),  # (a folder, once the root exists)
    ("--session-ttl", "nan"),
    ("--token-ttl", "inf"),
    ("--task-wait-s", "-1"),
    ("--webhook-backoff-s", "1e308"),
    ("--max-document-bytes", "0"),
    ("--copy-processes", "many"),
    ("--user", "nopassword"),
    ("--profile", "fast"),
    ("--log-level", "LOUD"),
    ("--callback-url", "ftp://example.com/hook"),
    ("--elements-token", "two words"),
    ("--repository-id", "a/b"),
    ("--header-timeout-s", "0"),
    ("--keepalive-timeout-s", "never"),
    ("--pace-ms", "600000"),
]


@pytest.mark.parametrize("flag, value", BAD_FLAGS, ids=[f"{f}={v[:12]}" for f, v in BAD_FLAGS])
def test_a_bad_flag_is_one_line_naming_it(places: dict[str, str], flag: str, value: str):
    value = value.format(**places)
    if flag == "--catalog" and value == places["root"]:
        Path(value).mkdir()
    done = run("--storage-root", places["root"], "--port", "0", flag, value)
    line = assert_one_line(done, 2, flag)
    if flag.startswith("--elements-"):
        assert value not in line  # (a secret is not repeated to the terminal, nor to a CI log)
    else:
        assert value[:40] in line
    assert not Path(places["root"]).exists() or flag == "--catalog"


BAD_VARIABLES = [
    ("SANDBOX_PORT", "99999"),
    ("SANDBOX_STORAGE_ROOT", "{file}"),
    ("SANDBOX_CATALOG", "{missing}"),
    ("SANDBOX_SESSION_TTL", "nan"),
    ("SANDBOX_USER", "alice:secret,nopassword"),
    ("SANDBOX_ADMIN_USER", "bob,a\x01b"),
    ("SANDBOX_PROFILE", "fast"),
    ("SANDBOX_CALLBACK_URL", "not a url"),
    ("SANDBOX_HEADER_TIMEOUT_S", "-5"),
]


@pytest.mark.parametrize("variable, value", BAD_VARIABLES, ids=[v for v, _ in BAD_VARIABLES])
def test_a_bad_variable_is_one_line_naming_the_variable(places: dict[str, str], variable: str, value: str):
    value = value.format(**places)
    flags = {"SANDBOX_STORAGE_ROOT": ("--storage-root", places["root"]), "SANDBOX_PORT": ("--port", "0")}
    args = [arg for name, pair in flags.items() if name != variable for arg in pair]
    done = run(*args, env={variable: value})
    line = assert_one_line(done, 2, variable)
    flag = "--" + variable.removeprefix("SANDBOX_").lower().replace("_", "-")
    assert flag not in line and "argument" not in line, line  # (the user set no flag)
    assert not Path(places["root"]).exists()


def test_a_flag_given_wins_over_its_variable(server_factory, tmp_path: Path):
    """SANDBOX_PORT is bad, but --port 0 is given (the factory passes it): the server starts; and
    the variables of flags left out apply."""
    server = server_factory.start(
        tmp_path / "root",
        env_extra={"SANDBOX_PORT": "99999", "SANDBOX_REPOSITORY_ID": "r-from-env"},
    )
    assert "r-from-env" in server.stdout()
    assert server.stop() == 0


def test_an_empty_list_variable_keeps_the_default(server_factory, tmp_path: Path):
    server = server_factory.start(tmp_path / "root", env_extra={"SANDBOX_USER": " , "})
    assert "username=admin -d password=admin" in server.stdout()
    assert server.stop() == 0


# --------------------------------------------------------------------------- at run time


def test_a_port_in_use_is_one_line_and_status_1(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("--storage-root", str(tmp_path / "root"), "--host", "127.0.0.1", "--port", str(port))
    assert_one_line(done, 1, "--port", str(port), "in use")


def test_a_host_not_of_this_machine_is_one_line_and_status_1(tmp_path: Path):
    # (192.0.2.1: TEST-NET-1, documentation only, never an address of this machine)
    done = run("--storage-root", str(tmp_path / "root"), "--host", "192.0.2.1", "--port", "0")
    assert_one_line(done, 1, "--host", "192.0.2.1")


def test_a_catalog_that_does_not_parse_is_one_line(tmp_path: Path):
    catalog = tmp_path / "bad.toml"
    catalog.write_text("[[field]]\nid = \n")
    done = run("--storage-root", str(tmp_path / "root"), "--port", "0", "--catalog", str(catalog))
    assert_one_line(done, 2, str(catalog))


def test_a_sigterm_sent_as_soon_as_the_base_url_is_printed_stops_it_cleanly(tmp_path: Path):
    """The banner is printed once the signals are handled: a test harness that reads the base URL
    and stops the server at once gets exit code 0 (it used to be killed by the signal, -15, when it
    came before the handlers)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    for n in range(5):
        with subprocess.Popen(
            [sys.executable, "-m", "server", "--port", "0", "--storage-root", str(tmp_path / f"r{n}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=PROJECT_ROOT,
            env=clean,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "base URL" in line:
                    proc.send_signal(signal.SIGTERM)
                    break
            assert proc.wait(timeout=30) == 0
