"""Keyset pagination over a query set ordered by id, with opaque cursors."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

__all__ = ["MAX_PAGE_SIZE", "InvalidPageRequest", "Page", "decode_cursor", "encode_cursor", "paginate"]

MAX_PAGE_SIZE = 100
T = TypeVar("T", bound=Model)


class InvalidPageRequest(ValueError):
    """`first` out of range or a cursor that this service did not hand out.

    `key` (INVALID_CURSOR, PAGE_SIZE_OUT_OF_RANGE) and `params` name the text the API shows.
    """

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key, params)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows plus what a Relay connection needs to describe it."""

    items: list[T]
    total_count: int
    has_next_page: bool
    has_previous_page: bool


def encode_cursor(row_id: int) -> str:
    """The opaque cursor that points just after the row `row_id`."""
    return base64.urlsafe_b64encode(f"cursor:{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The row id inside a cursor from `encode_cursor`; InvalidPageRequest for anything else."""
    try:
        kind, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "cursor":
            raise ValueError(kind)
        return int(raw)
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidPageRequest("INVALID_CURSOR", cursor=cursor) from None


async def paginate(query: QuerySet[T], *, first: int, after: str | None, descending: bool = False) -> Page[T]:
    """Fetch `first` rows of `query` after the cursor `after`, ordered by id, in two statements."""
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise InvalidPageRequest("PAGE_SIZE_OUT_OF_RANGE", max=MAX_PAGE_SIZE)
    total_count = await query.count()
    page_query = query
    if after is not None:
        after_id = decode_cursor(after)
        page_query = query.filter(id__lt=after_id) if descending else query.filter(id__gt=after_id)
    rows = await page_query.order_by("-id" if descending else "id").limit(first + 1)
    items = list(rows[:first])
    return Page(
        items=items,
        total_count=total_count,
        has_next_page=len(rows) > first,
        # Relay lets a forward-paginating server answer this cheaply: a cursor means a page came before.
        has_previous_page=after is not None,
    )
