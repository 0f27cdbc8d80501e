"""Open Connectors bulk jobs: a CEQL query over the documents hub becomes a job on the operations
engine (`kinds.bulk`), the job a file of records, and its end a signed callback. No aiohttp.

Each job is an event too (the same id), so its callback is delivered, retried, queued and
redelivered by the same code as an asynchronous request's webhook; its body is the job's status
object. A job is written in the transaction that accepts its operation, and its end in the one
that ends it. A job a crash cut off ends FAILED when the server starts again, and its callback
goes out then, once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..ceql import Query
from ..errors import NotFound
from ..kinds.bulk import BulkWork
from ..operations import Operation, Operations, Status
from ..store import Store
from ..times import iso
from ..webhooks import Deliveries, Pending
from .events import EventHook, Events, EventStatus, outcome

# a job whose token expired is dropped (with its event) at a start this long after it ended
JOB_KEEP_NS = 24 * 3600 * 10**9
INTERRUPTED = (
    "The job was interrupted because the server stopped while it ran; it wrote no records. Start it again."
)


class JobStatus(StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    CANCELLATION_PENDING = "CANCELLATION_PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ENDED = {
    Status.COMPLETED: JobStatus.COMPLETED,
    Status.FAILED: JobStatus.FAILED,
    Status.CANCELLED: JobStatus.CANCELLED,
}


@dataclass
class Job:
    id: int
    operation: str  # its operation's token
    instance_id: int
    session_id: str
    query: str
    object_name: str
    status: JobStatus  # as stored: CREATED until it ends
    records: int
    records_failed: int
    message: str
    created_ns: int
    completed_ns: int


_JOB_COLUMNS = (
    "j.id, j.operation, e.instance_id, e.session_id, j.query, j.object_name, j.status, j.records,"
    " j.records_failed, j.message, j.created_ns, j.completed_ns"
)


def _job(row: tuple[Any, ...]) -> Job:
    job = Job(*row)
    job.status = JobStatus(job.status)
    return job


@dataclass
class BulkHook(EventHook):
    """A bulk job's event and record, written beside its operation (operations.Hook)."""

    query: Query | None = None
    work: BulkWork | None = None

    def accepted(self, op: Operation, conn: sqlite3.Connection) -> None:
        super().accepted(op, conn)
        assert self.query is not None
        conn.execute(
            "INSERT INTO bulk_jobs (id, operation, query, object_name, status, created_ns)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.event_id,
                op.token,
                self.query.text,
                self.query.object_name,
                JobStatus.CREATED.value,
                op.created_ns,
            ),
        )

    def report(
        self, op: Operation, conn: sqlite3.Connection
    ) -> tuple[EventStatus, dict[str, Any], dict[str, Any] | None]:
        """The job's end, stored; its status object is both the event's response and the callback."""
        records = op.result.get("records", 0) if op.status is Status.COMPLETED else 0
        status, error = outcome(op)
        message = "" if error is None else str(error["message"])
        conn.execute(
            "UPDATE bulk_jobs SET status = ?, records = ?, message = ?, completed_ns = ? WHERE id = ?",
            (ENDED[op.status].value, records, message, op.finished_ns, self.event_id),
        )
        job = Jobs.read(conn, self.event_id)
        assert job is not None
        body = status_object(job, op, records)
        self.work = None  # (what it held is no longer needed: the records are in their file)
        return status, body, body


def records_found(op: Operation) -> int | None:
    """A bulk job's records: found so far while it runs, written once it completed; None for one
    that ended otherwise (it wrote none)."""
    if op.status is Status.COMPLETED:
        records = op.result.get("records")
        return records if isinstance(records, int) else None
    if not op.done and isinstance(op.hook, BulkHook) and op.hook.work is not None:
        return op.hook.work.records
    return None


def status_object(job: Job, op: Operation | None, records: int) -> dict[str, Any]:
    """What the bulk API says of a job (its status route, its listing, its callback)."""
    status = job.status
    if op is not None and status is JobStatus.CREATED:
        # (the job's end is stored with it once the operation's is: an operation that has just
        # ended reads as still running until then, never as CREATED again)
        started = op.status is not Status.NOT_STARTED
        status = JobStatus.RUNNING if started else JobStatus.CREATED
        if op.cancel_requested:
            status = JobStatus.CANCELLATION_PENDING
    body: dict[str, Any] = {
        "id": job.id,
        "status": status.value,
        "objectName": job.object_name,
        "recordsCount": records,
        "recordsFailedCount": job.records_failed,
        "jobDirection": "DOWNLOAD",
        "createdDate": iso(job.created_ns),
        "statusMessage": job.message,
        # (the sandbox's own: how far the job has come, as the operations engine counts it)
        "percentComplete": op.percent if op is not None else 100 if status is JobStatus.COMPLETED else 0,
    }
    if job.completed_ns:
        body["completionTime"] = iso(job.completed_ns)
    return body


class Jobs:
    def __init__(self, store: Store, operations: Operations, events: Events, deliveries: Deliveries) -> None:
        self.store = store
        self.operations = operations
        self.events = events
        self.deliveries = deliveries

    async def open(self) -> None:
        """End the jobs a stop cut off (their operations are Failed by now) and send their
        callbacks; drop the jobs that ended long ago. Before `Events.open`, which would take them
        for asynchronous requests."""
        for pending in await asyncio.to_thread(self._recover):
            self.deliveries.schedule(pending)

    # ---- reading --------------------------------------------------------------------------

    @staticmethod
    def read(conn: sqlite3.Connection, job_id: int) -> Job | None:
        row = conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM bulk_jobs j JOIN events e ON e.id = j.id WHERE j.id = ?", (job_id,)
        ).fetchone()
        return None if row is None else _job(row)

    def get(self, job_id: int, session_id: str) -> tuple[Job, Operation]:
        """A job of the session's, with its operation; 404 for another's, or once it expired;
        blocking."""
        with self.store.lock:
            job = self.read(self.store.conn, job_id)
        op = self.operations.lookup(job.operation) if job is not None else None
        if job is None or job.session_id != session_id:
            raise NotFound(f"No bulk job with id {job_id}.", title="Bulk job not found.")
        if op is None:
            raise NotFound(
                f"Bulk job {job_id} has expired: a job and its records are kept "
                f"{self.operations.tokens.ttl_ns / 1e9:g} seconds after it ends.",
                title="Bulk job expired.",
            )
        return job, op

    def of_session(self, session_id: str) -> list[tuple[Job, Operation]]:
        """The session's jobs that have not expired, newest first; blocking."""
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM bulk_jobs j JOIN events e ON e.id = j.id"
                " WHERE e.session_id = ? ORDER BY j.id DESC",
                (session_id,),
            ).fetchall()
        found = [(job, self.operations.lookup(job.operation)) for job in map(_job, rows)]
        return [(job, op) for job, op in found if op is not None]

    def status(self, job: Job, op: Operation) -> dict[str, Any]:
        found = records_found(op)
        return status_object(job, op, job.records if found is None else found)

    # ---- starting over ----------------------------------------------------------------------

    def _recover(self) -> list[Pending]:
        scheduled = []
        now = time.time_ns()
        with self.store.lock:
            # (the event goes, and the job with it)
            self.store.conn.execute(
                "DELETE FROM events WHERE id IN"
                " (SELECT id FROM bulk_jobs WHERE completed_ns != 0 AND completed_ns < ?)",
                (now - JOB_KEEP_NS,),
            )
            ids = [
                row[0]
                for row in self.store.conn.execute(
                    "SELECT id FROM bulk_jobs WHERE status = ?", (JobStatus.CREATED.value,)
                )
            ]
        for job_id in ids:
            with self.store.transaction() as conn:
                job = self.read(conn, job_id)
                assert job is not None
                # (its operation ended Failed, interrupted, as the engine read it back; its
                # records were never published, so the job's own words say so)
                op = self.operations.lookup(job.operation)
                finished_ns = now if op is None else op.finished_ns
                conn.execute(
                    "UPDATE bulk_jobs SET status = ?, message = ?, completed_ns = ? WHERE id = ?",
                    (JobStatus.FAILED.value, INTERRUPTED, finished_ns, job_id),
                )
                job = self.read(conn, job_id)
                assert job is not None
                body = status_object(job, op, 0)
                pending = self.events.record_end(conn, job_id, EventStatus.FAILED, body, body)
            if pending is not None:
                scheduled.append(pending)
        return scheduled
