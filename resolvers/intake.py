"""The intake path: storing received mail (group commit, duplicate detection) and sent mail, in batched SQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pypika_tortoise.queries import Query, Table
from pypika_tortoise.terms import Parameter
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from orm.models import Direction, MailAccount, Message, MessageBody
from resolvers.errors import AccountError, NotFound
from resolvers.mail_headers import HeaderFields, parse_header_fields
from resolvers.mailboxes import Recipient

__all__ = [
    "DeliveryDeferred",
    "DeliveryQueue",
    "DeliveryResult",
    "deliver_message",
    "store_sent_message",
]


class DeliveryDeferred(AccountError):
    """A recipient's account was merged, deleted or disabled after RCPT: the sender should retry."""

    code = "DELIVERY_DEFERRED"


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery stored: new message ids, and accounts that already had this Message-ID."""

    stored_message_ids: list[int]
    duplicate_account_ids: list[int]


@dataclass(frozen=True)
class _NewMessage:
    """One row of `message` (and its body) to insert."""

    account_id: int
    direction: Direction
    fields: HeaderFields
    raw: bytes
    is_bounce: bool


_MESSAGE_COLUMNS = (
    "account_id",
    "direction",
    "message_id_header",
    "from_header",
    "to_header",
    "subject",
    "date",
    "size",
    "is_bounce",
    "received_at",
)
_BODY_COLUMNS = ("message_id", "content")
# Well below SQLite's 32766 and PostgreSQL's 65535 bind parameters per statement.
_ROWS_PER_STATEMENT = 500


# SQL text per shape (dialect, statement, number of parameters): building a query costs more than running
# it here (two Tortoise filters took about 0.5 ms of CPU per batch). Only small shapes are kept.
_SQL_CACHE: dict[tuple[Any, ...], str] = {}
_SQL_CACHE_MAX_PARAMETERS = 1000


def _cached_sql(shape: tuple[Any, ...], parameters: int, build: Callable[[], Any]) -> str:
    sql = _SQL_CACHE.get(shape)
    if sql is None:
        sql = str(build())
        if parameters <= _SQL_CACHE_MAX_PARAMETERS:
            _SQL_CACHE[shape] = sql
    return sql


def _parameters(first: int, count: int) -> list[Parameter]:
    """Bind parameters `first`..`first + count - 1`: `?` on SQLite, `$n` on PostgreSQL."""
    return [Parameter(idx=first + offset) for offset in range(count)]


def _insert_sql(
    query_class: type[Query], table: str, columns: tuple[str, ...], rows: int, returning: str | None
) -> str:
    """A multi-row INSERT in the connection's dialect."""

    def build() -> Any:
        query: Any = query_class.into(Table(table)).columns(*columns)  # pypika-tortoise types builders loosely
        for row in range(rows):
            query = query.insert(*_parameters(row * len(columns) + 1, len(columns)))
        return query.returning(returning) if returning is not None else query

    return _cached_sql(("insert", query_class, table, columns, rows, returning), rows * len(columns), build)


async def _live_accounts(conn: BaseDBAsyncClient, account_ids: Sequence[int]) -> set[int]:
    """Those of `account_ids` that exist, are active and are not being merged or deleted."""

    def build() -> Any:
        table = Table(MailAccount._meta.db_table)
        count = len(account_ids)
        condition = (
            table.id.isin(_parameters(1, count))
            & (table.active == Parameter(idx=count + 1))
            & table.pending_operation.isnull()
        )
        return conn.query_class.from_(table).select(table.id).where(condition)

    sql = _cached_sql(("live", conn.query_class, len(account_ids)), len(account_ids) + 1, build)
    return {int(row["id"]) for row in await conn.execute_query_dict(sql, [*account_ids, True])}


async def _received_message_ids(
    conn: BaseDBAsyncClient, account_ids: Sequence[int], message_ids: Sequence[str]
) -> set[tuple[int, str]]:
    """(account, Message-ID) pairs among these that were already received (INBOUND)."""

    def build() -> Any:
        table = Table(Message._meta.db_table)
        accounts, ids = len(account_ids), len(message_ids)
        condition = (
            table.account_id.isin(_parameters(1, accounts))
            & table.message_id_header.isin(_parameters(accounts + 1, ids))
            & (table.direction == Parameter(idx=accounts + ids + 1))
        )
        return conn.query_class.from_(table).select(table.account_id, table.message_id_header).where(condition)

    parameters = len(account_ids) + len(message_ids) + 1
    sql = _cached_sql(("received", conn.query_class, len(account_ids), len(message_ids)), parameters, build)
    rows = await conn.execute_query_dict(sql, [*account_ids, *message_ids, Direction.INBOUND.value])
    return {(int(row["account_id"]), str(row["message_id_header"])) for row in rows}


async def _insert_messages(conn: BaseDBAsyncClient, rows: Sequence[_NewMessage]) -> list[int]:
    """Insert messages and their bodies, one multi-row INSERT each per chunk; the new ids in the order of `rows`.

    Tortoise's `Model.create` per row (model instance, query building, one round trip each) was most of the
    listener's cost. RETURNING gives the ids in no guaranteed order, so they are sorted: the sequence
    (PostgreSQL) and AUTOINCREMENT (SQLite) hand them out ascending in the order of the VALUES rows.
    """
    received_at = datetime.now(UTC)
    ids: list[int] = []
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        values: list[Any] = []
        for row in chunk:
            fields = row.fields
            values += [
                row.account_id,
                row.direction.value,
                fields.message_id,
                fields.from_header,
                fields.to_header,
                fields.subject,
                fields.date,
                len(row.raw),
                row.is_bounce,
                received_at,
            ]
        sql = _insert_sql(conn.query_class, Message._meta.db_table, _MESSAGE_COLUMNS, len(chunk), "id")
        # execute_query_dict: the asyncpg client's execute_query drops the rows of an INSERT.
        returned = await conn.execute_query_dict(sql, values)
        chunk_ids = sorted(int(record["id"]) for record in returned)
        if len(chunk_ids) != len(chunk):
            raise RuntimeError(f"INSERT returned {len(chunk_ids)} ids for {len(chunk)} messages")
        bodies: list[Any] = []
        for message_id, row in zip(chunk_ids, chunk, strict=True):
            bodies += [message_id, row.raw]
        sql = _insert_sql(conn.query_class, MessageBody._meta.db_table, _BODY_COLUMNS, len(chunk), None)
        await conn.execute_query(sql, bodies)
        ids += chunk_ids
    return ids


async def deliver_message(recipients: Sequence[Recipient], raw: bytes) -> DeliveryResult:
    """Store one copy of a received message in each recipient's account, all or nothing.

    A Message-ID the account already received is not stored again (a retrying server). If an
    account was merged away, deleted or disabled since RCPT, nothing is stored and DeliveryDeferred
    tells the sender to retry; the retry then gets the final answer for that address. On PostgreSQL
    the insert waits for a merge's FOR UPDATE lock on the account; if the account is gone after it,
    the RESTRICT foreign key refuses the row and the delivery is deferred the same way.
    """
    try:
        [outcome] = await _deliver_batch([(recipients, raw)])
    except IntegrityError:
        raise DeliveryDeferred("address") from None
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


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
            outcomes: list[DeliveryResult | Exception]
            try:
                outcomes = await _deliver_batch([(item.recipients, item.raw) for item in batch])
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


def _accounts_of(recipients: Sequence[Recipient]) -> dict[int, bool]:
    """Account id -> whether the message is a bounce for it (only if every address of it was a `.out` one)."""
    bounce_only: dict[int, bool] = {}
    for recipient in recipients:
        bounce_only[recipient.account_id] = bounce_only.get(recipient.account_id, True) and recipient.is_bounce
    return bounce_only


async def _commit_or_roll_back(conn: TransactionalDBClient) -> None:
    """Commit inside the block on SQLite, and roll back when the COMMIT itself fails.

    SQLite keeps a transaction open after a failed COMMIT (a deferred constraint, a full disk) and
    Tortoise 1.1 leaves it so: its one shared connection would go on seeing the uncommitted rows, and the
    next transaction's BEGIN fails and never releases Tortoise's transaction lock, which stalls every later
    one. PostgreSQL ends a failed transaction itself, so there Tortoise commits on leaving the block.
    """
    if conn.capabilities.dialect != "sqlite":
        return
    try:
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise


async def _deliver_batch(
    batch: Sequence[tuple[Sequence[Recipient], bytes]],
) -> list[DeliveryResult | Exception]:
    """Deliver messages in one transaction: one liveness query, one duplicate query, one insert per table.

    One outcome per message: DeliveryDeferred when one of its accounts is gone or inactive, else what
    was stored. Raises (and stores nothing) when the transaction fails, e.g. on PostgreSQL the foreign
    key refusing a row for an account a merge just deleted.
    """
    prepared = [(_accounts_of(recipients), parse_header_fields(raw), raw) for recipients, raw in batch]
    account_ids = sorted({account_id for accounts, _, _ in prepared for account_id in accounts})
    if not account_ids:
        return [DeliveryResult([], []) for _ in batch]
    message_ids = sorted({fields.message_id for _, fields, _ in prepared if fields.message_id is not None})
    async with in_transaction() as conn:
        live = await _live_accounts(conn, account_ids)
        seen = await _received_message_ids(conn, account_ids, message_ids) if message_ids else set()
        new_rows: list[_NewMessage] = []
        # Per message: the slice of new_rows it stored and the accounts that had it already, or why not.
        plans: list[tuple[int, int, list[int]] | Exception] = []
        for accounts, fields, raw in prepared:
            if not accounts.keys() <= live:
                plans.append(DeliveryDeferred("address"))
                continue
            start, duplicates = len(new_rows), []
            for account_id in sorted(accounts):
                if fields.message_id is not None:
                    if (account_id, fields.message_id) in seen:
                        duplicates.append(account_id)
                        continue
                    seen.add((account_id, fields.message_id))
                new_rows.append(_NewMessage(account_id, Direction.INBOUND, fields, raw, accounts[account_id]))
            plans.append((start, len(new_rows), duplicates))
        stored_ids = await _insert_messages(conn, new_rows) if new_rows else []
        await _commit_or_roll_back(conn)
    return [
        plan if isinstance(plan, Exception) else DeliveryResult(stored_ids[plan[0] : plan[1]], plan[2])
        for plan in plans
    ]


async def store_sent_message(account_id: int, raw: bytes) -> Message:
    """Store a message the relay accepted as OUTBOUND; NotFound if the account vanished meanwhile."""
    row = _NewMessage(account_id, Direction.OUTBOUND, parse_header_fields(raw), raw, is_bounce=False)
    try:
        async with in_transaction() as conn:
            [message_id] = await _insert_messages(conn, [row])
            return await Message.get(id=message_id, using_db=conn)
    except (IntegrityError, OperationalError):
        raise NotFound("accountId") from None
