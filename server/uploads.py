"""Uploads in parts (Laserfiche v2's `CreateMultipartUploadUrls`, S3 style): a large file sent as
numbered parts, each PUT to a URL of its own, then assembled into a document by a task
(`server/kinds/uploads.py`).

An upload is a row of the store (`uploads`) and one per part its URLs were given for
(`upload_parts`: the URL's credential, hashed, and once the part came, its size and MD5). The
parts' bytes are files in the store's `uploads/<upload id>/` folder named `<number>.<md5>`, so a
row and its file always agree: a PUT streams to a temporary name, and the part only counts once
the file has its final name and the row its MD5. Every path is reached by descriptor below the
store's folder.

An upload expires `ttl_s` after its last batch of URLs (15 minutes, as Laserfiche's URLs do);
expired ones go with their parts, at start and every so often. An assembly claims its upload, so
that expiry leaves it alone; a crash leaves the claim, and the next start removes the claimed
upload with its parts (the task it belonged to reports Failed). Blocking throughout (call from a
thread), no aiohttp.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import secrets
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import fsops
from .errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from .store import Store

# what Laserfiche's URLs last (CreateMultipartUploadUrls: "each URL expires after 15 minutes")
UPLOAD_TTL_S = 15 * 60
# the folder of the store's that holds the parts, one folder per upload
UPLOADS_DIR = "uploads"
# S3's rules, which Laserfiche's upload URLs follow: a part is 5 MiB to 5 GiB, but the last may be
# smaller; at most 100 URLs a call, part numbers 1 to 1000
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_BYTES = 5 * 1024**3
MAX_PARTS_PER_CALL = 100
MAX_PART_NUMBER = 1000
# a part is received into a file whose name starts so until it is whole
_RECEIVING = "receiving-"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
# what an upload URL's credential looks like (secrets.token_urlsafe(32))
UPLOAD_KEY = re.compile(r"[A-Za-z0-9_-]{43}")
UPLOAD_URL_REFUSED = "The upload URL is invalid or has expired."
_ETAG = re.compile(r'\s*(?:W/)?"?([0-9A-Fa-f]{32})"?\s*')


@dataclass(frozen=True)
class Part:
    """An uploaded part, as an assembly reads it."""

    number: int
    size: int
    md5: str

    @property
    def file(self) -> str:
        return f"{self.number}.{self.md5}"


@dataclass(frozen=True)
class Issued:
    """A batch of upload URLs: the upload, the part numbers, and the credential they carry."""

    upload_id: str
    numbers: range
    key: str


class Receiving:
    """A part being received: its temporary file, written and hashed as it comes."""

    def __init__(self, upload_id: str, number: int, dir_fd: int, name: str, fd: int) -> None:
        self.upload_id, self.number = upload_id, number
        self.dir_fd, self.name, self.fd = dir_fd, name, fd
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, chunks: list[bytes]) -> None:
        """Hash and write chunks (blocking: one thread hop per batch)."""
        for chunk in chunks:
            self.size += len(chunk)
            if self.size > MAX_PART_BYTES:
                raise PayloadTooLarge(f"A part is at most {MAX_PART_BYTES} bytes (5 GiB).")
            self.md5.update(chunk)
        views = [memoryview(chunk) for chunk in chunks]
        while views:
            written = os.writev(self.fd, views)
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if views and written:
                views[0] = views[0][written:]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        _unlink(self.dir_fd, self.name)
        os.close(self.dir_fd)


class Uploads:
    def __init__(self, store: Store, ttl_s: float = UPLOAD_TTL_S, max_bytes: int = 64 * 1024**3) -> None:
        self.store = store
        self.ttl_ns = int(ttl_s * 1e9)
        # the largest document the parts may make (--max-document-bytes)
        self.max_bytes = max_bytes
        self.dir_fd = -1

    # ---- life ------------------------------------------------------------------------------

    def open(self) -> None:
        """After the store opened: the uploads folder, without what must not stay (expired uploads,
        those an assembly had claimed when the server stopped, and files no row names)."""
        self.dir_fd = _own_dir(self.store.dir_fd, UPLOADS_DIR)
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM uploads WHERE claimed != 0 OR expires_ns <= ?", (time.time_ns(),))
            conn.execute("DELETE FROM upload_parts WHERE upload_id NOT IN (SELECT id FROM uploads)")
            kept = {row[0] for row in conn.execute("SELECT id FROM uploads")}
            files = {
                (upload_id, f"{number}.{md5}")
                for upload_id, number, md5 in conn.execute(
                    "SELECT upload_id, number, md5 FROM upload_parts WHERE md5 IS NOT NULL"
                )
            }
        for name in os.listdir(self.dir_fd):
            if name not in kept:
                self._remove_dir(name)
                continue
            with fsops.folder(self.dir_fd, [name]) as fd:
                for file in os.listdir(fd):
                    if (name, file) not in files:
                        _unlink(fd, file)

    def close(self) -> None:
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1

    def sweep(self) -> int:
        """Remove the uploads that expired (and are not being assembled); how many went."""
        with self.store.transaction() as conn:
            gone = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM uploads WHERE claimed = 0 AND expires_ns <= ?", (time.time_ns(),)
                )
            ]
            for upload_id in gone:
                conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        for upload_id in gone:
            self._remove_dir(upload_id)
        return len(gone)

    # ---- URLs and parts ------------------------------------------------------------------

    def issue(
        self, upload_id: str | None, first: int, count: int, file_name: str, mime_type: str, user: str
    ) -> Issued:
        """URLs for parts `first` to `first + count - 1` of a new upload (no `upload_id`) or of one
        of the user's that has not expired; every URL of the upload then lasts `ttl_s` more."""
        if not 1 <= count <= MAX_PARTS_PER_CALL:
            raise BadRequest(f"The field 'numberOfParts' must be 1 to {MAX_PARTS_PER_CALL}, got {count}.")
        if first < 1 or first + count > MAX_PART_NUMBER + 1:
            raise BadRequest(
                f"Part numbers run from 1 to {MAX_PART_NUMBER}: 'startingPartNumber' must be at least 1 "
                f"and 'startingPartNumber' + 'numberOfParts' at most {MAX_PART_NUMBER + 1}, got "
                f"{first} + {count}."
            )
        key = secrets.token_urlsafe(32)
        now = time.time_ns()
        with self.store.transaction() as conn:
            if upload_id:
                self._live(conn, upload_id, user)
                conn.execute("UPDATE uploads SET expires_ns = ? WHERE id = ?", (now + self.ttl_ns, upload_id))
            else:
                upload_id = uuid.uuid4().hex
                conn.execute(
                    "INSERT INTO uploads (id, user, file_name, mime_type, created_ns, expires_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (upload_id, user, file_name, mime_type, now, now + self.ttl_ns),
                )
            conn.executemany(
                "INSERT INTO upload_parts (upload_id, number, key_hash) VALUES (?, ?, ?)"
                " ON CONFLICT (upload_id, number) DO UPDATE SET key_hash = excluded.key_hash",
                [(upload_id, n, _hash(key)) for n in range(first, first + count)],
            )
        return Issued(upload_id, range(first, first + count), key)

    def receive(self, upload_id: str, number: int, key: str) -> Receiving:
        """Begin receiving a part, if the URL's credential is right and the upload has not expired
        (401 for anything else, as for a wrong credential)."""
        nowhere = Unauthorized(
            "No upload has a URL with this credential, or its URLs have expired.", title=UPLOAD_URL_REFUSED
        )
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise nowhere
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT p.key_hash FROM upload_parts p JOIN uploads u ON u.id = p.upload_id"
                " WHERE p.upload_id = ? AND p.number = ? AND u.expires_ns > ? AND u.claimed = 0",
                (upload_id, number, time.time_ns()),
            ).fetchone()
            if row is None or not hmac.compare_digest(row[0], _hash(key)):
                raise nowhere
            dir_fd = _own_dir(self.dir_fd, upload_id)
        name = f"{_RECEIVING}{number}-{secrets.token_hex(8)}"
        try:
            fd = os.open(name, fsops.NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
        except BaseException:
            os.close(dir_fd)
            raise
        return Receiving(upload_id, number, dir_fd, name, fd)

    def received(self, part: Receiving) -> str:
        """A part is whole: give it its name and record it (replacing an earlier one of the same
        number); its MD5, in hex. 404 if the upload went meanwhile (the part is discarded)."""
        md5 = part.md5.hexdigest()
        part.close()
        final = f"{part.number}.{md5}"
        try:
            with self.store.transaction() as conn:
                # (an upload being assembled keeps the parts it was claimed with)
                old = conn.execute(
                    "SELECT p.md5 FROM upload_parts p JOIN uploads u ON u.id = p.upload_id"
                    " WHERE p.upload_id = ? AND p.number = ? AND u.claimed = 0",
                    (part.upload_id, part.number),
                ).fetchone()
                if old is None:
                    raise NotFound("The upload expired, or began to be assembled, while the part was sent.")
                # (a crash before the commit leaves a file no row names: the next start removes it)
                os.rename(part.name, final, src_dir_fd=part.dir_fd, dst_dir_fd=part.dir_fd)
                conn.execute(
                    "UPDATE upload_parts SET md5 = ?, size = ? WHERE upload_id = ? AND number = ?",
                    (md5, part.size, part.upload_id, part.number),
                )
            if old[0] is not None and old[0] != md5:
                _unlink(part.dir_fd, f"{part.number}.{old[0]}")
        finally:
            part.discard()
        return md5

    # ---- assembly --------------------------------------------------------------------------

    def claim(self, upload_id: str, user: str, etags: list[str]) -> list[Part]:
        """The parts an assembly takes, in order, once checked: the upload is the user's and has
        not expired, and the i-th ETag is the MD5 of the i-th part it has URLs for. Claimed until
        `release` or `remove`, so that expiry leaves it alone. Any problem is a 400 or 404."""
        if not etags:
            raise BadRequest("The field 'partETags' must name at least one part.")
        with self.store.transaction() as conn:
            self._live(conn, upload_id, user)
            rows = conn.execute(
                "SELECT number, size, md5 FROM upload_parts WHERE upload_id = ? ORDER BY number",
                (upload_id,),
            ).fetchall()
            if len(etags) > len(rows):
                raise BadRequest(
                    f"The field 'partETags' names {len(etags)} parts; the upload has URLs for {len(rows)}."
                )
            parts = []
            for (number, size, md5), etag in zip(rows, etags, strict=False):
                if md5 is None:
                    raise BadRequest(f"Part {number} of upload {upload_id} was never uploaded.")
                found = _ETAG.fullmatch(etag)
                if found is None or found.group(1).lower() != md5:
                    raise BadRequest(f'The ETag {etag!r} does not match part {number} (its MD5 is "{md5}").')
                parts.append(Part(number, size, md5))
            for part in parts[:-1]:
                if part.size < MIN_PART_BYTES:
                    raise BadRequest(
                        f"Part {part.number} has {part.size} bytes; every part but the last must have at "
                        f"least {MIN_PART_BYTES} (5 MiB)."
                    )
            size = sum(part.size for part in parts)
            if size > self.max_bytes:
                raise PayloadTooLarge(
                    f"The parts make {size} bytes; a document has at most {self.max_bytes}."
                )
            conn.execute("UPDATE uploads SET claimed = 1 WHERE id = ?", (upload_id,))
        return parts

    def file_name(self, upload_id: str) -> str:
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT file_name FROM uploads WHERE id = ?", (upload_id,)
            ).fetchone()
        return "" if row is None else str(row[0])

    def assemble(
        self,
        upload_id: str,
        parts: list[Part],
        out_fd: int,
        on_chunk: Callable[[int], bool],
        chunk: int = fsops.COPY_CHUNK,
    ) -> None:
        """Copy the parts in order to `out_fd` with the kernel's copy, `chunk` bytes a call;
        `on_chunk(n)` hears of each and returns True to stop (fsops.Stopped is raised)."""
        with fsops.folder(self.dir_fd, [upload_id]) as dir_fd:
            for part in parts:
                fd = os.open(part.file, fsops.FILE_FLAGS, dir_fd=dir_fd)
                try:
                    copied = _copy(fd, out_fd, part.size, chunk, on_chunk)
                finally:
                    os.close(fd)
                if copied != part.size:
                    raise BadRequest(f"Part {part.number} changed on disk since it was uploaded.")

    def release(self, upload_id: str) -> None:
        """An assembly that did not complete leaves the upload as it was (until it expires)."""
        with self.store.transaction() as conn:
            conn.execute("UPDATE uploads SET claimed = 0 WHERE id = ?", (upload_id,))

    def remove(self, upload_id: str) -> None:
        """The upload and its parts (assembled: they are the document's now)."""
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        self._remove_dir(upload_id)

    # ---- inside ----------------------------------------------------------------------------

    def _live(self, conn: sqlite3.Connection, upload_id: str, user: str) -> None:
        row = None
        if _UPLOAD_ID.fullmatch(upload_id):
            row = conn.execute(
                "SELECT user, expires_ns, claimed FROM uploads WHERE id = ?", (upload_id,)
            ).fetchone()
        if row is None or row[0] != user:
            raise NotFound(f"No upload {upload_id!r}: it never existed, or it expired and is gone.")
        if row[1] <= time.time_ns():
            raise NotFound(f"The upload {upload_id!r} has expired.")
        if row[2]:
            raise BadRequest(f"The upload {upload_id!r} is being assembled by another task.")

    def _remove_dir(self, name: str) -> None:
        found = fsops.lstat_at(self.dir_fd, name)
        if found is not None and fsops.kind(found) is True:
            shutil.rmtree(name, dir_fd=self.dir_fd)  # (with dir_fd: never follows a symlink out)
        elif found is not None:
            _unlink(self.dir_fd, name)


def _copy(src: int, dst: int, size: int, chunk: int, on_chunk: Callable[[int], bool]) -> int:
    """copy_file_range in chunks of `chunk` (few calls are much faster than many on some
    filesystems, tmpfs among them); where the kernel cannot, fsops.copy_bytes goes on."""
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(src, dst, min(chunk, size - done))
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            return done + fsops.copy_bytes(src, dst, size - done, on_chunk)
        if n == 0:
            break
        done += n
        if on_chunk(n):
            raise fsops.Stopped
    return done


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _own_dir(parent_fd: int, name: str) -> int:
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        pass
    return os.open(name, fsops.DIR_FLAGS, dir_fd=parent_fd)


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
