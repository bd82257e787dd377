"""Messages in the API: the connection on MailAccount, Query.message with raw, tenancy, merge and delete."""

from __future__ import annotations

import base64

from tests.support.api import Api
from tests.support.documents import DELETE, MERGE, MESSAGE, MESSAGE_NODE, MESSAGES
from tests.support.factories import mail, new_account
from tests.support.smtp import deliver


async def test_messages_are_listed_newest_first_with_cursors(api: Api, listener: int) -> None:
    """`messages` pages newest first with totalCount, cursors and pageInfo."""
    account = await new_account(api, "vertrieb@firma.example")
    for i in range(5):
        raw = mail(subject=f"Nr. {i}", message_id=f"<m{i}@x.example>")
        assert (await deliver(listener, [account.inbound], raw)).code == 250
    subjects: list[str] = []
    after = None
    while True:
        data = (await api(MESSAGES, {"id": account.id, "first": 2, "after": after}))["account"]
        assert data["messageCount"] == 5
        connection = data["messages"]
        assert connection["totalCount"] == 5
        subjects += [edge["node"]["subject"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert subjects == [f"Nr. {i}" for i in reversed(range(5))]


async def test_message_fields_and_raw(api: Api, reader: Api, listener: int) -> None:
    """A read token sees the parsed fields and gets raw (text) and rawBase64 (exact bytes) by ID."""
    account = await new_account(api, "vertrieb@firma.example")
    raw = mail(subject="=?utf-8?b?w4RwZmVs?=", to=account.inbound) + b"\xe4\r\n"
    assert (await deliver(listener, [account.inbound], raw)).code == 250
    edge = (await reader(MESSAGES, {"id": account.id}))["account"]["messages"]["edges"][0]
    node = edge["node"]
    assert node["direction"] == "INBOUND"
    assert node["messageId"] == "<angebot-1@extern.example>"
    assert node["from"] == "Erika Mustermann <erika@extern.example>"
    assert node["to"] == account.inbound
    assert node["subject"] == "Äpfel"
    assert node["date"] == "2025-06-03T08:15:00+00:00"
    assert node["size"] == len(raw)
    assert node["isBounce"] is False
    message = (await reader(MESSAGE, {"id": node["id"]}))["message"]
    assert base64.b64decode(message["rawBase64"]) == raw
    assert message["raw"] == raw.decode("utf-8", errors="replace")
    assert base64.b64decode(node["id"]).decode().startswith("Message:")


async def test_direction_filter(api: Api, listener: int) -> None:
    """`direction: OUTBOUND` leaves out received mail."""
    account = await new_account(api, "vertrieb@firma.example")
    assert (await deliver(listener, [account.inbound], mail())).code == 250
    inbound = (await api(MESSAGES, {"id": account.id, "direction": "INBOUND"}))["account"]["messages"]
    outbound = (await api(MESSAGES, {"id": account.id, "direction": "OUTBOUND"}))["account"]["messages"]
    assert (inbound["totalCount"], outbound["totalCount"]) == (1, 0)


async def test_other_tenants_messages_are_invisible(api: Api, other: Api, listener: int) -> None:
    """Another tenant gets null for the message, the node and the account: ids behave like missing ones."""
    account = await new_account(api, "vertrieb@firma.example")
    assert (await deliver(listener, [account.inbound], mail())).code == 250
    message_id = (await api(MESSAGES, {"id": account.id}))["account"]["messages"]["edges"][0]["node"]["id"]
    assert (await other(MESSAGE, {"id": message_id}))["message"] is None
    assert (await other(MESSAGE_NODE, {"id": message_id}))["node"] is None
    assert (await other(MESSAGES, {"id": account.id}))["account"] is None
    assert (await api(MESSAGE_NODE, {"id": message_id}))["node"]["subject"] == "Angebot"
    for bogus in ["nix", base64.b64encode(b"MailAccount:1").decode(), base64.b64encode(b"Message:abc").decode()]:
        assert (await api(MESSAGE, {"id": bogus}))["message"] is None


async def test_first_over_100_is_an_error(api: Api) -> None:
    """`messages(first: 101)` is a BAD_USER_INPUT error, like `accounts`."""
    account = await new_account(api, "vertrieb@firma.example")
    errors = await api.errors(MESSAGES, {"id": account.id, "first": 101})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_merge_moves_messages_received_over_smtp(api: Api, listener: int) -> None:
    """Merging moves SMTP-delivered mail into the target; a later delivery to the source is deferred (451) while
    the listener still remembers the mailbox, stores nothing, and its retry gets 550 5.1.1."""
    source = await new_account(api, "alt@firma.example")
    target = await new_account(api, "neu@firma.example")
    for i in range(3):
        assert (await deliver(listener, [source.inbound], mail(message_id=f"<s{i}@x.example>"))).code == 250
    assert (await deliver(listener, [target.inbound], mail(message_id="<t@x.example>"))).code == 250
    payload = (await api(MERGE, {"input": {"sourceId": source.id, "targetId": target.id, "confirm": source.email}}))[
        "mergeAccounts"
    ]
    assert (payload["userErrors"], payload["movedMessageCount"]) == ([], 3)
    connection = (await api(MESSAGES, {"id": target.id}))["account"]["messages"]
    assert sorted(edge["node"]["messageId"] for edge in connection["edges"]) == [
        "<s0@x.example>", "<s1@x.example>", "<s2@x.example>", "<t@x.example>"
    ]
    late = mail(message_id="<spaet@x.example>")
    reply = await deliver(listener, [source.inbound], late)
    assert (reply.code, reply.text[:5]) == (451, "4.2.1")
    retry = await deliver(listener, [source.inbound], late)
    assert (retry.code, retry.text[:5]) == (550, "5.1.1")
    assert (await api(MESSAGES, {"id": target.id}))["account"]["messages"]["totalCount"] == 4


async def test_delete_removes_messages_received_over_smtp(api: Api, listener: int) -> None:
    """Deleting an account removes its SMTP-delivered messages; their IDs then resolve to null."""
    account = await new_account(api, "weg@firma.example")
    for i in range(2):
        assert (await deliver(listener, [account.inbound], mail(message_id=f"<d{i}@x.example>"))).code == 250
    message_id = (await api(MESSAGES, {"id": account.id}))["account"]["messages"]["edges"][0]["node"]["id"]
    payload = (await api(DELETE, {"input": {"accountId": account.id, "confirm": account.email}}))["deleteAccount"]
    assert payload["deletedMessageCount"] == 2
    assert (await api(MESSAGE, {"id": message_id}))["message"] is None
