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


async def run_batch(account_id: int, batch: int) -> bool | None:
    """Move or delete the next batch of the account's messages; None when it has no pending operation.

    True when messages were handled (more may be left), False when none is left.
    """
    async with in_transaction() as conn:
        rows = await MailAccount.filter(id=account_id).select_for_update().using_db(conn)
        if not rows or rows[0].pending_operation is None:
            return None
        account = rows[0]
        ids = list(
            await Message.filter(account_id=account_id)
            .order_by("id")
            .limit(batch)
            .using_db(conn)
            .values_list("id", flat=True)
        )
        if not ids:
            return False
        messages = Message.filter(id__in=ids).using_db(conn)
        if account.pending_operation == PendingOperation.MERGE:
            await messages.update(account_id=account.merge_target_id)
        else:
            await messages.delete()
        await MailAccount.filter(id=account_id).using_db(conn).update(
            operation_done=F("operation_done") + len(ids), updated_at=datetime.now(UTC)
        )
        return True


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
    while True:
        handled = await run_batch(account_id, batch)
        if handled is None:
            return
        if not handled and await _remove_if_empty(account_id):
            return


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
