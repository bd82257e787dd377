"""Dashboard users: create them, check and set a password (argon2), look one up for a session."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orm.models import DashboardUser
from resolvers.accounts import normalize_address
from resolvers.errors import AccountError
from resolvers.tokens import ensure_tenant

__all__ = [
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "CreatedUser",
    "DashboardUser",
    "DuplicateUser",
    "WeakPassword",
    "create_user",
    "end_sessions",
    "find_user",
    "generate_password",
    "get_user",
    "has_users",
    "password_matches",
    "record_sign_in",
    "set_password",
]

PASSWORD_MIN = 10
PASSWORD_MAX = 1000
_HASHER = PasswordHasher()
# Verified when the address is unknown, so a wrong address costs as much time as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class DuplicateUser(AccountError):
    code = "DUPLICATE_USER"


class WeakPassword(AccountError):
    code = "WEAK_PASSWORD"


@dataclass(frozen=True)
class CreatedUser:
    """A new user with its tenant's name; `password` is set when it was generated, to show it once."""

    user: DashboardUser
    tenant_name: str
    generated_password: str | None


def generate_password() -> str:
    """A random password of about 100 bits that is easy to type: four groups of five characters."""
    alphabet = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def _check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise WeakPassword("password", min=PASSWORD_MIN, max=PASSWORD_MAX)


async def create_user(tenant_name: str, email: str, password: str | None = None) -> CreatedUser:
    """Create a dashboard user of the tenant (created if new); without a password one is generated.

    Raises InvalidEmail, WeakPassword (fewer than PASSWORD_MIN characters) or DuplicateUser: an
    address signs in to one tenant only.
    """
    address = normalize_address(email)
    generated = generate_password() if password is None else None
    secret = generated or password or ""
    _check_password(secret)
    password_hash = await asyncio.to_thread(_HASHER.hash, secret)
    try:
        async with in_transaction():
            tenant = await ensure_tenant(tenant_name)
            if await DashboardUser.filter(email_normalized=address.normalized).exists():
                raise DuplicateUser("email")
            user = await DashboardUser.create(
                tenant=tenant, email=address.entered, email_normalized=address.normalized, password_hash=password_hash
            )
    except IntegrityError:
        raise DuplicateUser("email") from None
    return CreatedUser(user=user, tenant_name=tenant.name, generated_password=generated)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def find_user(normalized_email: str) -> DashboardUser | None:
    """The user with this normalized address (tenant loaded), or None."""
    return await DashboardUser.filter(email_normalized=normalized_email).select_related("tenant").first()


async def password_matches(user: DashboardUser | None, password: str) -> bool:
    """Whether `password` is the user's; without a user a dummy hash is verified, so both cost the same time."""
    if not password or len(password) > PASSWORD_MAX:
        return False
    return await asyncio.to_thread(_verify, user.password_hash if user else _DUMMY_HASH, password)


async def record_sign_in(user: DashboardUser, password: str) -> None:
    """Note the sign-in time and rehash the password when the hasher's parameters changed."""
    updates: dict[str, object] = {"last_login_at": datetime.now(UTC)}
    if _HASHER.check_needs_rehash(user.password_hash):
        updates["password_hash"] = await asyncio.to_thread(_HASHER.hash, password)
    await DashboardUser.filter(id=user.id).update(**updates)


async def set_password(user_id: int, password: str | None, at: datetime) -> str | None:
    """Give the user a new password (generated when None; returned then) and void its sessions before `at`.

    Raises WeakPassword. The lock is not touched here: `resolvers.sign_in.reset_password` lifts it too.
    """
    generated = generate_password() if password is None else None
    secret = generated or password or ""
    _check_password(secret)
    password_hash = await asyncio.to_thread(_HASHER.hash, secret)
    await DashboardUser.filter(id=user_id).update(password_hash=password_hash, sessions_valid_after=at)
    return generated


async def get_user(user_id: int) -> DashboardUser | None:
    """The user with this id and its tenant loaded, or None when it no longer exists."""
    return await DashboardUser.filter(id=user_id).select_related("tenant").first()


async def end_sessions(user_id: int, at: datetime) -> None:
    """Void every session of the user that was signed in before `at` (signing out)."""
    await DashboardUser.filter(id=user_id).update(sessions_valid_after=at)


async def has_users(tenant_name: str | None = None) -> bool:
    """Whether any dashboard user exists (of the tenant, when given)."""
    if tenant_name is None:
        return await DashboardUser.exists()
    return await DashboardUser.filter(tenant__name=tenant_name).exists()
