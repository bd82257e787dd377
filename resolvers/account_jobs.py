"""Large merges and deletes as resumable jobs: messages move or go in batches that each commit quickly.

`merge_accounts` and `delete_account` mark an account with more than BACKGROUND_OPERATION_MESSAGES
messages as pending in one short transaction and enqueue `accounts.finish_operation`. Its state lives
in the account row (`pending_operation`, `operation_done` of `operation_total`), so a worker that is
killed leaves nothing half done: the next run takes the next batch. No transaction here holds a lock for
longer than one batch; deliveries and reads of both accounts are answered in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from orm.models import MailAccount, Message, PendingOperation
from resolvers.accounts import FINISH_OPERATION, lock_accounts, remove_account
from resolvers.jobs import JobServices, task

__all__ = [
    "BATCH_LIMITS",
    "BATCH_MESSAGES",
    "BATCH_SECONDS",
    "RESUME_OPERATIONS",
    "finish_operation",
    "next_batch_size",
    "resume_stalled_operations",
    "run_batch",
]

# Messages the first batch moves or deletes; later ones grow or shrink so that a batch, and so every lock it
# holds, takes about BATCH_SECONDS however large the bodies are and however loaded the database is.
BATCH_MESSAGES = 2000
BATCH_SECONDS = 0.25
BATCH_LIMITS = (100, 20_000)
RESUME_OPERATIONS = "accounts.resume_operations"
# A pending operation whose account row has not moved for this long has no live job (its enqueue failed,
# or its retries ran out): the periodic resume runs it.
STALLED_OPERATION = timedelta(minutes=5)


async def run_batch(account_id: int, batch: int, after: int = 0) -> int | None:
    """Move or delete the account's next `batch` messages with ids above `after`, in one transaction.

    Returns the last id handled (pass it as `after` to the next call), 0 when no message is left, None
    when the account has no pending operation. `after` only skips ahead in the index: the rows moved or
    deleted before stay in it as dead entries until vacuumed, and a scan from the start would wade through
    them again on every batch (measured: 0.5 s per batch halfway through a million messages).
    """
    async with in_transaction() as conn:
        rows = await MailAccount.filter(id=account_id).select_for_update().using_db(conn)
        if not rows or rows[0].pending_operation is None:
            return None
        account = rows[0]
        remaining = Message.filter(account_id=account_id, id__gt=after).using_db(conn)
        # The batch is everything up to the `batch`-th remaining id (or the last one).
        last = await remaining.order_by("id").offset(batch - 1).limit(1).values("id")
        last = last or await remaining.order_by("-id").limit(1).values("id")
        if not last:
            return 0
        last_id: int = last[0]["id"]
        messages = remaining.filter(id__lte=last_id)
        if account.pending_operation == PendingOperation.MERGE:
            handled = await messages.update(account_id=account.merge_target_id)
        else:
            # Counted apart: SQLite's row count of the DELETE includes the cascaded message bodies.
            handled = await messages.count()
            await messages.delete()
        await MailAccount.filter(id=account_id).using_db(conn).update(
            operation_done=F("operation_done") + handled, updated_at=datetime.now(UTC)
        )
        return last_id


async def _remove_if_empty(account_id: int) -> bool:
    """Delete the account once it has no message left (both accounts locked in id order); False if one came."""
    async with in_transaction() as conn:
        account = await MailAccount.filter(id=account_id).using_db(conn).first()
        if account is None or account.pending_operation is None:
            return True
        ids = [account_id] if account.merge_target_id is None else [account_id, account.merge_target_id]
        locked = await lock_accounts(conn, account.tenant_id, ids)
        account = locked.get(account_id)
        if account is None or account.pending_operation is None:
            return True
        if await Message.filter(account_id=account_id).using_db(conn).exists():
            return False
        await remove_account(conn, account, merged_into=account.merge_target_id)
        return True


def next_batch_size(size: int, seconds: float) -> int:
    """The size of the next batch after one of `size` messages took `seconds`: halved when it took over twice
    BATCH_SECONDS, doubled when under half of it, within BATCH_LIMITS."""
    if seconds > 2 * BATCH_SECONDS:
        size //= 2
    elif seconds < BATCH_SECONDS / 2:
        size *= 2
    return max(BATCH_LIMITS[0], min(BATCH_LIMITS[1], size))


async def finish_operation(
    account_id: int, *, batch: int = BATCH_MESSAGES, clock: Callable[[], float] = time.monotonic
) -> None:
    """Run the account's pending merge or delete to its end; nothing when it has none (any more).

    Idempotent and resumable: every batch commits with its progress, so a rerun after a crash goes on
    with the messages that are left. Batches start at `batch` messages and adapt to BATCH_SECONDS.
    """
    after = 0
    while True:
        started = clock()
        last = await run_batch(account_id, batch, after)
        batch = next_batch_size(batch, clock() - started)
        if last is None:
            return
        if last:
            after = last
        elif await _remove_if_empty(account_id):
            return
        else:
            after = 0  # one is left below the cursor: a last pass from the start takes it


@task(FINISH_OPERATION, retries=5, retry_wait=10.0)
async def finish_operation_job(services: JobServices, *, account_id: int) -> None:
    """`finish_operation` as the job that `merge_accounts` and `delete_account` enqueue."""
    await finish_operation(account_id)


async def resume_stalled_operations(stalled_after: timedelta = STALLED_OPERATION) -> int:
    """Finish the pending operations that made no progress for `stalled_after`; how many there were."""
    cutoff = datetime.now(UTC) - stalled_after
    stalled = await MailAccount.filter(pending_operation__isnull=False, updated_at__lt=cutoff).values("id")
    for row in stalled:
        await finish_operation(row["id"])
    return len(stalled)


@task(RESUME_OPERATIONS)
async def resume_operations_job(services: JobServices) -> None:
    """The periodic safety net: operations whose job was never enqueued or gave up are finished here."""
    await resume_stalled_operations()
