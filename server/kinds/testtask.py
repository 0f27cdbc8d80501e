"""The test task (v2 `Tasks/StartTestTaskAsync`): an operation that does nothing for a given time,
with rising progress, then completes (naming a result URI if asked) or fails (if asked), so that a
client's polling, cancelling and error handling can be tried without touching the repository."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..errors import InjectedFailure
from ..operations import Kind, Runner, Work
from ..progress import Progress
from ..store import ROOT_ID

# progress rises this often
TICK_S = 0.1
# the longest a test task may take (an hour)
MAX_SECONDS = 3600
# how the failure a test task was asked for is reported
FAILURE_STATUS = 500


class TestWork(Work):
    kind = Kind.TEST

    def __init__(self, seconds: float, redirect: bool, error: bool) -> None:
        # never paced: its time is its own
        super().__init__(Progress(), f"Test task ({seconds:g} s)")
        self.seconds, self.redirect, self.error = seconds, redirect, error

    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        ticks = max(1, round(self.seconds / TICK_S))
        self.progress.plan(ticks, 0)
        for _ in range(ticks):
            if self.progress.stop.is_set():
                return
            await asyncio.sleep(self.seconds / ticks)
            self.progress.add(entries=1)
        if self.error:
            raise InjectedFailure(FAILURE_STATUS, "The test task failed, as it was asked to (hasError=true).")
        if self.redirect:
            # somewhere that is there in both dialects, whatever the repository holds: the root
            self.result = {"uri": f"/Entries/{ROOT_ID}"}
