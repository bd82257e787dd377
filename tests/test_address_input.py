"""Address input: look-alike domains refused, an IDN and its punycode one address, bad names never asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from domaincheck.names import canonical_domain
from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from mailflow.listener import ListenerConfig, start_listener
from orm.models import MailAccount, Scope
from resolvers.accounts import normalize_address
from resolvers.mailboxes import parse_mailbox_address
from resolvers.tokens import create_token
from tests.support.api import Api
from tests.support.dns import LoopbackDnsServer, ThreadedDnsServer
from tests.support.documents import ACCOUNTS, CREATE, DELETE
from tests.support.smtp import deliver

CYRILLIC_A = "\u0430"
GREEK_OMICRON = "\u03bf"
BUCHER = "b\u00fccher.example"
BUCHER_ASCII = "xn--bcher-kva.example"

LOOK_ALIKE_ADDRESSES = [
    pytest.param(f"vertrieb@p{CYRILLIC_A}ypal.de", id="paypal-cyrillic-a"),
    pytest.param(f"vertrieb@firm{CYRILLIC_A}.de", id="firma-cyrillic-a"),
    pytest.param(f"info@g{GREEK_OMICRON}ogle.de", id="google-greek-omicron"),
    pytest.param("vertrieb@xn--pypal-4ve.de", id="a-label-of-a-look-alike"),
    pytest.param(f"vertrieb@mail.firm{CYRILLIC_A}.de", id="look-alike-in-a-subdomain"),
]
LEGITIMATE_ADDRESSES = [
    pytest.param(f"vertrieb@{BUCHER}", id="umlaut"),
    pytest.param("info@\u4f8b\u3048.jp", id="han-hiragana"),
    pytest.param("info@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", id="cyrillic-only"),
]


async def create(api: Api, email: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api(CREATE, {"input": {"email": email, "senderName": "Vertrieb"}}))[
        "createAccount"
    ]
    return payload


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


# --- look-alike domains ---------------------------------------------------------------------------


@pytest.mark.parametrize("email", LOOK_ALIKE_ADDRESSES)
async def test_create_refuses_look_alike_domains(api: Api, email: str) -> None:
    """createAccount refuses a domain label mixing Latin with Cyrillic or Greek with INVALID_EMAIL, storing nothing."""
    payload = await create(api, email)
    assert payload["account"] is None
    assert codes(payload) == [("INVALID_EMAIL", ["input", "email"])]
    assert payload["userErrors"][0]["message"].startswith("Die Domain der E-Mail-Adresse mischt Schriften")
    assert await MailAccount.all().count() == 0


@pytest.mark.parametrize(
    "email", ["vertrieb@firma.invalid", "info@shop.test", "a@localhost", "b@drucker.local", "c@X.Invalid."]
)
async def test_special_use_domains_are_refused_with_their_own_text(api: Api, email: str) -> None:
    """A special-use domain (RFC 6761) is INVALID_EMAIL with a text saying such domains cannot receive mail."""
    payload = await create(api, email)
    assert codes(payload) == [("INVALID_EMAIL", ["input", "email"])]
    assert payload["userErrors"][0]["message"].startswith("Domains wie .invalid, .test, .local oder .localhost")
    english = await Api(api.http, api.token, lang="en")(CREATE, {"input": {"email": email, "senderName": "V"}})
    assert english["createAccount"]["userErrors"][0]["message"].startswith("Domains such as .invalid")


async def test_other_invalid_addresses_keep_the_general_text(api: Api) -> None:
    """An address that is simply malformed keeps the general INVALID_EMAIL text."""
    payload = await create(api, "kein-at-zeichen.example")
    assert payload["userErrors"][0]["message"] == "Bitte geben Sie eine gültige E-Mail-Adresse ein."


@pytest.mark.parametrize("email", LEGITIMATE_ADDRESSES)
async def test_create_accepts_single_script_idn_domains(api: Api, email: str) -> None:
    """A German umlaut domain, a Japanese Han+Hiragana one and an all-Cyrillic one are accepted as typed."""
    payload = await create(api, email)
    assert payload["userErrors"] == []
    assert payload["account"]["email"] == email


async def test_local_part_is_ascii_so_it_cannot_mix_scripts(api: Api) -> None:
    """The local part must be ASCII (no SMTPUTF8): a Cyrillic letter there is INVALID_EMAIL as well."""
    payload = await create(api, f"vertri{CYRILLIC_A}b@firma.de")
    assert codes(payload) == [("INVALID_EMAIL", ["input", "email"])]


# --- one address in both IDN forms ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (f"vertrieb@{BUCHER}", f"vertrieb@{BUCHER_ASCII}"),
        (f"vertrieb@{BUCHER_ASCII}", f"vertrieb@{BUCHER}"),
        (f"vertrieb@{BUCHER}", "Vertrieb@B\u00dcCHER.example"),
    ],
)
async def test_idn_and_punycode_are_one_address(api: Api, first: str, second: str) -> None:
    """The U-label and the A-label form of a domain collide in the duplicate check (DUPLICATE_EMAIL)."""
    assert (await create(api, first))["userErrors"] == []
    assert codes(await create(api, second)) == [("DUPLICATE_EMAIL", ["input", "email"])]
    rows = await MailAccount.all().values_list("email", "email_normalized")
    assert rows == [(first, f"vertrieb@{BUCHER_ASCII}")]


@pytest.mark.parametrize("email", [*LEGITIMATE_ADDRESSES, "Info@Stra\u00dfe.example", f"v@{BUCHER_ASCII.upper()}"])
def test_addresses_and_domain_names_share_one_canonical_form(email: str) -> None:
    """The stored address key uses the same A-label form as the DNS entry points, so checks and lookups agree."""
    domain = email.rpartition("@")[2]
    assert normalize_address(email).domain == canonical_domain(domain)
    assert normalize_address(email).normalized == f"{email.rpartition('@')[0].lower()}@{canonical_domain(domain)}"


async def search(api: Api, text: str) -> list[str]:
    data = await api(ACCOUNTS, {"search": text})
    return [edge["node"]["email"] for edge in data["accounts"]["edges"]]


async def test_search_finds_an_address_by_either_form(api: Api) -> None:
    """Searching in U-labels finds an address entered as A-labels, and the other way round."""
    await create(api, f"vertrieb@{BUCHER_ASCII}")
    await create(api, "info@m\u00fcnchen.example")
    await create(api, "info@firma.example")
    assert await search(api, "b\u00fccher") == [f"vertrieb@{BUCHER_ASCII}"]
    assert await search(api, f"vertrieb@{BUCHER}") == [f"vertrieb@{BUCHER_ASCII}"]
    assert await search(api, "xn--mnchen-3ya") == ["info@m\u00fcnchen.example"]
    assert await search(api, "m\u00fcnch") == ["info@m\u00fcnchen.example"]  # as typed
    assert await search(api, "firma") == ["info@firma.example"]


async def test_search_with_a_nul_character_answers_on_both_databases(api: Api) -> None:
    """A NUL in the search text (PostgreSQL text cannot hold one) is ignored, not a masked crash."""
    await create(api, "info@firma.example")
    assert await search(api, "\x00") == ["info@firma.example"]
    assert await search(api, "fir\x00ma") == ["info@firma.example"]


async def test_delete_is_confirmed_by_either_form(api: Api) -> None:
    """The delete confirmation accepts the address in the other IDN form than it was entered in."""
    account = (await create(api, f"vertrieb@{BUCHER_ASCII}"))["account"]
    payload = (await api(DELETE, {"input": {"accountId": account["id"], "confirm": f"Vertrieb@{BUCHER}"}}))[
        "deleteAccount"
    ]
    assert payload["userErrors"] == []
    assert await MailAccount.all().count() == 0


def test_mailbox_domain_matches_in_either_form() -> None:
    """An IDN MAILBOX_DOMAIN accepts platform addresses in U-labels or A-labels, and the ASCII form too."""
    for configured in ("postfach.b\u00fccher.example", "postfach.xn--bcher-kva.example"):
        for address in ("p7@postfach.B\u00dcCHER.example", "p7@POSTFACH.XN--BCHER-KVA.EXAMPLE."):
            mailbox = parse_mailbox_address(address, configured)
            assert mailbox is not None
            assert mailbox.number == 7


async def test_listener_delivers_to_an_idn_mailbox_domain(api: Api) -> None:
    """With an IDN MAILBOX_DOMAIN (A-labels, as the settings take it) the listener stores mail sent to pN@ it."""
    account = (await create(api, "vertrieb@firma.example"))["account"]
    number = account["inboundAddress"].split("@")[0]
    server = await start_listener(ListenerConfig(mailbox_domain="postfach.xn--bcher-kva.example", port=0))
    try:
        port = server.sockets[0].getsockname()[1]
        raw = b"From: kunde@extern.example\r\nSubject: Hallo\r\n\r\nText\r\n"
        reply = await deliver(port, [f"{number}@Postfach.XN--BCHER-KVA.example"], raw)
    finally:
        server.close()
        await server.wait_closed()
    assert reply.code == 250, reply.text
    assert (await api(ACCOUNTS, {}))["accounts"]["edges"][0]["node"]["messageCount"] == 1


# --- invalid names are never asked for ------------------------------------------------------------

SPF_CHECK = """
mutation Check($input: SpfCheckInput!) {
  spfCheck(input: $input) { report { domain } userErrors { code field message } }
}"""
ZONE: dict[str, list[Any]] = {
    "firma.example": [{"TXT": "v=spf1 include:_spf.aranes.de -all"}, {"MX": [10, "mx.firma.example"]}],
    BUCHER_ASCII: [{"TXT": "v=spf1 include:_spf.aranes.de -all"}, {"MX": [10, "mx.firma.example"]}],
    "_spf.aranes.de": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
}
INVALID_ADDRESSES = [
    pytest.param("vertrieb@firma..example", id="empty-label"),
    pytest.param("vertrieb@" + "x" * 64 + ".example", id="label-over-63"),
    pytest.param("vertrieb@" + "\u00fc" * 58 + ".example", id="u-label-over-63-octets-as-a-label"),
    pytest.param("vertrieb@" + ".".join(["b\u00fccherb\u00fccherb\u00fccher"] * 11) + ".de", id="name-over-253"),
    pytest.param("vertrieb@-firma.example", id="leading-hyphen"),
    pytest.param("vertrieb@xn--zz.example", id="bad-a-label"),
    *LOOK_ALIKE_ADDRESSES,
]


@pytest.fixture
async def dns_server() -> AsyncIterator[LoopbackDnsServer]:
    async with LoopbackDnsServer(ZONE) as server:
        yield server


@pytest.fixture
async def spf_api(db: str, settings: Settings, dns_server: LoopbackDnsServer) -> AsyncIterator[Api]:
    """A write token against the app whose SPF checker asks the loopback DNS server."""
    app = build_app(replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=1.0), manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield Api(http, (await create_token("acme", Scope.WRITE)).secret)


@pytest.mark.parametrize("email", INVALID_ADDRESSES)
async def test_spf_check_refuses_bad_domains_without_a_query(
    spf_api: Api, dns_server: LoopbackDnsServer, email: str
) -> None:
    """spfCheck(email:) with an invalid or look-alike domain is INVALID_EMAIL and sends no DNS query."""
    payload = (await spf_api(SPF_CHECK, {"input": {"email": email}}))["spfCheck"]
    assert payload["report"] is None
    assert codes(payload) == [("INVALID_EMAIL", ["input", "email"])]
    assert dns_server.stats.queries_received == 0


async def test_spf_check_asks_for_the_a_label_form(spf_api: Api, dns_server: LoopbackDnsServer) -> None:
    """A valid IDN address is checked under its A-labels (and the query counter counts)."""
    payload = (await spf_api(SPF_CHECK, {"input": {"email": f"vertrieb@{BUCHER}"}}))["spfCheck"]
    assert payload["userErrors"] == []
    assert payload["report"]["domain"] == BUCHER_ASCII
    assert dns_server.stats.queries_received > 0


@pytest.fixture(scope="module")
def cli_dns() -> Iterator[ThreadedDnsServer]:
    with ThreadedDnsServer(ZONE) as server:
        yield server


def spf_cli(server: ThreadedDnsServer, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = server.address
    env = {**os.environ, "DNS_NAMESERVERS": f"{host}:{port}", "DNS_TIMEOUT": "2"}
    command = [sys.executable, "-m", "mailaccounts.cli", "spf", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["firma..example"], "'firma..example' is not a valid domain name (empty label)"),
        (["x" * 64 + ".example"], "is not a valid domain name (label too long)"),
        (["firma-.example"], "'firma-.example' is not a valid domain name (hyphen)"),
        ([f"firm{CYRILLIC_A}.de"], f"'firm{CYRILLIC_A}.de' is not a valid domain name (mixed script)"),
        (["example"], "'example' is not a valid domain name (single label)"),
        (["firma..example", "--ip", "192.0.2.1"], "'firma..example' is not a valid domain name (empty label)"),
        ([f"vertrieb@firm{CYRILLIC_A}.de"], "is not a valid address"),
    ],
)
def test_cli_refuses_bad_domains_without_a_query(cli_dns: ThreadedDnsServer, args: list[str], message: str) -> None:
    """`mailaccounts spf` with a bad or look-alike domain exits 2 with one line and sends no DNS query."""
    before = cli_dns.server.stats.queries_received
    result = spf_cli(cli_dns, *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert cli_dns.server.stats.queries_received == before


def test_cli_checks_an_idn_by_its_a_labels(cli_dns: ThreadedDnsServer) -> None:
    """`mailaccounts spf bücher.example` reports on xn--bcher-kva.example."""
    result = spf_cli(cli_dns, "B\u00dcCHER.example.", "--json")
    assert result.returncode == 0, result.stderr
    assert '"domain": "xn--bcher-kva.example"' in result.stdout
