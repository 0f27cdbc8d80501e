"""Requests first: how busy the server is answering requests, so that long work yields to them.

A copy of many small files runs several steps at once in worker processes; on a small machine they
take the cores that the event loop and its clients need, and polls wait behind them. While
requests keep coming fast (clients polling in a tight loop), the engine runs one step at a time
(`Runner.drive`): the work goes on, more slowly, and the requests are answered first. At an
ordinary pace (a client polling every second, a test suite) nothing narrows.
"""

from __future__ import annotations

import time

# requests counted per window; busy while the last whole window, or the one under way, had as
# many as BUSY_REQUESTS (some 500 a second)
WINDOW_S = 0.1
BUSY_REQUESTS = 50


class RequestLoad:
    """The requests the server started lately, counted in windows of WINDOW_S."""

    def __init__(self, window_s: float = WINDOW_S, busy_requests: int = BUSY_REQUESTS) -> None:
        self.window_s = window_s
        self.busy_requests = busy_requests
        self._since = time.monotonic()  # when the window under way began
        self._count = 0  # requests in it
        self._last = 0  # requests in the window before it, if that one ended just now

    def started(self) -> None:
        """A request came in (on the event loop: see api.common.counted)."""
        now = time.monotonic()
        if now - self._since >= self.window_s:
            # (a window that ended longer ago than a window counts as empty)
            self._last = self._count if now - self._since < 2 * self.window_s else 0
            self._count = 0
            self._since = now
        self._count += 1

    def busy(self) -> bool:
        """Whether requests are coming fast right now."""
        age = time.monotonic() - self._since
        if age >= 2 * self.window_s:
            return False
        if age >= self.window_s:
            return self._count >= self.busy_requests
        return max(self._last, self._count) >= self.busy_requests
