"""Mail account operations: create, update, list, set status, delete and merge, scoped to one tenant."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from domaincheck.names import InvalidDomainName, canonical_domain, mixed_script_label
from orm.models import MailAccount, Mailbox, Message, PendingOperation
from resolvers.errors import (
    AccountInactive,
    ConfirmationMismatch,
    DuplicateEmail,
    InvalidEmail,
    InvalidSenderName,
    NotFound,
    OperationPending,
    SameAccount,
)
from resolvers.jobs import JobError, JobQueue
from resolvers.pagination import Page, paginate

__all__ = [
    "FINISH_OPERATION",
    "BackgroundOperations",
    "DeleteResult",
    "MailAccount",
    "MergeResult",
    "NormalizedAddress",
    "PendingOperationView",
    "SpfFilter",
    "create_account",
    "delete_account",
    "get_account",
    "get_accounts",
    "hand_to_job",
    "list_accounts",
    "lock_accounts",
    "merge_accounts",
    "message_counts",
    "normalize_address",
    "pending_operation_of",
    "remove_account",
    "set_status",
    "update_account",
    "validate_account_address",
    "validate_sender_name",
]

log = logging.getLogger(__name__)

SENDER_NAME_MAX = 200
# The SPF states the account list can be filtered by: a passing verdict, anything else after a check, never checked.
SpfFilter = Literal["ok", "problem", "unchecked"]
# Characters that would break or forge a mail header, or hide text from the reader.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


@dataclass(frozen=True)
class NormalizedAddress:
    """An address as entered (trimmed) and its normalized form: local part and IDNA domain lowered."""

    entered: str
    normalized: str
    domain: str


# The job that runs a large merge or delete to its end (resolvers/account_jobs.py registers it).
FINISH_OPERATION = "accounts.finish_operation"


@dataclass(frozen=True)
class BackgroundOperations:
    """Where merges and deletes of large accounts go: the job queue, and the message count above which they use it.

    Up to `above_messages` messages, a merge or delete is one transaction, finished when the mutation answers.
    """

    jobs: JobQueue
    above_messages: int


@dataclass(frozen=True)
class PendingOperationView:
    """A merge or delete running in the background: `done` of `total` messages moved or deleted so far."""

    kind: PendingOperation
    done: int
    total: int
    started_at: datetime
    target_id: int | None


def pending_operation_of(account: MailAccount) -> PendingOperationView | None:
    """The account's running merge or delete, or None."""
    if account.pending_operation is None:
        return None
    return PendingOperationView(
        kind=PendingOperation(account.pending_operation),
        done=account.operation_done or 0,
        total=account.operation_total or 0,
        started_at=account.operation_started_at or account.updated_at,
        target_id=account.merge_target_id,
    )


@dataclass(frozen=True)
class DeleteResult:
    """What a delete removed, or (with `pending`) removes in the background: the account is gone at its end."""

    account_id: int
    deleted_message_count: int
    pending: PendingOperationView | None = None


@dataclass(frozen=True)
class MergeResult:
    """The target after a merge, how many messages moved and which account was removed.

    With `pending`, the merge runs in the background: the messages move in batches and the source is
    removed at its end; until then deliveries to the source's mailbox go to the target.
    """

    target: MailAccount
    moved_message_count: int
    deleted_account_id: int
    pending: PendingOperationView | None = None


def normalize_address(email: str, *, field: str = "email") -> NormalizedAddress:
    """Validate an address (syntax only, RFC 5321 lengths, IDN domains) and normalize it.

    The normalized form is the one key of an address: local part lowered, domain as lowercase
    A-labels (IDNA 2008 with the UTS #46 mapping), so `vertrieb@bücher.example` and
    `vertrieb@xn--bcher-kva.example` are one address. The local part is ASCII (no SMTPUTF8).
    """
    entered = email.strip()
    try:
        parsed = validate_email(entered, check_deliverability=False, allow_smtputf8=False, strict=True)
    except EmailNotValidError as exc:
        domain = entered.rpartition("@")[2].rstrip(".").lower()
        if any(domain == name or domain.endswith(f".{name}") for name in SPECIAL_USE_DOMAIN_NAMES):
            # `.invalid`, `.test`, `.localhost`, … can never receive mail: a reason of its own, with its own text.
            raise InvalidEmail(field, reason="special_use") from None
        raise InvalidEmail(field, reason=str(exc)) from None
    ascii_domain = parsed.ascii_domain.lower()
    return NormalizedAddress(
        entered=entered,
        normalized=f"{parsed.local_part.lower()}@{ascii_domain}",
        domain=ascii_domain,
    )


def validate_account_address(email: str, *, field: str = "email") -> NormalizedAddress:
    """An address the platform may send as (or check for that): valid, and no look-alike domain.

    A domain label that mixes scripts beyond UTS #39's Highly Restrictive level (`paypal.de` with
    U+0430 CYRILLIC SMALL LETTER A) is refused with INVALID_EMAIL. The local part needs no such check: it is ASCII.
    """
    address = normalize_address(email, field=field)
    label = mixed_script_label(address.domain)
    if label is not None:
        raise InvalidEmail(field, reason="mixed_script", label=label)
    return address


def validate_sender_name(sender_name: str, *, field: str = "senderName") -> str:
    """A sender name goes into the From header: 1-200 characters, no control characters or line breaks."""
    name = sender_name.strip()
    if not name:
        raise InvalidSenderName(field, reason="empty")
    if len(name) > SENDER_NAME_MAX:
        raise InvalidSenderName(field, reason="too_long", max=SENDER_NAME_MAX)
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        raise InvalidSenderName(field, reason="control_character")
    return name


async def create_account(tenant_id: int, email: str, sender_name: str, active: bool = True) -> MailAccount:
    """Create an account with a fresh platform mailbox number; DuplicateEmail if the tenant has it."""
    address = validate_account_address(email)
    name = validate_sender_name(sender_name)
    try:
        async with in_transaction() as conn:
            if (
                await MailAccount.filter(tenant_id=tenant_id, email_normalized=address.normalized)
                .using_db(conn)
                .exists()
            ):
                raise DuplicateEmail("email")
            mailbox = await Mailbox.create(tenant_id=tenant_id, using_db=conn)
            return await MailAccount.create(
                tenant_id=tenant_id,
                email=address.entered,
                email_normalized=address.normalized,
                sender_name=name,
                active=active,
                mailbox_number=mailbox.number,
                using_db=conn,
            )
    except IntegrityError:
        # Two creates of the same address raced past the check; the unique index decided.
        raise DuplicateEmail("email") from None


async def update_account(
    tenant_id: int, account_id: int, *, email: str | None = None, sender_name: str | None = None
) -> MailAccount:
    """Change an account's address and/or sender name; None leaves that value as it is.

    The address is validated like createAccount's and keeps the mailbox number and the messages. A new
    address (another normalized form) must be free in the tenant (DuplicateEmail) and voids the stored SPF
    result, which belonged to the old domain; the same address in another case or IDN form keeps it.
    """
    address = validate_account_address(email) if email is not None else None
    name = validate_sender_name(sender_name) if sender_name is not None else None
    try:
        async with in_transaction() as conn:
            # Locked so a concurrent delete or merge either finishes first (NOT_FOUND) or waits for this one.
            account = (await lock_accounts(conn, tenant_id, [account_id])).get(account_id)
            if account is None:
                raise NotFound("accountId")
            if account.pending_operation is not None:
                raise OperationPending("accountId")
            changes: dict[str, Any] = {}
            if name is not None and name != account.sender_name:
                changes["sender_name"] = name
            if address is not None and address.entered != account.email:
                changes["email"] = address.entered
            if address is not None and address.normalized != account.email_normalized:
                if (
                    await MailAccount.filter(tenant_id=tenant_id, email_normalized=address.normalized)
                    .using_db(conn)
                    .exists()
                ):
                    raise DuplicateEmail("email")
                changes.update(email_normalized=address.normalized, spf_report=None, spf_checked_at=None, spf_ok=None)
            if not changes:
                return account
            await MailAccount.filter(id=account.id).using_db(conn).update(**changes, updated_at=datetime.now(UTC))
            return await MailAccount.get(id=account.id, using_db=conn)
    except IntegrityError:
        # Two updates (or an update and a create) to the same address raced past the check; the unique index decided.
        raise DuplicateEmail("email") from None


async def get_account(tenant_id: int, account_id: int) -> MailAccount | None:
    """The tenant's account with this id, or None (also for another tenant's id)."""
    return await MailAccount.get_or_none(tenant_id=tenant_id, id=account_id)


async def get_accounts(tenant_id: int, account_ids: Sequence[int]) -> list[MailAccount]:
    """The tenant's accounts among `account_ids`; ids of other tenants are left out."""
    return await MailAccount.filter(tenant_id=tenant_id, id__in=list(account_ids))


async def list_accounts(
    tenant_id: int,
    *,
    first: int = 50,
    after: str | None = None,
    active: bool | None = None,
    search: str | None = None,
    spf: SpfFilter | None = None,
) -> Page[MailAccount]:
    """A page of the tenant's accounts in creation order, filtered by status, SPF state and a search text.

    `spf="problem"` is every checked account without a passing verdict, a check that could not run
    included: the accounts that spfCheckAll counts in `withProblems`.
    """
    query = MailAccount.filter(tenant_id=tenant_id)
    if active is not None:
        query = query.filter(active=active)
    if spf == "ok":
        query = query.filter(spf_ok=True)
    elif spf == "problem":
        query = query.filter(Q(spf_ok=False) | Q(spf_ok__isnull=True), spf_checked_at__isnull=False)
    elif spf == "unchecked":
        query = query.filter(spf_checked_at__isnull=True)
    # PostgreSQL text cannot hold NUL (a search for it would fail the query); no address contains one.
    search = search.replace("\x00", "") if search else search
    if search and search.strip():
        text = search.strip()
        matches = Q(email__icontains=text) | Q(sender_name__icontains=text)
        ascii_text = _ascii_search_text(text)
        if ascii_text is not None:
            # The normalized column holds the A-label form: an address entered as bücher.example is
            # found by "xn--bcher-kva", one entered as xn--bcher-kva.example by "bücher.example".
            matches |= Q(email_normalized__icontains=ascii_text)
        query = query.filter(matches)
    return await paginate(query, first=first, after=after)


def _ascii_search_text(text: str) -> str | None:
    """The A-label form of a search text's domain part (`vertrieb@bücher` -> `vertrieb@xn--bcher-kva`).

    Whole labels only: a fragment of a U-label has no A-label fragment. ASCII text is returned as it
    is; None when the text is no address or name at all (then `email` is searched as typed only).
    """
    if text.isascii():
        return text
    local, at, domain = text.rpartition("@")
    try:
        ascii_domain = canonical_domain(domain)
    except InvalidDomainName:
        return None
    if not local.isascii():
        return None
    return f"{local.lower()}{at}{ascii_domain}"


async def message_counts(account_ids: Sequence[int]) -> dict[int, int]:
    """Number of messages per account id, in one grouped statement."""
    if not account_ids:
        return {}
    rows = await (
        Message.filter(account_id__in=list(account_ids))
        .annotate(count=Count("id"))
        .group_by("account_id")
        .values_list("account_id", "count")
    )
    counts = {int(account_id): int(count) for account_id, count in rows}
    return {account_id: counts.get(account_id, 0) for account_id in account_ids}


async def set_status(tenant_id: int, account_id: int, active: bool) -> MailAccount:
    """Activate or deactivate an account; inactive keeps every message but receives and sends nothing.

    OperationPending while the account is being merged or deleted in the background.
    """
    account = MailAccount.filter(tenant_id=tenant_id, id=account_id)
    updated = await account.filter(pending_operation__isnull=True).update(active=active, updated_at=datetime.now(UTC))
    if not updated:
        raise OperationPending("accountId") if await account.exists() else NotFound("accountId")
    return await MailAccount.get(id=account_id)


def _confirms(confirm: str, account: MailAccount) -> bool:
    typed = confirm.strip().casefold()
    if not typed:
        return False
    if typed in (account.email.casefold(), account.email_normalized.casefold()):
        return True
    # The address typed in the other IDN form (U-labels for A-labels or back) confirms it as well.
    try:
        return normalize_address(confirm).normalized == account.email_normalized
    except InvalidEmail:
        return False


async def lock_accounts(conn: BaseDBAsyncClient, tenant_id: int, account_ids: Iterable[int]) -> dict[int, MailAccount]:
    """Lock the tenant's accounts in ascending id order (FOR UPDATE), so two merges cannot deadlock.

    Plain FOR UPDATE, not FOR NO KEY UPDATE: only it makes a concurrent insert of a message that
    references the account wait until this transaction ends. SQLite ignores it and serializes writers.
    """
    rows = await (
        MailAccount.filter(tenant_id=tenant_id, id__in=sorted(set(account_ids)))
        .order_by("id")
        .select_for_update()
        .using_db(conn)
    )
    return {row.id: row for row in rows}


async def _release_mailbox(conn: BaseDBAsyncClient, number: int) -> None:
    await Mailbox.filter(number=number).using_db(conn).update(released_at=datetime.now(UTC))


async def _require_removable(conn: BaseDBAsyncClient, account: MailAccount, field: str) -> None:
    """OperationPending when the account is being merged or deleted already, or a running merge's target."""
    if account.pending_operation is not None:
        raise OperationPending(field)
    if await MailAccount.filter(merge_target_id=account.id).using_db(conn).exists():
        raise OperationPending(field)


async def _start_in_background(
    conn: BaseDBAsyncClient, account: MailAccount, kind: PendingOperation, total: int, target_id: int | None = None
) -> PendingOperationView:
    """Mark the account as being merged or deleted; from this commit on it receives nothing of its own."""
    now = datetime.now(UTC)
    await MailAccount.filter(id=account.id).using_db(conn).update(
        pending_operation=kind,
        merge_target_id=target_id,
        operation_total=total,
        operation_done=0,
        operation_started_at=now,
        updated_at=now,
    )
    return PendingOperationView(kind=kind, done=0, total=total, started_at=now, target_id=target_id)


async def hand_to_job(jobs: JobQueue, account_id: int) -> None:
    """Enqueue the job that finishes the account's merge or delete (committed before, so the job sees it).

    A job already waiting for the account is enough (its queueing lock refuses a second). Should the
    enqueue itself fail, the periodic resume (`accounts.resume_operations`) takes the operation up.
    """
    key = f"account-operation:{account_id}"
    try:
        await jobs.enqueue(FINISH_OPERATION, {"account_id": account_id}, lock=key, queueing_lock=key)
    except JobError:
        pass  # a job for the account is waiting already
    except Exception:
        log.exception("enqueueing the operation of account %d failed; the periodic resume takes it up", account_id)


def _runs_in_background(background: BackgroundOperations | None, messages: int) -> bool:
    return background is not None and messages > background.above_messages


async def delete_account(
    tenant_id: int, account_id: int, confirm: str, *, background: BackgroundOperations | None = None
) -> DeleteResult:
    """Delete an account and all its messages, once `confirm` repeats its address: all or nothing.

    Up to `background.above_messages` messages (or without `background`) in one transaction. A larger
    account is marked in one short transaction (its mailbox refuses mail from then on) and a job deletes
    its messages in batches that each commit quickly, then the account: the result's `pending` says so.
    """
    async with in_transaction() as conn:
        account = (await lock_accounts(conn, tenant_id, [account_id])).get(account_id)
        if account is None:
            raise NotFound("accountId")
        if not _confirms(confirm, account):
            raise ConfirmationMismatch("confirm")
        await _require_removable(conn, account, "accountId")
        messages = Message.filter(account_id=account.id).using_db(conn)
        # Counted apart: SQLite's row count of the DELETE includes the cascaded message bodies.
        deleted_messages = await messages.count()
        if _runs_in_background(background, deleted_messages):
            pending = await _start_in_background(conn, account, PendingOperation.DELETE, deleted_messages)
        else:
            pending = None
            await messages.delete()
            await remove_account(conn, account)
    if pending is not None and background is not None:
        await hand_to_job(background.jobs, account_id)
    return DeleteResult(account_id=account_id, deleted_message_count=deleted_messages, pending=pending)


async def merge_accounts(
    tenant_id: int,
    source_id: int,
    target_id: int,
    confirm: str,
    *,
    background: BackgroundOperations | None = None,
) -> MergeResult:
    """Move every message of the source into the target, then delete the source: all or nothing.

    Up to `background.above_messages` messages (or without `background`) in one transaction. A larger
    source is marked in one short transaction (deliveries to its mailbox go to the target from then on)
    and a job moves its messages in batches that each commit quickly, then deletes it (`pending`).
    """
    if source_id == target_id:
        raise SameAccount("targetId")
    async with in_transaction() as conn:
        locked = await lock_accounts(conn, tenant_id, [source_id, target_id])
        source, target = locked.get(source_id), locked.get(target_id)
        if source is None:
            raise NotFound("sourceId")
        if target is None:
            raise NotFound("targetId")
        if not _confirms(confirm, source):
            raise ConfirmationMismatch("confirm")
        if not target.active:
            raise AccountInactive("targetId")
        await _require_removable(conn, source, "sourceId")
        if target.pending_operation is not None:
            raise OperationPending("targetId")
        messages = Message.filter(account_id=source.id).using_db(conn)
        total = await messages.count() if background is not None else 0
        if _runs_in_background(background, total):
            pending = await _start_in_background(conn, source, PendingOperation.MERGE, total, target.id)
            moved = total
        else:
            pending = None
            moved = await messages.update(account_id=target.id)
            await remove_account(conn, source, merged_into=target.id)
            target = await MailAccount.get(id=target.id, using_db=conn)
    if pending is not None and background is not None:
        await hand_to_job(background.jobs, source_id)
    return MergeResult(target=target, moved_message_count=moved, deleted_account_id=source_id, pending=pending)


async def remove_account(conn: BaseDBAsyncClient, account: MailAccount, merged_into: int | None = None) -> None:
    """The last step of a delete or merge, once the account has no message left: it goes, its mailbox number
    is released, and a merge's target counts as updated."""
    await MailAccount.filter(id=account.id).using_db(conn).delete()
    await _release_mailbox(conn, account.mailbox_number)
    if merged_into is not None:
        await MailAccount.filter(id=merged_into).using_db(conn).update(updated_at=datetime.now(UTC))
