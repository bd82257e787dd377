"""updateAccount: changing an account's sender name and address over GraphQL, with validation and races."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import pytest

from orm.models import MailAccount, Message
from resolvers.spf import SpfReportView
from tests.support.api import Api
from tests.support.documents import ACCOUNT_FIELDS, CREATE, USER_ERRORS
from tests.support.factories import add_messages, new_account, row_id
from web.client import Operations

UPDATE = f"""
mutation Update($input: UpdateAccountInput!) {{
  updateAccount(input: $input) {{ account {{ {ACCOUNT_FIELDS} spf {{ ok domain }} }} {USER_ERRORS} }}
}}"""
ACCOUNT_WITH_SPF = f"""
query Account($id: ID!) {{ account(id: $id) {{ {ACCOUNT_FIELDS} spf {{ ok domain }} }} }}"""

T = TypeVar("T")
# Far above any real wait here (a few milliseconds): the bound only stops a hung test.
HANG_BOUND_SECONDS = 30


async def update(api: Api, account_id: str, **fields: str | None) -> dict[str, Any]:
    """Run updateAccount with the given input fields; returns the payload."""
    data = await api(UPDATE, {"input": {"accountId": account_id, **fields}})
    payload: dict[str, Any] = data["updateAccount"]
    return payload


async def store_spf_report(account_id: int, domain: str) -> None:
    """Test data: a stored SPF result as spfCheck leaves it (report, time and verdict)."""
    view = SpfReportView(
        domain=domain,
        checked_at=datetime.now(UTC),
        record="v=spf1 include:_spf.aranes.de -all",
        suggested_record=None,
        lookup_count=1,
        void_lookup_count=0,
        mx_hosts=[f"mx.{domain}"],
        dmarc_record=None,
        problems=[],
        findings=[],
    )
    await MailAccount.filter(id=account_id).update(
        spf_report=view.to_json(), spf_checked_at=view.checked_at, spf_ok=view.ok
    )


async def stored_spf(account_id: int) -> tuple[Any, Any, Any]:
    row = await MailAccount.get(id=account_id)
    return row.spf_report, row.spf_checked_at, row.spf_ok


# --- changing values ------------------------------------------------------------------------------


async def test_new_address_and_name_keep_mailbox_number_and_messages(api: Api) -> None:
    """A changed address and name are stored; the p-addresses, status and every message stay with the account."""
    account = await new_account(api, "vertrieb@firma.example")
    await add_messages(row_id(account), 3)
    payload = await update(api, account["id"], email="Nord@Firma.example", senderName="  Vertrieb Nord ")
    assert payload["userErrors"] == []
    changed = payload["account"]
    assert (changed["email"], changed["senderName"]) == ("Nord@Firma.example", "Vertrieb Nord")
    for unchanged in ("id", "inboundAddress", "outboundAddress", "status", "createdAt"):
        assert changed[unchanged] == account[unchanged]
    assert changed["messageCount"] == 3
    assert changed["updatedAt"] >= account["updatedAt"]
    row = await MailAccount.get(id=row_id(account))
    assert row.email_normalized == "nord@firma.example"
    assert await Message.filter(account_id=row.id).count() == 3


async def test_omitted_field_stays_as_it_is(api: Api) -> None:
    """Only the fields given change: a name alone keeps the address, an address alone keeps the name."""
    account = await new_account(api, "vertrieb@firma.example", "Vertrieb")
    renamed = (await update(api, account["id"], senderName="Verkauf"))["account"]
    assert (renamed["email"], renamed["senderName"]) == ("vertrieb@firma.example", "Verkauf")
    moved = (await update(api, account["id"], email="verkauf@firma.example", senderName=None))["account"]
    assert (moved["email"], moved["senderName"]) == ("verkauf@firma.example", "Verkauf")


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        (None, "updateAccount braucht mindestens eines der Felder `email` oder `senderName`."),
        ("en", "updateAccount needs at least one of the fields `email` or `senderName`."),
    ],
)
async def test_update_without_any_field_is_bad_user_input(api: Api, lang: str | None, message: str) -> None:
    """Neither email nor senderName is a top-level BAD_USER_INPUT error, German unless English is asked for."""
    account = await new_account(api, "vertrieb@firma.example")
    api.lang = lang
    for fields in ({}, {"email": None, "senderName": None}):
        errors = await api.errors(UPDATE, {"input": {"accountId": account["id"], **fields}})
        assert [(e["message"], e["extensions"]["code"]) for e in errors] == [(message, "BAD_USER_INPUT")]


async def test_operation_document_of_the_dashboard_runs(api: Api) -> None:
    """web/operations' UpdateAccount validates against the schema and changes the account when run."""
    operations = Operations.load()
    assert "UpdateAccount" in operations.documents
    assert operations.errors() == {}
    account = await new_account(api, "vertrieb@firma.example")
    variables = {"input": {"accountId": account["id"], "senderName": "Nord"}}
    data = await api(operations.documents["UpdateAccount"], variables)
    assert data["updateAccount"]["account"]["senderName"] == "Nord"
    assert data["updateAccount"]["userErrors"] == []


# --- the stored SPF result ------------------------------------------------------------------------


async def test_new_address_clears_the_stored_spf_result(api: Api) -> None:
    """Another address voids the SPF report of the old domain: report, time and verdict are cleared."""
    account = await new_account(api, "vertrieb@firma.example")
    await store_spf_report(row_id(account), "firma.example")
    before = (await api(ACCOUNT_WITH_SPF, {"id": account["id"]}))["account"]
    assert before["spf"] == {"ok": True, "domain": "firma.example"}
    payload = await update(api, account["id"], email="vertrieb@andere.example")
    assert payload["userErrors"] == []
    assert payload["account"]["spf"] is None
    assert await stored_spf(row_id(account)) == (None, None, None)


async def test_same_address_in_other_form_keeps_spf_and_is_no_duplicate(api: Api) -> None:
    """The own address in other case or IDN form is stored as entered, is no duplicate and keeps the SPF result."""
    account = await new_account(api, "Verkauf@Bücher.example")
    await store_spf_report(row_id(account), "xn--bcher-kva.example")
    stored = await stored_spf(row_id(account))
    for variant in ("verkauf@xn--bcher-kva.example", "VERKAUF@BÜCHER.example"):
        payload = await update(api, account["id"], email=variant)
        assert payload["userErrors"] == []
        assert payload["account"]["email"] == variant
        assert payload["account"]["spf"] == {"ok": True, "domain": "xn--bcher-kva.example"}
        assert await stored_spf(row_id(account)) == stored


async def test_name_change_keeps_the_spf_result(api: Api) -> None:
    """Changing only the sender name leaves the stored SPF result in place."""
    account = await new_account(api, "vertrieb@firma.example")
    await store_spf_report(row_id(account), "firma.example")
    stored = await stored_spf(row_id(account))
    assert (await update(api, account["id"], senderName="Nord"))["userErrors"] == []
    assert await stored_spf(row_id(account)) == stored


# --- refusals -------------------------------------------------------------------------------------


async def test_address_of_another_account_is_a_duplicate(api: Api, other: Api) -> None:
    """An address another account of the tenant has (in any case or IDN form) is DUPLICATE_EMAIL; nothing changes."""
    await new_account(api, "Verkauf@Bücher.example")
    account = await new_account(api, "vertrieb@firma.example")
    await store_spf_report(row_id(account), "firma.example")
    stored = await stored_spf(row_id(account))
    for variant in ("verkauf@bücher.example", "VERKAUF@xn--bcher-kva.example"):
        payload = await update(api, account["id"], email=variant, senderName="Nord")
        assert payload["account"] is None
        assert payload["userErrors"] == [
            {
                "code": "DUPLICATE_EMAIL",
                "field": ["input", "email"],
                "message": "Für diese E-Mail-Adresse gibt es bereits einen Mail-Account.",
            }
        ]
    after = (await api(ACCOUNT_WITH_SPF, {"id": account["id"]}))["account"]
    assert (after["email"], after["senderName"]) == ("vertrieb@firma.example", "Vertrieb")
    assert await stored_spf(row_id(account)) == stored
    # Another tenant's accounts do not count: the unique key is (tenant, address).
    theirs = await new_account(other, "info@globex.example")
    assert (await update(other, theirs["id"], email="verkauf@bücher.example"))["userErrors"] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"email": ""},
        {"email": "kein-at"},
        {"email": "name@firma.example\r\nBcc: opfer@example.com"},
        {"email": "x" * 65 + "@firma.example"},
        {"email": "ümlaut@firma.example"},
        {"email": "vertrieb@p\u0430ypal.de"},  # CYRILLIC SMALL LETTER A among Latin letters: a look-alike domain
        {"email": "vertrieb@firma.invalid"},
        {"email": "vertrieb@localhost"},
        {"senderName": ""},
        {"senderName": "   "},
        {"senderName": "x" * 201},
        {"senderName": "Vertrieb\r\nBcc: opfer@example.com"},
        {"senderName": "Vertrieb\u202enalp"},
    ],
)
@pytest.mark.parametrize("lang", [None, "en"])
async def test_bad_values_are_refused_exactly_like_create(api: Api, fields: dict[str, str], lang: str | None) -> None:
    """A value createAccount refuses gets the same userError from updateAccount, and the account is unchanged."""
    account = await new_account(api, "vertrieb@firma.example")
    api.lang = lang
    create_input = {"email": "neu@firma.example", "senderName": "Neu", **fields}
    created = (await api(CREATE, {"input": create_input}))["createAccount"]
    assert created["account"] is None and len(created["userErrors"]) == 1
    payload = await update(api, account["id"], **fields)
    assert payload["account"] is None
    assert payload["userErrors"] == created["userErrors"]
    after = (await api(ACCOUNT_WITH_SPF, {"id": account["id"]}))["account"]
    assert after == {**account.data, "spf": None}


async def test_unknown_foreign_or_malformed_id_is_not_found(api: Api, other: Api) -> None:
    """Another tenant's account, a deleted-looking id and a malformed id are NOT_FOUND on accountId."""
    theirs = await new_account(other, "info@globex.example")
    missing = base64.b64encode(b"MailAccount:999999").decode()
    for account_id in (theirs["id"], missing, "kaputt", base64.b64encode(b"Message:1").decode()):
        payload = await update(api, account_id, senderName="Übernahme")
        assert payload["account"] is None
        assert [(e["code"], e["field"], e["message"]) for e in payload["userErrors"]] == [
            ("NOT_FOUND", ["input", "accountId"], "Der Mail-Account wurde nicht gefunden.")
        ]
    assert (await MailAccount.get(id=row_id(theirs))).sender_name == "Vertrieb"


async def test_read_token_may_not_update(api: Api, reader: Api) -> None:
    """updateAccount needs write scope: a read token gets FORBIDDEN and the account is unchanged."""
    account = await new_account(api, "vertrieb@firma.example")
    errors = await reader.errors(UPDATE, {"input": {"accountId": account["id"], "senderName": "Nord"}})
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    assert (await MailAccount.get(id=row_id(account))).sender_name == "Vertrieb"


# --- races ----------------------------------------------------------------------------------------


async def _outcome(payload: Awaitable[dict[str, Any]]) -> str:
    result = await payload
    return "ok" if not result["userErrors"] else str(result["userErrors"][0]["code"])


@pytest.mark.parametrize("round_", range(5))
async def test_two_updates_racing_to_one_address_cannot_both_win(api: Api, round_: int) -> None:
    """Two accounts changed to the same address at once: one wins, the other is DUPLICATE_EMAIL, never a crash."""
    a = await new_account(api, f"a{round_}@firma.example")
    b = await new_account(api, f"b{round_}@firma.example")
    target = f"ziel{round_}@firma.example"
    async with asyncio.timeout(HANG_BOUND_SECONDS):
        outcomes = await asyncio.gather(
            _outcome(update(api, a["id"], email=target)),
            _outcome(update(api, b["id"], email=target.upper())),
        )
    assert sorted(outcomes) == ["DUPLICATE_EMAIL", "ok"]
    assert await MailAccount.filter(email_normalized=target).count() == 1


async def test_update_racing_create_of_the_same_address_cannot_both_win(api: Api) -> None:
    """An update and a create of the same new address at once: exactly one account ends with it."""
    for round_ in range(5):
        account = await new_account(api, f"alt{round_}@firma.example")
        target = f"neu{round_}@firma.example"
        create = api(CREATE, {"input": {"email": target, "senderName": "Neu"}})
        async with asyncio.timeout(HANG_BOUND_SECONDS):
            outcomes = await asyncio.gather(
                _outcome(update(api, account["id"], email=target)),
                _outcome(_payload_of(create, "createAccount")),
            )
        assert sorted(outcomes) == ["DUPLICATE_EMAIL", "ok"]
        assert await MailAccount.filter(email_normalized=target).count() == 1


async def _payload_of(data: Awaitable[dict[str, Any]], field: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await data)[field]
    return payload


@pytest.fixture
async def held_transaction(db: str, is_postgres: bool) -> AsyncIterator[asyncpg.Connection]:
    """A second PostgreSQL session with an open transaction, to hold row and index locks while the API runs."""
    if not is_postgres:
        pytest.skip("SQLite serialises writers; row and index locks are proven on PostgreSQL")
    conn = await asyncpg.connect(db)
    await conn.execute("BEGIN")
    try:
        yield conn
    finally:
        # Ends the transaction when a test failed before committing it.
        await conn.execute("ROLLBACK")
        await conn.close()


async def _run_while_blocked(conn: asyncpg.Connection, work: Awaitable[T]) -> T:
    """Start `work`, wait until it waits on a lock `conn` holds, then commit `conn` and return its result.

    Waiting for PostgreSQL to report the lock wait, not for some time, makes the interleaving certain.
    """
    task = asyncio.ensure_future(work)
    async with asyncio.timeout(HANG_BOUND_SECONDS):
        while not await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ):
            assert not task.done(), await task
            await asyncio.sleep(0.01)
        await conn.execute("COMMIT")
        return await task


async def test_update_that_loses_on_the_unique_index_is_a_duplicate(
    api: Api, held_transaction: asyncpg.Connection
) -> None:
    """An update that passed the duplicate check before the rival committed gets DUPLICATE_EMAIL from the index."""
    a = await new_account(api, "a@firma.example")
    b = await new_account(api, "b@firma.example")
    # The rival's change is not committed yet, so the API's duplicate check cannot see it.
    await held_transaction.execute(
        "UPDATE mail_account SET email = $1, email_normalized = $1 WHERE id = $2", "ziel@firma.example", row_id(b)
    )
    payload = await _run_while_blocked(held_transaction, update(api, a["id"], email="ziel@firma.example"))
    assert [e["code"] for e in payload["userErrors"]] == ["DUPLICATE_EMAIL"]
    assert (await MailAccount.get(id=row_id(a))).email == "a@firma.example"


async def test_update_of_an_account_deleted_meanwhile_is_not_found(
    api: Api, held_transaction: asyncpg.Connection
) -> None:
    """An update waiting for a concurrent delete of its account ends in NOT_FOUND, not in a crash."""
    account = await new_account(api, "vertrieb@firma.example")
    await held_transaction.execute("DELETE FROM mail_account WHERE id = $1", row_id(account))
    payload = await _run_while_blocked(held_transaction, update(api, account["id"], senderName="Nord"))
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
