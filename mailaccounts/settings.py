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
]

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
    return Settings(
        database_url=database_url,
        host=host,
        port=_int(env, "PORT", 8000, 1, 65535),
        mailbox_domain=mailbox_domain,
        secret_key=secret_key,
        log_level=log_level,
    )
