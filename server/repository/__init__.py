"""The repository: a tree of folders (directories), documents (files) and shortcuts under the
storage root, with the ids and details the store adds.

Every method blocks; the API calls them through `asyncio.to_thread`. All disk access goes through
`fsops`, on directory descriptors walked without following symlinks. `names` says what a name may
be; `entries` what an entry is and how its row is stored; `tree` finds and lists entries;
`repository` changes them.
"""

from .entries import (
    ROW_COLUMNS,
    STAT_FIELDS,
    DocumentRow,
    Entry,
    Known,
    Target,
    forget_children,
    insert_documents,
)
from .names import (
    MAX_DEPTH,
    candidates,
    check_depth,
    check_name,
    check_segments,
    extension_to_keep,
    kept_extension,
    name_problem,
)
from .repository import Repository

__all__ = [
    "MAX_DEPTH",
    "ROW_COLUMNS",
    "STAT_FIELDS",
    "DocumentRow",
    "Entry",
    "Known",
    "Repository",
    "Target",
    "candidates",
    "check_depth",
    "check_name",
    "check_segments",
    "extension_to_keep",
    "forget_children",
    "insert_documents",
    "kept_extension",
    "name_problem",
]
