"""Own SMTP servers cannot reach internal addresses (set, send, DNS rebinding) and failures are no port scanner."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from domaincheck.dns import DnsClient
from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from mailflow.relay import SmtpRelay
from orm.models import MailAccount, Message, Scope, SmtpSecurity
from resolvers.outbound import OutboundGuard, OutboundPolicy, ResolvedTarget, TargetNotAllowed
from resolvers.sending import RelayTarget, RelayUnreachable
from resolvers.tokens import create_token
from tests.support.api import Api
from tests.support.dns import LoopbackDnsServer, Zone
from tests.support.documents import SEND, SET_SMTP
from tests.support.factories import new_account
from tests.support.serve import free_port
from tests.support.smtp import SMTP_PASSWORD, SMTP_USER, Sink
from web.request_id import RequestIdLogFilter

PUBLIC_IP = "93.184.215.14"  # never dialled: every test changes the answer or refuses before connecting
ZONE = {
    "smtp.public.example": [{"A": PUBLIC_IP}],
    "smtp.intern.example": [{"A": "10.0.0.25"}],
    "smtp.v6loop.example": [{"A": PUBLIC_IP}, {"AAAA": "::1"}],
    "smtp.metadata.example": [{"CNAME": "metadata.intern.example"}],
    "metadata.intern.example": [{"A": "169.254.169.254"}],
    "smtp.loop.example": [{"A": "127.0.0.1"}],
}
NOT_ALLOWED_DE = "interne Adressen"
UNREACHABLE_DE = "Der eigene SMTP-Server war nicht erreichbar; die Nachricht wurde nicht gesendet."


@pytest.fixture
async def dns_server() -> AsyncIterator[LoopbackDnsServer]:
    """A loopback nameserver the app's outbound check asks (DNS_NAMESERVERS); answers are not cached (TTL 0)."""
    async with LoopbackDnsServer(Zone(ZONE, ttl=0)) as server:
        yield server


@asynccontextmanager
async def app_api(settings: Settings, token: str, **overrides: Any) -> AsyncIterator[Api]:
    """An Api for the app built with `settings` changed by `overrides`."""
    app = build_app(replace(settings, **overrides), manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield Api(http, token)


@pytest.fixture
async def token(db: str) -> str:
    return (await create_token("acme", Scope.WRITE)).secret


@pytest.fixture
async def strict(settings: Settings, token: str, dns_server: LoopbackDnsServer) -> AsyncIterator[Api]:
    """The app as deployed by default: OUTBOUND_ALLOW_NETWORKS empty, DNS from the loopback nameserver."""
    async with app_api(
        settings, token, outbound_allow_networks=(), dns_nameservers=(dns_server.address,), dns_timeout=1.0
    ) as api:
        yield api


@pytest.fixture
async def lenient(settings: Settings, token: str, dns_server: LoopbackDnsServer) -> AsyncIterator[Api]:
    """The app with OUTBOUND_ALLOW_NETWORKS=127.0.0.0/8 (a self-hosted server on loopback), same DNS."""
    async with app_api(
        settings,
        token,
        outbound_allow_networks=(ip_network("127.0.0.0/8"),),
        dns_nameservers=(dns_server.address,),
        dns_timeout=1.0,
        smtp_relay_timeout=1,
    ) as api:
        yield api


async def set_server(api: Api, account_id: str, host: str, port: int = 587, **fields: Any) -> dict[str, Any]:
    values = {"host": host, "port": port, "security": "NONE", "username": SMTP_USER, "password": SMTP_PASSWORD}
    payload: dict[str, Any] = (await api(SET_SMTP, {"input": {"accountId": account_id, **values, **fields}}))[
        "setSmtpServer"
    ]
    return payload


async def send(api: Api, account_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = (
        await api(SEND, {"input": {"accountId": account_id, "to": ["kunde@example.com"], "text": "x"}})
    )["sendMessage"]
    return payload


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "0x7f000001",
        "localhost",
        "LOCALHOST.",
        "smtp.localhost",
        "0.0.0.0",
        "0",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.178.1",
        "100.64.0.1",
        "169.254.169.254",
        "224.0.0.251",
        "255.255.255.255",
        "::1",
        "[::1]",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:a9fe:a9fe",
        "::127.0.0.1",
        "fe80::1",
        "fd00::25",
        "ff02::1",
        "2002:7f00:1::1",
        "64:ff9b::a9fe:a9fe",
        "smtp.intern.example",
        "smtp.v6loop.example",
        "smtp.metadata.example",
        "smtp.loop.example",
    ],
)
async def test_internal_host_is_refused_by_set_smtp_server(strict: Api, host: str) -> None:
    """Every spelling of an internal address, localhost, and names whose A/AAAA (or CNAME target) is internal
    are INVALID_SMTP_SERVER on the host, saying internal addresses are not allowed; nothing is stored."""
    account = await new_account(strict, "vertrieb@firma.example")
    payload = await set_server(strict, account.id, host)
    assert payload["account"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_SMTP_SERVER", ["input", "host"])]
    assert NOT_ALLOWED_DE in payload["userErrors"][0]["message"]
    assert (await MailAccount.get(id=account.row_id)).smtp_host is None


async def test_refusal_is_explained_in_english(strict: Api) -> None:
    """With Accept-Language: en the refusal says internal addresses are not allowed, in English."""
    account = await new_account(strict, "vertrieb@firma.example")
    payload = await set_server(Api(strict.http, strict.token, lang="en"), account.id, "169.254.169.254")
    assert "internal addresses" in payload["userErrors"][0]["message"]


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("smtp.public.example", "smtp.public.example"),
        (PUBLIC_IP, PUBLIC_IP),
        ("0x5d.0xb8.0xd7.0x0e", PUBLIC_IP),  # stored and dialled in its canonical form
        ("2606:4700:4700::1111", "2606:4700:4700::1111"),
        ("smtp.noch-nicht.example", "smtp.noch-nicht.example"),  # no address yet: checked at every send
    ],
)
async def test_public_or_unresolved_host_is_stored(strict: Api, host: str, stored: str) -> None:
    """Public addresses and names are accepted (IP spellings stored canonically); a name without any address
    yet is accepted too, since it cannot be dialled and each send checks it again."""
    account = await new_account(strict, "vertrieb@firma.example")
    payload = await set_server(strict, account.id, host)
    assert payload["userErrors"] == []
    assert payload["account"]["smtpServer"]["host"] == stored


async def test_listed_network_is_allowed_and_dialled_by_the_checked_address(
    lenient: Api, strict: Api, auth_sink: Sink, sink: Sink
) -> None:
    """With 127.0.0.0/8 in OUTBOUND_ALLOW_NETWORKS a name resolving (through DNS_NAMESERVERS only) to loopback
    is accepted and the mail reaches the server at that address; without it the same name is refused."""
    account = await new_account(lenient, "vertrieb@firma.example")
    assert [e["code"] for e in (await set_server(strict, account.id, "smtp.loop.example"))["userErrors"]] == [
        "INVALID_SMTP_SERVER"
    ]
    assert (await set_server(lenient, account.id, "smtp.loop.example", port=auth_sink.port))["userErrors"] == []
    assert (await send(lenient, account.id))["userErrors"] == []
    assert auth_sink.logins == [SMTP_USER]
    assert [r.mail_from for r in auth_sink.received] == ["vertrieb@firma.example"]
    assert sink.received == []


async def test_dns_rebinding_is_refused_when_sending(
    strict: Api, dns_server: LoopbackDnsServer, auth_sink: Sink, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    """A name that was public at setSmtpServer and resolves to 127.0.0.1 at send time is refused at connect
    time: SEND_FAILED with the generic text, nothing dialled or stored; the log names the reason and the
    request id."""
    dns_server.zone = Zone({"smtp.rebind.example": [{"A": PUBLIC_IP}]}, ttl=0)
    account = await new_account(strict, "vertrieb@firma.example")
    assert (await set_server(strict, account.id, "smtp.rebind.example", port=auth_sink.port))["userErrors"] == []
    dns_server.zone = Zone({"smtp.rebind.example": [{"A": "127.0.0.1"}]}, ttl=0)
    caplog.handler.addFilter(RequestIdLogFilter())
    with caplog.at_level(logging.WARNING, logger="resolvers.sending"):
        response = await strict.http.post(
            "/graphql",
            json={"query": SEND, "variables": {"input": {"accountId": account.id, "to": ["kunde@example.com"]}}},
            headers={"Authorization": f"Bearer {strict.token}", "X-Request-ID": "rebind-test-0001"},
        )
    payload = response.json()["data"]["sendMessage"]
    assert payload["message"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("SEND_FAILED", None)
    assert error["message"].startswith(UNREACHABLE_DE)
    assert auth_sink.logins == [] and auth_sink.received == [] and sink.received == []
    assert await Message.all().count() == 0
    [record] = [r for r in caplog.records if "not reached" in r.getMessage()]
    assert "127.0.0.1" in record.getMessage() and "not allowed" in record.getMessage()
    assert record.request_id == "rebind-test-0001"  # type: ignore[attr-defined]


async def test_internal_host_stored_earlier_is_refused_when_sending(strict: Api, auth_sink: Sink) -> None:
    """An own server stored before the rule existed (127.0.0.1) is not dialled at send time: SEND_FAILED."""
    account = await new_account(strict, "vertrieb@firma.example")
    await MailAccount.filter(id=account.row_id).update(
        smtp_host="127.0.0.1", smtp_port=auth_sink.port, smtp_security="NONE"
    )
    payload = await send(strict, account.id)
    assert payload["userErrors"][0]["code"] == "SEND_FAILED"
    assert payload["userErrors"][0]["message"].startswith(UNREACHABLE_DE)
    assert auth_sink.received == [] and auth_sink.logins == []


async def test_platform_relay_on_loopback_is_never_checked(strict: Api, sink: Sink) -> None:
    """SMTP_RELAY is the operator's configuration: on 127.0.0.1 it is used although loopback is not allowed."""
    account = await new_account(strict, "vertrieb@firma.example")
    assert (await send(strict, account.id))["userErrors"] == []
    assert [r.mail_from for r in sink.received] == [account.outbound]


async def test_connection_failures_are_indistinguishable_to_the_client(
    lenient: Api, strict: Api, silent_server: int, sink: Sink
) -> None:
    """Not allowed, no address, connection refused, no answer (timeout) and a failed TLS handshake all give
    the same SEND_FAILED text, naming neither host, port nor cause; each ends within the relay timeout."""
    cases = [
        (strict, "smtp.intern.example", 25, "NONE", True),  # stored directly: refused at send time
        (lenient, "smtp.noch-nicht.example", 25, "NONE", False),  # NXDOMAIN
        (lenient, "127.0.0.1", free_port(), "NONE", False),  # connection refused
        (lenient, "127.0.0.1", silent_server, "NONE", False),  # accepts, never answers
        (lenient, "127.0.0.1", sink.port, "TLS", False),  # plain SMTP where TLS was expected
    ]
    messages = set()
    for number, (api, host, port, security, write_directly) in enumerate(cases):
        account = await new_account(api, f"konto{number}@firma.example")
        if write_directly:
            await MailAccount.filter(id=account.row_id).update(smtp_host=host, smtp_port=port, smtp_security=security)
        else:
            assert (await set_server(api, account.id, host, port=port, security=security))["userErrors"] == []
        started = time.monotonic()
        payload = await send(api, account.id)
        assert time.monotonic() - started < 10  # relay timeout is 1 s; a generous bound
        [error] = payload["userErrors"]
        assert (error["code"], error["field"]) == ("SEND_FAILED", None)
        assert str(port) not in error["message"] and host not in error["message"]
        messages.add(error["message"])
    assert len(messages) == 1
    assert messages.pop().startswith(UNREACHABLE_DE)
    assert sink.received == []
    assert await Message.all().count() == 0


async def test_connection_is_checked_against_the_peer_it_reached(auth_sink: Sink) -> None:
    """Even handed an unvetted address, the relay closes a connection whose peer the rule refuses."""
    guard = OutboundGuard(OutboundPolicy(), DnsClient([("127.0.0.1", 9)]), timeout=1.0)
    relay = SmtpRelay(RelayTarget("127.0.0.1", 25, SmtpSecurity.NONE), guard, timeout=1.0)
    with pytest.raises(TargetNotAllowed):
        await relay._connect(ResolvedTarget("own.example", auth_sink.port, (IPv4Address("127.0.0.1"),)))
    assert auth_sink.received == [] and auth_sink.logins == []


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` (and its key) as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_tls_verifies_the_name_while_the_checked_address_is_dialled(
    tmp_path: Path, dns_server: LoopbackDnsServer
) -> None:
    """Over TLS the relay dials the vetted address but checks the certificate against the configured name
    (and sends it as SNI): a certificate for that name is accepted, the same server under another name is not."""
    cert_path, key_path = _certificate(tmp_path, "smtp.loop.example")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    handler = Sink(port=0)
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="own.example"), "127.0.0.1", 0, ssl=server_context
    )
    port = server.sockets[0].getsockname()[1]
    dns_server.zone = Zone(
        {"smtp.loop.example": [{"A": "127.0.0.1"}], "smtp.other.example": [{"A": "127.0.0.1"}]}, ttl=0
    )
    guard = OutboundGuard(
        OutboundPolicy.from_cidrs(["127.0.0.0/8"]), DnsClient([dns_server.address], timeout=0.2, lifetime=0.6), 1.0
    )
    relay = SmtpRelay(
        RelayTarget("127.0.0.1", 25, SmtpSecurity.NONE),
        guard,
        timeout=5.0,
        tls_context=ssl.create_default_context(cafile=str(cert_path)),
    )
    try:
        refused = await relay.send(
            b"Subject: x\r\n\r\nx\r\n",
            sender="vertrieb@firma.example",
            recipients=["kunde@example.com"],
            target=RelayTarget("smtp.loop.example", port, SmtpSecurity.TLS),
        )
        assert refused == {}
        assert [r.rcpt_tos for r in handler.received] == [["kunde@example.com"]]
        assert names == ["smtp.loop.example"]
        with pytest.raises(RelayUnreachable) as failure:
            await relay.send(
                b"Subject: x\r\n\r\nx\r\n",
                sender="vertrieb@firma.example",
                recipients=["kunde@example.com"],
                target=RelayTarget("smtp.other.example", port, SmtpSecurity.TLS),
            )
        assert "CERTIFICATE_VERIFY_FAILED" in failure.value.detail
        assert len(handler.received) == 1
    finally:
        server.close()
        await server.wait_closed()
