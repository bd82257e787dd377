"""Authentication, token scopes and tenant isolation of `/graphql`."""

from __future__ import annotations

import httpx
import pytest

from orm.models import MailAccount, Message, Scope
from resolvers.tokens import create_token, list_tokens, revoke_token
from tests.support.api import Api
from tests.support.documents import ACCOUNT, ACCOUNTS, CREATE, DELETE, MERGE, NODE, SET_STATUS
from tests.support.factories import new_account

QUERY = {"query": "{ accounts { totalCount } }"}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwdw==", "Bearer mat_unbekannt", "Bearer kein-token"],
)
async def test_missing_or_unknown_token_is_401(client: httpx.AsyncClient, authorization: str | None) -> None:
    """Without a valid bearer token `/graphql` answers 401 with a JSON error and runs nothing."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.post("/graphql", json=QUERY, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_revoked_token_is_401(client: httpx.AsyncClient) -> None:
    """A revoked token is refused like an unknown one; last_used_at records its earlier use."""
    issued = await create_token("acme", Scope.READ, "partner")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert (await client.post("/graphql", json=QUERY, headers=headers)).status_code == 200
    [token] = await list_tokens("acme")
    assert token.last_used_at is not None
    assert await revoke_token(issued.token.id) is True
    assert await revoke_token(issued.token.id) is False
    assert (await client.post("/graphql", json=QUERY, headers=headers)).status_code == 401


async def test_query_over_get_with_token(client: httpx.AsyncClient, api: Api) -> None:
    """Queries may be sent as GET with the token; GraphiQL is served to a browser without one."""
    headers = {"Authorization": f"Bearer {api.token}"}
    response = await client.get("/graphql", params=QUERY, headers=headers)
    assert response.json() == {"data": {"accounts": {"totalCount": 0}}}
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_read_token_can_query_but_not_mutate(api: Api, reader: Api) -> None:
    """A read token lists accounts; each mutation with it is refused with FORBIDDEN and changes nothing."""
    account = await new_account(api, "vertrieb@firma.example")
    second = await new_account(api, "info@firma.example")
    assert (await reader(ACCOUNTS))["accounts"]["totalCount"] == 2
    attempts = [
        (CREATE, {"input": {"email": "neu@firma.example", "senderName": "Neu"}}),
        (SET_STATUS, {"input": {"accountId": account["id"], "status": "INACTIVE"}}),
        (DELETE, {"input": {"accountId": account["id"], "confirm": "vertrieb@firma.example"}}),
        (MERGE, {"input": {"sourceId": account["id"], "targetId": second["id"], "confirm": account["email"]}}),
    ]
    for document, variables in attempts:
        response = await reader.post(document, variables)
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await MailAccount.all().count() == 2
    assert await MailAccount.filter(active=True).count() == 2


async def test_other_tenant_sees_nothing(api: Api, other: Api) -> None:
    """Another tenant's IDs behave exactly like IDs that do not exist, for every query and mutation."""
    account = await new_account(api, "vertrieb@firma.example")
    target = await new_account(api, "info@firma.example")
    own = await new_account(other, "vertrieb@firma.example")  # the same address is fine in another tenant
    assert own["inboundAddress"] != account["inboundAddress"]

    assert [e["node"]["email"] for e in (await other(ACCOUNTS))["accounts"]["edges"]] == ["vertrieb@firma.example"]
    assert (await other(ACCOUNTS))["accounts"]["totalCount"] == 1
    assert (await other(ACCOUNT, {"id": account["id"]}))["account"] is None
    assert (await other(NODE, {"id": account["id"]}))["node"] is None
    status = await other(SET_STATUS, {"input": {"accountId": account["id"], "status": "INACTIVE"}})
    assert status["setStatus"]["userErrors"][0]["code"] == "NOT_FOUND"
    deleted = await other(DELETE, {"input": {"accountId": account["id"], "confirm": account["email"]}})
    assert deleted["deleteAccount"]["userErrors"][0]["code"] == "NOT_FOUND"
    merged = await other(
        MERGE, {"input": {"sourceId": account["id"], "targetId": own["id"], "confirm": account["email"]}}
    )
    assert [(e["code"], e["field"]) for e in merged["mergeAccounts"]["userErrors"]] == [
        ("NOT_FOUND", ["input", "sourceId"])
    ]
    stolen = await other(MERGE, {"input": {"sourceId": own["id"], "targetId": target["id"], "confirm": own["email"]}})
    assert [(e["code"], e["field"]) for e in stolen["mergeAccounts"]["userErrors"]] == [
        ("NOT_FOUND", ["input", "targetId"])
    ]
    assert await MailAccount.all().count() == 3
    assert await MailAccount.filter(active=False).count() == 0
    assert await Message.all().count() == 0


async def test_query_limits(api: Api) -> None:
    """Too deep, too many aliases or too many tokens are refused before any work is done."""
    nested = "query Deep { " + "accounts { edges { node { " * 3 + "id" + " } } }" * 3 + " }"
    errors = await api.errors(nested)
    assert any("exceeds maximum operation depth" in error["message"] for error in errors)
    aliases = "{ " + " ".join(f"a{i}: accounts {{ totalCount }}" for i in range(30)) + " }"
    errors = await api.errors(aliases)
    assert "aliases" in errors[0]["message"].lower()
    tokens = "{ accounts { " + " ".join(["totalCount"] * 2500) + " } }"
    errors = await api.errors(tokens)
    assert "token" in errors[0]["message"].lower()


async def test_request_body_is_limited(client: httpx.AsyncClient, api: Api) -> None:
    """A request body over 1 MB is refused with 413 before it is parsed."""
    response = await client.post(
        "/graphql",
        content=b'{"query": "' + b" " * 1_100_000 + b'{ accounts { totalCount } }"}',
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
