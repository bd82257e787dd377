"""Platform mailbox addresses: which account an envelope recipient `p<N>@` or `p<N>.out@` belongs to."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from domaincheck.names import InvalidDomainName, canonical_domain
from orm.models import MailAccount, PendingOperation
from resolvers.errors import AccountError
from resolvers.mailbox_changes import AccountChange, MailboxChanges

__all__ = [
    "MailboxAddress",
    "MailboxDisabled",
    "NotOurDomain",
    "Recipient",
    "RecipientCache",
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


@lru_cache(maxsize=1024)
def _domain_key(domain: str) -> str | None:
    """The A-label form a domain is compared in, so an IDN MAILBOX_DOMAIN matches in either form."""
    if domain.isascii():
        return domain.lower().rstrip(".")
    try:
        return canonical_domain(domain)
    except InvalidDomainName:
        return None


def parse_mailbox_address(address: str, mailbox_domain: str) -> MailboxAddress | None:
    """The mailbox behind `address`; None when it is no platform address of `mailbox_domain`.

    NotOurDomain when the domain is another one (the listener relays nothing). The domain matches
    as U-labels or A-labels (`postfach.bücher.example` is `postfach.xn--bcher-kva.example`).
    """
    local, at, domain = address.strip().rpartition("@")
    key = _domain_key(domain) if at and len(domain) <= 255 else None
    if key is None or key != _domain_key(mailbox_domain):
        raise NotOurDomain("address")
    match = _LOCAL_PART.match(local)
    if match is None:
        return None
    return MailboxAddress(number=int(match.group(1)), is_bounce=match.group(2) is not None)


async def _lookup(mailbox: MailboxAddress) -> Recipient:
    """The account a mailbox delivers to; during a background merge that is the merge's target."""
    rows = await MailAccount.filter(mailbox_number=mailbox.number).values(
        "id", "active", "pending_operation", "merge_target_id"
    )
    if not rows:
        raise UnknownMailbox("address")
    row = rows[0]
    if row["pending_operation"] == PendingOperation.DELETE:
        # Being deleted: refused from the delete's start, as it will be for good at its end.
        raise UnknownMailbox("address")
    if row["pending_operation"] == PendingOperation.MERGE:
        targets = await MailAccount.filter(id=row["merge_target_id"]).values("id", "active")
        if not targets:
            raise UnknownMailbox("address")
        row = targets[0]
    if not row["active"]:
        raise MailboxDisabled("address")
    return Recipient(account_id=row["id"], mailbox_number=mailbox.number, is_bounce=mailbox.is_bounce)


async def resolve_recipient(address: str, mailbox_domain: str) -> Recipient:
    """The account an envelope recipient delivers to, in one indexed lookup.

    Raises NotOurDomain (another domain), UnknownMailbox (no such, released or merged-away mailbox)
    or MailboxDisabled (the account is inactive).
    """
    mailbox = parse_mailbox_address(address, mailbox_domain)
    if mailbox is None:
        raise UnknownMailbox("address")
    return await _lookup(mailbox)


class RecipientCache:
    """`resolve_recipient` for the listener, remembering accepted mailboxes for `ttl` seconds in this process.

    Only acceptances are kept. With a `changes` feed (resolvers/mailbox_changes.py) an entry is dropped as
    soon as any process commits a change of its account's state (deactivated, merge or delete pending,
    deleted) or of the account it delivers to during a merge; while the feed cannot promise that it has
    seen every change, the cache is bypassed. `ttl` then only bounds what a lost notification could cost.
    Without a feed (one process, tests) entries live for `ttl`. Either way a stale acceptance costs little:
    the delivery transaction checks every account again and answers 451, after which `forget` drops it,
    so the sender's retry gets the final 550. A stale refusal would bounce mail for good, so refusals are
    always looked up.
    """

    def __init__(
        self,
        mailbox_domain: str,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        changes: MailboxChanges | None = None,
    ) -> None:
        self.mailbox_domain = mailbox_domain
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._changes = changes
        self._accepted: dict[int, tuple[int, float]] = {}  # mailbox number -> (account id, expiry)
        self._by_account: dict[int, set[int]] = {}  # account id -> the mailbox numbers accepted for it
        # Counts invalidations: a lookup that saw one happen meanwhile may have read the old state, so it is
        # not remembered.
        self._generation = 0
        if changes is not None:
            changes.subscribe(self)

    async def resolve(self, address: str) -> Recipient:
        """Like `resolve_recipient`, without a query when the mailbox was accepted less than `ttl` ago and
        no change of its account was announced since."""
        mailbox = parse_mailbox_address(address, self.mailbox_domain)
        if mailbox is None:
            raise UnknownMailbox("address")
        now = self._clock()
        trusted = self._changes is None or self._changes.caught_up()
        if trusted:
            entry = self._accepted.get(mailbox.number)
            if entry is not None:
                if entry[1] > now:
                    return Recipient(account_id=entry[0], mailbox_number=mailbox.number, is_bounce=mailbox.is_bounce)
                self._drop(mailbox.number)
        generation = self._generation
        recipient = await _lookup(mailbox)
        if trusted and generation == self._generation:
            self._drop(mailbox.number)
            if len(self._accepted) >= self.max_entries:
                self._drop(next(iter(self._accepted)))  # the oldest entry (dicts keep insertion order)
            self._accepted[mailbox.number] = (recipient.account_id, now + self.ttl)
            self._by_account.setdefault(recipient.account_id, set()).add(mailbox.number)
        return recipient

    def __contains__(self, mailbox_number: object) -> bool:
        """Whether an acceptance of this mailbox number is remembered (expired or not)."""
        return mailbox_number in self._accepted

    def forget(self, recipients: Iterable[Recipient]) -> None:
        """Drop these recipients' mailboxes, so the next RCPT to them is looked up again."""
        for recipient in recipients:
            self._drop(recipient.mailbox_number)

    def accounts_changed(self, changes: Iterable[AccountChange]) -> None:
        """The feed's announcement: drop each changed mailbox and every mailbox delivering to a changed account."""
        self._generation += 1
        for account_id, mailbox_number in changes:
            self._drop(mailbox_number)
            for number in self._by_account.pop(account_id, ()):
                self._accepted.pop(number, None)

    def everything_changed(self) -> None:
        """The feed may have missed changes: drop every entry."""
        self._generation += 1
        self._accepted.clear()
        self._by_account.clear()

    def _drop(self, mailbox_number: int) -> None:
        entry = self._accepted.pop(mailbox_number, None)
        if entry is not None:
            numbers = self._by_account.get(entry[0])
            if numbers is not None:
                numbers.discard(mailbox_number)
                if not numbers:
                    del self._by_account[entry[0]]
