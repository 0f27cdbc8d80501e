"""A search (v2 `SearchAsync`): the tree walked folder by folder below where the search is bound
(its `LookIn`, else the root), one thread hop per page of a folder's entries, each entry matched
(`search.matching`) and the matches stored as result rows (`search.results`) page by page, so
they can be read while it runs. It counts the tree beside the walk, for percentComplete; stops
between entries when cancelled (what it found stays readable); paced per entry.

The same walk runs without a token for `SimpleSearches` (the first matches, kept in memory) and
for `refresh=true` (a new set of rows for a search that ended, which replaces the old set once
complete).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from ..errors import NotFound
from ..metadata.model import Metadata
from ..operations import Kind, Operation, Runner, Work
from ..progress import Order, Progress, Step
from ..repository import Entry, Repository
from ..search import results
from ..search.matching import Candidate, Search, values_of
from ..store import Store

# a folder's entries are listed and matched this many at a time (one thread hop each)
PAGE = 500


class SearchWork(Work):
    kind = Kind.SEARCH

    def __init__(
        self,
        command: str,
        search: Search,
        progress: Progress,
        metadata: Metadata,
        *,
        token: str = "",
        run: int = 0,
        limit: int | None = None,
    ) -> None:
        super().__init__(progress, f"Search {command}")
        self.command, self.search, self.metadata = command, search, metadata
        # where its rows go: the search's token (given once it is accepted, see SearchHook) and
        # set; no token: kept in `found` (at most `limit`)
        self.token, self.run_number, self.limit = token, run, limit
        self.found: list[Entry] = []
        self.rows = 0

    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        repository = runner.repository
        top = await runner.in_thread(_folder_at, repository, self.search.look_in)
        if top is None:  # (LookIn names no folder: nothing is below it)
            self.progress.plan(0, 0)
            return self._done()
        counting = asyncio.ensure_future(runner.in_thread(repository.count_below, top.parts))
        counting.add_done_callback(self._counted)
        try:
            await runner.drive(self._steps(repository, top.id), self.progress, lambda: 1)
        finally:
            counting.cancel()
            with contextlib.suppress(BaseException):
                await counting
        # (entries added or removed since the count: done is all there was)
        self.progress.plan(self.progress.entries_done, 0)
        self._done()

    def _counted(self, counting: asyncio.Future[int]) -> None:
        if not counting.cancelled() and counting.exception() is None:
            self.progress.plan(max(counting.result(), self.progress.entries_done), 0)

    def _done(self) -> None:
        if self.token:
            self.result = {"uri": f"/Searches/{self.token}/Results"}

    @property
    def _full(self) -> bool:
        return self.limit is not None and len(self.found) >= self.limit

    def _steps(self, repository: Repository, top_id: int) -> Iterator[Step]:
        folders: collections.deque[int] = collections.deque([top_id])
        while folders and not self._full:
            page = _Page(folders.popleft())
            while page.more and not self._full:
                yield functools.partial(self._page, repository, page, folders), Order.FIRST

    def _page(self, repository: Repository, page: _Page, folders: collections.deque[int]) -> None:
        """Match a page of a folder's entries (noting its subfolders) and store what matched."""
        try:
            total, entries = repository.children(
                page.folder_id, [("name", False)], page.start, page.start + PAGE
            )
        except NotFound:
            page.more = False  # (gone since it was met)
            return
        page.start += PAGE
        page.more = page.start < total
        values = self._values([e.id for e in entries]) if self.search.needs_values else {}
        catalog, root_fd = self.metadata.catalog, repository.store.root_fd
        # counted one by one when paced or a sandbox fault is armed (it fires between entries)
        exact = self.progress.exact
        matched: list[Entry] = []
        done = 0
        try:
            for entry in entries:
                if self.progress.stop.is_set():
                    break
                if entry.is_dir:
                    folders.append(entry.id)
                fields, tags = values.get(entry.id, ({}, []))
                template = catalog.template(entry.template_id) if entry.template_id else None
                candidate = Candidate(entry, fields, tags, template.name if template else "", root_fd)
                if self.search.match(candidate) is not None:
                    matched.append(entry)
                done += 1
                if exact:
                    self.progress.add(entries=1)
        finally:
            # (what was matched before a stop or a failure is stored all the same)
            self._keep(matched)
        if not exact:
            self.progress.add(entries=done)

    def _values(self, ids: list[int]) -> dict[int, tuple[dict[str, list[str]], list[str]]]:
        metadata = self.metadata

        def tag_name(tag_id: int) -> str | None:
            definition = metadata.tag_definition(tag_id)
            return definition.name if definition else None

        store = metadata.store
        with store.lock:
            return values_of(store.conn, metadata.catalog, tag_name, ids)

    def _keep(self, matched: list[Entry]) -> None:
        if not matched:
            return
        if not self.token:
            room = len(matched) if self.limit is None else self.limit - len(self.found)
            self.found += matched[:room]
            return
        results.write_rows(self.metadata.store, self.token, self.run_number, self.rows + 1, matched)
        self.rows += len(matched)

    async def unfinished(self, runner: Runner) -> None:
        # a refresh that did not complete leaves the set it replaces; its own rows go
        if self.token and self.run_number:
            await runner.in_thread(results.drop_run, runner.repository.store, self.token, self.run_number)

    @classmethod
    async def recover(cls, runner: Runner, op: Operation) -> None:
        # what it found before the crash stays readable, kept from now
        await runner.in_thread(_ended_now, runner.repository.store, op.token)

    @classmethod
    async def expired(cls, runner: Runner, op: Operation) -> None:
        await runner.in_thread(results.drop, runner.repository.store, op.token)

    @classmethod
    async def tidy(cls, runner: Runner, live: list[Operation]) -> None:
        tokens = {op.token for op in live if op.kind is Kind.SEARCH}
        await runner.in_thread(results.tidy, runner.repository.store, tokens)


@dataclass
class SearchHook:
    """Writes a search's record beside its operation's (operations.Hook), and tells the work the
    token its rows are stored under."""

    work: SearchWork

    def accepted(self, op: Operation, conn: sqlite3.Connection) -> None:
        results.create(conn, op.token, self.work.command)
        self.work.token = op.token

    def ended(self, op: Operation, conn: sqlite3.Connection) -> None:
        results.ended(conn, op.token, op.finished_ns)


@dataclass
class _Page:
    folder_id: int
    start: int = 0
    more: bool = True


def _ended_now(store: Store, token: str) -> None:
    with store.transaction() as conn:
        results.ended(conn, token, time.time_ns())


def _folder_at(repository: Repository, parts: tuple[str, ...]) -> Entry | None:
    found, _ = repository.by_path(list(parts))
    return found if found is not None and found.is_dir else None
