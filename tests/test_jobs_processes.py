"""The job queue across processes: a `mailaccounts worker` killed mid-job and another one resuming the job,
and `mailaccounts jobs` for operators (both databases)."""

from __future__ import annotations

import os
import signal

from mailaccounts.app import build_spf_checker
from mailaccounts.settings import Settings
from orm.models import MailAccount
from resolvers.accounts import create_account
from resolvers.jobs import JobServices, JobStatus, task
from resolvers.spf import bulk_check_status, check_accounts
from resolvers.tokens import ensure_tenant
from tests.support.dns import LoopbackDnsServer, Zone
from tests.support.jobs import eventually, has_status, quick_runner, working
from tests.support.serve import run, worker_process
from tests.support.zones import ZONE, mail_domain
from web.request_id import request_id_bound


@task("tests.fails")
async def _fails(services: JobServices) -> None:
    raise RuntimeError("this job always fails")


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **extra}


async def test_a_bulk_check_resumes_on_another_worker_after_its_worker_was_killed(db: str, settings: Settings) -> None:
    """SIGKILL a worker in the middle of a bulk check: a second worker takes the job over once the first
    misses its heartbeats, checks only the accounts still unchecked, and the check finishes."""
    tenant = await ensure_tenant("acme")
    await create_account(tenant.id, "a@gut.example", "A")
    await create_account(tenant.id, "b@langsam.example", "B")
    # langsam.example does not answer at first: the first worker hangs on it (DNS_TIMEOUT 60 s).
    async with LoopbackDnsServer({**ZONE, "langsam.example": ["TIMEOUT"]}, negative_ttl=0) as dns_server:
        host, port = dns_server.address
        env = cli_env(db, DNS_NAMESERVERS=f"{host}:{port}", DNS_TIMEOUT="60", JOBS_STALLED_AFTER="3")
        runner = quick_runner(db)
        async with runner.open():
            started = await check_accounts(tenant.id, build_spf_checker(settings, runner), wait=False)
            (job,) = await runner.jobs()

            async def stuck_on_the_slow_domain() -> bool:
                progress = await bulk_check_status(tenant.id, started.started_at)
                return progress.checked == 1 and dns_server.stats.questions[("langsam.example.", "TXT")] > 0

            async with worker_process(env) as first:
                await eventually(stuck_on_the_slow_domain, timeout=60)
                assert await has_status(runner, job.id, JobStatus.DOING)
                first.send_signal(signal.SIGKILL)
                await first.wait()
            dns_server.zone = Zone({**ZONE, **mail_domain("langsam.example", "v=spf1 mx include:_spf.aranes.de ~all")})

            async with worker_process(env) as second:

                async def finished() -> bool:
                    return (await bulk_check_status(tenant.id, started.started_at)).finished

                await eventually(finished, timeout=60)
                await eventually(lambda: has_status(runner, job.id, JobStatus.SUCCEEDED))
                second.send_signal(signal.SIGTERM)
                assert await second.wait() == 0
    assert dns_server.stats.questions[("gut.example.", "TXT")] == 1  # resumed, not started over
    assert await MailAccount.filter(tenant_id=tenant.id).order_by("email").values_list("spf_ok", flat=True) == [
        True,
        True,
    ]


async def test_operators_list_retry_and_cancel_jobs_with_the_cli(db: str, settings: Settings) -> None:
    """`jobs list` shows each job with its state and the request id that started it; `jobs retry` queues a
    failed job again, `jobs cancel` cancels a waiting one; a job in the wrong state is refused (exit 2)."""
    runner = quick_runner(db)
    async with working(runner, settings):
        with request_id_bound("req-operator-1"):
            failed = await runner.enqueue("tests.fails", {})
        await eventually(lambda: has_status(runner, failed, JobStatus.FAILED))
    async with runner.open():
        waiting = await runner.enqueue("tests.fails", {})
    env = cli_env(db)

    lines = run("jobs", "list", env=env).stdout.splitlines()
    assert [line.split("\t")[:5] for line in lines] == [
        [str(failed), "failed", "tests.fails", "attempts 1", "request req-operator-1"],
        [str(waiting), "todo", "tests.fails", "attempts 0", "request -"],
    ]
    assert run("jobs", "retry", str(failed), env=env).stdout == f"job {failed} queued again\n"
    assert run("jobs", "cancel", str(waiting), env=env).stdout == f"job {waiting} cancelled\n"
    refused = run("jobs", "retry", str(waiting), env=env, check=False)
    assert (refused.returncode, refused.stderr) == (2, f"mailaccounts: job {waiting} is cancelled, not failed\n")
    async with runner.open():
        assert {job.id: job.status for job in await runner.jobs()} == {
            failed: JobStatus.TODO,
            waiting: JobStatus.CANCELLED,
        }
