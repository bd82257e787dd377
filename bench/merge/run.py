"""Large merge benchmark: one transaction vs. the batched background merge, with deliveries and reads meanwhile.

Run: `.venv/bin/python -m bench.merge.run [--db postgres|sqlite] [--messages 200000] [--body-bytes 2048]`.
Seeds a source account with N messages (bodies included) and merges it into a target twice per database,
alternating the two ways: `merge_accounts` without a job queue (today's single transaction below
BACKGROUND_OPERATION_MESSAGES) and the background merge (`merge_accounts` marks the source, then the
job's `finish_operation` loop, run here batch by batch so each batch's transaction time is measured).
Meanwhile a probe delivers a message to the target, reads both accounts with their message counts and
renames the target (updateAccount takes FOR UPDATE on its row) every 50 ms; the report gives each
probe's worst wait, which is the longest lock any of them met.
PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) must allow
CREATE DATABASE; a scratch database is dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field

from tortoise import connections

from bench.scratch import scratch_database
from mailaccounts.database import database
from orm.models import MailAccount, Message
from resolvers.account_jobs import finish_operation
from resolvers.accounts import BackgroundOperations, create_account, merge_accounts, update_account
from resolvers.intake import deliver_message
from resolvers.mailboxes import Recipient
from resolvers.tokens import ensure_tenant

PROBE_EVERY = 0.05


class NoQueue:
    """A job queue that stores nothing: the bench runs the job's batches itself."""

    async def enqueue(
        self, task: str, args: object, *, lock: str | None = None, queueing_lock: str | None = None
    ) -> int:
        return 0


@dataclass
class Probes:
    """Worst and typical waits of what users do to the two accounts while the merge runs."""

    waits: dict[str, list[float]] = field(default_factory=lambda: {"deliver": [], "read": [], "rename": []})

    def line(self) -> str:
        parts = []
        for name, values in self.waits.items():
            if values:
                parts.append(f"{name} max {max(values) * 1000:7.0f} ms p50 {statistics.median(values) * 1000:4.0f} ms")
        return " · ".join(parts)


async def _probe(source_id: int, target_id: int, target_number: int, probes: Probes, stop: asyncio.Event) -> None:
    """Three loops at once, so one that waits on a lock does not hide the others' waits."""
    tenant_id = (await MailAccount.get(id=target_id)).tenant_id
    recipient = Recipient(account_id=target_id, mailbox_number=target_number, is_bounce=False)

    async def deliver(n: int) -> None:
        raw = f"Message-ID: <probe-{n}-{uuid.uuid4().hex}@extern.example>\r\nSubject: Probe\r\n\r\nHallo\r\n"
        await deliver_message([recipient], raw.encode())

    async def read(n: int) -> None:
        await MailAccount.filter(id__in=[source_id, target_id]).values("id", "email")
        await Message.filter(account_id=target_id).order_by("-id").limit(50).values("id", "subject")

    async def rename(n: int) -> None:
        await update_account(tenant_id, target_id, sender_name=f"Ziel {n}")

    async def loop(name: str, action: Callable[[int], Awaitable[None]]) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.perf_counter()
            await action(n)
            probes.waits[name].append(time.perf_counter() - started)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROBE_EVERY)

    await asyncio.gather(loop("deliver", deliver), loop("read", read), loop("rename", rename))


async def _seed(messages: int, body_bytes: int, round_no: int) -> tuple[int, int, int]:
    tenant = await ensure_tenant("bench")
    source = await create_account(tenant.id, f"alt{round_no}@firma.example", "Alt")
    target = await create_account(tenant.id, f"neu{round_no}@firma.example", "Neu")
    conn = connections.get("default")
    body = "x" * body_bytes
    dialect = conn.capabilities.dialect
    if dialect == "postgres":
        await conn.execute_query(
            "INSERT INTO message (account_id, direction, from_header, to_header, subject, size, is_bounce, "
            "received_at) SELECT $1, 'INBOUND', 'kunde@extern.example', 'alt@firma.example', 'Nr. ' || g, $2, "
            "false, now() FROM generate_series(1, $3) g",
            [source.id, body_bytes, messages],
        )
        await conn.execute_query(
            "INSERT INTO message_body (message_id, content) SELECT id, convert_to($2, 'UTF8') FROM message "
            "WHERE account_id = $1",
            [source.id, body],
        )
        await conn.execute_script("ANALYZE message; ANALYZE message_body")
    else:
        await conn.execute_script(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < "
            f"{messages}) INSERT INTO message (account_id, direction, from_header, to_header, subject, size, "
            f"is_bounce, received_at) SELECT {source.id}, 'INBOUND', 'kunde@extern.example', 'alt@firma.example', "
            f"'Nr. ' || n, {body_bytes}, 0, datetime('now') FROM g"
        )
        await conn.execute_script(
            f"INSERT INTO message_body (message_id, content) SELECT id, randomblob({body_bytes}) FROM message "
            f"WHERE account_id = {source.id}"
        )
    return source.id, target.id, target.mailbox_number


async def _one(way: str, messages: int, body_bytes: int, round_no: int) -> tuple[float, list[float], Probes]:
    source_id, target_id, target_number = await _seed(messages, body_bytes, round_no)
    source = await MailAccount.get(id=source_id)
    probes, stop = Probes(), asyncio.Event()
    probe = asyncio.create_task(_probe(source_id, target_id, target_number, probes, stop))
    await asyncio.sleep(0.2)
    batches: list[float] = []
    started = time.perf_counter()
    if way == "one transaction":
        await merge_accounts(source.tenant_id, source_id, target_id, source.email)
    else:
        background = BackgroundOperations(jobs=NoQueue(), above_messages=0)  # type: ignore[arg-type]
        await merge_accounts(source.tenant_id, source_id, target_id, source.email, background=background)
        # The job's loop, with each batch's transaction time recorded through its clock.
        last_call: list[float] = []

        def clock() -> float:
            now = time.perf_counter()
            if len(last_call) % 2:
                batches.append(now - last_call[-1])
            last_call.append(now)
            return now

        await finish_operation(source_id, clock=clock)
    elapsed = time.perf_counter() - started
    stop.set()
    await probe
    moved = await Message.filter(account_id=target_id).count()
    assert not await MailAccount.filter(id=source_id).exists(), "the source must be gone"
    assert moved >= messages, f"only {moved} of {messages} messages in the target"
    return elapsed, batches, probes


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--body-bytes", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"# merge of {args.messages:,} messages ({args.body_bytes} B bodies), {args.db}, load {os.getloadavg()}")
    async with scratch_database(args.db) as url, database(url):
        round_no = 0
        for _ in range(args.rounds):
            for way in ("one transaction", "batched job"):
                round_no += 1
                elapsed, batches, probes = await _one(way, args.messages, args.body_bytes, round_no)
                batch_line = (
                    f" · {len(batches)} batches, longest {max(batches) * 1000:.0f} ms, "
                    f"median {statistics.median(batches) * 1000:.0f} ms"
                    if batches
                    else ""
                )
                print(f"{way:16} {elapsed:6.1f} s{batch_line}")
                print(f"{'':16} {probes.line()}")
    print(f"# load after {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
