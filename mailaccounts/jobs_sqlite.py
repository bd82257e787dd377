"""The in-process job runner for SQLite: procrastinate's semantics on a `job_queue` table.

What matters of procrastinate is kept: a job is a row (so it survives a restart and `mailaccounts jobs`
sees it), a claim is one atomic UPDATE, jobs sharing a `lock` run one after another, a `queueing_lock`
lets one job wait at a time, retries wait the task's backoff, periodic jobs are unique per period, and
a job whose runner stopped beating its heartbeat is picked up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from mailaccounts.jobs import (
    KEEP_FAILED_HOURS,
    KEEP_FINISHED_HOURS,
    PERIODIC_REQUEST_ID,
    REQUEST_ID_ARG,
    JobRunner,
    run_task,
    split_request_id,
)
from resolvers.jobs import TASKS, JobError, JobRecord, JobServices, JobStatus, Periodic

__all__ = ["SCHEMA", "InProcessRunner"]

log = logging.getLogger("mailaccounts.jobs")

SCHEMA = """
CREATE TABLE IF NOT EXISTS job_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'todo',
    attempts INTEGER NOT NULL DEFAULT 0,
    lock TEXT,
    queueing_lock TEXT,
    periodic_key TEXT UNIQUE,
    scheduled_at REAL NOT NULL,
    heartbeat_at REAL,
    abort_requested INTEGER NOT NULL DEFAULT 0,
    finished_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS job_queue_waiting_lock ON job_queue (queueing_lock) WHERE status = 'todo';
CREATE INDEX IF NOT EXISTS job_queue_status ON job_queue (status, scheduled_at);
"""

# The first waiting job that may start: due, and no job of its lock running or queued before it.
_CLAIM = """
UPDATE job_queue SET status = 'doing', heartbeat_at = ?
WHERE id = (
    SELECT j.id FROM job_queue j
    WHERE j.status = 'todo' AND j.scheduled_at <= ?
      AND (j.lock IS NULL OR NOT EXISTS (
          SELECT 1 FROM job_queue o
          WHERE o.lock = j.lock AND (o.status = 'doing' OR (o.status = 'todo' AND o.id < j.id))
      ))
    ORDER BY j.id LIMIT 1
)
RETURNING id, task, args, attempts
"""


def _now() -> float:
    return time.time()


class InProcessRunner(JobRunner):
    """Runs the registered tasks on this process's event loop, from the `job_queue` table."""

    # An enqueue in this process wakes the runner at once; this is for other processes' jobs and retries.
    default_poll_interval = 1.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._wake = asyncio.Event()

    @staticmethod
    def _db() -> BaseDBAsyncClient:
        client: BaseDBAsyncClient = connections.get("default")
        return client

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        # The table lives in the service's own SQLite database, which the caller has opened.
        yield

    async def apply_schema(self) -> None:
        await self._db().execute_script(SCHEMA)

    async def enqueue(
        self, task: str, args: Mapping[str, Any], *, lock: str | None = None, queueing_lock: str | None = None
    ) -> int:
        stored = self.job_args(task, args)
        try:
            rows = await self._db().execute_query_dict(
                "INSERT INTO job_queue (task, args, lock, queueing_lock, scheduled_at) VALUES (?, ?, ?, ?, ?) "
                "RETURNING id",
                [task, json.dumps(stored), lock, queueing_lock, _now()],
            )
        except IntegrityError:
            raise JobError(f"a job with queueing lock {queueing_lock!r} is waiting already") from None
        self._wake.set()
        return int(rows[0]["id"])

    async def jobs(self, status: JobStatus | None = None) -> Sequence[JobRecord]:
        query = "SELECT id, task, status, attempts, args, scheduled_at FROM job_queue"
        rows = await self._db().execute_query_dict(
            query + (" WHERE status = ?" if status else "") + " ORDER BY id", [status.value] if status else []
        )
        records = []
        for row in rows:
            args, request_id = split_request_id(json.loads(row["args"]))
            records.append(
                JobRecord(
                    id=row["id"],
                    task=row["task"],
                    status=JobStatus(row["status"]),
                    attempts=row["attempts"],
                    args=args,
                    request_id=request_id,
                    scheduled_at=datetime.fromtimestamp(row["scheduled_at"], UTC),
                )
            )
        return records

    async def _status(self, job_id: int) -> JobStatus:
        rows = await self._db().execute_query_dict("SELECT status FROM job_queue WHERE id = ?", [job_id])
        if not rows:
            raise JobError(f"no job {job_id}")
        return JobStatus(rows[0]["status"])

    async def retry(self, job_id: int) -> None:
        rows = await self._db().execute_query_dict(
            "UPDATE job_queue SET status = 'todo', attempts = attempts + 1, scheduled_at = ?, finished_at = NULL "
            "WHERE id = ? AND status = 'failed' RETURNING id",
            [_now(), job_id],
        )
        if not rows:
            raise JobError(f"job {job_id} is {await self._status(job_id)}, not failed")
        self._wake.set()

    async def cancel(self, job_id: int) -> JobStatus:
        db = self._db()
        if await db.execute_query_dict(
            "UPDATE job_queue SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'todo' RETURNING id",
            [_now(), job_id],
        ):
            return JobStatus.CANCELLED
        if await db.execute_query_dict(
            "UPDATE job_queue SET abort_requested = 1 WHERE id = ? AND status = 'doing' RETURNING id", [job_id]
        ):
            return JobStatus.DOING
        raise JobError(f"job {job_id} is {await self._status(job_id)} already")

    async def work(self, services: JobServices) -> None:
        running: dict[int, asyncio.Task[None]] = {}
        side = [
            asyncio.create_task(self._beat(running)),
            asyncio.create_task(self._schedule()),
            asyncio.create_task(self._prune()),
        ]
        try:
            while True:
                await self._recover(exclude=running)
                await self._stop_cancelled(running)
                while len(running) < self.concurrency and (claimed := await self._claim()):
                    job_id = int(claimed["id"])
                    running[job_id] = asyncio.create_task(self._run(claimed, services, running))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
        finally:
            for side_task in side:
                side_task.cancel()
            jobs = list(running.values())
            for job in jobs:
                job.cancel()
            await asyncio.gather(*side, *jobs, return_exceptions=True)

    async def _claim(self) -> dict[str, Any] | None:
        now = _now()
        rows = await self._db().execute_query_dict(_CLAIM, [now, now])
        return dict(rows[0]) if rows else None

    async def _run(
        self, claimed: Mapping[str, Any], services: JobServices, running: dict[int, asyncio.Task[None]]
    ) -> None:
        job_id, attempts = int(claimed["id"]), int(claimed["attempts"])
        db = self._db()
        try:
            await run_task(claimed["task"], services, json.loads(claimed["args"]), job_id=job_id, attempts=attempts)
        except asyncio.CancelledError:
            # Asked to stop (`jobs cancel`) or the runner stops: the job ends aborted, or waits for the next start.
            aborted = await db.execute_query_dict("SELECT abort_requested FROM job_queue WHERE id = ?", [job_id])
            if aborted and aborted[0]["abort_requested"]:
                await self._finish(job_id, JobStatus.ABORTED)
            else:
                await db.execute_query(
                    "UPDATE job_queue SET status = 'todo' WHERE id = ? AND status = 'doing'", [job_id]
                )
            raise
        except Exception:
            task = TASKS.get(claimed["task"])
            retry_in = task.retry_delay(attempts + 1) if task else None
            if retry_in is None:
                await self._finish(job_id, JobStatus.FAILED)
            else:
                await db.execute_query(
                    "UPDATE job_queue SET status = 'todo', attempts = attempts + 1, scheduled_at = ? "
                    "WHERE id = ? AND status = 'doing'",
                    [_now() + retry_in, job_id],
                )
        else:
            await self._finish(job_id, JobStatus.SUCCEEDED)
        finally:
            running.pop(job_id, None)
            self._wake.set()

    async def _finish(self, job_id: int, status: JobStatus) -> None:
        await self._db().execute_query(
            "UPDATE job_queue SET status = ?, finished_at = ?, attempts = attempts + 1 "
            "WHERE id = ? AND status = 'doing'",
            [status.value, _now(), job_id],
        )

    async def _recover(self, *, exclude: Mapping[int, object]) -> None:
        """Jobs of a runner that stopped beating go back to the queue (one asked to stop ends aborted)."""
        stale = _now() - self.stalled_after
        ours = ",".join(str(job_id) for job_id in exclude) or "-1"
        where = f"status = 'doing' AND heartbeat_at < ? AND id NOT IN ({ours})"
        db = self._db()
        await db.execute_query(
            f"UPDATE job_queue SET status = 'aborted', finished_at = ? WHERE {where} AND abort_requested",
            [_now(), stale],
        )
        recovered = await db.execute_query_dict(
            f"UPDATE job_queue SET status = 'todo', attempts = attempts + 1 WHERE {where} RETURNING id", [stale]
        )
        if recovered:
            log.warning("jobs %s of a stopped runner are queued again", ", ".join(str(r["id"]) for r in recovered))

    async def _stop_cancelled(self, running: Mapping[int, asyncio.Task[None]]) -> None:
        """Stop the running jobs an operator cancelled (`mailaccounts jobs cancel`)."""
        if not running:
            return
        ids = ",".join(str(job_id) for job_id in running)
        for row in await self._db().execute_query_dict(
            f"SELECT id FROM job_queue WHERE id IN ({ids}) AND abort_requested"
        ):
            if job := running.get(row["id"]):
                job.cancel()

    async def _beat(self, running: Mapping[int, asyncio.Task[None]]) -> None:
        """Renew the heartbeat of this runner's jobs, so no other runner takes them for orphans."""
        db = self._db()
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if running:
                ids = ",".join(str(job_id) for job_id in running)
                await db.execute_query(f"UPDATE job_queue SET heartbeat_at = ? WHERE id IN ({ids})", [_now()])

    async def _schedule(self) -> None:
        """Enqueue each periodic task once per period: the period's start time makes the job unique."""
        if not self.periodic:
            return
        while True:
            now = _now()
            for periodic in self.periodic:
                await self._enqueue_periodic(periodic, math.floor(now / periodic.every) * periodic.every)
            next_start = min(math.floor(now / p.every) * p.every + p.every for p in self.periodic)
            await asyncio.sleep(max(next_start - _now(), 0) + 0.01)

    async def _enqueue_periodic(self, periodic: Periodic, start: int) -> None:
        args = {**periodic.args, REQUEST_ID_ARG: PERIODIC_REQUEST_ID}
        # OR IGNORE: this period's job exists already, or the last one still waits (its queueing lock).
        rows = await self._db().execute_query_dict(
            "INSERT OR IGNORE INTO job_queue (task, args, lock, queueing_lock, periodic_key, scheduled_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            [periodic.task, json.dumps(args), periodic.lock, periodic.lock, f"{periodic.task}@{start}", float(start)],
        )
        if rows:
            self._wake.set()

    async def _prune(self) -> None:
        """Forget finished jobs after KEEP_FINISHED_HOURS, failed ones after KEEP_FAILED_HOURS (hourly)."""
        db = self._db()
        while True:
            now = _now()
            await db.execute_query(
                "DELETE FROM job_queue WHERE status IN ('succeeded', 'cancelled', 'aborted') AND finished_at < ?",
                [now - KEEP_FINISHED_HOURS * 3600],
            )
            await db.execute_query(
                "DELETE FROM job_queue WHERE status = 'failed' AND finished_at < ?", [now - KEEP_FAILED_HOURS * 3600]
            )
            await asyncio.sleep(3600)
