"""Platform mailbox addresses: which account an envelope recipient `p<N>@` or `p<N>.out@` belongs to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orm.models import MailAccount
from resolvers.errors import AccountError

__all__ = [
    "MailboxAddress",
    "MailboxDisabled",
    "NotOurDomain",
    "Recipient",
    "RecipientRefused",
    "UnknownMailbox",
    "inbound_address",
    "outbound_address",
    "parse_mailbox_address",
    "resolve_recipient",
]

_LOCAL_PART = re.compile(r"^p([1-9][0-9]{0,9})(\.out)?$", re.IGNORECASE)


class RecipientRefused(AccountError):
    """An envelope recipient the listener does not accept."""


class NotOurDomain(RecipientRefused):
    code = "NOT_OUR_DOMAIN"


class UnknownMailbox(RecipientRefused):
    code = "UNKNOWN_MAILBOX"


class MailboxDisabled(RecipientRefused):
    code = "MAILBOX_DISABLED"


@dataclass(frozen=True)
class MailboxAddress:
    """A parsed platform address: the mailbox number and whether it is the bounce address `.out`."""

    number: int
    is_bounce: bool


@dataclass(frozen=True)
class Recipient:
    """An accepted envelope recipient: the account it delivers to, and whether it came in as a bounce."""

    account_id: int
    mailbox_number: int
    is_bounce: bool


def inbound_address(mailbox_number: int, mailbox_domain: str) -> str:
    """`p<N>@<domain>`: where replies to an account's mail arrive."""
    return f"p{mailbox_number}@{mailbox_domain}"


def outbound_address(mailbox_number: int, mailbox_domain: str) -> str:
    """`p<N>.out@<domain>`: the platform envelope sender, so bounces come back to the account."""
    return f"p{mailbox_number}.out@{mailbox_domain}"


def parse_mailbox_address(address: str, mailbox_domain: str) -> MailboxAddress | None:
    """The mailbox behind `address`; None when it is no platform address of `mailbox_domain`.

    NotOurDomain when the domain is another one (the listener relays nothing).
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or domain.lower().rstrip(".") != mailbox_domain.lower():
        raise NotOurDomain("address")
    match = _LOCAL_PART.match(local)
    if match is None:
        return None
    return MailboxAddress(number=int(match.group(1)), is_bounce=match.group(2) is not None)


async def resolve_recipient(address: str, mailbox_domain: str) -> Recipient:
    """The account an envelope recipient delivers to, in one indexed lookup.

    Raises NotOurDomain (another domain), UnknownMailbox (no such, released or merged-away mailbox)
    or MailboxDisabled (the account is inactive).
    """
    mailbox = parse_mailbox_address(address, mailbox_domain)
    if mailbox is None:
        raise UnknownMailbox("address")
    row = await MailAccount.filter(mailbox_number=mailbox.number).values("id", "active")
    if not row:
        raise UnknownMailbox("address")
    if not row[0]["active"]:
        raise MailboxDisabled("address")
    return Recipient(account_id=row[0]["id"], mailbox_number=mailbox.number, is_bounce=mailbox.is_bounce)
