"""Background jobs: the tasks operations hand off, and the one queue interface both runners implement.

A task is a plain async function of JSON arguments, registered under a stable name with `@task`. The
wiring (mailaccounts/) runs the registered tasks on procrastinate (PostgreSQL) or in-process (SQLite);
operations only see `JobQueue`, so a task has one code path whichever runner executes it.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from resolvers.spf import SpfChecker

__all__ = [
    "TASKS",
    "TASK_MODULES",
    "JobError",
    "JobQueue",
    "JobRecord",
    "JobServices",
    "JobStatus",
    "Periodic",
    "Task",
    "load_tasks",
    "task",
]

# A retry never waits longer than this, however many runs failed before.
MAX_RETRY_WAIT = 3600.0


@dataclass(frozen=True)
class JobServices:
    """What a running task may use, one of each per process; the wiring builds it."""

    spf_checker: SpfChecker


TaskFunction = Callable[..., Awaitable[None]]
F = TypeVar("F", bound=TaskFunction)


@dataclass(frozen=True)
class Task:
    """A registered task: `run(services, **args)`, retried `retries` times with doubling waits."""

    name: str
    run: TaskFunction
    retries: int = 0
    retry_wait: float = 10.0

    def retry_delay(self, failed_runs: int) -> float | None:
        """Seconds to wait after the `failed_runs`-th failed run (1, 2, …), or None when the task gives up."""
        if failed_runs > self.retries:
            return None
        return min(self.retry_wait * 2.0 ** (failed_runs - 1), MAX_RETRY_WAIT)


# Every task by name; a runner executes only what is registered here.
TASKS: dict[str, Task] = {}
# The modules whose import registers the service's tasks (`@task`); a new task's module goes here.
TASK_MODULES = ("resolvers.spf", "resolvers.account_jobs")


def load_tasks() -> Mapping[str, Task]:
    """Every task of the service, its modules imported (a worker must know all before it runs one)."""
    for module in TASK_MODULES:
        importlib.import_module(module)
    return TASKS


def task(name: str, *, retries: int = 0, retry_wait: float = 10.0) -> Callable[[F], F]:
    """Register the decorated `async def f(services, **args)` as task `name` (stable: it is stored in jobs)."""

    def register(func: F) -> F:
        if name in TASKS:
            raise ValueError(f"task {name!r} is registered twice")
        TASKS[name] = Task(name, func, retries, retry_wait)
        return func

    return register


@dataclass(frozen=True)
class Periodic:
    """A task the runners start once per period across all instances (and never two runs at once).

    `every` is in seconds and must divide a minute, an hour (whole minutes) or a day (whole hours), so
    that every instance computes the same start times.
    """

    task: str
    every: int
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cron  # noqa: B018 -- refuse a period the runners cannot share at construction

    @property
    def cron(self) -> str:
        """The period as a cron expression (with a seconds column below a minute), aligned to the clock."""
        every = self.every
        if 0 < every < 60 and 60 % every == 0:
            return f"* * * * * */{every}"
        if every % 60 == 0 and 3600 % every == 0:
            return "0 * * * *" if every == 3600 else f"*/{every // 60} * * * *"
        if every % 3600 == 0 and 86400 % every == 0:
            return "0 0 * * *" if every == 86400 else f"0 */{every // 3600} * * *"
        raise ValueError(f"period {every} s does not divide a minute, an hour or a day")

    @property
    def lock(self) -> str:
        return f"periodic:{self.task}"


class JobStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABORTED = "aborted"


@dataclass(frozen=True)
class JobRecord:
    """One job as the operator sees it (`mailaccounts jobs list`)."""

    id: int
    task: str
    status: JobStatus
    attempts: int
    args: Mapping[str, Any]
    request_id: str
    scheduled_at: datetime | None


class JobError(Exception):
    """An operator's request on a job that cannot be done (unknown id, wrong state); the message says why."""


class JobQueue(Protocol):
    """The queue as operations and operators use it; both runners implement it."""

    async def enqueue(
        self, task: str, args: Mapping[str, Any], *, lock: str | None = None, queueing_lock: str | None = None
    ) -> int:
        """Store a job for `task` and return its id; it records the request id of the caller.

        `lock`: jobs with the same lock never run at the same time. `queueing_lock`: at most one job with
        it waits at a time (a second enqueue raises JobError).
        """
        ...

    async def jobs(self, status: JobStatus | None = None) -> Sequence[JobRecord]:
        """The stored jobs, oldest first."""
        ...

    async def retry(self, job_id: int) -> None:
        """Run a failed job once more, now; JobError when it is unknown or not failed."""
        ...

    async def cancel(self, job_id: int) -> JobStatus:
        """Cancel a waiting job, or ask a running one to stop; JobError when it has ended already."""
        ...
