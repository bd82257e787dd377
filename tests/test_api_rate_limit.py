"""API_RATE_LIMIT: cost points per token and minute, weighted by pages and network fields, shared in the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx
import pytest
from graphql import parse

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import Scope
from resolvers.tokens import create_token
from schema import schema
from schema.limits import GraphQLLimits, measure_document, measure_request, request_cost
from tests.support.api import Api

COUNT = "{ accounts { totalCount } }"
# 100 accounts with 100 messages each: 10 100 objects, 102 points.
NESTED_PAGES = "{ accounts(first: 100) { edges { node { messages(first: 100) { totalCount } } } } }"


@dataclass
class FakeClock:
    """Seconds since the epoch, moved by the test; starts 10 s into a minute window."""

    now: float = 1_800_000_010.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def limited_client(settings: Settings, clock: FakeClock, limit: int) -> httpx.AsyncClient:
    """An HTTP client for one app instance with API_RATE_LIMIT=limit on the test database."""
    app = build_app(replace(settings, api_rate_limit=limit), manage_database=False, clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def limited(db: str, settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app with API_RATE_LIMIT=5."""
    async with await limited_client(settings, clock, 5) as http:
        yield http


def points(query: str, variables: dict[str, object] | None = None) -> int:
    """What the API charges for `query`: a document that does not parse costs 1."""
    measure = measure_request(schema._schema, query, variables, GraphQLLimits())
    return request_cost(measure) if measure is not None else 1


def test_cost_formula() -> None:
    """1 per request, + objects the pages may return / 100 (nested pages multiply), + 10 per network field."""
    assert points("{ __typename }") == 1
    assert points(COUNT) == 2  # the default page of 50
    assert points("{ accounts(first: 0) { totalCount } }") == 1
    assert points(NESTED_PAGES) == 1 + 101
    assert points("query P($n: Int) { accounts(first: $n) { totalCount } }", {"n": 100}) == 2
    assert points("query P($n: Int = 7) { accounts(first: $n) { totalCount } }") == 2
    # Coerced as execution coerces it: 100.0 runs a page of 100; what execution refuses weighs a full page.
    nested = "query P($n: Int) { accounts(first: $n) { edges { node { messages(first: $n) { totalCount } } } } }"
    assert points(nested, {"n": 100.0}) == points(nested, {"n": 100}) == 1 + 101
    assert points(nested, {"n": "lots"}) == 1 + 101
    assert points(nested, {"n": None}) == points("{ accounts { edges { node { messages { totalCount } } } } }")
    assert (
        points(
            'mutation { a: spfCheck(input: {email: "x@y.example"}) { ok: __typename } b: spfCheckAll { __typename } }'
        )
        == 21
    )
    # A page under an unpaged field counts once; a field the type does not have weighs nothing; bad syntax costs 1.
    assert points('{ node(id: "x") { ... on MailAccount { messages(first: 100) { totalCount } } } }') == 2
    assert points("{ accounts { edges { node { accounts(first: 100) { totalCount } } } } }") == 2
    assert points("{ accounts {") == 1
    assert request_cost(measure_document(parse(COUNT), schema._schema, max_selections=2000)) == 2


async def test_over_the_limit_is_429_with_retry_after(limited: httpx.AsyncClient, clock: FakeClock) -> None:
    """Five points a minute: five requests of one point pass, the sixth is 429 RATE_LIMITED with Retry-After."""
    api = Api(limited, (await create_token("acme", Scope.READ)).secret)
    for _ in range(5):
        assert await api("{ __typename }") == {"__typename": "Query"}
    response = await api.post("{ __typename }")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "50"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED"}
    assert "50 Sekunden" in error["message"]
    clock.now += 50
    assert await api("{ __typename }") == {"__typename": "Query"}


async def test_page_sizes_weigh(limited: httpx.AsyncClient) -> None:
    """With 5 points, one request for 100 accounts of 100 messages (102 points) is already refused."""
    api = Api(limited, (await create_token("acme", Scope.READ)).secret)
    response = await api.post(NESTED_PAGES)
    assert response.status_code == 429
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_each_token_has_its_own_budget(limited: httpx.AsyncClient) -> None:
    """Another token, even of the same tenant, is not slowed by the first one's spending."""
    first = Api(limited, (await create_token("acme", Scope.READ)).secret)
    second = Api(limited, (await create_token("acme", Scope.READ)).secret)
    for _ in range(5):
        await first("{ __typename }")
    assert (await first.post("{ __typename }")).status_code == 429
    assert await second("{ __typename }") == {"__typename": "Query"}


async def test_instances_share_the_limit(db: str, settings: Settings, clock: FakeClock) -> None:
    """Two app instances on one database count one token's requests together."""
    token = (await create_token("acme", Scope.WRITE)).secret
    async with await limited_client(settings, clock, 4) as one, await limited_client(settings, clock, 4) as two:
        api_one, api_two = Api(one, token), Api(two, token)
        for api in (api_one, api_two, api_one, api_two):
            assert await api("{ __typename }") == {"__typename": "Query"}
        assert (await api_one.post("{ __typename }")).status_code == 429
        assert (await api_two.post("{ __typename }")).status_code == 429


async def test_zero_turns_the_limit_off(db: str, settings: Settings, clock: FakeClock) -> None:
    """API_RATE_LIMIT=0: no request is refused, however costly."""
    async with await limited_client(settings, clock, 0) as http:
        api = Api(http, (await create_token("acme", Scope.READ)).secret)
        for _ in range(3):
            assert (await api.post(NESTED_PAGES)).status_code == 200
