"""The pytest plugin (the `pytest11` entry point `sandbox`): a running sandbox for each test that asks.

- `sandbox`: a sandbox over a temporary copy of the sample repository, or of the folder named by
  the test's `@pytest.mark.sandbox(root=..., **flags)` (relative to the test's file, with any
  flags of `python -m server`) or by the ini option `sandbox_root` (relative to the ini file).
- `sandbox_factory(root=None, **flags)`: as many as a test wants, with any flags.

Every sandbox a test started is stopped after it, its temporary copy removed; under pytest-xdist
each worker starts its own, each on a free port. A failed test's report shows its sandboxes' logs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from . import process
from .sandbox import Sandbox, start_sandbox

MARKER = "sandbox"
INI_ROOT = "sandbox_root"
# a failed test's report shows this much of the end of each of its sandboxes' logs
LOG_TAIL_CHARS = 20_000
FIXTURES = {"sandbox", "sandbox_factory"}

_started = pytest.StashKey[list[Sandbox]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_ROOT,
        "the storage root the `sandbox` fixture copies (default: the sample repository)",
        type="paths",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(root=None, **flags): the storage root (relative to the test's file) and the "
        "`python -m server` flags (pace_ms=200 is --pace-ms 200) of the test's `sandbox` fixture",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    # a first server imports while the session starts, if any test will want one
    if any(FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        process.prepare()


def pytest_unconfigure(config: pytest.Config) -> None:
    process.shutdown()


@pytest.fixture
def sandbox_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Sandbox]]:
    """`sandbox_factory(root=None, **flags)` starts a sandbox; all are stopped after the test."""
    started = request.node.stash.setdefault(_started, [])
    with ExitStack() as running:

        def start(root: str | Path | None = None, **flags: Any) -> Sandbox:
            sandbox = running.enter_context(start_sandbox(root, **flags))
            started.append(sandbox)
            return sandbox

        yield start


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox over a temporary copy of the sample (or of the marker's or ini option's root)."""
    marker = request.node.get_closest_marker(MARKER)
    flags = dict(marker.kwargs) if marker else {}
    root = marker.args[0] if marker and marker.args else flags.pop("root", None)
    if root is not None:
        root = request.path.parent / root
    elif roots := request.config.getini(INI_ROOT):
        root = roots[0]
    return sandbox_factory(root, **flags)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for sandbox in item.stash.get(_started, []):
            log = sandbox.log()
            if log:
                report.sections.append((f"sandbox {sandbox.url}", log[-LOG_TAIL_CHARS:]))
    return report
