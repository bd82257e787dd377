"""Messages of an account: delivering raw mail into mailboxes, storing sent mail, listing and reading."""

from __future__ import annotations

import asyncio
import email.message
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from orm.models import Direction, MailAccount, Message, MessageBody
from resolvers.errors import AccountError, NotFound
from resolvers.mailboxes import Recipient
from resolvers.pagination import Page, paginate

__all__ = [
    "DeliveryDeferred",
    "DeliveryQueue",
    "DeliveryResult",
    "Direction",
    "HeaderFields",
    "Message",
    "deliver_message",
    "get_message",
    "get_messages",
    "list_messages",
    "message_raw",
    "parse_header_fields",
    "store_sent_message",
]

MESSAGE_ID_MAX = 998
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)


class DeliveryDeferred(AccountError):
    """A recipient's account was merged, deleted or disabled after RCPT: the sender should retry."""

    code = "DELIVERY_DEFERRED"


@dataclass(frozen=True)
class HeaderFields:
    """The header fields kept beside the raw bytes, parsed leniently: broken headers give empty values."""

    message_id: str | None
    from_header: str
    to_header: str
    subject: str
    date: datetime | None


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery stored: new message ids, and accounts that already had this Message-ID."""

    stored_message_ids: list[int]
    duplicate_account_ids: list[int]


def _clean(text: str) -> str:
    """One line of valid text: no NUL (PostgreSQL refuses it), no lone surrogates from 8-bit headers."""
    text = " ".join(text.replace("\x00", " ").split())
    return text.encode("utf-8", "replace").decode("utf-8")


def _text(headers: email.message.Message, name: str) -> str:
    """A header decoded from RFC 2047 words; the cheap compat32 parse plus decode_header, not policy.default."""
    try:
        value = headers.get(name)
        if value is None:
            return ""
        if isinstance(value, str) and "=?" not in value:
            return _clean(value)
        return _clean(str(make_header(decode_header(value))))
    except Exception:  # a malformed header must not stop the message from being stored
        try:
            return _clean(str(headers.get(name)))
        except Exception:
            return ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_header_fields(raw: bytes) -> HeaderFields:
    """The listed header fields of a raw message; RFC 2047 words decoded, anything broken left empty."""
    try:
        headers = _HEADER_PARSER.parsebytes(raw)
    except Exception:  # unparseable mail is still stored raw
        return HeaderFields(None, "", "", "", None)
    return HeaderFields(
        message_id=_text(headers, "Message-ID")[:MESSAGE_ID_MAX] or None,
        from_header=_text(headers, "From"),
        to_header=_text(headers, "To"),
        subject=_text(headers, "Subject"),
        date=_date(_text(headers, "Date")),
    )


async def _insert(
    conn: BaseDBAsyncClient,
    account_id: int,
    direction: Direction,
    fields: HeaderFields,
    raw: bytes,
    is_bounce: bool,
) -> Message:
    message = await Message.create(
        account_id=account_id,
        direction=direction,
        message_id_header=fields.message_id,
        from_header=fields.from_header,
        to_header=fields.to_header,
        subject=fields.subject,
        date=fields.date,
        size=len(raw),
        is_bounce=is_bounce,
        using_db=conn,
    )
    await MessageBody.create(message_id=message.id, content=raw, using_db=conn)
    return message


async def deliver_message(recipients: Sequence[Recipient], raw: bytes) -> DeliveryResult:
    """Store one copy of a received message in each recipient's account, all or nothing.

    A Message-ID the account already received is not stored again (a retrying server). If an
    account was merged away, deleted or disabled since RCPT, nothing is stored and DeliveryDeferred
    tells the sender to retry; the retry then gets the final answer for that address. On PostgreSQL
    the insert waits for a merge's FOR UPDATE lock on the account; if the account is gone after it,
    the RESTRICT foreign key refuses the row and the delivery is deferred the same way.
    """
    if not recipients:
        return DeliveryResult([], [])
    bounce_only: dict[int, bool] = {}
    for recipient in recipients:
        bounce_only[recipient.account_id] = bounce_only.get(recipient.account_id, True) and recipient.is_bounce
    account_ids = sorted(bounce_only)
    fields = parse_header_fields(raw)
    try:
        async with in_transaction() as conn:
            live = await (
                MailAccount.filter(id__in=account_ids, active=True).using_db(conn).values_list("id", flat=True)
            )
            if len(live) != len(account_ids):
                raise DeliveryDeferred("address")
            duplicates: set[int] = set()
            if fields.message_id is not None:
                rows = await (
                    Message.filter(
                        account_id__in=account_ids,
                        message_id_header=fields.message_id,
                        direction=Direction.INBOUND,
                    )
                    .using_db(conn)
                    .values("account_id")
                )
                duplicates = {int(row["account_id"]) for row in rows}
            stored = [
                (
                    await _insert(
                        conn, account_id, Direction.INBOUND, fields, raw, is_bounce=bounce_only[account_id]
                    )
                ).id
                for account_id in account_ids
                if account_id not in duplicates
            ]
    except IntegrityError:
        raise DeliveryDeferred("address") from None
    return DeliveryResult(stored_message_ids=stored, duplicate_account_ids=sorted(duplicates))


@dataclass
class _Pending:
    recipients: Sequence[Recipient]
    raw: bytes
    done: asyncio.Future[DeliveryResult]


class DeliveryQueue:
    """Group commit for the listener: deliveries that arrive while a transaction runs share the next one.

    Each message keeps its own outcome: accounts that vanished defer only their message, duplicates are
    skipped per account. If the shared transaction fails (a merge won a race on PostgreSQL), every
    message of the batch is retried alone with `deliver_message`, so only the affected one is deferred.
    """

    def __init__(self, max_batch: int = 200) -> None:
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._worker: asyncio.Task[None] | None = None

    async def deliver(self, recipients: Sequence[Recipient], raw: bytes) -> DeliveryResult:
        """Like `deliver_message`, committed together with the deliveries queued at the same time."""
        item = _Pending(recipients, raw, asyncio.get_running_loop().create_future())
        self._pending.append(item)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await asyncio.shield(item.done)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                outcomes = await _deliver_batch(batch)
            except Exception:
                outcomes = []
                for item in batch:
                    try:
                        outcomes.append(await deliver_message(item.recipients, item.raw))
                    except Exception as exc:
                        outcomes.append(exc)
            for item, outcome in zip(batch, outcomes, strict=True):
                if item.done.done():
                    continue
                if isinstance(outcome, BaseException):
                    item.done.set_exception(outcome)
                else:
                    item.done.set_result(outcome)


async def _deliver_batch(batch: Sequence[_Pending]) -> list[DeliveryResult | Exception]:
    """Deliver several messages in one transaction with set-based lookups; one outcome per message."""
    prepared = []
    for item in batch:
        bounce_only: dict[int, bool] = {}
        for recipient in item.recipients:
            bounce_only[recipient.account_id] = bounce_only.get(recipient.account_id, True) and recipient.is_bounce
        prepared.append((bounce_only, parse_header_fields(item.raw)))
    account_ids = sorted({account_id for bounce_only, _ in prepared for account_id in bounce_only})
    message_ids = sorted({fields.message_id for _, fields in prepared if fields.message_id is not None})
    outcomes: list[DeliveryResult | Exception] = []
    async with in_transaction() as conn:
        live = set(
            await MailAccount.filter(id__in=account_ids, active=True).using_db(conn).values_list("id", flat=True)
        )
        seen: set[tuple[int, str]] = set()
        if message_ids:
            rows = await (
                Message.filter(
                    account_id__in=account_ids, message_id_header__in=message_ids, direction=Direction.INBOUND
                )
                .using_db(conn)
                .values("account_id", "message_id_header")
            )
            seen = {(int(row["account_id"]), str(row["message_id_header"])) for row in rows}
        for (bounce_only, fields), item in zip(prepared, batch, strict=True):
            if not set(bounce_only) <= live:
                outcomes.append(DeliveryDeferred("address"))
                continue
            stored, duplicates = [], []
            for account_id in sorted(bounce_only):
                key = (account_id, fields.message_id or "")
                if fields.message_id is not None and key in seen:
                    duplicates.append(account_id)
                    continue
                message = await _insert(
                    conn, account_id, Direction.INBOUND, fields, item.raw, is_bounce=bounce_only[account_id]
                )
                stored.append(message.id)
                if fields.message_id is not None:
                    seen.add(key)
            outcomes.append(DeliveryResult(stored_message_ids=stored, duplicate_account_ids=duplicates))
    return outcomes


async def store_sent_message(account_id: int, raw: bytes) -> Message:
    """Store a message the relay accepted as OUTBOUND; NotFound if the account vanished meanwhile."""
    fields = parse_header_fields(raw)
    try:
        async with in_transaction() as conn:
            return await _insert(conn, account_id, Direction.OUTBOUND, fields, raw, is_bounce=False)
    except (IntegrityError, OperationalError):
        raise NotFound("accountId") from None


async def list_messages(
    tenant_id: int,
    account_id: int,
    *,
    first: int = 50,
    after: str | None = None,
    direction: Direction | None = None,
) -> Page[Message]:
    """A page of an account's messages, newest first; empty for another tenant's account."""
    query = Message.filter(account_id=account_id, account__tenant_id=tenant_id)
    if direction is not None:
        query = query.filter(direction=direction)
    return await paginate(query, first=first, after=after, descending=True)


async def get_messages(tenant_id: int, message_ids: Sequence[int]) -> list[Message]:
    """The tenant's messages among `message_ids`; other tenants' ids are left out."""
    return await Message.filter(id__in=list(message_ids), account__tenant_id=tenant_id)


async def get_message(tenant_id: int, message_id: int) -> Message | None:
    """The tenant's message with this id, or None (also for another tenant's id)."""
    return await Message.filter(id=message_id, account__tenant_id=tenant_id).first()


async def message_raw(message_id: int) -> bytes:
    """The raw bytes of a message, exactly as received or sent (call after a tenant-scoped lookup)."""
    content = await MessageBody.filter(message_id=message_id).values_list("content", flat=True)
    return bytes(content[0]) if content else b""
