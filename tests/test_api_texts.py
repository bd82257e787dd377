"""Every refusal of the API is German by default and English with Accept-Language: en, from the catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import strawberry

from resolvers.tokens import Scope, create_token
from schema.errors import MaskCrashes
from schema.messages import request_error_message
from tests.support.api import MAILBOX_DOMAIN, Api
from web.app import WebConfig, create_app

COUNT = '{"query": "{ accounts { totalCount } }"'
MUTATION = 'mutation { setStatus(input: {accountId: "x", status: ACTIVE}) { userErrors { code } } }'

# name -> (request keyword arguments for POST/GET /graphql without Authorization, status, text key)
HTTP_REFUSALS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    "no-token": ("POST", {"json": {"query": "{ __typename }"}}, 401, "MISSING_BEARER_TOKEN"),
    "unknown-token": (
        "POST",
        {"json": {"query": "{ __typename }"}, "headers": {"Authorization": "Bearer nope"}},
        401,
        "UNKNOWN_TOKEN",
    ),
    "not-an-object": ("POST", {"content": b"[1]"}, 400, "BODY_NOT_OBJECT"),
    "not-json": ("POST", {"content": b'{"query": '}, 400, "BODY_NOT_JSON"),
    "query-not-string": ("POST", {"content": b'{"query": 5}'}, 400, "QUERY_NOT_STRING"),
    "variables-not-object": ("POST", {"content": COUNT.encode() + b', "variables": [1]}'}, 400, "VARIABLES_NOT_OBJECT"),
    "operation-name": (
        "POST",
        {"content": COUNT.encode() + b', "operationName": 3}'},
        400,
        "OPERATION_NAME_NOT_STRING",
    ),
    "extensions": ("POST", {"content": COUNT.encode() + b', "extensions": 3}'}, 400, "EXTENSIONS_NOT_OBJECT"),
    "no-query": ("POST", {"content": b"{}"}, 400, "MISSING_QUERY"),
    "no-operation": ("POST", {"json": {"query": "fragment F on Query { __typename }"}}, 400, "OPERATION_NOT_FOUND"),
    "form-post": ("POST", {"data": {"query": "{ __typename }"}}, 400, "UNSUPPORTED_CONTENT_TYPE"),
    "mutation-over-get": ("GET", {"params": {"query": MUTATION}}, 400, "MUTATION_OVER_GET"),
}


def _headers(api: Api, name: str, lang: str | None, extra: dict[str, str]) -> dict[str, str]:
    headers = {} if name in ("no-token", "unknown-token") else {"Authorization": f"Bearer {api.token}"}
    if "content" in HTTP_REFUSALS[name][1]:
        headers["Content-Type"] = "application/json"
    if lang:
        headers["Accept-Language"] = lang
    return {**headers, **extra}


@pytest.mark.parametrize("name", list(HTTP_REFUSALS))
async def test_http_refusals_speak_the_request_language(client: httpx.AsyncClient, api: Api, name: str) -> None:
    """A refused /graphql request (401, 400) says why in German, or in English when the client prefers it."""
    method, kwargs, status, key = HTTP_REFUSALS[name]
    german, english = request_error_message(key, "de"), request_error_message(key, "en")
    assert german != english
    for lang, expected in ((None, german), ("en-GB,en;q=0.9,de;q=0.5", english)):
        extra = kwargs.get("headers", {})
        arguments = {k: v for k, v in kwargs.items() if k != "headers"}
        response = await client.request(method, "/graphql", headers=_headers(api, name, lang, extra), **arguments)
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["message"] == expected


async def test_unknown_operation_names_it(client: httpx.AsyncClient, api: Api) -> None:
    """An operationName the document lacks is named in the refusal, in either language."""
    body = {"query": "query A { __typename }", "operationName": "C"}
    headers = {"Authorization": f"Bearer {api.token}"}
    german = await client.post("/graphql", json=body, headers=headers)
    english = await client.post("/graphql", json=body, headers={**headers, "Accept-Language": "en"})
    assert german.json()["errors"][0]["message"] == "Das Dokument enthält keine Operation namens 'C'."
    assert english.json()["errors"][0]["message"] == "The document contains no operation named 'C'."


GRAPHQL_REFUSALS: dict[str, tuple[str, str, str]] = {
    # name -> (document, extensions.code, text key); run with the read token where the key says so
    "read-token": (MUTATION, "FORBIDDEN", "READ_ONLY_TOKEN"),
    "spf-check-without-target": (
        "mutation { spfCheck(input: {}) { userErrors { code } } }",
        "BAD_USER_INPUT",
        "SPF_CHECK_WITHOUT_TARGET",
    ),
    "page-size": ("{ accounts(first: 500) { totalCount } }", "BAD_USER_INPUT", "PAGE_SIZE_OUT_OF_RANGE"),
    "cursor": ('{ accounts(after: "bogus") { totalCount } }', "BAD_USER_INPUT", "INVALID_CURSOR"),
    "update-without-changes": (
        'mutation { updateAccount(input: {accountId: "x"}) { userErrors { code } } }',
        "BAD_USER_INPUT",
        "UPDATE_WITHOUT_CHANGES",
    ),
}


@pytest.mark.parametrize("name", list(GRAPHQL_REFUSALS))
async def test_graphql_errors_speak_the_request_language(api: Api, reader: Api, name: str) -> None:
    """Top-level errors of the schema (scope, missing or bad arguments) are German by default, English on request."""
    document, code, key = GRAPHQL_REFUSALS[name]
    caller = reader if name == "read-token" else api
    params = {"cursor": "bogus"} if key == "INVALID_CURSOR" else {"max": 100} if key == "PAGE_SIZE_OUT_OF_RANGE" else {}
    for lang in ("de", "en"):
        caller.lang = None if lang == "de" else "en"
        [error] = await caller.errors(document)
        assert error["extensions"]["code"] == code
        assert error["message"] == request_error_message(key, lang, **params)
    assert request_error_message(key, "de", **params) != request_error_message(key, "en", **params)


@pytest.fixture
async def bare_api(db: str) -> AsyncIterator[Api]:
    """A write token on an API without outbox, SECRET_KEY or SPF checker (a front end that offers neither)."""

    async def ping() -> None:
        return None

    app = create_app(WebConfig(mailbox_domain=MAILBOX_DOMAIN, database_ping=ping))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield Api(http, (await create_token("acme", Scope.WRITE)).secret)


UNAVAILABLE: dict[str, tuple[str, str, str]] = {
    "send": (
        'mutation { sendMessage(input: {accountId: "x", to: ["a@example.com"]}) { userErrors { code } } }',
        "SENDING_UNAVAILABLE",
        "SENDING_UNAVAILABLE",
    ),
    "smtp": (
        'mutation { setSmtpServer(input: {accountId: "x", host: "smtp.example.com", port: 587, security: STARTTLS})'
        " { userErrors { code } } }",
        "SENDING_UNAVAILABLE",
        "SECRET_KEY_MISSING",
    ),
    "spf": (
        'mutation { spfCheck(input: {email: "a@example.com"}) { userErrors { code } } }',
        "SPF_UNAVAILABLE",
        "SPF_UNAVAILABLE",
    ),
}


@pytest.mark.parametrize("name", list(UNAVAILABLE))
async def test_unavailable_features_speak_the_request_language(bare_api: Api, name: str) -> None:
    """What this server does not offer (sending, SMTP secrets, SPF checks) is refused in the request's language."""
    document, code, key = UNAVAILABLE[name]
    for lang in ("de", "en"):
        bare_api.lang = None if lang == "de" else "en"
        [error] = await bare_api.errors(document)
        assert error["extensions"]["code"] == code
        assert error["message"] == request_error_message(key, lang)
    assert request_error_message(key, "de") != request_error_message(key, "en")


def test_refusal_texts_in_german() -> None:
    """The German of the texts issue 9 found in English (401, read token, spfCheck) reads as the product does."""
    assert request_error_message("MISSING_BEARER_TOKEN", "de") == (
        "Es fehlt ein Bearer-Token: Bitte senden Sie Authorization: Bearer <token>."
    )
    assert request_error_message("READ_ONLY_TOKEN", "de") == (
        "Dieses Token darf nur lesen (Scope read); Mutationen brauchen den Scope write."
    )
    assert request_error_message("SPF_CHECK_WITHOUT_TARGET", "de") == (
        "spfCheck braucht eines der Felder `accountId` oder `email`."
    )


@strawberry.type
class _CrashingQuery:
    @strawberry.field
    def crash(self) -> int:
        raise RuntimeError("a bug")


@dataclass
class _LangContext:
    lang: str


@pytest.mark.parametrize(("lang", "text"), [("de", "Unerwarteter Fehler."), ("en", "Unexpected error.")])
async def test_masked_crash_speaks_the_request_language(lang: str, text: str) -> None:
    """A crash reaches the client as "Unexpected error." in the request's language, without its details."""
    crashing = strawberry.Schema(query=_CrashingQuery, extensions=[MaskCrashes])
    result = await crashing.execute("{ crash }", context_value=_LangContext(lang))
    assert [error.message for error in result.errors or []] == [text]
