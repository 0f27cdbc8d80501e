"""The copy and delete walkers: the blocking halves of the long operations.

A walk scans what it will touch (totals for percentComplete) and does the work as a series of
steps, each one thread hop, that follow the scan folder by folder: making a folder's subfolders,
copying a batch of small files (or one large file, chunk by chunk), deleting a batch of files,
removing the emptied folders. A batch spans folders, so a tree of many small folders costs few
steps. `operations` drives the steps from the event loop, a few at a time in their `Order`;
between steps, files and chunks each step checks `Progress.stop`, so a cancel takes effect
promptly and leaves whole entries only. Large batches of small files go to the copy worker
processes (`copyworker`), which also write their rows.

A copied file is written unnamed (O_TMPFILE) and given its name once complete (never over
anything); where the filesystem cannot, under a hidden part name renamed when complete. So no
half-written file ever carries its final name; listings never show part files, and `remove_parts`
clears those a crash left. New entries get ids batch by batch, as they appear.
"""

from .batches import (
    BatchItem,
    Copied,
    CopyBatch,
    CopyGroup,
    UnlinkBatch,
    UnlinkGroup,
    copied_rows,
    copy_batch,
    unlink_batch,
)
from .copying import CopyWalk, remove_parts
from .deleting import DeleteWalk

__all__ = [
    "BatchItem",
    "Copied",
    "CopyBatch",
    "CopyGroup",
    "CopyWalk",
    "DeleteWalk",
    "UnlinkBatch",
    "UnlinkGroup",
    "copied_rows",
    "copy_batch",
    "remove_parts",
    "unlink_batch",
]
