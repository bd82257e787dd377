"""Large merges and deletes as resumable jobs: messages move or go in batches that each commit quickly.

`merge_accounts` and `delete_account` mark an account with more than BACKGROUND_OPERATION_MESSAGES
messages as pending in one short transaction and enqueue `accounts.finish_operation`. Its state lives
in the account row (`pending_operation`, `operation_done` of `operation_total`), so a worker that is
killed leaves nothing half done: the next run takes the next batch. No transaction here holds a lock for
longer than one batch; deliveries and reads of both accounts are answered in between.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from orm.models import MailAccount, Message, PendingOperation
from resolvers.accounts import FINISH_OPERATION, finish_removal, lock_accounts
from resolvers.jobs import JobServices, task

__all__ = [
    "BATCH_MESSAGES",
    "RESUME_OPERATIONS",
    "finish_operation",
    "resume_stalled_operations",
    "run_batch",
]

# Messages one batch moves or deletes. About 0.1 s per batch on PostgreSQL with 10 KB bodies (bench/merge).
BATCH_MESSAGES = 2000
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
        await finish_removal(conn, account)
        return True


async def finish_operation(account_id: int, *, batch: int = BATCH_MESSAGES) -> None:
    """Run the account's pending merge or delete to its end; nothing when it has none (any more).

    Idempotent and resumable: every batch commits with its progress, so a rerun after a crash goes on
    with the messages that are left.
    """
    after = 0
    while True:
        last = await run_batch(account_id, batch, after)
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
