"""The README's tour runs as written: its fenced blocks marked `sh tour`, in order, in one shell,
against one fresh server started on a copy of the sample with `--ephemeral` (as the README starts
it), with every curl made to fail on an error status (so a 4xx or 5xx stops the run), twice in a
row against the same server (the tour looks ids up by path and picks free names, whatever the
last run left). The sample itself stays as it was."""

from __future__ import annotations

import re
import shutil
import subprocess

from conftest import PROJECT_ROOT, tree_snapshot

README_BASE = "http://127.0.0.1:8080"
# what the tour's output shows when each part of it worked
SHOWN = {
    "v1": ('"status":"Cancelled"', "HTTP/1.1 302"),
    "v2": ('"status":"Completed"', '"result":true', "Notes"),
    "metadata": ("Invoice\n", "'Amount'", '"name":"Archived"', '"templateName":"General"'),
    "uploads": ("the same bytes",),
    "export": ("the same 10 bytes", "Cancelled", "page images"),
    "search": ("\\Welcome.txt", "'LF:Creator'"),
    "elements": ("'TestFolderCopy'", "True\n"),
    "controls": ("disk full (injected)",),
    "bulk": ("'COMPLETED'", "INV-0001.txt,/Invoices/2026/INV-0001.txt"),
}


def tour() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    return "".join(re.findall(r"^```sh tour\n(.*?)^```$", readme, re.S | re.M))


def test_the_readme_starts_the_server_as_the_tour_expects():
    first = re.search(r"```sh\n(.*?)```", (PROJECT_ROOT / "README.md").read_text(), re.S)
    assert first is not None
    assert "python -m server --ephemeral" in first.group(1)
    assert tour().count("curl") > 50, "the tour is the README's examples"


def test_the_tour_runs_twice_in_a_row_against_the_same_server(server_factory, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "storage_root", root, ignore=shutil.ignore_patterns(".sandbox"))
    before = tree_snapshot(root)
    server = server_factory.start(root, "--ephemeral")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(PROJECT_ROOT / "README.md", work / "README.md")  # (an import example uploads it)
    script = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n' + tour()
    script = script.replace(README_BASE, server.base_url)
    for run in (1, 2):
        done = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"run {run}:\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
        for part, shown in SHOWN.items():
            for text in shown:
                assert text in done.stdout, f"run {run}: the {part} part does not show {text!r}"
    assert server.stop() == 0
    assert tree_snapshot(root) == before, "--ephemeral leaves the storage root as it was"
