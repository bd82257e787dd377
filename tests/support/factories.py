"""Test data: accounts created over the API, stored messages, and RFC 5322 messages as remote servers send them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from orm.models import Direction, Message, MessageBody
from tests.support.api import Api
from tests.support.documents import CREATE


@dataclass
class Account:
    """An account as the API returned it: its fields by name (`account["email"]`), and what tests need at hand."""

    data: dict[str, Any]

    def __getitem__(self, field: str) -> Any:
        return self.data[field]

    @property
    def id(self) -> str:
        value: str = self.data["id"]
        return value

    @property
    def row_id(self) -> int:
        return row_id(self)

    @property
    def inbound(self) -> str:
        value: str = self.data["inboundAddress"]
        return value

    @property
    def outbound(self) -> str:
        value: str = self.data["outboundAddress"]
        return value

    @property
    def email(self) -> str:
        value: str = self.data["email"]
        return value


async def new_account(api: Api, email: str, name: str = "Vertrieb", active: bool = True) -> Account:
    """Create an account over the API; it must succeed."""
    data = await api(CREATE, {"input": {"email": email, "senderName": name, "active": active}})
    payload = data["createAccount"]
    assert payload["userErrors"] == [], payload
    return Account(payload["account"])


def row_id(account: Account) -> int:
    """The database id inside an account's global (Relay) id."""
    return int(base64.b64decode(account["id"]).decode().split(":")[1])


async def add_messages(account_id: int, count: int) -> list[int]:
    """Store `count` inbound messages of an account, with their bodies, directly in the database; their ids."""
    ids = []
    for i in range(count):
        raw = f"Message-ID: <m{account_id}-{i}@example.com>\r\nSubject: Nr. {i}\r\n\r\nHallo".encode()
        message = await Message.create(
            account_id=account_id,
            direction=Direction.INBOUND,
            message_id_header=f"<m{account_id}-{i}@example.com>",
            subject=f"Nr. {i}",
            size=len(raw),
        )
        await MessageBody.create(message=message, content=raw)
        ids.append(message.id)
    return ids


def mail(
    subject: str = "Angebot",
    message_id: str | None = "<angebot-1@extern.example>",
    to: str = "p1@mailbox.example.com",
    body: str = "Guten Tag,\r\nanbei das Angebot.\r\n",
) -> bytes:
    """A small RFC 5322 message as a remote server would send it."""
    headers = [
        "From: Erika Mustermann <erika@extern.example>",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Tue, 03 Jun 2025 10:15:00 +0200",
    ]
    if message_id:
        headers.append(f"Message-ID: {message_id}")
    return ("\r\n".join([*headers, "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body])).encode()
