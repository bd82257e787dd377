"""Counting the SQL statements a piece of code sends, from Tortoise's DEBUG log (statement counts, not times)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Statements", "recorded_statements"]


class Statements(logging.Handler):
    """The SQL statements Tortoise logs (at DEBUG) while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sql: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().lstrip()
        if message.upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            self.sql.append(message)

    def updates(self) -> list[str]:
        return [sql for sql in self.sql if sql.upper().startswith("UPDATE")]


@contextmanager
def recorded_statements() -> Iterator[Statements]:
    """Record the statements sent inside the block."""
    logger = logging.getLogger("tortoise.db_client")
    handler, level = Statements(), logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
