"""The outbound relay: sends a finished message with aiosmtplib to SMTP_RELAY or an account's own server."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import unquote, urlsplit

import aiosmtplib

from orm.models import SmtpSecurity
from resolvers.outbound import OutboundGuard, OutboundRefused, ResolvedTarget
from resolvers.sending import RelayRefused, RelayTarget, RelayUnreachable

__all__ = ["RelayUrlError", "SmtpRelay", "parse_relay_url"]

_SCHEMES = {
    "smtp": (SmtpSecurity.NONE, 25),
    "smtp+starttls": (SmtpSecurity.STARTTLS, 587),
    "smtps": (SmtpSecurity.TLS, 465),
}


class RelayUrlError(ValueError):
    """SMTP_RELAY is not `smtp://`, `smtp+starttls://` or `smtps://[user:password@]host[:port]`."""


def parse_relay_url(url: str) -> RelayTarget:
    """The relay target described by an SMTP_RELAY URL; the password may be percent-encoded."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise RelayUrlError(
            f"{url!r} is not smtp://, smtp+starttls:// or smtps://[user:password@]host[:port]"
        )
    security, default_port = _SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise RelayUrlError(f"{url!r} has an invalid port") from None
    return RelayTarget(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


@dataclass(frozen=True)
class SmtpRelay:
    """A MailRelay over aiosmtplib: one connection per message, bounded by `timeout` seconds in total.

    The platform relay (SMTP_RELAY) is the operator's and is dialled as configured. A target passed to
    `send` is user-supplied (an account's own server): its name is resolved through `outbound`, every
    address is checked, and the connection goes to a checked address, never to the name again (DNS
    rebinding); TLS still verifies the certificate for the name and sends it as SNI. Any failure before
    the server answered in SMTP (not allowed, no address, refused, timed out, TLS) is RelayUnreachable
    with the reason for the log only. `tls_context` lets tests and private relays trust their own CA.
    """

    platform: RelayTarget
    outbound: OutboundGuard
    timeout: float = 30.0
    local_hostname: str | None = None
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)

    async def send(
        self, raw: bytes, *, sender: str, recipients: Sequence[str], target: RelayTarget | None = None
    ) -> Mapping[str, str]:
        """Send `raw` through `target` (or the platform relay); the recipients it refused while taking the
        message for others (address -> reply). RelayRefused with the server's answer if it took nothing,
        RelayUnreachable if the user-supplied `target` was not allowed or not reached."""
        if target is None:
            return await self._send_platform(raw, sender, recipients)
        return await self._send_own(raw, sender, recipients, target)

    async def _send_platform(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Mapping[str, str]:
        server = self.platform
        try:
            async with asyncio.timeout(self.timeout):
                return await self._transmit(raw, sender, recipients, server, port=server.port)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise RelayRefused(_refused_text(exc)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise RelayRefused(f"{exc.code} {exc.message}") from None
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            raise RelayRefused(f"timeout: {server.host}:{server.port} did not answer in {self.timeout:g} s") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayRefused(f"{server.host}:{server.port}: {exc}") from None

    async def _send_own(
        self, raw: bytes, sender: str, recipients: Sequence[str], server: RelayTarget
    ) -> Mapping[str, str]:
        where = f"{server.host}:{server.port}"
        try:
            async with asyncio.timeout(self.timeout):
                resolved = await self.outbound.resolve_allowed(server.host, server.port)
                sock = await self._connect(resolved)
                try:
                    return await self._transmit(raw, sender, recipients, server, sock=sock)
                finally:
                    sock.close()  # aiosmtplib closed it already unless it failed before taking it over
        except OutboundRefused as exc:
            raise RelayUnreachable(exc.reason) from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise RelayRefused(_refused_text(exc)) from None
        except aiosmtplib.SMTPConnectResponseError as exc:
            # Something answered, but not as an SMTP server ready to talk: a connect failure like any other.
            raise RelayUnreachable(f"{where}: greeting {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPResponseException as exc:
            # The user's own server answered in SMTP (535, 550, …): its reply helps the user and tells a
            # prober nothing a direct connection would not.
            raise RelayRefused(f"{exc.code} {exc.message}") from None
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            raise RelayUnreachable(f"{where}: no answer within {self.timeout:g} s") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayUnreachable(f"{where}: {exc!r}") from None

    async def _connect(self, resolved: ResolvedTarget) -> socket.socket:
        """A TCP connection to the first checked address that accepts (IPv4 first), checked once more
        against the peer it actually reached."""
        loop = asyncio.get_running_loop()
        failures: list[str] = []
        for address in sorted(resolved.addresses, key=lambda a: a.version):
            if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            family = socket.AF_INET if isinstance(address, IPv4Address) else socket.AF_INET6
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (str(address), resolved.port))
                self.outbound.check(resolved.host, [ip_address(sock.getpeername()[0])])
            except OSError as exc:
                sock.close()
                failures.append(f"{address}: {exc!r}")
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise RelayUnreachable(f"{resolved.host}:{resolved.port}: {'; '.join(failures)}")

    async def _transmit(
        self,
        raw: bytes,
        sender: str,
        recipients: Sequence[str],
        server: RelayTarget,
        *,
        port: int | None = None,
        sock: socket.socket | None = None,
    ) -> Mapping[str, str]:
        errors, _ = await aiosmtplib.send(
            raw,
            sender=sender,
            recipients=list(recipients),
            hostname=server.host,  # with `sock`: only the TLS server name (SNI and certificate check)
            port=port,
            sock=sock,
            username=server.username,
            password=server.password,
            use_tls=server.security is SmtpSecurity.TLS,
            start_tls=server.security is SmtpSecurity.STARTTLS,
            timeout=self.timeout,
            local_hostname=self.local_hostname,
            tls_context=self.tls_context,
        )
        return {address: f"{reply.code} {reply.message}" for address, reply in errors.items()}


def _refused_text(exc: aiosmtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{error.recipient}: {error.code} {error.message}" for error in exc.recipients)
