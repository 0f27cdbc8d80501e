"""The README's v2 examples run as written: its shell block, against a fresh server on the sample
repository, with every curl made to fail on an error status (so a 4xx or 5xx stops the run)."""

from __future__ import annotations

import re
import shutil
import subprocess

from conftest import PROJECT_ROOT

SECTION = "## Calling it: Laserfiche v2"
README_BASE = "http://127.0.0.1:8080"


def _v2_block() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the v2 section has one shell block"
    return blocks[0]


def test_the_readme_v2_examples_run_as_written(server_factory, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "storage_root", root, ignore=shutil.ignore_patterns(".sandbox"))
    server = server_factory.start(root, "--copy-processes", "0")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(PROJECT_ROOT / "README.md", work / "README.md")  # (the import example uploads it)
    script = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n' + _v2_block()
    script = script.replace(README_BASE, server.base_url)
    for run in (1, 2):  # twice in a row: the examples pick free names, whatever the last run left
        done = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"run {run}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert '"status":"Completed"' in done.stdout, done.stdout[-3000:]
        assert '"result":true' in done.stdout, "the slow copy was cancelled while it ran"
