"""The pytest plugin (server/testing/): its fixtures as this suite sees them (it loads the plugin too,
by its entry point), and separate projects run in a `python -m pytest` of their own, as a user
runs them: from a real install, in parallel, interrupted, killed, and the README's example."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, disk_tree

from server.testing import Client, SandboxError, SandboxWarning, process, sample_root, start_sandbox
from server.webhooks import headers_for

USER_PROJECT = Path(__file__).parent / "user_project"
# set in every process a separate project runs, so that its processes can be told from others'
MARK = "PLUGIN_TEST_MARK"  # (not SANDBOX_*: the plugin keeps those from its servers)
# what pytest leaves in TMPDIR by design (its base temporary folders, the last three runs)
PYTEST_TEMP = f"pytest-of-{getpass.getuser()}"
# a separate project loads only the plugin (by its entry point's name) and xdist: this machine's
# other pytest plugins are not a user's, and cost seconds in each xdist worker
PLUGINS = ("-p", "sandbox", "-p", "xdist")
RUN_TIMEOUT_S = 100


def files_of(root: Path) -> dict[str, bytes | None]:
    return {k: v for k, v in disk_tree(root).items() if not k.startswith(".sandbox")}


def names(listing: dict) -> list[str]:
    return [e["name"] for e in listing["value"]]


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------- in this suite


def test_the_sandbox_serves_a_copy_of_the_sample_to_every_dialect(sandbox):
    assert files_of(sandbox.root) == files_of(sample_root())
    assert names(sandbox.v1.get("Entries/1/Laserfiche.Repository.Folder/children").json()) == sorted(
        p.name for p in sample_root().iterdir() if not p.name.startswith(".")
    )
    assert sandbox.v2.get("Entries/ByPath", params={"fullPath": "\\Welcome.txt"}).status == 200
    assert sandbox.elements.get("hubs/documents/files/metadata?path=/Welcome.txt").status == 200
    assert sandbox.elements.get("instances").status == 200
    assert sandbox.http.get("/sandbox/operations").status == 200
    made = sandbox.v1.post(
        "Entries/1/Laserfiche.Repository.Folder/children", json={"entryType": "Folder", "name": "New"}
    )
    assert made.status == 201, made
    assert (sandbox.root / "New").is_dir()
    assert not (sample_root() / "New").exists()


def test_the_client_sends_forms_files_and_json_and_follows_redirects_only_when_asked(sandbox):
    imported = sandbox.v1.post(
        "Entries/1/notes (1).txt",
        data={"request": "{}"},
        files={"electronicDocument": ("x.bin", b"hello", "text/plain")},
    )
    assert imported.status == 201, imported
    entry_id = imported.json()["operations"]["entryCreate"]["entryId"]
    edoc = sandbox.v1.get(f"Entries/{entry_id}/Laserfiche.Repository.Document/edoc")
    assert (edoc.status, edoc.content, edoc.text) == (200, b"hello", "hello")
    started = sandbox.v1.post(
        "Entries/1/Laserfiche.Repository.Folder/CopyAsync", json={"sourceId": entry_id, "name": "copy.txt"}
    )
    token = started.json()["token"]
    while (status := sandbox.v1.get(f"Tasks/{token}")).status == 202:
        time.sleep(0.02)
    assert status.status == 302, status
    assert status.headers["location"].endswith(f"/Entries/{status.json()['entryId']}")
    followed = sandbox.v1.get(f"Tasks/{token}", follow_redirects=True)
    assert (followed.status, followed.json()["name"]) == (200, "copy.txt")
    missing = sandbox.v1.get("Entries/999999")  # an error is an answer, not an exception
    assert missing.status == 404 and missing.json()["status"] == 404 and not missing.ok


@pytest.mark.sandbox(root="user_project/tests", profile="sdk", repository_id="r-mine")
def test_the_marker_names_a_root_beside_the_test_and_flags(sandbox):
    assert sandbox.repository_id == "r-mine"
    listing = sandbox.v1.get("Entries/1/Laserfiche.Repository.Folder/children").json()
    assert names(listing) == ["test_with_the_sandbox.py"]
    started = sandbox.v1.post(
        "Entries/1/Laserfiche.Repository.Folder/CopyAsync",
        json={"sourceId": listing["value"][0]["id"], "name": "copy.py"},
    )
    assert started.status == 201, started  # --profile sdk


def test_the_factory_starts_sandboxes_with_their_own_settings(sandbox_factory):
    plain = sandbox_factory()
    custom = sandbox_factory(
        user=["alice:wonder", "bob:builder"],
        admin_user="alice",
        repository_id="r-b",
        elements_user_secret="u-1",
        elements_org_secret="o-1",
        elements_token="t-1",
        signature_key="k-1",
    )
    # (each on a copy of its own, of the sample or of its `root`)
    assert plain.root != custom.root and not plain.root.is_relative_to(custom.root)
    assert (custom.username, custom.password, custom.repository_id) == ("alice", "wonder", "r-b")
    assert custom.v1.get("Entries/1").status == 200
    assert custom.sign_in("bob", "builder").v2.get("Entries/1").status == 200
    with pytest.raises(SandboxError, match="signing in answered 401"):
        custom.sign_in("bob", "wrong")
    assert custom.elements.get("hubs/documents/folders/contents?path=/").status == 200
    assert custom.elements.get("instances").status == 200
    assert plain.elements.get("instances").status == 200

    pid, folder = custom.process.pid, custom.process.folder
    assert custom.stop() is True
    assert not folder.exists() and not group_members(pid)
    assert plain.v1.get("Entries/1").status == 200


def test_the_inbox_waits_for_deliveries_and_empties(sandbox):
    inbox = sandbox.inbox("plugin-test")
    assert inbox.deliveries() == []
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="0 of 1"):
        inbox.wait(timeout=0.3)
    assert time.monotonic() - began < 5
    body = json.dumps({"eventId": 7}).encode()
    signed = headers_for(1, sandbox.signature_key, body, int(time.time()))
    sender = threading.Thread(
        target=lambda: (time.sleep(0.3), Client(inbox.url).post(data=body, headers=signed))
    )
    sender.start()
    try:
        [first] = inbox.wait(count=1, timeout=20)  # arrives while the listing holds its answer
    finally:
        sender.join()
    assert (first["json"], first["verified"]) == ({"eventId": 7}, True)
    assert Client(inbox.url).post(data=body, headers={"Content-Type": "application/json"}).status == 200
    [_, second] = inbox.wait(count=2, timeout=20)
    assert second["verified"] is None
    assert inbox.deliveries(after=first["id"]) == [second]
    inbox.clear()
    assert inbox.deliveries() == []


def test_reset_puts_the_sandbox_back_as_it_started(sandbox):
    children = "Entries/1/Laserfiche.Repository.Folder/children"
    before = sandbox.v1.get(children).json()
    made = sandbox.v1.post(children, json={"entryType": "Folder", "name": "Made"})
    assert made.status == 201, made
    assert Client(sandbox.inbox("r").url).post(json={"eventId": 1}).status == 200
    sandbox.reset()
    assert sandbox.v1.get(children).json() == before  # (the same session goes on)
    assert not (sandbox.root / "Made").exists()
    assert sandbox.inbox("r").deliveries() == []


def test_a_start_takes_well_under_a_second():
    took = []
    for _ in range(3):
        began = time.monotonic()
        with start_sandbox() as sandbox:
            took.append(time.monotonic() - began)
            assert sandbox.v1.get("Entries/1").status == 200
    # (the first may start a new interpreter; then a spare has imported the server already)
    assert min(took) < 1.0, took


def test_what_cannot_start_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    process.shutdown()  # the spare of this session started in the system's temporary folder
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with (
        pytest.raises(SandboxError, match="unrecognized arguments: --no-such-flag"),
        start_sandbox(no_such_flag=1),
    ):
        pass
    with pytest.raises(TypeError, match="port"), start_sandbox(port=8080):
        pass
    with pytest.raises(SandboxError, match="not a folder"), start_sandbox(tmp_path / "missing"):
        pass
    process.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_will_not_stop_is_killed_with_its_group():
    with pytest.warns(SandboxWarning, match="did not stop within 0.5 s"):
        with start_sandbox(stop_timeout=0.5) as sandbox:
            pid, folder = sandbox.process.pid, sandbox.process.folder
            os.kill(pid, signal.SIGSTOP)
    assert not folder.exists()
    assert group_members(pid) == []


# --------------------------------------------------------------------------- separate projects


def project_env(tmp_path: Path, mark: str, **extra: str) -> tuple[dict[str, str], Path]:
    """The environment of a separate project's run, and the TMPDIR it uses (empty, of its own)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return env | {"TMPDIR": str(temp), MARK: mark, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"} | extra, temp


def run_pytest(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *PLUGINS, *args]
    return subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def marked(mark: str) -> list[str]:
    """The command lines of the live processes that carry `mark` in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if f"{MARK}={mark}".encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def assert_nothing_left(mark: str, temp: Path, within_s: float = 0.0) -> None:
    deadline = time.monotonic() + within_s
    while (left := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], left
    assert [p.name for p in temp.iterdir() if p.name != PYTEST_TEMP] == []


def installed_copy(tmp_path: Path) -> Path:
    """The package built and installed (not editable) from a copy of this checkout: its folder."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "server", source / "server", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        PROJECT_ROOT / "storage_root",
        source / "storage_root",
        ignore=lambda at, names: [".sandbox"] if Path(at) == PROJECT_ROOT / "storage_root" else [],
    )
    target = tmp_path / "site"
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--target",
        str(target),
        str(source),
    ]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def test_a_users_project_runs_in_parallel_from_an_install_and_leaves_nothing(tmp_path):
    site = installed_copy(tmp_path)
    project = shutil.copytree(USER_PROJECT, tmp_path / "project")
    mark = uuid.uuid4().hex
    env, temp = project_env(tmp_path, mark, PYTHONPATH=str(site))
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import server.testing.plugin as p, server.testing.sandbox as s; "
            "print(p.__file__, s.sample_root())",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=True,
    ).stdout.split()
    assert where == [str(site / "server/testing/plugin.py"), str(site / "server/sample")]

    done = run_pytest(project, env, "-n", "4", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout, done.stdout
    assert_nothing_left(mark, temp, within_s=5.0)  # (xdist's own workers may take a moment)


PROJECT_ENDING_BADLY = """
def test_fails(sandbox):
    assert sandbox.v1.get("Entries/1").status == 200
    assert False, "on purpose"

def test_interrupted(sandbox):
    raise KeyboardInterrupt
"""


def test_a_failure_shows_the_servers_log_and_an_interrupt_stops_every_server(tmp_path):
    (tmp_path / "project" / "tests").mkdir(parents=True)
    (tmp_path / "project" / "tests" / "test_ending_badly.py").write_text(PROJECT_ENDING_BADLY)
    mark = uuid.uuid4().hex
    env, temp = project_env(tmp_path, mark)
    done = run_pytest(tmp_path / "project", env)
    assert done.returncode == 2, done.stdout + done.stderr  # interrupted
    assert "on purpose" in done.stdout and "KeyboardInterrupt" in done.stdout, done.stdout
    assert "- sandbox http://127.0.0.1:" in done.stdout, done.stdout
    assert "GET /v1/Repositories/r-sandbox/Entries/1 200" in done.stdout, done.stdout
    assert_nothing_left(mark, temp)


ORPHAN = """
import time
from server.testing import start_sandbox
with start_sandbox() as sandbox:
    print(sandbox.url, flush=True)
    time.sleep(100)
"""


def test_a_test_process_killed_outright_leaves_nothing(tmp_path):
    mark = uuid.uuid4().hex
    env, temp = project_env(tmp_path, mark)
    orphaning = subprocess.Popen(
        [sys.executable, "-c", ORPHAN], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert orphaning.stdout is not None
        url = orphaning.stdout.readline().decode().strip()
        assert Client(url).get("/healthz").status == 200
        assert len(marked(mark)) >= 3  # the test process, its sandbox, the next one's spare
    finally:
        orphaning.kill()
        orphaning.wait()
        orphaning.stdout.close()
    assert_nothing_left(mark, temp, within_s=15.0)


def readme_example() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    opening = "```python plugin-example\n"
    assert opening in text, "README.md has no ```python plugin-example block (the plugin's section)"
    return text.split(opening, 1)[1].split("\n```", 1)[0]


def test_the_readme_example_runs(tmp_path):
    (tmp_path / "project" / "tests").mkdir(parents=True)
    (tmp_path / "project" / "tests" / "test_example.py").write_text(readme_example())
    mark = uuid.uuid4().hex
    env, temp = project_env(tmp_path, mark)
    done = run_pytest(tmp_path / "project", env, "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout
    assert_nothing_left(mark, temp)
