"""Dashboard sign-in for front ends outside schema/: who a user is, the principal it acts as, and the lockout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from resolvers import sign_in, users
from resolvers.sign_in import SignInLimits, SignInStatus, UnlockMailer
from resolvers.tokens import Principal, Scope

__all__ = [
    "DashboardIdentity",
    "LoginResult",
    "SignInLimits",
    "SignInStatus",
    "UnlockMailer",
    "login_user",
    "logout_user",
    "principal_for_user",
    "unlock_link_valid",
    "unlock_with_link",
]


@dataclass(frozen=True)
class DashboardIdentity:
    """A signed-in dashboard user: its id (kept in the session), its address, and the tenant it acts for."""

    user_id: int
    email: str
    principal: Principal


@dataclass(frozen=True)
class LoginResult:
    """A sign-in: `identity` when it succeeded; `retry_after` seconds for THROTTLED. A front end answers
    FAILED and LOCKED alike, so that the lock tells nobody whether the password was right."""

    status: SignInStatus
    identity: DashboardIdentity | None = None
    retry_after: float = 0.0


def _identity(user: users.DashboardUser) -> DashboardIdentity:
    # Dashboard users manage their tenant's accounts, so they act with write scope.
    principal = Principal(tenant_id=user.tenant_id, tenant_name=user.tenant.name, scope=Scope.WRITE)
    return DashboardIdentity(user_id=user.id, email=user.email, principal=principal)


async def login_user(
    email: str,
    password: str,
    client_host: str,
    limits: SignInLimits,
    mailer: UnlockMailer | None = None,
    base_url: str = "",
    clock: Callable[[], float] = time.time,
) -> LoginResult:
    """Sign in under the per-address and per-account limits; a new lock mails its unlock link to `base_url`."""
    attempt = await sign_in.attempt_sign_in(email, password, client_host, limits, clock=clock)
    if attempt.mail_unlock is not None and mailer is not None:
        mailer.send_later(attempt.mail_unlock, base_url)
    if attempt.status is SignInStatus.SIGNED_IN and attempt.user is not None:
        return LoginResult(attempt.status, identity=_identity(attempt.user))
    return LoginResult(attempt.status, retry_after=attempt.retry_after)


async def unlock_link_valid(token: str, secret_key: str, clock: Callable[[], float] = time.time) -> bool:
    """Whether an unlock link's token would lift a lock now."""
    return await sign_in.unlock_link_valid(token, secret_key, clock=clock)


async def unlock_with_link(
    token: str, secret_key: str, limits: SignInLimits, clock: Callable[[], float] = time.time
) -> bool:
    """Lift the lock an unlock link names; False when the link is forged, expired or used."""
    return await sign_in.unlock_by_token(token, secret_key, limits, clock=clock)


async def principal_for_user(user_id: int, signed_in_at: float) -> DashboardIdentity | None:
    """The identity of a session's user, or None when the user is gone or signed out after `signed_in_at`."""
    user = await users.get_user(user_id)
    if user is None:
        return None
    if user.sessions_valid_after is not None and signed_in_at < user.sessions_valid_after.timestamp():
        return None
    return _identity(user)


async def logout_user(user_id: int, at: float) -> None:
    """End every session of the user signed in before `at` (a POSIX timestamp)."""
    await users.end_sessions(user_id, datetime.fromtimestamp(at, UTC))
