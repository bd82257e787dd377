"""The account list costs the same number of SQL statements for 10 or 100 accounts (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orm.models import Direction, MailAccount, Message
from tests.support.api import Api
from tests.support.documents import ACCOUNTS, CREATE
from tests.support.sql import Statements, recorded_statements


@pytest.fixture
def sql() -> Iterator[Statements]:
    with recorded_statements() as recorded:
        yield recorded


async def test_list_with_message_count_is_not_n_plus_one(api: Api, sql: Statements) -> None:
    """`accounts(first: 10)` and `accounts(first: 100)` with messageCount issue the same statements."""
    for i in range(100):
        await api(CREATE, {"input": {"email": f"konto{i}@firma.example", "senderName": "Vertrieb"}})
    for account in await MailAccount.all().order_by("id").limit(20):
        await Message.create(account_id=account.id, direction=Direction.INBOUND, size=1)

    counts = {}
    for first in (10, 100):
        sql.sql.clear()
        data = (await api(ACCOUNTS, {"first": first}))["accounts"]
        assert len(data["edges"]) == first
        assert sum(edge["node"]["messageCount"] for edge in data["edges"]) == min(first, 20)
        counts[first] = len(sql.sql)
    assert counts[10] == counts[100]
    assert counts[10] <= 5, sql.sql
