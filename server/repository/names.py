"""What a name may be, and the names autoRename tries."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import fsops
from ..errors import BadRequest

# a name is one path segment of at most this many bytes in UTF-8 (the common filesystem limit)
MAX_NAME_BYTES = 255
# folders nest at most this deep below the root: deep enough for any real tree, and a bound on
# what a hostile client can make every later walk descend through
MAX_DEPTH = 64
# autoRename tries `name (2)` … up to this, then gives up with 409
MAX_AUTO_RENAME = 10_000
# path separators, what Laserfiche itself refuses in a name (the Windows reserved characters), and
# the control characters (Unicode category Cc: C0, DEL and C1)
_BAD_CHAR = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
# the common case at once: up to 63 allowed characters (no lone surrogates: at most 252 bytes of
# UTF-8), neither "." nor ".." nor a partial file's name (a walk over many files asks this of each)
_PLAIN = re.compile(
    r"(?!\.\.?\Z)(?!"
    + re.escape(fsops.PART_PREFIX)
    + r')[^\x00-\x1f\x7f-\x9f\ud800-\udfff/\\:*?"<>|]{1,63}\Z'
).match


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an entry name, or None if it can."""
    if _PLAIN(name) is not None:
        return None
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return f"must not be {name!r}"
    if name.startswith(fsops.PART_PREFIX):
        return f"must not start with {fsops.PART_PREFIX!r} (the sandbox's partial files)"
    bad = _BAD_CHAR.search(name)
    if bad is not None:
        return f"must not contain {bad.group()!r}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8"
    if size > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes in UTF-8 (is {size})"
    return None


def check_segments(parts: list[str], what: str) -> list[str]:
    """The names of a path, each checked (400 naming `what` and the segment)."""
    for part in parts:
        problem = name_problem(part)
        if problem:
            raise BadRequest(f"The {what} has an invalid segment {part!r}: it {problem}.")
    return parts


def check_depth(depth: int, what: str) -> None:
    """Refuse (400) a folder that would be `depth` levels below the root, past MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise BadRequest(
            f"{what} would put a folder {depth} levels below the root; folders nest at most {MAX_DEPTH} deep."
        )


def check_name(name: str, field: str = "name") -> str:
    problem = name_problem(name)
    if problem:
        raise BadRequest(f"The '{field}' {problem}.")
    return name


def extension_of(name: str) -> str:
    head, dot, ext = name.rpartition(".")
    return ext if dot and head else ""


def extension_to_keep(name: str, upload_name: str | None) -> str | None:
    """The uploaded file's extension, kept for an entry whose name has none of its own
    (Laserfiche imports `Invoice 123` from `File.pdf` as a pdf document)."""
    ext = extension_of(upload_name or "")
    if not ext or extension_of(name) or name_problem(ext):
        return None
    return ext


def kept_extension(name: str, ext: str | None) -> str | None:
    """A kept extension survives a rename or copy only to a name without an extension of its own."""
    return None if extension_of(name) else ext


def candidates(name: str, is_dir: bool, auto_rename: bool) -> Iterator[str]:
    """`name`, then with autoRename `name (2)`, `name (3)`…; documents keep their extension last."""
    yield name
    if not auto_rename:
        return
    ext = "" if is_dir else extension_of(name)
    stem, suffix = (name[: -len(ext) - 1], "." + ext) if ext else (name, "")
    for n in range(2, MAX_AUTO_RENAME):
        candidate = f"{stem} ({n}){suffix}"
        if name_problem(candidate) is None:
            yield candidate
