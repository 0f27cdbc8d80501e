"""Export (v2 `ExportAsync`): a document's content copied to a file of the store's (`results/`),
which the finished task's `result.uri` downloads until its token expires.

The copy is the kernel's (`fsops.copy_bytes`: copy_file_range, else sendfile), 8 MiB a chunk,
in one thread hop; after each chunk the progress counts its bytes, the pace is applied and the
stop flag is checked. It writes to a part file that gets its final name only once complete, in
that same hop, so a stopped or failed export leaves no file; a crash leaves at most a part file,
cleared at the next start. The file goes when the task's token expires. (It is not fsynced: like
`cp`, an export survives the server's crash, not the machine's; the record then says Completed and
the download answers 404, and exporting again makes it anew.)

Parts: `Edoc` is the electronic document as it is. `Text` is the text of a text-like document
(its bytes, served as UTF-8 text). `Image` needs page images, which this sandbox does not have.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .. import fsops
from ..errors import BadRequest, Conflict, NotFound
from ..operations import Kind, Operation, Operations, Runner, Status
from ..progress import Order, Progress
from ..repository import Entry, Repository
from .results import PART_SUFFIX, FileResultWork

# a finished export's file in the store's results folder, and the part file it is written as
SUFFIX = ".export"
# where a finished export is downloaded: a path below the repository (the dialect makes it absolute)
URI_PREFIX = "/Exports/"
# what an export's id looks like (the name of its file, less SUFFIX): 96 random bits in hex
ID_LENGTH = 24
# the documents whose text is their content, by extension
TEXT_LIKE = frozenset({"txt", "md", "csv", "json", "xml", "html", "htm"})


class Part(enum.StrEnum):
    """What of a document an export asks for (v2's StartExportEntryRequest.part)."""

    EDOC = "Edoc"
    IMAGE = "Image"
    TEXT = "Text"


@dataclass(frozen=True)
class Exported:
    """A finished export's file, as the download serves it."""

    fd: int  # open on the file (the caller closes it)
    size: int
    file_name: str  # what it is saved under
    mime_type: str


class ExportWork(FileResultWork):
    suffix = SUFFIX
    kind = Kind.EXPORT

    def __init__(self, entry: Entry, part: Part, progress: Progress) -> None:
        super().__init__(progress, f"Export {entry.path} ({part.value})", entry.id)
        self.part = part
        self.export_id = secrets.token_hex(ID_LENGTH // 2)
        self.file = self.export_id + SUFFIX
        if part is Part.TEXT:
            self.file_name, self.mime_type = _text_name(entry), "text/plain; charset=utf-8"
        else:
            self.file_name, self.mime_type = entry.file_name, entry.mime_type
        # set by the copy once the file has its final name (in its thread)
        self._published = False

    @classmethod
    async def prepare(
        cls, operations: Operations, entry_id: int, part: Part, progress: Progress
    ) -> ExportWork:
        """The export, once checked: a missing entry or a shortcut to nothing (404), a folder (400),
        `Image` (400: no page images here) and `Text` of a document that is not text (400) are
        refused here, before anything is accepted."""
        repository = operations.repository
        # (on the default threads: a check never queues behind long work)
        entry = await asyncio.to_thread(_document, repository, entry_id)
        if part is Part.IMAGE:
            raise BadRequest(
                "This sandbox has no page images: an export of part 'Image' is not possible. Export "
                "part 'Edoc' (the electronic document), or 'Text' of a text-like document."
            )
        if part is Part.TEXT and entry.extension.lower() not in TEXT_LIKE:
            raise BadRequest(
                f"Entry {entry_id} ('{entry.file_name}') is not a text-like document "
                f"({', '.join(sorted(TEXT_LIKE))}), and this sandbox has no page text: an export of "
                "part 'Text' is not possible. Export part 'Edoc'."
            )
        return cls(entry, part, progress)

    async def run(self, runner: Runner, checkpoint: Callable[[], Awaitable[None]]) -> None:
        try:
            copy = functools.partial(self._copy, runner.repository)
            await runner.drive(iter([(copy, Order.FIRST)]), self.progress, _one)
        finally:
            # (even if the task was cancelled as the copy ended: what was published is named)
            if self._published:
                self.result = {
                    "uri": URI_PREFIX + self.export_id,
                    "file": self.file,
                    "name": self.file_name,
                    "type": self.mime_type,
                }

    def _copy(self, repository: Repository) -> None:
        """Copy the document to the part file, chunk by chunk, then give it its final name
        (blocking; one thread hop)."""
        try:
            entry, src = repository.open_document(self.entry_id)
        except NotFound:
            raise NotFound(f"Entry {self.entry_id} no longer exists; there was nothing to export.") from None
        results = repository.store.results_fd
        part = self.file + PART_SUFFIX
        try:
            out = os.open(part, fsops.NEW_FILE_FLAGS, 0o600, dir_fd=results)
            try:
                self.progress.plan(-(-entry.size // fsops.COPY_CHUNK), entry.size)
                copied = fsops.copy_bytes(src, out, entry.size, self._chunk_done)
            finally:
                os.close(out)
            if copied != entry.size:
                raise Conflict(
                    f"Entry {self.entry_id} changed during the export ({entry.size} bytes when it began, "
                    f"{copied} read); export it again."
                )
            os.rename(part, self.file, src_dir_fd=results, dst_dir_fd=results)
            self._published = True
        finally:
            os.close(src)

    def _chunk_done(self, size: int) -> bool:
        """One chunk copied: counted, paced; whether to stop."""
        self.progress.add(entries=1, size=size)
        return self.progress.stop.is_set()


def _one() -> int:
    return 1


def _document(repository: Repository, entry_id: int) -> Entry:
    """The document an export reads (through a shortcut, its target); 404, or 400 for a folder."""
    entry, fd = repository.open_document(entry_id)
    os.close(fd)
    return entry


def _text_name(entry: Entry) -> str:
    stem, dot, ext = entry.file_name.rpartition(".")
    return entry.file_name if ext.lower() == "txt" else f"{stem if dot else entry.file_name}.txt"


def find(operations: Operations, user: str, export_id: str) -> Operation:
    """The completed export of `user`'s whose id this is, if its token has not expired; else 404."""
    file = export_id + SUFFIX
    now = time.time_ns()
    for op in operations.visible():
        if op.kind is Kind.EXPORT and op.result.get("file") == file and op.user == user:
            if op.status is Status.COMPLETED and now < op.expires_ns:
                return op
    raise NotFound(f"No export {export_id} (exports can be downloaded until their task expires).")


def open_export(repository: Repository, op: Operation) -> Exported:
    """A descriptor open on a finished export's file, and how to serve it (blocking)."""
    result: dict[str, Any] = op.result
    try:
        fd = fsops.open_file(repository.store.results_fd, str(result["file"]))
    except FileNotFoundError:
        raise NotFound("The export's file is gone (its task expired).") from None
    size = os.fstat(fd).st_size
    return Exported(fd, size, str(result.get("name") or "export"), str(result.get("type") or ""))
