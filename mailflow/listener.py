"""The SMTP listener: accepts mail for `p<N>@` and `p<N>.out@` of active accounts and stores it."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from resolvers.intake import DeliveryDeferred, DeliveryQueue
from resolvers.mailbox_changes import MailboxChanges
from resolvers.mailboxes import MailboxDisabled, NotOurDomain, Recipient, RecipientCache, UnknownMailbox
from resolvers.rate_limits import client_network

__all__ = [
    "ConnectionLimits",
    "ListenerConfig",
    "MailboxEnvelope",
    "MailboxHandler",
    "MailboxSMTP",
    "client_key",
    "start_listener",
]

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
TOO_BUSY = b"421 4.3.2 Too many connections, try again later\r\n"
TOO_MANY_FROM_CLIENT = b"421 4.7.0 Too many connections from your address, try again later\r\n"
IDLE_TIMEOUT = "421 4.4.2 Idle too long, closing connection"
DATA_TIMEOUT = "421 4.4.2 Message transfer took too long, closing connection"
TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem, try again later"

# RFC 5321 §4.1.2: A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain (a name or an address literal).
_SUB_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ROUTE_DOMAIN = rf"(?:{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*|\[[^\[\]\\\s]+\])"
_SOURCE_ROUTE = re.compile(rf"\s*<@{_ROUTE_DOMAIN}(?:,@{_ROUTE_DOMAIN})*:")


@dataclass(frozen=True)
class ListenerConfig:
    """Where and how the listener runs; see SMTP_* in mailaccounts/settings.py."""

    mailbox_domain: str
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_bytes: int = 25 * 1024 * 1024
    max_connections: int = 200
    max_connections_per_client: int = 20
    idle_timeout: float = 60.0
    data_timeout: float = 300.0
    recipient_cache_ttl: float = 5.0


def client_key(peer: Any) -> str:
    """What a connection counts against in the per-client limit (see `client_network`)."""
    return client_network(str(peer[0] if isinstance(peer, tuple) and peer else peer))


class ConnectionLimits:
    """The open connections of one listener, in total and per client (`client_key`)."""

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.total = 0
        self._per_client: dict[str, int] = {}

    def admit(self, client: str) -> bytes | None:
        """Take a slot for `client`: None when admitted, else the 421 line to send before hanging up."""
        if self.total >= self.max_total:
            return TOO_BUSY
        if self._per_client.get(client, 0) >= self.max_per_client:
            return TOO_MANY_FROM_CLIENT
        self.total += 1
        self._per_client[client] = self._per_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        """Give back the slot `admit` took for `client`."""
        self.total -= 1
        left = self._per_client[client] - 1
        if left:
            self._per_client[client] = left
        else:
            del self._per_client[client]

    def open_from(self, client: str) -> int:
        """How many connections `client` has open."""
        return self._per_client.get(client, 0)


class MailboxHandler:
    """aiosmtpd handler: RCPT decides per address, DATA stores one copy per account."""

    def __init__(
        self, mailbox_domain: str, recipient_cache_ttl: float = 5.0, changes: MailboxChanges | None = None
    ) -> None:
        self.mailbox_domain = mailbox_domain
        self.recipients = RecipientCache(mailbox_domain, ttl=recipient_cache_ttl, changes=changes)
        self.queue = DeliveryQueue()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """250 for an active platform mailbox, 550 with the reason otherwise, 451 when the lookup failed."""
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
        except Exception:
            # The database did not answer: a temporary failure, so the sender keeps the mail and retries.
            log.exception("looking up the recipient %r for %r failed", address, session.peer)
            return TEMPORARY_FAILURE
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        _recipients(envelope).append(recipient)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message unchanged; 250 only once it is committed, 451 when anything kept it from that."""
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

    async def handle_exception(self, error: Exception) -> str:
        """Any other failure in a command: logged, and a temporary reply without the exception's text.

        aiosmtpd's default answers `500 Error: (<exception>) <text>`: a permanent refusal of mail that
        should be retried, and a look at the internals.
        """
        log.error("SMTP command failed", exc_info=error)
        return TEMPORARY_FAILURE


class MailboxEnvelope(Envelope):
    """aiosmtpd's envelope plus the accounts RCPT resolved, so DATA need not look them up again."""

    def __init__(self) -> None:
        super().__init__()
        self.recipients: list[Recipient] = []


def _recipients(envelope: Envelope) -> list[Recipient]:
    assert isinstance(envelope, MailboxEnvelope), "MailboxHandler runs only inside MailboxSMTP"
    return envelope.recipients


def _command_size_limits() -> defaultdict[str, int]:
    return defaultdict(lambda: SMTP.command_size_limit)


class MailboxSMTP(SMTP):
    """aiosmtpd's SMTP protocol with MailboxEnvelope, the listener's timeouts and address rules.

    Timeouts use aiosmtpd 1.4's one timer (`_reset_timeout`, `_timeout_cb`): it restarts with
    `timeout` (the idle timeout) when the connection opens and at every valid command. DATA sets it to
    `data_timeout` once for the whole transfer, so a client that sends a byte a second is cut off too.
    """

    def __init__(
        self, handler: MailboxHandler, release: Callable[[], None], *, data_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self._release = release
        self._data_timeout = data_timeout
        self._timeout_reply = IDLE_TIMEOUT
        # aiosmtpd keeps these limits in a class attribute shared by every connection and adds SIZE's 26
        # octets to MAIL's at each EHLO: repeated EHLOs would raise the limit for everyone.
        self.command_size_limits = _command_size_limits()

    def _create_envelope(self) -> MailboxEnvelope:
        return MailboxEnvelope()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of MAIL FROM / RCPT TO with a source route (`<@relay,@b:user@host>`) stripped.

        RFC 5321 §4.1.1.3 and Appendix C: servers SHOULD ignore source routes; the mailbox after the
        route alone decides (another domain is still refused as relaying). A route that does not follow
        the RFC 5321 grammar makes the address malformed (553), rather than being read leniently.
        """
        route = _SOURCE_ROUTE.match(arg)
        if route is not None:
            arg = "<" + arg[route.end() :]
        if arg.lstrip().startswith("<@"):
            return None, None
        address, rest = super()._getaddr(arg)
        return address, rest

    async def smtp_EHLO(self, hostname: str) -> None:
        self.command_size_limits = _command_size_limits()
        await super().smtp_EHLO(hostname)

    async def smtp_DATA(self, arg: str) -> None:
        self._reset_timeout(self._data_timeout)
        self._timeout_reply = DATA_TIMEOUT
        try:
            await super().smtp_DATA(arg)
        finally:
            self._timeout_reply = IDLE_TIMEOUT
        if self.transport is not None:
            self._reset_timeout()

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command == "DATA":
            # The whole message is in: storing it gets a fresh budget, as now the client waits on us.
            self._reset_timeout(self._data_timeout)
        return await super()._call_handler_hook(command, *args)

    def _timeout_cb(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        assert isinstance(transport, asyncio.WriteTransport)
        log.info("%r timed out: %s", self.session.peer if self.session else None, self._timeout_reply)
        transport.write(self._timeout_reply.encode() + b"\r\n")
        if transport.get_write_buffer_size():
            # The client does not read: close() would wait for it forever and keep the slot taken.
            transport.abort()
        else:
            transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._release()


class _Admission(asyncio.Protocol):
    """The first protocol of every connection: 421 and hang up over a limit, else hand over to MailboxSMTP.

    aiosmtpd has no connection limits, and the client's address is known only once the connection is
    made, so the decision is taken here rather than in the server's protocol factory.
    """

    def __init__(self, limits: ConnectionLimits, smtp: Callable[[Callable[[], None]], MailboxSMTP]) -> None:
        self._limits = limits
        self._smtp = smtp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        client = client_key(transport.get_extra_info("peername"))
        refusal = self._limits.admit(client)
        if refusal is not None:
            log.info("refused a connection from %s: %s", client, refusal.decode().strip())
            transport.write(refusal)
            transport.close()
            return
        smtp = self._smtp(lambda: self._limits.release(client))
        transport.set_protocol(smtp)
        smtp.connection_made(transport)


async def start_listener(config: ListenerConfig, changes: MailboxChanges | None = None) -> asyncio.Server:
    """Start the SMTP server on the running event loop (Tortoise's context is only visible there).

    `changes` (resolvers/mailbox_changes.py, opened by the caller) lets the RCPT cache drop an account as
    soon as any process changes its state; without it (tests, benchmarks of one process) a cached
    acceptance lives for `recipient_cache_ttl`.
    """
    loop = asyncio.get_running_loop()
    handler = MailboxHandler(config.mailbox_domain, config.recipient_cache_ttl, changes)
    limits = ConnectionLimits(config.max_connections, config.max_connections_per_client)

    def smtp(release: Callable[[], None]) -> MailboxSMTP:
        return MailboxSMTP(
            handler,
            release,
            data_size_limit=config.max_message_bytes,
            hostname=config.mailbox_domain,
            timeout=config.idle_timeout,
            data_timeout=config.data_timeout,
            loop=loop,
        )

    server = await loop.create_server(lambda: _Admission(limits, smtp), config.host, config.port)
    log.info("SMTP listener on %s:%s for *@%s", config.host, config.port, config.mailbox_domain)
    return server
