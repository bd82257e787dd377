"""Malformed /graphql requests are a 400 with a GraphQL-shaped error, never a 500, and the client goes on."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import Api

COUNT = '{"query": "{ accounts { totalCount } }"'

BAD_BODIES = {
    "number": b"42",
    "null": b"null",
    "string": b'"{ accounts { totalCount } }"',
    "array": b'[{"query": "{ accounts { totalCount } }"}]',
    "empty-array": b"[]",
    "invalid-utf8": b'{"query": "{ accounts { totalCount } }\xff\xfe"}',
    "malformed": b'{"query": ',
    "empty": b"",
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"query": "{ __typename }", "variables": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
    "query-not-string": b'{"query": 5}',
    "variables-not-object": COUNT.encode() + b', "variables": [1]}',
    "variables-string": COUNT.encode() + b', "variables": "{}"}',
    "operation-name-not-string": COUNT.encode() + b', "operationName": 3}',
    "extensions-not-object": COUNT.encode() + b', "extensions": 3}',
    "no-query": b"{}",
}


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_bad_body_is_a_graphql_shaped_400(client: httpx.AsyncClient, api: Api, body: bytes) -> None:
    """Each malformed body is 400 with errors[0].extensions.code BAD_REQUEST; the next request on the client works."""
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert error["message"]
    assert (await api("{ accounts { totalCount } }"))["accounts"]["totalCount"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"query": "{ accounts { totalCount } }", "variables": "[1"},
        {"query": "{ accounts { totalCount } }", "variables": "[1]"},
        {"query": "{ accounts { totalCount } }", "variables": "[" * 20_000},
        {"query": 'mutation { setStatus(input: {accountId: "x", status: ACTIVE}) { userErrors { code } } }'},
    ],
    ids=["malformed-variables", "array-variables", "deep-variables", "mutation-over-get"],
)
async def test_bad_get_is_a_graphql_shaped_400(client: httpx.AsyncClient, api: Api, params: dict[str, str]) -> None:
    """GET with bad `variables`, or a mutation over GET, is a GraphQL-shaped 400 as well."""
    response = await client.get("/graphql", params=params, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_unsupported_content_type_is_a_graphql_shaped_400(client: httpx.AsyncClient, api: Api) -> None:
    """A form post is refused with the same error shape."""
    response = await client.post(
        "/graphql", data={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
