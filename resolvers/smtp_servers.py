"""An account's own SMTP server: set, clear, read back without the password, and the encrypted password."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken

from orm.models import MailAccount, SmtpSecurity
from resolvers.errors import AccountError, NotFound
from resolvers.outbound import OutboundGuard, TargetNotAllowed, TargetUnresolvable, parse_address

__all__ = [
    "InvalidSmtpServer",
    "SmtpSecurity",
    "SmtpServerNotAllowed",
    "SmtpServerSettings",
    "SmtpServerUnreadable",
    "clear_smtp_server",
    "decrypt_password",
    "encrypt_password",
    "has_own_smtp_server",
    "set_smtp_server",
    "smtp_server_of",
]

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
_IPV6 = re.compile(r"^\[?[0-9A-Fa-f:.]{2,45}\]?$")
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9A-Fa-f]*|[0-9]+)$")
USERNAME_MAX = 320
PASSWORD_MAX = 1000


class InvalidSmtpServer(AccountError):
    code = "INVALID_SMTP_SERVER"


class SmtpServerNotAllowed(InvalidSmtpServer):
    """The host is or resolves to an internal address (loopback, private, link-local, …) not in
    OUTBOUND_ALLOW_NETWORKS; same code as any bad host, with its own message."""


class SmtpServerUnreadable(AccountError):
    """The stored password cannot be decrypted (SECRET_KEY changed): the server must be set again."""

    code = "INVALID_SMTP_SERVER"


@dataclass(frozen=True)
class SmtpServerSettings:
    """An account's own SMTP server as the API shows it: never with the password."""

    host: str
    port: int
    security: SmtpSecurity
    username: str | None


def _fernet(secret_key: str) -> Fernet:
    """Fernet with a key derived from SECRET_KEY (SHA-256, urlsafe base64)."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest()))


def encrypt_password(secret_key: str, password: str) -> str:
    """Encrypt an SMTP password for storage (authenticated encryption, fresh IV each time)."""
    return _fernet(secret_key).encrypt(password.encode()).decode("ascii")


def decrypt_password(secret_key: str, token: str) -> str:
    """Decrypt a stored SMTP password; SmtpServerUnreadable when SECRET_KEY changed since."""
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise SmtpServerUnreadable("password") from None


def smtp_server_of(account: MailAccount) -> SmtpServerSettings | None:
    """The account's own SMTP server, or None when it sends through the platform relay."""
    if not account.smtp_host or account.smtp_port is None or account.smtp_security is None:
        return None
    return SmtpServerSettings(
        host=account.smtp_host,
        port=account.smtp_port,
        security=SmtpSecurity(account.smtp_security),
        username=account.smtp_username,
    )


def has_own_smtp_server(account: MailAccount) -> bool:
    """Whether the account sends through its own SMTP server (then the platform SPF include is not needed)."""
    return smtp_server_of(account) is not None


def _printable(value: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in value)


def _validate_host(host: str) -> str:
    """The host in the form stored and dialled: lower case, no brackets or trailing dot, and an IP address
    in its canonical spelling whatever form it was entered in (`0x7f.1` is stored as `127.0.0.1`)."""
    host = host.strip()
    if not (_HOST.match(host) or (":" in host and _IPV6.match(host))):
        raise InvalidSmtpServer("host")
    address = parse_address(host)
    if address is not None:
        return str(address)
    if ":" in host or _NUMERIC_LABEL.match(host.rstrip(".").rpartition(".")[2]):
        # Not an address, yet no DNS name either (a top-level label is never numeric, RFC 3696 2).
        raise InvalidSmtpServer("host")
    return host.rstrip(".").lower()


async def _check_host(outbound: OutboundGuard, host: str, port: int) -> None:
    """Refuse a host that is or resolves to an internal address. A name without any address yet is taken:
    it cannot be dialled, and every send resolves and checks it again anyway."""
    try:
        await outbound.resolve_allowed(host, port)
    except TargetNotAllowed:
        raise SmtpServerNotAllowed("host") from None
    except TargetUnresolvable:
        return


async def set_smtp_server(
    tenant_id: int,
    account_id: int,
    *,
    secret_key: str,
    outbound: OutboundGuard,
    host: str,
    port: int,
    security: SmtpSecurity,
    username: str | None,
    password: str | None,
) -> MailAccount:
    """Route the account's mail through its own server; the password is stored Fernet-encrypted.

    Without a username the server is used without AUTH. With a username and no password, a password
    stored before for the same username is kept. A host that is or resolves to an internal address is
    refused (SmtpServerNotAllowed) unless `outbound` allows its network.
    """
    account = await MailAccount.get_or_none(tenant_id=tenant_id, id=account_id)
    if account is None:
        raise NotFound("accountId")
    clean_host = _validate_host(host)
    if not 1 <= port <= 65535:
        raise InvalidSmtpServer("port")
    user = (username or "").strip() or None
    if user is not None and (len(user) > USERNAME_MAX or not _printable(user)):
        raise InvalidSmtpServer("username")
    encrypted: str | None = None
    if user is not None:
        if password:
            if len(password) > PASSWORD_MAX or not _printable(password):
                raise InvalidSmtpServer("password")
            encrypted = encrypt_password(secret_key, password)
        elif account.smtp_username == user and account.smtp_password_encrypted:
            encrypted = account.smtp_password_encrypted
        else:
            raise InvalidSmtpServer("password")
    elif password:
        raise InvalidSmtpServer("username")
    # Last, so input errors are reported without waiting for DNS.
    await _check_host(outbound, clean_host, port)
    await MailAccount.filter(id=account.id).update(
        smtp_host=clean_host,
        smtp_port=port,
        smtp_security=security,
        smtp_username=user,
        smtp_password_encrypted=encrypted,
        updated_at=datetime.now(UTC),
    )
    return await MailAccount.get(id=account.id)


async def clear_smtp_server(tenant_id: int, account_id: int) -> MailAccount:
    """Send through the platform relay again; the stored server and password are removed."""
    updated = await MailAccount.filter(tenant_id=tenant_id, id=account_id).update(
        smtp_host=None,
        smtp_port=None,
        smtp_security=None,
        smtp_username=None,
        smtp_password_encrypted=None,
        updated_at=datetime.now(UTC),
    )
    if not updated:
        raise NotFound("accountId")
    return await MailAccount.get(id=account_id)
