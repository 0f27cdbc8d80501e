"""What every kind of long operation shares below the engine: its work cut into steps (each one
blocking call, run in a worker thread, ordered against the others), and `Progress`, how far it has
come: counters shared by the worker threads and the event loop, the stop flag every step checks
between items, pacing, an armed sandbox fault, and the log of what was done."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

# creating or removing one entry costs about as much as copying this many bytes; percentComplete
# weighs entries by it, so a tree of small files and one large file both progress evenly
ENTRY_WEIGHT = 64 * 1024


class Order(enum.Enum):
    """How a step is ordered against the others."""

    ANY = "any"  # runs beside earlier and later steps
    FIRST = "first"  # later steps wait for it (earlier ones may still be running)
    ALONE = "alone"  # waits for every earlier step to end; later steps wait for it


# a step: the blocking call, and how it is ordered
Step = tuple[Callable[[], None], Order]


# a step generator's way of saying "nothing to do until the scan has gone further"
WAIT: Step = (lambda: None, Order.ANY)


# entries a walk made or removed, a batch at a time: (folder parts, names, are folders)
Change = tuple[tuple[str, ...], list[str], bool]


class Progress:
    """Counters shared by the worker threads and the event loop, the stop flag, and the log of
    what was done (the Elements dialect reports one event per entry)."""

    def __init__(self, pace_s: float = 0.0) -> None:
        self.stop = threading.Event()
        # seconds added per entry done, so that a small copy runs long enough to watch and cancel
        self.pace_s = pace_s
        # a sandbox fault: raised once this many entries are done (None: none armed)
        self.fail_after: int | None = None
        self.failure: Exception | None = None
        self._lock = threading.Lock()
        self.entries_total = self.bytes_total = 0
        self.entries_done = self.bytes_done = 0
        self.scanned = False
        # appended to by the steps as they go (list.append is atomic), read once the walk ended
        self.changes: list[Change] = []

    def log(self, parts: tuple[str, ...], names: list[str], folders: bool) -> None:
        if names:
            self.changes.append((parts, names, folders))

    def plan(self, entries: int, size: int) -> None:
        self.entries_total, self.bytes_total, self.scanned = entries, size, True

    def arm(self, after_entries: int, failure: Exception) -> None:
        """Fail the walk with `failure` once `after_entries` entries are done (a sandbox fault)."""
        self.fail_after, self.failure = after_entries, failure

    @property
    def exact(self) -> bool:
        """Each entry must be counted as it is done (paced, or a fault armed): no worker processes,
        whose batches are counted whole."""
        return bool(self.pace_s) or self.failure is not None

    def add(self, entries: int = 0, size: int = 0) -> None:
        with self._lock:
            self.entries_done += entries
            self.bytes_done += size
        if entries:
            self.check()
            if self.pace_s:
                self.stop.wait(self.pace_s * entries)  # a cancel cuts the pause short

    def check(self, ended: bool = False) -> None:
        """Raise the armed failure once its entries are done (called between entries: what was
        done stays whole and recorded), or, `ended`, at the end of a walk that had fewer."""
        if self.failure is None or self.fail_after is None:
            return
        if ended or self.entries_done >= self.fail_after:
            raise self.failure

    @property
    def complete(self) -> bool:
        """Everything the scan found is done (a stop that came after the last entry stopped nothing)."""
        with self._lock:
            done = self.entries_done >= self.entries_total and self.bytes_done >= self.bytes_total
        return self.scanned and done

    @property
    def percent(self) -> int:
        """0 to 99 while the work runs (100 is for the operation to claim when it completes)."""
        total = self.entries_total * ENTRY_WEIGHT + self.bytes_total
        if not self.scanned or total == 0:
            return 0
        done = self.entries_done * ENTRY_WEIGHT + self.bytes_done
        return min(99, done * 100 // total)
