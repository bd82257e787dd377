"""GraphQL work bounded before execution: expanded size, merge pairs, network-bound fields, production mode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from graphql import parse

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import Scope
from resolvers.tokens import create_token
from resolvers.users import create_user
from schema import build_schema, schema
from schema.limits import CACHED_DOCUMENT_CHARS, GraphQLLimits, _parse_cached, measure_document, parse_document
from tests.support.api import Api
from tests.support.dashboard import PASSWORD, sign_in
from tests.support.dns import LoopbackDnsServer
from tests.support.serve import CLI, serve


def fan_out(levels: int, *, on: str = "MailAccountConnection", leaf: str = "totalCount") -> str:
    """F0 = {leaf}, Fi = {...F(i-1) ...F(i-1)}: about 60 bytes a level, 2^levels fields expanded."""
    fragments = [f"fragment F0 on {on} {{ {leaf} }}"] + [
        f"fragment F{i} on {on} {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    operation = f"{{ ...F{levels} }}" if on in ("Query", "Mutation") else f"{{ accounts {{ ...F{levels} }} }}"
    return operation + "\n" + "\n".join(fragments)


async def app_client(settings: Settings) -> httpx.AsyncClient:
    """An HTTP client for an app built from `settings` (database opened by the `db` fixture)."""
    app = build_app(settings, manage_database=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def production(db: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with ENVIRONMENT=production."""
    async with await app_client(replace(settings, environment="production")) as http:
        yield http


# --- expanded size ----------------------------------------------------------------------------------


def test_measuring_a_deep_fan_out_is_linear() -> None:
    """A 300-level fan-out (2^300 fields expanded) is measured exactly, memoised per fragment, at once."""
    document = parse(fan_out(300))
    started = time.monotonic()
    measure = measure_document(document, schema._schema, max_selections=2000)
    # Sizes: s0 = 1, si = 2 + 2 s(i-1); the operation adds `accounts` and the spread.
    sizes = [1]
    for _ in range(300):
        sizes.append(2 + 2 * sizes[-1])
    assert measure.selections == 2 + sizes[-1] + sum(sizes)
    assert time.monotonic() - started < 5  # an expanding count would not finish in the universe's lifetime


async def test_fragment_fan_out_is_refused(reader: Api) -> None:
    """A 30-level fan-out (under 2 KB, 2^30 fields expanded) with a read token is QUERY_TOO_COMPLEX."""
    document = fan_out(30)
    assert len(document) < 2000
    [error] = await reader.errors(document)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "2000" in error["message"] and "GRAPHQL_MAX_FIELDS" in error["message"]


def test_fan_out_does_not_stall_a_running_server(tmp_path: Path) -> None:
    """While `mailaccounts serve` refuses a 30-level fan-out, /healthz keeps answering (one event loop for all)."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{tmp_path}/mailaccounts.sqlite3",
        "SECRET_KEY": "s" * 40,
    }
    for args in (["migrate"], ["token", "create", "--tenant", "acme", "--scope", "read"]):
        result = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    with serve(env) as served, ThreadPoolExecutor(max_workers=1) as pool:
        refusal = pool.submit(
            httpx.post,
            f"{served.base_url}/graphql",
            json={"query": fan_out(30)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        # Unprotected, the fan-out holds the event loop for hours and these time out.
        health = [httpx.get(f"{served.base_url}/healthz", timeout=10).status_code for _ in range(3)]
        response = refusal.result()
    assert health == [200, 200, 200]
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_fan_out_at_the_root_and_on_mutations_is_refused(api: Api) -> None:
    """Fragments on Query and on Mutation are expanded the same way; the English text with Accept-Language: en."""
    api.lang = "en"
    [error] = await api.errors(fan_out(25, on="Query", leaf="accounts { totalCount }"))
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["message"].startswith("The query is too complex")
    mutation = fan_out(25, on="Mutation", leaf='spfCheck(input: {email: "a@b.example"}) { userErrors { code } }')
    [error] = await api.errors("mutation " + mutation)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_cyclic_fragments_terminate(api: Api) -> None:
    """Fragments that spread each other are reported by graphql-core's cycle rule; measuring them terminates."""
    document = (
        "{ accounts { ...A } } fragment A on MailAccountConnection { totalCount ...B } "
        "fragment B on MailAccountConnection { ...A }"
    )
    async with asyncio.timeout(10):
        errors = await api.errors(document)
    assert any("Cannot spread fragment" in error["message"] for error in errors)


async def test_the_limit_is_the_setting(db: str, settings: Settings) -> None:
    """GRAPHQL_MAX_FIELDS=10: eight selections run, twelve are refused."""
    async with await app_client(replace(settings, graphql_max_fields=10)) as http:
        api = Api(http, (await create_token("acme", Scope.READ)).secret)
        small = "{ accounts { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id email } } } }"
        assert (await api(small))["accounts"]["totalCount"] == 0
        [error] = await api.errors(small.replace("email", "email senderName status inboundAddress outboundAddress"))
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "10" in error["message"]


@pytest.mark.parametrize(
    "document",
    [
        # 1990 copies of one field: 2 million pairs for the field-merge check.
        "{ accounts { " + " ".join(["totalCount"] * 1990) + " } }",
        # 60 copies of a field with a selection: their sub-selections merge, pairs multiply.
        "{ " + " ".join(["accounts { totalCount }"] * 60) + " }",
        # 100 distinct fragments spread in one place are compared pairwise.
        "{ accounts { "
        + " ".join(f"...F{i}" for i in range(100))
        + " } } "
        + " ".join(f"fragment F{i} on MailAccountConnection {{ totalCount }}" for i in range(100)),
    ],
    ids=["same-field", "same-subselection", "many-fragments"],
)
async def test_quadratic_field_merging_is_refused(api: Api, document: str) -> None:
    """Documents within the size limit whose field-merge check would be quadratic are QUERY_TOO_COMPLEX."""
    [error] = await api.errors(document)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "Paare" in error["message"]


async def test_ordinary_repetition_is_allowed(api: Api) -> None:
    """A field selected a few times, directly and through fragments, is fine."""
    document = (
        "{ accounts { totalCount ...Count edges { node { id ...Ids } } } accounts { totalCount } } "
        "fragment Count on MailAccountConnection { totalCount } fragment Ids on MailAccount { id email }"
    )
    assert (await api(document))["accounts"]["totalCount"] == 0


# --- network-bound fields -----------------------------------------------------------------------------

SPF = "spfCheck(input: {email: $email}) { report { problems { code } } }"


def aliased_checks(count: int, variable: str = "email") -> str:
    """A mutation with `count` aliased spfCheck fields, each on its own variable."""
    variables = ", ".join(f"${variable}{i}: String" for i in range(count))
    fields = " ".join(f"c{i}: {SPF.replace('$email', f'${variable}{i}')}" for i in range(count))
    return f"mutation Checks({variables}) {{ {fields} }}"


@pytest.fixture
async def silent_dns() -> AsyncIterator[LoopbackDnsServer]:
    """A DNS server that never answers any of the names t0.example … t9.example."""
    async with LoopbackDnsServer({f"t{i}.example": ["TIMEOUT"] for i in range(10)}) as server:
        yield server


async def test_too_many_network_fields_are_refused_before_execution(
    db: str, settings: Settings, silent_dns: LoopbackDnsServer
) -> None:
    """Four spfCheck (limit 3), also through a fragment on Mutation, are refused before any DNS query."""
    checked = replace(settings, dns_nameservers=(silent_dns.address,), dns_timeout=1.0)
    async with await app_client(checked) as http:
        api = Api(http, (await create_token("acme", Scope.WRITE)).secret)
        variables = {f"email{i}": f"info@t{i}.example" for i in range(4)}
        [error] = await api.errors(aliased_checks(4), variables)
        assert error["extensions"]["code"] == "TOO_MANY_NETWORK_FIELDS"
        assert "3" in error["message"]
        via_fragment = (
            "mutation { c0: spfCheckAll { summary { total } } ...More } "
            "fragment More on Mutation { c1: spfCheckAll { summary { total } } "
            'c2: spfCheck(input: {email: "a@t1.example"}) { userErrors { code } } '
            'c3: setSmtpServer(input: {accountId: "x", host: "h"}) { userErrors { code } } }'
        )
        [error] = await api.errors(via_fragment)
        assert error["extensions"]["code"] == "TOO_MANY_NETWORK_FIELDS"
    assert silent_dns.stats.queries_received == 0


async def test_network_fields_run_concurrently(db: str, settings: Settings, silent_dns: LoopbackDnsServer) -> None:
    """Six aliased spfCheck against a silent nameserver (DNS_TIMEOUT 1 s) end in about one timeout, not six."""
    checked = replace(settings, dns_nameservers=(silent_dns.address,), dns_timeout=1.0, graphql_max_network_fields=6)
    async with await app_client(checked) as http:
        api = Api(http, (await create_token("acme", Scope.WRITE)).secret)
        variables = {f"email{i}": f"info@t{i}.example" for i in range(6)}
        started = time.monotonic()
        data = await api(aliased_checks(6), variables)
        elapsed = time.monotonic() - started
    assert [data[f"c{i}"]["report"]["problems"] for i in range(6)] == [[{"code": "DOMAIN_UNREACHABLE"}]] * 6
    # One after another they take at least 6 s (each waits its full 1 s timeout); together about 1.5 s.
    assert elapsed < 4.5


async def test_other_mutations_stay_serial(api: Api) -> None:
    """Mutation fields that are not network-bound still run in document order (the second sees the first)."""
    created = await api(
        'mutation { a: createAccount(input: {email: "eins@firma.example", senderName: "Eins"}) '
        "{ account { email } userErrors { code } } "
        'b: createAccount(input: {email: "eins@firma.example", senderName: "Zwei"}) { userErrors { code } } }'
    )
    assert created["a"]["account"]["email"] == "eins@firma.example"
    assert [e["code"] for e in created["b"]["userErrors"]] == ["DUPLICATE_EMAIL"]


async def test_smtp_server_changes_in_one_document_apply_in_order(
    db: str, settings: Settings, silent_dns: LoopbackDnsServer
) -> None:
    """setSmtpServer is network-bound but not concurrent: of two changes in one document the last one wins,
    even when the first waits for DNS (a silent nameserver) and the second needs none (an IP literal)."""
    checked = replace(settings, dns_nameservers=(silent_dns.address,), dns_timeout=1.0)
    async with await app_client(checked) as http:
        api = Api(http, (await create_token("acme", Scope.WRITE)).secret)
        created = await api(
            'mutation { createAccount(input: {email: "zwei@firma.example", senderName: "Zwei"}) { account { id } } }'
        )
        set_twice = (
            "mutation($id: ID!) { "
            'a: setSmtpServer(input: {accountId: $id, host: "t0.example", port: 587, security: STARTTLS}) '
            "{ userErrors { code } } "
            'b: setSmtpServer(input: {accountId: $id, host: "1.1.1.1", port: 465, security: TLS}) '
            "{ userErrors { code } } }"
        )
        account_id = created["createAccount"]["account"]["id"]
        data = await api(set_twice, {"id": account_id})
        assert data["a"]["userErrors"] == [] and data["b"]["userErrors"] == []
        stored = await api("query($id: ID!) { account(id: $id) { smtpServer { host port } } }", {"id": account_id})
        assert stored["account"]["smtpServer"] == {"host": "1.1.1.1", "port": 465}


# --- production -----------------------------------------------------------------------------------------

INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_development_keeps_introspection_suggestions_and_graphiql(api: Api, client: httpx.AsyncClient) -> None:
    """In development __schema answers, typos get "Did you mean", and a browser's GET gets GraphiQL."""
    assert (await api(INTROSPECTION))["__schema"]["queryType"]["name"] == "Query"
    [error] = await api.errors("{ acounts { totalCount } }")
    assert "Did you mean" in error["message"]
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_production_turns_off_introspection_suggestions_and_graphiql(production: httpx.AsyncClient) -> None:
    """ENVIRONMENT=production: __schema and __type are refused, __typename works, no "Did you mean", no GraphiQL."""
    api = Api(production, (await create_token("acme", Scope.READ)).secret)
    errors = await api.errors(INTROSPECTION)
    assert "introspection" in errors[0]["message"].lower()
    errors = await api.errors('{ __type(name: "MailAccount") { name } }')
    assert "introspection" in errors[0]["message"].lower()
    assert (await api("{ __typename }")) == {"__typename": "Query"}
    [error] = await api.errors("{ acounts { totalCount } }")
    assert "acounts" in error["message"] and "Did you mean" not in error["message"]
    typo_argument = await api.errors("{ accounts(frist: 3) { totalCount } }")
    typo_enum = await api.errors("query S($s: AccountStatus) { accounts(status: $s) { totalCount } }", {"s": "ACTIV"})
    for error in (*typo_argument, *typo_enum):
        assert "Did you mean" not in error["message"], error
    page = await production.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    assert page.status_code == 401


async def test_dashboard_uses_the_configured_schema(db: str, settings: Settings) -> None:
    """The dashboard runs its documents through the API's schema: with GRAPHQL_MAX_FIELDS=10 its pages fail."""
    await create_user("acme", "chefin@acme.example", PASSWORD)
    async with await app_client(replace(settings, graphql_max_fields=10)) as http:
        assert (await sign_in(http, "chefin@acme.example")).status_code == 303
        page = await http.get("/mail-accounts")
    assert page.status_code == 500
    async with await app_client(settings) as http:
        assert (await sign_in(http, "chefin@acme.example")).status_code == 303
        assert (await http.get("/mail-accounts")).status_code == 200


def test_built_schemas_print_the_same() -> None:
    """build_schema makes independent schemas; each configuration prints the schema of `schema.graphql`."""
    production = build_schema(production=True, limits=GraphQLLimits(max_fields=10, max_network_fields=1))
    assert production.as_str() == schema.as_str() == build_schema().as_str()


def test_only_short_documents_are_kept_in_the_parse_cache() -> None:
    """A document over CACHED_DOCUMENT_CHARS (a 1 MB string literal passes the token limit) is parsed, never kept."""
    _parse_cached.cache_clear()
    short = "{ __typename }"
    assert parse_document(short) is parse_document(short)
    long = '{ spfCheckStatus(startedAt: "%s") { total } }' % ("x" * (CACHED_DOCUMENT_CHARS + 1))
    parse_document(long)
    assert _parse_cached.cache_info().currsize == 1
