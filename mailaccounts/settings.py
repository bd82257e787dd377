"""Settings read once from the environment; a bad value stops startup with one clear line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address

__all__ = ["SETTINGS_HELP", "Settings", "SettingsError", "load_settings"]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and says what is expected."""


# name, default, description: the README's settings table is generated from this list
SETTINGS_HELP: list[tuple[str, str, str]] = [
    (
        "DATABASE_URL",
        "sqlite://data/mailaccounts.sqlite3",
        "database URL: `sqlite://PATH` or `postgres://user:pw@host:port/db`",
    ),
    ("HOST", "127.0.0.1", "address the HTTP server listens on"),
    ("PORT", "8000", "HTTP port"),
    ("MAILBOX_DOMAIN", "mailbox.example.com", "domain of the platform mailboxes `pN@…` and `pN.out@…`"),
    (
        "SECRET_KEY",
        "none: required by `serve` (`make run` generates `data/secret.key`)",
        "signs sessions and encrypts SMTP passwords; at least 32 characters",
    ),
    ("LOG_LEVEL", "INFO", "Python log level"),
    ("SESSION_MAX_AGE", "28800", "seconds a dashboard sign-in lasts (8 hours) before the user signs in again"),
    ("SESSION_COOKIE_SECURE", "false", "`true` when the dashboard is served over https: session cookie with `Secure`"),
    ("SMTP_LISTEN", "127.0.0.1:2525", "`host:port` of the SMTP listener (`serve` and `smtp`) for `pN@` and `pN.out@`"),
    ("SMTP_MAX_MESSAGE_BYTES", "26214400", "largest message the listener accepts (25 MB); larger ones get 552"),
    ("SMTP_MAX_CONNECTIONS", "200", "concurrent SMTP connections per process; more get 421"),
    (
        "SMTP_RELAY",
        "smtp://127.0.0.1:25",
        "outbound relay: `smtp://`, `smtp+starttls://` or `smtps://[user:password@]host[:port]`",
    ),
    ("SMTP_RELAY_TIMEOUT", "30", "seconds a send may take before it fails with SEND_FAILED"),
    (
        "ENVELOPE_SENDER",
        "platform",
        "`platform`: MAIL FROM `pN.out@MAILBOX_DOMAIN` (bounces come back); `account`: the user's address",
    ),
    ("DNS_NAMESERVERS", "none: the system resolver", "comma-separated `host[:port]` the SPF check asks"),
    ("DNS_TIMEOUT", "5", "seconds one whole domain check may take; then it counts as unreachable"),
    ("SPF_INCLUDE", "_spf.aranes.de", "the SPF include that authorizes the platform's relays"),
    ("SENDER_IPS", "none", "comma-separated relay addresses; when set, check_host must pass for each of them"),
    ("SPF_RECHECK_HOURS", "0", "re-check every account's SPF when its last check is older; 0: never"),
]

_SMTP_URL = re.compile(r"^(smtp|smtps|smtp\+starttls)://([^@/]+@)?[^@/:]+(:[0-9]{1,5})?/?$")
_DB_URL = re.compile(r"^(sqlite|postgres|asyncpg)://.+")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class Settings:
    """The service's configuration; build it with `load_settings()`."""

    database_url: str = "sqlite://data/mailaccounts.sqlite3"
    host: str = "127.0.0.1"
    port: int = 8000
    mailbox_domain: str = "mailbox.example.com"
    secret_key: str | None = None
    log_level: str = "INFO"
    session_max_age: int = 8 * 3600
    session_cookie_secure: bool = False
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: int = 2525
    smtp_max_message_bytes: int = 25 * 1024 * 1024
    smtp_max_connections: int = 200
    smtp_relay: str = "smtp://127.0.0.1:25"
    smtp_relay_timeout: int = 30
    envelope_sender: str = "platform"
    dns_nameservers: tuple[tuple[str, int], ...] = ()
    dns_timeout: float = 5.0
    spf_include: str = "_spf.aranes.de"
    sender_ips: tuple[str, ...] = ()
    spf_recheck_hours: int = 0

    def require_secret_key(self) -> str:
        """Return SECRET_KEY or stop with a clear message where a command needs it."""
        if not self.secret_key:
            raise SettingsError("SECRET_KEY is not set: set it to a random string of at least 32 characters")
        return self.secret_key


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range ({low}..{high})")
    return value


def _nameservers(raw: str) -> tuple[tuple[str, int], ...]:
    servers = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, port = item, 53
        if item.startswith("["):  # [v6]:port
            host, _, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 53
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            if not port_text.isdigit():
                raise SettingsError(f"DNS_NAMESERVERS: {item!r} is not host[:port]")
            port = int(port_text)
        try:
            ip_address(host)
        except ValueError:
            raise SettingsError(f"DNS_NAMESERVERS: {host!r} is not an IP address") from None
        if not 0 < port < 65536:
            raise SettingsError(f"DNS_NAMESERVERS: port {port} is out of range")
        servers.append((host, port))
    return tuple(servers)


def _addresses(raw: str) -> tuple[str, ...]:
    addresses = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            addresses.append(str(ip_address(item)))
        except ValueError:
            raise SettingsError(f"SENDER_IPS: {item!r} is not an IP address") from None
    return tuple(addresses)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    database_url = env.get("DATABASE_URL") or Settings.database_url
    if not _DB_URL.match(database_url):
        raise SettingsError(
            f"DATABASE_URL={database_url!r} is not a database URL (sqlite://PATH or postgres://USER@HOST:PORT/DB)"
        )
    host = env.get("HOST") or Settings.host
    if host not in ("localhost",):
        try:
            ip_address(host)
        except ValueError:
            if not re.match(r"^[A-Za-z0-9.-]+$", host):
                raise SettingsError(f"HOST={host!r} is not an address or host name") from None
    mailbox_domain = (env.get("MAILBOX_DOMAIN") or Settings.mailbox_domain).strip().lower().rstrip(".")
    if not _DOMAIN.match(mailbox_domain):
        raise SettingsError(f"MAILBOX_DOMAIN={mailbox_domain!r} is not a domain name (e.g. mailbox.example.com)")
    secret_key = env.get("SECRET_KEY") or None
    if secret_key is not None and len(secret_key) < 32:
        raise SettingsError("SECRET_KEY is too short: use a random string of at least 32 characters")
    log_level = (env.get("LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"LOG_LEVEL={log_level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    smtp_listen_host, _, smtp_listen_port = (env.get("SMTP_LISTEN") or "127.0.0.1:2525").rpartition(":")
    smtp_listen_host = smtp_listen_host.strip("[]")
    if not smtp_listen_host or not smtp_listen_port.isdigit() or not 0 < int(smtp_listen_port) < 65536:
        raise SettingsError(f"SMTP_LISTEN={env.get('SMTP_LISTEN')!r} is not host:port (e.g. 0.0.0.0:25)")
    smtp_relay = (env.get("SMTP_RELAY") or Settings.smtp_relay).strip()
    if not _SMTP_URL.match(smtp_relay):
        raise SettingsError("SMTP_RELAY is not smtp://, smtp+starttls:// or smtps://[user:password@]host[:port]")
    envelope_sender = (env.get("ENVELOPE_SENDER") or "platform").strip().lower()
    if envelope_sender not in ("platform", "account"):
        raise SettingsError(f"ENVELOPE_SENDER={envelope_sender!r} is not `platform` or `account`")
    session_cookie_secure = (env.get("SESSION_COOKIE_SECURE") or "false").strip().lower()
    if session_cookie_secure not in ("true", "false"):
        raise SettingsError(f"SESSION_COOKIE_SECURE={session_cookie_secure!r} is not `true` or `false`")
    spf_include = (env.get("SPF_INCLUDE") or Settings.spf_include).strip().lower().rstrip(".")
    if not _DOMAIN.match(spf_include.lstrip("_").replace("._", ".")):
        raise SettingsError(f"SPF_INCLUDE={spf_include!r} is not a domain name (e.g. _spf.aranes.de)")
    return Settings(
        dns_nameservers=_nameservers(env.get("DNS_NAMESERVERS") or ""),
        dns_timeout=float(_int(env, "DNS_TIMEOUT", 5, 1, 120)),
        spf_include=spf_include,
        sender_ips=_addresses(env.get("SENDER_IPS") or ""),
        spf_recheck_hours=_int(env, "SPF_RECHECK_HOURS", 0, 0, 24 * 365),
        session_max_age=_int(env, "SESSION_MAX_AGE", 8 * 3600, 60, 30 * 24 * 3600),
        session_cookie_secure=session_cookie_secure == "true",
        smtp_listen_host=smtp_listen_host,
        smtp_listen_port=int(smtp_listen_port),
        smtp_max_message_bytes=_int(env, "SMTP_MAX_MESSAGE_BYTES", 25 * 1024 * 1024, 1024, 1024**3),
        smtp_max_connections=_int(env, "SMTP_MAX_CONNECTIONS", 200, 1, 100_000),
        smtp_relay=smtp_relay,
        smtp_relay_timeout=_int(env, "SMTP_RELAY_TIMEOUT", 30, 1, 600),
        envelope_sender=envelope_sender,
        database_url=database_url,
        host=host,
        port=_int(env, "PORT", 8000, 1, 65535),
        mailbox_domain=mailbox_domain,
        secret_key=secret_key,
        log_level=log_level,
    )
