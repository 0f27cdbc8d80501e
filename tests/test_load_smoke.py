"""The load benchmark (bench/load.py), small: sessions running, polling and cancelling operations,
pollers reading shared tokens, then the server's stats compared with the baseline. It exits 0 only
with no 5xx, every request answered, every operation ended and nothing leaked."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import PROJECT_ROOT


def test_short_load_run_has_no_5xx_and_leaks_nothing() -> None:
    command = [
        sys.executable,
        str(PROJECT_ROOT / "bench" / "load.py"),
        *("--seconds", "5", "--sessions", "10", "--pollers", "20"),
        # tokens expire within the run, and the snapshots come soon after
        *("--token-ttl", "2", "--settle-s", "1", "--drain-s", "20"),
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=90)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "no 5xx, no leak" in done.stdout, output
    # the pollers met tokens past --token-ttl, and those were not errors
    expired = re.search(r"404 expired token .*?\s(\d+)\s", done.stdout)
    assert expired is not None and int(expired.group(1)) > 0, output
