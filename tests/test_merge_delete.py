"""Deleting and merging accounts: confirmation, message handling, atomicity and races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tortoise.exceptions import IntegrityError, OperationalError

from orm.models import MailAccount, Mailbox, Message, MessageBody
from resolvers import accounts as ops
from resolvers.errors import AccountError, NotFound
from tests.support.api import Api
from tests.support.documents import ACCOUNT, DELETE, MERGE, SET_STATUS
from tests.support.factories import Account, add_messages, new_account, row_id


async def test_delete_needs_the_typed_address(api: Api) -> None:
    """deleteAccount with a wrong confirmation is CONFIRMATION_MISMATCH and changes nothing."""
    account = await new_account(api, "vertrieb@firma.example")
    await add_messages(row_id(account), 3)
    for confirm in ["", "falsch@firma.example", "vertrieb@firma"]:
        payload = (await api(DELETE, {"input": {"accountId": account["id"], "confirm": confirm}}))["deleteAccount"]
        assert payload["deletedAccountId"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("CONFIRMATION_MISMATCH", ["input", "confirm"])
        ]
    assert (await api(ACCOUNT, {"id": account["id"]}))["account"]["messageCount"] == 3


async def test_delete_removes_account_and_messages(api: Api) -> None:
    """A confirmed delete (case-insensitive) removes the account and every message with its body."""
    account = await new_account(api, "Vertrieb@Firma.example")
    keep = await new_account(api, "info@firma.example")
    await add_messages(row_id(account), 4)
    await add_messages(row_id(keep), 2)
    payload = (await api(DELETE, {"input": {"accountId": account["id"], "confirm": " VERTRIEB@firma.EXAMPLE "}}))[
        "deleteAccount"
    ]
    assert payload == {"deletedAccountId": account["id"], "deletedMessageCount": 4, "userErrors": []}
    assert (await api(ACCOUNT, {"id": account["id"]}))["account"] is None
    assert await Message.all().count() == 2
    assert await MessageBody.all().count() == 2
    again = (await api(DELETE, {"input": {"accountId": account["id"], "confirm": account["email"]}}))["deleteAccount"]
    assert again["userErrors"][0]["code"] == "NOT_FOUND"


async def test_merge_moves_messages_and_deletes_source(api: Api) -> None:
    """mergeAccounts moves every message of the source to the target, then deletes the source."""
    source = await new_account(api, "alt@firma.example")
    target = await new_account(api, "neu@firma.example")
    moved = await add_messages(row_id(source), 5)
    await add_messages(row_id(target), 2)
    payload = (
        await api(
            MERGE, {"input": {"sourceId": source["id"], "targetId": target["id"], "confirm": "ALT@firma.example"}}
        )
    )["mergeAccounts"]
    assert payload["userErrors"] == []
    assert payload["movedMessageCount"] == 5
    assert payload["deletedAccountId"] == source["id"]
    assert payload["account"]["id"] == target["id"]
    assert payload["account"]["messageCount"] == 7
    assert (await api(ACCOUNT, {"id": source["id"]}))["account"] is None
    assert set(await Message.filter(id__in=moved).values_list("account_id", flat=True)) == {row_id(target)}
    released = await Mailbox.get(number=int(source["inboundAddress"].split("@")[0][1:]))
    assert released.released_at is not None


async def test_merge_errors(api: Api) -> None:
    """SAME_ACCOUNT, NOT_FOUND, CONFIRMATION_MISMATCH and an inactive target change nothing."""
    source = await new_account(api, "alt@firma.example")
    target = await new_account(api, "neu@firma.example")
    await add_messages(row_id(source), 2)
    missing = "TWFpbEFjY291bnQ6OTk5OTk="

    async def errors(source_id: str, target_id: str, confirm: str) -> list[tuple[str, list[str]]]:
        payload = (await api(MERGE, {"input": {"sourceId": source_id, "targetId": target_id, "confirm": confirm}}))[
            "mergeAccounts"
        ]
        assert payload["account"] is None and payload["movedMessageCount"] is None
        return [(e["code"], e["field"]) for e in payload["userErrors"]]

    assert await errors(source["id"], source["id"], source["email"]) == [("SAME_ACCOUNT", ["input", "targetId"])]
    assert await errors(missing, target["id"], source["email"]) == [("NOT_FOUND", ["input", "sourceId"])]
    assert await errors(source["id"], missing, source["email"]) == [("NOT_FOUND", ["input", "targetId"])]
    assert await errors(source["id"], target["id"], target["email"]) == [
        ("CONFIRMATION_MISMATCH", ["input", "confirm"])
    ]
    await api(SET_STATUS, {"input": {"accountId": target["id"], "status": "INACTIVE"}})
    assert await errors(source["id"], target["id"], source["email"]) == [("ACCOUNT_INACTIVE", ["input", "targetId"])]
    assert await Message.filter(account_id=row_id(source)).count() == 2
    assert await MailAccount.all().count() == 2


async def test_an_account_with_messages_cannot_vanish_by_cascade(api: Api) -> None:
    """The message foreign key is RESTRICT: deleting an account row that still has messages fails."""
    account = await new_account(api, "vertrieb@firma.example")
    await add_messages(row_id(account), 1)
    with pytest.raises((IntegrityError, OperationalError)):
        await MailAccount.filter(id=row_id(account)).delete()
    assert await Message.all().count() == 1


async def test_mailbox_numbers_are_never_reused(api: Api) -> None:
    """After the newest account is deleted, the next account gets a new, higher mailbox number."""
    first = await new_account(api, "eins@firma.example")
    newest = await new_account(api, "zwei@firma.example")
    await api(DELETE, {"input": {"accountId": newest["id"], "confirm": newest["email"]}})
    third = await new_account(api, "drei@firma.example")
    numbers = [int(a["inboundAddress"].split("@")[0][1:]) for a in (first, newest, third)]
    assert numbers[0] < numbers[1] < numbers[2]


async def _outcome(coro: Any) -> str:
    try:
        await coro
    except AccountError as exc:
        return exc.code
    return "ok"


async def _snapshot() -> dict[int, list[int]]:
    by_account: dict[int, list[int]] = {}
    for message_id, account_id in await Message.all().values_list("id", "account_id"):
        by_account.setdefault(account_id, []).append(message_id)
    return by_account


async def _existing_ids() -> set[int]:
    return set(await MailAccount.all().values_list("id", flat=True))


@pytest.mark.parametrize("round_", range(5))
async def test_opposite_merges_race_without_loss_or_deadlock(api: Api, round_: int) -> None:
    """Concurrent merges A→B and B→A: one wins, the other is NOT_FOUND; no message lost or orphaned."""
    a = await new_account(api, f"a{round_}@firma.example")
    b = await new_account(api, f"b{round_}@firma.example")
    tenant_id = (await MailAccount.get(id=row_id(a))).tenant_id
    messages = set(await add_messages(row_id(a), 6) + await add_messages(row_id(b), 4))
    first, second = (row_id(a), row_id(b)) if round_ % 2 == 0 else (row_id(b), row_id(a))
    async with asyncio.timeout(30):
        outcomes = await asyncio.gather(
            _outcome(ops.merge_accounts(tenant_id, first, second, (a if first == row_id(a) else b)["email"])),
            _outcome(ops.merge_accounts(tenant_id, second, first, (b if first == row_id(a) else a)["email"])),
        )
    assert sorted(outcomes) == ["NOT_FOUND", "ok"]
    survivors = await _existing_ids()
    assert len(survivors) == 1
    snapshot = await _snapshot()
    assert set(snapshot) == survivors
    assert set(snapshot[survivors.pop()]) == messages


@pytest.mark.parametrize("victim", ["source", "target"])
async def test_merge_racing_delete_keeps_every_message_accounted_for(api: Api, victim: str) -> None:
    """A merge racing a delete: each message ends in an existing account or was counted by the delete."""
    for round_ in range(4):
        a = await new_account(api, f"quelle{round_}@firma.example")
        b = await new_account(api, f"ziel{round_}@firma.example")
        tenant_id = (await MailAccount.get(id=row_id(a))).tenant_id
        messages = set(await add_messages(row_id(a), 5) + await add_messages(row_id(b), 3))
        doomed = a if victim == "source" else b
        deleted_counts: list[int] = []

        async def delete(tenant_id: int, doomed: Account, deleted_counts: list[int]) -> None:
            result = await ops.delete_account(tenant_id, row_id(doomed), doomed["email"])
            deleted_counts.append(result.deleted_message_count)

        merge = ops.merge_accounts(tenant_id, row_id(a), row_id(b), a["email"])
        racers = [_outcome(merge), _outcome(delete(tenant_id, doomed, deleted_counts))]
        if round_ % 2:
            racers.reverse()
        async with asyncio.timeout(30):
            outcomes = await asyncio.gather(*racers)
        assert "ok" in outcomes
        assert set(outcomes) <= {"ok", "NOT_FOUND"}
        snapshot = await _snapshot()
        assert set(snapshot) <= await _existing_ids()
        remaining = {m for ids in snapshot.values() for m in ids} & messages
        assert len(messages - remaining) == sum(deleted_counts)
        for account in await MailAccount.filter(id__in=[row_id(a), row_id(b)]):
            await ops.delete_account(tenant_id, account.id, account.email)


async def test_operations_of_resolvers_raise_not_found_for_other_tenants(api: Api) -> None:
    """The resolver functions themselves refuse another tenant's account ids."""
    account = await new_account(api, "vertrieb@firma.example")
    stranger = 10**6
    with pytest.raises(NotFound):
        await ops.set_status(stranger, row_id(account), False)
    with pytest.raises(NotFound):
        await ops.delete_account(stranger, row_id(account), account["email"])
    assert await ops.get_account(stranger, row_id(account)) is None
