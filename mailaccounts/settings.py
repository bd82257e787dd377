"""Settings read once from the environment; a bad value stops startup with one clear line.

Each setting is declared once, as a field of `Settings` made by `setting()`: its environment name, the
default as the README shows it, the description and the parser. The README table (`SETTINGS_HELP`), the
dataclass defaults and `load_settings()` are all derived from those fields.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any, TypeVar

__all__ = ["SETTINGS_HELP", "Settings", "SettingsError", "load_settings"]

T = TypeVar("T")
Network = IPv4Network | IPv6Network


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and says what is expected."""


def setting(env: str, default: T, shown: str, description: str, parse: Callable[[str, str], T], **kw: Any) -> T:
    """A Settings field read from `env` with `parse(name, raw)`; `shown` is the default as the README gives it."""
    return field(
        default=default, metadata={"env": env, "shown": shown, "help": description, "parse": parse}, **kw
    )


# Parsers: each takes the variable's name and its raw text and returns the value or raises SettingsError.


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _int(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}={value} is out of range ({low}..{high})")
        return value

    return parse


def _seconds(low: int, high: int) -> Callable[[str, str], float]:
    whole = _int(low, high)

    def parse(name: str, raw: str) -> float:
        return float(whole(name, raw))

    return parse


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise SettingsError(f"{name}={raw!r} is not `true` or `false`")
    return value == "true"


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise SettingsError(f"{name}={value!r} is not one of {', '.join(f'`{c}`' for c in choices)}")
        return value

    return parse


_SMTP_URL = re.compile(r"^(smtp|smtps|smtp\+starttls)://([^@/]+@)?[^@/:]+(:[0-9]{1,5})?/?$")
_DB_URL = re.compile(r"^(sqlite|postgres|asyncpg)://.+")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _database_url(name: str, raw: str) -> str:
    url = raw.strip()
    if not _DB_URL.match(url):
        raise SettingsError(f"{name}={url!r} is not a database URL (sqlite://PATH or postgres://USER@HOST:PORT/DB)")
    return url


def _host(name: str, raw: str) -> str:
    host = raw.strip()
    try:
        ip_address(host)
    except ValueError:
        if not re.match(r"^[A-Za-z0-9.-]+$", host):
            raise SettingsError(f"{name}={host!r} is not an address or host name") from None
    return host


def _domain(name: str, raw: str) -> str:
    domain = raw.strip().lower().rstrip(".")
    if not _DOMAIN.match(domain):
        raise SettingsError(f"{name}={domain!r} is not a domain name (e.g. mailbox.example.com)")
    return domain


def _spf_include(name: str, raw: str) -> str:
    include = raw.strip().lower().rstrip(".")
    if not _DOMAIN.match(include.lstrip("_").replace("._", ".")):
        raise SettingsError(f"{name}={include!r} is not a domain name (e.g. _spf.aranes.de)")
    return include


def _secret(name: str, raw: str) -> str:
    if len(raw) < 32:
        raise SettingsError(f"{name} is too short: use a random string of at least 32 characters")
    return raw


def _log_level(name: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"{name}={level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def _listen(name: str, raw: str) -> tuple[str, int]:
    host, _, port = raw.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}={raw!r} is not host:port (e.g. 0.0.0.0:25)")
    return host, int(port)


def _smtp_url(name: str, raw: str) -> str:
    url = raw.strip()
    if not _SMTP_URL.match(url):
        raise SettingsError(f"{name} is not smtp://, smtp+starttls:// or smtps://[user:password@]host[:port]")
    return url


def _public_url(name: str, raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^?#\s]*)?$", url):
        raise SettingsError(f"{name}={raw!r} is not an http(s) URL without query (e.g. https://crm.example.com)")
    return url


def _items(raw: str) -> list[str]:
    return [item for item in (part.strip() for part in raw.split(",")) if item]


def _nameservers(name: str, raw: str) -> tuple[tuple[str, int], ...]:
    servers = []
    for item in _items(raw):
        host, port = item, 53
        if item.startswith("["):  # [v6]:port
            host, _, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 53
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            if not port_text.isdigit():
                raise SettingsError(f"{name}: {item!r} is not host[:port]")
            port = int(port_text)
        try:
            ip_address(host)
        except ValueError:
            raise SettingsError(f"{name}: {host!r} is not an IP address") from None
        if not 0 < port < 65536:
            raise SettingsError(f"{name}: port {port} is out of range")
        servers.append((host, port))
    return tuple(servers)


def _addresses(name: str, raw: str) -> tuple[str, ...]:
    addresses = []
    for item in _items(raw):
        try:
            addresses.append(str(ip_address(item)))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an IP address") from None
    return tuple(addresses)


def _networks(name: str, raw: str) -> tuple[Network, ...]:
    networks = []
    for item in _items(raw):
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an IP address or network (CIDR, e.g. 10.0.0.0/8)") from None
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    """The service's configuration; build it with `load_settings()`, or directly in tests."""

    database_url: str = setting(
        "DATABASE_URL",
        "sqlite://data/mailaccounts.sqlite3",
        "`sqlite://data/mailaccounts.sqlite3`",
        "database URL: `sqlite://PATH` or `postgres://user:pw@host:port/db`",
        _database_url,
    )
    environment: str = setting(
        "ENVIRONMENT",
        "development",
        "`development`",
        "`production`: no introspection, no field suggestions and no GraphiQL; `development`: all three on",
        _choice("development", "production"),
    )
    host: str = setting("HOST", "127.0.0.1", "`127.0.0.1`", "address the HTTP server listens on", _host)
    port: int = setting("PORT", 8000, "`8000`", "HTTP port", _int(1, 65535))
    forwarded_allow_ips: tuple[Network, ...] = setting(
        "FORWARDED_ALLOW_IPS",
        (),
        "none",
        "comma-separated proxy addresses or CIDRs whose `X-Forwarded-For` is trusted for the client address; "
        "none: the connecting address counts",
        _networks,
    )
    public_url: str | None = setting(
        "PUBLIC_URL",
        None,
        "none",
        "the dashboard's address as users reach it (e.g. `https://crm.example.com`), for links in mails (unlock); "
        "none: the request's own `Host`, which a client controls, so set it in production",
        _public_url,
    )
    mailbox_domain: str = setting(
        "MAILBOX_DOMAIN",
        "mailbox.example.com",
        "`mailbox.example.com`",
        "domain of the platform mailboxes `pN@…` and `pN.out@…`",
        _domain,
    )
    secret_key: str | None = setting(
        "SECRET_KEY",
        None,
        "none: required by `serve` (`make run` generates `data/secret.key`)",
        "signs sessions and encrypts SMTP passwords; at least 32 characters",
        _secret,
        repr=False,
    )
    log_level: str = setting("LOG_LEVEL", "INFO", "`INFO`", "Python log level", _log_level)
    session_max_age: int = setting(
        "SESSION_MAX_AGE",
        8 * 3600,
        "`28800`",
        "seconds a dashboard sign-in lasts (8 hours) before the user signs in again",
        _int(60, 30 * 24 * 3600),
    )
    session_cookie_secure: bool = setting(
        "SESSION_COOKIE_SECURE",
        False,
        "`false`",
        "`true` when the dashboard is served over https: session cookie with `Secure`",
        _bool,
    )
    login_max_failures_per_address: int = setting(
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        20,
        "`20`",
        "failed sign-ins from one client address (any e-mail) within `LOGIN_WINDOW`; then it must wait",
        _int(1, 100_000),
    )
    login_max_failures_per_user: int = setting(
        "LOGIN_MAX_FAILURES_PER_USER",
        10,
        "`10`",
        "failed sign-ins of one dashboard user (from any address) within `LOGIN_WINDOW`; then the user is locked "
        "until an unlock link or `mailaccounts user unlock`",
        _int(1, 100_000),
    )
    login_window: int = setting(
        "LOGIN_WINDOW", 900, "`900`", "seconds the sign-in failures are counted over", _int(10, 24 * 3600)
    )
    api_rate_limit: int = setting(
        "API_RATE_LIMIT",
        1200,
        "`1200`",
        "cost points one API token may spend per minute (a request costs 1, plus the objects its pages may return "
        "/ 100, nested pages multiplied, plus 10 per network-bound field); more get 429; 0: no limit",
        _int(0, 10_000_000),
    )
    graphql_max_fields: int = setting(
        "GRAPHQL_MAX_FIELDS",
        2000,
        "`2000`",
        "fields and fragment spreads a GraphQL document may select after fragments are expanded, and pairs of "
        "same-named fields the merge check may compare; larger ones are refused before execution",
        _int(10, 1_000_000),
    )
    graphql_max_network_fields: int = setting(
        "GRAPHQL_MAX_NETWORK_FIELDS",
        3,
        "`3`",
        "network-bound fields (`spfCheck`, `sendMessage`, …) one document may contain; adjacent checks and sends "
        "run concurrently",
        _int(1, 100),
    )
    smtp_listen: tuple[str, int] = setting(
        "SMTP_LISTEN",
        ("127.0.0.1", 2525),
        "`127.0.0.1:2525`",
        "`host:port` of the SMTP listener (`serve` and `smtp`) for `pN@` and `pN.out@`",
        _listen,
    )
    smtp_max_message_bytes: int = setting(
        "SMTP_MAX_MESSAGE_BYTES",
        25 * 1024 * 1024,
        "`26214400`",
        "largest message the listener accepts (25 MB); larger ones get 552",
        _int(1024, 1024**3),
    )
    smtp_max_connections: int = setting(
        "SMTP_MAX_CONNECTIONS",
        200,
        "`200`",
        "concurrent SMTP connections per process; more get 421",
        _int(1, 100_000),
    )
    smtp_max_connections_per_ip: int = setting(
        "SMTP_MAX_CONNECTIONS_PER_IP",
        20,
        "`20`",
        "concurrent SMTP connections from one client address; more get 421",
        _int(1, 100_000),
    )
    smtp_idle_timeout: float = setting(
        "SMTP_IDLE_TIMEOUT",
        60.0,
        "`60`",
        "seconds the listener waits for the first command and between commands before it hangs up (421)",
        _seconds(1, 3600),
    )
    smtp_data_timeout: float = setting(
        "SMTP_DATA_TIMEOUT",
        300.0,
        "`300`",
        "seconds the whole DATA phase of one message may take, however steadily the client sends",
        _seconds(1, 3600),
    )
    smtp_recipient_cache_ttl: float = setting(
        "SMTP_RECIPIENT_CACHE_TTL",
        60.0,
        "`60`",
        "seconds the listener may answer RCPT for a mailbox it accepted before without asking the database; "
        "every process drops it at once when its account changes (deactivated, merged, deleted); 0: no cache",
        _seconds(0, 86400),
    )
    smtp_relay: str = setting(
        "SMTP_RELAY",
        "smtp://127.0.0.1:25",
        "`smtp://127.0.0.1:25`",
        "outbound relay: `smtp://`, `smtp+starttls://` or `smtps://[user:password@]host[:port]`",
        _smtp_url,
    )
    smtp_relay_timeout: int = setting(
        "SMTP_RELAY_TIMEOUT",
        30,
        "`30`",
        "seconds a send may take before it fails with SEND_FAILED",
        _int(1, 600),
    )
    outbound_allow_networks: tuple[Network, ...] = setting(
        "OUTBOUND_ALLOW_NETWORKS",
        (),
        "none",
        "comma-separated CIDRs that user-supplied outbound targets (own SMTP servers, webhooks) may reach although "
        "they are internal (loopback, private, link-local, …); none: every internal address is refused",
        _networks,
    )
    envelope_sender: str = setting(
        "ENVELOPE_SENDER",
        "platform",
        "`platform`",
        "`platform`: MAIL FROM `pN.out@MAILBOX_DOMAIN` (bounces come back); `account`: the user's address",
        _choice("platform", "account"),
    )
    dns_nameservers: tuple[tuple[str, int], ...] = setting(
        "DNS_NAMESERVERS",
        (),
        "none: the system resolver",
        "comma-separated `host[:port]` the SPF check and the outbound address check ask",
        _nameservers,
    )
    dns_timeout: float = setting(
        "DNS_TIMEOUT",
        5.0,
        "`5`",
        "seconds one whole domain check may take; then it counts as unreachable",
        _seconds(1, 120),
    )
    spf_include: str = setting(
        "SPF_INCLUDE", "_spf.aranes.de", "`_spf.aranes.de`", "the SPF include that authorizes the platform's relays",
        _spf_include,
    )
    sender_ips: tuple[str, ...] = setting(
        "SENDER_IPS",
        (),
        "none",
        "comma-separated relay addresses; when set, check_host must pass for each of them",
        _addresses,
    )
    spf_recheck_hours: int = setting(
        "SPF_RECHECK_HOURS",
        0,
        "`0`",
        "re-check every account's SPF when its last check is older; 0: never",
        _int(0, 24 * 365),
    )
    spf_check_concurrency: int = setting(
        "SPF_CHECK_CONCURRENCY",
        100,
        "`100`",
        "domains a bulk SPF check (`spfCheckAll`, the periodic re-check) audits at the same time in one process; "
        "each has a few DNS questions in flight, so the resolver in `DNS_NAMESERVERS` must bear a few hundred",
        _int(1, 1000),
    )
    jobs_in_process: bool = setting(
        "JOBS_IN_PROCESS",
        True,
        "`true`",
        "`serve` runs a job worker in its own process (bulk SPF checks, periodic re-checks); `false`: only "
        "`mailaccounts worker` processes run jobs (PostgreSQL; on SQLite jobs then wait for one)",
        _bool,
    )
    worker_concurrency: int = setting(
        "WORKER_CONCURRENCY",
        4,
        "`4`",
        "jobs one worker (in `serve` or `mailaccounts worker`) runs at the same time",
        _int(1, 100),
    )
    jobs_stalled_after: int = setting(
        "JOBS_STALLED_AFTER",
        30,
        "`30`",
        "seconds a worker may go without a heartbeat (it sends one every third of that) before it counts as "
        "gone and its running jobs start again on another worker",
        _int(3, 3600),
    )
    background_operation_messages: int = setting(
        "BACKGROUND_OPERATION_MESSAGES",
        10_000,
        "`10000`",
        "a merge or delete of an account with more messages runs as a resumable job in batches (the account "
        "receives nothing of its own from its start; the API and the account page show its progress); up to "
        "this many it is one transaction",
        _int(0, 1_000_000_000),
    )

    @property
    def smtp_listen_host(self) -> str:
        return self.smtp_listen[0]

    @property
    def smtp_listen_port(self) -> int:
        return self.smtp_listen[1]

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def require_secret_key(self) -> str:
        """Return SECRET_KEY or stop with a clear message where a command needs it."""
        if not self.secret_key:
            raise SettingsError("SECRET_KEY is not set: set it to a random string of at least 32 characters")
        return self.secret_key


# name, default as shown, description: the README's settings table is checked against this list
SETTINGS_HELP: list[tuple[str, str, str]] = [
    (f.metadata["env"], f.metadata["shown"], f.metadata["help"]) for f in fields(Settings)
]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings from `env` (default: the process environment); unset or empty: default."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(f.metadata["env"])
        if raw is not None and raw.strip() != "":
            values[f.name] = f.metadata["parse"](f.metadata["env"], raw)
    return Settings(**values)
