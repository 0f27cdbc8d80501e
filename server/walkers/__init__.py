"""The copy and delete walkers: the blocking halves of the long operations.

A walk scans what it will touch (totals for percentComplete; a copy's scan runs ahead of the copy,
a delete's before it) and does the work as a series of steps, each one thread hop: creating a
folder, copying a batch of small files (or one large file, chunk by chunk), deleting a batch of
files, removing the emptied folders. `operations` drives the steps from the event loop, a few at a
time in their `Order`; between steps, files and chunks each step checks `Progress.stop`, so a
cancel takes effect promptly and leaves whole entries only. Large batches of small files go to the
copy worker processes (`copyworker`), which also write their rows.

A copied file is written under a hidden part name in its destination folder and renamed when
complete (never over anything), so no half-written file ever carries its final name; listings
never show part files, and `remove_parts` clears those a crash left. New entries get ids batch by
batch, as they appear.
"""

from .batches import Batch, BatchItem, Copied, copied_rows, copy_batch, unlink_batch
from .copying import CopyWalk, remove_parts
from .deleting import DeleteWalk

__all__ = [
    "Batch",
    "BatchItem",
    "Copied",
    "CopyWalk",
    "DeleteWalk",
    "copied_rows",
    "copy_batch",
    "remove_parts",
    "unlink_batch",
]
