"""bench/perf.py's table: each figure's medians with their spread, and its ratio against the bar."""

from __future__ import annotations

import argparse
import statistics
from typing import NamedTuple


class Figure(NamedTuple):
    title: str
    unit: str
    # what the ratio divides by: "baseline", "old" (new against old), or "" (the value itself)
    against: str
    bar: str
    goal: str


FIGURES = {
    "copy": Figure("copy {files} x 4 KiB in {folders} folders / cp -r", "s", "baseline", "<= 1.25", "<= 1.0"),
    "delete": Figure("delete of that tree / rm -rf", "s", "baseline", "<= 1.5", "<= 1.2"),
    "poll": Figure(
        "p99 of {pollers} pollers during a copy / bare aiohttp during cp -r",
        "ms",
        "baseline",
        "<= 1.5",
        "<= 1.2",
    ),
    "poll-idle": Figure("the same / bare aiohttp idle (for reference)", "ms", "baseline", "-", "-"),
    "list": Figure(
        "listing {children} children, 150 a page / old (base: ls -f)", "s", "old", "<= 0.5", "<= 0.25"
    ),
    "webhooks": Figure(
        "webhooks/s, {copies} async copies, {sessions} sessions", "/s", "", ">= 500", ">= 1000"
    ),
    "import": Figure(
        "import {import_mib} MiB through v1 multipart / cp", "s", "baseline", "<= 2.0", "<= 1.3"
    ),
}


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    top = max(values)
    digits = 0 if top >= 100 else 1 if top >= 10 else 2 if top >= 1 else 3
    median = statistics.median(values)
    return f"{median:.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def _ratios(ours: list[float], theirs: list[float]) -> str:
    """The ratio of the medians, and the range of the rounds' own ratios (each round ran both)."""
    if not ours or not theirs:
        return "-"
    rounds = [a / b for a, b in zip(ours, theirs, strict=False) if b]
    ratio = statistics.median(ours) / statistics.median(theirs)
    return f"{ratio:.2f} [{min(rounds):.2f}-{max(rounds):.2f}]"


def show(title: str, args: argparse.Namespace, results: dict[str, dict[str, list[float]]]) -> None:
    """Medians [min-max] of old, new and the baseline; each one's ratio (the rounds' range)."""
    print(f"\n{title}: medians [min-max]")
    print(
        f"{'figure':<62} {'unit':>4} {'old':>22} {'new':>22} {'baseline':>22}"
        f" {'old ratio':>18} {'new ratio':>18}  bar / goal"
    )
    for name, figure in FIGURES.items():
        found = results.get(name, {})
        old, new, base = found.get("old", []), found.get("new", []), found.get("baseline", [])
        if not old and not new:
            continue
        if figure.against == "baseline":
            old_ratio, new_ratio = _ratios(old, base), _ratios(new, base)
        elif figure.against == "old":
            old_ratio, new_ratio = "1.00", _ratios(new, old)
        else:
            old_ratio = new_ratio = "-"
        label = figure.title.format(**vars(args))
        print(
            f"{label:<62} {figure.unit:>4} {_spread(old):>22} {_spread(new):>22} {_spread(base):>22}"
            f" {old_ratio:>18} {new_ratio:>18}  {figure.bar} / {figure.goal}"
        )


def brief(found: dict[str, dict[str, float]]) -> str:
    """One round's figures on a line, for the progress log."""
    parts = []
    for name, values in found.items():
        shown = " ".join(f"{who} {value:.3g}" for who, value in values.items())
        parts.append(f"{name}: {shown}")
    return "; ".join(parts)
