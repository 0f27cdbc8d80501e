"""The per-session guard: how many operations a session (an access token) may run at once, how many
may wait behind them, and whose turn it is.

Laserfiche Cloud runs one long operation per session and refuses a second with 429 (the v1 Long
Operations guide); v2 runs "a limited number" and queues the rest. Each start says which rule it
follows (its `Admission`); the session's operations then run in the order they were accepted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from ..errors import TooManyRequests
from .records import POLL_AFTER_S, Operation

# v2 (and v1 in queue mode): operations that may wait in one session behind those that run; a
# client that starts more is told to slow down
QUEUE_BOUND = 100


class Concurrency(StrEnum):
    REJECT = "reject"  # a second start in a session is refused with 429 (Laserfiche Cloud)
    QUEUE = "queue"  # a second start waits for the first to end


@dataclass(frozen=True)
class Admission:
    """How many of a session's operations run at once beside a new one, and how many may wait."""

    running: int = 1
    waiting: int = 0

    @classmethod
    def of(cls, concurrency: Concurrency) -> Admission:
        """v1's rule (and the Elements dialect's): one at a time, the next refused or queued."""
        return cls(1, QUEUE_BOUND if concurrency is Concurrency.QUEUE else 0)


class Guard:
    def __init__(self) -> None:
        # session id -> its operations not yet ended, in the order they were accepted
        self._active: dict[str, list[Operation]] = {}
        # token -> what a waiting operation awaits: resolved (`ended`) when its turn comes (one
        # future per waiter, woken once, instead of every waiter watching every earlier operation)
        self._turns: dict[str, asyncio.Future[None]] = {}

    def admit(self, session_id: str, admission: Admission) -> None:
        """Refuse (429, naming the running operation) a start the session has no room for."""
        active = self._active.get(session_id, [])
        if len(active) < admission.running + admission.waiting:
            return
        running = active[0].token
        if admission.waiting:
            detail = (
                f"{len(active)} operations of this session are running or waiting, the most it may "
                "have; wait for one to end (or cancel one), then start this one again."
            )
        else:
            detail = (
                f"Only one long operation may run per session, and operation {running} is still "
                "running. Wait for it to end (or cancel it), then start this one again."
            )
        raise TooManyRequests(
            detail, headers={"Retry-After": str(POLL_AFTER_S)}, extra={"operationToken": running}
        )

    def enter(self, op: Operation) -> None:
        self._active.setdefault(op.session_id, []).append(op)

    def leave(self, op: Operation) -> None:
        active = self._active.get(op.session_id, [])
        if op in active:
            active.remove(op)
        if not active:
            self._active.pop(op.session_id, None)

    def ended(self, op: Operation) -> None:
        """An operation that left has its end stored: those behind it whose turn it now is go
        (never before: the next operation of a session starts once the last one's end is stored)."""
        for place, waiting in enumerate(self._active.get(op.session_id, [])):
            turn = self._turns.get(waiting.token)
            if turn is not None and not turn.done() and place < _limit(waiting):
                turn.set_result(None)

    async def turn(self, op: Operation) -> None:
        """Until the operation may run: fewer of the session's operations accepted before it are
        still under way than its admission allows beside it."""
        while True:
            active = self._active.get(op.session_id, [])
            if op not in active or active.index(op) < _limit(op):
                return
            turn = self._turns[op.token] = asyncio.get_running_loop().create_future()
            try:
                await turn
            finally:
                self._turns.pop(op.token, None)

    @property
    def count(self) -> int:
        """Operations accepted and not yet ended (waiting ones included)."""
        return sum(len(active) for active in self._active.values())


def _limit(op: Operation) -> int:
    """How many of its session's operations may run beside (and including) it."""
    return op.admission.running if op.admission is not None else 1
