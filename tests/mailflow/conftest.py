"""Fixtures of the mail flow tests: the real listener on loopback, real aiosmtpd sinks as relays."""

from __future__ import annotations

import asyncio
import base64
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailaccounts.settings import Settings
from mailflow.listener import ListenerConfig, start_listener
from tests.conftest import MAILBOX_DOMAIN, Api
from tests.documents import CREATE

MAX_MESSAGE_BYTES = 64 * 1024
MAX_CONNECTIONS = 8
# Longer than any test, so whether RCPT is answered from the listener's cache does not depend on timing.
RECIPIENT_CACHE_TTL = 60.0
SMTP_USER = "vertrieb@firma.example"
SMTP_PASSWORD = "geheim-Passwort-1"


@dataclass
class Received:
    """One message a sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Sink:
    """A real aiosmtpd server that keeps what it receives; `refuse` makes it answer DATA with that reply,
    `refuse_rcpt` refuses those envelope recipients with 550 5.1.1."""

    port: int
    received: list[Received] = field(default_factory=list)
    refuse: str | None = None
    refuse_rcpt: set[str] = field(default_factory=set)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return self.refuse
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.original_content or b""))
        )
        return "250 2.0.0 queued as 4711"


async def _serve(factory: Callable[[], asyncio.BaseProtocol]) -> asyncio.Server:
    return await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)


def _port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """The platform relay: an aiosmtpd sink on loopback."""
    handler = Sink(port=0)
    server = await _serve(lambda: SMTP(handler, hostname="relay.example"))
    handler.port = _port(server)
    yield handler
    server.close()
    await server.wait_closed()


@pytest.fixture
async def auth_sink() -> AsyncIterator[Sink]:
    """An account's own SMTP server: requires AUTH (without TLS, on loopback) with SMTP_USER/SMTP_PASSWORD."""
    handler = Sink(port=0)

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            handler.logins.append(auth_data.login.decode())
        # handled=False: aiosmtpd then answers 535 itself (its default, handled=True, answers nothing).
        return AuthResult(success=ok, handled=False)

    def factory() -> SMTP:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "AUTH without TLS": fine on loopback in a test
            return SMTP(
                handler,
                hostname="own.example",
                authenticator=authenticator,
                auth_required=True,
                auth_require_tls=False,
            )

    server = await _serve(factory)
    handler.port = _port(server)
    yield handler
    server.close()
    await server.wait_closed()


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers: a relay that times out."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield _port(server)
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def settings(database_url: str, sink: Sink) -> Settings:
    """The app's settings with SMTP_RELAY pointing at the sink and a short relay timeout; the loopback sinks
    may stand in for own SMTP servers (OUTBOUND_ALLOW_NETWORKS=127.0.0.0/8)."""
    return Settings(
        database_url=database_url,
        mailbox_domain=MAILBOX_DOMAIN,
        secret_key="k" * 40,
        smtp_relay=f"smtp://127.0.0.1:{sink.port}",
        smtp_relay_timeout=2,
        outbound_allow_networks=(ip_network("127.0.0.0/8"),),
    )


@pytest.fixture
async def listener(db: str) -> AsyncIterator[int]:
    """The real SMTP listener on a free loopback port, on the test's event loop and database."""
    server = await start_listener(
        ListenerConfig(
            mailbox_domain=MAILBOX_DOMAIN,
            host="127.0.0.1",
            port=0,
            max_message_bytes=MAX_MESSAGE_BYTES,
            max_connections=MAX_CONNECTIONS,
            recipient_cache_ttl=RECIPIENT_CACHE_TTL,
        )
    )
    yield _port(server)
    server.close()
    await server.wait_closed()


@dataclass
class Account:
    """An account as the API returned it, with what the tests need at hand."""

    data: dict[str, Any]

    @property
    def id(self) -> str:
        value: str = self.data["id"]
        return value

    @property
    def row_id(self) -> int:
        return int(base64.b64decode(self.id).decode().split(":")[1])

    @property
    def inbound(self) -> str:
        value: str = self.data["inboundAddress"]
        return value

    @property
    def outbound(self) -> str:
        value: str = self.data["outboundAddress"]
        return value

    @property
    def email(self) -> str:
        value: str = self.data["email"]
        return value


async def new_account(api: Api, email: str, name: str = "Vertrieb", active: bool = True) -> Account:
    """Create an account over the API."""
    data = await api(CREATE, {"input": {"email": email, "senderName": name, "active": active}})
    assert data["createAccount"]["userErrors"] == []
    return Account(data["createAccount"]["account"])


@dataclass
class Reply:
    code: int
    text: str


async def smtp_session(port: int) -> aiosmtplib.SMTP:
    """A connected client (EHLO done) to the listener; close it with `await client.quit()`."""
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, timeout=10, start_tls=False, local_hostname="client.example"
    )
    await client.connect()
    await client.ehlo()
    return client


async def deliver(port: int, rcpts: list[str], raw: bytes, mail_from: str = "absender@extern.example") -> Reply:
    """One SMTP transaction; the first refusal (RCPT or DATA) or the final DATA reply."""
    client = await smtp_session(port)
    try:
        await client.mail(mail_from)
        accepted = 0
        last: Reply | None = None
        for rcpt in rcpts:
            response = await client.execute_command(b"RCPT", b"TO:<" + rcpt.encode() + b">")
            if response.code == 250:
                accepted += 1
            else:
                last = Reply(response.code, response.message)
        if not accepted:
            assert last is not None
            return last
        try:
            response = await client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            return Reply(exc.code, exc.message)
        return Reply(response.code, response.message)
    finally:
        client.close()


def mail(
    subject: str = "Angebot",
    message_id: str | None = "<angebot-1@extern.example>",
    to: str = "p1@mailbox.example.com",
    body: str = "Guten Tag,\r\nanbei das Angebot.\r\n",
) -> bytes:
    """A small RFC 5322 message as a remote server would send it."""
    headers = [
        "From: Erika Mustermann <erika@extern.example>",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Tue, 03 Jun 2025 10:15:00 +0200",
    ]
    if message_id:
        headers.append(f"Message-ID: {message_id}")
    return ("\r\n".join([*headers, "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body])).encode()
