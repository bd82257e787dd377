"""The job runners behind `resolvers.jobs.JobQueue`: procrastinate on PostgreSQL, in-process on SQLite.

Both keep jobs in the database (procrastinate's tables, `job_queue` on SQLite), record the request id
of what enqueued a job and run its task with that id bound, retry with the task's backoff, start
periodic tasks once per period and give the jobs of a worker that went away to another one.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mailaccounts.settings import Settings
from resolvers.account_jobs import RESUME_OPERATIONS
from resolvers.jobs import TASKS, JobError, JobRecord, JobServices, JobStatus, Periodic, load_tasks
from resolvers.spf import RECHECK_STALE
from web.request_id import current_request_id, request_id_bound

__all__ = ["REQUEST_ID_ARG", "JobRunner", "apply_job_schema", "build_job_runner", "job_runner_for", "run_task"]

log = logging.getLogger("mailaccounts.jobs")

# The reserved job argument holding the request id of what enqueued the job; no task takes it.
REQUEST_ID_ARG = "_request_id"
# The request id of the jobs a periodic schedule starts.
PERIODIC_REQUEST_ID = "periodic"
# How often the periodic SPF re-check looks for stale accounts (SPF_RECHECK_HOURS decides what is stale).
RECHECK_EVERY = 600
# How often stalled background merges and deletes are looked for (resolvers/account_jobs.py).
RESUME_OPERATIONS_EVERY = 300
# Finished jobs are kept this long for `mailaccounts jobs list`; failed ones longer, for the operator.
KEEP_FINISHED_HOURS = 7 * 24
KEEP_FAILED_HOURS = 30 * 24


class JobRunner(ABC):
    """A `JobQueue` plus what the wiring needs: connections, the schema and a worker loop."""

    # Seconds between looks for due jobs that nothing announced (retries after their wait, another process's).
    default_poll_interval = 2.0

    def __init__(
        self,
        *,
        periodic: Sequence[Periodic] = (),
        concurrency: int = 4,
        stalled_after: float = 30.0,
        poll_interval: float | None = None,
    ) -> None:
        self.periodic = tuple(periodic)
        self.concurrency = concurrency
        self.stalled_after = stalled_after
        self.poll_interval = self.default_poll_interval if poll_interval is None else poll_interval

    @property
    def heartbeat_interval(self) -> float:
        """A worker shows it is alive this often; three missed beats and its jobs go to another worker."""
        return self.stalled_after / 3

    @abstractmethod
    def open(self) -> AbstractAsyncContextManager[None]:
        """Connections for enqueueing and the operator commands, for the duration of the block."""

    @abstractmethod
    async def apply_schema(self) -> None:
        """Create or upgrade the runner's tables; does nothing when they are current (`mailaccounts migrate`)."""

    @abstractmethod
    async def work(self, services: JobServices) -> None:
        """Run a worker (WORKER_CONCURRENCY jobs at a time) until cancelled; running jobs go back to the queue."""

    @abstractmethod
    async def enqueue(
        self, task: str, args: Mapping[str, Any], *, lock: str | None = None, queueing_lock: str | None = None
    ) -> int: ...

    @abstractmethod
    async def jobs(self, status: JobStatus | None = None) -> Sequence[JobRecord]: ...

    @abstractmethod
    async def retry(self, job_id: int) -> None: ...

    @abstractmethod
    async def cancel(self, job_id: int) -> JobStatus: ...

    def job_args(self, task: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """The stored arguments: the task's plus the caller's request id; JobError for an unknown task."""
        if task not in TASKS:
            raise JobError(f"no task {task!r}")
        if REQUEST_ID_ARG in args:
            raise JobError(f"{REQUEST_ID_ARG} is reserved")
        return {**args, REQUEST_ID_ARG: current_request_id()}


def split_request_id(args: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """A stored job's task arguments and the request id that started it."""
    rest = dict(args)
    return rest, str(rest.pop(REQUEST_ID_ARG, "-"))


async def run_task(
    task_name: str, services: JobServices, args: Mapping[str, Any], *, job_id: int, attempts: int
) -> None:
    """Run one job's task with the request id of what started it bound, so its log lines carry that id.

    A failure is logged under the id: as a warning when the task will be retried, else as an error.
    """
    task = TASKS.get(task_name)
    task_args, request_id = split_request_id(args)
    with request_id_bound(request_id):
        if task is None:
            log.error("job %d: no task %r in this version; it fails", job_id, task_name)
            raise JobError(f"no task {task_name!r}")
        try:
            await task.run(services, **task_args)
        except asyncio.CancelledError:
            raise
        except Exception:
            retry_in = task.retry_delay(attempts + 1)
            if retry_in is None:
                log.exception("job %d (%s) failed after %d runs; it stays failed", job_id, task_name, attempts + 1)
            else:
                log.warning("job %d (%s) failed; retry in %.0f s", job_id, task_name, retry_in, exc_info=True)
            raise


def periodic_tasks(settings: Settings, *, recheck_every: int = RECHECK_EVERY) -> list[Periodic]:
    """The periodic tasks: the resume of stalled merges and deletes, the SPF re-check with SPF_RECHECK_HOURS."""
    tasks = [Periodic(RESUME_OPERATIONS, RESUME_OPERATIONS_EVERY)]
    if settings.spf_recheck_hours:
        tasks.append(Periodic(RECHECK_STALE, recheck_every, {"older_than_hours": settings.spf_recheck_hours}))
    return tasks


# Query options of DATABASE_URL that only Tortoise/asyncpg understand; libpq refuses unknown ones.
_TORTOISE_ONLY_OPTIONS = frozenset({"minsize", "maxsize", "max_queries", "max_inactive_connection_lifetime", "ssl"})


def psycopg_conninfo(database_url: str) -> str:
    """DATABASE_URL as libpq takes it: `postgresql://…`, without Tortoise's pool options.

    libpq options (`sslmode`, `sslrootcert`, `application_name`, …) are kept, so procrastinate's
    connections are as secure as Tortoise's; asyncpg's `ssl=true|require` becomes `sslmode=require`.
    """
    parts = urlsplit(database_url)
    options = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(name, value) for name, value in options if name not in _TORTOISE_ONLY_OPTIONS]
    ssl = dict(options).get("ssl", "").lower()
    if ssl in ("true", "require") and not any(name == "sslmode" for name, _ in kept):
        kept.append(("sslmode", "require"))
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(kept, safe="/:")))


def build_job_runner(database_url: str, **options: Any) -> JobRunner:
    """The runner for the database: procrastinate on PostgreSQL, the in-process runner on SQLite.

    `options` are JobRunner's: periodic, concurrency, stalled_after, poll_interval.
    """
    load_tasks()
    if database_url.startswith("sqlite://"):
        from mailaccounts.jobs_sqlite import InProcessRunner

        return InProcessRunner(**options)
    from mailaccounts.jobs_postgres import ProcrastinateRunner

    return ProcrastinateRunner(psycopg_conninfo(database_url), **options)


def job_runner_for(settings: Settings, *, recheck_every: int = RECHECK_EVERY) -> JobRunner:
    """The process's runner with WORKER_CONCURRENCY, JOBS_STALLED_AFTER and the periodic tasks."""
    return build_job_runner(
        settings.database_url,
        periodic=periodic_tasks(settings, recheck_every=recheck_every),
        concurrency=settings.worker_concurrency,
        stalled_after=float(settings.jobs_stalled_after),
    )


async def apply_job_schema(database_url: str) -> None:
    """Create or upgrade the job tables of the database's runner (the Tortoise context must be open)."""
    runner = build_job_runner(database_url)
    async with runner.open():
        await runner.apply_schema()
