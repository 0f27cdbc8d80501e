"""Imports and updates from uploaded parts (v2 `ImportUploadedParts`, `UpdateUploadedParts`): the
parts of an upload (`server/uploads.py`) assembled in order into a temporary file of the store,
then published as a new document, or as the new bytes of one, in one step.

Nothing is assembled before every part has checked out (the upload is the user's and alive, each
ETag is its part's MD5, no part but the last under 5 MiB) and the metadata asked for fits the
catalog; any problem fails the task and creates nothing. The copy is the kernel's (reflinks where
the filesystem has them), counted and paced per 8 MiB chunk and stopped between chunks. Published,
the upload goes with its parts; a task that did not complete leaves the upload to expire, and its
temporary file goes at once (or, after a crash, at the next start with the store's `tmp`).
"""

from __future__ import annotations

import functools
import os
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..fsops import COPY_CHUNK
from ..metadata.carry import Then
from ..metadata.model import Metadata, NewMetadata
from ..operations import Kind, Runner, Work
from ..progress import Order, Progress, Step
from ..repository import Entry, Repository, extension_to_keep
from ..uploads import Part, Uploads

# an assembly that is not paced copies this much per call: still stopped within a fraction of a
# second, but in far fewer calls, which some filesystems (tmpfs) copy much faster
FAST_CHUNK = 128 * 1024 * 1024


@dataclass(frozen=True)
class FromParts:
    """What an assembly takes: the upload, the ETags the client was given for its parts (in
    order), the metadata to give the document, and who asks."""

    uploads: Uploads
    metadata: Metadata
    upload_id: str
    etags: list[str]
    new: NewMetadata
    user: str


class _PartsWork(Work):
    """Assemble an upload's parts, then `_publish` the temporary file."""

    def __init__(self, source: FromParts, progress: Progress, label: str, entry_id: int = 0) -> None:
        super().__init__(progress, label, entry_id)
        self.source = source
        self.uploads = source.uploads
        self._parts: list[Part] = []
        self._then: Then | None = None
        self._tmp: str | None = None

    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        repository = runner.repository
        steps: list[Step] = [
            (functools.partial(self._check, repository), Order.FIRST),
            (functools.partial(self._assemble, repository), Order.FIRST),
            (functools.partial(self._finish, repository), Order.FIRST),
        ]
        await runner.drive(iter(steps), self.progress, lambda: 1)

    def _check(self, repository: Repository) -> None:
        source = self.source
        self._then = source.metadata.check_new(source.new)
        self._parts = self.uploads.claim(source.upload_id, source.user, source.etags)
        # the bytes, and the document as one entry (what percentComplete weighs)
        self.progress.plan(1, sum(part.size for part in self._parts))

    def _assemble(self, repository: Repository) -> None:
        self._tmp, fd = repository.new_temp()
        try:
            # (paced: per 8 MiB chunk, as the contract says; else in few, large calls)
            chunk = COPY_CHUNK if self.progress.pace_s else FAST_CHUNK
            self.uploads.assemble(self.source.upload_id, self._parts, fd, self._chunk, chunk)
        finally:
            os.close(fd)

    def _chunk(self, size: int) -> bool:
        """A chunk copied: counted and paced (a cancel cuts the pause short); True stops the copy."""
        progress = self.progress
        progress.add(size=size)
        if progress.pace_s:
            progress.stop.wait(progress.pace_s)
        return progress.stop.is_set()

    def _finish(self, repository: Repository) -> None:
        assert self._tmp is not None
        entry = self._publish(repository, self._tmp)
        self._tmp = None
        self.entry_id = entry.id
        self.result = {"uri": f"/Entries/{entry.id}"}
        self.uploads.remove(self.source.upload_id)
        self.progress.add(entries=1)

    @abstractmethod
    def _publish(self, repository: Repository, tmp: str) -> Entry:
        """Make the whole temporary file the document (blocking; `_then` writes its metadata)."""

    async def unfinished(self, runner: Runner) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            await runner.in_thread(runner.repository.discard_temp, tmp)
        if self._parts:  # (claimed: it stays, for another try, until it expires)
            await runner.in_thread(self.uploads.release, self.source.upload_id)


class ImportPartsWork(_PartsWork):
    """`ImportUploadedParts`: a new document in a folder."""

    kind = Kind.IMPORT_PARTS

    def __init__(
        self, source: FromParts, progress: Progress, folder: Entry, name: str, auto_rename: bool
    ) -> None:
        super().__init__(source, progress, f"Import uploaded parts → {folder.child_path(name)}")
        self.folder, self.name, self.auto_rename = folder, name, auto_rename

    def _publish(self, repository: Repository, tmp: str) -> Entry:
        ext = extension_to_keep(self.name, self.uploads.file_name(self.source.upload_id))
        return repository.import_document(
            self.folder.id, self.name, tmp, self.auto_rename, self.source.user, ext, then=self._then
        )


class UpdatePartsWork(_PartsWork):
    """`UpdateUploadedParts`: new bytes (and metadata) for a document, which keeps its id."""

    kind = Kind.UPDATE_PARTS

    def __init__(self, source: FromParts, progress: Progress, document: Entry) -> None:
        super().__init__(source, progress, f"Update {document.path} from uploaded parts", document.id)

    def _publish(self, repository: Repository, tmp: str) -> Entry:
        entry = repository.replace_document(self.entry_id, tmp)
        if self._then is not None:
            with repository.store.transaction() as conn:
                self._then(conn, entry.id)
            repository.changed()
        return repository.entry(entry.id)
