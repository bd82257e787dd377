"""SMTP for the mail flow tests: aiosmtpd sinks standing in for relays, a client session, one delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

# The listener the tests start (tests/mailflow/conftest.py) is configured with these.
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


async def serve_on_loopback(factory: Callable[[], asyncio.BaseProtocol]) -> asyncio.Server:
    """A server of `factory` on a free loopback port, on the running event loop."""
    return await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    """The port a loopback server listens on."""
    port: int = server.sockets[0].getsockname()[1]
    return port


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
