"""A bulk query job (Open Connectors' bulk API over the documents hub): a CEQL query run over the
whole repository, its records written to a file of the store's (`results/`) to be downloaded.

The job counts the tree first (totals for percentComplete), then walks it folder by folder, one
thread hop per folder, giving ids to what it meets as a listing would. Each entry is a hub record
(`elements.hub.record`); those the query matches are projected to its fields and written, one
JSON line each, to a part file that gets its final name only when the job completes (an `order
by` sorts them first, in memory). A stopped or failed job leaves no file. The file goes when the
job's token expires.
"""

from __future__ import annotations

import collections
import functools
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from .. import fsops
from ..ceql import Query
from ..elements.hub import record
from ..errors import NotFound
from ..metadata.model import Metadata
from ..operations import Kind, Runner
from ..progress import Order, Progress, Step
from ..repository import Repository
from ..store import ROOT_ID
from .results import PART_SUFFIX, FileResultWork

# a folder's entries are read and recorded this many at a time (one thread hop each)
PAGE = 1000
# what a finished job's file is called: its records, one JSON object a line
SUFFIX = ".ndjson"


class BulkWork(FileResultWork):
    suffix = SUFFIX
    kind = Kind.BULK

    def __init__(self, query: Query, progress: Progress, metadata: Metadata) -> None:
        super().__init__(progress, f"Bulk query: {query.text}")
        self.query = query
        self.metadata = metadata  # (the records' tags)
        # the file it writes (in the store's results folder), named before it runs
        self.file = secrets.token_hex(12) + SUFFIX
        # records matched so far (the job's recordsCount while it runs)
        self.records = 0
        self._out: BinaryIO | None = None
        self._sorted: list[tuple[Any, bytes]] = []

    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        repository = runner.repository
        total = await runner.in_thread(repository.count_below)
        self.progress.plan(total, 0)
        out = await runner.in_thread(self._open_part, repository)
        self._out = os.fdopen(out, "wb")
        try:
            await runner.drive(self._steps(repository), self.progress, lambda: 1)
            if self.progress.stop.is_set():
                return  # (the engine sees the stop: nothing is published)
            await runner.in_thread(self._finish, repository)
        finally:
            await runner.in_thread(self._out.close)

    def _steps(self, repository: Repository) -> Iterator[Step]:
        """One step per page of a folder's entries; the folders met are walked in turn."""
        folders: collections.deque[int] = collections.deque([ROOT_ID])
        while folders and not self._full:
            page = _Page(folders.popleft())
            while page.more and not self._full:
                yield functools.partial(self._page, repository, page, folders), Order.FIRST

    @property
    def _full(self) -> bool:
        """Enough records for the limit (when there is no order to sort them by first)."""
        limit = self.query.limit
        return limit is not None and self.query.order_by is None and self.records >= limit

    def _page(self, repository: Repository, page: _Page, folders: collections.deque[int]) -> None:
        """Record a page of a folder's entries (shortcuts aside: the hub has none), and note the
        subfolders on it."""
        try:
            total, entries = repository.children(
                page.folder_id, [("name", False)], page.start, page.start + PAGE, shortcuts=False
            )
        except NotFound:
            page.more = False  # (gone since it was met: nothing more of it to record)
            return
        page.start += PAGE
        page.more = page.start < total
        tags = self.metadata.tag_names_of([entry.id for entry in entries])
        for entry in entries:
            if entry.is_dir:
                folders.append(entry.id)
            found = record(entry, tags.get(entry.id))
            if not self._full and self.query.matches(found):
                self._write(found)
        self.progress.add(entries=len(entries))

    def _write(self, found: dict[str, Any]) -> None:
        line = orjson.dumps(self.query.project(found), option=orjson.OPT_APPEND_NEWLINE)
        self.records += 1
        if self.query.order_by is None:
            assert self._out is not None
            self._out.write(line)
        else:
            self._sorted.append((self.query.sort_key(found), line))

    def _open_part(self, repository: Repository) -> int:
        return os.open(
            self.file + PART_SUFFIX, fsops.NEW_FILE_FLAGS, 0o600, dir_fd=repository.store.results_fd
        )

    def _finish(self, repository: Repository) -> None:
        """Sort (for an order by), cut to the limit, and give the file its name."""
        assert self._out is not None
        if self.query.order_by is not None:
            descending = self.query.order_by[1]
            self._sorted.sort(key=lambda pair: pair[0], reverse=descending)
            kept = self._sorted[: self.query.limit]
            self._out.writelines(line for _, line in kept)
            self.records = len(kept)
            self._sorted = []
        self._out.flush()
        os.fsync(self._out.fileno())
        # (entries put there or removed since the count: done is all there was)
        self.progress.plan(self.progress.entries_done, 0)
        results = repository.store.results_fd
        os.rename(self.file + PART_SUFFIX, self.file, src_dir_fd=results, dst_dir_fd=results)
        self.result = {"file": self.file, "records": self.records}


@dataclass
class _Page:
    """Where a job is in one folder's listing."""

    folder_id: int
    start: int = 0
    more: bool = True


def open_records(repository: Repository, file: str) -> int:
    """A descriptor open on a finished job's records (the caller closes it)."""
    try:
        return os.open(file, fsops.FILE_FLAGS, dir_fd=repository.store.results_fd)
    except FileNotFoundError:
        raise NotFound("The job's records are gone (its token expired).") from None
