"""The job commands of `mailaccounts`: `worker` runs jobs, `jobs list|retry|cancel` is for operators."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from typing import Any

from procrastinate.exceptions import ConnectorException
from psycopg_pool import PoolTimeout
from tortoise.exceptions import OperationalError

from mailaccounts.cli import CommandError, _with_database
from mailaccounts.settings import Settings

__all__ = ["add_job_commands", "cmd_jobs", "cmd_worker"]

# The job tables missing or the database away: one line for the operator, not a traceback.
QUEUE_FAILURES = (ConnectorException, PoolTimeout, OperationalError)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run a job worker until SIGINT or SIGTERM; more of them on other machines share the work (PostgreSQL)."""
    from mailaccounts.app import build_spf_checker
    from mailaccounts.database import database
    from mailaccounts.jobs import job_runner_for
    from resolvers.jobs import JobServices

    runner = job_runner_for(settings)
    services = JobServices(spf_checker=build_spf_checker(settings, runner))

    async def work() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with database(settings.database_url), runner.open():
            if settings.database_url.startswith("sqlite://"):
                print("SQLite: `serve` runs jobs itself (JOBS_IN_PROCESS); this worker runs them beside it", flush=True)
            print(f"job worker running {settings.worker_concurrency} jobs at a time", flush=True)
            worker = asyncio.create_task(runner.work(services))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if worker.done():
                worker.result()  # it ended on its own: that is a failure, and its error says why
                raise CommandError("the job worker stopped")
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        return 0

    try:
        return asyncio.run(work())
    except OSError as exc:
        raise CommandError(f"cannot reach the database at DATABASE_URL: {exc}") from exc


def _describe(job: Any) -> str:
    scheduled = f"{job.scheduled_at:%Y-%m-%d %H:%M:%S}" if job.scheduled_at else "-"
    return (
        f"{job.id}\t{job.status}\t{job.task}\tattempts {job.attempts}\trequest {job.request_id}\t"
        f"scheduled {scheduled}\t{json.dumps(job.args, ensure_ascii=False, sort_keys=True)}"
    )


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from mailaccounts.jobs import build_job_runner
    from resolvers.jobs import JobError, JobStatus

    runner = build_job_runner(settings.database_url)

    async def listing() -> int:
        for job in await runner.jobs(JobStatus(args.status) if args.status else None):
            print(_describe(job))
        return 0

    async def retry() -> int:
        await runner.retry(args.id)
        print(f"job {args.id} queued again")
        return 0

    async def cancel() -> int:
        state = await runner.cancel(args.id)
        print(f"job {args.id} cancelled" if state == JobStatus.CANCELLED else f"job {args.id} asked to stop")
        return 0

    work = {"list": listing, "retry": retry, "cancel": cancel}[args.jobs_command]

    async def with_queue() -> int:
        try:
            async with runner.open():
                return await work()
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        except QUEUE_FAILURES as exc:
            reason = " ".join(str(exc.__cause__ or exc).split()) or type(exc).__name__
            raise CommandError(f"cannot read the job queue ({reason}): has `mailaccounts migrate` run?") from exc

    return asyncio.run(_with_database(settings, with_queue))


def add_job_commands(commands: Any) -> None:
    """`worker` and `jobs` on the command's subparsers."""
    from resolvers.jobs import JobStatus

    commands.add_parser(
        "worker", help="run background jobs (bulk SPF checks, periodic re-checks) until stopped"
    ).set_defaults(handler=cmd_worker)
    jobs = commands.add_parser("jobs", help="list, retry or cancel background jobs")
    jobs.set_defaults(handler=cmd_jobs)
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_commands.add_parser("list", help="list jobs, oldest first, with the request id that started each")
    listing.add_argument("--status", choices=[status.value for status in JobStatus])
    jobs_commands.add_parser("retry", help="run a failed job once more").add_argument("id", type=int)
    jobs_commands.add_parser("cancel", help="cancel a waiting job or stop a running one").add_argument("id", type=int)
