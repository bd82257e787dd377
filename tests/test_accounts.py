"""Creating, listing, searching and (de)activating mail accounts over GraphQL."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from strawberry import relay

from orm.models import Mailbox
from tests.support.api import MAILBOX_DOMAIN, Api
from tests.support.documents import ACCOUNT, ACCOUNTS, CREATE, NODE, SET_STATUS


async def create(api: Api, email: str, name: str = "Vertrieb", active: bool = True) -> dict[str, Any]:
    data = await api(CREATE, {"input": {"email": email, "senderName": name, "active": active}})
    payload: dict[str, Any] = data["createAccount"]
    return payload


async def test_create_returns_account_with_platform_addresses(api: Api) -> None:
    """A new account gets mailbox number N with inbound pN@ and outbound pN.out@ addresses."""
    payload = await create(api, "vertrieb@firma.example", "Vertrieb Firma")
    assert payload["userErrors"] == []
    account = payload["account"]
    number = account["inboundAddress"].split("@")[0].removeprefix("p")
    assert number.isdigit()
    assert account["inboundAddress"] == f"p{number}@{MAILBOX_DOMAIN}"
    assert account["outboundAddress"] == f"p{number}.out@{MAILBOX_DOMAIN}"
    assert account["email"] == "vertrieb@firma.example"
    assert account["senderName"] == "Vertrieb Firma"
    assert account["status"] == "ACTIVE"
    assert account["messageCount"] == 0
    assert base64.b64decode(account["id"]).decode().startswith("MailAccount:")


async def test_create_inactive_account(api: Api) -> None:
    """`active: false` creates the account inactive."""
    payload = await create(api, "info@firma.example", active=False)
    assert payload["account"]["status"] == "INACTIVE"


async def test_idn_domain_is_accepted_and_duplicates_are_case_insensitive(api: Api) -> None:
    """An IDN address is kept as entered; the same address in other case or ACE form is a duplicate."""
    first = await create(api, "Verkauf@Bücher.example")
    assert first["userErrors"] == []
    assert first["account"]["email"] == "Verkauf@Bücher.example"
    for variant in ("verkauf@bücher.example", "VERKAUF@xn--bcher-kva.example", " verkauf@BÜCHER.example "):
        again = await create(api, variant)
        assert again["account"] is None
        assert again["userErrors"] == [
            {
                "code": "DUPLICATE_EMAIL",
                "field": ["input", "email"],
                "message": "Für diese E-Mail-Adresse gibt es bereits einen Mail-Account.",
            }
        ]


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ohne-at.example",
        "a@b",
        "zwei@@firma.example",
        "leer zeichen@firma.example",
        "x" * 65 + "@firma.example",
        "a@" + ".".join(["abcdefghij" * 6] * 5) + ".example",
        "name@firma.example\r\nBcc: opfer@example.com",
        "ümlaut@firma.example",
    ],
)
async def test_invalid_email_is_refused(api: Api, email: str) -> None:
    """Malformed, over-long (RFC 5321) and header-injecting addresses give INVALID_EMAIL and store nothing."""
    payload = await create(api, email)
    assert payload["account"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_EMAIL", ["input", "email"])]
    assert await Mailbox.all().count() == 0


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * 201, "Vertrieb\r\nBcc: opfer@example.com", "Tab\tName", "Null\x00", "Zeile\u2028zwei"]
)
async def test_invalid_sender_name_is_refused(api: Api, name: str) -> None:
    """Empty, over 200 characters, line breaks and control characters give INVALID_SENDER_NAME."""
    payload = await create(api, "vertrieb@firma.example", name)
    assert payload["account"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_SENDER_NAME", ["input", "senderName"])
    ]


async def test_sender_name_of_200_characters_is_accepted(api: Api) -> None:
    """Exactly 200 characters, umlauts and quotes are a valid sender name."""
    name = 'Müller "Vertrieb" ' + "x" * 182
    payload = await create(api, "vertrieb@firma.example", name)
    assert payload["account"]["senderName"] == name


async def test_messages_are_english_with_accept_language_en(api: Api) -> None:
    """With Accept-Language: en the user error message is English; the code stays the same."""
    api.lang = "en-US,en;q=0.9,de;q=0.5"
    payload = await create(api, "kaputt")
    assert payload["userErrors"][0]["code"] == "INVALID_EMAIL"
    assert payload["userErrors"][0]["message"] == "Please enter a valid email address."


async def test_mailbox_numbers_increase_and_are_unique(api: Api) -> None:
    """Each account gets its own, increasing mailbox number."""
    numbers = []
    for i in range(3):
        payload = await create(api, f"a{i}@firma.example")
        numbers.append(int(payload["account"]["inboundAddress"].split("@")[0][1:]))
    assert numbers == sorted(set(numbers))


async def test_list_paginates_with_cursors(api: Api) -> None:
    """`accounts` pages through all accounts in creation order with totalCount and pageInfo."""
    emails = [f"konto{i:02}@firma.example" for i in range(7)]
    for email in emails:
        await create(api, email)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = (await api(ACCOUNTS, {"first": 3, "after": after}))["accounts"]
        assert data["totalCount"] == 7
        seen += [edge["node"]["email"] for edge in data["edges"]]
        pages += 1
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
        assert after == data["edges"][-1]["cursor"]
    assert seen == emails
    assert pages == 3


async def test_list_default_first_is_50(api: Api) -> None:
    """Without `first` a page holds at most 50 accounts."""
    for i in range(52):
        await create(api, f"k{i}@firma.example")
    data = (await api(ACCOUNTS))["accounts"]
    assert len(data["edges"]) == 50
    assert data["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("first", [101, -1])
async def test_first_out_of_range_is_an_error(api: Api, first: int) -> None:
    """`first` above 100 (or negative) is a top-level error with code BAD_USER_INPUT."""
    errors = await api.errors(ACCOUNTS, {"first": first})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "100" in errors[0]["message"]


async def test_invalid_cursor_is_an_error(api: Api) -> None:
    """A cursor the service did not hand out is a BAD_USER_INPUT error, not a crash."""
    errors = await api.errors(ACCOUNTS, {"after": "bm90IGEgY3Vyc29y"})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_filter_by_status_and_search(api: Api) -> None:
    """`status` filters by ACTIVE/INACTIVE; `search` matches address or sender name, case-insensitive."""
    await create(api, "vertrieb@firma.example", "Team Vertrieb")
    await create(api, "info@firma.example", "Info", active=False)
    await create(api, "max@andere.example", "Max Müller")

    async def emails(**variables: Any) -> list[str]:
        data = (await api(ACCOUNTS, variables))["accounts"]
        assert data["totalCount"] == len(data["edges"])
        return [edge["node"]["email"] for edge in data["edges"]]

    assert await emails(status="INACTIVE") == ["info@firma.example"]
    assert await emails(status="ACTIVE") == ["vertrieb@firma.example", "max@andere.example"]
    assert await emails(search="FIRMA") == ["vertrieb@firma.example", "info@firma.example"]
    assert await emails(search="müller") == ["max@andere.example"]
    assert await emails(search="vertrieb", status="INACTIVE") == []
    assert await emails(search="%") == []
    assert await emails(search="_") == []


async def test_set_status_toggles_and_keeps_data(api: Api) -> None:
    """setStatus switches between INACTIVE and ACTIVE and returns the account."""
    account = (await create(api, "vertrieb@firma.example"))["account"]
    off = (await api(SET_STATUS, {"input": {"accountId": account["id"], "status": "INACTIVE"}}))["setStatus"]
    assert off["userErrors"] == []
    assert off["account"]["status"] == "INACTIVE"
    assert off["account"]["inboundAddress"] == account["inboundAddress"]
    fetched = (await api(ACCOUNT, {"id": account["id"]}))["account"]
    assert fetched["status"] == "INACTIVE"
    on = (await api(SET_STATUS, {"input": {"accountId": account["id"], "status": "ACTIVE"}}))["setStatus"]
    assert on["account"]["status"] == "ACTIVE"


@pytest.mark.parametrize("account_id", ["TWFpbEFjY291bnQ6OTk5OTk=", "kaputt", "U29tZXRoaW5nOjE="])
async def test_set_status_of_unknown_account_is_not_found(api: Api, account_id: str) -> None:
    """An unknown, malformed or wrongly typed ID gives NOT_FOUND on the accountId field."""
    payload = (await api(SET_STATUS, {"input": {"accountId": account_id, "status": "ACTIVE"}}))["setStatus"]
    assert payload["account"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "accountId"])]


async def test_account_and_node_queries(api: Api) -> None:
    """`account(id)` and `node(id)` return the account; unknown IDs give null."""
    account = (await create(api, "vertrieb@firma.example"))["account"]
    assert (await api(ACCOUNT, {"id": account["id"]}))["account"]["email"] == "vertrieb@firma.example"
    assert (await api(NODE, {"id": account["id"]}))["node"] == {"id": account["id"], "email": "vertrieb@firma.example"}
    assert (await api(ACCOUNT, {"id": "TWFpbEFjY291bnQ6OTk5"}))["account"] is None
    assert (await api(NODE, {"id": "TWFpbEFjY291bnQ6OTk5"}))["node"] is None


async def test_ids_beyond_the_id_columns_are_ids_that_do_not_exist(api: Api) -> None:
    """An account id past 32 bits (or a message id past 64) names no row: NOT_FOUND or null, never a crash
    (PostgreSQL refuses such a number even in a comparison with an int column)."""
    for number in (2**31, 2**40, 2**63):
        account_id = str(relay.GlobalID("MailAccount", str(number)))
        switched = await api(SET_STATUS, {"input": {"accountId": account_id, "status": "ACTIVE"}})
        assert [e["code"] for e in switched["setStatus"]["userErrors"]] == ["NOT_FOUND"]
        assert (await api(ACCOUNT, {"id": account_id}))["account"] is None
        assert (await api(NODE, {"id": account_id}))["node"] is None
    message_id = str(relay.GlobalID("Message", str(2**63)))
    assert (await api("query($id: ID!) { message(id: $id) { id } }", {"id": message_id}))["message"] is None
