"""What the kinds whose result is a file share (a bulk job's records, an export): the file lives
in the store's results folder, is written as a part file that gets its name only when complete,
and goes when the operation ends otherwise, when its token expires, or at a start that finds no
live operation naming it."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from ..operations import Operation, Runner, Work
from ..repository import Repository

PART_SUFFIX = ".part"


class FileResultWork(Work):
    """A Work whose result is the file `self.file` (recorded as `result["file"]`), named with the
    kind's `suffix`."""

    suffix: ClassVar[str]
    file: str

    async def unfinished(self, runner: Runner) -> None:
        for name in (self.file + PART_SUFFIX, self.file):
            await runner.in_thread(remove_result, runner.repository, name)

    @classmethod
    async def expired(cls, runner: Runner, op: Operation) -> None:
        file = op.result.get("file")
        if isinstance(file, str):
            await runner.in_thread(remove_result, runner.repository, file)

    @classmethod
    async def tidy(cls, runner: Runner, live: list[Operation]) -> None:
        """The files of operations whose tokens are gone, and part files a crash left."""
        keep = {op.result.get("file") for op in live if op.kind is cls.kind}
        await runner.in_thread(_remove_all_but, runner.repository, keep, cls.suffix)


def remove_result(repository: Repository, name: str) -> None:
    try:
        os.unlink(name, dir_fd=repository.store.results_fd)
    except FileNotFoundError:
        pass


def _remove_all_but(repository: Repository, keep: set[Any], suffix: str) -> None:
    for name in os.listdir(repository.store.results_fd):
        if name.endswith((suffix, suffix + PART_SUFFIX)) and name not in keep:
            remove_result(repository, name)
