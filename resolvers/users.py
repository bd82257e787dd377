"""Dashboard users: create them, check a password (argon2), look one up for a session."""

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
    "authenticate_user",
    "create_user",
    "end_sessions",
    "generate_password",
    "get_user",
    "has_users",
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


async def authenticate_user(email: str, password: str) -> DashboardUser | None:
    """The user with this address and password (tenant loaded), or None; records the login time."""
    if not email or not password or len(password) > PASSWORD_MAX or len(email) > 320:
        return None
    try:
        normalized = normalize_address(email).normalized
    except AccountError:
        return None
    user = await DashboardUser.filter(email_normalized=normalized).select_related("tenant").first()
    if user is None:
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        return None
    if not await asyncio.to_thread(_verify, user.password_hash, password):
        return None
    updates: dict[str, object] = {"last_login_at": datetime.now(UTC)}
    if _HASHER.check_needs_rehash(user.password_hash):
        updates["password_hash"] = await asyncio.to_thread(_HASHER.hash, password)
    await DashboardUser.filter(id=user.id).update(**updates)
    return user


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
