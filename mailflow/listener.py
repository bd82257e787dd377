"""The SMTP listener: accepts mail for `p<N>@` and `p<N>.out@` of active accounts and stores it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from resolvers.mailboxes import MailboxDisabled, NotOurDomain, Recipient, RecipientCache, UnknownMailbox
from resolvers.messages import DeliveryDeferred, DeliveryQueue

__all__ = ["ListenerConfig", "MailboxEnvelope", "MailboxHandler", "MailboxSMTP", "start_listener"]

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100


@dataclass(frozen=True)
class ListenerConfig:
    """Where and how the listener runs; see SMTP_* in mailaccounts/settings.py."""

    mailbox_domain: str
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_bytes: int = 25 * 1024 * 1024
    max_connections: int = 200
    timeout: float = 300.0
    recipient_cache_ttl: float = 5.0


class MailboxHandler:
    """aiosmtpd handler: RCPT decides per address, DATA stores one copy per account."""

    def __init__(self, mailbox_domain: str, recipient_cache_ttl: float = 5.0) -> None:
        self.mailbox_domain = mailbox_domain
        self.recipients = RecipientCache(mailbox_domain, ttl=recipient_cache_ttl)
        self.queue = DeliveryQueue()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """250 for an active platform mailbox, 550 with the reason otherwise."""
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            recipient = await self.recipients.resolve(address)
        except NotOurDomain:
            return "550 5.7.1 Relaying denied: this server only accepts mail for its own mailboxes"
        except UnknownMailbox:
            return "550 5.1.1 No such mailbox"
        except MailboxDisabled:
            return "550 5.2.1 Mailbox disabled"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        _recipients(envelope).append(recipient)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message unchanged; 451 when an account vanished since RCPT or the store failed."""
        raw = envelope.original_content or b""
        recipients = _recipients(envelope)
        try:
            result = await self.queue.deliver(recipients, bytes(raw))
        except DeliveryDeferred:
            self.recipients.forget(recipients)
            return "451 4.2.1 Mailbox changed during delivery, try again later"
        except Exception:
            log.exception("storing a message from %r failed", session.peer)
            return "451 4.3.0 Temporary failure storing the message, try again later"
        if result.duplicate_account_ids:
            log.info("message already stored for accounts %s, not stored again", result.duplicate_account_ids)
        return "250 2.0.0 OK: stored"


class MailboxEnvelope(Envelope):
    """aiosmtpd's envelope plus the accounts RCPT resolved, so DATA need not look them up again."""

    def __init__(self) -> None:
        super().__init__()
        self.recipients: list[Recipient] = []


def _recipients(envelope: Envelope) -> list[Recipient]:
    assert isinstance(envelope, MailboxEnvelope), "MailboxHandler runs only inside MailboxSMTP"
    return envelope.recipients


class _TooBusy(asyncio.Protocol):
    """Answers 421 and hangs up when the listener is at its connection limit."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
        transport.close()


class MailboxSMTP(SMTP):
    """aiosmtpd's SMTP protocol with MailboxEnvelope, giving its connection slot back when it ends."""

    def __init__(self, handler: MailboxHandler, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._release = release

    def _create_envelope(self) -> MailboxEnvelope:
        return MailboxEnvelope()

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._release()


async def start_listener(config: ListenerConfig) -> asyncio.Server:
    """Start the SMTP server on the running event loop (Tortoise's context is only visible there).

    aiosmtpd has no connection limit, so the factory answers 421 beyond `max_connections`.
    """
    loop = asyncio.get_running_loop()
    handler = MailboxHandler(config.mailbox_domain, config.recipient_cache_ttl)
    open_connections = 0

    def release() -> None:
        nonlocal open_connections
        open_connections -= 1

    def factory() -> asyncio.BaseProtocol:
        nonlocal open_connections
        if open_connections >= config.max_connections:
            return _TooBusy()
        open_connections += 1
        return MailboxSMTP(
            handler,
            release,
            data_size_limit=config.max_message_bytes,
            hostname=config.mailbox_domain,
            timeout=config.timeout,
            loop=loop,
        )

    server = await loop.create_server(factory, config.host, config.port)
    log.info("SMTP listener on %s:%s for *@%s", config.host, config.port, config.mailbox_domain)
    return server
