"""Dashboard sign-in for front ends outside schema/: who a user is, and the principal it acts as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from resolvers import users
from resolvers.tokens import Principal, Scope

__all__ = ["DashboardIdentity", "login_user", "logout_user", "principal_for_user"]


@dataclass(frozen=True)
class DashboardIdentity:
    """A signed-in dashboard user: its id (kept in the session), its address, and the tenant it acts for."""

    user_id: int
    email: str
    principal: Principal


def _identity(user: users.DashboardUser) -> DashboardIdentity:
    # Dashboard users manage their tenant's accounts, so they act with write scope.
    principal = Principal(tenant_id=user.tenant_id, tenant_name=user.tenant.name, scope=Scope.WRITE)
    return DashboardIdentity(user_id=user.id, email=user.email, principal=principal)


async def login_user(email: str, password: str) -> DashboardIdentity | None:
    """The identity for an address and password, or None when either is wrong."""
    user = await users.authenticate_user(email, password)
    return _identity(user) if user is not None else None


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
