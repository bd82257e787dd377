"""Dashboard sign-in: failures counted per client address and per account, the lockout and how it is lifted.

Every instance on one database shares the counts (`resolvers.rate_limits`, fixed windows). An attempt is
counted *before* the password is checked, in one atomic statement, so concurrent requests cannot slip
past a limit. Unknown addresses take exactly the path of known ones (the same statements, an argon2
verification of a dummy hash, the same answers), so the sign-in tells nobody which addresses exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeSerializer

from orm.models import DashboardUser
from resolvers import users
from resolvers.accounts import normalize_address
from resolvers.errors import AccountError, NotFound
from resolvers.rate_limits import client_network, counted, spend
from resolvers.sending import Outbox, RelayRefused

__all__ = [
    "UNLOCK_LINK_MAX_AGE",
    "Lock",
    "PasswordReset",
    "SignInAttempt",
    "SignInLimits",
    "SignInStatus",
    "UnlockMailer",
    "address_key",
    "attempt_sign_in",
    "reset_password",
    "unlock_by_token",
    "unlock_link_valid",
    "unlock_token",
    "unlock_user",
]

log = logging.getLogger(__name__)

# An unlock link works for a day after it was mailed; a sign-in with the right password mails a new one.
UNLOCK_LINK_MAX_AGE = 24 * 3600
UNLOCK_PATH = "/unlock"
_UNLOCK_SALT = "mailaccounts.dashboard-unlock"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class SignInLimits:
    """LOGIN_MAX_FAILURES_PER_ADDRESS, LOGIN_MAX_FAILURES_PER_USER and LOGIN_WINDOW."""

    per_address: int = 20
    per_user: int = 10
    window: int = 900


class SignInStatus(StrEnum):
    SIGNED_IN = "signed_in"
    # Wrong address or wrong password: one answer for both.
    FAILED = "failed"
    # Too many failures from this client address: it must wait `retry_after` seconds.
    THROTTLED = "throttled"
    # The right password of a locked account; only someone who knows the password learns of the lock.
    LOCKED = "locked"


@dataclass(frozen=True)
class Lock:
    """A user's current lock: the unlock link is bound to `locked_at`, so it dies once the lock is lifted."""

    user_id: int
    email: str
    locked_at: datetime


@dataclass(frozen=True)
class SignInAttempt:
    """What one sign-in came to; `mail_unlock` is set when the user is to be mailed an unlock link now."""

    status: SignInStatus
    user: DashboardUser | None = None
    retry_after: float = 0.0
    mail_unlock: Lock | None = None


def address_key(host: str) -> str:
    """The counter key of a client address: an IPv6 client counts by its /64, which one subscriber usually holds."""
    return f"login-address:{client_network(host)}"


def _account_key(normalized_email: str) -> str:
    # By address rather than user id, so an unknown address is counted exactly like a known one.
    return "login-account:" + hashlib.sha256(normalized_email.encode()).hexdigest()[:40]


def _unlock_mail_key(normalized_email: str) -> str:
    return "unlock-mail:" + hashlib.sha256(normalized_email.encode()).hexdigest()[:40]


def _normalized(email: str) -> str | None:
    if not email or len(email) > 320:
        return None
    try:
        return normalize_address(email).normalized
    except AccountError:
        return None


def _stamp(moment: datetime) -> int:
    """Microseconds since the epoch, exact (no float rounding), as the database stores the lock time."""
    return (moment.astimezone(UTC) - _EPOCH) // _MICROSECOND



async def _lock(normalized_email: str, at: datetime) -> bool:
    """Lock the account of this address unless it is locked; whether this call locked it."""
    unlocked = DashboardUser.filter(email_normalized=normalized_email, locked_at__isnull=True)
    return bool(await unlocked.update(locked_at=at))


async def _forget_failures(normalized_email: str, window: int, clock: Callable[[], float]) -> None:
    key = _account_key(normalized_email)
    spent = await counted(key, window=window, clock=clock)
    if spent:
        await spend(key, -spent, limit=0, window=window, clock=clock)


async def attempt_sign_in(
    email: str, password: str, client_host: str, limits: SignInLimits, *, clock: Callable[[], float] = time.time
) -> SignInAttempt:
    """Check an address and password under the three limits; see SignInStatus for the outcomes.

    The attempt counts against the client address (at most `per_address` failures per window, then
    THROTTLED) and against the account (at most `per_user`; the failure that reaches it locks the
    account, and a locked account does not sign in until the lock is lifted). A successful sign-in
    takes back its own count and clears the account's.
    """
    from_address = await spend(
        address_key(client_host), 1, limit=limits.per_address, window=limits.window, clock=clock
    )
    if from_address.exceeded:
        return SignInAttempt(SignInStatus.THROTTLED, retry_after=from_address.retry_after)
    normalized = _normalized(email)
    if normalized is None:
        await users.password_matches(None, password)
        return SignInAttempt(SignInStatus.FAILED)
    of_account = await spend(
        _account_key(normalized), 1, limit=limits.per_user, window=limits.window, clock=clock
    )
    user = await users.find_user(normalized)
    password_ok = await users.password_matches(user, password)
    locked = user is not None and user.locked_at is not None
    newly_locked: Lock | None = None
    if not locked and (of_account.exceeded or (not password_ok and of_account.points >= limits.per_user)):
        # The same statements run for an unknown address (they match no row), so the moment of locking
        # looks the same for both. The mail counter makes the lock mail and a resend share one budget.
        at = datetime.fromtimestamp(clock(), UTC)
        locked_now = await _lock(normalized, at)
        await spend(_unlock_mail_key(normalized), 1, limit=1, window=limits.window, clock=clock)
        locked = True
        if locked_now and user is not None:
            newly_locked = Lock(user.id, user.email, at)
            log.warning("dashboard user %s locked after %s failed sign-ins", user.id, of_account.points)
    if user is None or not password_ok:
        return SignInAttempt(SignInStatus.FAILED, mail_unlock=newly_locked)
    if locked:
        resend: Lock | None = newly_locked
        if resend is None and user.locked_at is not None:
            mails = await spend(_unlock_mail_key(normalized), 1, limit=1, window=limits.window, clock=clock)
            resend = None if mails.exceeded else Lock(user.id, user.email, user.locked_at)
        return SignInAttempt(SignInStatus.LOCKED, user=user, mail_unlock=resend)
    # The limits count failures: a success takes back its own count, and the password's holder starts over.
    await spend(address_key(client_host), -1, limit=limits.per_address, window=limits.window, clock=clock)
    await spend(_account_key(normalized), -of_account.points, limit=limits.per_user, window=limits.window, clock=clock)
    await users.record_sign_in(user, password)
    return SignInAttempt(SignInStatus.SIGNED_IN, user=user)


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=_UNLOCK_SALT)


def unlock_token(lock: Lock, secret_key: str, *, clock: Callable[[], float] = time.time) -> str:
    """A signed token naming the user, its lock time and when it was issued."""
    return str(_serializer(secret_key).dumps([lock.user_id, _stamp(lock.locked_at), int(clock())]))


async def _locked_user_of(
    token: str, secret_key: str, max_age: float, clock: Callable[[], float]
) -> DashboardUser | None:
    try:
        payload = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if not (isinstance(payload, list) and len(payload) == 3 and all(isinstance(part, int) for part in payload)):
        return None
    user_id, stamp, issued_at = payload
    # No lower bound: a token "from the future" can only be ours, issued by an instance whose clock runs ahead.
    if clock() - issued_at > max_age:
        return None
    user = await DashboardUser.get_or_none(id=user_id)
    if user is None or user.locked_at is None or _stamp(user.locked_at) != stamp:
        return None
    return user


async def unlock_link_valid(
    token: str, secret_key: str, *, max_age: float = UNLOCK_LINK_MAX_AGE, clock: Callable[[], float] = time.time
) -> bool:
    """Whether the token would lift a lock now (signed, not expired, the lock it names still in place)."""
    return await _locked_user_of(token, secret_key, max_age, clock) is not None


async def _lift(user: DashboardUser, window: int, clock: Callable[[], float]) -> bool:
    # Conditional on the lock time read, so two uses of one link lift (and report) the lock once.
    lifted = await DashboardUser.filter(id=user.id, locked_at=user.locked_at).update(locked_at=None)
    if lifted:
        await _forget_failures(user.email_normalized, window, clock)
        log.info("dashboard user %s unlocked", user.id)
    return bool(lifted)


async def unlock_by_token(
    token: str,
    secret_key: str,
    limits: SignInLimits,
    *,
    max_age: float = UNLOCK_LINK_MAX_AGE,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Lift the lock the token names; False when the token is forged, expired, used or its lock was lifted."""
    user = await _locked_user_of(token, secret_key, max_age, clock)
    return user is not None and await _lift(user, limits.window, clock)


async def unlock_user(email: str, limits: SignInLimits, *, clock: Callable[[], float] = time.time) -> bool:
    """Lift the user's lock (the admin's `user unlock`); False when it was not locked. NotFound: no such user."""
    normalized = _normalized(email)
    user = await users.find_user(normalized) if normalized else None
    if user is None:
        raise NotFound("email")
    if user.locked_at is None:
        await _forget_failures(user.email_normalized, limits.window, clock)
        return False
    return await _lift(user, limits.window, clock)


@dataclass(frozen=True)
class PasswordReset:
    """The user whose password was reset; `generated_password` is set when it was generated, to show it once."""

    user: DashboardUser
    generated_password: str | None


async def reset_password(
    email: str, password: str | None, limits: SignInLimits, *, clock: Callable[[], float] = time.time
) -> PasswordReset:
    """A new password (generated when None) for the user: its sessions end and its lock is lifted.

    Raises NotFound (no such user) or WeakPassword.
    """
    normalized = _normalized(email)
    user = await users.find_user(normalized) if normalized else None
    if user is None:
        raise NotFound("email")
    generated = await users.set_password(user.id, password, datetime.fromtimestamp(clock(), UTC))
    await unlock_user(user.email, limits, clock=clock)
    return PasswordReset(user=user, generated_password=generated)


def unlock_message(lock: Lock, link: str, mailbox_domain: str, failures: int) -> EmailMessage:
    """The German system mail with the unlock link, from noreply@MAILBOX_DOMAIN."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = Address("Mail-Accounts", "noreply", mailbox_domain)
    message["To"] = lock.email
    message["Subject"] = "Ihr Zugang zum Dashboard Mail-Accounts wurde gesperrt"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=mailbox_domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Guten Tag,\n\n"
        f"nach {failures} fehlgeschlagenen Anmeldeversuchen wurde Ihr Zugang {lock.email} zum Dashboard "
        "Mail-Accounts gesperrt. Solange die Sperre besteht, ist keine Anmeldung möglich, auch nicht mit dem "
        "richtigen Passwort.\n\n"
        "Mit diesem Link heben Sie die Sperre auf (24 Stunden gültig, nur einmal verwendbar):\n\n"
        f"{link}\n\n"
        "Waren Sie das nicht, versucht vielleicht jemand, Ihr Passwort zu erraten. Wenden Sie sich dann an "
        "Ihren Administrator; er kann Ihnen mit `mailaccounts user reset-password` ein neues Passwort geben.\n\n"
        "Diese Nachricht wurde automatisch erstellt; bitte antworten Sie nicht darauf.\n"
    )
    return message


@dataclass
class UnlockMailer:
    """Mails unlock links through the platform relay (SMTP_RELAY) in the background.

    In the background so that no sign-in answer waits for SMTP: the answer to the attempt that locks an
    account must take as long as any other failure.
    """

    outbox: Outbox
    secret_key: str = field(repr=False)
    failures: int = 10
    clock: Callable[[], float] = time.time
    _pending: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    def link(self, lock: Lock, base_url: str) -> str:
        """The unlock link on the dashboard at `base_url` (scheme and host the user signed in on)."""
        return f"{base_url.rstrip('/')}{UNLOCK_PATH}?token={unlock_token(lock, self.secret_key, clock=self.clock)}"

    async def send(self, lock: Lock, base_url: str) -> None:
        """Mail the link now; a relay failure is logged (the admin can still unlock with the CLI)."""
        message = unlock_message(lock, self.link(lock, base_url), self.outbox.mailbox_domain, self.failures)
        try:
            await self.outbox.relay.send(
                message.as_bytes(), sender=f"noreply@{self.outbox.mailbox_domain}", recipients=[lock.email]
            )
        except RelayRefused as exc:
            log.error("unlock link for dashboard user %s not sent: %s", lock.user_id, exc.reply)
        except Exception:
            log.exception("unlock link for dashboard user %s not sent", lock.user_id)

    def send_later(self, lock: Lock, base_url: str) -> None:
        """Start `send` without waiting for it."""
        task = asyncio.create_task(self.send(lock, base_url))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def wait_sent(self) -> None:
        """Wait until every mail started so far was handed to the relay (or failed)."""
        while self._pending:
            await asyncio.gather(*self._pending)
