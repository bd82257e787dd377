"""The Tortoise configuration, built from DATABASE_URL."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MODELS", "TORTOISE_ORM", "tortoise_config"]

MODELS = ["orm.models"]
DEFAULT_DATABASE_URL = "sqlite://data/mailaccounts.sqlite3"


def _with_sqlite_defaults(url: str) -> str:
    """SQLite waits for a busy lock instead of failing at once (it has no busy timeout by default)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("busy_timeout", "5000")
    return urlunsplit(parts._replace(query=urlencode(query)))


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The Tortoise config dict for `database_url`, with the models and their migrations."""
    if database_url.startswith("sqlite://"):
        database_url = _with_sqlite_defaults(database_url)
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": MODELS,
                "default_connection": "default",
                "migrations": "orm.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Read by `tortoise makemigrations` through [tool.tortoise] in pyproject.toml.
TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
