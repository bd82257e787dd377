"""Messages of an account as the API reads them: pages, single messages, raw bytes and readable content."""

from __future__ import annotations

from collections.abc import Sequence

from orm.models import Direction, Message, MessageBody
from resolvers.mail_headers import MessageContent, read_message
from resolvers.pagination import Page, paginate

__all__ = [
    "Direction",
    "Message",
    "MessageContent",
    "get_message",
    "get_messages",
    "list_messages",
    "message_content",
    "message_raw",
]


async def list_messages(
    tenant_id: int,
    account_id: int,
    *,
    first: int = 50,
    after: str | None = None,
    direction: Direction | None = None,
) -> Page[Message]:
    """A page of an account's messages, newest first; empty for another tenant's account."""
    query = Message.filter(account_id=account_id, account__tenant_id=tenant_id)
    if direction is not None:
        query = query.filter(direction=direction)
    return await paginate(query, first=first, after=after, descending=True)


async def get_messages(tenant_id: int, message_ids: Sequence[int]) -> list[Message]:
    """The tenant's messages among `message_ids`; other tenants' ids are left out."""
    return await Message.filter(id__in=list(message_ids), account__tenant_id=tenant_id)


async def get_message(tenant_id: int, message_id: int) -> Message | None:
    """The tenant's message with this id, or None (also for another tenant's id)."""
    return await Message.filter(id=message_id, account__tenant_id=tenant_id).first()


async def message_raw(message_id: int) -> bytes:
    """The raw bytes of a message, exactly as received or sent (call after a tenant-scoped lookup)."""
    content = await MessageBody.filter(message_id=message_id).values_list("content", flat=True)
    return bytes(content[0]) if content else b""


async def message_content(message_id: int) -> MessageContent:
    """The decoded headers, text and attachment names of a message (call after a tenant-scoped lookup)."""
    return read_message(await message_raw(message_id))
