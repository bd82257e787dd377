"""SMTP intake benchmark: N messages of 10 KB over K connections, stored vs. an aiosmtpd that stores nothing.

Run: `.venv/bin/python -m bench.smtp.run --db sqlite|postgres [-n 3000] [-k 20] [--rounds 3] [--profile FILE]`.
The servers run in this process on one event loop, as in `mailaccounts smtp`; the clients run in a separate
process, so they do not take the server's CPU time slices. Ceiling and listener runs alternate; the ratio
is reported per round and as the median, with the CPU time this process spent per message.
PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) must allow
CREATE DATABASE; a scratch database is dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.scratch import scratch_database
from mailaccounts.database import database
from mailflow.listener import ListenerConfig, start_listener
from orm.models import Message
from resolvers.mailbox_changes import open_mailbox_changes

MAILBOX_DOMAIN = "mailbox.example.com"
MESSAGE_BYTES = 10 * 1024


class CeilingHandler:
    """Accepts every recipient and message, stores nothing: the cost of aiosmtpd alone."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK"


def message(i: int, rcpt: str) -> bytes:
    head = (
        f"From: Bench <bench@extern.example>\r\nTo: {rcpt}\r\nSubject: Nachricht {i}\r\n"
        f"Date: Tue, 03 Jun 2025 10:15:00 +0200\r\nMessage-ID: <bench-{i}-{uuid.uuid4().hex}@extern.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    body = line * ((MESSAGE_BYTES - len(head)) // len(line) + 1)
    return head + body[: MESSAGE_BYTES - len(head)]


async def _blast(port: int, rcpt: str, n: int, k: int) -> float:
    async def connection(numbers: range) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60, start_tls=False)
        await client.connect()
        try:
            for i in numbers:
                await client.sendmail("bench@extern.example", [rcpt], message(i, rcpt))
        finally:
            await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(connection(range(c, n, k)) for c in range(k)))
    return time.perf_counter() - start


def blast(port: int, rcpt: str, n: int, k: int) -> float:
    """In the client process: send n messages over k connections; the elapsed seconds."""
    return asyncio.run(_blast(port, rcpt, n, k))


@dataclass(frozen=True)
class Run:
    """One timed run: wall seconds for all messages and CPU seconds this (server) process used meanwhile."""

    seconds: float
    cpu_seconds: float


async def measure(pool: ProcessPoolExecutor, server: asyncio.Server, rcpt: str, n: int, k: int) -> Run:
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    cpu = time.process_time()
    try:
        seconds = await loop.run_in_executor(pool, blast, port, rcpt, n, k)
        return Run(seconds, time.process_time() - cpu)
    finally:
        server.close()
        await server.wait_closed()


async def main(kind: str, n: int, k: int, rounds: int, profile: str | None) -> None:
    from resolvers.accounts import create_account
    from resolvers.tokens import ensure_tenant

    profiler = cProfile.Profile() if profile else None
    load = os.getloadavg()[0]
    results: list[tuple[Run, Run]] = []
    # The listener as `mailaccounts smtp` runs it: its RCPT cache hears of account changes (mailbox_changes).
    async with scratch_database(kind) as url, database(url), open_mailbox_changes() as changes:
        tenant = await ensure_tenant("bench")
        account = await create_account(tenant.id, "bench@firma.example", "Bench")
        rcpt = f"p{account.mailbox_number}@{MAILBOX_DOMAIN}"
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=1) as pool:
            await loop.run_in_executor(pool, time.sleep, 0)  # start the client process before timing
            # Ceiling and listener alternate, so load from elsewhere on the machine hits both alike.
            for _ in range(rounds):
                ceiling = await loop.create_server(
                    lambda: SMTP(CeilingHandler(), hostname=MAILBOX_DOMAIN, loop=loop), "127.0.0.1", 0
                )
                ceiling_run = await measure(pool, ceiling, rcpt, n, k)
                listener = await start_listener(
                    # Every client of the benchmark is 127.0.0.1: the per-client limit must not throttle it.
                    ListenerConfig(
                        mailbox_domain=MAILBOX_DOMAIN,
                        port=0,
                        max_connections=max(k, 200),
                        max_connections_per_client=max(k, 200),
                    ),
                    changes,
                )
                if profiler:
                    profiler.enable()
                stored_run = await measure(pool, listener, rcpt, n, k)
                if profiler:
                    profiler.disable()
                results.append((ceiling_run, stored_run))
        stored = await Message.filter(account_id=account.id).count()
    assert stored == n * rounds, f"{stored} of {n * rounds} messages stored"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load:.2f} at start")
    print(f"database: {kind}; {n} messages of {MESSAGE_BYTES // 1024} KB over {k} connections, {rounds} rounds")
    # CPU per message is steadier than rates when other work shares the cores; "storing" is what the listener
    # costs this process beyond aiosmtpd (for PostgreSQL without the database server's own CPU).
    print("round  ceiling msg/s  stored msg/s  ratio   server CPU µs/msg: ceiling  stored  storing")
    ratios, storing = [], []
    for number, (ceiling_run, stored_run) in enumerate(results, 1):
        ratio = ceiling_run.seconds / stored_run.seconds
        ratios.append(ratio)
        ceiling_cpu, stored_cpu = ceiling_run.cpu_seconds / n * 1e6, stored_run.cpu_seconds / n * 1e6
        storing.append(stored_cpu - ceiling_cpu)
        print(
            f"{number:5}  {n / ceiling_run.seconds:13.0f}  {n / stored_run.seconds:12.0f}  {ratio:5.2f}  "
            f"{ceiling_cpu:26.0f}  {stored_cpu:6.0f}  {stored_cpu - ceiling_cpu:7.0f}"
        )
    print(
        f"median ratio: {statistics.median(ratios):.2f} of the ceiling (target >= 0.50); "
        f"median storing cost {statistics.median(storing):.0f} µs CPU per message"
    )
    if profiler and profile:
        profiler.dump_stats(profile)
        print(f"profile of the listener runs: {profile} (python -m pstats {profile})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("-n", type=int, default=3000, help="messages")
    parser.add_argument("-k", type=int, default=20, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling/listener pairs, alternating")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the listener runs to FILE")
    args = parser.parse_args()
    asyncio.run(main(args.db, args.n, args.k, args.rounds, args.profile))
