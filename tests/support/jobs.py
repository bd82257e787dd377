"""Running the job queue in tests: a worker on the test's loop, and waiting for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from mailaccounts.app import build_spf_checker
from mailaccounts.jobs import JobRunner, build_job_runner
from mailaccounts.settings import Settings
from resolvers.jobs import JobServices, JobStatus
from resolvers.spf import SpfChecker

__all__ = ["eventually", "has_status", "quick_runner", "working"]


async def eventually(condition: Callable[[], Any], timeout: float = 30) -> None:
    """Wait until `condition()` (sync or async) is true; the timeout only bounds a broken run."""
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


def quick_runner(database_url: str, **options: Any) -> JobRunner:
    """The database's runner looking for due jobs every 50 ms, so retries and waits cost the tests little."""
    return build_job_runner(database_url, poll_interval=0.05, concurrency=4, **options)


async def has_status(runner: JobRunner, job_id: int, status: JobStatus) -> bool:
    return any(job.id == job_id and job.status == status for job in await runner.jobs())


@asynccontextmanager
async def working(runner: JobRunner, settings: Settings, checker: SpfChecker | None = None) -> AsyncIterator[JobRunner]:
    """`runner` open with a worker running on this loop for the block, checking SPF with `checker` (default:
    one per `settings`)."""
    async with runner.open():
        services = JobServices(spf_checker=checker or build_spf_checker(settings, runner))
        worker = asyncio.create_task(runner.work(services))
        try:
            yield runner
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
