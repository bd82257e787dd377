"""Generated GraphQL queries and mutations (hypothesis-graphql) never crash the API, nor stall it."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

import graphql
import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries
from hypothesis_graphql.types import CustomScalarStrategies

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import MailAccount, Scope, SmtpSecurity
from resolvers.accounts import create_account
from resolvers.intake import deliver_message, store_sent_message
from resolvers.mailboxes import Recipient
from resolvers.pagination import encode_cursor
from resolvers.tokens import create_token, ensure_tenant
from schema import schema as api_schema
from schema.messages import request_error_message
from tests.support.api import Api
from tests.support.dns import LoopbackDnsServer

# Far above what any generated document needs on a loaded machine, far below a stall (DNS_TIMEOUT is 2 s here).
RESPONSE_BOUND_SECONDS = 5.0
# Strawberry's MaskErrors replaces the message of an unexpected exception with this text.
MASKED_MESSAGES = {request_error_message("UNEXPECTED_ERROR", lang) for lang in ("de", "en")}

SCHEMA_SDL = api_schema.as_str()

# The seeded accounts' domains resolve on the loopback DNS server; every other name is NXDOMAIN there, at once.
ZONE: dict[str, list[Any]] = {
    "_spf.aranes.de": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
    "gut.example": [{"MX": [10, "mx.gut.example"]}, {"TXT": "v=spf1 mx include:_spf.aranes.de ~all"}],
    "mx.gut.example": [{"A": "198.51.100.25"}],
    "_dmarc.gut.example": [{"TXT": "v=DMARC1; p=none"}],
    "alt.example": [{"MX": [10, "mx.gut.example"]}, {"TXT": "v=spf1 include:_spf.anbieter.example ~all"}],
    "_spf.anbieter.example": [{"TXT": "v=spf1 ip4:203.0.113.0/24 ~all"}],
    "xn--bcher-kva.example": [{"MX": [0, "."]}],
}

# Values a client plausibly sends, beside the arbitrary text hypothesis-graphql generates: valid, duplicate,
# IDN, mixed-script and over-long addresses, platform addresses, Message-IDs, hosts, injections.
PLAUSIBLE_STRINGS = [
    "",
    " ",
    "\x00",  # PostgreSQL text cannot hold NUL
    "fir\x00ma",
    "vertrieb@gut.example",
    "VERTRIEB@Gut.Example",
    "neu@gut.example",
    "info@bücher.example",
    "info@xn--bcher-kva.example",
    "p\u0430ypal@gut.example",  # a Cyrillic look-alike of the Latin a
    "alt@alt.example",
    "kunde@extern.example",
    "x@" + "a" * 64 + ".example",
    "a" * 65 + "@gut.example",
    "@",
    "a@b",
    "user@[127.0.0.1]",
    "p1@mailbox.example.com",
    "p1.out@mailbox.example.com",
    "<angebot-1@extern.example>",
    "<>",
    "127.0.0.1",
    "::1",
    "localhost",
    "smtp.gut.example",
    "Vertrieb",
    "Vertrieb\r\nBcc: x@extern.example",
    "'; DROP TABLE mail_account; --",
    "%",
    "_",
    "\\",
    "\x00",
    "\u202e",
    "x" * 1001,
]


def global_id(type_name: str, node_id: object) -> str:
    """A Relay global ID as the API writes it: base64 of `Type:id`."""
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


# Addresses that pass validation, so that sends, creates and confirmations sometimes succeed.
VALID_ADDRESSES = ["kunde@extern.example", "neu@gut.example", "info@bücher.example", "a.b+c@sub.alt.example"]


def string_values(seeded: list[str], *, valid_weight: int = 1) -> st.SearchStrategy[graphql.ValueNode]:
    """String arguments: arbitrary text (NUL and control characters included), a plausible value, or a
    valid address, seeded e-mail address or real cursor. st.one_of picks its branches evenly, so the valid
    branch given `valid_weight` times is drawn that much more often."""
    valid = st.sampled_from(VALID_ADDRESSES + seeded)
    return st.one_of(st.text(), st.sampled_from(PLAUSIBLE_STRINGS), *[valid] * valid_weight).map(nodes.String)


def id_values(seeded: list[str], *, real_weight: int = 2) -> st.SearchStrategy[graphql.ValueNode]:
    """ID arguments: mostly a real seeded id, else well-formed ids of unknown rows or types, else garbage."""
    made_up = st.builds(
        global_id,
        st.sampled_from(["MailAccount", "Message", "Tenant", "Node", "", "mailaccount"]),
        st.one_of(st.integers(), st.text(max_size=12)),
    )
    real = st.sampled_from(seeded)
    return st.one_of(*[real] * real_weight, made_up, st.text()).map(nodes.String)


def per_root_field(
    build: Callable[..., st.SearchStrategy[str]], fields: list[str], scalars: CustomScalarStrategies
) -> st.SearchStrategy[str]:
    """Documents of one root field each, the field picked evenly, plus documents that mix them: so that
    every field gets its share of the examples, not only the ones the generator happens to favour."""
    return st.one_of(
        *[build(SCHEMA_SDL, fields=[name], custom_scalars=scalars) for name in fields],
        build(SCHEMA_SDL, fields=fields, custom_scalars=scalars),
    )


INT_VALUES = st.one_of(
    st.integers(min_value=0, max_value=100),  # a valid page size
    st.integers(min_value=-3, max_value=130),
    st.sampled_from([25, 465, 587, 65535, 65536, 2**31 - 1, -(2**31)]),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
).map(nodes.Int)

DATETIME_VALUES = st.one_of(
    st.datetimes(timezones=st.sampled_from([None, UTC])).map(datetime.isoformat),
    st.sampled_from(["2026-01-01T00:00:00Z", "0001-01-01T00:00:00", "9999-12-31T23:59:59+14:00", "", "now"]),
    st.text(max_size=30),
).map(nodes.String)

# Accept-Language as browsers and broken clients send it; bytes go on the wire as they are (obs-text).
LANGUAGES = st.sampled_from([None, "en", "de-DE,de;q=0.9", "fr;q=0.5, *;q=0.1", "en;q=abc", "", b"\xe9"])


class CrashLog(logging.Handler):
    """Keeps the tracebacks logged while one request runs, so a failure shows what crashed."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter("%(name)s: %(message)s")
        return "\n".join(formatter.format(record) for record in self.records)


@contextmanager
def crash_log() -> Iterator[CrashLog]:
    """Collect ERROR records of every logger (Strawberry logs a masked exception with its traceback)."""
    handler = CrashLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@dataclass
class AcceptingRelay:
    """The platform relay and the seeded account's own server: an aiosmtpd sink on loopback."""

    received: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received += 1
        return "250 2.0.0 queued"


@dataclass(repr=False)  # hypothesis prints the arguments of a failing example: keep that short
class FuzzTarget:
    """The real app over ASGI with a seeded tenant, and the strategies whose values fit its data."""

    http: httpx.AsyncClient
    token: str
    log: CrashLog
    relay: AcceptingRelay
    queries: st.SearchStrategy[str]
    mutations: st.SearchStrategy[str]
    sending: st.SearchStrategy[str]
    send_inputs: st.SearchStrategy[dict[str, Any]]

    async def check(self, document: str, lang: str | bytes | None, variables: dict[str, Any] | None = None) -> None:
        """Post `document`; no 5xx, no masked crash, an answer within RESPONSE_BOUND_SECONDS."""
        headers = {b"Authorization": f"Bearer {self.token}".encode()}
        if lang is not None:
            headers[b"Accept-Language"] = lang.encode() if isinstance(lang, str) else lang
        self.log.records.clear()
        started = time.monotonic()
        response = await self.http.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
        elapsed = time.monotonic() - started
        report = (
            f"document:\n{document}\nvariables: {variables!r}\n"
            f"response {response.status_code}: {response.text[:2000]}\n{self.log.text()}"
        )
        assert response.status_code in (200, 400), report
        body = response.json()
        assert "data" in body or body.get("errors"), report
        masked = [error for error in body.get("errors") or [] if error.get("message") in MASKED_MESSAGES]
        assert not masked, report
        assert elapsed < RESPONSE_BOUND_SECONDS, f"{elapsed:.1f} s\n{report}"


RAW_INBOUND = (
    b"From: Erika Mustermann <erika@extern.example>\r\nTo: p1@mailbox.example.com\r\nSubject: Angebot\r\n"
    b"Date: Tue, 03 Jun 2025 10:15:00 +0200\r\nMessage-ID: <angebot-1@extern.example>\r\n\r\nGuten Tag.\r\n"
)
RAW_BROKEN = b"Subject: =?utf-8?b?////?=\r\nDate: gestern\r\nFrom: \xff\xfe\r\n\r\n\x00\xff body"
RAW_SENT = (
    b'From: "Vertrieb" <vertrieb@gut.example>\r\nTo: kunde@extern.example\r\nSubject: Re: Angebot\r\n'
    b"Message-ID: <antwort-1@gut.example>\r\nIn-Reply-To: <angebot-1@extern.example>\r\n\r\nDanke.\r\n"
)


@dataclass(frozen=True)
class Seeded:
    """Global IDs of the seeded rows (and of wrong types), and their addresses and cursors as strings."""

    account_ids: list[str]
    message_ids: list[str]
    strings: list[str]

    @property
    def ids(self) -> list[str]:
        return self.account_ids + self.message_ids


async def seed(relay_port: int) -> Seeded:
    """Accounts and messages of tenant `acme` (one account sends through its own server on `relay_port`),
    and one account of tenant `globex`."""
    acme = (await ensure_tenant("acme")).id
    globex = (await ensure_tenant("globex")).id
    active = await create_account(acme, "vertrieb@gut.example", "Vertrieb")
    inactive = await create_account(acme, "info@bücher.example", "Bücher-Info")
    other = await create_account(acme, "alt@alt.example", "Alt")
    foreign = await create_account(globex, "fremd@gut.example", "Fremd")
    await MailAccount.filter(id=other.id).update(
        smtp_host="127.0.0.1", smtp_port=relay_port, smtp_security=SmtpSecurity.NONE
    )
    inbound = await deliver_message([Recipient(active.id, active.mailbox_number, False)], RAW_INBOUND)
    broken = await deliver_message([Recipient(inactive.id, inactive.mailbox_number, True)], RAW_BROKEN)
    sent = await store_sent_message(active.id, RAW_SENT)
    # Switched off after its mail arrived: an inactive account takes no deliveries.
    await MailAccount.filter(id=inactive.id).update(active=False)
    message_ids = [*inbound.stored_message_ids, *broken.stored_message_ids, sent.id]
    accounts = (active, inactive, other, foreign)
    return Seeded(
        account_ids=[global_id("MailAccount", account.id) for account in accounts],
        # The last one has an account's number with the Message type.
        message_ids=[global_id("Message", row_id) for row_id in (*message_ids, foreign.id)],
        strings=[account.email for account in accounts]
        + [encode_cursor(row_id) for row_id in (active.id, other.id, message_ids[0], 2**62)],
    )


SEND = """
mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) {
    message { id direction messageId from to subject date size isBounce raw rawBase64 }
    userErrors { code field message }
  }
}"""


def send_inputs(account_ids: list[str], message_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """SendMessageInput values a client would send: real accounts, mostly valid recipients, any content.

    The generated documents rarely get a whole recipient list valid; these reach the relay."""
    recipient = st.one_of(st.sampled_from(VALID_ADDRESSES), st.sampled_from(VALID_ADDRESSES), st.text(max_size=40))
    recipients = st.lists(recipient, min_size=1, max_size=3)
    content = st.one_of(st.text(), st.sampled_from(PLAUSIBLE_STRINGS))
    return st.fixed_dictionaries(
        {"accountId": st.sampled_from(account_ids), "to": recipients},
        optional={
            "cc": recipients,
            "bcc": recipients,
            "subject": content,
            "text": content,
            "html": content,
            "inReplyTo": st.one_of(st.sampled_from(message_ids), content),
        },
    ).map(lambda value: {"input": value})


@pytest.fixture
async def fuzz(db: str, settings: Settings) -> AsyncIterator[FuzzTarget]:
    """The app with DNS on a loopback server, SMTP to a loopback sink, no rate limit, and seeded data."""
    relay = AcceptingRelay()
    async with AsyncExitStack() as stack:
        dns = await stack.enter_async_context(LoopbackDnsServer(ZONE))
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(relay, hostname="relay.example"), "127.0.0.1", 0
        )
        stack.push_async_callback(server.wait_closed)
        stack.callback(server.close)
        relay_port: int = server.sockets[0].getsockname()[1]
        app_settings = replace(
            settings,
            dns_nameservers=(dns.address,),
            dns_timeout=2.0,
            smtp_relay=f"smtp://127.0.0.1:{relay_port}",
            smtp_relay_timeout=2,
            # The seeded own server is the sink on loopback; every other internal target stays refused.
            outbound_allow_networks=(ip_network("127.0.0.1/32"),),
            api_rate_limit=0,
        )
        app = build_app(app_settings, manage_database=False)
        # The lifespan closes the SPF checker, which cancels checks that `spfCheckAll(wait: false)` started.
        await stack.enter_async_context(app.router.lifespan_context(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        )
        seeded = await seed(relay_port)
        token = (await create_token("acme", Scope.WRITE)).secret
        scalars = {
            "ID": id_values(seeded.ids),
            "String": string_values(seeded.strings),
            "Int": INT_VALUES,
            "DateTime": DATETIME_VALUES,
        }
        # A send gets through only with a real active account and every recipient valid: bias towards both.
        send_scalars = {
            **scalars,
            "ID": id_values(seeded.ids, real_weight=4),
            "String": string_values(seeded.strings, valid_weight=4),
        }
        log = stack.enter_context(crash_log())
        yield FuzzTarget(
            http=http,
            token=token,
            log=log,
            relay=relay,
            queries=per_root_field(queries, QUERY_FIELDS, scalars),
            # sendMessage has its own test, where no setSmtpServer can point an account at an arbitrary host:
            # there mail only ever goes to the loopback sink (the relay, or the seeded account's own server).
            mutations=per_root_field(mutations, NON_SENDING_MUTATIONS, scalars),
            sending=mutations(SCHEMA_SDL, fields=["sendMessage"], custom_scalars=send_scalars),
            send_inputs=send_inputs(seeded.account_ids, seeded.message_ids),
        )


QUERY_FIELDS = ["accounts", "account", "message", "spfCheckStatus", "node"]
NON_SENDING_MUTATIONS = [
    "createAccount",
    "updateAccount",
    "setStatus",
    "deleteAccount",
    "mergeAccounts",
    "setSmtpServer",
    "clearSmtpServer",
    "spfCheck",
    "spfCheckAll",
]

FUZZ = hypothesis_settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    # The app and the seeded data are meant to be shared by all examples of a test; generated documents are
    # large by nature, and the time per example is bounded by RESPONSE_BOUND_SECONDS instead.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


@hypothesis_settings(FUZZ, max_examples=150)
@given(data=st.data())
async def test_generated_queries_never_crash(fuzz: FuzzTarget, data: st.DataObject) -> None:
    """150 generated queries over seeded data: each answers 200/400 in time, without a masked crash."""
    await fuzz.check(data.draw(fuzz.queries, label="document"), data.draw(LANGUAGES, label="Accept-Language"))


@hypothesis_settings(FUZZ, max_examples=150)
@given(data=st.data())
async def test_generated_mutations_never_crash(fuzz: FuzzTarget, data: st.DataObject) -> None:
    """150 generated mutations (all but sendMessage) with a write token: each answers in time, never crashes."""
    await fuzz.check(data.draw(fuzz.mutations, label="document"), data.draw(LANGUAGES, label="Accept-Language"))


@hypothesis_settings(FUZZ, max_examples=60)
@given(data=st.data())
async def test_generated_sends_never_crash(fuzz: FuzzTarget, data: st.DataObject) -> None:
    """60 sendMessage requests, generated documents or generated inputs (through the loopback relay or the
    seeded own server), never crash or stall."""
    lang = data.draw(LANGUAGES, label="Accept-Language")
    if data.draw(st.booleans(), label="generated document"):
        await fuzz.check(data.draw(fuzz.sending, label="document"), lang)
    else:
        await fuzz.check(SEND, lang, data.draw(fuzz.send_inputs, label="variables"))


# What the fuzzer found, pinned: a later schema change reshuffles the generated documents.


@pytest.mark.parametrize(
    "type_name",
    [
        "M4M4",
        "Query",
        "SpfReport",
        # The interface itself: Strawberry's relay.node() would call the abstract Node.resolve_node.
        "Node",
    ],
)
async def test_node_with_an_id_of_no_node_type_is_a_readable_error(api: Api, type_name: str) -> None:
    """node(id:) with a well-formed ID naming no Node type answers null and says why, not "Unexpected error."."""
    response = await api.post("query N($id: ID!) { node(id: $id) { id } }", {"id": global_id(type_name, 1)})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"node": None}
    [error] = body["errors"]
    assert error["message"] not in MASKED_MESSAGES
    assert type_name in error["message"]


async def test_spf_check_status_takes_a_time_without_zone_as_utc(api: Api) -> None:
    """spfCheckStatus(startedAt:) without a zone offset counts like the same time in UTC, without a crash."""
    await api(
        "mutation C($input: CreateAccountInput!) { createAccount(input: $input) { userErrors { code } } }",
        {"input": {"email": "vertrieb@gut.example", "senderName": "Vertrieb"}},
    )
    status = "query S($t: DateTime!) { spfCheckStatus(startedAt: $t) { total checked finished } }"
    naive = await api(status, {"t": "2000-01-01T00:00:00"})
    assert naive == await api(status, {"t": "2000-01-01T00:00:00+00:00"})
    assert naive["spfCheckStatus"]["total"] == 1
