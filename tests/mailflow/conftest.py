"""Fixtures of the mail flow tests: the real listener on loopback, real aiosmtpd sinks as relays."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from ipaddress import ip_network
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailaccounts.settings import Settings
from mailflow.listener import ListenerConfig, start_listener
from tests.support.api import MAILBOX_DOMAIN
from tests.support.smtp import (
    MAX_CONNECTIONS,
    MAX_MESSAGE_BYTES,
    RECIPIENT_CACHE_TTL,
    SMTP_PASSWORD,
    SMTP_USER,
    Sink,
    port_of,
    serve_on_loopback,
)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """The platform relay: an aiosmtpd sink on loopback."""
    handler = Sink(port=0)
    server = await serve_on_loopback(lambda: SMTP(handler, hostname="relay.example"))
    handler.port = port_of(server)
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

    server = await serve_on_loopback(factory)
    handler.port = port_of(server)
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
    yield port_of(server)
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
    yield port_of(server)
    server.close()
    await server.wait_closed()
