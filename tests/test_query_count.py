"""The account list costs the same number of SQL statements for 10 or 100 accounts (no N+1)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from orm.models import Direction, MailAccount, Message
from tests.support.api import Api
from tests.support.documents import ACCOUNTS, CREATE


class StatementCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            self.statements.append(message)


@pytest.fixture
def sql() -> Iterator[StatementCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = StatementCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    yield counter
    logger.removeHandler(counter)
    logger.setLevel(previous)


async def test_list_with_message_count_is_not_n_plus_one(api: Api, sql: StatementCounter) -> None:
    """`accounts(first: 10)` and `accounts(first: 100)` with messageCount issue the same statements."""
    for i in range(100):
        await api(CREATE, {"input": {"email": f"konto{i}@firma.example", "senderName": "Vertrieb"}})
    for account in await MailAccount.all().order_by("id").limit(20):
        await Message.create(account_id=account.id, direction=Direction.INBOUND, size=1)

    counts = {}
    for first in (10, 100):
        sql.statements.clear()
        data = (await api(ACCOUNTS, {"first": first}))["accounts"]
        assert len(data["edges"]) == first
        assert sum(edge["node"]["messageCount"] for edge in data["edges"]) == min(first, 20)
        counts[first] = len(sql.statements)
    assert counts[10] == counts[100]
    assert counts[10] <= 5, sql.statements
