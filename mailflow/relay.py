"""The outbound relay: sends a finished message with aiosmtplib to SMTP_RELAY or an account's own server."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import aiosmtplib

from orm.models import SmtpSecurity
from resolvers.sending import RelayRefused, RelayTarget

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

    `tls_context` lets tests and private relays trust their own certificate authority.
    """

    platform: RelayTarget
    timeout: float = 30.0
    local_hostname: str | None = None
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)

    async def send(
        self, raw: bytes, *, sender: str, recipients: Sequence[str], target: RelayTarget | None = None
    ) -> Mapping[str, str]:
        """Send `raw` through `target` (or the platform relay); the recipients it refused while taking the
        message for others (address -> reply). RelayRefused with the server's answer if it took nothing."""
        server = target or self.platform
        try:
            async with asyncio.timeout(self.timeout):
                errors, _ = await aiosmtplib.send(
                    raw,
                    sender=sender,
                    recipients=list(recipients),
                    hostname=server.host,
                    port=server.port,
                    username=server.username,
                    password=server.password,
                    use_tls=server.security is SmtpSecurity.TLS,
                    start_tls=server.security is SmtpSecurity.STARTTLS,
                    timeout=self.timeout,
                    local_hostname=self.local_hostname,
                    tls_context=self.tls_context,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise RelayRefused(
                "; ".join(f"{error.recipient}: {error.code} {error.message}" for error in exc.recipients)
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise RelayRefused(f"{exc.code} {exc.message}") from None
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            raise RelayRefused(f"timeout: {server.host}:{server.port} did not answer in {self.timeout:g} s") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayRefused(f"{server.host}:{server.port}: {exc}") from None
        return {address: f"{reply.code} {reply.message}" for address, reply in errors.items()}
