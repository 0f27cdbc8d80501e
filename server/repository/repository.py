"""The repository's changes, made under the store's lock so that the disk and the store change
together (copying bytes does not hold it): folders, shortcuts and documents made, moved and
replaced, and the checks made before a long operation is accepted.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from .. import fsops
from ..errors import BadRequest, NotFound
from ..metadata.carry import CopyRun, Then
from ..store import ROOT_ID, atomic
from .entries import DocumentRow, Entry, Target, forget_children, insert_documents
from .names import MAX_DEPTH, check_depth, check_name, check_segments, kept_extension, name_problem
from .tree import Tree

# a shortcut's placeholder on disk: what it says to someone who opens it (the store holds the target)
SHORTCUT_TEXT = (
    "Laserfiche sandbox shortcut to entry {id} ({type}, '{path}' when it was made).\n"
    "The sandbox's store (.sandbox/) holds its target; this file only holds its name.\n"
)


def _height(root_fd: int, parts: tuple[str, ...], enough: int) -> int:
    """How many levels of folders are below the folder at `parts` (counting stops past `enough`).
    Read from the disk alone (no lock held), depth first, holding one descriptor per level and
    looking at nothing but folders; folders that go away meanwhile are skipped."""
    try:
        top = fsops.open_dir(root_fd, parts)
    except fsops.Gone:
        return 0  # (gone with its contents: nothing to measure)
    height = 0
    # the folders being listed, from the top down: each one's descriptor and listing
    stack = [(top, os.scandir(top))]
    try:
        while stack:
            fd, listing = stack[-1]
            for item in listing:
                if item.is_dir(follow_symlinks=False) and name_problem(item.name) is None:
                    try:
                        child = os.open(item.name, fsops.DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        continue  # (changed since listed)
                    stack.append((child, os.scandir(child)))
                    height = max(height, len(stack) - 1)
                    if height > enough:
                        return height
                    break
            else:
                stack.pop()
                listing.close()
                os.close(fd)
    finally:
        for fd, listing in stack:
            listing.close()
            os.close(fd)
    return height


def _mkdir(folder_fd: int, name: str) -> None:
    os.mkdir(name, dir_fd=folder_fd)


class Repository(Tree):
    """The repository's changes: new folders, shortcuts and documents, moves, and the checks made
    before a long operation is accepted; and what the copy and delete walkers record."""

    def open_document(self, entry_id: int) -> tuple[Entry, int]:
        """A document and a descriptor open on its bytes (the caller closes it). Read through a
        shortcut, it is the shortcut's target (404 if the target is gone)."""
        with self.store.lock:
            entry_id = self._through(entry_id)
            with self._document(entry_id, "has no electronic document") as (entry, parent_fd):
                fd = fsops.open_file(parent_fd, entry.name)
        return replace(entry, size=os.fstat(fd).st_size), fd

    def _through(self, entry_id: int) -> int:
        """The entry a shortcut leads to, through shortcuts to shortcuts (never round in a circle:
        a target exists when its shortcut is made, and ids are never reused), else `entry_id`."""
        entry = self._resolve(entry_id)
        while (target := entry.target) is not None:
            try:
                entry = self._resolve(target.id)
            except NotFound:
                raise NotFound(
                    f"The target of shortcut {entry.id}, entry {target.id}, no longer exists."
                ) from None
        return entry.id

    def new_temp(self) -> tuple[str, int]:
        """A new, empty temporary file in the store: its name and a descriptor open for writing."""
        name = uuid.uuid4().hex
        return name, os.open(name, fsops.NEW_FILE_FLAGS, 0o644, dir_fd=self.store.tmp_fd)

    def discard_temp(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.store.tmp_fd)
        except FileNotFoundError:
            pass

    def create_folder(
        self, parent_id: int, name: str, auto_rename: bool, creator: str, then: Then | None = None
    ) -> Entry:
        return self._create(parent_id, name, True, auto_rename, creator, _mkdir, then=then)

    def shortcut_target(self, target_id: int) -> Target:
        """What a new shortcut to an entry points at; 404 if there is no such entry."""
        with self.store.lock:
            try:
                target = self._resolve(target_id)
            except NotFound:
                raise NotFound(f"The shortcut's target, entry {target_id}, does not exist.") from None
        return Target(target.id, target.entry_type)

    def create_shortcut(
        self, parent_id: int, name: str, target_id: int, auto_rename: bool, creator: str
    ) -> Entry:
        """A shortcut to an entry: a row with its target, and a placeholder file that holds its name."""
        return self.make_shortcut(parent_id, name, self.shortcut_target(target_id), auto_rename, creator)

    def make_shortcut(
        self,
        parent_id: int,
        name: str,
        target: Target,
        auto_rename: bool,
        creator: str,
        then: Then | None = None,
    ) -> Entry:
        """A shortcut to `target`, whether it still exists or not (a copied shortcut points where
        its original pointed)."""
        text = SHORTCUT_TEXT.format(id=target.id, type=target.type, path=self._path_of(target.id))
        tmp, fd = self.new_temp()
        try:
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
            publish = functools.partial(fsops.publish, self.store.tmp_fd, tmp)
            return self._create(
                parent_id, name, False, auto_rename, creator, publish, target=target, then=then
            )
        finally:
            self.discard_temp(tmp)

    def _path_of(self, entry_id: int) -> str:
        with self.store.lock:
            chain = self._chain(entry_id)
        return "\\" + "\\".join(row.name for row in chain[1:]) if chain else "(gone)"

    def import_document(
        self,
        parent_id: int,
        name: str,
        tmp: str,
        auto_rename: bool,
        creator: str,
        ext: str | None = None,
        then: Then | None = None,
    ) -> Entry:
        """Publish a fully written temporary file (from `new_temp`) as a document in a folder."""
        publish = functools.partial(fsops.publish, self.store.tmp_fd, tmp)
        return self._create(parent_id, name, False, auto_rename, creator, publish, ext, then=then)

    def replace_document(self, entry_id: int, tmp: str) -> Entry:
        """Give a document the bytes of a fully written temporary file (from `new_temp`), in one
        step: readers see the old bytes or the new, and the entry keeps its id."""
        with self.store.lock:
            with self._document(entry_id, "has no bytes to replace") as (entry, fd):
                fsops.replace(self.store.tmp_fd, tmp, fd, entry.name)
            return self._resolve(entry_id)

    def move(self, entry_id: int, parent_id: int | None, name: str | None, auto_rename: bool) -> Entry:
        if name is not None:
            check_name(name)
        if parent_id is not None:
            self._check_move_depth(entry_id, parent_id)
        with self.store.lock:
            node = self._resolve(entry_id)
            if node.id == ROOT_ID:
                raise BadRequest("The root folder cannot be moved or renamed.")
            parent = self._folder(node.parent_id if parent_id is None else parent_id)
            new_name = node.name if name is None else name
            if node.is_dir and parent.parts[: len(node.parts)] == node.parts:
                raise BadRequest(f"Entry {node.id} cannot be moved into itself or one of its subfolders.")
            if parent.id == node.parent_id and new_name == node.name:
                return node
            ext = kept_extension(new_name, node.ext)
            with (
                fsops.folder(self.store.root_fd, node.parts[:-1]) as src_fd,
                self._folder_fd(parent) as dst_fd,
            ):
                allowed = self._allowed(parent, dst_fd, new_name, node.is_dir, auto_rename, node.id)
                for candidate in allowed:
                    try:
                        fsops.rename_noreplace(src_fd, node.name, dst_fd, candidate)
                    except FileExistsError:
                        continue
                    # a row left for something removed by hand must not block the name's new owner
                    forget_children(self.store.conn, parent.id, [candidate])
                    self.store.conn.execute(
                        "UPDATE entries SET parent_id = ?, name = ?, name_key = ?, ext = ? WHERE id = ?",
                        (parent.id, candidate, candidate.casefold(), ext, node.id),
                    )
                    self._changed()
                    return self._resolve(node.id)
            raise self._conflict(parent, new_name)

    def folder_at(self, parent_id: int, names: list[str], create: bool, creator: str) -> Entry:
        """The folder at `names` below a folder, each name checked; the missing ones created if
        `create`, else 404 before anything is created. Folders that exist keep their ids."""
        check_segments(names, "folder path")
        with self.store.lock:
            node = self._folder(parent_id)
            check_depth(len(node.parts) + len(names), "The folder path")
            missing = None
            for index, name in enumerate(names):
                with self._folder_fd(node) as fd:
                    child = self._child(node, fd, name)
                if child is None:
                    missing = index
                    break
                if not child.is_dir:
                    where = "\\" + "\\".join(child.parts)
                    raise BadRequest(f"The folder path names '{where}', which is not a folder.")
                node = child
            if missing is None:
                return node
            if not create:
                where = "\\" + "\\".join((*node.parts, names[missing]))
                raise NotFound(
                    f"No folder at '{where}'; send autoCreateFolderPath=true to create the missing folders."
                )
            for name in names[missing:]:
                node = self.create_folder(node.id, name, False, creator)
            return node

    def check_copy(self, source_id: int, parent_id: int, name: str, auto_rename: bool) -> tuple[Entry, Entry]:
        """The source and destination folder of a copy, or the error it would end in at once: a
        missing entry (404), a copy into itself (400), a taken name without autoRename (409)."""
        check_name(name)
        with self.store.lock:
            source = self._resolve(source_id)
            parent = self._folder(parent_id)
            if source.id == ROOT_ID or (source.is_dir and parent.parts[: len(source.parts)] == source.parts):
                raise BadRequest(f"Entry {source.id} cannot be copied into itself or one of its subfolders.")
            if not auto_rename:
                with self._folder_fd(parent) as fd:
                    allowed = self._allowed(parent, fd, name, source.is_dir, False)
                    if not any(fsops.lstat_at(fd, c) is None for c in allowed):
                        raise self._conflict(parent, name)
        if source.is_dir:  # (and the copy's scan checks again, as folders may appear meanwhile)
            height = _height(self.store.root_fd, source.parts, MAX_DEPTH - len(parent.parts))
            check_depth(len(parent.parts) + 1 + height, "The copy")
        return source, parent

    def _check_move_depth(self, entry_id: int, parent_id: int) -> None:
        """Refuse a move that would put folders past MAX_DEPTH. Only a move deeper than where the
        folder is now needs its subtree measured, and that is done without the store's lock."""
        with self.store.lock:
            node = self._resolve(entry_id)
            parent = self._folder(parent_id)
        if node.is_dir and len(parent.parts) + 1 > len(node.parts):
            height = _height(self.store.root_fd, node.parts, MAX_DEPTH - len(parent.parts))
            check_depth(len(parent.parts) + 1 + height, "The move")

    def check_delete(self, entry_id: int) -> Entry | None:
        """Refuse at once what a delete can never do: the root (400), an id never issued (404).
        An id that was issued but is gone now is left for the operation to report (None)."""
        if entry_id == ROOT_ID:
            raise BadRequest("The root folder cannot be deleted.")
        with self.store.lock:
            try:
                return self._resolve(entry_id)
            except NotFound:
                row = self.store.conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'entries'"
                ).fetchone()
                if row is None or not ROOT_ID < entry_id <= row[0]:
                    raise
                return None

    def create_folders(
        self, parent_id: int, wanted: list[tuple[str, Then | None]], creator: str
    ) -> list[Entry]:
        """New folders in a folder, each under its name or the first free one autoRename gives
        (the copies of a folder's subfolders: new folders in a new folder), their rows written in
        one transaction, each with its `then`."""
        made: list[tuple[str, Then | None]] = []
        with self.store.lock:
            parent = self._folder(parent_id)
            check_depth(len(parent.parts) + 1, "The new folder")
            with self._folder_fd(parent) as fd:
                try:
                    for name, then in wanted:
                        check_name(name)
                        for candidate in self._allowed(parent, fd, name, True, True):
                            try:
                                os.mkdir(candidate, dir_fd=fd)
                            except FileExistsError:
                                continue
                            self._note_own_change(parent, fd)
                            made.append((candidate, then))
                            break
                        else:
                            raise self._conflict(parent, name)
                finally:
                    # (the folders made get their rows, whatever stopped the others)
                    with atomic(self.store.conn):
                        entries = [
                            self._add(parent, fd, name, True, creator, then=then) for name, then in made
                        ]
        return entries

    def record_documents(
        self, rows: list[tuple[int, list[DocumentRow]]], creator: str, run: CopyRun | None = None
    ) -> None:
        """Give ids to documents a walker just put into folders, (folder id, rows) each, with the
        metadata of what they copy (see insert_documents), in one transaction."""
        rows = [(folder_id, found) for folder_id, found in rows if found]
        if not rows:
            return
        with self.store.transaction() as conn:
            for folder_id, found in rows:
                insert_documents(conn, folder_id, found, creator, run)
            self._changed()

    def forget_names(self, removed: list[tuple[int | None, list[str]]]) -> None:
        """Drop the ids of children a walker removed from folders, (folder id, names) each (their
        subtrees go with them; a folder the store never met has none), in one transaction."""
        removed = [(folder_id, names) for folder_id, names in removed if folder_id is not None and names]
        if not removed:
            return
        with self.store.transaction() as conn:
            for folder_id, names in removed:
                assert folder_id is not None
                forget_children(conn, folder_id, names)
            self._changed()

    def _create(
        self,
        parent_id: int,
        name: str,
        is_dir: bool,
        auto_rename: bool,
        creator: str,
        make: Callable[[int, str], None],
        ext: str | None = None,
        target: Target | None = None,
        then: Then | None = None,
    ) -> Entry:
        """A new entry in a folder: `make(folder_fd, name)` under the first name allowed that it
        finds free (FileExistsError: taken meanwhile, try the next)."""
        check_name(name)
        with self.store.lock:
            parent = self._folder(parent_id)
            if is_dir:
                check_depth(len(parent.parts) + 1, "The new folder")
            with self._folder_fd(parent) as fd:
                for candidate in self._allowed(parent, fd, name, is_dir, auto_rename):
                    try:
                        make(fd, candidate)
                    except FileExistsError:
                        continue
                    self._note_own_change(parent, fd)
                    return self._add(parent, fd, candidate, is_dir, creator, ext, target, then)
            raise self._conflict(parent, name)

    @contextmanager
    def _document(self, entry_id: int, refusal: str) -> Iterator[tuple[Entry, int]]:
        """A document and its folder's descriptor; a folder is refused (400, "is a folder and
        `refusal`"), one gone from the disk is forgotten (404)."""
        entry = self._resolve(entry_id)
        if entry.is_dir or entry.is_shortcut:
            raise BadRequest(f"Entry {entry_id} is a {entry.entry_type.lower()} and {refusal}.")
        try:
            with fsops.folder(self.store.root_fd, entry.parts[:-1]) as fd:
                yield entry, fd
        except (fsops.Gone, FileNotFoundError):
            self._forget(entry.id)
            raise NotFound(f"Entry {entry_id} not found.") from None
