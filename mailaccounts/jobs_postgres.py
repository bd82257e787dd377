"""The job runner on PostgreSQL: procrastinate, with its tables in the service's database.

procrastinate brings what several instances need: a job is fetched by one worker only (FOR UPDATE SKIP
LOCKED), LISTEN/NOTIFY wakes workers at once, `lock` serialises jobs, `queueing_lock` keeps one waiting,
and a periodic job is deferred once per timestamp however many workers run. Added here: the tasks'
backoff as a retry strategy, the request id, and giving the jobs of a dead worker to a live one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as procrastinate_errors
from procrastinate.job_context import JobContext
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.schema import SchemaManager

from mailaccounts.jobs import (
    KEEP_FAILED_HOURS,
    KEEP_FINISHED_HOURS,
    PERIODIC_REQUEST_ID,
    REQUEST_ID_ARG,
    JobRunner,
    run_task,
    split_request_id,
)
from resolvers.jobs import TASKS, JobError, JobRecord, JobServices, JobStatus, Task

__all__ = ["ProcrastinateRunner"]

log = logging.getLogger("mailaccounts.jobs")
# Every App announces its built-in tasks at INFO: noise on each `mailaccounts` command.
logging.getLogger("procrastinate.blueprints").setLevel(logging.WARNING)

# Running jobs of a worker whose heartbeat is older go back to the queue, all in one statement: a job
# another worker fetched meanwhile has a live worker id and is left alone.
_RECOVER = """
WITH recovered AS (
    UPDATE procrastinate_jobs
       SET status = 'todo', attempts = attempts + 1, scheduled_at = now()
     WHERE status = 'doing' AND NOT abort_requested
       AND (worker_id IS NULL OR worker_id IN (
           SELECT id FROM procrastinate_workers
            WHERE last_heartbeat < now() - make_interval(secs => %(seconds)s)))
    RETURNING id
)
SELECT id, pg_notify('procrastinate_any_queue_v1', json_build_object('type', 'job_inserted', 'job_id', id)::text)
  FROM recovered
"""
# The installed procrastinate version is recorded on its jobs table, so `migrate` knows what to upgrade.
_VERSION_COMMENT = "procrastinate {}"
_MIGRATION_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)_(\d+)_.*\.sql$")
# A stopping worker lets running jobs finish this long; then they are aborted and retried on the next start.
SHUTDOWN_GRACE = 5.0


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


class _Backoff(BaseRetryStrategy):
    """The task's own retry rule (`Task.retry_delay`), the same the in-process runner follows."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def get_retry_decision(self, *, exception: BaseException, job: procrastinate.jobs.Job) -> RetryDecision | None:
        delay = self.task.retry_delay(job.attempts + 1)
        if delay is None:
            return None
        return RetryDecision(retry_at=procrastinate.utils.utcnow() + timedelta(seconds=delay))


class ProcrastinateRunner(JobRunner):
    """The registered tasks as procrastinate tasks of one App, with its own psycopg pool."""

    def __init__(self, conninfo: str, **options: Any) -> None:
        super().__init__(**options)
        self.conninfo = conninfo
        # The worker's fetches, heartbeats and LISTEN connection, plus enqueueing by the process.
        connector = procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=self.concurrency + 3)
        self.app = procrastinate.App(connector=connector)
        self._services: JobServices | None = None
        periodic_names = {periodic.task for periodic in self.periodic}
        registered = {name: self._register(task, periodic=name in periodic_names) for name, task in TASKS.items()}
        for periodic in self.periodic:
            self.app.periodic(
                cron=periodic.cron,
                task_kwargs={**periodic.args, REQUEST_ID_ARG: PERIODIC_REQUEST_ID},
                lock=periodic.lock,
                queueing_lock=periodic.lock,
            )(registered[periodic.task])

    def _register(self, task: Task, *, periodic: bool) -> Any:
        async def run(context: JobContext, /, **args: Any) -> None:
            if periodic:
                args.pop("timestamp", None)  # procrastinate adds the period's start
            assert self._services is not None, "a job ran outside work()"
            job_id = context.job.id or 0
            await run_task(task.name, self._services, args, job_id=job_id, attempts=context.job.attempts)

        return self.app.task(name=task.name, pass_context=True, retry=_Backoff(task))(run)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        async with self.app.open_async():
            yield

    async def apply_schema(self) -> None:
        """procrastinate's schema on the first migrate; on a newer procrastinate, its migrations since."""
        installed = importlib.metadata.version("procrastinate")
        async with await psycopg.AsyncConnection.connect(self.conninfo) as conn, conn.transaction():
            # Two instances migrating at once: the second waits, then finds the schema current.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('mailaccounts procrastinate schema'))")
            row = await (
                await conn.execute(
                    "SELECT to_regclass('procrastinate_jobs') IS NOT NULL, "
                    "obj_description(to_regclass('procrastinate_jobs'), 'pg_class')"
                )
            ).fetchone()
            present, comment = row if row else (False, None)
            if not present:
                await conn.execute(SchemaManager.get_schema())
            elif comment != _VERSION_COMMENT.format(installed):
                await self._migrate(conn, _version(comment or "0"), _version(installed))
            else:
                return
            await conn.execute(
                psycopg.sql.SQL("COMMENT ON TABLE procrastinate_jobs IS {}").format(
                    psycopg.sql.Literal(_VERSION_COMMENT.format(installed))
                )
            )

    @staticmethod
    async def _migrate(conn: psycopg.AsyncConnection[Any], since: tuple[int, ...], upto: tuple[int, ...]) -> None:
        folder = Path(SchemaManager.get_migrations_path())
        steps = sorted(
            (tuple(int(g) for g in match.groups()), path)
            for path in folder.glob("*.sql")
            if (match := _MIGRATION_NAME.match(path.name))
        )
        for step, path in steps:
            if since < step[:3] <= upto:
                log.info("applying procrastinate migration %s", path.name)
                await conn.execute(path.read_text(encoding="utf-8"))

    async def enqueue(
        self, task: str, args: Mapping[str, Any], *, lock: str | None = None, queueing_lock: str | None = None
    ) -> int:
        stored = self.job_args(task, args)
        try:
            deferrer = self.app.configure_task(task, allow_unknown=False, lock=lock, queueing_lock=queueing_lock)
            return await deferrer.defer_async(**stored)
        except procrastinate_errors.AlreadyEnqueued:
            raise JobError(f"a job with queueing lock {queueing_lock!r} is waiting already") from None

    async def jobs(self, status: JobStatus | None = None) -> Sequence[JobRecord]:
        listed = await self.app.job_manager.list_jobs_async(status=status.value if status else None)
        records = []
        for job in listed:
            args, request_id = split_request_id(job.task_kwargs)
            args.pop("timestamp", None)
            records.append(
                JobRecord(
                    id=job.id or 0,
                    task=job.task_name,
                    status=JobStatus(job.status or "todo"),
                    attempts=job.attempts,
                    args=args,
                    request_id=request_id,
                    scheduled_at=job.scheduled_at,
                )
            )
        return records

    async def _status(self, job_id: int) -> JobStatus:
        found = list(await self.app.job_manager.list_jobs_async(id=job_id))
        if not found:
            raise JobError(f"no job {job_id}")
        return JobStatus(found[0].status or "todo")

    async def retry(self, job_id: int) -> None:
        status = await self._status(job_id)
        if status != JobStatus.FAILED:
            raise JobError(f"job {job_id} is {status}, not failed")
        await self.app.job_manager.retry_job_by_id_async(job_id, retry_at=procrastinate.utils.utcnow())

    async def cancel(self, job_id: int) -> JobStatus:
        status = await self._status(job_id)
        if not await self.app.job_manager.cancel_job_by_id_async(job_id, abort=True):
            raise JobError(f"job {job_id} is {status} already")
        return JobStatus.CANCELLED if status == JobStatus.TODO else JobStatus.DOING

    async def work(self, services: JobServices) -> None:
        self._services = services
        worker = asyncio.create_task(
            self.app.run_worker_async(
                concurrency=self.concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=self.heartbeat_interval,
                stalled_worker_timeout=self.stalled_after,
                shutdown_graceful_timeout=SHUTDOWN_GRACE,
                fetch_job_polling_interval=self.poll_interval,
            )
        )
        side = asyncio.create_task(self._look_after())
        try:
            await worker
        finally:
            side.cancel()
            worker.cancel()
            await asyncio.gather(worker, side, return_exceptions=True)

    async def _look_after(self) -> None:
        """Every heartbeat: give the jobs of dead workers to live ones; hourly: forget old finished jobs."""
        connector = self.app.connector
        manager = self.app.job_manager
        pruned_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                rows = await connector.execute_query_all_async(_RECOVER, seconds=self.stalled_after)
                if rows:
                    log.warning("jobs %s of a stopped worker are queued again", ", ".join(str(r["id"]) for r in rows))
                if loop.time() - pruned_at > 3600:
                    await manager.delete_old_jobs(KEEP_FINISHED_HOURS, include_cancelled=True, include_aborted=True)
                    await manager.delete_old_jobs(KEEP_FAILED_HOURS, include_failed=True)
                    pruned_at = loop.time()
            except Exception:
                log.exception("looking after the job queue failed")
            await asyncio.sleep(self.heartbeat_interval)
