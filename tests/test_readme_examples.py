"""The README's examples run as written: a section's shell block, against a fresh server on the
sample repository, with every curl made to fail on an error status (so a 4xx or 5xx stops the run),
twice in a row (the examples pick free names, whatever the last run left)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import PROJECT_ROOT

README_BASE = "http://127.0.0.1:8080"
# the sections whose one shell block runs as written, and what its output shows when it worked
SECTIONS = {
    "## Calling it: Laserfiche v2": ('"status":"Completed"', '"result":true'),
    "## Metadata": ("Invoice\n", "'Amount'", '"name":"Archived"', '"templateName":"General"'),
    "## Export": ("the same bytes", "the same 10 bytes", "Cancelled", "page images"),
    "## Search": ("\\Welcome.txt", "'LF:Creator'"),
    "## Bulk jobs (Open Connectors)": ('"status":"COMPLETED"', "INV-0001.txt,/Invoices/2026/INV-0001.txt"),
}


def _block(heading: str) -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index(heading) :]
    section = section[: section.index("\n## ", len(heading))]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"the section {heading!r} has one shell block"
    return blocks[0]


@pytest.mark.parametrize("heading", SECTIONS)
def test_the_readme_examples_run_as_written(server_factory, tmp_path, heading):
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "storage_root", root, ignore=shutil.ignore_patterns(".sandbox"))
    server = server_factory.start(root, "--copy-processes", "0")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(PROJECT_ROOT / "README.md", work / "README.md")  # (an import example uploads it)
    script = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n' + _block(heading)
    script = script.replace(README_BASE, server.base_url)
    for run in (1, 2):
        done = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"run {run}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        for shown in SECTIONS[heading]:
            assert shown in done.stdout, f"run {run} does not show {shown!r}:\n{done.stdout[-3000:]}"
